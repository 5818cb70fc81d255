"""The Lightning module (*what* is trained: model, losses, steps, optimiser) and data module.

Lightning supplies the *how*: devices, DDP, mixed precision, gradient accumulation, checkpoints,
resuming and loggers (``facebehavior.train.runner`` builds the ``Trainer`` from a recipe). This
module is only imported by training code; inference never imports Lightning.

Losses (``facebehavior.losses``), each over its own labelled samples only (masks):

- expression: soft-label cross-entropy on ``expression_dist`` (one-hot for hard labels, the vote
  distribution for FER+), optional class weights;
- AU: masked BCE averaged over the annotated AUs (FaceBehaviorNet eq. 1), or ARL's
  rate-weighted BCE (``loss.au.weighting: arl``);
- VA: ``1 - CCC`` averaged over valence and arousal, over the VA-labelled samples of the batch;
- view: cross-entropy of ``view`` logits (AUNets' view classifier) over the samples with a camera
  view (FERA 2017's ``extra["view"]``);
- coupling (switchable, weights in the recipe): co-annotation, soft co-annotation, distribution
  matching.

Randomness (augmentation, dropout) is re-seeded from ``(seed, global_step)`` at every step, and
the sampler from ``(seed, epoch)``, so a run resumed from an epoch-end checkpoint continues exactly
as the uninterrupted run would.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from facebehavior import losses, metrics
from facebehavior.models import create_model
from facebehavior.models.transforms import normalise, preprocess
from facebehavior.schema import EXPRESSIONS_8
from facebehavior.train.config import Recipe, SetConfig
from facebehavior.train.data import (
    LabelledImages,
    eval_loader,
    load_set,
    model_inputs,
    recipe_input_names,
    resolve,
    task_set_loader,
    union,
)

__all__ = ["FaceBehaviorDataModule", "FaceBehaviorModule", "model_aus", "model_tasks"]

TASK_TERMS = ("expression", "au", "va", "au_intensity", "attribute", "view")

logger = logging.getLogger(__name__)


def model_tasks(model: torch.nn.Module) -> dict[str, tuple[str, ...]]:
    """Task name → label names of a zoo model's heads (from its ``task_labels``)."""
    labels = getattr(model, "task_labels", None)
    if not labels:
        raise ValueError(
            f"{type(model).__name__} has no task_labels; training needs a multi-task model of the zoo "
            "(a dict of task outputs with labelled heads)"
        )
    return dict(labels)


def model_aus(model: torch.nn.Module) -> tuple[int, ...]:
    """AU numbers of the model's AU head, in output order (empty without an AU head)."""
    return tuple(int(code[2:]) for code in model_tasks(model).get("au", ()))


@dataclass(frozen=True)
class IntensityStats:
    """AU intensity statistics of the training sets, in the model's AU order.

    Attributes:
        mean: ``(A,)`` mean annotated intensity (NaN where an AU has no intensity label).
        high_rate: ``(A,)`` share of annotated samples with intensity ≥ ``threshold`` — the
            occurrence rates iARL's loss weights are computed from.
        threshold: the intensity counted as an occurrence (⌈L/2⌉ = 3 for L = 5).
    """

    mean: np.ndarray
    high_rate: np.ndarray
    threshold: float = 3.0


class FaceBehaviorModule(L.LightningModule):
    """Multi-task model + losses + optimiser of a recipe.

    Args:
        recipe: the parsed recipe.
        au_rates: ``(A,)`` training occurrence rates of the model's AUs (required for ARL weighting).
        intensity: the training sets' AU intensity statistics (``FaceBehaviorDataModule.intensity_stats``);
            iARL's loss weights and starting outputs come from them.
    """

    def __init__(
        self, recipe: Recipe, au_rates: np.ndarray | None = None, intensity: IntensityStats | None = None
    ) -> None:
        super().__init__()
        self.recipe = recipe
        self.model = create_model(recipe.model.name, **recipe.model.kwargs)
        self.init_report = None
        if recipe.model.init.path:
            from facebehavior.models.weights import init_from_checkpoint

            init = recipe.model.init
            self.init_report = init_from_checkpoint(
                self.model, init.path, rename=init.rename, au_map={int(k): v for k, v in init.au_map.items()}
            )
        self.channels_last = bool(recipe.trainer.channels_last)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.tasks = model_tasks(self.model)
        self.aus = model_aus(self.model)
        self.emotions = self.tasks.get("expression", ())
        if self.emotions and tuple(self.emotions) != EXPRESSIONS_8[: len(self.emotions)]:
            raise ValueError(f"expression head labels {self.emotions} are not a prefix of EXPRESSIONS_8")
        self.augment = self._build_augment()
        self.loss_weights = {t: getattr(recipe.loss, t).weight for t in TASK_TERMS}
        self.au_weights: torch.Tensor | None = None
        self.intensity_weights: torch.Tensor | None = None
        if recipe.loss.au.weighting == "arl" and "au" in self.tasks:
            if au_rates is None:
                raise ValueError("loss.au.weighting=arl needs the AU occurrence rates of the training sets")
            # Average weight 1 (Σ w_i = number of AUs), as the authors' code normalises them: with
            # eq. 8's Σ w_i = 1 the paper's SGD learning rate moves the AU heads 12× slower.
            self.au_weights = losses.arl_au_weights(au_rates, total=len(au_rates))
        if recipe.loss.au_intensity.weighting == "arl" and "au_intensity" in self.tasks:
            # iARL: intensities ≥ ⌈L/2⌉ count as occurrences for the weights (Shao et al., after eq. 11).
            if intensity is None:
                raise ValueError(
                    "loss.au_intensity.weighting=arl needs the AU intensity statistics of the training sets"
                )
            try:
                self.intensity_weights = losses.arl_au_weights(
                    intensity.high_rate, total=len(intensity.high_rate)
                )
            except ValueError as e:
                raise ValueError(
                    f"iARL loss weights count intensities ≥ {intensity.threshold:g} as occurrences: {e}"
                ) from None
        if not recipe.model.init.path and hasattr(self.model, "set_au_prior"):
            if getattr(self.model, "max_intensity", None) and intensity is not None:
                # An intensity model starts at each AU's mean training intensity (its least-squares
                # constant), not at the occurrence rate × L, which overshoots and makes the first
                # updates push every output down — and the spatial attention off the evidence.
                self.model.set_au_prior(intensity.mean / float(self.model.max_intensity))
            elif au_rates is not None:
                self.model.set_au_prior(au_rates)
        self.class_weights = self._class_weights()
        self.va_centers: torch.nn.Parameter | None = None
        if recipe.loss.va.kind == "center_smooth_l1":
            self.va_centers = torch.nn.Parameter(self._va_center_init())
        self._val_outputs: dict[int, list[dict[str, torch.Tensor]]] = {}

    # -- preprocessing -------------------------------------------------------------------------
    def _build_augment(self) -> Any:
        cfg = self.recipe.augment
        if not cfg.target:
            return None
        factory = resolve(cfg.target)
        kwargs = dict(cfg.config)
        kwargs.setdefault("out_size", self.recipe.input.size)
        kwargs.setdefault("out_channels", self.recipe.input.channels)
        config_cls = getattr(factory, "config_class", None)
        if config_cls is None:
            module = __import__(factory.__module__, fromlist=["AugmentConfig"])
            config_cls = getattr(module, "AugmentConfig", None)
        if config_cls is None:
            return factory(**kwargs)
        return factory(config_cls(**kwargs), generator=torch.Generator())

    def _va_center_init(self) -> torch.Tensor:
        """``(2, 11, D)`` centers of the VA bins in the model's ``va_features`` space (FATAUVA eq. 1)."""
        inp = self.recipe.input
        was = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.zeros(1, inp.channels, inp.size, inp.size))
        self.model.train(was)
        if "va_features" not in out:
            raise ValueError(
                f"loss.va.kind=center_smooth_l1 needs a model with va_features (FATAUVA-Net); "
                f"{self.recipe.model.name} outputs {sorted(out)}"
            )
        return torch.randn(2, 11, out["va_features"].shape[-1]) * 0.01

    def _class_weights(self) -> torch.Tensor | None:
        cw = self.recipe.loss.expression.class_weights
        if cw is None or not self.emotions:
            return None
        if len(cw) != len(self.emotions):
            raise ValueError(
                f"loss.expression.class_weights has {len(cw)} values for {len(self.emotions)} classes"
            )
        return torch.tensor(cw, dtype=torch.float32)

    def preprocess(self, images: torch.Tensor, train: bool) -> torch.Tensor:
        """uint8 ``(B, C, H, W)`` → normalised float ``(B, channels, size, size)``.

        Training batches go through the recipe's augmentation (which also resamples to the input
        size and converts colour) and ``models.transforms.normalise``; evaluation batches through
        ``models.transforms.preprocess``, the Analyzer's own path, so validation scores what
        inference will compute.
        """
        inp = self.recipe.input
        if images.ndim == 5:  # (B, T, C, H, W) clips: frames are preprocessed independently
            b, t = images.shape[:2]
            x = self.preprocess(images.flatten(0, 1), train)
            return x.view(b, t, *x.shape[1:])
        if train and self.augment is not None:
            if getattr(self.augment, "gen", None) is not None:
                self.augment.gen.manual_seed(self.recipe.seed * 1_000_003 + self.global_step)
            return normalise(self.augment(images)[0], inp)
        return preprocess(images, inp)

    def forward(self, x: torch.Tensor, *extra: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x, *extra)

    # -- losses --------------------------------------------------------------------------------
    def compute_losses(
        self,
        out: dict[str, torch.Tensor],
        batch: dict[str, torch.Tensor],
        weights: dict[str, float] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Per-term losses and their weighted sum ``"loss"``.

        Args:
            out: model outputs ``{"expression": (B, E), "au": (B, A), "va": (B, 2)}``.
            batch: the batch dict (see ``facebehavior.train.data``).
            weights: per-task weight overrides (stage-wise training).
        """
        streams = sorted({k.split("/", 1)[0] for k in out if "/" in k})
        if streams:  # per-stream outputs "<stream>/<task>" (A/V-MT-VGG-GRU's first phase): losses summed
            terms = self.compute_losses({k: v for k, v in out.items() if "/" not in k}, batch, weights)
            for st in streams:
                own = {k[len(st) + 1 :]: v for k, v in out.items() if k.startswith(f"{st}/")}
                part = self.compute_losses(own, batch, weights)
                terms.update(
                    {f"{st}/{k}": v for k, v in part.items() if k != "loss"},
                    loss=terms["loss"] + part["loss"],
                )
            return terms
        w = dict(self.loss_weights, **(weights or {}))
        if batch["set_index"].ndim == 2:  # clips: losses over all frames of the batch
            out = {k: v.flatten(0, 1) if v.ndim >= 3 else v for k, v in out.items()}
            batch = {k: v.flatten(0, 1) for k, v in batch.items() if k != "image"}
        terms: dict[str, torch.Tensor] = {}
        total = sum(v.sum() * 0.0 for v in out.values())
        E = len(self.emotions)
        if "expression" in out and w["expression"] > 0:
            dist = batch["expression_dist"][:, :E]
            mask = batch["expression_mask"] * (dist.sum(1) > 0).to(dist.dtype)
            dist = dist / dist.sum(1, keepdim=True).clamp_min(1e-12)
            cw = None if self.class_weights is None else self.class_weights.to(dist.device)
            terms["expression"] = losses.expression_ce(out["expression"], dist, class_weights=cw, mask=mask)
            total = total + w["expression"] * terms["expression"]
        if "au" in out and w["au"] > 0:
            if self.au_weights is not None:
                terms["au"] = losses.arl_detection_loss(
                    out["au"], batch["au"], self.au_weights.to(out["au"].device), batch["au_mask"]
                )
            else:
                terms["au"] = losses.masked_bce(out["au"], batch["au"], batch["au_mask"])
            total = total + w["au"] * terms["au"]
        if "va" in out and w["va"] > 0:
            terms["va"] = self._va_loss(out, batch)
            total = total + w["va"] * terms["va"]
        if "au_intensity" in out and w["au_intensity"] > 0:
            cfg = self.recipe.loss.au_intensity
            iw = self.intensity_weights
            aw = iw.to(out["au_intensity"].device) if iw is not None else None
            terms["au_intensity"] = losses.iarl_loss(
                out["au_intensity"],
                batch["au_intensity"],
                aw,
                lam=cfg.cosine,
                mask=batch["au_intensity_mask"],
            )
            total = total + w["au_intensity"] * terms["au_intensity"]
        if "attribute" in out and w["attribute"] > 0:
            terms["attribute"] = losses.masked_bce(
                out["attribute"], batch["attribute"], batch["attribute_mask"]
            )
            total = total + w["attribute"] * terms["attribute"]
        if "view" in out and w["view"] > 0:
            m = batch["view_mask"]
            ce = F.cross_entropy(out["view"], batch["view"], reduction="none")
            terms["view"] = (ce * m).sum() / m.sum().clamp(min=1)
            total = total + w["view"] * terms["view"]
        for key, weight in self.recipe.loss.outputs.items():
            if key not in out:
                raise KeyError(f"loss.outputs: the model has no output {key!r}; outputs: {sorted(out)}")
            terms[key] = out[key].flatten(1).sum(1).mean()
            total = total + weight * terms[key]
        c = self.recipe.loss.coupling
        if "expression" in out and "au" in out:
            kw = {"emotions": self.emotions, "aus": self.aus, "table": c.table}
            if c.coannotation > 0:
                # Hard labels of a class the head lacks (contempt in an 8-class set for a 7-class
                # model) co-annotate nothing.
                has_hard = (
                    batch["expression_mask"]
                    * (batch["expression_dist"].max(1).values >= 1.0)
                    * (batch["expression"] < E)
                )
                terms["coannotation"] = losses.coannotation_loss(
                    out["expression"], out["au"], expr_labels=batch["expression"], expr_mask=has_hard,
                    au_labels=batch["au"], au_mask=batch["au_mask"], weighted=c.coannotation_weighted, **kw,
                )  # fmt: skip
                total = total + c.coannotation * terms["coannotation"]
            if c.soft_coannotation > 0:
                terms["soft_coannotation"] = losses.soft_coannotation_loss(
                    out["expression"],
                    batch["au"],
                    batch["au_mask"],
                    weighted=c.soft_coannotation_weighted,
                    **kw,
                )
                total = total + c.soft_coannotation * terms["soft_coannotation"]
            if c.distribution_matching > 0:
                terms["distribution_matching"] = losses.distribution_matching_loss(
                    out["expression"],
                    out["au"],
                    weighted=c.distribution_matching_weighted,
                    normalize=c.distribution_matching_normalize,
                    **kw,
                )
                total = total + c.distribution_matching * terms["distribution_matching"]
        terms["loss"] = total
        return terms

    def _va_loss(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        cfg, m = self.recipe.loss.va, batch["va_mask"]
        if cfg.kind == "ccc":
            return losses.ccc_loss(out["va"], batch["va"], m)
        keep = m > 0
        if not bool(keep.any()):
            return out["va"].sum() * 0.0
        if cfg.kind in ("smooth_l1", "center_smooth_l1"):
            loss = losses.smooth_l1_turning(out["va"][keep], batch["va"][keep], t=cfg.turning_point)
            if cfg.kind == "center_smooth_l1" and self.va_centers is not None:
                cls = losses.va_to_class(batch["va"][keep].clamp(-1, 1))
                feats = out["va_features"][keep]
                centers = self.va_centers.to(feats.dtype)
                loss = loss + cfg.center * sum(
                    losses.center_loss(feats[:, d], cls[:, d], centers[d]) for d in range(2)
                )
            return loss
        if "valence_logits" not in out:
            raise KeyError(
                "loss.va.kind=class needs a model with valence_logits / arousal_logits (class-based VA)"
            )
        cls = losses.va_to_class(batch["va"][keep])
        return 0.5 * (
            F.cross_entropy(out["valence_logits"][keep], cls[:, 0])
            + F.cross_entropy(out["arousal_logits"][keep], cls[:, 1])
        )

    # -- steps ---------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Frozen stages keep their BatchNorm statistics too (Lightning switches to train mode
        # at every epoch, which would let running means drift under a frozen stage).
        prefixes = getattr(self, "frozen_prefixes", [])
        for name, m in self.model.named_modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and any(
                f"{name}.".startswith(f"{p}.") or name == p for p in prefixes
            ):
                m.eval()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout & co. draw from the global RNG: tie it to the step so resuming is exact.
        torch.manual_seed(self.recipe.seed * 1_000_003 + self.global_step + 1)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, *extra = model_inputs(self, batch, train=True)  # image (+ flow / landmarks: train.data)
        out = self(x, *extra)
        self.last_output_keys = tuple(out)  # named by TrainingGuard when nothing is supervised
        terms = self.compute_losses(out, batch, getattr(self, "stage_loss_weights", None))
        bs = int(x.shape[0])
        for k, v in terms.items():
            self.log(
                f"train/{k}", v.detach(), on_step=True, on_epoch=True, prog_bar=k == "loss", batch_size=bs
            )
        return terms["loss"]

    def validation_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        out = self(*model_inputs(self, batch, train=False))
        names = (
            "expression",
            "expression_hard",
            "expression_dist",
            "expression_mask",
            "au",
            "au_mask",
            "va",
            "va_mask",
            "au_intensity",
            "au_intensity_mask",
            "attribute",
            "attribute_mask",
            "view",
            "view_mask",
        )
        keep = {k: batch[k] for k in names if k in batch}
        rec = {**{f"pred_{k}": v.detach().float().cpu() for k, v in out.items()},
               **{k: v.cpu() for k, v in keep.items()}}  # fmt: skip
        self._val_outputs.setdefault(dataloader_idx, []).append(rec)

    def on_validation_epoch_end(self) -> None:
        for idx, recs in sorted(self._val_outputs.items()):
            cat = {k: torch.cat([r[k] for r in recs]) for k in recs[0]}
            prefix = "val" if idx == 0 else f"val{idx}"
            for name, value in summary_metrics(cat, len(self.emotions)).items():
                self.log(f"{prefix}/{name}", value, prog_bar=name == "expression/accuracy", sync_dist=True)
        self._val_outputs.clear()

    # -- optimiser -----------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        o = self.recipe.optim
        lr = getattr(self, "stage_lr", None) or o.lr
        params = [p for p in self.parameters() if p.requires_grad]
        if o.name == "sgd":
            opt = torch.optim.SGD(
                params, lr=lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
            )
        elif o.name == "adam":
            opt = torch.optim.Adam(params, lr=lr, weight_decay=o.weight_decay)
        else:
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=o.weight_decay)
        if o.schedule == "none":
            return opt
        if o.schedule == "step":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=o.step_epochs, gamma=o.gamma)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if o.time_budget_s:
            return {
                "optimizer": opt,
                "lr_scheduler": {"scheduler": self._timed_schedule(opt), "interval": "step"},
            }
        total = int(self.trainer.estimated_stepping_batches)
        if o.schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=lr, total_steps=max(total, 1), pct_start=o.warmup_pct, anneal_strategy="cos"
            )
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1)))
            )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _timed_schedule(self, opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """LR factor from the elapsed fraction ``p`` of ``optim.time_budget_s`` (wall clock).

        onecycle: linear warm-up to 1 over ``warmup_pct``, then cosine to 0 at ``p = 1``;
        cosine: cosine from 1 to 0.
        """
        o = self.recipe.optim
        budget = float(o.time_budget_s or 1.0)
        start = time.monotonic()

        def factor(_step: int) -> float:
            p = min((time.monotonic() - start) / budget, 1.0)
            if o.schedule == "onecycle":
                if p < o.warmup_pct:
                    return 0.04 + 0.96 * p / max(o.warmup_pct, 1e-9)
                p = (p - o.warmup_pct) / max(1.0 - o.warmup_pct, 1e-9)
            return 0.5 * (1.0 + math.cos(math.pi * p)) if o.schedule != "none" else 1.0

        return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def summary_metrics(cat: dict[str, torch.Tensor], num_expressions: int) -> dict[str, float]:
    """Headline metrics of collected predictions (``facebehavior.metrics``).

    Expression metrics use the samples with a single-class label only (``expression_hard``: the
    corpus' hard label, or the FER+ majority vote).
    """
    out: dict[str, float] = {}
    if "pred_expression" in cat:
        m = hard_expression_mask(cat)
        if m.any():
            y = cat["expression"][m].numpy()
            p = cat["pred_expression"][m].argmax(1).numpy()
            out["expression/accuracy"] = float(metrics.accuracy(y, p))
            out["expression/macro_f1"] = float(metrics.macro_f1(y, p, num_classes=num_expressions))
    if "pred_attribute" in cat and "attribute_mask" in cat and cat["attribute_mask"].sum() > 0:
        m = cat["attribute_mask"] > 0
        hit = ((cat["pred_attribute"] > 0) == (cat["attribute"] >= 0.5)) & m
        out["attribute/accuracy"] = float(hit.sum() / m.sum())
    if "pred_view" in cat and "view_mask" in cat and cat["view_mask"].sum() > 0:
        m = cat["view_mask"] > 0
        out["view/accuracy"] = float((cat["pred_view"][m].argmax(1) == cat["view"][m]).float().mean())
    if "pred_au" in cat and cat["au_mask"].sum() > 0:
        cols = (cat["au_mask"].sum(0) > 0).numpy()
        prob = torch.sigmoid(cat["pred_au"]).numpy()[:, cols]
        # Soft targets (weak / co-annotated labels) are scored as occurrence at >= 0.5.
        truth = (cat["au"].numpy()[:, cols] >= 0.5).astype(np.float32)
        out["au/f1_mean"] = float(metrics.au_f1_mean(truth, prob, mask=cat["au_mask"].numpy()[:, cols]))
    if "pred_au_intensity" in cat and cat["au_intensity_mask"].sum() > 0:
        m = cat["au_intensity_mask"] > 0
        out["au_intensity/mae"] = float(
            metrics.mae(cat["au_intensity"][m].numpy(), cat["pred_au_intensity"][m].numpy())
        )
    if "pred_va" in cat and cat["va_mask"].sum() > 1:
        m = cat["va_mask"] > 0
        for j, name in enumerate(("valence", "arousal")):
            out[f"va/ccc_{name}"] = float(metrics.ccc(cat["va"][m, j].numpy(), cat["pred_va"][m, j].numpy()))
        out["va/ccc_mean"] = 0.5 * (out["va/ccc_valence"] + out["va/ccc_arousal"])
    return out


def hard_expression_mask(cat: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) bool — samples with a single-class expression label (hard, or the FER+ majority)."""
    return cat["expression_hard"] > 0


class FaceBehaviorDataModule(L.LightningDataModule):
    """Task sets of a recipe as Lightning dataloaders.

    Training: one batch per task set per step (``MultiTaskBatchSampler``), sharded over DDP ranks.
    Validation: the ``data.val`` sets, in order (the first drives checkpoint selection).
    """

    def __init__(
        self,
        recipe: Recipe,
        aus: tuple[int, ...],
        stage_sets: list[str] | None = None,
        attributes: int = 0,
        val: list[SetConfig] | None = None,
    ) -> None:
        super().__init__()
        self.recipe = recipe
        self.aus = aus
        self.attributes = attributes
        self.stage_sets = stage_sets
        self.val_cfgs = list(val) if val else list(recipe.data.val)
        self.train_sets: dict[str, tuple[LabelledImages, SetConfig]] = {}
        self.val_sets: list[LabelledImages] = []

    def _dataset(self, cfg: SetConfig, index: int) -> Any:
        if cfg.parts:
            return union([self._dataset(p, index) for p in cfg.parts])
        inp = self.recipe.input
        return LabelledImages(
            load_set(cfg),
            self.aus,
            inp.channels,
            inp.size,
            set_index=index,
            attributes=self.attributes,
            sequence_length=cfg.sequence_length,
            inputs=recipe_input_names(self.recipe),
        )

    def setup(self, stage: str | None = None) -> None:
        if not self.train_sets:
            names = self.stage_sets or list(self.recipe.data.sets)
            for i, name in enumerate(names):
                self.train_sets[name] = (
                    self._dataset(self.recipe.data.sets[name], i),
                    self.recipe.data.sets[name],
                )
        if not self.val_sets:
            self.val_sets = [self._dataset(cfg, i) for i, cfg in enumerate(self.val_cfgs)]

    def au_rates(self) -> np.ndarray | None:
        """Occurrence rate of each model AU over the annotated training samples."""
        if not self.aus:
            return None
        occ = np.concatenate([ds.au for ds, _ in self.train_sets.values()])
        mask = np.concatenate([ds.au_mask for ds, _ in self.train_sets.values()])
        ann = mask.sum(0)
        return np.where(ann > 0, (occ * mask).sum(0) / np.maximum(ann, 1), np.nan)

    def intensity_stats(self, threshold: float = 3.0) -> IntensityStats | None:
        """Mean intensity and rate of intensity ≥ ``threshold`` of each model AU (annotated samples).

        ``None`` when no training set labels intensities.
        """
        sets = [ds for ds, _ in self.train_sets.values()]
        if not self.aus or not sets:
            return None
        val = np.concatenate([ds.au_intensity for ds in sets]).astype(np.float64)
        mask = np.concatenate([ds.au_intensity_mask for ds in sets]) > 0
        ann = mask.sum(0)
        if not ann.any():
            return None
        n = np.maximum(ann, 1)
        mean = np.where(ann > 0, (val * mask).sum(0) / n, np.nan)
        high = np.where(ann > 0, ((val >= threshold) & mask).sum(0) / n, np.nan)
        return IntensityStats(mean=mean, high_rate=high, threshold=threshold)

    def train_dataloader(self) -> Any:
        world, rank = 1, 0
        if self.trainer is not None:
            world, rank = self.trainer.world_size, self.trainer.global_rank
        return task_set_loader(
            self.train_sets,
            total_batch_size=self.recipe.data.batch_size,
            num_workers=self.recipe.data.num_workers,
            seed=self.recipe.seed,
            num_replicas=world,
            rank=rank,
        )

    def val_dataloader(self) -> Any:
        return [
            eval_loader(ds, self.recipe.data.eval_batch_size, self.recipe.data.num_workers)
            for ds in self.val_sets
        ]
