"""A structure model: a pair head, the language model it reads (if any) and its pair features.

``StructureModel.predict_probs(seqs)`` gives (L, L) base-pair probabilities; turning them into a
structure (decoding) is :mod:`nucfm.tasks.structure`; the checkpoint format and the official
RNA-FM heads are :mod:`nucfm.checkpoint.structure`.
"""

from __future__ import annotations

import numpy as np
import torch

from nucfm.alphabet import structure_letters
from nucfm.data.structure_features import BPP_PARAMS, bpp_maps, pair_features
from nucfm.errors import InputError
from nucfm.models.config import DecodeOptions, StructureConfig
from nucfm.models.heads import PairHead


class StructureModel:
    """A pair head, its optional language model and decoding options.

    >>> model = load_structure_model("nucfm-ss-res8x24-vienna3-bprna")  # doctest: +SKIP
    >>> probs = model.predict_probs(["GGGAAACUUCGGUUUCCC"])[0]  # (18, 18)  # doctest: +SKIP
    """

    def __init__(self, head: PairHead, config: StructureConfig, lm=None, name: str | None = None):
        self.head = head.eval()
        self.config = config
        self.lm = lm if config.lm is not None else None
        self.name = name
        if config.lm is not None and lm is None:
            raise InputError(f"structure model needs language model {config.lm!r}")
        if self.lm is not None and self.lm.hidden_size != config.lm_hidden_size:
            raise InputError(f"the head reads {config.lm_hidden_size}-dim embeddings but the language model "
                             f"has {self.lm.hidden_size}")

    @property
    def decode_options(self) -> DecodeOptions:
        return self.config.decode_options

    def to(self, device) -> StructureModel:
        self.head.to(device)
        if self.lm is not None:
            self.lm.to(device)
        return self

    def inputs(self, seqs: list[str], embeddings=None, bpps=None) -> list[tuple]:
        """Head inputs per sequence (structure letters): (embedding (L, D) or None, pair
        features (C, L, L) or None). ``bpps``: optional precomputed ``{feature: (L, L)}`` dicts."""
        if self.lm is not None and embeddings is None:
            embeddings = self.lm.embed(seqs, layer=self.config.lm_layer)
        features = self.config.features
        if bpps is None and any(f in BPP_PARAMS for f in features):
            bpps = bpp_maps(seqs, features)
        out = []
        for k, s in enumerate(seqs):
            e = embeddings[k] if embeddings is not None else None
            f = pair_features(s, features, bpps[k] if bpps is not None else None) if features else None
            out.append((e, f))
        return out

    @torch.inference_mode()
    def predict_probs(self, seqs: list[str], embeddings=None, bpps=None, chunk: int = 16) -> list[np.ndarray]:
        """(L, L) float32 symmetric pair probabilities per sequence (sigmoid of the head's
        logits). Sequences are read with :func:`nucfm.alphabet.structure_letters`. Inputs are
        built ``chunk`` sequences at a time, so memory holds one chunk's pair features."""
        if isinstance(seqs, str):
            raise TypeError("seqs must be a list of sequences, not a single string")
        seqs = [structure_letters(s) for s in seqs]
        device = next(self.head.parameters()).device
        probs = []
        for c in range(0, len(seqs), chunk):
            part = seqs[c : c + chunk]
            e_part = None if embeddings is None else embeddings[c : c + chunk]
            b_part = None if bpps is None else bpps[c : c + chunk]
            for s, (e, f) in zip(part, self.inputs(part, e_part, b_part)):
                if len(s) == 0:
                    probs.append(np.zeros((0, 0), dtype=np.float32))
                    continue
                et = None if e is None else torch.as_tensor(np.asarray(e, dtype=np.float32), device=device)[None]
                ft = None if f is None else torch.as_tensor(f, device=device)[None]
                p = torch.sigmoid(self.head(et, ft))[0].float().cpu().numpy()
                probs.append(np.triu(p) + np.triu(p, 1).T)  # exactly symmetric, whatever the SIMD lanes did
        return probs
