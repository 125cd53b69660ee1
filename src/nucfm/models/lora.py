"""LoRA adapters on a language model (peft), and merging them back into plain weights.

Only the adapters train; :func:`merge_lora` returns a plain model of the same class whose weights
are ``W + (alpha / r) B A``, so a task model saved from it needs neither peft nor the adapters.
"""

from __future__ import annotations

import torch

from nucfm.errors import InputError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")


def add_lora(model: torch.nn.Module, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0,
             targets: tuple[str, ...] = DEFAULT_TARGETS) -> torch.nn.Module:
    """Inject LoRA adapters into ``model`` in place; every other weight is frozen."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError:
        raise InputError("backbone_mode lora needs peft: pip install 'nucfm[finetune]'") from None
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in targets if t in present]
    if not targets:
        raise InputError(f"LoRA: the backbone has none of the layers {', '.join(DEFAULT_TARGETS)}")
    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
    model = inject_adapter_in_model(cfg, model)
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name
    return model


def merge_lora(model: torch.nn.Module) -> torch.nn.Module:
    """A plain copy of a LoRA-injected model with the adapters merged into its weights."""
    from peft.tuners.lora import LoraLayer

    deltas = {name: mod.get_delta_weight("default") for name, mod in model.named_modules()
              if isinstance(mod, LoraLayer)}
    state = {k.replace(".base_layer.", "."): v for k, v in model.state_dict().items() if "lora_" not in k}
    for name, d in deltas.items():
        state[f"{name}.weight"] = state[f"{name}.weight"] + d.detach()
    plain = type(model)(model.config)
    plain.load_state_dict(state, strict=True)
    return plain.eval()
