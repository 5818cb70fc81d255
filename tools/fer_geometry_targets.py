"""Precompute FaceMesh landmarks and geometric AU evidence for FER2013 faces (weak AU targets).

FER2013 images are 48×48 grey face crops with no landmarks. This runs the packaged FaceMesh-468 on
each crop (padded by edge replication so the face sits inside a MediaPipe-style ROI of 1.5× the
face box, grey copied to RGB) and turns the landmarks into ``facebehavior.face.geometry`` AU
evidence against a FER-specific neutral: the median measurements of the processed faces whose
FER+ majority vote is neutral (presence ≥ 0.5, |yaw|, |pitch| ≤ 30°), the same definition as the
geometry layer's population neutral, computed on this cache. The result is cached as one ``.npz``
(row indices into ``fer2013.npz``, landmarks, FaceMesh presence, head pose, AU intensity and
probability in the default model's AU order and the mask of AUs geometry covers) for
``tools/train_default.py``.

48 px faces are at the very bottom of FaceMesh's working range, so the evidence is noisy; it is
used as a *weak* target (small loss weight, only on faces with high presence).

    python tools/fer_geometry_targets.py --out _scratch/defaultmodel/fer_geometry.npz --limit 8000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facebehavior import schema
from facebehavior.data.datasets.fer2013 import NPZ_NAME, default_root
from facebehavior.face.geometry import GEOMETRY_AUS, measure, weak_au_targets
from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker, FaceRoi

FER_NPZ = default_root() / NPZ_NAME  # $FACEBEHAVIOR_FER2013/fer2013.npz
PAD = 16  # px of edge replication around the 48 px crop
# Face box of a FER crop as measured with MTCNN keypoints (eyes at y≈0.38, mouth at y≈0.78 of the
# side): centre slightly below the image centre, side ≈ 0.8 of the crop.
BOX_CENTER = (24.0, 26.0)
BOX_SIDE = 0.8 * 48


def default_aus() -> tuple[int, ...]:
    """The default model's AU order: FaceBehaviorNet's 17, then the extra AUs geometry measures."""
    return tuple(schema.AUS_17) + tuple(a for a in GEOMETRY_AUS if a not in schema.AUS_17)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fer", type=Path, default=FER_NPZ)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument(
        "--split", type=int, default=0, help="FER2013 usage code (0 Training, 1 Public, 2 Private)"
    )
    ap.add_argument("--limit", type=int, help="first N rows of a fixed random order of the split")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)

    d = np.load(a.fer)
    rows = np.flatnonzero(d["usage"] == a.split)
    rows = np.random.default_rng(a.seed).permutation(rows)
    if a.limit:
        rows = rows[: a.limit]
    rows = np.sort(rows)
    lm = FaceMeshLandmarker(batch_size=64)
    aus = default_aus()
    pts_all, pres_all = [], []
    t0 = time.time()
    for i in range(0, len(rows), a.batch):
        img = d["images"][rows[i : i + a.batch]]
        img = np.pad(img, ((0, 0), (PAD, PAD), (PAD, PAD)), mode="edge")
        rgb = np.repeat(img[..., None], 3, axis=-1)
        n = len(rgb)
        rois = FaceRoi(
            frame_index=np.arange(n, dtype=np.int64),
            center=np.tile(np.array([BOX_CENTER[0] + PAD, BOX_CENTER[1] + PAD], np.float32), (n, 1)),
            size=np.full(n, 1.5 * BOX_SIDE, np.float32),
            angle=np.zeros(n, np.float32),
        )
        marks = lm.from_rois(rgb, rois)
        pts_all.append(marks.points)
        pres_all.append(marks.presence)
        done = i + n
        rate = done / (time.time() - t0)
        print(f"{done}/{len(rows)} faces, {rate:.1f} faces/s", flush=True)
    pts = np.concatenate(pts_all)
    presence = np.concatenate(pres_all)
    meas, pose = measure(pts)
    votes = d["ferplus_votes"][rows].astype(np.int64)
    neutral_rows = (votes.argmax(1) == 0) & (presence >= 0.5) & (np.abs(pose[:, :2]) <= 30).all(1)
    if neutral_rows.sum() < 20:
        raise RuntimeError(
            f"only {int(neutral_rows.sum())} usable neutral faces; process more rows (--limit)"
        )
    neutral = np.median(meas[neutral_rows], axis=0)
    intensity, prob, mask = weak_au_targets(pts, aus, neutral=neutral)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        a.out,
        rows=rows,
        points=pts.astype(np.float16),
        presence=presence,
        pose=pose.astype(np.float32),
        neutral=neutral,
        intensity=intensity,
        prob=prob,
        mask=mask,
        aus=np.array(aus),
    )
    print(f"wrote {a.out} ({len(rows)} faces, AUs {aus}, geometry covers {np.array(aus)[mask].tolist()})")


if __name__ == "__main__":
    main()
