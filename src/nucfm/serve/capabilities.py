"""What the server can do. One :class:`Capability` per task; it is offered (listed by
``/api/capabilities``, shown as a tab of the page) when a model of its kind is loaded, and, for
genome tasks, a genome is configured. Adding a capability (contacts, a function-task head) is one
entry here plus its job body in :mod:`nucfm.serve.work` and its route in :mod:`nucfm.serve.app`;
the page shows a capability it has no form for as a link to its API documentation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capability:
    name: str  # the API path is /api/<name>; the page's tab id
    title: str
    model_kind: str  # registry kind of the models it runs: "ss", "rna", "dna", ...
    description: str
    needs_genome: bool = False
    asynchronous: bool = False  # answers 202 with a job id to poll (long jobs with progress)


CAPABILITIES: tuple[Capability, ...] = (
    Capability("fold", "Fold", "ss", "secondary structure per FASTA record: dot-bracket, pair-probability map, "
               "2D drawing; dbn / BPSEQ / CT downloads"),
    Capability("embed", "Embed", "rna", "per-residue (HDF5) or mean-pooled (Parquet) embeddings of FASTA records",
               asynchronous=True),
    Capability("vep", "Variant effects", "dna", "zero-shot variant scores (masked-LM log-likelihood ratio) "
               "against a configured genome; download in the input's format", needs_genome=True),
    Capability("probs", "Probabilities / logo", "dna", "A/C/G/T distribution at each position of a region of a "
               "configured genome, and its sequence logo", needs_genome=True),
    Capability("contacts", "Contacts", "contact", "3D closeness (contact) probability maps of FASTA records and "
               "their top pairs (as `nucfm contacts`); maps as .npz"),
)


def offered(model_kinds: dict[str, str], genomes) -> list[Capability]:
    """The capabilities the loaded models (``{name: kind}``) and ``genomes`` allow."""
    kinds = set(model_kinds.values())
    return [c for c in CAPABILITIES if c.model_kind in kinds and (not c.needs_genome or genomes)]
