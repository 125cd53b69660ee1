"""Suite-wide settings: an isolated home for every cache, deterministic threads and seeds, tiny
model fixtures, and parity tests that cannot skip silently."""

import os

import pytest
import torch

import tiny

# Read by matplotlib / huggingface_hub when first imported, which may happen while test modules
# are collected (before any fixture runs): set them here as well as in the fixture below.
os.environ["MPLBACKEND"] = "Agg"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["NUCFM_OFFLINE"] = "1"

# Keep the suite quick and deterministic on a 2-core machine.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory):
    """Every cache the code (or a library) may write goes under one temp dir, never the user's
    ``~/.cache``: nucfm's own ($NUCFM_HOME: fai indexes, ss-cache, downloads), XDG, matplotlib,
    Hugging Face and torch hub. Subprocesses (torchrun tests) inherit it."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NUCFM_HOME", str(home / "nucfm"))
        mp.setenv("XDG_CACHE_HOME", str(home / "cache"))
        mp.setenv("MPLCONFIGDIR", str(home / "matplotlib"))
        mp.setenv("HF_HOME", str(home / "huggingface"))
        mp.setenv("TORCH_HOME", str(home / "torch"))
        mp.setenv("MPLBACKEND", "Agg")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("NUCFM_OFFLINE", "1")
        yield home


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_rna_model():
    """Tiny RNA transformer (see ``tiny.RNA_DEFAULTS``), seed 0, eval mode."""
    return tiny.rna_model()


@pytest.fixture
def tiny_dna_model():
    """Tiny DNA ConvNet (see ``tiny.DNA_DEFAULTS``), seed 0, eval mode."""
    return tiny.dna_model()


def pytest_runtest_makereport(item, call):
    """A skipped ``parity`` test is a failure: its reference package is a test dependency, so a
    skip means the comparison silently did not happen. ``NUCFM_ALLOW_PARITY_SKIP=1`` allows it."""
    if call.excinfo is None or item.get_closest_marker("parity") is None:
        return None
    if not call.excinfo.errisinstance(pytest.skip.Exception):
        return None
    if os.environ.get("NUCFM_ALLOW_PARITY_SKIP", "0") not in ("", "0"):
        return None
    report = pytest.TestReport.from_item_and_call(item, call)
    report.outcome = "failed"
    report.longrepr = (f"parity test skipped ({call.excinfo.value}); install the test extra "
                       "(pip install -e '.[test]') or set NUCFM_ALLOW_PARITY_SKIP=1")
    return report
