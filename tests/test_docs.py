"""The documentation: the site builds without a warning, the README stays a front door, and every
command example in docs/ and the README runs as written on the shipped example data.

A fenced ``bash`` block whose first command starts with ``nucfm``, ``python -m nucfm`` or
``torchrun`` is an example. It runs in a fresh temporary copy of the repository (no ``../shared``,
an empty cache, offline), one copy per page, blocks in page order, and must exit 0 and write every
output it names. Plain ``nucfm ...`` lines run in this process (working directory: the copy), so
the suite pays torch's imports once; ``torchrun`` and ``&&`` chains run in bash. A block right
after a ``!!! needs "needs: ..."`` note (data the repository cannot ship, a server that runs until
Ctrl-C) is only parsed: its options must be ones the command has.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml

from nucfm.cli import main

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p for p in (ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]
STARTS = ("nucfm ", "python -m nucfm ", "torchrun ")
OUTPUT_OPTIONS = ("-o", "--output", "--probs", "--plot", "--per-seq")
RECIPES = ("pretrain", "train-ss", "finetune")
COPIED = ("src", "examples", "configs", "scripts", "docs", "README.md", "pyproject.toml", "mkdocs.yml")


def blocks(page: Path) -> list[tuple[bool, list[str]]]:
    """(needs_data, commands) for each example block of ``page``; continuation lines joined."""
    found, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() != "```bash":
            i += 1
            continue
        j = next(k for k in range(i + 1, len(lines)) if lines[k].strip() == "```")
        text = "\n".join(lines[i + 1:j]).replace("\\\n", " ")
        commands = [c for c in (ln.strip() for ln in text.splitlines()) if c and not c.startswith("#")]
        before = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        if commands and commands[0].startswith(STARTS):
            found.append((before.startswith("!!! needs"), commands))
        i = j + 1
    return found


def nucfm_argv(command: str) -> list[list[str]]:
    """The ``nucfm`` argument lists of a command line (``a && b`` gives two), comments dropped."""
    out = []
    for part in command.split("&&"):
        words = shlex.split(part, comments=True)
        if words[:3] == ["python", "-m", "nucfm"]:
            out.append(words[3:])
        elif words[:1] == ["nucfm"]:
            out.append(words[1:])
        elif words[:1] == ["torchrun"]:
            out.append(words[words.index("nucfm") + 1:])
    return out


def named_outputs(argv: list[str], repo: Path) -> list[Path]:
    """The files and directories a command says it writes."""
    if "--print-config" in argv:  # prints the resolved config and writes nothing
        return []
    outs = [argv[k + 1] for k, a in enumerate(argv[:-1]) if a in OUTPUT_OPTIONS]
    if argv[0] in RECIPES and not outs:
        config = argv[argv.index("--config") + 1] if "--config" in argv else argv[argv.index("-c") + 1]
        overrides = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
        outs.append(overrides.get("output") or yaml.safe_load((repo / config).read_text())["output"])
    return [repo / o for o in outs]


def cases(needs: bool) -> list:
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in PAGES
            if any(n == needs for n, _ in blocks(p))]


# ---- the site --------------------------------------------------------------------------------------
@pytest.mark.skipif(find_spec("mkdocs") is None or find_spec("mkdocstrings") is None,
                    reason="mkdocs / mkdocstrings not installed: pip install -e '.[docs]'")
def test_site_builds_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert (tmp_path / "site" / "api" / "index.html").read_text().count('class="doc doc-heading"') >= 30


def test_docstrings_become_markdown():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from docs_griffe import markdown
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert markdown("See :func:`~nucfm.load_model`.\n\n>>> 1 + 1\n2\n\nEnd") == (
        "See `nucfm.load_model`.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nEnd")


def test_every_figure_is_on_a_page():
    """Each figure under docs/ is shown on some page (none orphaned, none missing)."""
    text = "".join(p.read_text() for p in PAGES)
    for png in (ROOT / "docs").rglob("*.png"):
        assert png.name in text, f"{png.relative_to(ROOT)} is on no page"
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", "".join(p.read_text() for p in PAGES[:-1])):
        assert any(png.as_posix().endswith(ref.lstrip("./")) for png in (ROOT / "docs").rglob("*.png")), ref


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for marker in ("<!-- setup-1 -->", "<!-- /setup-1 -->", "<!-- setup-2 -->", "<!-- /setup-2 -->", "mkdocs serve"):
        assert marker in text


def test_examples_are_small_and_described():
    files = [p for p in (ROOT / "examples").iterdir() if p.name != "README.md"]
    assert sum(p.stat().st_size for p in files) <= 8 * 2**20
    described = (ROOT / "examples" / "README.md").read_text()
    for p in files:
        assert f"`{p.name}`" in described, f"examples/{p.name} has no source and licence in examples/README.md"


# ---- the examples ----------------------------------------------------------------------------------
def test_the_collector_sees_the_examples():
    runnable = sum(len(c) for p in PAGES for n, c in blocks(p) if not n)
    parsed = sum(len(c) for p in PAGES for n, c in blocks(p) if n)
    assert runnable >= 40 and parsed >= 20, (runnable, parsed)
    assert nucfm_argv("nucfm probs -o a.tsv && nucfm logo --probs a.tsv -o b/  # x") == [
        ["probs", "-o", "a.tsv"], ["logo", "--probs", "a.tsv", "-o", "b/"]]
    assert nucfm_argv("torchrun --standalone --nproc_per_node 2 -m nucfm embed -i a") == [["embed", "-i", "a"]]


@pytest.mark.parametrize("page", cases(needs=True))
def test_examples_that_need_data_parse(page):
    """Blocks that need unshippable data: every option exists and every value parses."""
    from nucfm.cli import build_parser

    for _, commands in (b for b in blocks(page) if b[0]):
        for command in commands:
            for argv in nucfm_argv(command):
                try:
                    args, extra = build_parser().parse_known_args(argv)
                except SystemExit as e:
                    pytest.fail(f"{page.name}: `{command}` does not parse (exit {e.code})")
                assert all("=" in e and not e.startswith("-") for e in extra), f"{page.name}: {command}: {extra}"


@pytest.fixture
def repo_copy(tmp_path):
    """A copy of the repository without ../shared, with `nucfm` on PATH running the copy's code."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__", "*.fai", "site"))
        else:
            shutil.copy2(src, repo / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nucfm").write_text(f"#!/bin/sh\nexec {sys.executable} -m nucfm \"$@\"\n")
    (bin_dir / "nucfm").chmod(0o755)
    env = {**os.environ, "PYTHONPATH": str(repo / "src"), "OMP_NUM_THREADS": "1", "NUCFM_OFFLINE": "1",
           "PATH": f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    assert not (tmp_path / "shared").exists()
    return repo, env


def run(command: str, repo: Path, env: dict, monkeypatch, capsys) -> tuple[int, str]:
    """Run ``command`` in ``repo``: a plain ``nucfm ...`` line in this process (``nucfm.cli.main``,
    as a shell would call it, without paying the imports again), anything else (``torchrun``,
    ``&&`` chains) in bash with the copy's code on PYTHONPATH."""
    if command.startswith("nucfm ") and not any(c in command for c in "&|;<>$`"):
        with monkeypatch.context() as m:
            m.chdir(repo)
            for k in ("NUCFM_OFFLINE", "OMP_NUM_THREADS"):
                m.setenv(k, env[k])
            code = main(shlex.split(command, comments=True)[1:])
        return code, capsys.readouterr().err
    r = subprocess.run(["bash", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    return r.returncode, r.stderr


@pytest.mark.parametrize("page", cases(needs=False))
def test_examples_run_as_written(page, repo_copy, monkeypatch, capsys):
    repo, env = repo_copy
    for _, commands in (b for b in blocks(page) if not b[0]):
        for command in commands:
            code, err = run(command, repo, env, monkeypatch, capsys)
            assert code == 0, f"{page.name}: `{command}` exited {code}:\n{err[-3000:]}"
            for argv in nucfm_argv(command):
                for out in named_outputs(argv, repo):
                    assert out.exists(), f"{page.name}: `{command}` did not write {out.relative_to(repo)}"
