"""Training recipes: a YAML file parsed into typed, validated dataclasses.

A recipe has these sections (every key is optional unless marked; unknown keys are errors, with
the list of valid ones, so a typo never silently falls back to a default)::

    name: ferplus_small                 # run name (required)
    seed: 0
    output_dir: runs/ferplus_small      # Lightning logs, checkpoints and the exported model
    model:
      name: facebehaviornet_mobile      # MODELS registry name (required)
      kwargs: {num_expressions: 8, aus: [], va: false, in_channels: 1, width: 0.5}
      init: {path: null, rename: {}, au_map: {}}   # start from a checkpoint (InitConfig)
    input: {size: 48, channels: 1, mean: [0.5], std: [0.5], template: none}
    data:
      batch_size: 64                    # total per step; split over the task sets (FaceBehaviorNet)
      num_workers: 0
      sets:                             # one entry per task set (VA-Set, AU-Set, EXPR-Set ...)
        expr:
          dataset: ferplus              # DATASETS registry name
          root: /path/to/fer2013
          split: train
          options: {exclude_test_duplicates: true}   # adapter keyword arguments
          batch_size: null              # explicit per-set batch size (overrides the derivation)
          sampling: {kind: none}        # none | expression | au  (+ power): over/under-sampling
          hooks: []                     # "module:function" (table, adapter) -> LabelTable; extra targets
      val: [{dataset: ferplus, root: ..., split: val}]
    augment:                            # batch transform applied to training images
      target: facebehavior.data.augment:FaceAugment   # "module:callable" or null for none
      config: {p_blur: 0.0}            # keyword arguments of its config
    loss:
      expression: {weight: 1.0, class_weights: null}
      au: {weight: 1.0, weighting: none}              # none | arl (ARL's 1/rate weights)
      va: {weight: 1.0}                                # 1 - CCC averaged over V and A
      view: {weight: 1.0}                              # cross-entropy on camera views (FERA 2017)
      coupling: {coannotation: 0.0, soft_coannotation: 0.0, distribution_matching: 0.0, table: A,
                 distribution_matching_weighted: false, distribution_matching_normalize: none}
    optim: {name: adamw, lr: 1.0e-3, weight_decay: 0.05, schedule: onecycle, ...}
    trainer: {max_epochs: 20, precision: 32-true, accelerator: auto, devices: 1, ...}
    checkpoint: {monitor: val/expression/accuracy, mode: max, export: model.safetensors}
    stages: []                          # stage-wise training (FATAUVA-Net), see StageConfig

Paths in a recipe may use ``${ENV_VAR}`` (expanded) and are relative to the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "HoldoutConfig",
    "InitConfig",
    "InputConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "Recipe",
    "SetConfig",
    "StageConfig",
    "TrainerConfig",
    "apply_override",
    "load_recipe",
    "parse_recipe",
]


class ConfigError(ValueError):
    """A recipe is malformed; the message names the offending key path."""


@dataclass
class InitConfig:
    """Initialise the model from a checkpoint before training (transfer, fine-tuning).

    Attributes:
        path: an exported ``.safetensors`` model (or a Lightning ``.ckpt``); ``None`` = no init.
        rename: target-name prefix → source-name prefix (``{"trunk.": "encoder.trunk."}``).
        au_map: target AU → source AU for per-AU parameters (``{9: 10, 25: 23, 26: 24}``);
            AUs present in both are matched by number.

    Tensors the checkpoint lacks or holds with another shape keep their initialisation; the
    report (``facebehavior.models.weights.init_from_checkpoint``) is logged and written to
    ``<output_dir>/init_report.json``.
    """

    path: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    au_map: dict[str, int] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """``create_model(name, **kwargs)``, optionally initialised from a checkpoint (``init``)."""

    name: str = ""
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: InitConfig = field(default_factory=InitConfig)


@dataclass
class InputConfig:
    """Model input; becomes the exported ``WeightSpec.input``.

    Attributes:
        size: side of the square input in pixels.
        channels: 1 (grayscale luma) or 3 (RGB).
        mean, std: per-channel normalisation after scaling to [0, 1].
        template: ``facebehavior.face.align.TEMPLATES`` name the training crops correspond to;
            ``Analyzer`` aligns faces with it (``fer2013`` for FER2013's own crops).
    """

    size: int = 96
    channels: int = 3
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    template: str = "arcface"


@dataclass
class SamplingConfig:
    """Over/under-sampling of one task set.

    Attributes:
        kind: ``none`` (uniform permutation), ``expression`` (class-balanced), ``au``
            (rare-AU over-sampling) or ``va`` (rare valence/arousal bins over-sampled: FATAUVA-Net's
            11 bins per dimension, ``facebehavior.data.sampler.va_sample_weights``).
        power: weights ∝ frequency^-power (1 = fully balanced, 0.5 = softened).
    """

    kind: str = "none"
    power: float = 1.0


@dataclass
class HoldoutConfig:
    """A subject-exclusive part of a split, for a validation set carved from training subjects.

    Each subject of the split (``LabelTable.subject``; the video id where subjects are unknown,
    the image where both are) is held out when a hash of ``(seed, subject)`` falls below
    ``fraction`` (``facebehavior.train.data.holdout_split``). A training set takes ``rest`` and
    the validation set the same split with ``held``, so checkpoints are never selected on test
    data nor on training subjects; every set drawn from the same corpus with the same seed holds
    out the same subjects.

    Attributes:
        fraction: expected share of subjects held out (0 = no holdout).
        seed: hashing seed.
        take: ``rest`` (the training part) or ``held`` (the validation part).
    """

    fraction: float = 0.0
    seed: int = 0
    take: str = "rest"


@dataclass
class SetConfig:
    """One dataset split (a task set for training, or an evaluation set).

    Attributes:
        dataset: ``DATASETS`` registry name.
        root: corpus root in its official layout.
        split: split name understood by the adapter.
        options: adapter keyword arguments.
        batch_size: explicit per-step batch size of this set (training; overrides the derivation).
        sampling: over/under-sampling (training).
        hooks: ``"module:function"`` callables ``(table, adapter) -> LabelTable`` applied in order,
            to add targets (e.g. VA from expression votes, geometric AU pseudo-labels).
        sequence_length: >0 to draw clips of consecutive frames of one video (AffWildNet).
        cache: a face-crop cache folder written by ``facebehavior prepare`` for this split; its crops
            and labels are used instead of reading ``root`` (``dataset``/``root`` stay as the record).
        parts: several splits forming one task set (FaceBehaviorNet's VA-Set = AffectNet + Aff-Wild
            + …); the set's own ``dataset``/``root``/``split`` are then unused.
        holdout: keep only the ``rest`` or the ``held`` subjects of the split (``HoldoutConfig``).
    """

    dataset: str = ""
    root: str = ""
    cache: str | None = None
    parts: list[SetConfig] = field(default_factory=list)
    split: str = "train"
    options: dict[str, Any] = field(default_factory=dict)
    batch_size: int | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    hooks: list[str] = field(default_factory=list)
    sequence_length: int = 0
    holdout: HoldoutConfig = field(default_factory=HoldoutConfig)


@dataclass
class DataConfig:
    """Task sets and loaders.

    Attributes:
        batch_size: total samples per step over all task sets (split by ``derive_batch_sizes``).
        eval_batch_size: batch size for validation/evaluation.
        num_workers: DataLoader worker processes (0 = load in the training process).
        sets: name → training task set.
        val: evaluation sets (the first one drives checkpoint selection).
    """

    batch_size: int = 64
    eval_batch_size: int = 256
    num_workers: int = 0
    sets: dict[str, SetConfig] = field(default_factory=dict)
    val: list[SetConfig] = field(default_factory=list)


@dataclass
class AugmentConfig:
    """Training-time batch transform.

    Attributes:
        target: ``"module:callable"`` building the transform from a ``config`` object; ``None``
            disables augmentation (only resizing/colour conversion). The callable's instances are
            called on ``(B, C, H, W)`` uint8 batches and return ``(images in [0, 1], flipped)``.
        config: keyword arguments of the transform's config dataclass (``out_size`` and
            ``out_channels`` are filled from ``input``).
    """

    target: str | None = "facebehavior.data.augment:FaceAugment"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskLossConfig:
    """One task's loss term.

    Attributes:
        weight: multiplier in the total loss (0 disables the term).
        class_weights: expression: per-class weights (list of E floats).
        weighting: AU / AU intensity: ``none`` or ``arl`` (ARL eq. 8: w_i ∝ 1/occurrence rate,
            normalised to an average of 1 as in the authors' code).
        kind: VA: ``ccc`` (1 − CCC, FaceBehaviorNet / AffWildNet), ``smooth_l1`` (FATAUVA-Net's
            regression with turning point ``turning_point``), ``center_smooth_l1`` (that plus
            ``center`` × the center loss of the model's ``va_features`` around one learned center
            per VA bin, FATAUVA-Net eq. 1) or ``class`` (FATAUVA-Net's 11 classes: cross-entropy on
            ``valence_logits`` / ``arousal_logits``).
        turning_point: see ``kind``.
        cosine: AU intensity: λ of iARL's ``1 − cosine similarity`` term.
        center: VA ``center_smooth_l1``: weight of the center loss.
    """

    weight: float = 1.0
    class_weights: list[float] | None = None
    weighting: str = "none"
    kind: str = "ccc"
    turning_point: float = 1.0
    cosine: float = 0.5
    center: float = 0.01


@dataclass
class CouplingConfig:
    """FaceBehaviorNet's task-coupling losses (weights; 0 = off) and their variants.

    Attributes:
        coannotation: AU BCE on AUs implied by expression labels (prototypical + observational),
            and expression CE on emotions implied by AU labels.
        soft_coannotation: CE between predicted expressions and soft targets from AU labels.
        distribution_matching: AU predictions vs. the mixture implied by predicted expressions.
        table: relatedness table, ``A`` (Du et al., the paper's default) or ``B`` (Aff-Wild2
            empirical), or a JSON file (``facebehavior.relatedness.get_table``).
        coannotation_weighted: observational AUs weighted by w in co-annotation (the paper's).
        soft_coannotation_weighted: soft co-annotation scores weight observational AUs by w
            (e.g. happiness (AU12 + AU25 + 0.51·AU6)/2.51); false: every AU weighs 1.
        distribution_matching_weighted: p(AU|e) = w for observational AUs (footnote 3's
            reweighted variant) instead of 1.
        distribution_matching_normalize: ``none`` (eq. 2 as written) or ``shared`` (each AU's
            column divided by the number of emotions sharing it); see
            ``facebehavior.losses.coupling.au_mixture``.
    """

    coannotation: float = 0.0
    soft_coannotation: float = 0.0
    distribution_matching: float = 0.0
    table: str = "A"
    coannotation_weighted: bool = True
    soft_coannotation_weighted: bool = True
    distribution_matching_weighted: bool = False
    distribution_matching_normalize: str = "none"


@dataclass
class LossConfig:
    """Per-task loss terms and coupling.

    Attributes:
        expression, au, va: the three FaceBehaviorNet tasks.
        au_intensity: iARL's weighted Euclidean + λ·(1 − cosine) on the model's ``au_intensity``.
        attribute: masked BCE on the model's ``attribute`` log-odds (FATAUVA-Net, CelebA).
        view: cross-entropy of the model's ``view`` logits (AUNets' 9-way view classifier) against
            the camera view of each frame (FERA 2017, ``extra["view"]``), over the samples with a view.
        outputs: model outputs added to the loss as ``weight · out[key].sum(-1).mean()`` —
            ARL's ``crf_energy: 1.0`` (Σ_i E_i^crf).
        coupling: FaceBehaviorNet's coupling losses.
    """

    expression: TaskLossConfig = field(default_factory=TaskLossConfig)
    au: TaskLossConfig = field(default_factory=TaskLossConfig)
    va: TaskLossConfig = field(default_factory=TaskLossConfig)
    au_intensity: TaskLossConfig = field(default_factory=TaskLossConfig)
    attribute: TaskLossConfig = field(default_factory=TaskLossConfig)
    view: TaskLossConfig = field(default_factory=TaskLossConfig)
    outputs: dict[str, float] = field(default_factory=dict)
    coupling: CouplingConfig = field(default_factory=CouplingConfig)


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Attributes:
        name: ``adamw``, ``adam`` or ``sgd``.
        lr: peak learning rate.
        weight_decay: decoupled (AdamW) or L2 (SGD/Adam) weight decay.
        momentum, nesterov: SGD only.
        schedule: ``none``, ``onecycle`` (warm-up then cosine), ``cosine`` or ``step``.
        warmup_pct: onecycle warm-up fraction of all steps.
        step_epochs, gamma: ``step``: multiply by ``gamma`` every ``step_epochs`` epochs.
        time_budget_s: train for this many wall-clock seconds instead of a fixed number of epochs:
            ``onecycle``/``cosine`` then follow the elapsed fraction of the budget rather than of the
            steps, the trainer stops when it is spent (``max_epochs`` becomes an upper bound) and the
            model is validated once more at the end. For machines whose speed is unknown or shared.
    """

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "none"
    warmup_pct: float = 0.1
    step_epochs: int = 1
    gamma: float = 0.1
    time_budget_s: float | None = None


@dataclass
class TrainerConfig:
    """Lightning ``Trainer`` arguments (devices, DDP, precision, accumulation come from Lightning).

    Attributes:
        extra: any other ``lightning.Trainer`` keyword argument, passed through.
        threads: torch intra-op threads per process (0 = torch's default).
        channels_last: keep the model and its image batches in channels-last memory format
            (measured 1.3-1.6x faster training of small convnets on the 2-core CPU,
            ``benchmarks/ferplus_train_speed.py``); results are the same up to float rounding.
    """

    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32-true"
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    log_every_n_steps: int = 50
    val_check_interval: float | int | None = None
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None
    threads: int = 1
    channels_last: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckpointConfig:
    """Checkpoint selection and export.

    Attributes:
        monitor: logged metric selecting the best checkpoint (on the first ``val`` set).
        mode: ``max`` or ``min``.
        export: file name (in ``output_dir``) of the exported safetensors + WeightSpec model.
        licence: SPDX licence of the exported weights.
    """

    monitor: str = "val/expression/accuracy"
    mode: str = "max"
    export: str = "model.safetensors"
    licence: str = "Apache-2.0"


@dataclass
class StageConfig:
    """One stage of stage-wise training (FATAUVA-Net): trains with earlier parts frozen.

    Attributes:
        name: stage name (sub-folder of ``output_dir``).
        max_epochs: epochs of this stage.
        freeze: parameter-name prefixes to freeze (e.g. ``trunk``, ``heads.heads.au``).
        loss: per-task weight overrides for this stage (``{au: 1.0, expression: 0.0}``).
        lr: learning-rate override.
        sets: task sets used in this stage (default: all).
        val: validation sets of this stage (default: ``data.val``); the first drives ``monitor``.
        monitor, mode: checkpoint selection of this stage (default: ``checkpoint``'s), e.g.
            ``val/attribute/accuracy`` for FATAUVA-Net's attribute stage, ``val/va/ccc_mean`` for its
            VA stage.
    """

    name: str = ""
    max_epochs: int = 1
    freeze: list[str] = field(default_factory=list)
    loss: dict[str, float] = field(default_factory=dict)
    lr: float | None = None
    sets: list[str] = field(default_factory=list)
    val: list[SetConfig] = field(default_factory=list)
    monitor: str | None = None
    mode: str | None = None


@dataclass
class Recipe:
    """A whole training recipe (see the module docstring for the YAML layout)."""

    name: str = ""
    seed: int = 0
    output_dir: str = ""
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    input: InputConfig = field(default_factory=InputConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    stages: list[StageConfig] = field(default_factory=list)

    def to_dict(self, as_written: bool = False) -> dict[str, Any]:
        """Plain-data form (for logging and the exported spec).

        Args:
            as_written: return the recipe's data as read (after overrides, before ``${ENV_VAR}``
                expansion), so files that travel (exported checkpoints) do not carry one
                machine's data paths. Recipes built in code have no written form and give the
                expanded one.
        """
        if as_written and self.written is not None:
            return copy.deepcopy(self.written)
        out = dataclasses.asdict(self)
        out.pop("written")
        return out

    # The data parse_recipe() built this recipe from: bookkeeping, not a recipe key (``_build``
    # refuses it in YAML), excluded from comparisons and ``to_dict()``.
    written: dict[str, Any] | None = field(
        default=None, repr=False, compare=False, metadata={"internal": True}
    )


_ENV = re.compile(r"\$\{(\w+)\}")


def _expand(value: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise ConfigError(f"{where}: environment variable ${{{m.group(1)}}} is not set")
        return os.environ[m.group(1)]

    return _ENV.sub(sub, value)


def _build(tp: Any, value: Any, where: str) -> Any:
    """Convert plain YAML data to ``tp`` (a dataclass or a typing annotation), validating keys."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            return tp()
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if not f.metadata.get("internal")]
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; valid: {names}")
        return tp(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in value.items()})
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _build(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {args}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return {str(k): _build(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return _expand(str(value), where)
    raise ConfigError(f"{where}: unsupported type {tp}")


def _validate(r: Recipe) -> None:
    if not r.name:
        raise ConfigError("recipe: 'name' is required")
    if not r.model.name:
        raise ConfigError("model.name is required (a MODELS registry name)")
    from facebehavior.face.align import TEMPLATES

    for k in r.model.init.au_map:
        if not str(k).isdigit():
            raise ConfigError(f"model.init.au_map: keys must be AU numbers, got {k!r}")
    if r.model.init.path is not None and not r.model.init.path:
        raise ConfigError("model.init.path is empty; give a checkpoint or null")
    if r.input.template not in TEMPLATES:
        raise ConfigError(
            f"input.template {r.input.template!r} is not an alignment template; valid: {sorted(TEMPLATES)} "
            "(the exported model is aligned with it at inference)"
        )
    if r.input.channels not in (1, 3):
        raise ConfigError(f"input.channels must be 1 or 3, got {r.input.channels}")
    for k in ("mean", "std"):
        if len(getattr(r.input, k)) != r.input.channels:
            raise ConfigError(f"input.{k} needs {r.input.channels} value(s), got {getattr(r.input, k)}")
    if not r.data.sets:
        raise ConfigError("data.sets: at least one training task set is required")
    for where, s in (
        [(f"data.sets.{k}", s) for k, s in r.data.sets.items()]
        + [(f"data.val[{i}]", s) for i, s in enumerate(r.data.val)]
        + [(f"stages[{i}].val[{j}]", s) for i, st in enumerate(r.stages) for j, s in enumerate(st.val)]
    ):
        for j, part in enumerate(s.parts):
            if not part.dataset or not (part.root or part.cache):
                raise ConfigError(f"{where}.parts[{j}]: dataset and root (or cache) are required")
        if not s.parts and not s.dataset:
            raise ConfigError(f"{where}.dataset is required (a DATASETS registry name)")
        if not s.parts and not (s.root or s.cache):
            raise ConfigError(
                f"{where}.root is required (the corpus folder), or cache (a prepared crop cache)"
            )
        if not 0.0 <= s.holdout.fraction < 1.0:
            raise ConfigError(f"{where}.holdout.fraction must be in [0, 1), got {s.holdout.fraction}")
        if s.holdout.take not in ("rest", "held"):
            raise ConfigError(f"{where}.holdout.take must be rest or held, got {s.holdout.take!r}")
        for j, part in enumerate(s.parts):
            if part.holdout.take not in ("rest", "held") or not 0.0 <= part.holdout.fraction < 1.0:
                raise ConfigError(f"{where}.parts[{j}].holdout: fraction in [0, 1), take rest or held")
        if s.sampling.kind not in ("none", "expression", "au", "va"):
            raise ConfigError(
                f"{where}.sampling.kind must be none, expression, au or va, got {s.sampling.kind!r}"
            )
    if r.optim.name not in ("adamw", "adam", "sgd"):
        raise ConfigError(f"optim.name must be adamw, adam or sgd, got {r.optim.name!r}")
    if r.optim.schedule not in ("none", "onecycle", "cosine", "step"):
        raise ConfigError(f"optim.schedule must be none, onecycle, cosine or step, got {r.optim.schedule!r}")
    if r.optim.time_budget_s is not None and r.optim.schedule not in ("onecycle", "cosine", "none"):
        raise ConfigError("optim.time_budget_s works with the onecycle, cosine or none schedules")
    for k in ("au", "au_intensity"):
        if getattr(r.loss, k).weighting not in ("none", "arl"):
            raise ConfigError(f"loss.{k}.weighting must be none or arl, got {getattr(r.loss, k).weighting!r}")
    c = r.loss.coupling
    if c.distribution_matching_normalize not in ("none", "shared"):
        raise ConfigError(
            f"loss.coupling.distribution_matching_normalize must be none or shared, "
            f"got {c.distribution_matching_normalize!r}"
        )
    if c.table not in ("A", "B") and not c.table.endswith(".json"):
        raise ConfigError(f"loss.coupling.table must be A, B or a .json file, got {c.table!r}")
    if r.loss.va.kind not in ("ccc", "smooth_l1", "center_smooth_l1", "class"):
        raise ConfigError(
            f"loss.va.kind must be ccc, smooth_l1, center_smooth_l1 or class, got {r.loss.va.kind!r}"
        )
    seq = {s.sequence_length for s in r.data.sets.values()}
    if len(seq) > 1:
        raise ConfigError(f"data.sets: all task sets need the same sequence_length, got {sorted(seq)}")
    if r.checkpoint.mode not in ("max", "min"):
        raise ConfigError(f"checkpoint.mode must be max or min, got {r.checkpoint.mode!r}")
    for i, st in enumerate(r.stages):
        unknown = sorted(set(st.sets) - set(r.data.sets))
        if unknown:
            raise ConfigError(f"stages[{i}].sets: {unknown} are not task sets ({sorted(r.data.sets)})")
        if st.mode is not None and st.mode not in ("max", "min"):
            raise ConfigError(f"stages[{i}].mode must be max or min, got {st.mode!r}")
        valid = ("expression", "au", "va", "au_intensity", "attribute", "view")
        bad = sorted(set(st.loss) - set(valid))
        if bad:
            raise ConfigError(f"stages[{i}].loss: unknown task(s) {bad}; valid: {list(valid)}")


def parse_recipe(data: dict[str, Any]) -> Recipe:
    """Build and validate a ``Recipe`` from plain data (e.g. parsed YAML).

    Raises:
        ConfigError: unknown keys, wrong types or inconsistent values (the message names the key).
    """
    recipe = _build(Recipe, data, "recipe")
    _validate(recipe)
    # Defaults derived from other keys are filled here, after validation (which only checks).
    output_dir = recipe.output_dir or str(Path("runs") / recipe.name)
    return dataclasses.replace(recipe, output_dir=output_dir, written=copy.deepcopy(data))


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set ``key.path=value`` (value parsed as YAML) in plain recipe data, in place.

    A numeric path element indexes a list (``data.val.0.split=fold2_train``); missing mappings
    are created.

    Raises:
        ConfigError: malformed override, or a path through something that is not a mapping/list.
    """
    import yaml

    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key.path=value")
    key, val = override.split("=", 1)
    node: Any = data
    parts = key.split(".")
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise ConfigError(f"override {override!r}: {p!r} is not an index of a {len(node)}-item list")
            if last:
                node[int(p)] = yaml.safe_load(val)
            else:
                node = node[int(p)]
        elif isinstance(node, dict):
            if last:
                node[p] = yaml.safe_load(val)
            else:
                node = node.setdefault(p, {})
        else:
            raise ConfigError(f"override {override!r}: {parts[i - 1]} is not a mapping or list")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read a YAML recipe, apply ``key.path=value`` overrides (values parsed as YAML), validate.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: invalid YAML or recipe (the message names the file and the key).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} not found; recipes live in recipes/ (see docs/training.md)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    for ov in overrides or []:
        apply_override(data, ov)
    try:
        return parse_recipe(data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
