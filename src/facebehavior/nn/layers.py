"""Small convolutional building blocks shared by the model zoo.

``ConvBNAct`` and ``InvertedResidual`` (MobileNetV2, Sandler et al., CVPR 2018) are the parts
of the efficient backbone; ``make_divisible`` keeps channel counts hardware friendly when a
width multiplier is applied.
"""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["ConvBNAct", "InvertedResidual", "make_divisible"]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor`` without dropping more than 10 %.

    Args:
        value: the unrounded channel count (e.g. ``32 * width``).
        divisor: channel counts become multiples of this.
        min_value: lower bound (default ``divisor``).
    """
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → activation.

    Shapes: ``(B, in_ch, H, W) → (B, out_ch, ceil(H / stride), ceil(W / stride))`` with "same" padding.
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: type[nn.Module] | None = nn.ReLU6,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        if act is not None:
            layers.append(act(inplace=True) if act in (nn.ReLU, nn.ReLU6) else act())
        super().__init__(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand → 3×3 depthwise → 1×1 linear projection, residual when shapes match.

    Shapes: ``(B, in_ch, H, W) → (B, out_ch, ceil(H / stride), ceil(W / stride))``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual stride must be 1 or 2, got {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden),
            ConvBNAct(hidden, out_ch, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y
