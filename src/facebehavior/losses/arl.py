"""ARL / iARL objectives (Shao et al., "Facial Action Unit Detection Using Attention and Relation
Learning", IEEE TAFFC 2019, §3.5).

* ARL (detection), eq. 9: ``E_det + Σ_i E_i^crf`` — :func:`arl_loss`, with
  :func:`~facebehavior.losses.classification.arl_detection_loss` (eq. 8) and :func:`crf_energy_loss`.
* iARL (intensity), eq. 13: ``E_int + Σ_i E_i^crf + λ E_cos`` — :func:`iarl_loss`, with the weighted
  Euclidean loss :func:`intensity_loss` (eq. 11) and :func:`cosine_similarity_loss` (eq. 12), λ = 0.5.

The CRF energies come from the model zoo's :class:`facebehavior.nn.crf.DenseCRF` (one per AU, or one
shared), whose ``energy`` method gives the expected energy under the refined attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from facebehavior.losses._utils import as_mask, check_2d, check_same_shape, zero_like_graph
from facebehavior.losses.classification import arl_detection_loss

if TYPE_CHECKING:
    from facebehavior.nn.crf import DenseCRF

__all__ = [
    "crf_energy_loss",
    "arl_loss",
    "intensity_loss",
    "cosine_similarity_loss",
    "iarl_loss",
]


def crf_energy_loss(
    crf: DenseCRF | Sequence[DenseCRF],
    attention: torch.Tensor,
    features: torch.Tensor | Sequence[torch.Tensor],
    refined: torch.Tensor | None = None,
    *,
    per_pixel: bool = False,
) -> torch.Tensor:
    """``Σ_i E_i^crf`` over the AUs, averaged over the batch (ARL eq. 3 / eq. 9).

    Args:
        crf: a single ``DenseCRF`` — shared by every AU (``groups == 1``) or holding one compatibility per
            AU (``groups == n``; maps are stacked AU-fastest, as its docstring prescribes) — or a sequence
            of ``n`` ``DenseCRF`` modules, one per AU.
        attention: ``(B, n, H, W)`` initial spatial attention v⁰ of each AU (the unary term).
        features: ``(B, n, D, H, W)`` pixel features f^(3s) per AU, or a sequence of ``n`` tensors
            ``(B, D, H, W)``.
        refined: optional ``(B, n, H, W)`` refined attention v^(s) already computed by the forward pass
            (saves re-running mean-field); default: the CRF's own inference.
        per_pixel: divide each energy by the number of pixels ``m = H·W`` (the paper's sum is
            ``per_pixel=False``; the energy grows with m and dominates E_det at ARL's 44×44 maps).

    Returns:
        Scalar.
    """
    if attention.dim() != 4:
        raise ValueError(f"attention must be (B, n, H, W), got {tuple(attention.shape)}")
    B, n, H, W = attention.shape
    feats = features if isinstance(features, torch.Tensor) else torch.stack(list(features), dim=1)
    if feats.dim() != 5 or feats.shape[:2] != (B, n) or feats.shape[3:] != (H, W):
        raise ValueError(
            f"features {tuple(feats.shape)} must be (B, n, D, H, W) matching attention "
            f"{tuple(attention.shape)}"
        )
    if refined is not None and refined.shape != attention.shape:
        raise ValueError(f"refined {tuple(refined.shape)} must match attention {tuple(attention.shape)}")
    if hasattr(crf, "energy"):
        groups = int(getattr(crf, "groups", 1))
        if groups not in (1, n):
            raise ValueError(
                f"the CRF has {groups} compatibility groups; need 1 (shared) or one per AU ({n})"
            )
        # AU index varies fastest in the flattened (B·n) batch, matching DenseCRF's group convention.
        energy = crf.energy(  # type: ignore[union-attr]
            attention.reshape(B * n, 1, H, W),
            feats.reshape(B * n, *feats.shape[2:]),
            None if refined is None else refined.reshape(B * n, 1, H, W),
        ).reshape(B, n)
    else:
        crfs = list(crf)  # type: ignore[arg-type]
        if len(crfs) != n:
            raise ValueError(f"need one CRF per AU ({n}), got {len(crfs)}")
        energy = torch.stack(
            [
                crfs[i].energy(
                    attention[:, i : i + 1], feats[:, i], None if refined is None else refined[:, i : i + 1]
                )
                for i in range(n)
            ],
            dim=1,
        )
    total = energy.sum(dim=1)
    if per_pixel:
        total = total / (H * W)
    return total.mean()


def arl_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    *,
    crf_energy: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """ARL eq. 9: ``E_det + Σ_i E_i^crf``.

    Args:
        logits: ``(B, A)`` AU logits; target: ``(B, A)`` occurrences; weights: ``(A,)`` from
            :func:`~facebehavior.losses.classification.arl_au_weights`.
        crf_energy: scalar from :func:`crf_energy_loss` (omit for the W/WC/WCS ablations without CRF).
        mask: optional ``(B, A)`` annotation mask.
    """
    loss = arl_detection_loss(logits, target, weights, mask)
    return loss if crf_energy is None else loss + crf_energy


def intensity_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """iARL eq. 11: ``E_int = ½ Σ_i w_i (p_i^int − p̂_i^int)²``, averaged over the batch.

    Args:
        pred: ``(B, A)`` predicted intensities (iARL: p̂_i · L with L = 5).
        target: ``(B, A)`` ground-truth intensities (0–5).
        weights: ``(A,)`` per-AU weights (:func:`~facebehavior.losses.classification.arl_au_weights` of
            the rates with intensity ≥ ⌈L/2⌉ counted as occurrence); default all 1.
        mask: optional ``(B, A)`` annotation mask.
    """
    check_2d(pred, "pred")
    check_same_shape(target, pred, "target", "pred")
    w = pred.new_ones(pred.shape[1]) if weights is None else torch.as_tensor(weights).to(pred)
    if w.shape != (pred.shape[1],):
        raise ValueError(f"weights must have shape ({pred.shape[1]},), got {tuple(w.shape)}")
    sq = (pred - target.to(pred.dtype)) ** 2 * as_mask(mask, pred)
    return 0.5 * (sq * w[None, :]).sum(dim=1).mean()


def cosine_similarity_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, *, eps: float = 1e-8
) -> torch.Tensor:
    """iARL eq. 12: ``E_cos = 1 − Σ_i p_i p̂_i / (‖p‖ ‖p̂‖)`` over the AUs of each image, batch mean.

    Images whose ground-truth intensity vector is all zero (no AU active) have no defined cosine and are
    skipped; 0 (attached to the graph) is returned when no image remains.

    Args:
        pred, target: ``(B, A)`` intensities; mask: optional ``(B, A)`` — only annotated AUs enter.
    """
    check_2d(pred, "pred")
    check_same_shape(target, pred, "target", "pred")
    m = as_mask(mask, pred)
    p, t = pred * m, target.to(pred.dtype) * m
    keep = t.abs().sum(dim=1) > 0
    if not bool(keep.any()):
        return zero_like_graph(pred)
    return (1 - F.cosine_similarity(p[keep], t[keep], dim=1, eps=eps)).mean()


def iarl_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    *,
    crf_energy: torch.Tensor | None = None,
    lam: float = 0.5,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """iARL eq. 13: ``E_int + Σ_i E_i^crf + λ E_cos`` (λ = 0.5 in the paper).

    Args:
        pred: ``(B, A)`` predicted intensities (p̂ · L); target: ``(B, A)`` intensities.
        weights: ``(A,)`` per-AU weights for E_int; crf_energy: scalar from :func:`crf_energy_loss`.
        lam: λ; mask: optional ``(B, A)``.
    """
    loss = intensity_loss(pred, target, weights, mask) + lam * cosine_similarity_loss(pred, target, mask)
    return loss if crf_energy is None else loss + crf_energy
