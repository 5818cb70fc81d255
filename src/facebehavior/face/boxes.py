"""Box geometry shared by detectors, tracker, cache and pipeline: areas, IoU and NMS.

Boxes are ``x1, y1, x2, y2`` in pixels, as (N, 4) arrays. The semantics follow
``torchvision.ops`` (``box_area``, ``box_iou``, ``nms``, ``batched_nms``):

* overlaps are computed in float64 whatever the input dtype, so a threshold test does not depend
  on whether a caller passed float32 or float64 boxes;
* a pair whose union (or, for ``method="min"``, smaller area) is not positive overlaps by 0, so
  zero-area boxes never suppress anything and never give 0/0 (torchvision gives NaN there, which
  its NMS also treats as "no overlap");
* NMS suppresses a box whose overlap with a kept one is strictly above the threshold; kept
  indices come best first, equal scores in input order (a stable sort).

Two conventions of older detectors are options rather than copies: ``method="min"`` (intersection
over the smaller area, MTCNN's last stage) and ``plus_one`` (widths measured as ``x2 - x1 + 1``,
the MATLAB/Caffe pixel convention). ``weighted_nms`` is MediaPipe's blending variant used by
BlazeFace.

Inputs may be numpy arrays, lists or torch tensors (read on the CPU); outputs are numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["box_area", "box_iou", "box_overlap", "nms", "batched_nms", "weighted_nms"]

_METHODS = ("union", "min")


def _array(x: Any, name: str, dtype: type | None = np.float64) -> np.ndarray:
    """Any array-like (torch tensors included, on any device) as a numpy array."""
    if hasattr(x, "detach"):  # torch tensor: no torch import needed here
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__} ({e})") from None


def _boxes(
    x: Any, name: str = "boxes", *, extra: bool = False, dtype: type | None = np.float64
) -> np.ndarray:
    """Checked (N, 4) boxes, or (N, >= 4) rows that start with a box when ``extra``."""
    b = _array(x, name, dtype)
    if b.ndim != 2 or b.shape[1] < 4 or (b.shape[1] != 4 and not extra):
        hint = "; pass box[None] for a single box" if b.ndim == 1 else ""
        cols = ">= 4" if extra else "4"
        raise ValueError(
            f"{name} must be (N, {cols}) x1, y1, x2, y2 pixels, got shape {tuple(b.shape)}{hint}"
        )
    if dtype is None and not np.issubdtype(b.dtype, np.floating):
        b = b.astype(np.float64)
    return b


def _scores(x: Any, n: int, name: str = "scores") -> np.ndarray:
    s = _array(x, name)
    if s.shape != (n,):
        raise ValueError(f"{name} must be ({n},), one per box, got shape {tuple(s.shape)}")
    return s


def _threshold(t: Any) -> float:
    try:
        t = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"iou_threshold must be a number, got {t!r}") from None
    if np.isnan(t):
        raise ValueError("iou_threshold is NaN; pass a number such as 0.3")
    return t


def _check_method(method: str) -> None:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {list(_METHODS)}, got {method!r}")


def _area(b: np.ndarray, one: float) -> np.ndarray:
    return (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one)


def _overlap(
    a: np.ndarray, b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray, method: str, one: float
) -> np.ndarray:
    """Overlap of broadcastable float64 box arrays (..., 4) with their precomputed areas."""
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + one, 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + one, 0, None)
    inter = w * h
    denom = np.minimum(area_a, area_b) if method == "min" else area_a + area_b - inter
    ok = denom > 0
    # Divide only where the denominator is positive: no 0/0 warnings and no NaN for empty boxes.
    return np.divide(inter, denom, out=np.zeros(np.broadcast(inter, denom).shape), where=ok)


def box_area(boxes: Any, *, plus_one: bool = False) -> np.ndarray:
    """Areas of boxes.

    Args:
        boxes: (N, 4) x1, y1, x2, y2 pixels.
        plus_one: measure sides as ``x2 - x1 + 1`` (MATLAB/Caffe pixel convention).

    Returns:
        (N,) float64 areas in square pixels (negative for inverted boxes, as in torchvision).
    """
    return _area(_boxes(boxes), 1.0 if plus_one else 0.0)


def box_overlap(a: Any, b: Any, *, method: str = "union", plus_one: bool = False) -> np.ndarray:
    """Pairwise overlap of two sets of boxes.

    Args:
        a: (N, 4) x1, y1, x2, y2 pixels.
        b: (M, 4) x1, y1, x2, y2 pixels.
        method: ``"union"`` (intersection over union) or ``"min"`` (intersection over the
            smaller of the two areas).
        plus_one: measure sides as ``x2 - x1 + 1``.

    Returns:
        (N, M) float64 overlaps in [0, 1]; 0 where the denominator is not positive.
    """
    _check_method(method)
    one = 1.0 if plus_one else 0.0
    a, b = _boxes(a, "a"), _boxes(b, "b")
    return _overlap(a[:, None], b[None], _area(a, one)[:, None], _area(b, one)[None], method, one)


def box_iou(a: Any, b: Any) -> np.ndarray:
    """Pairwise intersection over union (``torchvision.ops.box_iou``, 0 instead of NaN).

    Args:
        a: (N, 4) x1, y1, x2, y2 pixels.
        b: (M, 4) x1, y1, x2, y2 pixels.

    Returns:
        (N, M) float64 IoU in [0, 1]; 0 for pairs with an empty union (zero-area boxes).
    """
    return box_overlap(a, b)


def _greedy(b: np.ndarray, s: np.ndarray, threshold: float, method: str, one: float) -> np.ndarray:
    """Greedy NMS on validated float64 arrays; indices into ``b``, best first."""
    area = _area(b, one)
    order = np.argsort(-s, kind="stable")
    keep = []
    # One vectorised step per *kept* box: it drops every remaining box that it suppresses.
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        ov = _overlap(b[i], b[rest], area[i], area[rest], method, one)
        order = rest[~(ov > threshold)]
    return np.asarray(keep, np.int64)


def nms(
    boxes: Any, scores: Any, iou_threshold: float, *, method: str = "union", plus_one: bool = False
) -> np.ndarray:
    """Greedy non-maximum suppression (``torchvision.ops.nms``).

    Args:
        boxes: (N, 4) x1, y1, x2, y2 pixels.
        scores: (N,) higher is better.
        iou_threshold: a box is dropped when its overlap with a kept box is strictly above this.
        method: ``"union"`` (IoU) or ``"min"`` (intersection over the smaller area).
        plus_one: measure sides as ``x2 - x1 + 1``.

    Returns:
        (K,) int64 indices of kept boxes by decreasing score; equal scores keep input order.
    """
    _check_method(method)
    b = _boxes(boxes)
    s = _scores(scores, b.shape[0])
    return _greedy(b, s, _threshold(iou_threshold), method, 1.0 if plus_one else 0.0)


def batched_nms(
    boxes: Any,
    scores: Any,
    groups: Any,
    iou_threshold: float,
    *,
    method: str = "union",
    plus_one: bool = False,
) -> np.ndarray:
    """NMS within each group independently (e.g. each frame of a batch; ``torchvision.ops.batched_nms``).

    Args:
        boxes: (N, 4) x1, y1, x2, y2 pixels.
        scores: (N,) higher is better.
        groups: (N,) integer group of each box; boxes of different groups never suppress each other.
        iou_threshold: as in ``nms``.
        method: as in ``nms``.
        plus_one: as in ``nms``.

    Returns:
        (K,) int64 indices of kept boxes by decreasing score over all groups; equal scores keep
        input order.
    """
    _check_method(method)
    b = _boxes(boxes)
    s = _scores(scores, b.shape[0])
    g = _array(groups, "groups", None)
    if g.shape != (b.shape[0],):
        raise ValueError(f"groups must be ({b.shape[0]},), one per box, got shape {tuple(g.shape)}")
    threshold, one = _threshold(iou_threshold), 1.0 if plus_one else 0.0
    if b.shape[0] == 0:
        return np.zeros(0, np.int64)
    # Group by group rather than torchvision's coordinate-offset trick: no float shift to reason
    # about, and each greedy loop only compares boxes of its own group.
    _, inverse = np.unique(g, return_inverse=True)
    by_group = np.argsort(inverse, kind="stable")
    bounds = np.flatnonzero(np.diff(inverse[by_group])) + 1
    keep = np.concatenate(
        [m[_greedy(b[m], s[m], threshold, method, one)] for m in np.split(by_group, bounds)]
    )
    keep.sort()
    return keep[np.argsort(-s[keep], kind="stable")]


def weighted_nms(boxes: Any, scores: Any, iou_threshold: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's weighted NMS (``NonMaxSuppressionCalculator``, ``WEIGHTED``), as BlazeFace uses it.

    Repeatedly take the best remaining detection and every remaining one whose IoU with it is
    strictly above ``iou_threshold``; emit the score-weighted mean of all their columns (box and
    any keypoints) with the best one's score; drop them all. A zero-area best box merges nothing
    and is emitted alone.

    Args:
        boxes: (K, G) x1, y1, x2, y2 pixels followed by any per-box coordinates to blend
            (e.g. keypoints), G >= 4; floating inputs keep their dtype for the blending.
        scores: (K,) scores (weights of the mean; positive for a meaningful mean).
        iou_threshold: MediaPipe's ``min_suppression_threshold`` (0.3 in its face graphs).

    Returns:
        ``(merged, merged_scores)``: (M, G) blended rows, best first, and their (M,) scores, both
        in the input's floating dtype (float64 for integer inputs).
    """
    geometry = _boxes(boxes, extra=True, dtype=None)
    s = _array(scores, "scores", None)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    if s.shape != (geometry.shape[0],):
        raise ValueError(f"scores must be ({geometry.shape[0]},), one per box, got shape {tuple(s.shape)}")
    threshold = _threshold(iou_threshold)
    order = np.argsort(-s, kind="stable")
    s, geometry = s[order], geometry[order]
    b = geometry[:, :4].astype(np.float64)
    area = _area(b, 0.0)
    out_s, out_g = [], []
    remaining = np.arange(len(s))  # positions in score order, so remaining[0] is the best
    while remaining.size:
        best = remaining[0]
        merge = _overlap(b[best], b[remaining], area[best], area[remaining], "union", 0.0) > threshold
        merge[0] = True  # the best one itself, even when zero-area
        merged = remaining[merge]
        w = s[merged]
        out_s.append(s[best])
        out_g.append((geometry[merged] * w[:, None]).sum(0) / w.sum())
        remaining = remaining[~merge]
    if not out_s:
        return np.zeros((0, geometry.shape[1]), geometry.dtype), np.zeros(0, s.dtype)
    return np.stack(out_g).astype(geometry.dtype, copy=False), np.asarray(out_s, s.dtype)
