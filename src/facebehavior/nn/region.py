"""Hierarchical multi-scale region layers (JAA-Net, Shao et al., ECCV 2018; used by ARL, §3.2).

A *patch-wise* convolution splits the feature map into a uniform ``g × g`` grid and gives every
patch its own 3×3 filters (zero padding at patch borders, so patches do not see each other). All
patches are processed in one grouped convolution: the grid is folded into the channel axis and
each patch is a group, which is exactly a set of independent per-patch convolutions.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["PatchConv", "HierarchicalRegionLayer", "conv_bn_relu"]


def conv_bn_relu(in_ch: int, out_ch: int, groups: int = 1) -> nn.Sequential:
    """3×3 conv (stride 1, pad 1) → BatchNorm → ReLU, the unit layer of ARL."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, 1, 1, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class PatchConv(nn.Module):
    """Independent 3×3 conv → BN → ReLU on each patch of a ``grid × grid`` partition.

    Args:
        in_ch: input channels.
        out_ch: output channels.
        grid: patches per side (8, 4 or 2 in JAA-Net/ARL).

    Shapes: ``(B, in_ch, H, W) → (B, out_ch, H, W)``; ``H`` and ``W`` must be multiples of ``grid``.
    """

    def __init__(self, in_ch: int, out_ch: int, grid: int) -> None:
        super().__init__()
        self.grid = grid
        self.in_ch = in_ch
        self.out_ch = out_ch
        n = grid * grid
        self.conv = nn.Conv2d(n * in_ch, n * out_ch, 3, 1, 1, groups=n, bias=False)
        self.bn = nn.BatchNorm2d(n * out_ch)  # one BN per patch and channel, as separate layers would have
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = self.grid
        if h % g or w % g:
            raise ValueError(
                f"PatchConv with a {g}×{g} grid needs feature maps whose sides are multiples of {g}, "
                f"got {h}×{w}; use an input size divisible by 16 (e.g. 176)"
            )
        ph, pw = h // g, w // g
        # (B, C, gy, ph, gx, pw) → (B, gy, gx, C, ph, pw): every patch becomes a channel group.
        y = x.reshape(b, c, g, ph, g, pw).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g * c, ph, pw)
        y = self.relu(self.bn(self.conv(y)))
        return y.reshape(b, g, g, self.out_ch, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(b, self.out_ch, h, w)


class HierarchicalRegionLayer(nn.Module):
    """JAA-Net's hierarchical and multi-scale region layer.

    An input conv layer, then three hierarchical intermediate layers: 8×8 patch convs on the input
    layer's output (``out/2`` channels), 4×4 patch convs on that (``out/4``), 2×2 patch convs on that
    (``out/4``). Their concatenation (``out`` channels) is summed with the input layer's output
    (a residual connection), followed by BN and ReLU.

    Shapes: ``(B, in_ch, H, W) → (B, out_ch, H, W)``; ``H, W`` multiples of 8; ``out_ch`` multiple of 4.
    """

    def __init__(self, in_ch: int, out_ch: int, grids: tuple[int, int, int] = (8, 4, 2)) -> None:
        super().__init__()
        if out_ch % 4:
            raise ValueError(f"out_ch must be a multiple of 4, got {out_ch}")
        self.input_layer = conv_bn_relu(in_ch, out_ch)
        c1, c2, c3 = out_ch // 2, out_ch // 4, out_ch // 4
        self.level1 = PatchConv(out_ch, c1, grids[0])
        self.level2 = PatchConv(c1, c2, grids[1])
        self.level3 = PatchConv(c2, c3, grids[2])
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(x)
        l1 = self.level1(x)
        l2 = self.level2(l1)
        l3 = self.level3(l2)
        return self.relu(self.bn(x + torch.cat([l1, l2, l3], dim=1)))
