"""Cross-domain expression check: ours vs face-api on a labelled face-crop cache that is not FER2013.

The cache is built by ``facebehavior prepare`` (detection + FaceMesh alignment, as ``Analyzer``
aligns faces at inference); ours reads its crops through its own ``WeightSpec`` input (the
package's one preprocessing path), face-api's probabilities come from ``tools/faceapi_teacher.py``
(its own 68-landmark crop). Prints, over the 7 basic expressions (contempt rows and contempt
probability ignored): accuracy, balanced accuracy (mean recall) and per-class recall with counts.

    python benchmarks/expression_crossdomain.py CACHE [--teacher faceapi.npz] [--weights W ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from facebehavior.data.cache import FaceCache
from facebehavior.models.default import default_model_path, load_default_model, predict_expression_probs
from facebehavior.schema import EXPRESSIONS_7, EXPRESSIONS_8

SEVEN = [EXPRESSIONS_8.index(e) for e in EXPRESSIONS_7]


def report(name: str, probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Print and return accuracy, balanced accuracy and per-class recall over the 7 basic classes."""
    pred = np.asarray(SEVEN)[probs[:, SEVEN].argmax(1)]
    out = {"accuracy": float((pred == labels).mean())}
    recalls = []
    cells = []
    for c in SEVEN:
        m = labels == c
        if m.any():
            r = float((pred[m] == c).mean())
            recalls.append(r)
            out[EXPRESSIONS_8[c]] = r
            cells.append(f"{EXPRESSIONS_8[c][:5]} {100 * r:5.1f} ({m.sum()})")
    out["balanced"] = float(np.mean(recalls))
    print(
        f"{name:<28} acc {100 * out['accuracy']:5.1f}  bal {100 * out['balanced']:5.1f}  | "
        + "  ".join(cells)
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache", type=Path)
    ap.add_argument(
        "--teacher", type=Path, help="face-api probabilities for the cache (tools/faceapi_teacher.py)"
    )
    ap.add_argument("--weights", type=Path, nargs="*", default=None)
    ap.add_argument(
        "--blendshapes",
        type=Path,
        help="blendshapes of the cache's table rows (tools/blendshape_features.py --cache), "
        "for models that take them",
    )
    a = ap.parse_args()
    torch.set_num_threads(1)

    cache = FaceCache(a.cache)
    rows = cache.found  # full-table rows of the items (what the teacher file is keyed by)
    labels = cache.table.expression
    keep = (labels >= 0) & (labels != EXPRESSIONS_8.index("contempt"))
    crops = np.stack([cache.crop(i) for i in np.flatnonzero(keep)])
    print(f"{a.cache}: {keep.sum()} faces with a basic-expression label")
    for w in a.weights or [default_model_path()]:
        model, spec = load_default_model(w)
        report(Path(w).stem, predict_expression_probs(model, spec, crops), labels[keep])
        if a.blendshapes and spec.input.features:
            bs = np.load(a.blendshapes)["bs"][rows[keep]]
            report("  + blendshapes", predict_expression_probs(model, spec, crops, bs), labels[keep])
    if a.teacher:
        t = np.load(a.teacher)
        pos = {r: i for i, r in enumerate(t["row"])}
        idx = [pos[r] for r in rows[keep]]
        report("face-api (68-pt crop)", t["probs"][idx], labels[keep])


if __name__ == "__main__":
    main()
