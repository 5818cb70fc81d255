"""Run a recipe: build the Lightning ``Trainer``, fit (stage by stage), export the best model.

The exported file is a safetensors checkpoint with a ``WeightSpec`` (architecture, builder
kwargs, input spec, task label orders), the format ``facebehavior.load_weights`` and
``Analyzer`` read, so a trained model plugs straight into ``facebehavior analyze --model PATH``.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_only

from facebehavior._runtime import configure_threads
from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint
from facebehavior.train.config import Recipe, StageConfig
from facebehavior.train.module import FaceBehaviorDataModule, FaceBehaviorModule, model_aus, model_tasks

__all__ = ["EpochLog", "TrainingGuard", "UnsupervisedTrainingError", "build_trainer", "export_model", "fit"]

logger = logging.getLogger(__name__)


class EpochLog(L.Callback):
    """One log line per epoch (train loss, validation metrics, wall time) instead of a progress bar."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if "/" in k and not k.endswith("_step")}
        text = " ".join(f"{k}={v:.4f}" for k, v in sorted(m.items()))
        logger.info("epoch %d step %d %.0fs %s", trainer.current_epoch, trainer.global_step,
                    time.perf_counter() - self.t0, text)  # fmt: skip


class UnsupervisedTrainingError(RuntimeError):
    """A run whose loss has no supervised term (no labels reach any weighted task, or the loss is ≡ 0)."""


class TrainingGuard(L.Callback):
    """Stops a run that cannot train: a non-finite loss, or a loss that is exactly 0 at every one of
    the first ``zero_steps`` steps (no loss term receives a labelled sample, or the model has no
    output for the weighted tasks — the run would export an untrained model)."""

    def __init__(self, zero_steps: int = 10) -> None:
        self.zero_steps = zero_steps
        self.seen = 0
        self.nonzero = False

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach())
        finite, nonzero = math.isfinite(value), value != 0.0
        if trainer.world_size > 1:
            # Each rank sees its own shard's loss: decide together, or the rank that stops leaves
            # the others waiting in the next gradient all-reduce until the DDP timeout.
            finite = not trainer.strategy.reduce_boolean_decision(not finite, all=False)
            nonzero = trainer.strategy.reduce_boolean_decision(nonzero, all=False)
        if not finite:
            raise FloatingPointError(
                f"training loss is {value} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
                "the run diverged — lower optim.lr or check the loss terms' weights"
            )
        self.seen += 1
        self.nonzero = self.nonzero or nonzero
        limit = min(self.zero_steps, max(1, int(trainer.num_training_batches)))
        if self.seen >= limit and not self.nonzero:
            raise UnsupervisedTrainingError(
                f"the training loss was exactly 0 for the first {self.seen} steps: no loss term gets a "
                "labelled sample (check data.sets and the loss weights) or the model has no output for the "
                f"weighted tasks (outputs: {sorted(getattr(pl_module, 'last_output_keys', []))})"
            )


class ShardLog(L.Callback):
    """Logs, per rank, what the multi-task sampler gives it: steps per epoch and per-set batch sizes.

    Under DDP every rank must run the same number of steps (else the last all-reduce waits
    forever) with the same per-set batch sizes on disjoint samples; this line shows it per rank.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        sampler = getattr(loader, "batch_sampler", None)
        sizes = getattr(sampler, "batch_sizes", None)
        if sizes is None:
            return
        logger.info(
            "rank %d of %d: %d steps per epoch, per-set batch sizes %s, shard %d of %d",
            trainer.global_rank, trainer.world_size, len(sampler), dict(sizes),
            sampler.rank, sampler.num_replicas,
        )  # fmt: skip


def labelled_counts(dm: FaceBehaviorDataModule) -> dict[str, int]:
    """Labelled training samples per supervised task over the data module's training sets."""
    keys = {"expression": "expression_mask", "au": "au_mask", "va": "va_mask", "view": "view_mask",
            "au_intensity": "au_intensity_mask", "attribute": "attribute_mask"}  # fmt: skip

    def arrays(ds: Any, key: str) -> list[Any]:
        if hasattr(ds, "datasets"):
            return [a for d in ds.datasets for a in arrays(d, key)]
        return [getattr(ds, key)]

    counts = {}
    for task, key in keys.items():
        counts[task] = 0
        for ds, _ in dm.train_sets.values():
            for a in arrays(ds, key):
                counts[task] += int((a.reshape(len(a), -1).sum(1) > 0).sum()) if a.size else 0
    return counts


def check_supervision(
    recipe: Recipe, module: FaceBehaviorModule, dm: FaceBehaviorDataModule, stage: str
) -> None:
    """Refuse a stage in which no weighted task has a labelled training sample.

    Raises:
        UnsupervisedTrainingError: naming each weighted task and its labelled-sample count.
    """
    weights = dict(module.loss_weights, **getattr(module, "stage_loss_weights", {}))
    counts = labelled_counts(dm)
    active = {t: counts[t] for t, w in weights.items() if w > 0}
    if not any(active.values()):
        where = f"stage {stage!r}" if stage else "the recipe"
        raise UnsupervisedTrainingError(
            f"{where} has no supervised loss term: labelled training samples per weighted task {active}, "
            f"per task in all sets {counts}; the model's tasks are {sorted(module.tasks)}. Give the tasks "
            "with labels a loss weight, or add a training set labelled for a weighted task"
        )
    logger.info("labelled training samples per weighted task: %s", active)


def build_trainer(
    recipe: Recipe,
    out_dir: Path,
    max_epochs: int | None = None,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> L.Trainer:
    """A Lightning ``Trainer`` configured from ``recipe.trainer`` and ``recipe.checkpoint``."""
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    t, c = recipe.trainer, recipe.checkpoint
    from facebehavior.train.fusion import DecisionFusionCCC

    # DecisionFusionCCC sets fusion weights at each validation's end, before ModelCheckpoint saves them.
    callbacks = [EpochLog(), TrainingGuard(), ShardLog(), DecisionFusionCCC(), *(callbacks or [])]
    if recipe.data.val:
        callbacks.append(
            ModelCheckpoint(
                dirpath=out_dir / "checkpoints",
                filename="best",
                monitor=c.monitor,
                mode=c.mode,
                save_last=True,
            )
        )
    else:
        callbacks.append(ModelCheckpoint(dirpath=out_dir / "checkpoints", save_last=True))
    kwargs: dict[str, Any] = dict(
        max_epochs=max_epochs if max_epochs is not None else t.max_epochs,
        max_steps=t.max_steps,
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=t.precision,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        log_every_n_steps=t.log_every_n_steps,
        callbacks=callbacks,
        logger=CSVLogger(str(out_dir), name="logs"),
        default_root_dir=str(out_dir),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        # The multi-task sampler shards data over ranks itself (it must keep one batch per task set).
        use_distributed_sampler=False,
    )
    if recipe.optim.time_budget_s:
        kwargs["max_time"] = datetime.timedelta(seconds=float(recipe.optim.time_budget_s))
    for k in ("val_check_interval", "limit_train_batches", "limit_val_batches"):
        if getattr(t, k) is not None:
            kwargs[k] = getattr(t, k)
    kwargs.update(t.extra)
    kwargs.update(overrides)
    return L.Trainer(**kwargs)


def _freeze(module: FaceBehaviorModule, prefixes: list[str]) -> None:
    names = [n for n, _ in module.model.named_parameters()]
    for p in prefixes:
        if not any(n.startswith(p) for n in names):
            raise ValueError(f"freeze prefix {p!r} matches no parameter; e.g. {names[:3]}")
    for n, p in module.model.named_parameters():
        p.requires_grad_(not any(n.startswith(pre) for pre in prefixes))
    module.frozen_prefixes = list(prefixes)


def _best_state(ckpt_dir: Path) -> dict[str, torch.Tensor] | None:
    for name in ("best.ckpt", "last.ckpt"):
        path = ckpt_dir / name
        if path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
            logger.info("selected %s", path)
            return {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    return None


def _select(
    recipe: Recipe,
    trainer: L.Trainer,
    module: FaceBehaviorModule,
    dm: FaceBehaviorDataModule,
    stage_dir: Path,
) -> dict[str, float]:
    """Load the selected weights into ``module``; returns the validation figures behind the choice.

    A time-budgeted run stops inside an epoch, after the last validation: the final weights are
    validated once more and kept when they beat the best checkpoint.
    """
    c = recipe.checkpoint
    cb = trainer.checkpoint_callback
    best_score = getattr(cb, "best_model_score", None)
    best_score = None if best_score is None else float(best_score)
    final: dict[str, float] = {}
    if recipe.optim.time_budget_s and recipe.data.val:
        final = {k: float(v) for k, v in trainer.validate(module, datamodule=dm, verbose=False)[0].items()}
        logger.info("final weights (step %d): %s", trainer.global_step, final)
        score = final.get(c.monitor)
        better = score is not None and (
            best_score is None or (score > best_score if c.mode == "max" else score < best_score)
        )
        if better:
            logger.info(
                "final weights beat the best checkpoint (%s %.4f vs %s)", c.monitor, score, best_score
            )
            return {**final, f"best_{c.monitor}": score, "selected": "final"}
    best = _best_state(stage_dir / "checkpoints")
    if best is not None:
        module.model.load_state_dict(best)
    out = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val")}
    if best_score is not None:
        out[f"best_{c.monitor}"] = best_score
    out["selected"] = "best.ckpt" if best is not None else "final"
    return out


def export_model(module: FaceBehaviorModule, path: Path, extra: dict[str, Any] | None = None) -> str:
    """Write ``module.model`` with its ``WeightSpec`` to ``path``; returns the file's sha256."""
    r = module.recipe
    spec = WeightSpec(
        name=r.name,
        architecture=r.model.name,
        arch_kwargs=dict(r.model.kwargs),
        input=InputSpec(
            size=r.input.size,
            channels=r.input.channels,
            mean=tuple(r.input.mean),
            std=tuple(r.input.std),
            template=r.input.template,
        ),
        tasks=module.tasks,
        licence=r.checkpoint.licence,
        source=f"facebehavior train, recipe {r.name!r}",
        extra={"recipe": r.to_dict(as_written=True), **(extra or {})},
    )
    return save_checkpoint(module.model.state_dict(), spec, path)


def fit(
    recipe: Recipe,
    resume: str | None = None,
    trainer_overrides: dict[str, Any] | None = None,
    callbacks: list[L.Callback] | None = None,
) -> Path:
    """Train ``recipe`` (all its stages) and export the selected model.

    Args:
        recipe: the parsed recipe.
        resume: a Lightning ``.ckpt`` to resume from, or ``"last"`` for ``output_dir``'s last one
            (single-stage recipes).
        trainer_overrides: extra ``Trainer`` keyword arguments.
        callbacks: extra Lightning callbacks (added to the logging and checkpoint ones).

    Returns:
        Path of the exported ``.safetensors`` model.
    """
    configure_threads(recipe.trainer.threads)
    L.seed_everything(recipe.seed, workers=True, verbose=False)
    out = Path(recipe.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Under DDP every rank runs this function; files shared by the run are written by rank 0 only
    # (concurrent writers of one file can leave it torn).
    rank0 = rank_zero_only.rank == 0
    if rank0:
        (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=1))
    stages = recipe.stages or [StageConfig(name="", max_epochs=recipe.trainer.max_epochs)]
    if resume and len(stages) > 1:
        raise ValueError("resume is supported for single-stage recipes; rerun the remaining stages instead")
    t0 = time.perf_counter()
    module: FaceBehaviorModule | None = None
    val_metrics: dict[str, float] = {}
    for st in stages:
        stage_dir = out / st.name if st.name else out
        if module is not None:
            probe = module.model
        else:
            from facebehavior.models import create_model

            probe = create_model(recipe.model.name, **recipe.model.kwargs)
        n_attr = len(model_tasks(probe).get("attribute", ()))
        # A stage may validate on its own sets and select on its own metric (FATAUVA-Net: attribute
        # accuracy, then AU F1, then VA CCC); the recipe's checkpoint section is the default.
        stage_recipe = dataclasses.replace(
            recipe,
            data=dataclasses.replace(recipe.data, val=list(st.val) or list(recipe.data.val)),
            checkpoint=dataclasses.replace(
                recipe.checkpoint,
                monitor=st.monitor or recipe.checkpoint.monitor,
                mode=st.mode or recipe.checkpoint.mode,
            ),
        )
        dm = FaceBehaviorDataModule(
            recipe, model_aus(probe), stage_sets=st.sets or None, attributes=n_attr, val=stage_recipe.data.val
        )
        dm.setup("fit")
        if module is None:
            module = FaceBehaviorModule(recipe, au_rates=dm.au_rates(), intensity=dm.intensity_stats())
            if module.init_report is not None and not resume and rank0:
                (out / "init_report.json").write_text(json.dumps(module.init_report.to_dict(), indent=1))
        module.stage_loss_weights = dict(st.loss)
        module.stage_lr = st.lr
        _freeze(module, st.freeze)
        if hasattr(module.model, "set_phase"):  # models trained in phases (A/V-MT-VGG-GRU) enter the stage's
            module.model.set_phase(st.name)
        check_supervision(recipe, module, dm, st.name)
        trainer = build_trainer(
            stage_recipe,
            stage_dir,
            max_epochs=st.max_epochs,
            callbacks=callbacks,
            **(trainer_overrides or {}),
        )
        ckpt = None
        if resume:
            ckpt = str(stage_dir / "checkpoints" / "last.ckpt") if resume == "last" else resume
            if not Path(ckpt).is_file():
                raise FileNotFoundError(f"resume checkpoint {ckpt} not found")
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt)
        val_metrics = _select(stage_recipe, trainer, module, dm, stage_dir)
    assert module is not None
    for p in module.model.parameters():
        p.requires_grad_(True)
    path = out / recipe.checkpoint.export
    extra = {"train_wall_s": round(time.perf_counter() - t0, 1), "val_metrics": val_metrics}
    if trainer.is_global_zero:  # DDP keeps the replicas identical: one rank writes the file
        sha = export_model(module, path, extra)
        logger.info("exported %s (sha256 %s) after %.0f s; %s", path, sha, extra["train_wall_s"], val_metrics)
    trainer.strategy.barrier("export")  # the other ranks return once the file exists
    return path
