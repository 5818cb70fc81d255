"""ARL and iARL train under their shipped recipes (hardware overrides only: CPU, tiny input and
width, a few steps) on synthetic corpora written in BP4D's and DISFA's official layouts, where each
AU's texture lives in a known region (``facebehavior.data.synthetic``): the loss stays finite, the
exported weights are finite, the refined attention is graded (neither saturated nor constant) and
the detection loss reaches the attention conv, the CRF's pixel features and μ.

The full-size figures (AU F1 with and without attention, attention/region overlap) come from
``benchmarks/arl_synthetic.py`` (minutes of CPU), reported in docs/training.md."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from facebehavior.data.synthetic import AU_REGIONS, SyntheticFaces, region_masks, write_bp4d  # noqa: E402
from facebehavior.models.weights import load_weights  # noqa: E402
from facebehavior.schema import au_subset  # noqa: E402
from facebehavior.train.config import load_recipe  # noqa: E402
from facebehavior.train.module import FaceBehaviorDataModule, FaceBehaviorModule  # noqa: E402
from facebehavior.train.runner import fit  # noqa: E402

RECIPES = Path(__file__).parent.parent / "recipes"


def _overrides(root: Path, out: Path, size: int = 32) -> list[str]:
    return [
        f"data.sets.au.root={root}", "data.sets.au.cache=null",
        f"data.val.0.root={root}", "data.val.0.cache=null",
        f"model.kwargs.input_size={size}", "model.kwargs.c=2", f"input.size={size}",
        "trainer.accelerator=cpu", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
        "data.num_workers=0", f"output_dir={out}",
    ]  # fmt: skip


def _attention_checks(module: FaceBehaviorModule, dm: FaceBehaviorDataModule) -> None:
    batch = next(iter(dm.train_dataloader()))
    module.train()
    out = module(module.preprocess(batch["image"], train=True))
    att = out["attention"]
    assert ((att > 1e-3) & (att < 1 - 1e-3)).float().mean() > 0.99  # not saturated
    assert att.flatten(2).std(-1).min() > 1e-3  # no map is constant
    module.compute_losses(out, batch)["loss"].backward()
    m = module.model
    for p in (m.conv_v0.weight, m.conv_f3s[0].weight, m.crf.compatibility):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def _finite_run(out: Path) -> None:
    with open(out / "logs/version_0/metrics.csv") as f:
        losses = [float(r["train/loss_step"]) for r in csv.DictReader(f) if r.get("train/loss_step")]
    assert losses and np.isfinite(losses).all()


def test_arl_recipe_trains_on_synthetic_bp4d(tmp_path):
    root = write_bp4d(tmp_path / "BP4D", frames=2, size=64)
    recipe = load_recipe(RECIPES / "arl_bp4d.yaml", _overrides(root, tmp_path / "run"))
    # The recipe is the paper's except hardware: CRF (5 iterations), loss, SGD schedule as shipped.
    assert recipe.loss.outputs == {"crf_energy": 1.0} and recipe.optim.name == "sgd"
    torch.manual_seed(0)
    dm = FaceBehaviorDataModule(recipe, tuple(recipe.model.kwargs["aus"]))
    dm.setup("fit")
    _attention_checks(FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=dm.intensity_stats()), dm)
    path = fit(recipe)
    _finite_run(tmp_path / "run")
    model, spec = load_weights(path)  # refuses non-finite weights
    assert spec.tasks["au"][0] == "AU01" and model.crf.num_iters == 5


def test_iarl_recipe_trains_on_synthetic_disfa(tmp_path):
    pytest.importorskip("av")
    from facebehavior.data.synthetic import write_disfa

    root = write_disfa(tmp_path / "DISFA", frames=2, size=64)
    recipe = load_recipe(RECIPES / "iarl_disfa.yaml", _overrides(root, tmp_path / "run"))
    torch.manual_seed(0)
    dm = FaceBehaviorDataModule(recipe, tuple(recipe.model.kwargs["aus"]))
    dm.setup("fit")
    assert sum(int(ds.au_intensity_mask.sum()) for ds, _ in dm.train_sets.values()) > 0
    _attention_checks(FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=dm.intensity_stats()), dm)
    model, _ = load_weights(fit(recipe))
    _finite_run(tmp_path / "run")
    with torch.no_grad():
        out = model(torch.zeros(2, 3, 32, 32))
    assert torch.isfinite(out["au_intensity"]).all() and (out["au_intensity"] <= 5).all()


def test_synthetic_corpus_puts_each_au_in_its_region():
    # The ground truth the attention is scored against: an AU's texture changes the pixels of its
    # own region only (high-pass energy inside vs outside), in both mirror spots.
    aus = au_subset("bp4d")
    gen = SyntheticFaces(aus=aus, size=96, distractors=0, noise=0.0, jitter=0.0)
    rng = np.random.default_rng(0)
    style = gen.subject_style(rng)
    off = gen.render(np.zeros(len(aus)), style, rng).astype(float)
    regions = region_masks(aus, 96)
    for j, a in enumerate(aus):
        inten = np.zeros(len(aus))
        inten[j] = 5
        diff = np.abs(gen.render(inten, style, rng).astype(float) - off).sum(-1)
        assert diff[regions[j]].sum() > 0.95 * diff.sum(), a
        for cx, cy in AU_REGIONS[a]:
            assert diff[int(cy * 96), int(cx * 96)] > 10


def test_iarl_starts_at_the_mean_intensity_and_weights_intensities_of_3_and_above(tmp_path):
    pytest.importorskip("av")
    from facebehavior.data.synthetic import write_disfa
    from facebehavior.losses import arl_au_weights
    from facebehavior.train.module import IntensityStats

    root = write_disfa(tmp_path / "DISFA", frames=6, size=64)
    recipe = load_recipe(RECIPES / "iarl_disfa.yaml", _overrides(root, tmp_path / "run"))
    dm = FaceBehaviorDataModule(recipe, tuple(recipe.model.kwargs["aus"]))
    dm.setup("fit")
    stats = dm.intensity_stats()
    y = np.concatenate([ds.au_intensity for ds, _ in dm.train_sets.values()])
    np.testing.assert_allclose(stats.mean, y.mean(0))
    np.testing.assert_allclose(stats.high_rate, (y >= 3).mean(0))  # Shao et al.: ⌈L/2⌉ = 3 and above
    assert not np.allclose(stats.high_rate, dm.au_rates())  # DISFA's occurrence is intensity ≥ 2

    module = FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=stats)
    start = torch.sigmoid(module.model.head_bias.detach()) * 5
    np.testing.assert_allclose(start.numpy(), np.clip(stats.mean, 5e-3, 5 - 5e-3), rtol=1e-5)
    torch.testing.assert_close(
        module.intensity_weights, arl_au_weights(stats.high_rate, total=len(stats.mean))
    )
    assert module.au_weights is None  # the detection weights belong to loss.au (weight 0 here)

    with pytest.raises(ValueError, match="intensity statistics"):
        FaceBehaviorModule(recipe, au_rates=dm.au_rates())
    none_high = IntensityStats(mean=stats.mean, high_rate=np.where(np.arange(12) == 3, 0.0, stats.high_rate))
    with pytest.raises(ValueError, match="≥ 3 as occurrences.*indices \\[3\\]"):
        FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=none_high)
