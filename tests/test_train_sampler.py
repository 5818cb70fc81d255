"""FaceBehaviorNet's multi-task batching: batch-size derivation, epoch coverage, sharding, weights."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facebehavior.data.labels import LabelTable
from facebehavior.data.sampler import (
    MultiTaskBatchSampler,
    au_sample_weights,
    derive_batch_sizes,
    expression_sample_weights,
    steps_per_epoch,
)


def test_paper_batch_sizes():
    # Sets whose sizes are in the paper's proportion give its 401 / 247 / 103 with B = 751.
    sizes = {"va": 401 * 1000, "au": 247 * 1000, "expr": 103 * 1000}
    assert derive_batch_sizes(sizes, 751) == {"va": 401, "au": 247, "expr": 103}
    assert steps_per_epoch(sizes, derive_batch_sizes(sizes, 751)) == 1000


@pytest.mark.parametrize(
    ("sizes", "total"),
    [((1000, 10, 5), 32), ((12345, 6789, 1011), 751), ((7, 7, 7), 4), ((1, 500), 64), ((50,), 8)],
)
def test_derivation_covers_every_set_in_one_epoch(sizes, total):
    named = {f"s{i}": n for i, n in enumerate(sizes)}
    b = derive_batch_sizes(named, total)
    steps = math.ceil(sum(sizes) / total)
    for k, n in named.items():
        assert b[k] >= 1 and b[k] * steps >= n  # each set fully drawn within the epoch's steps
        assert (b[k] - 1) * steps < n or b[k] == 1  # and no larger than needed
    assert sum(b.values()) <= total + len(sizes) - 1
    assert steps_per_epoch(named, b) <= steps


def test_derivation_errors():
    with pytest.raises(ValueError, match="empty"):
        derive_batch_sizes({"a": 0, "b": 3}, 4)
    with pytest.raises(ValueError, match="positive"):
        derive_batch_sizes({"a": 3}, 0)


def test_sampler_batches_grouped_by_set_and_cover_epoch():
    sizes = {"va": 40, "au": 24, "expr": 10}
    b = derive_batch_sizes(sizes, 15)  # 5 steps: 8 / 5 / 2
    assert b == {"va": 8, "au": 5, "expr": 2}
    s = MultiTaskBatchSampler(sizes, b, seed=3)
    batches = list(s)
    assert len(batches) == len(s) == 5
    seen = {k: [] for k in sizes}
    for batch in batches:
        assert len(batch) == 15
        parts = {"va": batch[:8], "au": batch[8:13], "expr": batch[13:]}
        for k, lo in (("va", 0), ("au", 40), ("expr", 64)):
            assert all(lo <= i < lo + sizes[k] for i in parts[k])
            seen[k] += [i - lo for i in parts[k]]
    for k, n in sizes.items():
        assert set(seen[k]) == set(range(n))  # every sample drawn in the epoch
        assert len(seen[k]) == 5 * b[k]  # the set's last permutation is cut at the epoch's end
    assert len(set(seen["va"])) == len(seen["va"])  # 40 = 5 x 8: exactly once
    s.set_epoch(1)
    assert list(s) != batches  # a new permutation per epoch
    s.set_epoch(0)
    assert list(s) == batches  # and reproducible


def test_short_set_cycles():
    s = MultiTaskBatchSampler({"a": 20, "b": 3}, {"a": 4, "b": 2}, seed=0)
    batches = list(s)
    assert len(batches) == 5
    b_idx = [i - 20 for batch in batches for i in batch[4:]]
    assert len(b_idx) == 10 and set(b_idx) == {0, 1, 2}


def test_ranks_are_disjoint():
    sizes, b = {"a": 40, "b": 16}, {"a": 5, "b": 2}
    r0 = [i for batch in MultiTaskBatchSampler(sizes, b, num_replicas=2, rank=0) for i in batch]
    r1 = [i for batch in MultiTaskBatchSampler(sizes, b, num_replicas=2, rank=1) for i in batch]
    assert not set(r0) & set(r1)
    assert sorted(r0 + r1) == list(range(56))


def test_weighted_sampling_follows_weights():
    w = np.array([0.0, 1.0, 3.0])
    s = MultiTaskBatchSampler({"a": 3}, {"a": 1000}, weights={"a": w}, seed=0)
    drawn = np.array([i for batch in s for i in batch])
    assert (drawn != 0).all()
    assert abs((drawn == 2).mean() - 0.75) < 0.05


def _table(expression, dist=None, aus=(), occ=None, mask=None):
    n = len(expression)
    kw = dict(aus=aus, au_occurrence=occ, au_mask=mask) if aus else {}
    return LabelTable(
        corpus="t", split="train", root=".", image=np.array([""] * n, object),
        subject=np.array([""] * n, object), video=np.array([""] * n, object), frame=np.full(n, -1),
        expression=np.asarray(expression), expression_dist=dist, **kw,
    )  # fmt: skip


def test_expression_weights_balance_classes():
    t = _table([0, 0, 0, 1, -1])
    w = expression_sample_weights(t)
    # class 0: 3 samples -> 1/3 each; class 1: 1 sample -> 1; mean over labelled = 1
    np.testing.assert_allclose(w, np.array([1 / 3, 1 / 3, 1 / 3, 1, 0]) / 0.5)
    # total weight of each class is equal: balanced
    assert w[:3].sum() == pytest.approx(w[3])


def test_au_weights_favour_rare_aus():
    occ = np.array([[1, 0], [1, 0], [1, 1], [0, 0]], np.float32)
    mask = np.ones((4, 2), bool)
    mask[3] = False
    w = au_sample_weights(_table([-1] * 4, aus=(1, 2), occ=occ, mask=mask))
    assert w[3] == 0 and w[2] > w[0] == w[1]
