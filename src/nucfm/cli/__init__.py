"""The ``nucfm`` command. Parsing only: every subcommand calls one library function.

Each subcommand is a pair ``add_NAME(subparsers)`` / ``run_NAME(args)`` in the module of its
family (:mod:`.models`, :mod:`.analysis`, :mod:`.dna`, :mod:`.structure`, :mod:`.training`,
:mod:`.serve`), registered in ``COMMANDS``; the shared argument types, options and checks are in
:mod:`.common`. User errors (:class:`nucfm.errors.NucfmError`) print one line and exit 2.

One convention for every subcommand (:func:`.common.add_common`): ``-i/--input``, ``-o/--output``,
``-m/--model``, ``--threads``, ``--device`` where a model runs, ``--no-progress`` where work is
long. Every ``run_NAME`` checks ALL its arguments (numbers, input files, output names and
directories, output != input) before it loads a model or reads a big input, so a mistake costs
nothing and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from nucfm.cli.analysis import add_atlas, add_compare
from nucfm.cli.dna import add_genome_clusters, add_logo, add_probs, add_vep, add_vep_report
from nucfm.cli.help import describe
from nucfm.cli.models import add_convert, add_embed, add_models
from nucfm.cli.serve import add_serve
from nucfm.cli.structure import add_contacts, add_fold, add_score_contacts, add_score_ss, add_train_ss
from nucfm.cli.training import add_eval_mlm, add_finetune, add_predict, add_pretrain
from nucfm.errors import NucfmError


class _Parser(argparse.ArgumentParser):
    """argparse with nucfm's error format: one ``nucfm: error:`` line, exit 2."""

    def error(self, message):
        self.exit(2, f"nucfm: error: {self.prog}: {message} (see `{self.prog} --help`)\n")


COMMANDS = [add_models, add_embed, add_compare, add_convert, add_vep, add_vep_report, add_probs, add_fold, add_score_ss,
            add_train_ss, add_contacts, add_score_contacts, add_pretrain, add_eval_mlm, add_finetune, add_predict,
            add_serve, add_atlas, add_genome_clusters, add_logo]


def build_parser() -> argparse.ArgumentParser:
    from nucfm import __version__

    parser = _Parser(prog="nucfm", description="Nucleotide foundation models for RNA and DNA.")
    parser.add_argument("--version", action="version", version=f"nucfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    describe(parser, sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # KEY=VALUE overrides may come after options (`pretrain --config c.yaml -o run train.steps=5`)
        if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = list(args.overrides) + extra
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # usage errors (exit 2), --help and --version (exit 0)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="nucfm: %(message)s")
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
        from nucfm import distributed

        distributed.finish()  # under torchrun: every process leaves the group together
        return code
    except NucfmError as e:
        if args.verbose:
            raise
        print(f"nucfm: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nucfm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nucfm ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except (OSError, MemoryError) as e:  # disk full, permissions, a vanished file: the system's words
        if args.verbose:
            raise
        print(f"nucfm: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text


if __name__ == "__main__":
    sys.exit(main())
