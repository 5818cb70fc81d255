"""AU calibration on weak labels (F1 at 0.5, ROC AUC, ECE, reliability diagram) and derived VA per class.

No AU-coded corpus is available offline, so AU outputs are scored against *weak* occurrence labels
derived from confident expression labels (``facebehavior.data.weak_targets.weak_au_labels``: an AU
is present on faces of an emotion it is prototypical of, absent on neutral faces and on emotions
it is unrelated to; AU45 from the blendshape teacher). These labels measure whether 0.5 is a
usable threshold on faces that show an emotion's prototypical configuration — the situation of
posed apex frames — not AU detection on spontaneous video.

Sets: FER+ PrivateTest (Microsoft majority labels) and, optionally, a labelled face-crop cache of
another corpus (``--cache``), each with precomputed blendshapes (``bs`` rows, NaN = none). Models
without a blendshape input ignore them.

    python benchmarks/au_calibration.py --fer-blendshapes fer_bs.npz \
        [--cache CACHE --cache-blendshapes bs.npz] [--weights A.safetensors B.safetensors] \
        [--plot reliability.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facebehavior import schema
from facebehavior.data.cache import FaceCache
from facebehavior.data.datasets.fer2013 import FER2013, default_root
from facebehavior.data.weak_targets import weak_au_labels
from facebehavior.metrics import au_auc, au_f1, expected_calibration_error, reliability_bins
from facebehavior.models.default import default_model_path, load_default_model, predict


def fer_test(root: Path, bs_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ad = FER2013(root, majority="microsoft")
    t = ad.load("test")
    rows = np.array([int(s.split(":")[-1]) for s in t.image], np.int64)
    return ad.image_array(t), np.asarray(t.expression), np.load(bs_file)["bs"][rows]


def cache_set(folder: Path, bs_file: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = FaceCache(folder)
    y = np.asarray(c.table.expression)
    return np.stack([c.crop(i) for i in range(len(c))]), y, np.load(bs_file)["bs"][c.found]


def score(name: str, model, spec, faces, expr, bs, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    aus = tuple(int(code[2:]) for code in spec.tasks["au"])
    prob = predict(model, spec, faces, blendshapes=bs)["au"]
    y, m = weak_au_labels(expr, bs, aus)
    keep = (m.sum(0) >= 10) & ((y * m).sum(0) >= 5)  # AUs with enough weak labels of both kinds
    f1 = au_f1(y[:, keep], prob[:, keep], m[:, keep])
    auc = au_auc(y[:, keep], prob[:, keep], m[:, keep])
    ece = expected_calibration_error(y[:, keep], prob[:, keep], m[:, keep], bins=bins)
    cells = "  ".join(
        f"AU{a:02d} {f:.2f}/{u:.2f}" for a, f, u in zip(np.asarray(aus)[keep], f1, auc, strict=True)
    )
    print(f"  {name:<26} mean F1@0.5 {f1.mean():.3f}  mean AUC {np.nanmean(auc):.3f}  ECE {ece:.3f}")
    print(f"    per AU (F1@0.5/AUC): {cells}")
    if "va" in spec.tasks:
        va = predict(model, spec, faces, blendshapes=bs)["va"]
        per = []
        for c, e in enumerate(schema.EXPRESSIONS_8):
            sel = expr == c
            if sel.sum() >= 5:
                per.append(f"{e[:5]} {va[sel, 0].mean():+.2f}/{va[sel, 1].mean():+.2f}")
        r = np.corrcoef(va[:, 0], va[:, 1])[0, 1]
        print(f"    valence/arousal mean per class: {'  '.join(per)};  r(V, A) over all faces {r:+.2f}")
    return reliability_bins(y[:, keep], prob[:, keep], m[:, keep], bins=bins)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fer-root", type=Path, default=default_root())
    ap.add_argument("--fer-blendshapes", type=Path, required=True)
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--cache-blendshapes", type=Path)
    ap.add_argument("--weights", type=Path, nargs="*")
    ap.add_argument("--bins", type=int, default=10)
    ap.add_argument("--plot", type=Path, help="reliability diagram PNG")
    a = ap.parse_args()
    torch.set_num_threads(1)

    sets = {"FER+ PrivateTest": fer_test(a.fer_root, a.fer_blendshapes)}
    if a.cache:
        sets[a.cache.name] = cache_set(a.cache, a.cache_blendshapes)
    curves = {}
    for w in a.weights or [default_model_path()]:
        model, spec = load_default_model(w)
        print(f"{Path(w).stem}:")
        for set_name, (faces, expr, bs) in sets.items():
            n_conf = int((expr >= 0).sum())
            curves[(Path(w).stem, set_name)] = score(
                f"{set_name} ({n_conf})", model, spec, faces, expr, bs, a.bins
            )
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
        for (w, s), (conf, freq, count) in curves.items():
            ok = count > 0
            ax.plot(conf[ok], freq[ok], marker="o", label=f"{w} · {s}")
        ax.set(
            xlabel="predicted AU probability",
            ylabel="observed frequency (weak labels)",
            xlim=(0, 1),
            ylim=(0, 1),
        )
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"reliability diagram: {a.plot}")


if __name__ == "__main__":
    main()
