"""The suite's own rules (tests/conftest.py): a skipped parity test fails unless explicitly
allowed, and no test writes into the user's cache."""

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent


@pytest.fixture
def suite(pytester):
    pytester.makeconftest((HERE / "conftest.py").read_text())
    pytester.makepyfile(tiny=(HERE / "tiny.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    parity: x\n    distributed: x\n")
    pytester.makepyfile(test_x='''
import pytest

@pytest.mark.parity
def test_parity_skips():
    pytest.skip("the official package is missing")

def test_ordinary_skip():
    pytest.skip("fine")
''')
    return pytester


def test_a_skipped_parity_test_fails(suite, monkeypatch):
    monkeypatch.delenv("NUCFM_ALLOW_PARITY_SKIP", raising=False)
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*parity test skipped (the official package is missing)*NUCFM_ALLOW_PARITY_SKIP*"])


def test_a_parity_skip_can_be_allowed(suite, monkeypatch):
    monkeypatch.setenv("NUCFM_ALLOW_PARITY_SKIP", "1")
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(skipped=2)


def test_caches_point_into_a_temp_home():
    home = Path(os.environ["NUCFM_HOME"]).parent
    assert not home.is_relative_to(Path.home() / ".cache") and home != Path.home()
    for var in ("NUCFM_HOME", "XDG_CACHE_HOME", "MPLCONFIGDIR", "HF_HOME", "TORCH_HOME"):
        assert Path(os.environ[var]).parent == home, var
    assert os.environ["MPLBACKEND"] == "Agg" and os.environ["HF_HUB_OFFLINE"] == "1"
