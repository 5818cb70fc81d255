"""face-api.js ``face_expression`` model (npm ``@vladmandic/face-api`` 1.7.15, MIT) in PyTorch.

Architecture (``src/faceFeatureExtractor``): four dense blocks of depthwise-separable convolutions
(32, 64, 128, 256 channels, each starting with a stride-2 convolution; the first block's first
layer is a plain 3×3 convolution), 7×7 average pool, and a 256→7 linear layer, softmax.
Input: 112×112 RGB, centred zero-pad to square, minus mean RGB (122.782, 117.001, 104.298), ÷ 255.
Output order: neutral, happy, sad, angry, fearful, disgusted, surprised.

Weights: ``model/face_expression_model-weights_manifest.json`` + ``.bin`` (uint8-quantised).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._tf import TFConv, conv_kernel, depthwise_kernel, read_tfjs_weights, resize_bilinear

CLASSES = ("neutral", "happiness", "sadness", "anger", "fear", "disgust", "surprise")
MANIFEST = "face-api/model/face_expression_model-weights_manifest.json"
_MEAN = (122.782, 117.001, 104.298)


class SepConv(nn.Module):
    def __init__(self, cin: int, cout: int, s: int) -> None:
        super().__init__()
        self.dw = TFConv(cin, cin, 3, s, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class DenseBlock4(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.conv0 = TFConv(cin, cout, 3, 2) if first else SepConv(cin, cout, 2)
        self.conv1 = SepConv(cout, cout, 1)
        self.conv2 = SepConv(cout, cout, 1)
        self.conv3 = SepConv(cout, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = F.relu(self.conv0(x))
        o2 = self.conv1(o1)
        o3 = self.conv2(F.relu(o1 + o2))
        o4 = self.conv3(F.relu(o1 + o2 + o3))
        return F.relu(o1 + o2 + o3 + o4)


class FaceExpressionNet(nn.Module):
    """``(B, 3, 112, 112)`` normalised RGB → ``(B, 7)`` logits (softmax gives the probabilities)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = DenseBlock4(3, 32, True)
        self.dense1 = DenseBlock4(32, 64, False)
        self.dense2 = DenseBlock4(64, 128, False)
        self.dense3 = DenseBlock4(128, 256, False)
        self.fc = nn.Linear(256, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dense3(self.dense2(self.dense1(self.dense0(x))))
        x = F.avg_pool2d(x, 7, 2)
        return self.fc(x.flatten(1))


def load(models_dir: str | Path) -> FaceExpressionNet:
    """Build the network and load the TF.js weights from ``models_dir`` (see ``fetch.sh``)."""
    w = read_tfjs_weights(Path(models_dir) / MANIFEST)
    net = FaceExpressionNet()
    sd: dict[str, torch.Tensor] = {}
    for b in range(4):
        for c in range(4):
            p = f"dense{b}/conv{c}/"
            q = f"dense{b}.conv{c}."
            if b == 0 and c == 0:
                sd[q + "conv.weight"] = conv_kernel(w[p + "filters"])
                sd[q + "conv.bias"] = torch.from_numpy(w[p + "bias"])
            else:
                sd[q + "dw.conv.weight"] = depthwise_kernel(w[p + "depthwise_filter"])
                sd[q + "pw.weight"] = conv_kernel(w[p + "pointwise_filter"])
                sd[q + "pw.bias"] = torch.from_numpy(w[p + "bias"])
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(w["fc/weights"].T))
    sd["fc.bias"] = torch.from_numpy(w["fc/bias"])
    net.load_state_dict(sd, strict=True)
    return net.eval()


def prepare(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, S, S)`` float RGB in [0, 255] (square crops) → network input.

    TF.js resizes with its legacy (non half-pixel) bilinear sampling.
    """
    x = resize_bilinear(rgb, 112, half_pixel=False)
    return (x - x.new_tensor(_MEAN).view(1, 3, 1, 1)) / 255.0
