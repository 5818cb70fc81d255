"""Minimum-cost assignment (the Hungarian method), without SciPy.

The face tracker matches a handful of tracks to a handful of detections per frame. SciPy's
``linear_sum_assignment`` does this, but importing ``scipy.optimize`` costs ~40 MiB of resident
memory and ~0.3 s per process — more than the whole tracker — so the analysis path carries this
O(n²·m) implementation instead (Kuhn-Munkres with potentials, as in Jonker & Volgenant's shortest
augmenting path form; rows are added one at a time, each by one Dijkstra-like pass over columns).
``tests/test_assign.py`` checks it against SciPy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_assignment"]


def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of a minimum-cost matching of a rectangular cost matrix.

    Args:
        cost: (N, M) finite costs.

    Returns:
        ``(rows, cols)``: (K,) int64 each, K = min(N, M), rows increasing; ``cost[rows, cols].sum()``
        is minimal over all matchings of K pairs (as ``scipy.optimize.linear_sum_assignment``).

    Raises:
        ValueError: not a 2-D matrix, or non-finite costs.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be a 2-D matrix, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("cost holds NaN or inf; use a large finite cost for forbidden pairs")
    if c.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transposed = c.shape[0] > c.shape[1]
    if transposed:
        c = c.T
    n, m = c.shape  # n <= m: every row gets a column
    u = np.zeros(n + 1)  # row potentials (1-based; 0 is the virtual row)
    v = np.zeros(m + 1)  # column potentials (column 0 is the virtual start)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: row matched to column j (0: free)
    way = np.zeros(m + 1, np.int64)  # previous column on the shortest augmenting path
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = np.flatnonzero(~used[1:]) + 1
            reduced = c[i0 - 1, free - 1] - u[i0] - v[free]
            better = reduced < minv[free]
            minv[free[better]] = reduced[better]
            way[free[better]] = j0
            j1 = free[np.argmin(minv[free])]
            delta = minv[j1]
            u[owner[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:  # flip the augmenting path
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    cols = np.flatnonzero(owner[1:]) + 1
    rows = owner[cols] - 1
    cols = cols - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
