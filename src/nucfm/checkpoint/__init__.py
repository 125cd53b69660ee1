"""Checkpoints: the ONLY place that reads or writes weights, state dicts and foreign formats.

Our format is a directory with ``config.json`` (format version, architecture, model config,
alphabet) and ``model.safetensors``. :func:`load_model` also takes the official formats, each
through a named converter with a parity test: RNA-FM ``.pth`` files (:mod:`.rnafm`) and GPN
Hugging Face directories (:mod:`.gpn`), and names from the registry (:mod:`.registry`).
Structure models (pair heads) are :mod:`.structure`; resumable training state is
:mod:`.training_state`. :func:`resolve` is the one place a ``--model`` string becomes a path.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from nucfm.alphabet import get_alphabet
from nucfm.errors import InputError, ModelNotFoundError
from nucfm.models import ARCHITECTURES, NucleotideLM
from nucfm.paths import atomic_path, atomic_write_text

FORMAT = "nucfm"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
COUNTS_FILE = "mlm_counts.npz"  # training-data k-mer counts shipped beside a model (eval-mlm baselines)
KNOWN_FORMATS = ("nucfm", "nucfm-ss", "nucfm-task")
log = logging.getLogger("nucfm")


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


def write_checkpoint_dir(path: str | Path, module: torch.nn.Module, config: dict,
                         dtype: torch.dtype | None = None) -> Path:
    """Write ``module``'s weights (``model.safetensors``) and ``config`` (``config.json``) into
    the directory ``path``, each file atomically. A directory whose ``config.json`` is not a
    nucfm checkpoint is refused, so an unrelated file is never overwritten."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a directory")
    if (path / CONFIG_FILE).exists():
        try:
            fmt = json.loads((path / CONFIG_FILE).read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt not in KNOWN_FORMATS:
            raise InputError(f"{path} holds a {CONFIG_FILE} that is not a nucfm checkpoint; choose another "
                             "output directory")
    path.mkdir(parents=True, exist_ok=True)
    state = model_state_dict(module)
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    with atomic_path(path / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    atomic_write_text(path / CONFIG_FILE, json.dumps(config, indent=2) + "\n")
    return path


def damage_hint(path: str | Path) -> str:
    """What to do about a damaged model file: a cached download is fetched again once deleted."""
    from nucfm.paths import home

    path = Path(path).resolve()
    root = home().resolve()
    if root in path.parents:
        model_dir = root / path.relative_to(root).parts[0]
        return f"; it is a cached download: delete {model_dir} and rerun to fetch it again"
    return "; re-save or re-download the model"


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint directory (floating tensors as float32). A missing or
    unreadable ``model.safetensors`` is an InputError naming the file."""
    f = Path(path) / WEIGHTS_FILE
    if not f.is_file():
        raise InputError(f"{f}: missing: the model directory has a {CONFIG_FILE} but no weights{damage_hint(f)}")
    return {k: v.float() if v.is_floating_point() else v for k, v in load_safetensors(f).items()}


def load_safetensors(f: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a truncated or foreign one is an InputError
    naming the file and what to do."""
    try:
        return load_file(str(f))
    except Exception as e:  # safetensors' own error type for a truncated or foreign file
        why = " ".join(str(e).split())[:120]
        raise InputError(f"{f}: damaged: cannot read its tensors ({why}); truncated or not safetensors"
                         f"{damage_hint(f)}") from None


def load_weights(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """``module.load_state_dict(state, strict=True)``, with every mismatch (missing, extra and
    differently shaped tensors) said in one line naming the weights file of ``path``."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    shapes = [f"{k} is {list(state[k].shape)}, config says {list(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    parts = []
    for label, names in (("missing", missing), ("not in the model", extra), ("of another shape", shapes)):
        if names:
            parts.append(f"{len(names)} tensor(s) {label}: {', '.join(names[:3])}" + (" ..." if len(names) > 3 else ""))
    if parts:
        f = Path(path) / WEIGHTS_FILE
        raise InputError(f"{f}: damaged: its weights do not match {CONFIG_FILE} ({'; '.join(parts)}){damage_hint(f)}")
    module.load_state_dict(state, strict=True)


def save_model(model: NucleotideLM, path: str | Path, dtype: torch.dtype | None = None,
               metadata: dict | None = None) -> Path:
    """Write ``model`` as a nucfm checkpoint directory (created if needed).

    ``dtype`` (e.g. ``torch.float16``) stores floating weights in that type; loading always
    returns float32. ``metadata`` (JSON-able) is kept in ``config.json`` under ``"metadata"``.
    """
    model = unwrap(model)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.config.to_dict(),
        "alphabet": model.alphabet.to_dict(),
    }
    if metadata:
        config["metadata"] = metadata
    return write_checkpoint_dir(path, model, config, dtype=dtype)


def fingerprint(model: torch.nn.Module) -> str:
    """A cheap identity of a model's weights (config, names, shapes and a sample of values):
    the key of caches and resumable runs that depend on the weights. ``model``: a module with a
    ``config``, or a structure model (its config, pair head and language model)."""
    import hashlib

    m = unwrap(model) if isinstance(model, torch.nn.Module) else model
    h = hashlib.sha1(json.dumps(m.config.to_dict(), sort_keys=True, default=str).encode())
    modules = [m] if isinstance(m, torch.nn.Module) else [x for x in (m.head, m.lm) if x is not None]
    state = (unwrap(modules[0]).state_dict() if len(modules) == 1 else  # a plain model: as it always was
             {f"{k}.{name}": p for k, mod in enumerate(modules) for name, p in unwrap(mod).state_dict().items()})
    for name, p in state.items():
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(p.detach().flatten()[:256].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def read_config(path: str | Path) -> dict:
    """The ``config.json`` of a model directory as a dict; a truncated or garbled one is an
    InputError naming the file and where it breaks."""
    f = Path(path) / CONFIG_FILE
    try:
        doc = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{f}: damaged: not valid JSON ({e.msg}, line {e.lineno} column {e.colno}; truncated?)"
                         f"{damage_hint(f)}") from None
    except UnicodeDecodeError:
        raise InputError(f"{f}: damaged: not UTF-8 text{damage_hint(f)}") from None
    if not isinstance(doc, dict):
        raise InputError(f"{f}: damaged: a JSON {type(doc).__name__}, not an object{damage_hint(f)}")
    return doc


def config_section(doc: dict, key: str, path: str | Path) -> dict:
    """``doc[key]`` of a model's config.json, which must be an object."""
    if not isinstance(doc.get(key), dict):
        raise InputError(f"{Path(path) / CONFIG_FILE}: damaged: no {key!r} section{damage_hint(path)}")
    return doc[key]


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
    model = build_model(config_section(config, "model", path))
    saved = config.get("alphabet")
    if saved is not None and (not isinstance(saved, dict) or saved != get_alphabet(saved.get("name")).to_dict()):
        raise InputError(f"{path}: its alphabet differs from nucfm's {saved.get('name')!r} alphabet")
    load_weights(model, read_weights(path), path)
    return model.eval()


def resolve(name_or_path: str | Path, download: bool | None = None, what: str = "model") -> Path:
    """The local path of a ``--model`` value: an existing file or directory as it is, else a
    registered name (shipped, cached, or downloaded when allowed; see :mod:`.registry`)."""
    from nucfm.checkpoint import registry

    path = Path(name_or_path).expanduser()
    if path.exists():
        return path
    if str(name_or_path) in registry.MODELS:
        return registry.resolve(str(name_or_path), download=download)
    raise ModelNotFoundError(f"no {what} file, directory or registered name {str(name_or_path)!r}; "
                             f"registered: {', '.join(registry.MODELS)} (see `nucfm models`)")


RUN_MODEL_DIRS = ("best", "final")  # where finetune / train-ss and pretrain runs keep their model


def _run_model_dir(path: Path) -> Path:
    """A model directory as given, or the model inside a training run's output directory
    (``RUN/best`` of finetune and train-ss, ``RUN/final`` of pretrain)."""
    if (path / CONFIG_FILE).exists():
        return path
    for sub in RUN_MODEL_DIRS:
        if (path / sub / CONFIG_FILE).exists():
            log.info("%s is a training run; loading its model %s", path, path / sub)
            return path / sub
    raise InputError(f"{path}: a model directory needs a {CONFIG_FILE} (or, for a training run, "
                     f"{' or '.join(d + '/' + CONFIG_FILE for d in RUN_MODEL_DIRS)})")


def load_model(name_or_path: str | Path, download: bool | None = None):
    """Load a model in eval mode, float32, on the CPU.

    ``name_or_path`` is one of:

    * a nucfm checkpoint directory (``config.json`` + ``model.safetensors``);
    * an official RNA-FM ``.pth`` file (e.g. ``RNA-FM_pretrained.pth``);
    * an official GPN Hugging Face directory (``config.json`` with ``model_type: ConvNet``, ``GPN`` or
      ``GPNRoFormer``: ConvNet, ByteNet, RoFormer / GPN-MSA);
    * a task model directory (``format: nucfm-task``): returns a
      :class:`~nucfm.models.task.TaskModel` (``model.predict(seqs)``), see :mod:`.task`;
    * a registered name (``nucfm models`` lists them): shipped with nucfm, found in the cache
      (``$NUCFM_HOME``, default ``~/.cache/nucfm``), or downloaded there when ``download`` is
      true (default: unless ``NUCFM_OFFLINE=1``).

    >>> model = load_model("rna-fm")  # doctest: +SKIP
    """
    path = resolve(name_or_path, download=download)
    if path.is_dir():
        path = _run_model_dir(path)
        config = read_config(path)
        if config.get("format") == FORMAT:
            return _load_nucfm_dir(path)
        if config.get("format") == "nucfm-task":
            from nucfm.checkpoint.task import load_task_model

            return load_task_model(path)
        if config.get("format") == "nucfm-ss":
            raise InputError(f"{path} is a secondary-structure model, not a language model: use `nucfm fold "
                             "--model` or nucfm.checkpoint.structure.load_structure_model")
        if config.get("model_type") in ("ConvNet", "GPN", "GPNRoFormer"):
            from nucfm.checkpoint.gpn import load_gpn_dir

            return load_gpn_dir(path)
        raise InputError(f"{path}: {CONFIG_FILE} is neither a nucfm nor a GPN (model_type ConvNet, GPN or "
                         "GPNRoFormer) config")
    if path.suffix in (".pth", ".pt"):
        from nucfm.checkpoint.rnafm import load_rnafm_pth

        return load_rnafm_pth(path)
    raise InputError(f"{path}: not a model (expected a checkpoint directory or an RNA-FM .pth file)")
