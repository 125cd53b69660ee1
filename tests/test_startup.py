"""``nucfm --help`` and ``nucfm COMMAND --help`` are instant: the scientific stack (torch, numpy,
pandas, matplotlib...) is imported only inside the commands that use it."""

import os
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "numpy", "pandas", "scipy", "matplotlib", "h5py", "sklearn", "transformers", "tqdm", "RNA")


def _env():
    return dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_help_imports_nothing_heavy():
    """Every subcommand's --help, and the top-level one, in one process: no heavy module loaded."""
    code = (
        "import sys, contextlib, io\n"
        "from nucfm.cli import build_parser, main\n"
        "names = list(next(a for a in build_parser()._actions if a.dest == 'command').choices)\n"
        "for argv in [['--help']] + [[n, '--help'] for n in names]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_help_within_a_second():
    """Wall time of `python -m nucfm --help` and `python -m nucfm fold --help` (best of 3, the
    machine may be busy)."""
    for argv in (["--help"], ["fold", "--help"]):
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "nucfm", *argv], env=_env(), capture_output=True, check=True)
            best = min(best, time.perf_counter() - t)
        assert best < 1.0, f"nucfm {' '.join(argv)} took {best:.2f} s"
