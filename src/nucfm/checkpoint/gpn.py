"""Converter for official GPN Hugging Face directories (``songlab/gpn-brassicales`` layout).

A directory holds ``config.json`` (``model_type: "ConvNet"``) and ``model.safetensors`` (or a
sharded ``model.safetensors.index.json``, or a legacy ``pytorch_model.bin`` read with
``torch.load(weights_only=True)`` so no arbitrary object is unpickled). Official keys
``model.encoder.{i}.conv.1`` (Conv1d), ``conv.4`` (LayerNorm), ``ffn.0`` (Linear), ``ffn.2``
(LayerNorm) and ``cls.decoder.{0,2,3}`` map one-to-one onto :class:`nucfm.models.convnet.ConvNet`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from nucfm.alphabet import DNA
from nucfm.errors import InputError
from nucfm.models.config import ConvNetConfig
from nucfm.models.convnet import ConvNet

# Official ConvNetConfig keys that do not change the masked-LM computation (training or
# classification-head settings, HF bookkeeping).
_IGNORED_KEYS = {
    "architectures", "model_type", "transformers_version", "torch_dtype", "dtype", "initializer_range",
    "hidden_dropout_prob", "hidden_act", "regression_softplus", "aux_features_vocab_size", "_name_or_path",
    "auto_map", "id2label", "label2id", "problem_type", "pad_token_id", "bos_token_id", "eos_token_id",
}
_LAYER_KEYS = {"conv.1": "conv", "conv.4": "conv_norm", "ffn.0": "ffn", "ffn.2": "ffn_norm"}
_HEAD_KEYS = {"0": "dense", "2": "norm", "3": "decoder"}


def config_from_gpn(hf: dict) -> ConvNetConfig:
    """Our :class:`ConvNetConfig` from an official ``config.json`` dict (rejects features we do
    not reproduce, e.g. auxiliary input features)."""
    if hf.get("model_type") != "ConvNet":
        raise InputError(f"model_type {hf.get('model_type')!r} is not the GPN ConvNet")
    if int(hf.get("n_aux_features", 0)):
        raise InputError("GPN models with auxiliary input features (n_aux_features > 0) are not supported")
    if int(hf.get("vocab_size", 7)) != len(DNA):
        raise InputError(f"vocab_size {hf.get('vocab_size')} differs from GPN's 7-token DNA vocabulary")
    return ConvNetConfig(
        alphabet=DNA.name,
        num_layers=int(hf.get("n_layers", 25)),
        hidden_size=int(hf.get("hidden_size", 512)),
        kernel_size=int(hf.get("kernel_size", 9)),
        dilation_double_every=int(hf.get("dilation_double_every", 1)),
        dilation_max=int(hf.get("dilation_max", 32)),
        dilation_cycle=int(hf.get("dilation_cycle", 6)),
        dilation_base=int(hf.get("dilation_base", 2)),
    )


def read_gpn_weights(path: Path) -> dict[str, torch.Tensor]:
    """The official state dict of a GPN directory, whichever of the HF weight files it has; a
    truncated or garbled file is an InputError naming it."""
    from nucfm.checkpoint import damage_hint, load_safetensors

    if (path / "model.safetensors").exists():
        return load_safetensors(path / "model.safetensors")
    index = path / "model.safetensors.index.json"
    if index.exists():
        try:
            files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{index}: damaged: not a weight index (JSON with a weight_map)"
                             f"{damage_hint(index)}") from None
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_safetensors(path / f))
        return state
    if (path / "pytorch_model.bin").exists():
        try:
            return torch.load(str(path / "pytorch_model.bin"), map_location="cpu", weights_only=True)
        except Exception as e:
            raise InputError(f"{path / 'pytorch_model.bin'}: not a plain tensor state dict "
                             f"({type(e).__name__}: {e})") from e
    raise InputError(f"{path}: no model.safetensors or pytorch_model.bin next to config.json")


def rename_gpn_key(key: str) -> str | None:
    """Our parameter name for an official key, or None for a key we do not know."""
    m = re.fullmatch(r"model\.encoder\.(\d+)\.(conv\.1|conv\.4|ffn\.0|ffn\.2)\.(weight|bias)", key)
    if m:
        return f"layers.{m[1]}.{_LAYER_KEYS[m[2]]}.{m[3]}"
    m = re.fullmatch(r"cls\.decoder\.([023])\.(weight|bias)", key)
    if m:
        return f"lm_head.{_HEAD_KEYS[m[1]]}.{m[2]}"
    return None


def load_gpn_dir(path: str | Path) -> ConvNet:
    """Build a :class:`ConvNet` (eval mode, float32) from an official GPN HF directory, with
    strict key and shape checks."""
    from nucfm.checkpoint import read_config

    path = Path(path)
    hf = read_config(path)
    unknown = set(hf) - _IGNORED_KEYS - {"vocab_size", "hidden_size", "n_layers", "kernel_size", "n_aux_features",
                                         "dilation_double_every", "dilation_max", "dilation_cycle", "dilation_base"}
    config = config_from_gpn(hf)
    model = ConvNet(config)
    state, unexpected = {}, []
    for k, v in read_gpn_weights(path).items():
        new = rename_gpn_key(k)
        if new is None:
            unexpected.append(k)
        else:
            state[new] = v.float() if v.is_floating_point() else v
    missing = sorted(set(model.state_dict()) - set(state))
    if missing or unexpected:
        raise InputError(f"{path}: keys do not match GPN ConvNetForMaskedLM (missing {missing[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: weight shapes do not match its config.json ({e})") from e
    if unknown:
        import logging

        logging.getLogger("nucfm").debug("GPN config keys ignored: %s", sorted(unknown))
    return model.eval()
