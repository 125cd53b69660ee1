"""Base-pair precision / recall / F1 / MCC, exact and shift-tolerant, and their macro average."""

import numpy as np
import pytest

from nucfm.metrics import macro_average, score_pairs


def test_metrics_golden():
    ref = [(0, 9), (1, 8), (2, 7)]
    s = score_pairs([(0, 9), (1, 8), (3, 6)], ref, length=10)
    assert (s.tp, s.fp, s.fn) == (2, 1, 1)
    assert s.precision == pytest.approx(2 / 3) and s.recall == pytest.approx(2 / 3) and s.f1 == pytest.approx(2 / 3)
    tn = 45 - 4
    assert s.mcc == pytest.approx((2 * tn - 1) / np.sqrt(3 * 3 * (tn + 1) * (tn + 1)))
    # shifted: (3, 6) is two away from (2, 7) in both ends -> still wrong; (2, 8) is one away -> right
    assert score_pairs([(3, 6)], ref, 10, shift=1).tp == 0
    sh = score_pairs([(0, 9), (1, 8), (2, 8)], ref, 10, shift=1)
    assert (sh.tp, sh.fp, sh.fn) == (3, 0, 0)
    assert score_pairs([(0, 9), (1, 8), (2, 8)], ref, 10).tp == 2
    # empty cases
    assert score_pairs([], [], 5).f1 == 1.0
    assert score_pairs([], ref, 10).f1 == 0.0 and score_pairs(ref, [], 10).precision == 0.0
    avg = macro_average([score_pairs(ref, ref, 10), score_pairs([], ref, 10)])
    assert avg["f1"] == 0.5 and avg["n"] == 2
