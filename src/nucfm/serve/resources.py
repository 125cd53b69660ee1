"""The models and genomes a server was started with, each loaded once, each with its lock.
Clients name them; nothing a request sends is ever used as a path."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from nucfm.errors import InputError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# ViennaRNA's energy parameters are process-global, and pyplot is not thread-safe: every structure
# model shares one lock, and figures are drawn one at a time.
VIENNA_LOCK = threading.Lock()
PLOT_LOCK = threading.Lock()


@dataclass
class ModelSlot:
    name: str
    kind: str  # "ss", "contact", "rna", "dna" (registry kinds)
    model: object
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.kind in ("ss", "contact"):  # pair features call ViennaRNA, whose energy parameters are global
            self.lock = VIENNA_LOCK

    def info(self) -> dict:
        m = self.model
        out = {"name": self.name, "kind": self.kind}
        for attr in ("num_layers", "hidden_size", "max_len"):
            if getattr(m, attr, None) is not None:
                out[attr] = getattr(m, attr)
        if self.kind == "ss":
            out["threshold"] = m.decode_options.threshold
        return out


@dataclass
class GenomeSlot:
    name: str
    genome: object  # nucfm.io.genome.Genome
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self, max_contigs: int = 200) -> dict:
        contigs = [{"name": k, "length": n} for k, n in list(self.genome.lengths.items())[:max_contigs]]
        return {"name": self.name, "contigs": contigs, "n_contigs": len(self.genome.lengths)}


def model_kind(model) -> str:
    """Registry kind of a loaded model object."""
    from nucfm.models.structure import StructureModel

    if isinstance(model, StructureModel):
        return "contact" if model.config.task == "contact" else "ss"
    if getattr(model.alphabet, "kmer", 1) > 1:
        return "codon"  # mRNA-FM: no page capability reads codons yet
    return "rna" if getattr(model.alphabet, "name", "") == "rna-fm" else "dna"


def load_model_slot(name: str, device=None) -> ModelSlot:
    """A registered name or a path, loaded as a language model or a structure model."""
    from nucfm.checkpoint import load_model, registry
    from nucfm.checkpoint.structure import is_structure_dir, load_structure_model

    entry = registry.MODELS.get(str(name))
    path = Path(name)
    if entry is None and not path.exists():
        raise InputError(f"unknown model {name!r}: not a file or directory, nor a name of `nucfm models`")
    if (entry is not None and entry.kind in ("ss", "contact")) or (
            entry is None and path.is_dir() and is_structure_dir(path)):
        model = load_structure_model(name)
    elif entry is None and path.is_file() and "ResNet" in path.name:  # an official RNA-FM SS head .pth
        model = load_structure_model(name)
    else:
        model = load_model(name).eval()
    if device is not None:
        model = model.to(device)
    return ModelSlot(str(name) if entry is not None else path.name.removesuffix(".pth"), model_kind(model), model)


def parse_genome_spec(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (name, path); the name is what clients use."""
    name, sep, path = spec.partition("=")
    if not sep or not path:
        raise InputError(f"--genome {spec!r}: expected NAME=PATH (e.g. tair10=TAIR10.fa.gz)")
    if not NAME.fullmatch(name):
        raise InputError(f"--genome {spec!r}: a genome name is letters, digits and _.+- (up to 64)")
    return name, path


def load_genome_slot(spec: str) -> GenomeSlot:
    from nucfm.io.genome import Genome

    name, path = parse_genome_spec(spec)
    return GenomeSlot(name, Genome(path))
