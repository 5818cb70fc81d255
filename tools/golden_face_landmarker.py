"""Produce the golden fixtures for the Face Landmarker v2 port (dev-only, run once).

References, all independent of the library and of PyTorch:

* LiteRT (``ai-edge-litert``) running each ``.tflite`` member of ``face_landmarker.task`` on
  stored inputs: raw network outputs;
* MediaPipe's Tasks API (``mediapipe``, ``vision.FaceLandmarker``, image mode, blendshapes on) on
  real photos (``samples/face.jpg``, ``tests/fixtures/photos/*.jpg``): landmarks and blendshapes
  as MediaPipe users get them;
* a plain re-implementation of what MediaPipe does between its networks, written here from
  MediaPipe's graph sources (face_detector_graph.cc, face_landmarks_detector_graph.cc,
  image_to_tensor_converter_opencv.cc, tensors_to_detections / non_max_suppression /
  detection_projection / detections_to_rects / rect_transformation / landmark_projection
  calculators) in float32 like MediaPipe, with OpenCV's classic fixed-point bilinear warp (the
  one MediaPipe's bundled OpenCV runs; the ``cv2`` wheel's warp interpolates in float and does
  not reproduce MediaPipe's crops). With LiteRT for the networks it reproduces MediaPipe's
  landmarks to about 1e-3 px and its blendshapes to 3e-4 (printed below); it gives the ROI and
  the 256x256 crop MediaPipe used for each face, which the Tasks API does not expose.

Rerun (about a minute)::

    pip install mediapipe ai-edge-litert   # 1.2.x; brings opencv-contrib-python
    python tools/golden_face_landmarker.py ../shared/models/face_landmarker/face_landmarker.task
    python tools/convert_face_landmarker.py ../shared/models/face_landmarker/face_landmarker.task

Writes ``tests/fixtures/face_landmarker/{raw,mediapipe_photos}.npz`` and prints the figures
quoted in ``tests/fixtures/face_landmarker/README.md``.
"""

from __future__ import annotations

import argparse
import math
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/face_landmarker"
PHOTOS = [REPO / "samples/face.jpg", *sorted((REPO / "tests/fixtures/photos").glob("*.jpg"))]
# Crops kept whole in raw.npz (they are 196 kB each): (photo, MediaPipe face rank), chosen for a
# tilted face (-39°), a frontal one and a small face from a group photo, plus one background crop.
RAW_FACES = [("face.jpg", 2), ("face.jpg", 3), ("group3.jpg", 1)]
BACKGROUND = ("group1.jpg", (80.0, 560.0, 150.0, 0.3))  # photo, (cx, cy, side, angle): floor/legs

# From MediaPipe's face_blendshapes_graph.cc (kLandmarksSubsetIdxs), restated so that the
# reference does not import the library.
SUBSET = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477,
)  # fmt: skip
f32 = np.float32


# ---- MediaPipe's glue, float32, written from its calculator sources --------------------------
def anchors() -> list[tuple[np.float32, np.float32]]:
    """SsdAnchorsCalculator for face_detector_graph.cc (fixed anchor size, 16x16x2 + 8x8x6)."""
    out = []
    for side, per_cell in ((16, 2), (8, 6)):
        for y in range(side):
            for x in range(side):
                out += [(f32(f32(x + 0.5) / f32(side)), f32(f32(y + 0.5) / f32(side)))] * per_cell
    return out


def decode(scores: np.ndarray, boxes: np.ndarray, threshold: float = 0.5) -> list[dict]:
    """TensorsToDetectionsCalculator (reverse_output_order, scale 128, sigmoid, clip 100)."""
    dets = []
    for i, (ax, ay) in enumerate(anchors()):
        logit = f32(min(max(float(scores[i, 0]), -100.0), 100.0))
        with np.errstate(over="ignore"):  # exp(100) overflows float32 to inf: score 0, as in C++
            score = f32(f32(1) / (f32(1) + f32(math.exp(-float(logit)))))
        if score < f32(threshold):
            continue
        r = boxes[i].astype(f32)
        xc, yc = f32(f32(r[0] / f32(128)) + ax), f32(f32(r[1] / f32(128)) + ay)
        w, h = f32(r[2] / f32(128)), f32(r[3] / f32(128))
        xmin, ymin = f32(xc - f32(w / f32(2))), f32(yc - f32(h / f32(2)))
        xmax, ymax = f32(xc + f32(w / f32(2))), f32(yc + f32(h / f32(2)))
        kps = [
            (f32(f32(r[4 + 2 * k] / f32(128)) + ax), f32(f32(r[5 + 2 * k] / f32(128)) + ay)) for k in range(6)
        ]
        dets.append(dict(score=score, xmin=xmin, ymin=ymin, w=f32(xmax - xmin), h=f32(ymax - ymin), kps=kps))
    return dets


def _iou(a: dict, b: dict) -> np.float32:
    x1, y1 = max(a["xmin"], b["xmin"]), max(a["ymin"], b["ymin"])
    x2 = min(f32(a["xmin"] + a["w"]), f32(b["xmin"] + b["w"]))
    y2 = min(f32(a["ymin"] + a["h"]), f32(b["ymin"] + b["h"]))
    if x2 <= x1 or y2 <= y1:
        return f32(0)
    inter = f32(f32(x2 - x1) * f32(y2 - y1))
    union = f32(f32(f32(a["w"] * a["h"]) + f32(b["w"] * b["h"])) - inter)
    return f32(inter / union) if union > 0 else f32(0)


def weighted_nms(dets: list[dict], threshold: float = 0.3) -> list[dict]:
    """NonMaxSuppressionCalculator, WEIGHTED: score-weighted box and keypoints, best score kept."""
    remaining = sorted(range(len(dets)), key=lambda i: -dets[i]["score"])
    out = []
    while remaining:
        top = dets[remaining[0]]
        group = [i for i in remaining if _iou(dets[i], top) > threshold]
        rest = [i for i in remaining if not _iou(dets[i], top) > threshold]
        total, sx1, sy1, sx2, sy2 = (f32(0),) * 5
        kp = [[f32(0), f32(0)] for _ in range(6)]
        for i in group:
            d, s = dets[i], dets[i]["score"]
            total = f32(total + s)
            sx1, sy1 = f32(sx1 + f32(d["xmin"] * s)), f32(sy1 + f32(d["ymin"] * s))
            sx2, sy2 = (
                f32(sx2 + f32(f32(d["xmin"] + d["w"]) * s)),
                f32(sy2 + f32(f32(d["ymin"] + d["h"]) * s)),
            )
            for k in range(6):
                kp[k] = [f32(kp[k][0] + f32(d["kps"][k][0] * s)), f32(kp[k][1] + f32(d["kps"][k][1] * s))]
        merged = dict(top)
        merged["xmin"], merged["ymin"] = f32(sx1 / total), f32(sy1 / total)
        merged["w"], merged["h"] = (
            f32(f32(sx2 / total) - merged["xmin"]),
            f32(f32(sy2 / total) - merged["ymin"]),
        )
        merged["kps"] = [(f32(x / total), f32(y / total)) for x, y in kp]
        out.append(merged)
        if len(rest) == len(remaining):
            break
        remaining = rest
    return out


def subrect_matrix(cx, cy, w, h, rot, width: int, height: int) -> np.ndarray:
    """GetRotatedSubRectToRectTransformMatrix (rows 1-2 of the 4x4, float32)."""
    a, b, c, d = f32(w), f32(h), f32(np.cos(f32(rot))), f32(np.sin(f32(rot)))
    g, hh = f32(f32(1) / f32(width)), f32(f32(1) / f32(height))
    m = np.zeros(8, f32)
    m[0], m[1] = f32(f32(a * c) * g), f32(f32(-b * d) * g)
    m[3] = f32(f32(f32(f32(f32(-0.5) * a) * c) + f32(f32(f32(0.5) * b) * d) + f32(cx)) * g)
    m[4], m[5] = f32(f32(a * d) * hh), f32(f32(b * c) * hh)
    m[7] = f32(f32(f32(f32(f32(-0.5) * b) * c) - f32(f32(f32(0.5) * a) * d) + f32(cy)) * hh)
    return m


def _project(m: np.ndarray, x, y) -> tuple[np.float32, np.float32]:
    return f32(f32(f32(x * m[0]) + f32(y * m[1])) + m[3]), f32(f32(f32(x * m[4]) + f32(y * m[5])) + m[7])


def letterbox_roi(width: int, height: int) -> tuple:
    """ImageToTensor's whole-image ROI, padded to the square tensor's aspect (keep_aspect_ratio)."""
    w, h = f32(width), f32(height)
    side_w, side_h = (w, w) if f32(1) > f32(h / w) else (h, h)
    return f32(f32(0.5) * w), f32(f32(0.5) * h), side_w, side_h


def detections_to_rois(dets: list[dict], width: int, height: int) -> list[dict]:
    """DetectionProjection → DetectionsToRects (rotation from keypoints 0 → 1) → RectTransformation
    (x 1.5, not squared) → ImageToTensor's pixel ROI."""
    m = subrect_matrix(*letterbox_roi(width, height), 0.0, width, height)
    rois = []
    for d in dets:
        kps = [_project(m, *k) for k in d["kps"]]
        x1, y1 = d["xmin"], d["ymin"]
        x2, y2 = f32(x1 + d["w"]), f32(y1 + d["h"])
        pts = [_project(m, x1, y1), _project(m, x2, y1), _project(m, x2, y2), _project(m, x1, y2)]
        lo_x, hi_x = min(p[0] for p in pts), max(p[0] for p in pts)
        lo_y, hi_y = min(p[1] for p in pts), max(p[1] for p in pts)
        bw, bh = f32(hi_x - lo_x), f32(hi_y - lo_y)
        xc, yc = f32(lo_x + f32(bw / f32(2))), f32(lo_y + f32(bh / f32(2)))
        x0, y0 = f32(kps[0][0] * f32(width)), f32(kps[0][1] * f32(height))
        x1_, y1_ = f32(kps[1][0] * f32(width)), f32(kps[1][1] * f32(height))
        rot = f32(f32(0) - f32(math.atan2(float(f32(-f32(y1_ - y0))), float(f32(x1_ - x0)))))
        rot = f32(rot - 2 * math.pi * math.floor((rot + math.pi) / (2 * math.pi)))
        w15, h15 = f32(bw * f32(1.5)), f32(bh * f32(1.5))
        rois.append(
            dict(
                score=d["score"],
                cx=f32(xc * f32(width)),
                cy=f32(yc * f32(height)),
                w=f32(w15 * f32(width)),
                h=f32(h15 * f32(height)),
                rot=rot,
            )
        )
    return rois


def warp_matrix(cx, cy, w, h, rot, size: int) -> np.ndarray:
    """The dst → src map cv2.warpPerspective uses for MediaPipe's ROI (boxPoints → corners)."""
    import cv2

    src = cv2.boxPoints(
        ((float(cx), float(cy)), (float(w), float(h)), float(f32(float(f32(f32(rot) * f32(180))) / math.pi)))
    )
    dst = np.array([[0, size], [0, 0], [size, 0], [size, size]], np.float32)
    return cv2.invert(cv2.getPerspectiveTransform(src.astype(np.float32), dst))[1]


def warp_fixed_point(img: np.ndarray, inverse: np.ndarray, size: int, replicate: bool) -> np.ndarray:
    """OpenCV's classic warpPerspective, INTER_LINEAR on uint8: positions rounded to 1/32 px,
    5-bit x 5-bit integer weights, (sum + 2**14) >> 15 with the 2**15-scaled table."""
    height, width = img.shape[:2]
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    m = inverse
    x0 = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    y0 = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    ww = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
    ww = np.where(ww != 0, 32.0 / ww, 0.0)
    qx, qy = np.rint(x0 * ww).astype(np.int64), np.rint(y0 * ww).astype(np.int64)
    ix, iy, fx, fy = qx >> 5, qy >> 5, qx & 31, qy & 31
    src = img.astype(np.int64)
    acc = np.zeros((size, size, img.shape[2]), np.int64)
    for dy, dx, wgt in ((0, 0, (32 - fx) * (32 - fy)), (0, 1, fx * (32 - fy)), (1, 0, (32 - fx) * fy),
                        (1, 1, fx * fy)):  # fmt: skip
        yy, xx = iy + dy, ix + dx
        v = src[np.clip(yy, 0, height - 1), np.clip(xx, 0, width - 1)]
        if not replicate:
            v = np.where(((yy >= 0) & (yy < height) & (xx >= 0) & (xx < width))[..., None], v, 0)
        acc += v * (wgt * 32)[..., None]
    return ((acc + (1 << 14)) >> 15).astype(np.uint8)


def project_landmarks(raw: np.ndarray, roi: dict, width: int, height: int) -> np.ndarray:
    """TensorsToLandmarks (/256) → LandmarkProjection with IMAGE_DIMENSIONS (matrix; z scaled by
    the length of the projected x axis in normalised units). Returns MediaPipe's normalised x, y, z."""
    m = subrect_matrix(roi["cx"], roi["cy"], roi["w"], roi["h"], roi["rot"], width, height)
    x, y, z = (raw[:, k].astype(f32) / f32(256) for k in range(3))
    px = ((x * m[0] + y * m[1]).astype(f32) + m[3]).astype(f32)
    py = ((x * m[4] + y * m[5]).astype(f32) + m[7]).astype(f32)
    dx, dy = f32(f32(m[0] + m[3]) - m[3]), f32(f32(m[4] + m[7]) - m[7])
    scale = f32(math.sqrt(float(dx) ** 2 + float(dy) ** 2))
    return np.stack([px, py, (z * scale).astype(f32)], 1)


# ---- runtimes ---------------------------------------------------------------------------------
class LiteRT:
    def __init__(self, model: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.it = Interpreter(model_content=model, num_threads=1)
        self.it.allocate_tensors()

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.it.set_tensor(self.it.get_input_details()[0]["index"], np.ascontiguousarray(x, np.float32)[None])
        self.it.invoke()
        return {d["name"]: self.it.get_tensor(d["index"]).copy() for d in self.it.get_output_details()}


def mediapipe_landmarker(task: Path, img: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(task)), output_face_blendshapes=True, num_faces=10
    )
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        r = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(img)))
    marks = np.array([[[p.x, p.y, p.z] for p in face] for face in r.face_landmarks], np.float32).reshape(
        -1, 478, 3
    )
    scores = np.array([[c.score for c in face] for face in r.face_blendshapes], np.float32).reshape(-1, 52)
    names = [c.category_name for c in r.face_blendshapes[0]] if r.face_blendshapes else []
    return marks, scores, names


def main() -> None:
    import hashlib

    from ai_edge_litert import __version__ as litert_version
    from mediapipe import __version__ as mp_version
    from PIL import Image

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task", type=Path, help="face_landmarker.task")
    args = ap.parse_args()
    bundle = zipfile.ZipFile(args.task)
    detector = LiteRT(bundle.read("face_detector.tflite"))
    mesh_net = LiteRT(bundle.read("face_landmarks_detector.tflite"))
    blend_net = LiteRT(bundle.read("face_blendshapes.tflite"))

    columns = ("source", "rank", "roi", "roi_height", "mp_landmarks", "mp_blendshapes", "emu_landmarks",
               "emu_blendshapes", "presence", "crop_sha256")  # fmt: skip
    rows: dict[str, list] = {k: [] for k in columns}
    names: list[str] = []
    crops: dict[tuple[str, int], np.ndarray] = {}
    raws: dict[tuple[str, int], dict] = {}
    worst = dict(xy=0.0, z=0.0, blend=0.0)
    for photo in PHOTOS:
        img = np.asarray(Image.open(photo).convert("RGB"))
        height, width = img.shape[:2]
        mp_marks, mp_scores, mp_names = mediapipe_landmarker(args.task, img)
        names = mp_names or names
        # Detector input: ImageToTensor on the letterboxed whole image, range [-1, 1].
        letterbox = warp_fixed_point(img, warp_matrix(*letterbox_roi(width, height), 0.0, 128), 128, False)
        out = detector(letterbox.astype(f32) * f32(2 / 255) + f32(-1))
        by_width = {v.shape[-1]: v[0] for v in out.values()}  # (896, 1) scores, (896, 16) boxes
        rois = detections_to_rois(weighted_nms(decode(by_width[1], by_width[16])), width, height)
        emu = []
        for roi in rois:
            crop = warp_fixed_point(
                img, warp_matrix(roi["cx"], roi["cy"], roi["w"], roi["h"], roi["rot"], 256), 256, True
            )
            raw = mesh_net(crop.astype(f32) * f32(1 / 255))
            presence = 1 / (1 + math.exp(-float(raw["Identity_1"].ravel()[0])))
            if presence < 0.5:  # MediaPipe drops the face (min_face_presence_confidence)
                continue
            marks = project_landmarks(raw["Identity"].reshape(478, 3), roi, width, height)
            scores = blend_net(marks[list(SUBSET), :2] * np.array([width, height], f32))
            emu.append((roi, crop, raw, marks, next(iter(scores.values())).ravel(), presence))
        if len(emu) != len(mp_marks):
            raise SystemExit(
                f"{photo.name}: MediaPipe returned {len(mp_marks)} faces, the reference {len(emu)}"
            )
        for rank, (mp_lm, mp_bs) in enumerate(zip(mp_marks, mp_scores, strict=True)):
            k = int(np.argmin([np.abs(e[3][:, :2] - mp_lm[:, :2]).mean() for e in emu]))
            roi, crop, raw, marks, scores, presence = emu[k]
            px = np.array([width, height], np.float64)
            worst["xy"] = max(worst["xy"], float(np.abs((marks[:, :2] - mp_lm[:, :2]) * px).max()))
            worst["z"] = max(worst["z"], float(np.abs((marks[:, 2] - mp_lm[:, 2]) * width).max()))
            worst["blend"] = max(worst["blend"], float(np.abs(scores - mp_bs).max()))
            rows["source"].append(photo.name)
            rows["rank"].append(rank)
            rows["roi"].append([roi["cx"], roi["cy"], roi["w"], roi["rot"]])
            rows["roi_height"].append(roi["h"])
            rows["mp_landmarks"].append(mp_lm)
            rows["mp_blendshapes"].append(mp_bs)
            rows["emu_landmarks"].append(marks)
            rows["emu_blendshapes"].append(scores)
            rows["presence"].append(presence)
            rows["crop_sha256"].append(hashlib.sha256(crop.tobytes()).hexdigest())
            crops[(photo.name, rank)] = crop
            raws[(photo.name, rank)] = raw
    sizes = {p.name: np.asarray(Image.open(p)).shape[:2] for p in PHOTOS}
    e2e = {k: np.asarray(v) for k, v in rows.items()}
    e2e["image_size"] = np.array([sizes[s][::-1] for s in rows["source"]], np.int64)  # width, height
    e2e["roi"] = e2e["roi"].astype(np.float32)
    e2e["blendshape_names"] = np.array(names)
    e2e["mediapipe_version"] = np.array(mp_version)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT / "mediapipe_photos.npz", **e2e)

    # Raw-level goldens: LiteRT on stored crops (MediaPipe's, for three faces) and a background crop.
    photo, (cx, cy, side, angle) = BACKGROUND
    img = np.asarray(Image.open(REPO / "tests/fixtures/photos" / photo).convert("RGB"))
    background = warp_fixed_point(img, warp_matrix(cx, cy, side, side, angle, 256), 256, True)
    inputs = [crops[key] for key in RAW_FACES] + [background]
    outs = [raws[key] for key in RAW_FACES] + [mesh_net(background.astype(f32) * f32(1 / 255))]
    blend_inputs = np.stack(
        [
            m[list(SUBSET), :2] * np.array(sz, f32)
            for m, sz in zip(e2e["emu_landmarks"], e2e["image_size"], strict=True)
        ]
    ).astype(f32)
    raw = dict(
        mesh_inputs=np.stack(inputs),
        mesh_sources=np.array([f"{p}#{r}" for p, r in RAW_FACES] + [f"{photo}:background"]),
        mesh_litert=np.stack([o["Identity"].reshape(-1) for o in outs]).astype(f32),
        presence_litert=np.array([o["Identity_1"].ravel()[0] for o in outs], f32),  # logit
        aux_litert=np.array([o["Identity_2"].ravel()[0] for o in outs], f32),  # sigmoid score
        blend_inputs=blend_inputs,
        blend_litert=np.stack([next(iter(blend_net(x).values())).ravel() for x in blend_inputs]).astype(f32),
        litert_version=np.array(f"ai-edge-litert {litert_version}"),
    )
    np.savez_compressed(OUT / "raw.npz", **raw)
    print(
        f"mediapipe {mp_version}, ai-edge-litert {litert_version}: {len(rows['source'])} faces on "
        f"{len(PHOTOS)} photos"
    )
    print(
        "reference pipeline vs MediaPipe's Tasks output: landmarks x, y max |diff| "
        f"{worst['xy']:.2e} px, z {worst['z']:.2e} px (x W), blendshapes {worst['blend']:.2e}"
    )
    print("background presence:", 1 / (1 + math.exp(-float(raw["presence_litert"][-1]))))
    for f in sorted(OUT.glob("*.npz")):
        print(f.relative_to(REPO), f.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
