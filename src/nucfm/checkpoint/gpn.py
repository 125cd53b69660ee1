"""Converters for official GPN Hugging Face directories: the legacy ``ConvNet`` format
(``songlab/gpn-brassicales``) and the current ``GPN`` format (``gpn.model.GPNForMaskedLM``:
ConvNet, ByteNet and RoFormer / GPN-MSA encoders, :class:`nucfm.models.gpn.GPN`).

A directory holds ``config.json`` (``model_type: "ConvNet"`` or ``"GPN"``) and ``model.safetensors`` (or a
sharded ``model.safetensors.index.json``, or a legacy ``pytorch_model.bin`` read with
``torch.load(weights_only=True)`` so no arbitrary object is unpickled). Official keys
``model.encoder.{i}.conv.1`` (Conv1d), ``conv.4`` (LayerNorm), ``ffn.0`` (Linear), ``ffn.2``
(LayerNorm) and ``cls.decoder.{0,2,3}`` map one-to-one onto :class:`nucfm.models.convnet.ConvNet`;
the ``GPN`` format's keys are renamed by :data:`_GPN_KEYS`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from nucfm.alphabet import DNA
from nucfm.errors import InputError
from nucfm.models.config import ConvNetConfig, GPNConfig
from nucfm.models.convnet import ConvNet
from nucfm.models.gpn import GPN

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


def _load_state(path: Path, model: torch.nn.Module, rename, what: str) -> None:
    """Load the official weights of ``path`` into ``model`` through ``rename`` (official key ->
    ours, or None), strict about keys and shapes."""
    state, unexpected = {}, []
    for k, v in read_gpn_weights(path).items():
        new = rename(k)
        if new == "_drop":
            continue
        if new is None:
            unexpected.append(k)
        else:
            state[new] = v.float() if v.is_floating_point() else v
    missing = sorted(set(model.state_dict()) - set(state))
    if missing or unexpected:
        raise InputError(f"{path}: keys do not match GPN {what} (missing {missing[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: weight shapes do not match its config.json ({e})") from e


def load_gpn_dir(path: str | Path) -> ConvNet | GPN:
    """Build a model (eval mode, float32) from an official GPN HF directory, legacy ``ConvNet``
    or current ``GPN`` format, with strict key and shape checks; a damaged config.json or weight file
    is a one-line error naming it."""
    from nucfm.checkpoint import read_config

    path = Path(path)
    hf = read_config(path)
    if hf.get("model_type") in ("GPN", "GPNRoFormer"):
        legacy = hf["model_type"] == "GPNRoFormer"
        model = GPN(config_from_gpn_current(hf))
        rename = rename_gpn_current_key
        if legacy:
            weights = read_gpn_weights(path)
            # RoFormer's MLM head keeps an output bias twice (tied in the transformers that saved it):
            # the decoder's is the one its forward pass adds
            drop = "cls.predictions.bias" if "cls.predictions.decoder.bias" in weights else None

            def rename(k):
                if k == drop:
                    return "_drop"
                return rename_gpn_current_key(_LEGACY_HEAD.get(k, k))
        _load_state(path, model, rename, "GPNRoFormerForMaskedLM" if legacy
                    else f"GPNForMaskedLM ({model.config.encoder})")
        return model.eval()
    unknown = set(hf) - _IGNORED_KEYS - {"vocab_size", "hidden_size", "n_layers", "kernel_size", "n_aux_features",
                                         "dilation_double_every", "dilation_max", "dilation_cycle", "dilation_base"}
    config = config_from_gpn(hf)
    model = ConvNet(config)
    _load_state(path, model, rename_gpn_key, "ConvNetForMaskedLM")
    if unknown:
        import logging

        logging.getLogger("nucfm").debug("GPN config keys ignored: %s", sorted(unknown))
    return model.eval()


# ---- the current format: gpn.model.GPNConfig / GPNForMaskedLM -----------------------------------
_GPN_KEYS = [  # (official key pattern, our name); {i} = layer index
    (r"model\.embeddings\.word_embeddings", "word_embeddings"),
    (r"model\.encoder\.layer\.(\d+)\.conv\.0", "layers.{i}.conv_norm"),  # convnet
    (r"model\.encoder\.layer\.(\d+)\.conv\.2", "layers.{i}.conv.conv"),
    (r"model\.encoder\.layer\.(\d+)\.conv\.5", "layers.{i}.conv_out"),
    (r"model\.encoder\.layer\.(\d+)\.ffn\.0", "layers.{i}.ffn_norm"),
    (r"model\.encoder\.layer\.(\d+)\.ffn\.1", "layers.{i}.ffn_in"),
    (r"model\.encoder\.layer\.(\d+)\.ffn\.3", "layers.{i}.ffn_out"),
    (r"model\.encoder\.layer\.(\d+)\.layer\.0", "layers.{i}.norm_in"),  # bytenet
    (r"model\.encoder\.layer\.(\d+)\.layer\.2", "layers.{i}.down"),
    (r"model\.encoder\.layer\.(\d+)\.layer\.3", "layers.{i}.norm_mid"),
    (r"model\.encoder\.layer\.(\d+)\.layer\.6", "layers.{i}.conv.conv"),
    (r"model\.encoder\.layer\.(\d+)\.layer\.8", "layers.{i}.norm_out"),
    (r"model\.encoder\.layer\.(\d+)\.layer\.10", "layers.{i}.up"),
    (r"model\.encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)", "layers.{i}.{m}"),  # roformer
    (r"model\.encoder\.layer\.(\d+)\.attention\.output\.dense", "layers.{i}.attn_out"),
    (r"model\.encoder\.layer\.(\d+)\.attention\.output\.LayerNorm", "layers.{i}.attn_norm"),
    (r"model\.encoder\.layer\.(\d+)\.intermediate\.dense", "layers.{i}.ffn_in"),
    (r"model\.encoder\.layer\.(\d+)\.output\.dense", "layers.{i}.ffn_out"),
    (r"model\.encoder\.layer\.(\d+)\.output\.LayerNorm", "layers.{i}.ffn_norm"),
    (r"model\.ln_f", "final_norm"),
    (r"cls\.transform\.([02])", "head_transform.{i}"),
    (r"cls\.decoder", "decoder"),
]

_LEGACY_HEAD = {  # GPNRoFormerForMaskedLM's RoFormer MLM head -> the GPN format's names
    "cls.predictions.transform.dense.weight": "cls.transform.0.weight",
    "cls.predictions.transform.dense.bias": "cls.transform.0.bias",
    "cls.predictions.transform.LayerNorm.weight": "cls.transform.2.weight",
    "cls.predictions.transform.LayerNorm.bias": "cls.transform.2.bias",
    "cls.predictions.decoder.weight": "cls.decoder.weight",
    "cls.predictions.decoder.bias": "cls.decoder.bias",
    "cls.predictions.bias": "cls.decoder.bias",
}


def rename_gpn_current_key(key: str) -> str | None:
    """Our parameter name for a key of an official ``GPNForMaskedLM``, or None."""
    if key == "model.encoder.embed_positions.weight":  # RoFormer's sinusoid table, a buffer of ours
        return "rotary"
    for pattern, name in _GPN_KEYS:
        m = re.fullmatch(pattern + r"\.(weight|bias)", key)
        if m:
            groups = m.groups()
            return name.format(i=groups[0], m=groups[1] if len(groups) > 2 else "") + "." + groups[-1]
    return None


def config_from_gpn_current(hf: dict) -> GPNConfig:
    """Our :class:`GPNConfig` from an official ``model_type: GPN`` ``config.json`` dict; refuses
    settings that would change the computation in ways the official model does not support."""
    if hf.get("model_type") == "GPNRoFormer":  # the legacy class of the released GPN-MSA
        return GPNConfig(
            alphabet="gpn-msa", encoder="roformer", embedding="one_hot",
            num_layers=int(hf.get("num_hidden_layers", 12)), hidden_size=int(hf.get("hidden_size", 768)),
            intermediate_size=int(hf.get("intermediate_size", 3072)), bias=True, mlm_head_transform=True,
            num_heads=int(hf.get("num_attention_heads", 12)), max_len=int(hf.get("max_position_embeddings", 1536)),
            rotary_value=bool(hf.get("rotary_value", False)), layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
            n_aux_features=int(hf.get("n_aux_features", 0)),
            aux_features_vocab_size=int(hf.get("aux_features_vocab_size") or 5), final_norm=False,
            head_layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)))
    vocab = int(hf.get("vocab_size", 7))
    alphabets = {7: "gpn", 6: "gpn-msa"}
    if vocab not in alphabets:
        raise InputError(f"vocab_size {vocab} is neither GPN's 7 tokens nor GPN-MSA's 6")
    if hf.get("hidden_act", "gelu") != "gelu":
        raise InputError(f"hidden_act {hf.get('hidden_act')!r}: only GPN's exact GELU is supported")
    if hf.get("tie_word_embeddings"):
        raise InputError("tie_word_embeddings: GPN models with a tied MLM decoder are not supported")
    if hf.get("n_aux_features") and hf.get("aux_features_vocab_size") is None:
        raise InputError("auxiliary features given as raw numbers (aux_features_vocab_size null) are not supported")
    return GPNConfig(
        alphabet=alphabets[vocab],
        encoder=hf.get("encoder", "convnet"),
        embedding=hf.get("embedding", "one_hot"),
        num_layers=int(hf.get("num_hidden_layers", 25)),
        hidden_size=int(hf.get("hidden_size", 512)),
        intermediate_size=int(hf.get("intermediate_size", 2048)),
        bias=bool(hf.get("bias", False)),
        mlm_head_transform=bool(hf.get("mlm_head_transform", True)),
        slim=bool(hf.get("slim", False)),
        first_kernel_size=int(hf.get("first_kernel_size", 9)),
        rest_kernel_size=int(hf.get("rest_kernel_size", 5)),
        dilation_double_every=int(hf.get("dilation_double_every", 1)),
        dilation_max=int(hf.get("dilation_max", 9999)),
        dilation_cycle=int(hf.get("dilation_cycle", 8)),
        dilation_base=int(hf.get("dilation_base", 2)),
        depthwise=bool(hf.get("depthwise", False)),
        num_heads=int(hf.get("num_attention_heads", 12)),
        max_len=int(hf.get("max_position_embeddings", 1536)),
        rotary_value=bool(hf.get("rotary_value", False)),
        layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)),
        n_aux_features=int(hf.get("n_aux_features", 0)),
        aux_features_vocab_size=int(hf.get("aux_features_vocab_size") or 5),
    )
