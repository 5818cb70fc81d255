"""Expression cross-entropy (hard or soft labels) and multi-label AU binary cross-entropy.

* :func:`expression_ce` — FaceBehaviorNet's L_Emo (eq. 1) with optional class weights, and its soft-label
  form for vote distributions (FER+) or soft co-annotation targets.
* :func:`masked_bce` — FaceBehaviorNet's L_AU: BCE averaged only over the AUs annotated for each image
  (mask δ of eq. 1).
* :func:`arl_au_weights`, :func:`arl_detection_loss` — ARL's weighted BCE (Shao et al., TPAMI 2019, eq. 8)
  with w_i = (1/r_i) / Σ_k (1/r_k), r_i the training occurrence rate of AU i.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from facebehavior.losses._utils import as_mask, check_2d, check_same_shape, zero_like_graph

__all__ = [
    "expression_ce",
    "masked_bce",
    "occurrence_rates",
    "arl_au_weights",
    "arl_detection_loss",
]


def expression_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    class_weights: torch.Tensor | None = None,
    normalize_target: bool = False,
) -> torch.Tensor:
    """Cross-entropy for expression classification with hard or soft labels.

    Hard labels give ``Σ_b w_{y_b} · (−log p_b[y_b]) / Σ_b w_{y_b}`` (identical to
    ``torch.nn.functional.cross_entropy(logits, y, weight=w)``). Soft labels give
    ``Σ_b Σ_c w_c t_bc (−log p_bc) / Σ_b Σ_c w_c t_bc``, which reduces to the hard form for one-hot targets.

    Args:
        logits: ``(B, C)`` unnormalised scores.
        target: ``(B,)`` integer class indices in ``[0, C)``, or ``(B, C)`` non-negative soft labels
            (each row a distribution, or raw vote counts with ``normalize_target=True``).
        mask: optional ``(B,)`` 0/1 — samples with 0 carry no expression label and are ignored.
        class_weights: optional ``(C,)`` non-negative per-class weights.
        normalize_target: divide each soft-label row by its sum (e.g. FER+ vote counts); rows summing to
            0 are ignored.

    Returns:
        Scalar loss; 0 (still attached to the graph) when no sample is labelled.

    Raises:
        ValueError: shape mismatch, a class index outside ``[0, C)`` (use ``mask`` for unlabelled samples),
            negative soft labels, or soft rows that do not sum to 1 without ``normalize_target``.
    """
    check_2d(logits, "logits")
    B, C = logits.shape
    w = (
        torch.ones(C, dtype=logits.dtype, device=logits.device)
        if class_weights is None
        else torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    )
    if w.shape != (C,):
        raise ValueError(f"class_weights must have shape ({C},), got {tuple(w.shape)}")
    m = as_mask(mask, logits[:, 0], "mask") if mask is not None else logits.new_ones(B)
    if target.ndim == 1:
        if target.shape[0] != B:
            raise ValueError(
                f"target {tuple(target.shape)} must have {B} entries like logits {tuple(logits.shape)}"
            )
        if target.dtype.is_floating_point:
            raise ValueError("hard expression labels must be an integer tensor of class indices")
        t = target.to(logits.device).long()
        valid = m > 0
        if bool(((t[valid] < 0) | (t[valid] >= C)).any()):
            bad = t[valid][(t[valid] < 0) | (t[valid] >= C)][0].item()
            raise ValueError(
                f"expression label {bad} is outside [0, {C}); mark unlabelled samples with mask=0"
            )
        t = torch.where(valid, t, torch.zeros_like(t))
        soft = F.one_hot(t, C).to(logits.dtype)
    else:
        check_same_shape(target, logits, "soft target", "logits")
        soft = target.to(device=logits.device, dtype=logits.dtype)
        soft = torch.where(m[:, None] > 0, soft, torch.zeros_like(soft))
        if bool((soft < 0).any()):
            raise ValueError("soft expression targets must be non-negative")
        sums = soft.sum(dim=1)
        if normalize_target:
            m = m * (sums > 0).to(m.dtype)
            soft = soft / sums.clamp_min(torch.finfo(soft.dtype).tiny)[:, None]
        elif bool(((sums - 1).abs()[m > 0] > 1e-4).any()):
            raise ValueError(
                "soft expression targets must sum to 1 per row; pass normalize_target=True for vote counts"
            )
    logp = F.log_softmax(logits, dim=1)
    per_class = soft * w[None, :] * m[:, None]
    denom = per_class.sum()
    if float(denom) <= 0:
        return zero_like_graph(logits)
    return -(per_class * logp).sum() / denom


def masked_bce(
    logits: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weight: torch.Tensor | None = None,
    reduction: Literal["per_sample", "global"] = "per_sample",
) -> torch.Tensor:
    """Multi-label AU binary cross-entropy averaged over annotated AUs only.

    FaceBehaviorNet eq. 1: ``log p(y_au|x) = [Σ_k δ_k]^-1 Σ_i δ_i [y_i log p_i + (1 − y_i) log(1 − p_i)]``,
    then the expectation over images that have at least one annotated AU (``reduction="per_sample"``).
    ``reduction="global"`` instead divides the sum over all annotated (image, AU) pairs by their count
    (``(bce * m).sum() / m.sum()``); the two agree when every image has the same number of annotations.

    Args:
        logits: ``(B, A)`` AU logits (sigmoid gives occurrence probability).
        target: ``(B, A)`` labels in ``[0, 1]`` (binary or soft).
        mask: optional ``(B, A)`` or ``(B,)`` δ: 1 where the AU is annotated, 0 where unknown.
        weight: optional per-AU ``(A,)`` or per-entry ``(B, A)`` multiplicative weights applied to each
            annotated term (the normaliser stays Σδ) — e.g. co-annotation's observational weights w.
        reduction: see above.

    Returns:
        Scalar loss; 0 (attached to the graph) when nothing is annotated.
    """
    check_2d(logits, "logits")
    check_same_shape(target, logits, "target", "logits")
    m = as_mask(mask, logits)
    # Unannotated entries may hold anything (NaN, -1): they must not leak through 0·NaN.
    y = target.to(dtype=logits.dtype, device=logits.device)
    y = torch.where(m > 0, y, torch.zeros_like(y))
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    if weight is not None:
        bce = bce * as_mask(torch.as_tensor(weight), logits, "weight")
    if reduction == "per_sample":
        n = m.sum(dim=1)
        has = n > 0
        if not bool(has.any()):
            return zero_like_graph(logits)
        per_image = (bce * m).sum(dim=1)[has] / n[has]
        return per_image.mean()
    if reduction == "global":
        n = m.sum()
        if float(n) <= 0:
            return zero_like_graph(logits)
        return (bce * m).sum() / n
    raise ValueError(f"reduction must be 'per_sample' or 'global', got {reduction!r}")


def occurrence_rates(
    labels: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
    *,
    threshold: float = 0.5,
) -> np.ndarray:
    """Per-AU occurrence rate r_i over a training set.

    Args:
        labels: ``(N, A)`` binary occurrences, or intensities with ``threshold`` set to the occurrence level
            (ARL eq. 11 treats intensities ≥ ⌈L/2⌉ as occurrences: ``threshold=3`` for L = 5).
        mask: optional ``(N, A)`` annotation mask; rates are computed over annotated entries only.
        threshold: a value ``>= threshold`` counts as an occurrence.

    Returns:
        ``(A,)`` float64 rates.
    """
    y = np.asarray(labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels, dtype=np.float64)
    if y.ndim != 2 or y.shape[0] == 0:
        raise ValueError(f"labels must have shape (N, A) with N > 0, got {y.shape}")
    m = (
        np.ones_like(y)
        if mask is None
        else np.asarray(mask.detach().cpu() if isinstance(mask, torch.Tensor) else mask, dtype=np.float64)
    )
    if m.shape != y.shape:
        raise ValueError(f"mask {m.shape} must match labels {y.shape}")
    n = m.sum(axis=0)
    if np.any(n == 0):
        raise ValueError(f"AU columns {np.flatnonzero(n == 0).tolist()} have no annotated samples")
    return ((y >= threshold) * m).sum(axis=0) / n


def arl_au_weights(rates: np.ndarray | torch.Tensor | list[float], *, total: float = 1.0) -> torch.Tensor:
    """ARL's per-AU loss weights w_i = total · (1/r_i) / Σ_k (1/r_k) (rare AUs weigh more).

    Args:
        rates: ``(A,)`` training occurrence rates in ``(0, 1]`` (see :func:`occurrence_rates`).
        total: the weights' sum. ARL's eq. 8 normalises them to 1; the authors' released code
            (``prep/write_AU_weight.m``) to the number of AUs, i.e. E_det sums per-AU losses of
            average weight 1 — the scale its learning rate (0.006) was tuned for.

    Returns:
        ``(A,)`` float32 tensor.

    Raises:
        ValueError: a rate is ≤ 0 (an AU never present in training has no defined weight — drop it from
            the AU set or give it a floor rate).
    """
    r = torch.as_tensor(np.asarray(rates, dtype=np.float64) if not isinstance(rates, torch.Tensor) else rates)
    r = r.to(torch.float64).reshape(-1)
    if bool((r <= 0).any()) or bool(torch.isnan(r).any()):
        bad = torch.nonzero((r <= 0) | torch.isnan(r)).flatten().tolist()
        raise ValueError(f"occurrence rates at AU indices {bad} are not positive; ARL weights need r_i > 0")
    inv = 1.0 / r
    return (total * inv / inv.sum()).to(torch.float32)


def arl_detection_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """ARL eq. 8: ``E_det = −Σ_i w_i [p_i log p̂_i + (1 − p_i) log(1 − p̂_i)]``, averaged over the batch.

    Args:
        logits: ``(B, A)`` AU logits (p̂ = sigmoid(logits)).
        target: ``(B, A)`` ground-truth occurrence probabilities p_i.
        weights: ``(A,)`` per-AU weights (:func:`arl_au_weights`).
        mask: optional ``(B, A)`` annotation mask; unannotated terms contribute 0 (weights are not
            renormalised, so a fully annotated batch gives exactly eq. 8).

    Returns:
        Scalar loss.
    """
    check_2d(logits, "logits")
    check_same_shape(target, logits, "target", "logits")
    w = torch.as_tensor(weights, dtype=logits.dtype, device=logits.device)
    if w.shape != (logits.shape[1],):
        raise ValueError(f"weights must have shape ({logits.shape[1]},), got {tuple(w.shape)}")
    m = as_mask(mask, logits)
    y = torch.where(m > 0, target.to(logits.dtype), torch.zeros_like(logits))
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    return (bce * w[None, :] * m).sum(dim=1).mean()
