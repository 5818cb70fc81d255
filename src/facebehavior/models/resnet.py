"""ResNet-50 (K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition",
CVPR 2016), written here without torchvision (v1.5 layout: stride on the 3×3 conv of each
bottleneck, as in torchvision). Code: Apache-2.0.

Used as AffWildNet's alternative CNN. Any input of at least 32×32 px works (global pooling).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from facebehavior.models import register_model

__all__ = ["Bottleneck", "ResNet", "ResNetClassifier", "resnet50", "resnet50_tiny"]


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 (stride) → 1×1 expand (×4), BN after each conv, projection shortcut when needed.

    Shapes: ``(B, in_ch, H, W) → (B, 4·mid, ⌈H/stride⌉, ⌈W/stride⌉)``.
    """

    expansion = 4

    def __init__(self, in_ch: int, mid: int, stride: int = 1) -> None:
        super().__init__()
        out = mid * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


class ResNet(nn.Module):
    """ResNet trunk with bottleneck blocks.

    Args:
        layers: blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
        in_channels: input channels.
        width: base width (64 in the paper).

    ``forward(x)`` → ``(B, num_features)`` globally average-pooled ("last pool") features,
    ``num_features = 32·width`` (2048). ``forward_features(x)`` returns ``"stem"`` (after the max
    pool, stride 4), ``"layer1"`` … ``"layer4"`` (strides 4, 8, 16, 32) and ``"pool"``.
    """

    def __init__(
        self, *, layers: tuple[int, int, int, int] = (3, 4, 6, 3), in_channels: int = 3, width: int = 64
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        ch = width
        stages = []
        for i, n in enumerate(layers):
            mid = width * 2**i
            blocks = [Bottleneck(ch, mid, 1 if i == 0 else 2)]
            ch = mid * Bottleneck.expansion
            blocks += [Bottleneck(ch, mid) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNet expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < 32:
            raise ValueError(f"ResNet needs inputs of at least 32×32 px, got {tuple(x.shape[-2:])}")

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Stage outputs (see the class docstring)."""
        self._check(x)
        feats = {"stem": self.maxpool(self.relu(self.bn1(self.conv1(x))))}
        h = feats["stem"]
        for name in ("layer1", "layer2", "layer3", "layer4"):
            h = getattr(self, name)(h)
            feats[name] = h
        feats["pool"] = self.pool(h).flatten(1)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)["pool"]


class ResNetClassifier(nn.Module):
    """ResNet trunk + one linear head. ``forward(x)`` returns ``{"logits": (B, num_classes)}``."""

    def __init__(self, trunk: ResNet, num_classes: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.heads = nn.ModuleDict({"logits": nn.Linear(trunk.num_features, num_classes)})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.heads["logits"](self.trunk(x))}


@register_model("resnet50")
def resnet50(*, num_classes: int = 1000, in_channels: int = 3) -> ResNetClassifier:
    """ResNet-50: 25,557,032 parameters with 1000 classes."""
    return ResNetClassifier(ResNet(layers=(3, 4, 6, 3), in_channels=in_channels), num_classes)


@register_model("resnet50_tiny")
def resnet50_tiny(*, num_classes: int = 10, in_channels: int = 3) -> ResNetClassifier:
    """ResNet-50 block layout at base width 4 with one block per stage, for fast tests."""
    return ResNetClassifier(ResNet(layers=(1, 1, 1, 1), in_channels=in_channels, width=4), num_classes)
