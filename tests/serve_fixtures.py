"""Tiny models, a tiny genome and an app for the server tests (tests/test_serve*.py)."""

from __future__ import annotations

import dataclasses

import tiny

GENOME = {"chr1": "ACGTTGCAAC" * 30, "chr2": "GGGCCCAATT" * 10}  # 300 bp and 100 bp


def tiny_structure_model():
    """A pair head on the one-hot pair map only (no ViennaRNA, no LM): fast at any length. Nested
    decoding: its random pairs would need more bracket kinds than dot-bracket has."""
    import torch

    from nucfm.models.config import DecodeOptions, PairHeadConfig, StructureConfig
    from nucfm.models.heads import PairHead
    from nucfm.models.structure import StructureModel

    torch.manual_seed(0)
    head_cfg = PairHeadConfig(embed_dim=0, reduction=4, channels=4, blocks=1, extra_channels=16)
    config = StructureConfig(head=head_cfg.to_dict(), features=("onehot",),
                             decode=dataclasses.replace(DecodeOptions(), threshold=0.5, pseudoknots=False).to_dict())
    return StructureModel(PairHead(head_cfg), config, name="tiny-ss")


def write_genome(path) -> str:
    with open(path, "w") as fh:
        for name, seq in GENOME.items():
            fh.write(f">{name}\n{seq}\n")
    return str(path)


def slots(genome_path):
    from nucfm.io.genome import Genome
    from nucfm.serve.resources import GenomeSlot, ModelSlot

    models = [ModelSlot("tiny-ss", "ss", tiny_structure_model()), ModelSlot("tiny-rna", "rna", tiny.rna_model()),
              ModelSlot("tiny-dna", "dna", tiny.dna_model())]
    return models, [GenomeSlot("toy", Genome(genome_path))]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")

