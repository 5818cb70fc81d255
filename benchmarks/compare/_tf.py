"""TensorFlow-compatible building blocks shared by the comparison ports (evaluation only).

TF's ``SAME`` padding is asymmetric on stride 2 (the extra row/column goes bottom/right) and its
kernels are laid out ``[kh, kw, in, out]`` (depthwise ``[kh, kw, C, mult]``); these helpers do the
conversions once so each port reads like its original graph.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``(B, C, H, W)`` like TF ``SAME`` for a ``k``×``k`` window with stride ``s``."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=value)


class TFConv(nn.Module):
    """Conv2d (optionally depthwise) with TF padding semantics; ``padding`` is "same" or "valid"."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        s: int = 1,
        padding: str = "same",
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, 0, groups=groups, bias=bias)
        self.k, self.s, self.padding = k, s, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "same":
            x = same_pad(x, self.k, self.s)
        return self.conv(x)


def tf_maxpool_same(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TF ``MaxPool`` with ``SAME`` padding (padding never wins the max)."""
    return F.max_pool2d(same_pad(x, k, s, value=float("-inf")), k, s)


def conv_kernel(w: np.ndarray) -> torch.Tensor:
    """TF ``[kh, kw, in, out]`` → torch ``[out, in, kh, kw]``."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1)))).float()


def depthwise_kernel(w: np.ndarray) -> torch.Tensor:
    """TF depthwise ``[kh, kw, C, 1]`` → torch ``[C, 1, kh, kw]``."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)))).float()


def resize_bilinear(x: torch.Tensor, size: int, half_pixel: bool = True) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` to ``size``×``size``.

    ``half_pixel=True`` is OpenCV / TF2 / torch ``align_corners=False``; ``False`` is the legacy
    TF1 / TF.js ``resizeBilinear(x, size, alignCorners=false)`` sampling ``src = dst * in / out``.
    """
    if half_pixel:
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    h, w = x.shape[-2:]
    ys = torch.arange(size, dtype=torch.float32) * (h / size)
    xs = torch.arange(size, dtype=torch.float32) * (w / size)
    y0 = ys.floor().long().clamp(max=h - 1)
    x0 = xs.floor().long().clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)
    x1 = (x0 + 1).clamp(max=w - 1)
    fy = (ys - y0.float()).view(1, 1, -1, 1)
    fx = (xs - x0.float()).view(1, 1, 1, -1)
    top = x[..., y0, :][..., x0] * (1 - fx) + x[..., y0, :][..., x1] * fx
    bot = x[..., y1, :][..., x0] * (1 - fx) + x[..., y1, :][..., x1] * fx
    return top * (1 - fy) + bot * fy


def read_tfjs_weights(manifest_path: str | Path) -> dict[str, np.ndarray]:
    """Read a TF.js weights manifest (weights-only ``*-weights_manifest.json`` or a graph ``model.json``).

    Weights are concatenated across each group's shards in manifest order; ``uint8``/``uint16``
    affine-quantised entries are dequantised as ``q * scale + min`` and ``float16`` cast.

    Raises:
        ValueError: the shards' byte count does not match the manifest.
    """
    path = Path(manifest_path)
    meta = json.loads(path.read_text())
    groups = meta["weightsManifest"] if isinstance(meta, dict) else meta
    out: dict[str, np.ndarray] = {}
    for g in groups:
        buf = b"".join((path.parent / p).read_bytes() for p in g["paths"])
        off = 0
        for wdesc in g["weights"]:
            shape = wdesc["shape"]
            n = int(np.prod(shape)) if shape else 1
            q = wdesc.get("quantization")
            if q:
                qdt = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}[q["dtype"]]
                raw = np.frombuffer(buf, dtype=qdt, count=n, offset=off)
                off += n * np.dtype(qdt).itemsize
                arr = raw.astype(np.float32) if q["dtype"] == "float16" else raw * q["scale"] + q["min"]
            else:
                dt = {"float32": np.float32, "int32": np.int32}[wdesc["dtype"]]
                arr = np.frombuffer(buf, dtype=dt, count=n, offset=off)
                off += n * np.dtype(dt).itemsize
            out[wdesc["name"]] = np.asarray(
                arr, dtype=np.float32 if arr.dtype != np.int32 else np.int32
            ).reshape(shape)
        if off != len(buf):
            raise ValueError(f"{path}: manifest describes {off} bytes but the shards hold {len(buf)}")
    return out
