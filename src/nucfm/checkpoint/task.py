"""Task-model checkpoints (``format: "nucfm-task"``): a head, and the backbone by name or inline.

``config.json`` holds the :class:`~nucfm.models.task.TaskConfig` under ``"task"`` (task type,
label names, target normalisation, inputs, head) and free ``"metadata"`` (kind ``task``,
training record). ``model.safetensors`` holds ``head.*`` and, when the backbone was fine-tuned
(full or LoRA, adapters merged) or is not a registered model, ``backbone.*`` with its model config
under ``"backbone_model"``. A frozen registered backbone is referenced by name and weights
fingerprint: loading checks the fingerprint and, when the backbone is missing, says which one to
get.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from nucfm.errors import InputError, ModelNotFoundError
from nucfm.models.task import TaskConfig, TaskHead, TaskModel

TASK_FORMAT = "nucfm-task"
TASK_FORMAT_VERSION = 1


def save_task_model(model: TaskModel, path: str | Path, metadata: dict | None = None,
                    dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` (head, plus the backbone when ``config.backbone_stored``) atomically."""
    from nucfm.checkpoint import unwrap, write_checkpoint_dir

    cfg = model.config
    doc: dict = {"format": TASK_FORMAT, "format_version": TASK_FORMAT_VERSION, "task": cfg.to_dict()}
    module = torch.nn.Module()
    module.head = model.head
    if cfg.backbone_stored:
        bb = unwrap(model.backbone)
        module.backbone = bb
        doc["backbone_model"] = bb.config.to_dict()
    if metadata:
        doc["metadata"] = metadata
    return write_checkpoint_dir(path, module, doc, dtype=dtype)


def is_task_dir(path: Path) -> bool:
    try:
        return json.loads((path / "config.json").read_text()).get("format") == TASK_FORMAT
    except (OSError, ValueError):
        return False


def _named_backbone(cfg: TaskConfig):
    from nucfm.checkpoint import fingerprint, load_model

    try:
        bb = load_model(cfg.backbone)
    except ModelNotFoundError as e:
        raise ModelNotFoundError(f"this task model needs the backbone {cfg.backbone!r} (weights fingerprint "
                                 f"{cfg.backbone_fingerprint}), which is not on this machine: {e}") from None
    if cfg.backbone_fingerprint and fingerprint(bb) != cfg.backbone_fingerprint:
        raise InputError(f"the backbone {cfg.backbone!r} found here has weights fingerprint {fingerprint(bb)}, but "
                         f"the task model was trained on {cfg.backbone_fingerprint}; get those weights")
    return bb


def load_task_model(path: str | Path) -> TaskModel:
    """A :class:`TaskModel` (eval mode, float32, CPU) from a task checkpoint directory."""
    from nucfm.checkpoint import build_model, config_section, load_weights, read_config, read_weights

    path = Path(path)
    doc = read_config(path)
    if doc.get("format") != TASK_FORMAT:
        raise InputError(f"{path}: not a nucfm task model (config.json format {TASK_FORMAT!r})")
    if doc.get("format_version", 0) > TASK_FORMAT_VERSION:
        raise InputError(f"{path}: task format version {doc['format_version']} is newer than this nucfm")
    cfg = TaskConfig.from_dict(config_section(doc, "task", path))
    state = read_weights(path)
    head = TaskHead(cfg)
    load_weights(head, {k[5:]: v for k, v in state.items() if k.startswith("head.")}, path)
    backbone = None
    if cfg.backbone_stored:
        backbone = build_model(config_section(doc, "backbone_model", path))
        load_weights(backbone, {k[9:]: v for k, v in state.items() if k.startswith("backbone.")}, path)
    elif cfg.backbone_mode != "none":
        backbone = _named_backbone(cfg)
    return TaskModel(cfg, head, backbone).eval()
