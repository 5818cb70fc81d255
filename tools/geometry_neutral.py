"""Population neutral face for geometric AU evidence, from FER+ neutral training images.

Writes ``src/facebehavior/face/geometry_neutral.json``: the per-measurement median (and spread) of
:func:`facebehavior.face.geometry.measure` over FER2013 *Training* images whose FER+ majority vote
is "neutral", with the landmarks from FaceMesh run straight on the face crops.

FER2013 images are 48x48 grey face crops, already roughly the face box. MediaPipe feeds FaceMesh a
square of 1.5x the detector's box, so each crop is padded by a quarter of its side on every side
(edge replicate, not black, so the network does not see a hard frame), upscaled bilinearly to
192x192 and copied to three channels. Faces whose FaceMesh presence is below 0.5 count as failures.
Frontalisation is only trustworthy for moderate poses, so the median uses faces within ±30° of
frontal in yaw and pitch.

The landmark pass is cached under ``_scratch/geometry/`` (git-ignored) and shared with
``benchmarks/geometry_sanity.py``. One CPU thread, ~16 ms/face: ~3 min for the 9.4k neutral images.

Usage::

    python tools/geometry_neutral.py [--data path/to/fer2013.npz]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "fer2013" / "fer2013.npz"
CACHE = ROOT / "_scratch" / "geometry"
OUT = ROOT / "src" / "facebehavior" / "face" / "geometry_neutral.json"
WEIGHTS = ROOT / "src" / "facebehavior" / "weights" / "facemesh.safetensors"
FERPLUS_EMOTIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
MAX_ANGLE = 30.0


def ferplus_majority(votes: np.ndarray) -> np.ndarray:
    """(N,) FER+ majority class index into FERPLUS_EMOTIONS, or -1 (tie, no votes, unknown/NF wins)."""
    emo = votes[:, :8].astype(np.int64)
    srt = np.sort(emo, axis=1)
    ok = (srt[:, -1] > srt[:, -2]) & (srt[:, -1] > votes[:, 8:].max(axis=1))
    return np.where(ok, emo.argmax(axis=1), -1)


def load_facemesh() -> torch.nn.Module:
    from safetensors.torch import load_file

    from facebehavior.face.landmarks.facemesh import FaceMeshNet

    net = FaceMeshNet()
    net.load_state_dict({k: v.float() for k, v in load_file(WEIGHTS).items()})
    return net.eval()


def facemesh_on_crops(images: np.ndarray, batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh on grey face crops.

    Args:
        images: (N, H, W) uint8 grey face crops (FER2013: 48x48).

    Returns:
        ``(points, presence)``: (N, 468, 3) float32 in pixels of the 192x192 network input, (N,) presence
        probability.
    """
    net = load_facemesh()
    pad = images.shape[1] // 4
    pts, pres = [], []
    with torch.inference_mode():
        for s in range(0, len(images), batch):
            x = torch.from_numpy(images[s : s + batch]).float()[:, None].div(255.0)
            x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
            x = F.interpolate(x, size=(192, 192), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
            mesh, logit = net(x)
            pts.append(mesh.reshape(-1, 468, 3).numpy())
            pres.append(torch.sigmoid(logit).numpy())
    return np.concatenate(pts), np.concatenate(pres)


def cached_landmarks(data: Path, name: str, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh landmarks of the given FER2013 rows, cached in ``_scratch/geometry/<name>.npz``."""
    path = CACHE / f"{name}.npz"
    if path.is_file():
        with np.load(path) as c:
            if np.array_equal(c["rows"], rows):
                return c["points"], c["presence"]
    images = np.load(data)["images"][rows]
    points, presence = facemesh_on_crops(images)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, rows=rows, points=points, presence=presence)
    return points, presence


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found; pass --data path/to/fer2013.npz (see its README)")

    from facebehavior.face.geometry import MEASUREMENT_UNITS, MEASUREMENTS, measure

    d = np.load(args.data)
    majority = ferplus_majority(d["ferplus_votes"])
    rows = np.flatnonzero((d["usage"] == 0) & (majority == 0))
    points, presence = cached_landmarks(args.data, "fer_train_neutral", rows)
    found = presence >= 0.5
    meas, pose = measure(points[found])
    frontal = (np.abs(pose[:, 0]) <= MAX_ANGLE) & (np.abs(pose[:, 1]) <= MAX_ANGLE)
    m = meas[frontal]
    med = np.median(m, axis=0)
    mad = np.median(np.abs(m - med), axis=0)
    p10, p90 = np.percentile(m, [10, 90], axis=0)
    out = {
        "description": "Population neutral face: median FaceMesh geometry measurements of FER+ neutral faces",
        "source": {
            "dataset": "FER2013 pixels with FER+ crowd labels (Microsoft FERPlus, MIT)",
            "selection": "usage == Training and FER+ majority vote (unique, beating unknown/NF) == neutral",
            "rows": int(rows.size),
            "facemesh_found": int(found.sum()),
            "facemesh_failure_rate": round(float(1 - found.mean()), 4),
            "within_30deg": int(frontal.sum()),
            "landmarker": "FaceMeshNet on the crop padded 25% per side (edge replicate), 192x192, "
            "presence >= 0.5",
            "facemesh_weights_sha256": hashlib.sha256(WEIGHTS.read_bytes()).hexdigest(),
            "tool": "tools/geometry_neutral.py",
            "date": dt.date.today().isoformat(),
        },
        "units": {k: MEASUREMENT_UNITS[k] for k in MEASUREMENTS},
        "median": {k: round(float(v), 6) for k, v in zip(MEASUREMENTS, med, strict=True)},
        "mad": {k: round(float(v), 6) for k, v in zip(MEASUREMENTS, mad, strict=True)},
        "p10": {k: round(float(v), 6) for k, v in zip(MEASUREMENTS, p10, strict=True)},
        "p90": {k: round(float(v), 6) for k, v in zip(MEASUREMENTS, p90, strict=True)},
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(
        f"{rows.size} neutral training images, FaceMesh found {found.sum()} ({found.mean():.1%}), "
        f"{frontal.sum()} within ±{MAX_ANGLE:.0f}° → {OUT.relative_to(ROOT)}"
    )
    for k, v, s in zip(MEASUREMENTS, med, mad, strict=True):
        print(f"  {k:14s} {v:8.4f}  (MAD {s:.4f}) {MEASUREMENT_UNITS[k]}")


if __name__ == "__main__":
    main()
