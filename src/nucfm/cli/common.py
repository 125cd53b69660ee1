"""Argument types, the common options and the checks every subcommand makes before it works."""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager, nullcontext
from pathlib import Path

from nucfm.errors import InputError, NucfmError
from nucfm.paths import make_parent

PRECISION_CHOICES = ("fp32", "bf16", "fp16")  # the keys of nucfm.inference.PRECISIONS (torch not imported here)


# ---- argument types: bad values are one-line usage errors ---------------------------------------
def _number(text: str, kind, what: str):
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_int(text: str) -> int:
    """An integer >= 1."""
    v = _number(text, int, "an integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def nonnegative_int(text: str) -> int:
    """An integer >= 0."""
    v = _number(text, int, "an integer")
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return v


def probability(text: str) -> float:
    """A number in [0, 1]."""
    v = _number(text, float, "a number")
    if not 0.0 <= v <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} must be in [0, 1]")
    return v


def positive_float(text: str) -> float:
    v = _number(text, float, "a number")
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return v


def device_name(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (checked against the machine later)."""
    kind, _, index = text.partition(":")
    if kind not in ("auto", "cpu", "cuda", "mps") or (index and not (kind == "cuda" and index.isdigit())):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:N or mps")
    return text


# ---- the common options ---------------------------------------------------------------------------
def add_common(p, model_kind: str | None = None, input_help: str | None = None, input_names: tuple = (),
               input_required: bool = True, output_help: str | None = None, output_names: tuple = (),
               output_required: bool = True, device: bool = False, progress: bool = False, threads: bool = True,
               precision: bool | None = None):
    """The options every subcommand spells the same way: ``-i/--input`` (plus the older names in
    ``input_names``), ``-o/--output``, ``-m/--model`` (``model_kind``: rna, dna, ss or any),
    ``--threads``, ``--device``, ``--precision`` (with ``--device`` unless ``precision=False``;
    applied by :func:`inference_scope`) and ``--no-progress``."""
    if input_help is not None:
        p.add_argument("-i", "--input", *input_names, dest="input", required=input_required, help=input_help)
    if output_help is not None:
        p.add_argument("-o", "--output", *output_names, dest="output", required=output_required, help=output_help)
    if model_kind is not None:
        default = "required" if model_kind == "any" else f"default: the shipped {model_kind.upper()} model"
        p.add_argument("-m", "--model", default=None, required=model_kind == "any",
                       help=f"model name or path ({default}; see `nucfm models`)")
    if threads:
        p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch (default: all)")
    if device:
        p.add_argument("--device", type=device_name, default="auto",
                       help="torch device: auto (CUDA if available, default), cpu, cuda, cuda:N, mps")
    if device and precision is not False:
        p.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                       help="arithmetic of the model: fp32 (default, exact), bf16 or fp16 (autocast; faster on "
                       "a GPU, outputs differ in the 2nd-3rd digit; fp16 needs a GPU)")
    if progress:
        p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_frame_options(p) -> None:
    """How a codon model (mRNA-FM) reads each record: as a whole CDS (default), from a frame, or its
    longest ORF (:func:`nucfm.data.cds.prepare_cds`)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--frame", type=int, choices=(1, 2, 3), default=None,
                   help="codon models: read each record from base 1, 2 or 3, dropping a partial last codon "
                        "(default: the record is the CDS, its length a multiple of 3)")
    g.add_argument("--longest-orf", action="store_true",
                   help="codon models: read the longest AUG...stop open reading frame of each record")


def add_recipe_options(p, config_help: str, overrides_example: str, output_help: str,
                       config_required: bool = False) -> None:
    """The options of every training recipe (``pretrain``, ``train-ss``, ``finetune``): a YAML
    config, ``KEY=VALUE`` overrides, the run directory, ``--print-config`` and ``--restart`` (the
    resume convention: rerunning the same config resumes)."""
    p.add_argument("-c", "--config", "-i", "--input", dest="config", required=config_required, default=None,
                   help=config_help)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"config overrides, e.g. {overrides_example}")
    p.add_argument("-o", "--output", default=None, help=output_help)
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--restart", action="store_true", help="discard an earlier run in the output and start over")


def require_analysis(command: str, modules: tuple[str, ...]) -> None:
    """The analysis extra's libraries ``command`` imports are installed (checked, not imported)."""
    from importlib.util import find_spec

    missing = [m for m in modules if find_spec(m) is None]
    if missing:
        raise InputError(f"nucfm {command} needs {', '.join(missing)}: pip install 'nucfm[analysis]'")


def check_input(path: str | None, what: str = "input", directory: bool = False) -> Path | None:
    """``path`` exists and is a readable file (or a directory when ``directory``)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file (the {what})")
    if p.is_dir() and not directory:
        raise InputError(f"{path}: the {what} is a directory, not a file")
    if not os.access(p, os.R_OK):
        raise InputError(f"{path}: the {what} is not readable")
    return p


def check_output(path: str | None, inputs=(), what: str = "output", directory: bool = False) -> Path | None:
    """``path`` can be written: its directory exists (missing folders are created, ``mkdir -p``;
    a file in the way is an error) and is writable, it is not one of ``inputs`` (resolved paths),
    and it is not a directory where a file goes (or a file where a directory goes, with
    ``directory``)."""
    if path is None:
        return None
    p = Path(path)
    if str(path).strip() == "":
        raise InputError(f"the {what} name is empty")
    make_parent(p)
    if p.is_dir() and not directory:
        raise InputError(f"{path}: the {what} is an existing directory; give a file name")
    if p.exists() and directory and not p.is_dir():
        raise InputError(f"{path}: the {what} is a directory, but a file has this name")
    target = p.resolve()
    for src in inputs:
        if src is not None and Path(src).exists() and Path(src).resolve() == target:
            raise InputError(f"{path}: the {what} would overwrite an input; choose another name")
    return p


def check_text(path: str | None, what: str = "config") -> None:
    """``path`` (when given) is a readable UTF-8 text file."""
    if path is None:
        return
    check_input(path, what)
    try:
        Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {e.start}); is it the right file?") from None


def resolve_device(name: str | None):
    """The torch device for ``--device`` (under torchrun ``cuda`` means this process's GPU)."""
    import torch

    from nucfm.distributed import Context

    ctx = Context(world=int(os.environ.get("WORLD_SIZE", "1")), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    device = ctx.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def inference_scope(args):
    """The context a command's work runs in (``nucfm.cli.main`` enters it around every command):
    for a command with ``--precision``, :func:`nucfm.inference.inference_context` on its
    ``--device`` (no autograd; autocast at bf16/fp16); for the others, nothing."""
    if getattr(args, "precision", None) is None:
        return nullcontext()
    from nucfm.inference import inference_context

    return inference_context(resolve_device(args.device), args.precision)


def check_model_name(name: str | None) -> None:
    """A --model that is neither a registered name nor an existing path fails before any work."""
    if name is None:
        return
    from nucfm.checkpoint import registry

    if str(name) not in registry.MODELS and not Path(name).exists():
        raise InputError(f"unknown model {name!r}: not a file or directory, nor a name of `nucfm models` "
                         f"({', '.join(sorted(registry.MODELS))})")


def add_model_option(p, kind: str):
    p.add_argument("-m", "--model", default=None,
                   help=f"model name or path (default: the shipped {kind.upper()} model; see `nucfm models`)")


def load_cli_model(name: str | None, kind: str, threads: int | None = None, device=None, codons: bool = False):
    """Resolve --model (default: the shipped model of ``kind``), set the thread count, check the
    model is a language model of the right alphabet, and move it to ``device``. Codon models
    (mRNA-FM) are refused unless ``kind`` is ``"codon"`` or the command reads them (``codons``)."""
    import torch

    from nucfm.checkpoint import load_model, registry

    if threads:
        torch.set_num_threads(threads)
    name = name or registry.default_model(kind)
    registered = registry.MODELS[str(name)].kind if str(name) in registry.MODELS else None
    if registered is not None and registered not in (kind, "rna", "dna", "codon"):
        raise InputError(f"{name} is a {registered.upper()} model; this command needs a "
                         f"{kind.upper()} language model (see `nucfm models`)")
    if registered is not None and (registered == "codon") != (kind == "codon") and not codons:
        # refused before a download: the same checks as on the loaded model's alphabet below
        raise InputError(f"{name} is a {registered.upper()} model; this command needs a {kind.upper()} language "
                         "model (codon models work with `nucfm embed` and `nucfm codon-vep`; see `nucfm models`)")
    model = load_model(name)
    from nucfm.models import NucleotideLM

    if not isinstance(model, NucleotideLM):  # a task model given by its path
        raise InputError(f"{name} is a task model (use `nucfm predict`); this command needs a {kind.upper()} "
                         "language model (see `nucfm models`)")
    is_codon = model.alphabet.kmer > 1
    if is_codon and kind != "codon" and not codons:
        raise InputError(f"{name} is a codon model (mRNA-FM); this command needs a {kind.upper()} nucleotide model; "
                         "codon models work with `nucfm embed` and `nucfm codon-vep` (see `nucfm models`)")
    if kind == "codon" and not is_codon:
        raise InputError(f"{name} is not a codon model; this command needs one such as mrna-fm (see `nucfm models`)")
    if kind == "dna" and model.alphabet.name == "rna-fm":
        raise InputError(f"{name} is an RNA model; this command needs a DNA model (see `nucfm models`)")
    if device is not None:
        model = model.to(device)
    return name, model


@contextmanager
def new_run_dir(path):
    """A run directory this command creates is removed again when the run fails with a user
    error before saving any checkpoint (a bad data file found after setup), so the corrected
    rerun is not refused as a different run. An existing directory is never touched."""
    path = Path(path)
    existed = path.exists()
    try:
        yield
    except NucfmError:
        if not existed and path.is_dir() and not any((path / "checkpoints").glob("*")):
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        raise


def int_list(text: str) -> list[int]:
    """Comma-separated integers (``1,3``); ``none`` or ``""`` is the empty list."""
    if text.strip().lower() in ("", "none"):
        return []
    return [_number(t, int, "an integer") for t in text.split(",")]
