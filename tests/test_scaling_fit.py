"""bench/scaling_fit.py: the L(N, D) fit recovers known parameters; the budget split is the analytic one."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import scaling_fit as sf  # noqa: E402


def test_fit_recovers_known_law():
    E, A, B, alpha, beta = 1.25, 30.0, 400.0, 0.35, 0.3
    N = np.repeat([1e5, 4e5, 1.6e6, 6.4e6], 6)
    D = np.tile(np.geomspace(1e6, 1e8, 6), 4)
    L = sf.chinchilla_loss([E, math.log(A), math.log(B), alpha, beta], N, D)
    f = sf.fit_chinchilla(N, D, L)
    assert f["rmse"] < 1e-4
    assert f["E"] == pytest.approx(E, abs=0.01)
    assert f["alpha"] == pytest.approx(alpha, abs=0.03) and f["beta"] == pytest.approx(beta, abs=0.03)
    assert sf.usable(f)


def test_choice_is_the_analytic_optimum_with_unlimited_data():
    # alpha = beta: N_opt = (A / B)^(1 / (2 alpha)) * sqrt(C / k)
    E, A, B, a = 1.0, 50.0, 200.0, 0.3
    C, k = 1e18, 6.0
    ch = sf.choose({"theta": [E, math.log(A), math.log(B), a, a]}, C, k, unique=1e30)
    expect = (A / B) ** (1 / (2 * a)) * math.sqrt(C / k)
    assert ch["params"] == pytest.approx(expect, rel=0.02)
    assert ch["params"] * ch["tokens"] * k == pytest.approx(C, rel=1e-9)


def test_repeated_tokens_count_less():
    U = 1e7
    D = np.array([0.5e7, 1e7, 4e7, 1e9])
    eff = sf.effective_tokens(D, U)
    assert eff[0] == D[0] and eff[1] == D[1]
    assert D[1] < eff[2] < D[2]
    assert eff[3] < U * (1 + sf.R_STAR)  # never more than the asymptote
