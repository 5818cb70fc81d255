"""Shared box geometry (face.boxes) against brute-force pure-Python references and hand values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebehavior.face.boxes import batched_nms, box_area, box_iou, box_overlap, nms, weighted_nms


# ------------------------------------------------------------------------------ pure-Python reference
def _ref_overlap(a, b, method: str = "union", plus_one: bool = False) -> float:
    one = 1.0 if plus_one else 0.0
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + one)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + one)
    inter = w * h
    area_a = (a[2] - a[0] + one) * (a[3] - a[1] + one)
    area_b = (b[2] - b[0] + one) * (b[3] - b[1] + one)
    denom = min(area_a, area_b) if method == "min" else area_a + area_b - inter
    return inter / denom if denom > 0 else 0.0


def _ref_nms(boxes, scores, thr, method="union", plus_one=False) -> list[int]:
    """Textbook greedy NMS: visit by (score desc, index asc); keep unless a kept box overlaps > thr."""
    keep: list[int] = []
    for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)):
        if all(_ref_overlap(boxes[j], boxes[i], method, plus_one) <= thr for j in keep):
            keep.append(i)
    return keep


def _ref_batched(boxes, scores, groups, thr, method="union", plus_one=False) -> list[int]:
    keep: list[int] = []
    for g in set(groups):
        members = [i for i in range(len(groups)) if groups[i] == g]
        sub = _ref_nms([boxes[i] for i in members], [scores[i] for i in members], thr, method, plus_one)
        keep += [members[k] for k in sub]
    return sorted(keep, key=lambda i: (-scores[i], i))


def _ref_weighted(rows, scores, thr):
    """MediaPipe's WEIGHTED suppression written as a plain loop."""
    remaining = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    out = []
    while remaining:
        best = remaining[0]
        group = [best] + [i for i in remaining[1:] if _ref_overlap(rows[best], rows[i]) > thr]
        total = sum(scores[i] for i in group)
        blended = [sum(scores[i] * rows[i][c] for i in group) / total for c in range(len(rows[best]))]
        out.append((scores[best], blended))
        remaining = [i for i in remaining if i not in group]
    return out


def _random_boxes(rng: np.random.Generator, n: int, *, grid: bool) -> np.ndarray:
    """Boxes with every awkward case: clusters, duplicates, zero width/height, disjoint outliers."""
    if grid:  # integer coordinates make exact IoU ties with the threshold likely
        xy = rng.integers(0, 12, (n, 2)).astype(np.float64)
        wh = rng.integers(0, 6, (n, 2)).astype(np.float64)  # 0: zero-area boxes
    else:
        xy = rng.uniform(0, 60, (n, 2))
        wh = rng.uniform(0, 25, (n, 2))
        wh[rng.random(n) < 0.1, rng.integers(0, 2)] = 0.0
    b = np.concatenate([xy, xy + wh], 1)
    dup = rng.random(n) < 0.15
    if n > 1 and dup.any():
        b[dup] = b[rng.integers(0, n, int(dup.sum()))]
    far = rng.random(n) < 0.1
    b[far] += 1000.0  # disjoint from everything else
    return b


def _random_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.round(rng.random(n), 1)  # ten levels: many ties


# ------------------------------------------------------------------------------------- hand values
def test_iou_hand_values():
    a = np.array([[0, 0, 10, 10]])
    b = np.array(
        [
            [5, 0, 15, 10],  # half overlap: 50 / 150
            [20, 20, 30, 30],  # disjoint
            [0, 0, 10, 10],  # identical
            [2, 2, 4, 4],  # inside: 4 / 100
            [10, 0, 20, 10],  # touching edge: no area in common
            [3, 3, 3, 8],  # zero width
        ]
    )
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0, 0.04, 0.0, 0.0]], rtol=1e-15)
    # overlap over the smaller box: the inner box is covered completely
    np.testing.assert_allclose(box_overlap(a, b[[0, 3]], method="min"), [[0.5, 1.0]])
    # MATLAB/Caffe convention: [0, 9] spans 10 pixels
    assert box_area([[0, 0, 9, 9]], plus_one=True).tolist() == [100.0]
    np.testing.assert_allclose(box_overlap([[0, 0, 9, 9]], [[5, 0, 14, 9]], plus_one=True), [[50 / 150]])
    # two identical zero-area boxes overlap by 0, not 0/0
    assert box_iou([[1, 1, 1, 5]], [[1, 1, 1, 5]]).tolist() == [[0.0]]
    assert box_area([[0, 0, 4, 2], [1, 1, 1, 3]]).tolist() == [8.0, 0.0]


def test_empty_inputs():
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5).tolist() == []
    g, s = weighted_nms(np.zeros((0, 16), np.float32), np.zeros(0, np.float32))
    assert g.shape == (0, 16) and s.shape == (0,)


def test_nms_hand_values():
    boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]  # IoU(0, 1) = 81 / 119 = 0.68
    assert nms(boxes, [0.9, 0.8, 0.7], 0.5).tolist() == [0, 2]
    assert nms(boxes, [0.9, 0.8, 0.7], 0.7).tolist() == [0, 1, 2]
    assert nms(boxes, [0.7, 0.8, 0.9], 0.5).tolist() == [2, 1]  # best first
    # equal scores: the lower index wins and suppresses its duplicate
    assert nms([[0, 0, 10, 10], [0, 0, 10, 10]], [0.5, 0.5], 0.5).tolist() == [0]
    # overlap exactly at the threshold is not suppressed (strictly above only)
    assert nms([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.5).tolist() == [0, 1]
    assert nms([[0, 0, 10, 10], [0, 0, 10, 5]], [0.9, 0.8], 0.49).tolist() == [0]
    # a box inside another: IoU 0.04 keeps both, intersection over the smaller area drops it
    inner = [[0, 0, 10, 10], [2, 2, 4, 4]]
    assert nms(inner, [0.9, 0.8], 0.5).tolist() == [0, 1]
    assert nms(inner, [0.9, 0.8], 0.5, method="min").tolist() == [0]
    # zero-area boxes never suppress nor get suppressed
    assert nms([[0, 0, 0, 10], [0, 0, 0, 10]], [0.9, 0.8], 0.0).tolist() == [0, 1]


def test_batched_nms_is_independent_per_group():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert batched_nms(boxes, scores, [0, 0, 1, 1], 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, scores, 0.5).tolist() == [0, 3]
    # groups need not be sorted, contiguous or small
    assert batched_nms(boxes, scores, [7, -2, 7, 7], 0.5).tolist() == [0, 1, 3]


def test_weighted_nms_hand_values():
    # Two overlapping boxes (IoU 0.6) merge into their score-weighted mean; a far box stays.
    boxes = np.array([[0, 0, 10, 10], [0, 2.5, 10, 12.5], [50, 50, 60, 60]], np.float32)
    extra = np.array([[1.0], [3.0], [7.0]], np.float32)
    scores = np.array([0.6, 0.9, 0.7], np.float32)
    g, s = weighted_nms(np.concatenate([boxes, extra], 1), scores, 0.3)
    assert g.dtype == np.float32 and s.dtype == np.float32
    np.testing.assert_allclose(s, [0.9, 0.7])
    w = np.array([0.9, 0.6]) / 1.5
    np.testing.assert_allclose(g[0, :4], w[0] * boxes[1] + w[1] * boxes[0], atol=1e-5)
    np.testing.assert_allclose(g[0, 4], w[0] * 3 + w[1] * 1, atol=1e-5)
    np.testing.assert_allclose(g[1], [50, 50, 60, 60, 7], atol=1e-6)
    g, s = weighted_nms(np.concatenate([boxes, extra], 1), scores, 0.7)  # IoU 0.6 < 0.7: no merge
    assert len(s) == 3
    # a zero-area best box is emitted alone, unchanged
    g, s = weighted_nms(np.array([[5, 5, 5, 5], [4, 4, 6, 6]]), np.array([0.9, 0.8]), 0.0)
    np.testing.assert_allclose(g, [[5, 5, 5, 5], [4, 4, 6, 6]], rtol=1e-15)
    assert g.dtype == np.float64 and s.tolist() == [0.9, 0.8]


def test_torch_inputs_give_numpy_outputs():
    b = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    s = torch.tensor([0.9, 0.8, 0.7])
    keep = batched_nms(b, s, torch.tensor([0, 0, 1]), 0.5)
    assert isinstance(keep, np.ndarray) and keep.dtype == np.int64 and keep.tolist() == [0, 2]
    np.testing.assert_allclose(box_iou(b[:1], b), [[1.0, 81 / 119, 0.0]])


# -------------------------------------------------------------------------- brute-force, many seeds
@pytest.mark.parametrize("seed", range(40))
def test_iou_matches_reference(seed):
    rng = np.random.default_rng(seed)
    a = _random_boxes(rng, int(rng.integers(1, 12)), grid=seed % 2 == 0)
    b = _random_boxes(rng, int(rng.integers(1, 12)), grid=seed % 2 == 0)
    for method in ("union", "min"):
        for plus_one in (False, True):
            ref = [[_ref_overlap(x, y, method, plus_one) for y in b.tolist()] for x in a.tolist()]
            # the same float64 operations in the same order: equal to the last bit
            np.testing.assert_array_equal(box_overlap(a, b, method=method, plus_one=plus_one), ref)
    np.testing.assert_array_equal(box_iou(a, b), box_iou(b, a).T)
    assert ((box_iou(a, b) >= 0) & (box_iou(a, b) <= 1)).all()


@pytest.mark.parametrize("seed", range(60))
def test_nms_matches_reference(seed):
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 40))
    boxes = _random_boxes(rng, n, grid=seed % 3 != 0)
    scores = _random_scores(rng, n)
    groups = rng.integers(0, 3, n)
    b, s, g = boxes.tolist(), scores.tolist(), groups.tolist()
    for thr in (0.0, 0.25, 0.5, 1 / 3, 0.7, 1.0):
        for method, plus_one in (("union", False), ("min", True), ("union", True), ("min", False)):
            got = nms(boxes, scores, thr, method=method, plus_one=plus_one)
            assert got.tolist() == _ref_nms(b, s, thr, method, plus_one), (thr, method, plus_one)
            got = batched_nms(boxes, scores, groups, thr, method=method, plus_one=plus_one)
            assert got.tolist() == _ref_batched(b, s, g, thr, method, plus_one), (thr, method, plus_one)


@pytest.mark.parametrize("seed", range(40))
def test_weighted_nms_matches_reference(seed):
    rng = np.random.default_rng(2000 + seed)
    n = int(rng.integers(1, 30))
    boxes = _random_boxes(rng, n, grid=seed % 2 == 0)
    keypoints = rng.uniform(0, 60, (n, 4))
    rows = np.concatenate([boxes, keypoints], 1)
    scores = _random_scores(rng, n) + 0.05  # positive weights
    for thr in (0.0, 0.3, 0.5):
        g, s = weighted_nms(rows, scores, thr)
        ref = _ref_weighted(rows.tolist(), scores.tolist(), thr)
        assert s.tolist() == [r[0] for r in ref]
        np.testing.assert_allclose(g, np.array([r[1] for r in ref]).reshape(-1, rows.shape[1]), rtol=1e-12)


# ------------------------------------------------------------------------------------------ errors
def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 4\).*box\[None\]"):
        box_iou([0, 0, 1, 1], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        nms(np.zeros((3, 5)), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"scores must be \(3,\)"):
        nms(np.zeros((3, 4)), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match=r"groups must be \(3,\)"):
        batched_nms(np.zeros((3, 4)), np.zeros(3), np.zeros(4), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        nms(np.zeros((3, 4)), np.zeros(3), float("nan"))
    with pytest.raises(ValueError, match="method"):
        nms(np.zeros((3, 4)), np.zeros(3), 0.5, method="max")
    with pytest.raises(ValueError, match="numeric"):
        box_iou([["a", "b", "c", "d"]], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match=r"\(N, >= 4\)"):
        weighted_nms(np.zeros((2, 3)), np.zeros(2))
