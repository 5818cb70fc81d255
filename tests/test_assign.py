"""The tracker's assignment solver against SciPy's linear_sum_assignment."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from facebehavior.face.assign import linear_assignment


@pytest.mark.parametrize("seed", range(60))
def test_matches_scipy_on_random_rectangular_matrices(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 9, size=2)
    cost = rng.random((n, m)) * rng.choice([1.0, 100.0])
    if seed % 3 == 0:
        cost[rng.random((n, m)) < 0.3] = 1e6  # forbidden pairs, as the tracker writes them
    r, c = linear_assignment(cost)
    rr, cc = linear_sum_assignment(cost)
    assert len(r) == min(n, m) and len(set(c.tolist())) == len(c)
    assert np.isclose(cost[r, c].sum(), cost[rr, cc].sum(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(r, rr)  # rows increasing, as SciPy
    np.testing.assert_array_equal(c, cc)  # continuous random costs: the optimum is unique


def test_hand_cases_and_ties():
    r, c = linear_assignment(np.array([[4.0, 1, 3], [2, 0, 5], [3, 2, 2]]))
    assert r.tolist() == [0, 1, 2] and c.tolist() == [1, 0, 2]  # 1 + 2 + 2 = 5, the unique optimum
    r, c = linear_assignment(np.ones((3, 3)))  # all ties: any permutation, cost 3
    assert sorted(c.tolist()) == [0, 1, 2]
    r, c = linear_assignment(np.array([[5.0], [1.0], [3.0]]))  # more rows than columns
    assert r.tolist() == [1] and c.tolist() == [0]
    r, c = linear_assignment(np.zeros((0, 4)))
    assert r.size == 0 and c.size == 0


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        linear_assignment(np.zeros(3))
    with pytest.raises(ValueError, match="NaN or inf"):
        linear_assignment(np.array([[np.inf, 1.0]]))
