"""The progress facility (plain lines off a terminal, estimates, --no-progress everywhere) and
the protein check of every sequence reader."""

import pytest

from nucfm import progress
from nucfm.alphabet import allow_nonstandard, check_nucleotide, protein_evidence
from nucfm.errors import InputError


def test_plain_lines_off_a_terminal(capsys, monkeypatch):
    """stderr not a terminal: whole lines (no carriage returns, no bar graphics) at the start,
    at most every LOG_EVERY seconds, and at the end; one estimate once the work has run a while."""
    monkeypatch.setattr(progress, "ESTIMATE_AFTER", 0.0)
    with progress.bar(total=10, unit="record", desc="fold") as b:
        for _ in range(10):
            b.update(1)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and "█" not in err
    assert lines[0].startswith("nucfm: fold: 0% 0/10 record")
    assert lines[-1].startswith("nucfm: fold: 100% 10/10 record")
    assert sum("to go at the rate of the first" in ln for ln in lines) == 1
    assert len(lines) == 3  # start, estimate, end: updates in between wait LOG_EVERY seconds


def test_no_progress_silences_every_bar(capsys):
    with progress.shown(False):
        with progress.bar(total=3, desc="embed") as b:
            b.update(3)
    with progress.bar(total=3, desc="embed", enabled=False) as b:
        b.update(3)
    assert capsys.readouterr().err == ""


def test_every_command_takes_no_progress():
    from nucfm.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    lacking = [n for n, p in sub.choices.items() if not any("--no-progress" in a.option_strings for a in p._actions)]
    assert lacking == []


def test_duration_and_estimate_line():
    assert progress.duration(42) == "42 s"
    assert progress.duration(3 * 86400 + 7200) == "3 days 2 h"
    assert progress.estimate_line("vep", {"variants": 12000}, 4000) == "vep: 12,000 variants (about 1 h 6 min)"


@pytest.mark.parametrize("seq", [
    "ACGUACGUNNNNNNNNNNacgu",  # RNA, N runs, soft-masked
    "ACGT" * 20 + "RYKMSWBDHVN",  # every IUPAC code
    "ACGT" * 30 + "E",  # one stray letter is a typo, not a protein
    "XXXXXXXXXXACGT",  # hard-masked
    "ACG-U.AC--GU",  # gapped alignment
    "",
])
def test_nucleic_acids_are_not_protein(seq):
    assert protein_evidence(seq) is None


@pytest.mark.parametrize("seq,why", [
    ("MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATL", "letters"),
    ("MKVRSDHMKVRSDHMKVRSDHAGT", "composition"),  # only IUPAC-looking letters
    ("mvhltpeeksavtalwgkv", "letters"),  # lowercase
])
def test_proteins_are_named(seq, why):
    assert why in protein_evidence(seq)
    with pytest.raises(InputError, match=r"x\.fa: record 'P1' looks like protein"):
        check_nucleotide(seq, "P1", "x.fa")
    with allow_nonstandard():
        check_nucleotide(seq, "P1", "x.fa")


def test_eval_mlm_table_stays_aligned():
    from nucfm.tasks.eval_mlm import SCORERS, format_table

    r = {s + k: 0.5 for s in SCORERS for k in ("_acc", "_ppl")}
    lines = format_table({"all": {"positions": 10, **r}, "non-repeat (uppercase)": {"positions": 5, **r}}).splitlines()
    assert len({ln.index("positions") if i == 0 else len(ln) for i, ln in enumerate(lines) if i}) == 1
    assert len({len(ln) for ln in lines}) == 1


def test_a_terminal_gets_a_bar_even_of_unknown_size():
    """stderr on a pseudo-terminal (0 x 0 until someone sets it, as under `script` or a CI pty):
    a live tqdm bar with the unit and the count, not nothing."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    master, slave = pty.openpty()
    code = "from nucfm.progress import bar\nwith bar(total=435, unit='nt', desc='fold') as b:\n    b.update(435)\n"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    subprocess.run([sys.executable, "-c", code], stderr=slave, env=env, check=True, timeout=60)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert "fold: 100%|" in out.decode() and "435/435" in out.decode()


def test_plain_lines_ignore_refreshes_between_intervals(capsys):
    """set_postfix (pretrain calls it every log step) does not add lines between intervals."""
    with progress.bar(total=100, unit="step", desc="pretrain") as b:
        for _ in range(100):
            b.update(1)
            b.set_postfix(loss="1.0")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("nucfm: pretrain: 100% 100/100 step"), lines
