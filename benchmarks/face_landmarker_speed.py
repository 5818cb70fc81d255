"""FaceMesh v1 (468) vs Face Mesh V2 (478 + blendshapes): speed at 1 thread and landmark quality.

Speed: milliseconds per face in PyTorch at one intra-op thread, for the networks alone (inputs
ready) at batch 1 and 8, the crops, the whole ``from_rois`` call and the blendshape model.

Quality, on the 13 faces MediaPipe's Face Landmarker finds in the fixture photos
(``tests/fixtures/face_landmarker/mediapipe_photos.npz``), all in units of the inter-ocular
distance (outer eye corners 33-263; 60-70 px here):

* agreement with MediaPipe's own Face Landmarker output (the 468 points both models share), both
  models on MediaPipe's ROI and end to end from this package's BlazeFace. V2 *is* MediaPipe's
  current model, so this measures how far v1 is from it, not which is closer to the truth;
* stability: each face is re-run on 8 jittered ROIs (centre ±4 % of the side, side x 0.93-1.07,
  ±4°); the per-point standard deviation over the jitters, averaged over eyes, mouth, brows and
  the whole mesh (lower is better: landmarks should follow the face, not the crop), and the
  same for V2's blendshape scores. V2 is also run with one refinement pass (``refine=1``).

Run: ``python benchmarks/face_landmarker_speed.py [--repeats 20] [--only speed|quality]``. The
timings are medians of interleaved rounds (every variant timed once per round), so on a shared
machine the rows of one run are comparable; runs are not.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from facebehavior.face.detect import create_detector
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.landmarks.blendshapes import FaceBlendshapes
from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker, FaceRoi, crop_rois, roi_from_landmarks
from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests/fixtures/face_landmarker/mediapipe_photos.npz"
REGIONS = {
    "eyes": list(idx.RIGHT_EYE) + list(idx.LEFT_EYE),
    "mouth": list(idx.LIPS),
    "brows": list(idx.RIGHT_EYEBROW) + list(idx.LEFT_EYEBROW),
    "all 468": list(range(idx.NUM_POINTS)),
}


def interleaved_ms(fns: dict[Hashable, Callable[[], object]], repeats: int) -> dict[Hashable, float]:
    """Median milliseconds per call of each function, timed in turn within every round so that
    all of them see the same load on a shared machine."""
    for fn in fns.values():
        fn()  # warm-up
    times: dict[Hashable, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def photo(name: str) -> np.ndarray:
    path = REPO / "samples" / name if name == "face.jpg" else REPO / "tests/fixtures/photos" / name
    return np.asarray(Image.open(path).convert("RGB"))


def speed(v1: FaceMeshLandmarker, v2: FaceMeshV2Landmarker, scorer: FaceBlendshapes, repeats: int) -> None:
    img = photo("face.jpg")
    centre = np.tile([[480.0, 384.0]], (8, 1)).astype(np.float32)
    sides, angles = np.linspace(150, 260, 8).astype(np.float32), np.linspace(-0.3, 0.3, 8).astype(np.float32)
    rois8 = FaceRoi(np.zeros(8, np.int64), centre, sides, angles)
    rois1 = FaceRoi(rois8.frame_index[:1], rois8.center[:1], rois8.size[:1], rois8.angle[:1])
    pts8 = v2.from_rois(img[None], rois8).points
    pts64 = np.repeat(pts8, 8, axis=0)
    x = {s: (torch.rand(1, 3, s, s), torch.rand(8, 3, s, s)) for s in (192, 256)}
    fns = {}
    for name, lm, size, crop in (
        ("FaceMesh v1 (192)", v1, 192, lambda r: crop_rois(img[None], r, 192)),
        ("Face Mesh V2 (256)", v2, 256, lambda r: v2.crop(img[None], r)),
    ):
        fns[f"{name} network"] = (
            lambda lm=lm, s=size: lm.runner(x[s][0]),
            lambda lm=lm, s=size: lm.runner(x[s][1]),
        )
        fns[f"{name} crop"] = (lambda crop=crop: crop(rois1), lambda crop=crop: crop(rois8))
        fns[f"{name} from_rois (crop+net+map)"] = (
            lambda lm=lm: lm.from_rois(img[None], rois1),
            lambda lm=lm: lm.from_rois(img[None], rois8),
        )
    fns["Blendshape V2 (batch 1 / batch 64)"] = (lambda: scorer(pts8[:1]), lambda: scorer(pts64))
    with torch.inference_mode():
        ms = interleaved_ms({(k, b): f[b] for k, f in fns.items() for b in (0, 1)}, repeats)
    print("speed, ms per face (PyTorch, 1 thread, median of interleaved rounds):")
    print(f"  {'':44s}{'batch 1':>10s}{'batch 8':>10s}")
    for k in fns:
        big = 64 if k.startswith("Blendshape") else 8
        print(f"  {k:44s}{ms[(k, 0)]:10.2f}{ms[(k, 1)] / big:10.2f}")


def jitter(rois: FaceRoi, rng: np.random.Generator, n: int) -> list[FaceRoi]:
    out = []
    for _ in range(n):
        f = len(rois)
        shift = rng.uniform(-0.04, 0.04, (f, 2)) * rois.size[:, None]
        out.append(
            FaceRoi(
                rois.frame_index,
                (rois.center + shift).astype(np.float32),
                (rois.size * rng.uniform(0.93, 1.07, f)).astype(np.float32),
                (rois.angle + np.radians(rng.uniform(-4, 4, f))).astype(np.float32),
            )
        )
    return out


def quality(v1: FaceMeshLandmarker, v2: FaceMeshV2Landmarker, scorer: FaceBlendshapes) -> None:
    g = dict(np.load(GOLDEN))
    n = len(g["source"])
    size = g["image_size"].astype(np.float64)
    ref = g["mp_landmarks"][:, :, :2] * size[:, None, :]
    iod = np.linalg.norm(ref[:, idx.LEFT_EYE_OUTER] - ref[:, idx.RIGHT_EYE_OUTER], axis=1)
    images = {s: photo(s) for s in np.unique(g["source"])}
    r = g["roi"]
    rois = [
        FaceRoi(np.zeros(1, np.int64), r[i : i + 1, :2], r[i : i + 1, 2], r[i : i + 1, 3]) for i in range(n)
    ]

    def run(model: str, i: int, roi: FaceRoi) -> np.ndarray:
        img = images[g["source"][i]][None]
        if model == "v1":
            return v1.from_rois(img, roi).points[0]
        out = v2.from_rois(img, roi).points
        if model == "v2 refine=1":
            out = v2.from_rois(img, roi_from_landmarks(out)).points
        return out[0]

    models = ("v1", "v2", "v2 refine=1")
    print(
        f"\nagreement with MediaPipe Face Landmarker's output, mean |diff| / inter-ocular dist. ({n} faces):"
    )
    print(f"  {'':28s}" + "".join(f"{r:>10s}" for r in REGIONS))
    for model in models:
        d = np.stack(
            [
                np.linalg.norm(run(model, i, rois[i])[:468, :2] - ref[i, :468], axis=1) / iod[i]
                for i in range(n)
            ]
        )
        print(
            f"  {model + ' on MediaPipe ROI':28s}"
            + "".join(f"{d[:, r].mean():10.4f}" for r in REGIONS.values())
        )
    det = create_detector("blazeface_short")
    e2e = {m: [] for m in models}
    for name, img in images.items():
        found = det(img[None])
        outs = {"v1": v1(img[None], found).points, "v2": v2(img[None], found).points,
                "v2 refine=1": v2(img[None], found, refine=1).points}  # fmt: skip
        for i in np.nonzero(g["source"] == name)[0]:
            for m, pts in outs.items():
                if len(pts) == 0:
                    continue
                j = int(np.argmin([np.linalg.norm(p[:468, :2] - ref[i, :468], axis=1).mean() for p in pts]))
                e2e[m].append(np.linalg.norm(pts[j, :468, :2] - ref[i, :468], axis=1) / iod[i])
    for m in models:
        d = np.stack(e2e[m])
        print(f"  {m + ' from BlazeFace':28s}" + "".join(f"{d[:, r].mean():10.4f}" for r in REGIONS.values()))

    rng = np.random.default_rng(12)
    print("\nstability over 8 jittered ROIs: per-point std / inter-ocular distance (lower is better):")
    print(f"  {'':28s}" + "".join(f"{r:>10s}" for r in REGIONS) + f"{'blendsh.':>10s}")
    for model in models:
        stds, bstds = [], []
        for i in range(n):
            pts = np.stack([run(model, i, r) for r in jitter(rois[i], rng, 8)])
            spread = np.sqrt(pts[:, :468, :2].var(0).sum(-1)) / iod[i]
            stds.append(spread)
            if model != "v1":
                bstds.append(scorer(pts).std(0).mean())
        s = np.stack(stds)
        bs = f"{np.mean(bstds):10.4f}" if bstds else f"{'-':>10s}"
        print(f"  {model:28s}" + "".join(f"{s[:, r].mean():10.4f}" for r in REGIONS.values()) + bs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--only", choices=("speed", "quality"), help="run one of the two parts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    v1, v2, scorer = FaceMeshLandmarker(), FaceMeshV2Landmarker(), FaceBlendshapes()
    if args.only != "quality":
        speed(v1, v2, scorer, args.repeats)
    if args.only != "speed":
        quality(v1, v2, scorer)


if __name__ == "__main__":
    main()
