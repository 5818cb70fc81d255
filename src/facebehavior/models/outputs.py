"""Checks on model outputs and weights: non-finite values never pass silently.

A diverged training run exports NaN weights, and a NaN weight makes every prediction NaN; a
model can also overflow on unusual inputs. ``nonfinite_rows`` finds the faces whose outputs are
not finite (to flag them), ``check_finite_outputs`` refuses them with an actionable message, and
``nonfinite_tensors`` lists the weights of a state dict that are not finite (``save_checkpoint``
and ``load_weights`` refuse such files).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch  # noqa: F401  (torch is imported only where tensors are handled)

__all__ = ["NonFiniteError", "check_finite_outputs", "nonfinite_rows", "nonfinite_tensors"]


class NonFiniteError(ValueError):
    """Model outputs or weights hold NaN or ±Inf."""


def _as_array(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):  # a tensor; no torch import for numpy outputs (the onnxruntime path)
        v = v.detach().float().cpu().numpy()
    return np.asarray(v)


def nonfinite_rows(outputs: Mapping[str, Any]) -> np.ndarray:
    """Rows (faces) with a non-finite value in any output.

    Args:
        outputs: output name → ``(B, …)`` tensor or array (a model's output dict); non-floating
            outputs are ignored.

    Returns:
        ``(B,)`` bool, True where some output of that row is NaN or ±Inf (empty when there are no
        floating outputs).
    """
    bad: np.ndarray | None = None
    for v in outputs.values():
        a = _as_array(v)
        if a.ndim == 0 or not np.issubdtype(a.dtype, np.floating):
            continue
        rows = ~np.isfinite(a.reshape(a.shape[0], -1)).all(1)
        bad = rows if bad is None else bad | rows
    return np.zeros(0, bool) if bad is None else bad


def check_finite_outputs(outputs: Mapping[str, Any], *, where: str = "model") -> None:
    """Raise ``NonFiniteError`` if any output holds NaN or ±Inf.

    Args:
        outputs: output name → ``(B, …)`` tensor or array.
        where: what produced the outputs (the model name), for the message.

    Raises:
        NonFiniteError: naming the outputs and the number of rows affected.
    """
    names = []
    for k, v in outputs.items():
        a = _as_array(v)
        if np.issubdtype(a.dtype, np.floating) and not np.isfinite(a).all():
            names.append(k)
    if names:
        rows = int(nonfinite_rows(outputs).sum())
        raise NonFiniteError(
            f"{where}: non-finite outputs {names} for {rows} face(s); the weights may be corrupt or from "
            "a diverged training run (check them with facebehavior.models.outputs.nonfinite_tensors)"
        )


def nonfinite_tensors(state_dict: Mapping[str, Any]) -> list[str]:
    """Names of the floating tensors of a state dict holding NaN or ±Inf, in order."""
    import torch

    out = []
    for k, v in state_dict.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            out.append(k)
    return out
