"""Efficient backbone: MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018), written here without torchvision. Apache-2.0 like the rest of facebehavior.

It is the CPU-friendly trunk of ``facebehaviornet_mobile`` (FaceBehaviorNet's heads on a small
backbone) and is registered alone as a classifier (``mobilenetv2``). Any input of at least
32×32 px works (adaptive pooling); 48–112 px faces are the intended use. ``stem_stride=1`` keeps
twice the resolution for very small faces (48 px) at about 4× the compute.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facebehavior.models import register_model
from facebehavior.nn.layers import ConvBNAct, InvertedResidual, make_divisible

__all__ = ["MobileNetV2", "MobileNetV2Classifier", "mobilenetv2", "mobilenetv2_tiny"]

# (expand ratio t, output channels c, repeats n, first stride s), the paper's table 2.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    """MobileNetV2 feature extractor.

    Args:
        width: channel width multiplier (1.0 = the paper's network).
        in_channels: 1 (grayscale) or 3 (RGB).
        stem_stride: stride of the first convolution (2 in the paper; 1 for tiny inputs).
        last_channels: channels of the final 1×1 conv (default ``1280 * max(1, width)``).

    ``forward(x)`` maps ``(B, in_channels, H, W)`` to the pooled feature ``(B, num_features)``;
    ``forward_features(x)`` returns the intermediate maps keyed ``"stride2"``, ``"stride4"``, ``"stride8"``,
    ``"stride16"``, ``"stride32"`` (for ``stem_stride=2``; halve the numbers for 1), ``"last"``
    (after the final 1×1 conv) and ``"pool"`` (global average, ``(B, num_features)``).
    """

    def __init__(
        self,
        *,
        width: float = 1.0,
        in_channels: int = 3,
        stem_stride: int = 2,
        last_channels: int | None = None,
    ) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (grayscale) or 3 (RGB), got {in_channels}")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        if stem_stride not in (1, 2):
            raise ValueError(f"stem_stride must be 1 or 2, got {stem_stride}")
        ch = make_divisible(32 * width)
        self.stem = ConvBNAct(in_channels, ch, 3, stem_stride)
        stages: list[nn.Module] = []
        # A stage ends where the next block downsamples; features are read at stage ends.
        self._tap_names: list[str] = []
        stride = stem_stride
        blocks: list[nn.Module] = []
        for t, c, n, s in _SETTINGS:
            out = make_divisible(c * width)
            if s == 2 and blocks:
                stages.append(nn.Sequential(*blocks))
                self._tap_names.append(f"stride{stride}")
                blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(ch, out, s if i == 0 else 1, t))
                ch = out
            stride *= s
        stages.append(nn.Sequential(*blocks))
        self._tap_names.append(f"stride{stride}")
        self.stages = nn.ModuleList(stages)
        self.num_features = last_channels or make_divisible(1280 * max(1.0, width))
        self.head_conv = ConvBNAct(ch, self.num_features, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.in_channels = in_channels
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Intermediate feature maps (see the class docstring for the keys)."""
        _check_input(x, self.in_channels, 32, type(self).__name__)
        feats: dict[str, torch.Tensor] = {}
        x = self.stem(x)
        for name, stage in zip(self._tap_names, self.stages, strict=True):
            x = stage(x)
            feats[name] = x
        x = self.head_conv(x)
        feats["last"] = x
        feats["pool"] = self.pool(x).flatten(1)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, 32, type(self).__name__)
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.pool(self.head_conv(x)).flatten(1)


def _check_input(x: torch.Tensor, channels: int, min_size: int, who: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{who} expects input of shape (B, {channels}, H, W), got {tuple(x.shape)}")
    if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and min(x.shape[-2:]) < min_size:
        raise ValueError(f"{who} needs faces of at least {min_size}×{min_size} px, got {tuple(x.shape[-2:])}")


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class MobileNetV2Classifier(nn.Module):
    """MobileNetV2 with a single classification head.

    ``forward(x)`` returns ``{"logits": (B, num_classes)}``.
    """

    def __init__(self, *, num_classes: int = 1000, dropout: float = 0.2, **backbone_kwargs: object) -> None:
        super().__init__()
        self.backbone = MobileNetV2(**backbone_kwargs)  # type: ignore[arg-type]
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({"logits": nn.Linear(self.backbone.num_features, num_classes)})
        _init_weights(self.heads)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.heads["logits"](self.dropout(self.backbone(x)))}


@register_model("mobilenetv2")
def mobilenetv2(
    *, num_classes: int = 1000, width: float = 1.0, in_channels: int = 3, stem_stride: int = 2
) -> MobileNetV2Classifier:
    """MobileNetV2 classifier (3.50 M parameters at width 1.0 with 1000 classes, as in the paper)."""
    return MobileNetV2Classifier(
        num_classes=num_classes, width=width, in_channels=in_channels, stem_stride=stem_stride
    )


@register_model("mobilenetv2_tiny")
def mobilenetv2_tiny(*, num_classes: int = 10, in_channels: int = 3) -> MobileNetV2Classifier:
    """Tiny MobileNetV2 for fast tests (width 0.25, 64 final channels)."""
    return MobileNetV2Classifier(
        num_classes=num_classes, width=0.25, in_channels=in_channels, last_channels=64
    )
