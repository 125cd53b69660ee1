"""Structure-model checkpoints (pair head + which LM + decoding) and the official RNA-FM SS head.

A structure checkpoint is a directory: ``config.json`` with ``format: "nucfm-ss"``, the
:class:`~nucfm.models.config.StructureConfig` under ``"structure"`` and free ``"metadata"``
(``kind: "ss"``, description, default, training record), and ``model.safetensors`` with the head
weights only; the language model is loaded by name (``load_model``) when the head needs one.

Official RNA-FM SS heads (``RNA-FM-ResNet_*.pth``: the whole fine-tuned model, LM under
``backbone.``, head under ``downstream_modules.pc-resnet_1_sym_first:r-ss.``) are converted by
:func:`convert_rnafm_ss_state`, parity-tested against ``fm.downstream``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nucfm.checkpoint.registry import RNAFM_SS_THRESHOLDS  # the published thresholds of the official heads
from nucfm.errors import InputError
from nucfm.models.config import DecodeOptions, PairHeadConfig, StructureConfig
from nucfm.models.heads import PairHead
from nucfm.models.structure import StructureModel

SS_FORMAT = "nucfm-ss"
SS_FORMAT_VERSION = 1
RNAFM_SS_PREFIX = "downstream_modules.pc-resnet_1_sym_first:r-ss."


def save_structure_model(head: PairHead, config: StructureConfig, path: str | Path,
                         metadata: dict | None = None) -> Path:
    """Write a structure checkpoint directory (head weights float32 + config), atomically."""
    from nucfm.checkpoint import write_checkpoint_dir

    if config.head_config != head.config:
        raise ValueError("config.head does not describe this head")
    doc = {"format": SS_FORMAT, "format_version": SS_FORMAT_VERSION, "structure": config.to_dict()}
    if metadata:
        doc["metadata"] = metadata
    return write_checkpoint_dir(path, head, doc)


def is_structure_dir(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text()).get("format") == SS_FORMAT
    except (OSError, ValueError):
        return False


def load_structure_model(name_or_path: str | Path, lm=None) -> StructureModel:
    """A :class:`~nucfm.models.structure.StructureModel` from a checkpoint directory, a
    registered name (``nucfm models`` lists kind ``ss``; the official heads ``rna-fm-ss-bprna``
    and ``rna-fm-ss-pdb`` decode with their own published thresholds) or an official
    ``RNA-FM-ResNet_*.pth`` (decoded with the bpRNA head's threshold). ``lm`` overrides the
    language model the checkpoint names (same hidden size)."""
    from nucfm.checkpoint import config_section, load_model, load_weights, read_config, read_weights, registry, resolve

    path = resolve(name_or_path, what="structure model")
    entry = registry.MODELS.get(str(name_or_path)) if not Path(name_or_path).exists() else None
    threshold = entry.threshold if entry is not None and entry.threshold is not None else RNAFM_SS_THRESHOLDS["bprna"]
    if path.is_file() and path.suffix in (".pth", ".pt"):
        # an official RNA-FM-ResNet_*.pth: trained on the frozen pretrained RNA-FM, so the LM is "rna-fm"
        head, config = load_rnafm_ss_pth(path, threshold)
        return StructureModel(head, config, lm=lm if lm is not None else load_model(config.lm), name=str(name_or_path))
    doc = read_config(path) if path.is_dir() and (path / "config.json").exists() else {}
    if doc.get("format") != SS_FORMAT:
        raise InputError(f"{path}: not a nucfm structure model (config.json format {SS_FORMAT!r})")
    if doc.get("format_version", 0) > SS_FORMAT_VERSION:
        raise InputError(f"{path}: structure format version {doc['format_version']} is newer than this nucfm")
    config = StructureConfig.from_dict(config_section(doc, "structure", path))
    head = PairHead(config.head_config)
    load_weights(head, read_weights(path), path)
    if config.lm is not None and lm is None:
        local = path / config.lm
        lm = load_model(local if local.exists() else config.lm)
    return StructureModel(head, config, lm=lm, name=str(name_or_path))


def convert_rnafm_ss_state(state: dict[str, torch.Tensor], threshold: float = RNAFM_SS_THRESHOLDS["bprna"]):
    """(PairHead, StructureConfig) from the state dict of an official RNA-FM SS model.

    Sizes (embedding dim, reduction, channels, blocks) are read from the weights. Keys outside
    the head (the ``backbone.`` LM) are ignored here; the LM is the official ``rna-fm``.
    """
    sub = {k[len(RNAFM_SS_PREFIX):]: v for k, v in state.items() if k.startswith(RNAFM_SS_PREFIX)}
    if not sub:
        raise InputError(f"not an RNA-FM SS head: no keys under {RNAFM_SS_PREFIX!r}")
    reduction, embed_dim = sub["pre_reduction.weight"].shape
    channels = sub["proj.first.0.weight"].shape[0]
    blocks = len({k.split(".")[2] for k in sub if k.startswith("proj.resnet.")})
    cfg = PairHeadConfig(embed_dim=embed_dim, reduction=reduction, channels=channels, blocks=blocks)
    rename = {"pre_reduction.": "pre_reduction.", "proj.first.0.": "first.", "proj.resnet.": "blocks.",
              "proj.final.": "final."}
    ours = {}
    for k, v in sub.items():
        for old, new in rename.items():
            if k.startswith(old):
                ours[new + k[len(old):]] = v.float()
                break
        else:
            raise InputError(f"unexpected key in RNA-FM SS head: {k}")
    head = PairHead(cfg)
    head.load_state_dict(ours, strict=True)
    config = StructureConfig(head=cfg.to_dict(), lm="rna-fm", lm_hidden_size=embed_dim, lm_layer=-1,
                             decode=DecodeOptions(method="greedy", threshold=threshold, min_hairpin=0).to_dict())
    return head.eval(), config


def load_rnafm_ss_pth(path: str | Path, threshold: float = RNAFM_SS_THRESHOLDS["bprna"]):
    """Convert an official ``RNA-FM-ResNet_*.pth`` file (a plain state dict)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return convert_rnafm_ss_state(state, threshold)
