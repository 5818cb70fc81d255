"""Angular error of the iris-based gaze estimate (``facebehavior.face.gaze``).

Two measurements, printed as mean / median / 90th-percentile angular error in degrees:

1. **Synthetic faces with known gaze**: the canonical face with eyeballs (``render_synthetic_face``),
   random head poses (pitch ±15°, yaw ±30°, roll ±10°) and gazes (±30° yaw, ±20° pitch in the head
   frame), seen by a pinhole camera (true perspective, 600 mm, f = 800 px), with Gaussian landmark
   noise of 0, 0.5 and 1 px (face about 200 px wide). Shares the eyeball model with the estimator, so
   it measures the inversion, the weak-perspective approximation and noise, not the model's fit to
   real eyes.
2. **Real photos, assumed gaze** (``--corpus DIR``, the muxspace facial_expressions layout with
   ``manifest.csv``: press photos and film stills, people mostly looking into the camera). No corpus
   with measured gaze labels is available offline, so the target is the direction from the eyes to the
   camera; a subject looking elsewhere counts as error, so the figure is an upper bound on the error
   for camera-directed gaze. ``--calibrate`` fits the eyeball offset on the ``train`` split and
   evaluates on ``val`` (subject-disjoint), so the printed real-photo figure is out of sample.

    python benchmarks/gaze_accuracy.py [--corpus ../data/mux] [--n 400] [--calibrate]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facebehavior.face.camera import metric_landmarks
from facebehavior.face.gaze import (
    EYE_CORNERS,
    EYEBALL_OFFSET_CM,
    EYEBALL_RADIUS_CM,
    IRIS,
    estimate_gaze,
    render_synthetic_face,
)


def angular_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between unit vectors ``a`` and ``b`` (..., 3)."""
    return np.rad2deg(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def summary(err: np.ndarray) -> str:
    return (
        f"mean {err.mean():5.2f}  median {np.median(err):5.2f}  p90 {np.percentile(err, 90):5.2f} deg"
        f"  (n={err.size})"
    )


def synthetic(n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    yaw, pitch = np.deg2rad(rng.uniform(-30, 30, n)), np.deg2rad(rng.uniform(-20, 20, n))
    gaze = np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch), -np.cos(yaw) * np.cos(pitch)], 1)
    pose = np.stack([rng.uniform(-15, 15, n), rng.uniform(-30, 30, n), rng.uniform(-10, 10, n)], 1)
    pts, truth = render_synthetic_face(gaze, pose)
    width = np.ptp(pts[:, :468, 0], axis=1).mean()
    print(f"synthetic faces (face width {width:.0f} px, perspective camera, per-eye vectors):")
    for sigma in (0.0, 0.5, 1.0):
        noisy = pts + rng.normal(0, sigma, pts.shape) * np.array([1, 1, 0])
        est = estimate_gaze(noisy).vectors
        print(f"  noise {sigma:.1f} px: {summary(angular_error_deg(est, truth[:, None]))}")


def _landmarks(corpus: Path, split: str, n: int, cache: Path | None) -> dict[str, np.ndarray]:
    """Face Mesh V2 landmarks of the largest face of the first ``n`` images of a split (cached)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as d:
            return dict(d)
    import pandas as pd
    from PIL import Image

    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

    man = pd.read_csv(corpus / "manifest.csv")
    man = man[man["split"] == split].head(n)
    # The corpus's faces fill the frame: short-range BlazeFace finds them, full-range mostly does not.
    det_fn, lm = create_detector("blazeface_short"), FaceMeshV2Landmarker()
    pts, sizes = [], []
    for rel in man["image"]:
        img = np.asarray(Image.open(corpus / rel).convert("RGB"))
        det = det_fn(img[None])
        if len(det) == 0:
            continue
        out = lm(img[None], det, refine=1)
        k = int(np.argmax(np.prod(np.ptp(out.points[:, :, :2], axis=1), axis=1)))
        if out.presence[k] < 0.9:
            continue
        pts.append(out.points[k])
        sizes.append(img.shape[:2])
    res = {"points": np.asarray(pts, np.float64), "sizes": np.asarray(sizes)}
    if cache is not None:
        np.savez(cache, **res)
    return res


def _camera_targets(points: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(F, 2, 3) unit vectors from each eye's corner midpoint to the camera (camera frame)."""
    out = np.empty((len(points), 2, 3))
    for i, (p, hw) in enumerate(zip(points, sizes, strict=True)):
        mm = metric_landmarks(p, tuple(hw)).points[0]
        for e, (a, b) in enumerate(EYE_CORNERS):
            mid = (mm[a] + mm[b]) / 2
            out[i, e] = -mid / np.linalg.norm(mid)
    return out


def calibrate(points: np.ndarray, targets: np.ndarray) -> tuple[float, float, float]:
    """Least-squares eyeball offset (right eye, head frame, cm) making ``targets`` the gaze, trimmed."""
    from facebehavior.face.pose import canonical_face, similarity_fit

    face = canonical_face()
    s, rot, _ = similarity_fit(face.vertices, points[:, :468], face.weights())
    rows, rhs = [], []
    for e, ((a, b), iris) in enumerate(zip(EYE_CORNERS, IRIS, strict=True)):
        mirror = np.diag([1.0, 1.0, 1.0] if e == 0 else [-1.0, 1.0, 1.0])
        mid = (points[:, a, :2] + points[:, b, :2]) / 2
        # iris - mid = s R o + s r g  (image-plane part)  =>  R_xy · mirror · o = (iris - mid)/s - r g_xy
        rows.append((rot[:, :2, :] @ mirror).reshape(-1, 3))
        rhs.append(
            ((points[:, iris[0], :2] - mid) / s[:, None] - EYEBALL_RADIUS_CM * targets[:, e, :2]).ravel()
        )
    a_mat, b_vec = np.concatenate(rows), np.concatenate(rhs)
    keep = np.ones(len(b_vec), bool)
    for _ in range(3):  # drop faces clearly not looking into the camera, refit
        o, *_ = np.linalg.lstsq(a_mat[keep], b_vec[keep], rcond=None)
        res = np.abs(a_mat @ o - b_vec)
        keep = res < 3.0 * np.median(res[keep])
    return tuple(float(v) for v in o)  # type: ignore[return-value]


def real(corpus: Path, n: int, do_calibrate: bool, cache_dir: Path | None) -> None:
    t0 = time.perf_counter()
    cache = (lambda s: cache_dir / f"gaze_{s}_{n}.npz") if cache_dir is not None else (lambda s: None)
    val = _landmarks(corpus, "val", n, cache("val"))
    offset = EYEBALL_OFFSET_CM
    if do_calibrate:
        train = _landmarks(corpus, "train", n, cache("train"))
        offset = calibrate(train["points"], _camera_targets(train["points"], train["sizes"]))
        print(
            f"calibrated eyeball offset on {len(train['points'])} train faces: "
            f"({offset[0]:.3f}, {offset[1]:.3f}, {offset[2]:.3f}) cm (shipped: {EYEBALL_OFFSET_CM})"
        )
    targets = _camera_targets(val["points"], val["sizes"])
    est = estimate_gaze(val["points"], offset_cm=offset).vectors
    err = angular_error_deg(est, targets)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    both = angular_error_deg(unit(est.mean(1)), unit(targets.mean(1)))
    print(f"real photos, val split, target = into the camera ({time.perf_counter() - t0:.0f} s):")
    print(f"  per eye:          {summary(err)}")
    print(f"  mean of the eyes: {summary(both)}   within 10 deg: {np.mean(both < 10):.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--corpus", type=Path, default=None, help="muxspace facial_expressions folder (manifest.csv)"
    )
    ap.add_argument("--n", type=int, default=400, help="images per split")
    ap.add_argument("--calibrate", action="store_true", help="fit the eyeball offset on the train split")
    ap.add_argument("--cache", type=Path, default=None, help="folder to cache landmarks in")
    ap.add_argument("--synthetic", type=int, default=500)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.synthetic > 0:
        synthetic(args.synthetic)
    if args.corpus is not None:
        real(args.corpus, args.n, args.calibrate, args.cache)


if __name__ == "__main__":
    main()
