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

from nucfm import interrupts
from nucfm.cli.analysis import add_atlas, add_compare
from nucfm.cli.codon import add_codon_vep
from nucfm.cli.common import inference_scope
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
            add_serve, add_atlas, add_genome_clusters, add_logo, add_codon_vep]
# Subcommands that read no sequences (so take no --allow-nonstandard).
NO_SEQUENCES = ("models", "convert", "score-ss", "score-contacts", "vep-report", "serve")


def build_parser() -> argparse.ArgumentParser:
    from nucfm import __version__

    parser = _Parser(prog="nucfm", description="Nucleotide foundation models for RNA and DNA.")
    parser.add_argument("--version", action="version", version=f"nucfm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    for name, p in sub.choices.items():
        if not any("--no-progress" in a.option_strings for a in p._actions):
            p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
        if name not in NO_SEQUENCES:
            p.add_argument("--allow-nonstandard", action="store_true",
                           help="read records that look like protein (letters such as E, F, L, P, Q) anyway, "
                                "their odd letters as unknown")
    describe(parser, sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``nucfm`` command line; returns the exit status. Called as the program
    (``argv`` None) an interrupted run exits at once with 130 or 143."""
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
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # not "generated new fontManager" on a first plot
    from nucfm import progress  # numpy and tqdm: after parsing, so --help stays instant
    from nucfm.alphabet import allow_nonstandard

    try:
        with interrupts.handled(), allow_nonstandard(getattr(args, "allow_nonstandard", False)), \
                progress.shown(not getattr(args, "no_progress", False)), \
                inference_scope(args):  # --device / --precision of a model command
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
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (nucfm.interrupts): outputs were cleaned up
        print(f"nucfm: interrupted ({e or 'SIGINT'}); no partial output was left", file=sys.stderr)
        if argv is None:  # the program itself: leave now, not after seconds of torch's interpreter teardown
            _leave(interrupts.exit_code(e))
        return interrupts.exit_code(e)
    except BrokenPipeError:  # `nucfm ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except (OSError, MemoryError) as e:  # disk full, permissions, a vanished file: the system's words
        if args.verbose:
            raise
        print(f"nucfm: error: {_one_line(e)}", file=sys.stderr)
        return 1


def _leave(code: int) -> None:
    """Exit at once with ``code`` (every output was already finished or removed)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text


if __name__ == "__main__":
    sys.exit(main())
