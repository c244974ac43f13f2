import math

import numpy as np

from raysweep.scores import best, better, is_score, rank_key, score


def test_a_score_is_a_finite_real_number_and_never_a_bool():
    assert all(is_score(v) for v in (0, 1, -2.5, np.float32(0.5), np.int64(3), np.float64(1e300)))
    assert not any(is_score(v) for v in (True, False, np.bool_(True), math.nan, math.inf, -math.inf, None, "0.5", [1.0]))
    assert score(np.float32(0.5)) == 0.5 and type(score(np.float32(0.5))) is float
    assert score(True) is None


def test_best_by_mode_passes_over_what_is_no_score():
    rows = [{"m": 0.2}, {"m": math.nan}, {"m": 0.9}, {}, {"m": True}, {"m": 0.5}]
    assert best(rows, "max", key=lambda r: r.get("m")) == {"m": 0.9}
    assert best(rows, "min", key=lambda r: r.get("m")) == {"m": 0.2}
    assert best([None, math.nan], "max") is None
    assert best([1.0, 1.0 + 0.0], "max") == 1.0


def test_better_and_rank_key_agree_with_best():
    assert better(0.5, None, "max") and better(0.5, 0.4, "max") and not better(0.5, 0.5, "max")
    assert better(0.3, 0.4, "min") and not better(0.5, 0.4, "min")
    values = [0.3, None, 0.9, math.nan, 0.1]
    for mode in ("max", "min"):
        ranked = sorted(values, key=lambda v: rank_key(v, mode))
        assert ranked[0] == best(values, mode)
        assert not any(is_score(v) for v in ranked[-2:])  # what is no score comes last
