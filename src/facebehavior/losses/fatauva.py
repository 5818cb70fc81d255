"""FATAUVA-Net's valence/arousal losses and class-based decoder (Chang et al., CVPRW 2017, §3.4).

* Regression: center loss (eq. 1) + smooth-ℓ1 with turning point t (eq. 2).
* Class-based: 11 classes for the integers −5 … 5 trained with softmax cross-entropy
  (:func:`va_to_class` builds the targets); :func:`va_class_decode` turns class probabilities back into a
  value in [−1, 1]: the probability-weighted mean of the top-3 classes when they are consecutive
  (e.g. 1, 2, 3 in any order), otherwise the top-1 class, divided by 5.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facebehavior.losses._utils import check_2d

__all__ = [
    "smooth_l1_turning",
    "center_loss",
    "CenterLoss",
    "VA_CLASS_VALUES",
    "va_to_class",
    "va_class_decode",
]

VA_CLASS_VALUES: tuple[int, ...] = tuple(range(-5, 6))  # class k ↔ value k − 5


def smooth_l1_turning(
    pred: torch.Tensor, target: torch.Tensor, *, t: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """FATAUVA-Net eq. 2: ``0.5 d²`` if ``|d| < t`` else ``|d| − t + 0.5 t²``, with ``d = pred − target``.

    The two branches meet at ``|d| = t`` (value ``0.5 t²``); for ``t = 1`` this is PyTorch's
    ``smooth_l1_loss`` with ``beta = 1``.

    Args:
        pred, target: same shape, any.
        t: turning point between the ℓ2 and ℓ1 regimes (> 0).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    if t <= 0:
        raise ValueError(f"turning point t must be positive, got {t}")
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must match")
    d = (pred - target.to(pred.dtype)).abs()
    loss = torch.where(d < t, 0.5 * d * d, d - t + 0.5 * t * t)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def center_loss(
    features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, *, p: int = 2
) -> torch.Tensor:
    """Center loss ``mean_b ‖x_b − c_{y_b}‖_p^p`` (FATAUVA-Net eq. 1; Wen et al., ECCV 2016 for p = 2).

    The paper prints the loss with a leading minus sign; minimising that would push features *away*
    from their class center, contrary to the cited center loss, so the sign is taken as a typo.

    Args:
        features: ``(B, D)`` deep features (FATAUVA: the second-last FC layer).
        labels: ``(B,)`` integer class of each sample (the VA bin).
        centers: ``(C, D)`` class centers.
        p: norm order (p = 2: squared Euclidean distance).

    Returns:
        Scalar.
    """
    check_2d(features, "features")
    check_2d(centers, "centers")
    if features.shape[1] != centers.shape[1]:
        raise ValueError(f"features have {features.shape[1]} dims but centers {centers.shape[1]}")
    y = labels.long()
    if y.shape != (features.shape[0],) or bool(((y < 0) | (y >= centers.shape[0])).any()):
        raise ValueError(f"labels must be (B,) indices in [0, {centers.shape[0]})")
    return (features - centers[y]).abs().pow(p).sum(dim=1).mean()


class CenterLoss(nn.Module):
    """Center loss with the class centers as a learnable ``(num_classes, feat_dim)`` parameter.

    Args:
        num_classes: number of classes (11 VA bins for FATAUVA-Net).
        feat_dim: feature dimension.
        p: norm order.
    """

    def __init__(self, num_classes: int, feat_dim: int, *, p: int = 2) -> None:
        super().__init__()
        self.p = p
        self.centers = nn.Parameter(torch.zeros(num_classes, feat_dim))
        nn.init.normal_(self.centers, std=0.01)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``features (B, D)``, ``labels (B,)`` → scalar loss."""
        return center_loss(features, labels, self.centers.to(features.dtype), p=self.p)


def va_to_class(values: torch.Tensor) -> torch.Tensor:
    """Map valence/arousal in [−1, 1] to the 11 class indices (value·5 rounded to −5 … 5, plus 5)."""
    v = torch.as_tensor(values)
    if bool((v.abs() > 1 + 1e-6).any()):
        raise ValueError("valence/arousal values must lie in [-1, 1]")
    return (torch.round(v.to(torch.float64) * 5).clamp(-5, 5) + 5).long()


def va_class_decode(probs: torch.Tensor) -> torch.Tensor:
    """FATAUVA-Net's class-based VA prediction.

    Args:
        probs: ``(..., 11)`` class probabilities (softmax) for the values −5 … 5.

    Returns:
        ``(...)`` values in [−1, 1]: if the three most probable classes are consecutive integers, their
        probability-weighted mean (weights renormalised over the three); otherwise the top-1 class; then
        divided by 5.
    """
    p = torch.as_tensor(probs)
    if p.shape[-1] != 11:
        raise ValueError(f"expected 11 VA classes in the last dimension, got shape {tuple(p.shape)}")
    p = p.to(torch.float64) if not p.is_floating_point() else p
    top_p, top_i = torch.topk(p, 3, dim=-1)
    values = (top_i - 5).to(p.dtype)
    consecutive = (top_i.max(dim=-1).values - top_i.min(dim=-1).values) == 2
    weighted = (top_p * values).sum(-1) / top_p.sum(-1).clamp_min(torch.finfo(p.dtype).tiny)
    return torch.where(consecutive, weighted, values[..., 0]) / 5.0
