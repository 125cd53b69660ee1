"""What `--help` says: the subcommands grouped by task family, and for each subcommand a one-line
description, an example that its documentation page runs, and that page. Where outputs go: missing
folders are created, a file in the way is an error."""

import logging
from pathlib import Path

import pytest

from nucfm.cli import build_parser, main
from nucfm.cli.help import EXAMPLES, FAMILIES

ROOT = Path(__file__).resolve().parent.parent


def subparsers():
    return next(a for a in build_parser()._actions if a.dest == "command").choices


def test_every_command_has_one_family_an_example_and_a_page():
    names = [n for _, family in FAMILIES for n in family]
    assert sorted(names) == sorted(subparsers()) == sorted(EXAMPLES)
    for name, (example, page) in EXAMPLES.items():
        assert example.startswith(f"nucfm {name}"), name
        assert (ROOT / "docs" / page).exists(), page


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_example_is_on_its_page(name):
    """tests/test_docs.py runs (or, for data the repository cannot ship, parses) every command of a
    page, so an example found there is an example that works."""
    example, page = EXAMPLES[name]
    text = (ROOT / "docs" / page).read_text()
    lines = [" ".join(line.split("#")[0].split()) for line in text.replace("\\\n", " ").splitlines()]
    assert " ".join(example.split()) in lines, f"{example!r} is not a command line of docs/{page}"


def test_top_level_help_groups_commands_by_family(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    positions = [out.index(f"\n{family}:\n") for family, _ in FAMILIES]
    assert positions == sorted(positions)
    for family, names in FAMILIES:
        block = out[out.index(f"\n{family}:\n"):]
        for n in names:
            assert f"\n  {n} " in block


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_command_help_has_description_example_and_page(name, capsys):
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    description = " ".join(out.split("\n\n")[1].split())  # the first paragraph, unwrapped
    assert description and ". " not in description.rstrip("."), description  # one sentence
    example, page = EXAMPLES[name]
    assert f"\n  {example}\n" in out and f"docs/{page}" in out


def test_outputs_go_into_new_folders_but_not_through_files(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="nucfm")
    fa = tmp_path / "a.fa"
    fa.write_text(">a\nGGGAAACUUCGGUUUCCC\n")
    out = tmp_path / "new" / "sub" / "a.dbn"
    assert main(["fold", "-i", str(fa), "-o", str(out), "--threads", "1"]) == 0
    assert out.exists()
    assert str(out) in caplog.records[-1].getMessage()  # the last line names what was written
    capsys.readouterr()  # the first run's progress lines
    assert main(["fold", "-i", str(fa), "-o", str(fa / "x.dbn"), "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nucfm: error:") and "is a file, not a directory" in err
