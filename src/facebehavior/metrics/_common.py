"""Input normalisation shared by every metric: lists, NumPy arrays and torch tensors all become NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any  # list | tuple | np.ndarray | torch.Tensor — kept loose so torch is never imported here


def to_numpy(x: ArrayLike, name: str, *, dtype: type = np.float64, finite: bool = True) -> np.ndarray:
    """Convert ``x`` to a NumPy array of ``dtype``; raises ``ValueError`` when empty or (with ``finite``)
    when it holds NaN/inf."""
    if x is None:
        raise ValueError(f"{name} is None; pass an array of values")
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric (list, NumPy array or torch tensor)") from None
    if arr.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    if finite and np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def pair(y_true: ArrayLike, y_pred: ArrayLike, *, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Two same-shape arrays (1-D or 2-D)."""
    t = to_numpy(y_true, "y_true", dtype=dtype)
    p = to_numpy(y_pred, "y_pred", dtype=dtype)
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} must have the same shape")
    if t.ndim not in (1, 2):
        raise ValueError(f"expected (N,) or (N, K) arrays, got {t.shape}")
    return t, p


def columns(x: np.ndarray) -> np.ndarray:
    """View a (N,) array as (N, 1)."""
    return x[:, None] if x.ndim == 1 else x


def mask_array(mask: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of ``shape`` (all True when ``mask`` is None); a (N,) mask applies to every column."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = to_numpy(mask, "mask") > 0
    if m.ndim == 1 and len(shape) == 2 and m.shape[0] == shape[0]:
        m = np.broadcast_to(m[:, None], shape)
    if m.shape != shape:
        raise ValueError(f"mask {m.shape} must match the labels' shape {shape}")
    return m
