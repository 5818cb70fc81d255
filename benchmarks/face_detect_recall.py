"""Recall of BlazeFace short- vs full-range on the fixture photos at several downscales.

Ground truth: the 22 faces of ``tests/fixtures/photos/group*.jpg`` (3, 3, 3, 4, 5, 4 per photo),
located by full-range BlazeFace at the photos' stored 960 px width with the threshold lowered
to 0.4 (checked by eye: exactly the 22 faces, no false positives; at 0.3 a hand scores 0.31).
A face counts as found when a detection's centre lies within half the ground-truth box side of
the face centre.

Also measures, with FaceMesh, the mouth width (landmarks 61-291) in units of BlazeFace's
eye-keypoint distance: the constant ``blazeface.MOUTH_HALF_WIDTH`` is half its median.

Run: ``python benchmarks/face_detect_recall.py`` (about a minute on one core).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facebehavior.face.detect import create_detector
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

PHOTOS = Path(__file__).resolve().parent.parent / "tests/fixtures/photos"
EXPECTED = [3, 3, 3, 4, 5, 4]
SCALES = (1.0, 0.5, 0.25, 0.18, 0.12)
CANVAS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _count_found(dets: dict, img: np.ndarray, centres: np.ndarray, side: np.ndarray, found: dict) -> None:
    """Add to ``found[name]`` the ground-truth faces each detector finds in ``img`` (HWC uint8):
    a face counts when a detection's centre lies within half the face's side of its centre."""
    for n, det in dets.items():
        d = det(img[None])
        if len(d) == 0:
            continue
        dc = (d.boxes[:, :2] + d.boxes[:, 2:]) / 2
        dist = np.linalg.norm(centres[:, None] - dc[None], axis=2).min(1)
        found[n] += int((dist < side / 2).sum())


def main() -> None:
    torch.set_num_threads(1)
    photos = [np.asarray(Image.open(PHOTOS / f"group{i}.jpg").convert("RGB")) for i in range(1, 7)]
    gt_det = create_detector("blazeface_full", score_threshold=0.4)
    gts = [gt_det.detect(p[None]) for p in photos]
    counts = [len(g.detections) for g in gts]
    if counts != EXPECTED:
        raise SystemExit(f"ground-truth detection counts changed: {counts} vs {EXPECTED}")

    ratios = []
    lm = FaceMeshLandmarker()
    for p, g in zip(photos, gts, strict=True):
        pts = lm(p[None], g.detections).points
        mouth = np.linalg.norm(pts[:, idx.MOUTH_LEFT, :2] - pts[:, idx.MOUTH_RIGHT, :2], axis=1)
        eyes = np.linalg.norm(g.keypoints6[:, 1] - g.keypoints6[:, 0], axis=1)
        ratios.extend(mouth / eyes)
    ratios = np.array(ratios)
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    print(
        f"mouth width / BlazeFace eye distance over {len(ratios)} faces: median {med:.3f} "
        f"(IQR {q1:.3f}-{q3:.3f}) -> half {med / 2:.3f}"
    )

    dets = {n: create_detector(n) for n in ("blazeface_short", "blazeface_full")}
    print(f"\n{'scale':>6} {'width px':>8} {'face px (median)':>16} " + " ".join(f"{n:>16}" for n in dets))
    for s in SCALES:
        found = {n: 0 for n in dets}
        sides = []
        for p, g in zip(photos, gts, strict=True):
            h, w = p.shape[:2]
            size = (max(1, round(w * s)), max(1, round(h * s)))
            img = np.asarray(Image.fromarray(p).resize(size, Image.BILINEAR, reducing_gap=None))
            sx, sy = size[0] / w, size[1] / h
            boxes = g.detections.boxes * np.array([sx, sy, sx, sy], np.float32)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            side = boxes[:, 2] - boxes[:, 0]
            sides.extend(side)
            _count_found(dets, img, centres, side, found)
        total = sum(EXPECTED)
        row = " ".join(f"{found[n]:>7}/{total} {100 * found[n] / total:4.0f}%" for n in dets)
        print(f"{s:>6.2f} {round(960 * s):>8} {np.median(sides):>16.0f} {row}")

    # Letterboxing makes recall depend on the face size *relative to the frame*, not in pixels:
    # emulate far faces by pasting each photo in the middle of a k-times larger grey canvas.
    print(f"\n{'canvas':>6} {'face/frame width':>16} " + " ".join(f"{n:>16}" for n in dets))
    for k in CANVAS:
        found = {n: 0 for n in dets}
        rel = []
        for p, g in zip(photos, gts, strict=True):
            h, w = p.shape[:2]
            H, W = round(h * k), round(w * k)
            oy, ox = (H - h) // 2, (W - w) // 2
            img = np.full((H, W, 3), 114, np.uint8)
            img[oy : oy + h, ox : ox + w] = p
            boxes = g.detections.boxes + np.array([ox, oy, ox, oy], np.float32)
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            side = boxes[:, 2] - boxes[:, 0]
            rel.extend(side / W)
            _count_found(dets, img, centres, side, found)
        total = sum(EXPECTED)
        row = " ".join(f"{found[n]:>7}/{total} {100 * found[n] / total:4.0f}%" for n in dets)
        print(f"{k:>6.1f} {np.median(rel):>16.3f} {row}")


if __name__ == "__main__":
    main()
