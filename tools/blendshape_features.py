"""Face Landmarker v2 blendshapes of a labelled corpus, computed as the Analyzer computes them.

Per face: this package's BlazeFace detection → Face Mesh V2 on the detection ROI refined once from
its own landmarks (``Analyzer._rois_from_detections``) → Blendshape V2. Faces whose V2 presence is
below 0.5 (the Analyzer's ``min_presence``) get a NaN row, as the pipeline would drop them.

* ``--fer SPLIT``: FER2013 rows of a split (``train``/``val``/``test``). The 48 px crop is padded
  by 16 px of edge replication (so the face sits inside a MediaPipe-style ROI of 1.5x its box)
  and upscaled to 240 px (bicubic) before detection. Output rows follow ``fer2013.npz``; rows of
  other splits are NaN.
* ``--cache DIR``: the face-crop cache's faces on their original images, from the cache's stored
  detection (box and keypoints). Output rows follow the cache table; faces the cache has not
  found are NaN.

    python tools/blendshape_features.py --fer test -o fer_bs_port.npz
    python tools/blendshape_features.py --cache CACHE -o cache_bs_port.npz
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facebehavior.data.cache import FaceCache
from facebehavior.data.datasets.fer2013 import NPZ_NAME, SPLIT_USAGE, default_root
from facebehavior.face.detect import create_detector
from facebehavior.face.landmarks.blendshapes import FaceBlendshapes
from facebehavior.face.landmarks.facemesh import roi_from_detections, roi_from_landmarks
from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker
from facebehavior.io.images import read_image
from facebehavior.types import Detections

MIN_PRESENCE = 0.5


class Scorer:
    """Detections on frames → blendshapes (NaN where V2's presence is low)."""

    def __init__(self) -> None:
        self.lm = FaceMeshV2Landmarker()
        self.bs = FaceBlendshapes()

    def __call__(self, images: np.ndarray, dets: Detections) -> np.ndarray:
        rois = roi_from_detections(dets)
        first = self.lm.from_rois(images, rois)
        marks = self.lm.from_rois(images, roi_from_landmarks(first.points, dets.frame_index))
        out = self.bs(marks.points)
        out[np.asarray(marks.presence) < MIN_PRESENCE] = np.nan
        return out


def largest(dets: Detections, n: int) -> Detections:
    """The largest detection of each of ``n`` frames (frames without one are left out)."""
    area = (dets.boxes[:, 2] - dets.boxes[:, 0]) * (dets.boxes[:, 3] - dets.boxes[:, 1])
    keep = []
    for f in range(n):
        idx = np.flatnonzero(dets.frame_index == f)
        if idx.size:
            keep.append(idx[np.argmax(area[idx])])
    k = np.asarray(keep, np.int64)
    return Detections(dets.frame_index[k], dets.boxes[k], dets.scores[k], dets.keypoints[k])


def fer_features(split: str, batch: int) -> np.ndarray:
    d = np.load(default_root() / NPZ_NAME)
    images, usage = d["images"], d["usage"]
    rows = np.flatnonzero(usage == SPLIT_USAGE[split])
    det, score = create_detector("blazeface_short"), Scorer()
    out = np.full((len(images), 52), np.nan, np.float32)
    t = time.time()
    for s in range(0, len(rows), batch):
        r = rows[s : s + batch]
        big = [
            Image.fromarray(np.pad(images[i], 16, mode="edge")).resize((240, 240), Image.BICUBIC) for i in r
        ]
        frames = np.stack([np.asarray(b) for b in big])
        frames = np.ascontiguousarray(np.repeat(frames[..., None], 3, -1))
        dets = largest(det(frames), len(r))
        if len(dets):
            out[r[dets.frame_index]] = score(frames, dets)
        print(f"{s + len(r)}/{len(rows)} rows, {time.time() - t:.0f} s", flush=True)
    return out


def cache_features(folder: Path) -> np.ndarray:
    c = FaceCache(folder)
    score = Scorer()
    out = np.full((len(c.full_table), 52), np.nan, np.float32)
    t = time.time()
    for k, row in enumerate(c.found):
        img = read_image(Path(c.full_table.root) / c.full_table.image[row])
        dets = Detections(
            np.zeros(1, np.int64),
            c.index["box"][row][None].astype(np.float32),
            c.index["score"][row][None].astype(np.float32),
            c.index["kp5"][row][None].astype(np.float32),
        )
        out[row] = score(img[None], dets)[0]
        if k % 500 == 0:
            print(f"{k}/{len(c.found)} faces, {time.time() - t:.0f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--fer", choices=("train", "val", "test"))
    src.add_argument("--cache", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    bs = fer_features(a.fer, a.batch) if a.fer else cache_features(a.cache)
    np.savez_compressed(a.out, bs=bs)
    print(f"{np.isfinite(bs[:, 0]).sum()} faces with blendshapes → {a.out}")


if __name__ == "__main__":
    main()
