"""ARL / iARL trained by their shipped recipes on a synthetic AU corpus with known AU regions.

Writes a synthetic BP4D (for ``recipes/arl_bp4d.yaml``) or DISFA (``recipes/iarl_disfa.yaml``) in the
official layout (``facebehavior.data.synthetic``: each AU's texture appears in its own face region,
distractor textures elsewhere), trains the recipe with hardware overrides only (CPU, input size,
epochs, data location), once with ARL's attention + CRF and once with attention disabled
(``model.kwargs.attention=none``, no CRF term), and reports on the fold-1 *test* subjects:

- AU F1 (detection) or MAE / ICC(3,1) (intensity), with and without attention;
- whether training stayed finite (every logged training loss);
- the refined attention: share of saturated pixels (< 1e-3 or > 1 − 1e-3), per-map spread, and its
  overlap with the true regions on images where the AU is on — AUC of the attention values as a
  region detector (0.5 = chance) and the attention mass inside the region relative to a uniform map
  ("lift", 1 = chance);
- the gradient the loss sends into the attention conv, f3s and μ at the first step.

    python benchmarks/arl_synthetic.py --recipe recipes/arl_bp4d.yaml --frames 40 --out /tmp/arl_syn
    python benchmarks/arl_synthetic.py --recipe recipes/iarl_disfa.yaml --frames 150 --cache --out /tmp/i

iARL's learning rate is a tenth of ARL's: it needs the larger corpus (docs/training.md). The test subjects
are scored on their frames as they are (no face detection: the synthetic faces fill the frame).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facebehavior import metrics
from facebehavior.data.synthetic import region_masks, write_bp4d, write_disfa
from facebehavior.train.config import SetConfig, load_recipe
from facebehavior.train.evaluate import evaluate_checkpoint
from facebehavior.train.runner import fit


def overrides(
    recipe: str, root: Path, size: int, epochs: int, out: Path, variant: str, cache: Path | None = None
) -> list[str]:
    """The recipe's hardware overrides (and, for the ablation, attention off without a CRF term).

    ``cache`` is a ``facebehavior prepare`` cache of the training split (the recipes' own data
    path); without it frames are decoded from the corpus on every step.
    """
    where = "null" if cache is None else str(cache)
    ov = [
        f"data.sets.au.root={root}",
        f"data.sets.au.cache={where}",
        f"data.val.0.root={root}",
        f"data.val.0.cache={where}",
        f"model.kwargs.input_size={size}",
        f"input.size={size}",
        "trainer.accelerator=cpu",
        "trainer.threads=1",
        "data.num_workers=0",
        f"trainer.max_epochs={epochs}",
        f"output_dir={out / variant}",
        "trainer.log_every_n_steps=5",
    ]
    if variant == "none":
        ov += ["model.kwargs.attention=none", "loss.outputs={}"]
    return ov


def first_step_gradients(recipe_path: str, ov: list[str]) -> dict[str, float]:
    """Gradient norms reaching the attention branch at step 0 (recipe loss, one training batch)."""
    from facebehavior.models import create_model
    from facebehavior.train.module import FaceBehaviorDataModule, FaceBehaviorModule, model_aus

    recipe = load_recipe(recipe_path, ov)
    torch.manual_seed(recipe.seed)
    dm = FaceBehaviorDataModule(recipe, model_aus(create_model(recipe.model.name, **recipe.model.kwargs)))
    dm.setup("fit")
    module = FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=dm.intensity_stats())
    batch = next(iter(dm.train_dataloader()))
    module.train()
    terms = module.compute_losses(module(module.preprocess(batch["image"], train=True)), batch)
    terms["loss"].backward()
    m = module.model
    out = {f"loss_{k}": float(v) for k, v in terms.items()}
    for name, p in (("conv_v0", m.conv_v0.weight), ("conv_f3s", m.conv_f3s[0].weight),
                    ("compatibility", m.crf.compatibility)):  # fmt: skip
        out[f"grad_{name}"] = float(p.grad.norm()) if p.grad is not None else 0.0
    return out


def attention_report(pred: dict[str, np.ndarray], aus: tuple[int, ...], target_key: str) -> dict[str, float]:
    """Saturation, spread and region overlap of ``pred_attention`` (N, A, h, w) on the test frames."""
    att = pred["pred_attention"]
    n, a, h, w = att.shape
    regions = region_masks(aus, h)  # (A, h, w)
    on = pred[target_key] > 0
    aucs, lifts = [], []
    for j in range(a):
        inside = regions[j].ravel()
        for i in np.flatnonzero(on[:, j]):
            v = att[i, j].ravel()
            aucs.append(float(metrics.au_auc(inside[:, None].astype(float), v[:, None])[0]))
            lifts.append(float(v[inside].sum() / max(v.sum(), 1e-12) / inside.mean()))
    sat = float(((att < 1e-3) | (att > 1 - 1e-3)).mean())
    return {
        "attention_saturated_frac": sat,
        "attention_map_std_mean": float(att.reshape(n, a, -1).std(-1).mean()),
        "attention_mean": float(att.mean()),
        "attention_region_auc": float(np.mean(aucs)),
        "attention_region_lift": float(np.mean(lifts)),
    }


@torch.no_grad()
def attention_maps(path: Path, test: SetConfig, batch_size: int = 64) -> np.ndarray:
    """The refined attention ``(N, A, h, w)`` of the exported model on every row of ``test``,
    preprocessed as ``evaluate`` does (no detection)."""
    from facebehavior.models.weights import load_weights
    from facebehavior.train.data import eval_inputs
    from facebehavior.train.evaluate import open_split

    model, spec = load_weights(path)
    model.eval()
    out = []
    with open_split(test, spec, detect=False) as split:
        rows = np.flatnonzero(split.local >= 0)
        for b in range(0, len(rows), batch_size):
            x = eval_inputs(model, {"image": split.images(rows[b : b + batch_size])}, spec)
            out.append(model(*x)["attention"].numpy())
    return np.concatenate(out)


def train_losses(run_dir: Path) -> list[float]:
    """Every per-step training loss of the run's latest CSV log."""
    vals = []
    runs = sorted(run_dir.glob("logs/version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    for path in runs[-1:]:
        with open(path) as f:
            for row in csv.DictReader(f):
                if row.get("train/loss_step"):
                    vals.append(float(row["train/loss_step"]))
    return vals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="recipes/arl_bp4d.yaml")
    ap.add_argument("--out", type=Path, default=Path("/tmp/arl_synthetic"))
    ap.add_argument("--size", type=int, default=64, help="model input side (a multiple of 16)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20, help="frames per subject of the synthetic corpus")
    ap.add_argument("--variants", default="crf,none")
    ap.add_argument(
        "--root", type=Path, help="corpus folder (default OUT/BP4D or OUT/DISFA; written if missing)"
    )
    ap.add_argument(
        "--cache",
        action="store_true",
        help="train from a `facebehavior prepare --no-detect` cache of the training split, as the recipes do "
        "(random access into DISFA's videos otherwise costs ~0.5 s per batch)",
    )
    ap.add_argument("--seed", type=int, help="the recipe's seed (initialisation, data order)")
    ap.add_argument(
        "--reuse", action="store_true", help="score a variant's exported model again, without training"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    torch.set_num_threads(1)
    intensity = "iarl" in Path(args.recipe).stem
    corpus = "disfa" if intensity else "bp4d"
    root = args.root or args.out / corpus.upper()
    if not root.exists():
        (write_disfa if intensity else write_bp4d)(root, frames=args.frames)
    cache = None
    if args.cache:
        cache = root.parent / f"{root.name}_cache" / "fold1_train"
        if not cache.exists():
            subprocess.run(
                [sys.executable, "-m", "facebehavior", "prepare", corpus, str(root), "--split", "fold1_train",
                 "-o", str(cache.parent), "--no-detect", "--size", "200"],
                check=True,
            )  # fmt: skip
    results: dict[str, Any] = {"recipe": args.recipe, "size": args.size, "epochs": args.epochs}
    for variant in args.variants.split(","):
        ov = overrides(args.recipe, root, args.size, args.epochs, args.out, variant, cache)
        if args.seed is not None:
            ov.append(f"seed={args.seed}")
        res: dict[str, Any] = {"overrides": ov}
        if variant == "crf":
            res.update(first_step_gradients(args.recipe, ov))
        recipe = load_recipe(args.recipe, ov)
        path = Path(recipe.output_dir) / recipe.checkpoint.export
        if not (args.reuse and path.is_file()):
            t0 = time.perf_counter()
            path = fit(recipe)
            res["train_s"] = round(time.perf_counter() - t0, 1)
        losses = train_losses(args.out / variant)
        res["train_loss_finite"] = bool(np.isfinite(losses).all()) and len(losses) > 0
        res["train_loss_first_last"] = [losses[0], losses[-1]] if losses else []
        test = SetConfig(dataset=corpus, root=str(root), split="fold1_test")
        # The synthetic faces fill the frame, aligned as in training: no face detection.
        rep, pred = evaluate_checkpoint(path, test, batch_size=64, detect=False)
        aus = (
            tuple(int(c[2:]) for c in rep.get("au", {}).get("per_au_f1", {}))
            or load_recipe(args.recipe, ov).model.kwargs["aus"]
        )
        if intensity:
            m = pred["au_intensity_mask"] > 0
            y, p = pred["au_intensity"], pred["pred_au_intensity"]
            res["test_mae"] = float(np.mean(np.abs(y - p)[m]))
            res["test_icc_mean"] = float(np.mean([metrics.icc(y[:, j], p[:, j]) for j in range(y.shape[1])]))
            res["test_au_f1_mean_at_2"] = float(
                metrics.au_f1_mean((y >= 2).astype(float), p / 5.0, threshold=0.4)
            )
        else:
            res["test_au_f1_mean"] = rep["au"]["f1_mean"]
            res["test_per_au_f1"] = rep["au"]["per_au_f1"]
        if variant == "crf":
            pred["pred_attention"] = attention_maps(path, test)
            res.update(attention_report(pred, tuple(aus), "au_intensity" if intensity else "au"))
        results[variant] = res
        print(json.dumps({variant: {k: v for k, v in res.items() if k != "overrides"}}, indent=1), flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
