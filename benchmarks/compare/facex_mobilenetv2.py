"""MobileNetV2 expression model of PyPI ``facex`` 1.1.0 (MIT) in PyTorch.

``facex/assets/model_optimized.tflite`` is a Keras MobileNetV2 (width 1.0) on 200×200×3 input
followed by a dense layer on the flattened 6×6×1280 map (no global pooling) → 7, softmax. Most
kernels are weight-only quantised in TFLite's old hybrid format: the tensors are typed uint8 but
hold int8 values (``real = scale * int8``, zero point 0), and the hybrid CONV_2D/FULLY_CONNECTED
kernels quantise their *input* on the fly to int8 (symmetric, per batch). The port dequantises the
weights once at load and, by default, emulates that input quantisation. Fed the runtime's own
intermediate tensors, each layer then matches ``ai-edge-litert`` to ~1e-5; end to end, float
rounding differences occasionally flip an int8 rounding step (one step ≈ max|x|/127) and those
flips compound, so whole-image probabilities differ by up to ~0.2 and top-1 agrees on ~94 % of
faces (``check_ports.py``).
Input: grayscale copied to three channels, in [0, 1]
(``skimage.transform.resize`` to 200×200). Output order: anger, disgust, fear, happy, neutral,
sadness, surprised.

Reading the flatbuffer needs the ``tflite`` schema package (a development dependency).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ._tf import resize_bilinear

CLASSES = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
TFLITE = "facex/facex/assets/model_optimized.tflite"

# (expansion, out channels, stride) of blocks 1..16; "expanded_conv" is block 0 (t=1, 16, s=1).
_STAGES = ((24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1))  # (out, repeats, stride)
_BLOCKS = [(6, c, s) for c, n, s0 in _STAGES for s in [s0] + [1] * (n - 1)]


def _hybrid_q(x: torch.Tensor) -> torch.Tensor:
    """Per-sample symmetric int8 fake quantisation (TFLite hybrid kernels, batch of 1)."""
    s = x.detach().abs().amax(dim=tuple(range(1, x.ndim)), keepdim=True).clamp(min=1e-12) / 127.0
    return torch.round(x / s) * s


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, t: int, stride: int) -> None:
        super().__init__()
        self.hybrid = True
        mid = cin * t
        self.expand = nn.Conv2d(cin, mid, 1) if t != 1 else None
        self.dw = nn.Conv2d(mid, mid, 3, stride, 0, groups=mid)
        self.project = nn.Conv2d(mid, cout, 1)
        self.stride, self.residual = stride, stride == 1 and cin == cout
        self.pad: tuple[int, int, int, int] = (1, 1, 1, 1)  # overwritten from the file for stride 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = _hybrid_q if self.hybrid else (lambda t: t)
        y = F.relu6(self.expand(q(x))) if self.expand is not None else x
        y = F.relu6(self.dw(F.pad(y, self.pad)))
        y = self.project(q(y) if self.expand is not None else y)  # block 0 is all float
        return x + y if self.residual else y


class FacexMobileNetV2(nn.Module):
    """``(B, 3, 200, 200)`` in [0, 1] → ``(B, 7)`` logits."""

    def __init__(self, emulate_hybrid: bool = True) -> None:
        super().__init__()
        self.emulate_hybrid = emulate_hybrid
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 0)
        self.conv1_pad: tuple[int, int, int, int] = (0, 1, 0, 1)
        blocks, cin = [Block(32, 16, 1, 1)], 16
        for t, c, s in _BLOCKS:
            blocks.append(Block(cin, c, t, s))
            cin = c
        for b in blocks:
            b.hybrid = emulate_hybrid
        self.blocks = nn.Sequential(*blocks)
        self.conv_last = nn.Conv2d(320, 1280, 1)
        self.fc = nn.Linear(6 * 6 * 1280, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.conv1(F.pad(x, self.conv1_pad)))
        q = _hybrid_q if self.emulate_hybrid else (lambda t: t)
        x = F.relu6(self.conv_last(q(self.blocks(x))))
        return self.fc(q(x.permute(0, 2, 3, 1).flatten(1)))  # TF flattens NHWC


def _layer_of(name: str) -> str:
    m = re.search(r"(Conv1|expanded_conv_\w+?|block_\d+_[a-z]+|Conv_1|predictis)/", name)
    if m is None:
        raise ValueError(f"unrecognised tensor {name!r}")
    return m.group(1)


def load(models_dir: str | Path, emulate_hybrid: bool = True) -> FacexMobileNetV2:
    """Build the network and load (dequantised) weights from the TFLite file in ``models_dir``."""
    import tflite

    buf = (Path(models_dir) / TFLITE).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    g = model.Subgraphs(0)
    op_name = {v: k for k, v in tflite.BuiltinOperator.__dict__.items() if not k.startswith("_")}

    def tensor(i: int, dequantize_op: bool = False) -> np.ndarray:
        t = g.Tensors(i)
        raw = model.Buffers(t.Buffer()).DataAsNumpy().tobytes()
        if t.Type() == tflite.TensorType.FLOAT32:
            return np.frombuffer(raw, dtype=np.float32).reshape(t.ShapeAsNumpy())
        if t.Type() == tflite.TensorType.INT32:
            return np.frombuffer(raw, dtype=np.int32).reshape(t.ShapeAsNumpy())
        q = t.Quantization()
        scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0))
        if dequantize_op:  # DEQUANTIZE reads real uint8 with an affine zero point
            a = np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - zp
        else:  # hybrid kernels read the "uint8" bytes as int8 with zero point 0
            if zp != 0:
                raise ValueError(f"{t.Name().decode()}: hybrid weights with zero point {zp}")
            a = np.frombuffer(raw, dtype=np.int8).astype(np.float32)
        return (a * scale).reshape(t.ShapeAsNumpy())

    dequant_src: dict[int, int] = {}
    layers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pads: list[tuple[int, int, int, int]] = []
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = op_name[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        ins = [op.Inputs(j) for j in range(op.InputsLength())]
        if kind == "DEQUANTIZE":
            dequant_src[op.Outputs(0)] = ins[0]
        elif kind == "PAD":
            p = tensor(ins[1])  # [[0,0],[top,bottom],[left,right],[0,0]]
            pads.append((int(p[2, 0]), int(p[2, 1]), int(p[1, 0]), int(p[1, 1])))
        elif kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            wi = dequant_src.get(ins[1], ins[1])
            w = tensor(wi, dequantize_op=ins[1] in dequant_src)
            layers[_layer_of(g.Tensors(wi).Name().decode())] = (w, tensor(ins[2]))

    net = FacexMobileNetV2(emulate_hybrid=emulate_hybrid)
    sd: dict[str, torch.Tensor] = {}

    def put(key: str, layer: str, depthwise: bool = False) -> None:
        w, b = layers[layer]
        # TFLite conv kernels are [out, kh, kw, in]; depthwise [1, kh, kw, C].
        w = np.transpose(w, (3, 0, 1, 2)) if depthwise else np.transpose(w, (0, 3, 1, 2))
        sd[key + ".weight"] = torch.from_numpy(np.array(w, dtype=np.float32))
        sd[key + ".bias"] = torch.from_numpy(b.copy()).float()

    put("conv1", "Conv1")
    put("blocks.0.dw", "expanded_conv_depthwise", depthwise=True)
    put("blocks.0.project", "expanded_conv_project")
    for k in range(1, 17):
        put(f"blocks.{k}.expand", f"block_{k}_expand")
        put(f"blocks.{k}.dw", f"block_{k}_depthwise", depthwise=True)
        put(f"blocks.{k}.project", f"block_{k}_project")
    put("conv_last", "Conv_1")
    fw, fb = layers["predictis"]
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(fw)).float()
    sd["fc.bias"] = torch.from_numpy(fb.copy()).float()
    net.load_state_dict(sd, strict=True)
    # Explicit PAD ops precede Conv1 and the stride-2 depthwise convolutions, in graph order.
    strided = [b for b in net.blocks if b.stride == 2]
    if len(pads) != 1 + len(strided):
        raise ValueError(f"expected {1 + len(strided)} PAD ops, found {len(pads)}")
    net.conv1_pad = pads[0]
    for blk, p in zip(strided, pads[1:], strict=True):
        blk.pad = p
    return net.eval()


def prepare(grey: torch.Tensor) -> torch.Tensor:
    """``(B, 1, S, S)`` float grey in [0, 255] → ``(B, 3, 200, 200)`` in [0, 1]."""
    return (resize_bilinear(grey, 200, half_pixel=True) / 255.0).expand(-1, 3, -1, -1)
