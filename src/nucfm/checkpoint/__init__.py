"""Checkpoints: the ONLY place that touches state dicts and foreign formats.

Our format is a directory with ``config.json`` (format version, architecture, model config,
alphabet) and ``model.safetensors``. :func:`load_model` also takes the official formats, each
through a named converter with a parity test: RNA-FM ``.pth`` files (:mod:`.rnafm`) and GPN
Hugging Face directories (:mod:`.gpn`), and names from the registry (:mod:`.registry`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from nucfm.alphabet import get_alphabet
from nucfm.errors import InputError, ModelNotFoundError
from nucfm.models import ARCHITECTURES, NucleotideLM

FORMAT = "nucfm"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def model_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}


def save_model(model: NucleotideLM, path: str | Path, dtype: torch.dtype | None = None,
               metadata: dict | None = None) -> Path:
    """Write ``model`` as a nucfm checkpoint directory (created if needed).

    ``dtype`` (e.g. ``torch.float16``) stores floating weights in that type; loading always
    returns float32. ``metadata`` (JSON-able) is kept in ``config.json`` under ``"metadata"``.
    """
    model = unwrap(model)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = model_state_dict(model)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "alphabet": model.alphabet.to_dict(),
    }
    if metadata:
        config["metadata"] = metadata
    tmp = path / (WEIGHTS_FILE + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path / WEIGHTS_FILE)
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return path


def read_config(path: str | Path) -> dict:
    return json.loads((Path(path) / CONFIG_FILE).read_text())


def build_model(model_config: dict) -> NucleotideLM:
    """An initialised (random-weight) model from the ``"model"`` section of a config."""
    arch = model_config.get("architecture")
    if arch not in ARCHITECTURES:
        raise InputError(f"unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
    cls = ARCHITECTURES[arch]
    return cls(cls.config_class.from_dict(model_config))


def _load_nucfm_dir(path: Path) -> NucleotideLM:
    config = read_config(path)
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(f"{path}: format version {config['format_version']} is newer than this nucfm "
                         f"({FORMAT_VERSION}); upgrade nucfm")
    model = build_model(config["model"])
    saved = config.get("alphabet")
    if saved is not None and saved != get_alphabet(saved["name"]).to_dict():
        raise InputError(f"{path}: its alphabet differs from nucfm's {saved['name']!r} alphabet")
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path / WEIGHTS_FILE)).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(name_or_path: str | Path, download: bool | None = None) -> NucleotideLM:
    """Load a model in eval mode, float32, on the CPU.

    ``name_or_path`` is one of:

    * a nucfm checkpoint directory (``config.json`` + ``model.safetensors``);
    * an official RNA-FM ``.pth`` file (e.g. ``RNA-FM_pretrained.pth``);
    * an official GPN Hugging Face directory (``config.json`` with ``model_type: ConvNet``);
    * a registered name (``nucfm models`` lists them): shipped with nucfm, found in the cache
      (``$NUCFM_HOME``, default ``~/.cache/nucfm``), or downloaded there when ``download`` is
      true (default: unless ``NUCFM_OFFLINE=1``).

    >>> model = load_model("rna-fm")  # doctest: +SKIP
    """
    from nucfm.checkpoint import registry

    path = Path(name_or_path).expanduser()
    if not path.exists():
        if str(name_or_path) in registry.MODELS:
            path = registry.resolve(str(name_or_path), download=download)
        else:
            raise ModelNotFoundError(
                f"no model file, directory or registered name {str(name_or_path)!r}; "
                f"registered: {', '.join(registry.MODELS)}"
            )
    if path.is_dir():
        if not (path / CONFIG_FILE).exists():
            raise InputError(f"{path}: a model directory needs a {CONFIG_FILE}")
        config = read_config(path)
        if config.get("format") == FORMAT:
            return _load_nucfm_dir(path)
        if config.get("format") == "nucfm-ss":
            raise InputError(f"{path} is a secondary-structure model, not a language model: use `nucfm fold "
                             "--model` or nucfm.checkpoint.ss_head.load_structure_model")
        if config.get("model_type") == "ConvNet":
            from nucfm.checkpoint.gpn import load_gpn_dir

            return load_gpn_dir(path)
        raise InputError(f"{path}: {CONFIG_FILE} is neither a nucfm nor a GPN (model_type ConvNet) config")
    if path.suffix in (".pth", ".pt"):
        from nucfm.checkpoint.rnafm import load_rnafm_pth

        return load_rnafm_pth(path)
    raise InputError(f"{path}: not a model (expected a checkpoint directory or an RNA-FM .pth file)")
