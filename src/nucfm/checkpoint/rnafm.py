"""Converter for the official RNA-FM and mRNA-FM checkpoints (``RNA-FM_pretrained.pth``,
``mRNA-FM_pretrained.pth``; fairseq layout).

Both are the same ``roberta_large`` encoder; the vocabulary tells them apart: 25 nucleotide tokens
(:data:`nucfm.alphabet.RNA`) or 73 codon tokens (:data:`nucfm.alphabet.CODON`, the ``rna-3mer``
theme of the official ``fm.pretrained.mrna_fm_t12``).

The file is ``{"args": argparse.Namespace(...), "model": state_dict}``. It is read with
``torch.load(weights_only=True)`` allowing only ``argparse.Namespace`` besides tensors, so no
arbitrary object is ever unpickled (the official loader breaks on torch >= 2.6 for this reason).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from nucfm.alphabet import CODON, RNA, Alphabet
from nucfm.errors import InputError
from nucfm.models.config import TransformerConfig
from nucfm.models.transformer import Transformer


def _strip(key: str) -> str:
    for prefix in ("encoder.", "sentence_encoder."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def read_rnafm_pth(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Safely read an official RNA-FM or mRNA-FM ``.pth``; returns (args as dict, renamed state dict)."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused or corrupt file
        raise InputError(f"{path}: not a readable RNA-FM checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(data, dict) or "model" not in data or "args" not in data:
        raise InputError(f"{path}: expected a dict with 'args' and 'model' (the official RNA-FM layout)")
    args = {k.removeprefix("encoder_"): v for k, v in vars(data["args"]).items()}
    state = {_strip(k): v for k, v in data["model"].items()}
    return args, state


def write_rnafm_pth(state: dict[str, torch.Tensor], args: argparse.Namespace, path: str | Path) -> None:
    """Write an ESM-1b-style state dict (``fm.BioBertModel.state_dict()`` names) in the official
    fairseq layout: ``{"args": Namespace, "model": {"encoder.sentence_encoder.<k>" or
    "encoder.<head k>": tensor}}`` — what :func:`read_rnafm_pth` reads back."""
    model = {}
    for k, v in state.items():
        prefix = "encoder." if k.startswith(("lm_head", "contact_head")) else "encoder.sentence_encoder."
        model[prefix + k] = v
    torch.save({"args": args, "model": model}, str(path))


def alphabet_of(state: dict[str, torch.Tensor]) -> Alphabet:
    """The vocabulary of an official checkpoint, told by the size of its token embedding."""
    size = state["embed_tokens.weight"].shape[0]
    for alphabet in (RNA, CODON):
        if size == len(alphabet):
            return alphabet
    raise InputError(f"vocabulary of {size} tokens; expected {len(RNA)} (RNA-FM nucleotides) or "
                     f"{len(CODON)} (mRNA-FM codons)")


def config_from_rnafm(args: dict, state: dict[str, torch.Tensor]) -> TransformerConfig:
    if args.get("arch") != "roberta_large":
        raise InputError(f"unsupported RNA-FM architecture {args.get('arch')!r} (expected 'roberta_large')")
    return TransformerConfig(
        alphabet=alphabet_of(state).name,
        num_layers=int(args["layers"]),
        hidden_size=int(args["embed_dim"]),
        num_heads=int(args["attention_heads"]),
        ffn_size=int(args["ffn_embed_dim"]),
        max_len=int(args["max_positions"]) - 2,
        emb_layer_norm_before=any(k.startswith("emb_layer_norm_before") for k in state),
        token_dropout=bool(args.get("token_dropout", False)),
        contact_head="contact_head.regression.weight" in state,
    )


def load_rnafm_pth(path: str | Path) -> Transformer:
    """Build a :class:`Transformer` from an official RNA-FM or mRNA-FM ``.pth`` with strict key checks."""
    args, state = read_rnafm_pth(path)
    config = config_from_rnafm(args, state)
    state = dict(state)
    state.pop("lm_head.weight", None)  # tied to embed_tokens.weight
    emb = state["embed_tokens.weight"].clone()
    emb[alphabet_of(state).mask_id] = 0.0  # as the official loader does ("for token dropout")
    state["embed_tokens.weight"] = emb
    model = Transformer(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: keys do not match {config.alphabet} (missing {sorted(missing)[:5]}, "
                         f"unexpected {sorted(unexpected)[:5]})")
    return model.eval()
