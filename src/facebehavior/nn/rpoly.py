"""rPoly-2 and rPoly-3 blocks of FATAUVA-Net (Chang et al., CVPR-W 2017, fig. 7), "reduced" versions
of PolyNet's Poly-2 / Poly-3 (Zhang et al., CVPR 2017).

PolyNet's poly-k block computes ``x + F(x) + F(F(x)) (+ F(F(F(x))))`` with one shared residual
function F. Fig. 7 of FATAUVA-Net is not recoverable from the paper's text, so the reduction is
taken as a bottleneck F (1×1 reduce → 3×3 → 1×1 expand, BatchNorm after each conv, ReLU between)
instead of PolyNet's Inception-ResNet units; the polynomial composition with a shared F is kept.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["Bottleneck", "RPoly", "rpoly2", "rpoly3", "ConvBNReLU"]


class ConvBNReLU(nn.Sequential):
    """k×k conv (stride 1, same padding, no bias) → BN → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class Bottleneck(nn.Module):
    """The shared residual function F: 1×1 (c → c/2) → 3×3 → 1×1 (→ c); shape-preserving."""

    def __init__(self, channels: int, reduction: int = 2) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.body = nn.Sequential(
            ConvBNReLU(channels, mid, 1),
            ConvBNReLU(mid, mid, 3),
            nn.Conv2d(mid, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RPoly(nn.Module):
    """Polynomial residual block ``ReLU(x + F(x) + F²(x) + … + F^order(x))`` with one shared F.

    Args:
        channels: input = output channels.
        order: 2 (rPoly-2) or 3 (rPoly-3).

    Shapes: ``(B, C, H, W) → (B, C, H, W)``.
    """

    def __init__(self, channels: int, order: int) -> None:
        super().__init__()
        if order not in (2, 3):
            raise ValueError(f"rPoly order must be 2 or 3, got {order}")
        self.order = order
        self.f = Bottleneck(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        term = x
        for _ in range(self.order):
            term = self.f(term)
            out = out + term
        return self.relu(out)


def rpoly2(channels: int) -> RPoly:
    """rPoly-2: ``x + F(x) + F(F(x))``."""
    return RPoly(channels, 2)


def rpoly3(channels: int) -> RPoly:
    """rPoly-3: ``x + F(x) + F(F(x)) + F(F(F(x)))``."""
    return RPoly(channels, 3)
