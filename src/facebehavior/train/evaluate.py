"""Evaluate an exported checkpoint on a dataset split with the papers' metrics.

Lightning-free: the model comes from ``load_weights`` (safetensors + ``WeightSpec``); inputs and
outputs go through ``facebehavior.models.transforms`` (``preprocess``, ``postprocess``), exactly as
``Analyzer`` computes them. Metrics come from
``facebehavior.metrics``:

- expression (samples with a single-class label, e.g. the FER+ majority): accuracy, mean diagonal
  of the normalised confusion matrix (= UAR), macro F1, per-class F1, the confusion matrix, and
  FaceBehaviorNet's / ABAW's ``0.67·F1 + 0.33·accuracy`` and the EmotioNet expression score;
- AU (annotated samples per AU): per-AU F1 and accuracy, mean F1, the ABAW and EmotioNet AU scores
  (soft targets count as present at >= 0.5);
- VA: CCC, RMSE and Pearson per dimension.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facebehavior import metrics
from facebehavior.models.transforms import postprocess, preprocess
from facebehavior.models.weights import WeightSpec, load_weights
from facebehavior.train.data import LabelledImages, eval_loader, load_set

__all__ = ["evaluate_checkpoint", "predict", "compute_metrics", "save_report"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    spec: WeightSpec,
    ds: LabelledImages,
    batch_size: int = 256,
    tta_flip: bool = False,
) -> dict[str, np.ndarray]:
    """Run ``model`` over ``ds``; returns predictions and the labels, keyed as in the batch format.

    Args:
        tta_flip: average expression/AU probabilities and VA over the image and its mirror.

    Returns:
        ``pred_<task>`` for every task of ``spec.tasks`` (``pred_expression`` (N, E) probabilities,
        ``pred_au`` (N, A) probabilities, ``pred_va`` (N, 2) ...: ``models.transforms.postprocess``'s
        values), plus every label array of the batches (``expression``, ``au_mask`` ...).
    """
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    for batch in eval_loader(ds, batch_size):
        x = preprocess(batch["image"], spec)
        views = [x, torch.flip(x, dims=[3])] if tta_flip else [x]
        acc: dict[str, np.ndarray] = {}
        for v in views:
            for k, y in postprocess(spec, model(v)).items():
                acc[k] = acc[k] + y if k in acc else y
        for k, y in acc.items():
            chunks.setdefault(f"pred_{k}", []).append(y / np.float32(len(views)) if tta_flip else y)
        for k, y in batch.items():
            if k != "image":
                chunks.setdefault(k, []).append(y.numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def compute_metrics(pred: dict[str, np.ndarray], spec: WeightSpec) -> dict[str, Any]:
    """Per-task metrics (see the module docstring) from ``predict``'s output."""
    res: dict[str, Any] = {}
    if "pred_expression" in pred:
        labels = list(spec.tasks["expression"])
        m = pred["expression_hard"] > 0
        if m.any():
            y, p = pred["expression"][m], pred["pred_expression"][m].argmax(1)
            C = len(labels)
            f1 = metrics.f1_per_class(y, p, C)
            acc = metrics.accuracy(y, p)
            res["expression"] = {
                "n": int(m.sum()),
                "accuracy": acc,
                "mean_diagonal": metrics.mean_diagonal(y, p, C),
                "macro_f1": metrics.macro_f1(y, p, C),
                "score_0.67f1_0.33acc": metrics.abaw_expr_score(y, p, C),
                "emotionet_score": metrics.emotionet_expr_score(y, p, C),
                "per_class_f1": dict(zip(labels, map(float, f1), strict=True)),
                "per_class_support": dict(zip(labels, map(int, np.bincount(y, minlength=C)), strict=True)),
                "labels": labels,
                "confusion_matrix": metrics.confusion_matrix(y, p, C).tolist(),
            }
    if "pred_au" in pred and pred["au_mask"].sum() > 0:
        codes = list(spec.tasks["au"])
        cols = pred["au_mask"].sum(0) > 0
        t, p, msk = pred["au"][:, cols], pred["pred_au"][:, cols], pred["au_mask"][:, cols]
        t = (t >= 0.5).astype(np.float32)  # soft targets are scored as occurrence at >= 0.5
        names = [c for c, k in zip(codes, cols, strict=True) if k]
        f1 = metrics.au_f1(t, p, msk)
        acc = metrics.au_accuracy(t, p, msk)
        res["au"] = {
            "n": int((msk.sum(1) > 0).sum()),
            "f1_mean": float(np.mean(f1)),
            "abaw_score": metrics.abaw_au_score(t, p, msk),
            "emotionet_score": metrics.emotionet_au_score(t, p, msk),
            "per_au_f1": dict(zip(names, map(float, f1), strict=True)),
            "per_au_accuracy": dict(zip(names, map(float, acc), strict=True)),
        }
    if "pred_va" in pred and pred["va_mask"].sum() > 1:
        m = pred["va_mask"] > 0
        res["va"] = {"n": int(m.sum())}
        for j, name in enumerate(("valence", "arousal")):
            y, p = pred["va"][m, j], pred["pred_va"][m, j]
            res["va"][name] = {"ccc": float(metrics.ccc(y, p)), "rmse": float(metrics.rmse(y, p)),
                               "pearson": float(metrics.pearson(y, p))}  # fmt: skip
    return res


def evaluate_checkpoint(
    checkpoint: str | Path,
    set_cfg: Any,
    *,
    batch_size: int = 256,
    tta_flip: bool = False,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Load ``checkpoint`` and evaluate it on the split described by ``set_cfg`` (a ``SetConfig``).

    Returns:
        ``(metrics, predictions)``.
    """
    model, spec = load_weights(checkpoint)
    aus = tuple(int(c[2:]) for c in spec.tasks.get("au", ()))
    ds = LabelledImages(
        load_set(set_cfg),
        aus,
        spec.input.channels,
        spec.input.size,
        attributes=len(spec.tasks.get("attribute", ())),
        sequence_length=set_cfg.sequence_length,
    )
    pred = predict(model, spec, ds, batch_size, tta_flip)
    res = compute_metrics(pred, spec)
    res["checkpoint"] = str(checkpoint)
    res["dataset"] = {"name": set_cfg.dataset, "split": set_cfg.split, "n": len(ds), "tta_flip": tta_flip}
    return res, pred


def save_report(res: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``metrics.json``, per-class / per-AU CSV tables and the confusion-matrix plot."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json"]
    (out / "metrics.json").write_text(json.dumps(res, indent=1))
    if "expression" in res:
        e = res["expression"]
        lines = ["class,f1,support"] + [
            f"{c},{e['per_class_f1'][c]:.4f},{e['per_class_support'][c]}" for c in e["labels"]
        ]
        (out / "expression_per_class.csv").write_text("\n".join(lines) + "\n")
        written += [out / "expression_per_class.csv", plot_confusion(e, out / "confusion_matrix.png")]
    if "au" in res:
        a = res["au"]
        lines = ["au,f1,accuracy"] + [
            f"{k},{v:.4f},{a['per_au_accuracy'][k]:.4f}" for k, v in a["per_au_f1"].items()
        ]
        (out / "au_per_au.csv").write_text("\n".join(lines) + "\n")
        written.append(out / "au_per_au.csv")
    return written


def plot_confusion(expr: dict[str, Any], path: Path) -> Path:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(expr["confusion_matrix"], np.float64)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    labels = expr["labels"]
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.8 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}\n{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"accuracy {expr['accuracy']:.4f} (n = {expr['n']})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
