"""Concordance correlation coefficient (CCC) and the valence/arousal CCC loss.

CCC (Lin 1989; Aff-Wild review formula 1; FaceBehaviorNet eq. 1) over a batch::

    ρ_c = 2 s_xy / (s_x² + s_y² + (x̄ − ȳ)²)

with *population* (1/N) moments, exactly as FaceBehaviorNet writes it with expectations. The loss used by
AffWildNet and FaceBehaviorNet is ``1 − ½(ρ_v + ρ_a)`` (generalised here to the mean over any number of
columns).
"""

from __future__ import annotations

import torch

from facebehavior.losses._utils import as_mask, check_same_shape, upcast, zero_like_graph

__all__ = ["ccc", "ccc_loss"]


def ccc(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Per-column batch CCC.

    Args:
        pred: ``(B,)`` or ``(B, K)`` predictions (e.g. K = 2: valence, arousal in [−1, 1]).
        target: same shape as ``pred``.
        mask: optional ``(B,)`` or ``(B, K)`` 0/1 weights; moments are taken over masked-in samples.
        eps: added to the denominator. Numerical safety on constant inputs: the formula has no square
            root, so gradients stay finite; when both columns are constant *and* equal the denominator is
            0 and the result is 0 (the loss then is 1 with a zero gradient, so nothing is learnt from a batch
            that carries no variance information).

    Returns:
        ``()`` for 1-D input or ``(K,)``; a column with fewer than 2 masked-in samples gives NaN (no batch
        statistics exist).
    """
    check_same_shape(pred, target, "pred", "target")
    squeeze = pred.ndim == 1
    x = upcast(pred[:, None] if squeeze else pred)
    y = target.to(x.dtype)[:, None] if squeeze else target.to(x.dtype)
    if x.ndim != 2:
        raise ValueError(f"pred must be (B,) or (B, K), got {tuple(pred.shape)}")
    m = as_mask(mask, x)
    # Unannotated targets may hold anything (NaN, sentinels): zero them so they cannot leak through 0·NaN.
    y = torch.where(m > 0, y, torch.zeros_like(y))
    n = m.sum(dim=0)
    nz = n.clamp_min(1.0)
    mx = (m * x).sum(0) / nz
    my = (m * y).sum(0) / nz
    dx, dy = x - mx, y - my
    vx = (m * dx * dx).sum(0) / nz
    vy = (m * dy * dy).sum(0) / nz
    cov = (m * dx * dy).sum(0) / nz
    rho = 2 * cov / (vx + vy + (mx - my) ** 2 + eps)
    rho = torch.where(n >= 2, rho, torch.full_like(rho, float("nan")))
    return rho[0] if squeeze else rho


def ccc_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    eps: float = 1e-8,
) -> torch.Tensor:
    """``1 − mean_k CCC_k`` over the batch (``1 − ½(CCC_v + CCC_a)`` for ``(B, 2)`` valence/arousal).

    Args:
        pred: ``(B,)`` or ``(B, K)`` predictions.
        target: same shape.
        mask: optional ``(B,)`` or ``(B, K)`` annotation mask (VA-labelled samples only).
        eps: see :func:`ccc`.

    Returns:
        Scalar loss in [0, 2]; columns with < 2 annotated samples are skipped; 0 (attached to the graph)
        when no column has enough samples.
    """
    rho = ccc(pred, target, mask, eps=eps)
    rho = rho.reshape(-1)
    ok = ~torch.isnan(rho)
    if not bool(ok.any()):
        return zero_like_graph(pred)
    return 1.0 - rho[ok].mean()
