"""Sanity check of geometric AU evidence on real faces: FER+ test images by majority class.

For every FER+ majority class, prints the mean geometric AU intensity (population neutral, no
calibration) and checks that the mean evidence of that emotion's prototypical AUs (relatedness
table A, Du et al. 2014, restricted to the AUs geometry sees) is higher than on the neutral class.

Landmarks: FaceMesh run straight on the 48x48 crops (padded 25% per side, upscaled to 192), as in
``tools/geometry_neutral.py``, whose landmark cache (``_scratch/geometry/``) this script shares.
Faces with FaceMesh presence < 0.5 are dropped and counted as failures.

Usage::

    python benchmarks/geometry_sanity.py [--data path/to/fer2013.npz] [--max-angle 30]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import mannwhitneyu

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from geometry_neutral import (  # noqa: E402
    DEFAULT_DATA,
    FERPLUS_EMOTIONS,
    cached_landmarks,
    ferplus_majority,
)

from facebehavior.face import geometry as g  # noqa: E402
from facebehavior.relatedness import TABLE_A  # noqa: E402


def main() -> None:
    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--split",
        choices=("private", "public"),
        default="private",
        help="FER2013 PrivateTest (report) or PublicTest (dev)",
    )
    parser.add_argument("--max-angle", type=float, default=90.0, help="drop faces beyond this |yaw|/|pitch|")
    args = parser.parse_args()
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found; pass --data path/to/fer2013.npz")

    d = np.load(args.data)
    majority = ferplus_majority(d["ferplus_votes"])
    usage = 2 if args.split == "private" else 1
    rows = np.flatnonzero((d["usage"] == usage) & (majority >= 0))
    points, presence = cached_landmarks(args.data, f"fer_{args.split}test", rows)
    cls = majority[rows]
    found = presence >= 0.5
    print(
        f"FER+ {args.split.capitalize()}Test, unique-majority rows: {rows.size}; "
        f"FaceMesh found {found.sum()} "
        f"(failure rate {1 - found.mean():.1%})"
    )

    res = g.analyze_geometry(points[found])
    keep = (np.abs(res.pose[:, :2]) <= args.max_angle).all(axis=1)
    inten, prob = g.evidence_to_intensity(res.raw[keep])
    cls_f = cls[found][keep]
    chan = {name: i for i, name in enumerate(g.CHANNELS)}
    aus = g.GEOMETRY_AUS

    print(
        "\nMean geometric AU intensity (0-5) per FER+ majority class "
        f"(|yaw|,|pitch| <= {args.max_angle:.0f}°)"
    )
    print(f"{'class':10s} {'n':>5s} {'fail':>5s} " + " ".join(f"{au:>5d}" for au in aus))
    for k, name in enumerate(FERPLUS_EMOTIONS):
        m = cls_f == k
        fail = 1 - found[cls == k].mean() if (cls == k).any() else float("nan")
        vals = " ".join(f"{inten[m, chan[f'AU{au:02d}']].mean():5.2f}" for au in aus) if m.any() else ""
        print(f"{name:10s} {m.sum():5d} {fail:5.1%} {vals}")

    print("\nPrototypical geometric AUs (table A) — mean intensity and mean probability, class vs neutral")
    neutral = cls_f == 0
    ok_all = True
    for emo, row in TABLE_A.entries.items():
        proto = [au for au, w in row.items() if w == 1.0 and f"AU{au:02d}" in chan]
        k = FERPLUS_EMOTIONS.index(emo)
        m = cls_f == k
        cols = [chan[f"AU{au:02d}"] for au in proto]
        ci, ni = inten[m][:, cols].mean(), inten[neutral][:, cols].mean()
        cp, npb = prob[m][:, cols].mean(), prob[neutral][:, cols].mean()
        ok = ci > ni
        ok_all &= ok
        per_au = ", ".join(
            f"AU{au} {inten[m, c].mean():.2f}/{inten[neutral, c].mean():.2f}"
            for au, c in zip(proto, cols, strict=True)
        )
        print(
            f"  {emo:10s} AUs {proto}: intensity {ci:.3f} vs {ni:.3f}, prob {cp:.3f} vs {npb:.3f} "
            f"[{'higher' if ok else 'NOT higher'}]  ({per_au})"
        )
    print(f"\nall classes higher than neutral: {ok_all}")

    # Separability: ROC AUC of the signed evidence, class vs neutral (Mann-Whitney U / n1·n0).
    raw = res.raw[keep]
    print("\nAUC of each prototypical AU's signed evidence, class vs neutral")
    for emo, row in TABLE_A.entries.items():
        m = cls_f == FERPLUS_EMOTIONS.index(emo)
        aucs = []
        for au in (a for a, w in row.items() if w == 1.0 and f"AU{a:02d}" in chan):
            x, y0 = raw[m, chan[f"AU{au:02d}"]], raw[neutral, chan[f"AU{au:02d}"]]
            u = mannwhitneyu(x, y0).statistic
            aucs.append(f"AU{au} {u / (len(x) * len(y0)):.2f}")
        print(f"  {emo:10s} " + ", ".join(aucs))


if __name__ == "__main__":
    main()
