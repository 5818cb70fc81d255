"""Evaluate an exported checkpoint on a dataset split with the papers' metrics.

Lightning-free: the model comes from ``load_weights`` (safetensors + ``WeightSpec``); inputs and
outputs go through ``facebehavior.models.transforms`` (``preprocess``, ``postprocess``), exactly as
``Analyzer`` computes them.

**Faces.** What the model sees is what it would see at inference:

- ``cache``: a ``facebehavior prepare`` cache is read (its crops, resized to the model's input
  size if they differ; a template other than the checkpoint's is logged as a warning);
- ``detect=True``: every row is detected and aligned by ``facebehavior.data.cache.build_cache``,
  the code of ``facebehavior prepare``, with the checkpoint's template (``WeightSpec.input.template``)
  at its input size; one face per row (the largest, or the one on the annotated box for
  AffectNet), FaceMesh five-point alignment as in ``Analyzer``;
- ``detect=False``: each image is resized to the input size as it is (the corpus' own face
  crops: FER2013's 48×48 faces, a synthetic corpus);
- ``detect=None`` (auto): no detection for corpora held in memory as face crops (FER2013 /
  FER+) and for checkpoints whose recipe trained on the corpus' images directly (no ``cache:``
  in any set: the model learnt whole images); detection otherwise.

Rows without a face (not found, or unreadable) are counted in ``report["faces"]`` and handled by
``no_face``: ``"nearest"`` (default) gives a video frame the prediction of the nearest frame of
the same video that has a face (earlier frame on ties) — the Aff-Wild / ABAW convention that every
annotated frame is scored — and leaves still images (or videos without any face) out of the
metrics, counted as ``excluded``; ``"exclude"`` leaves every row without a face out.

**Clip models** (AffWildNet, CNN-RNN, MT-VGG-GRU: ``forward(clip, ...)`` on ``(B, T, C, H, W)``):
the rows of each video with a face are ordered by frame and cut into windows of the model's
sequence length ``T`` (the recipe's ``sequence_length`` or ``sequence_length=``) with stride
``T // 2`` (half-overlapping; the last window is aligned to the end of the video so every frame is
covered); each frame's prediction is the mean of its windows' outputs (probabilities, after
``postprocess``). A video shorter than ``T`` is one window padded at its end by repeating its last
frame; the padded outputs are dropped (for the unidirectional GRUs of these models the real frames'
outputs are then those of the short video alone).

**Extra inputs** are the model's ``input_names`` (``train.data.input_names``), turned into its
arguments by ``train.data.eval_inputs`` as in training: ``landmarks`` (AffWildNet family) are the
cache's FaceMesh points mapped to the 68 iBUG points (``FaceCache.landmarks68``), crop pixels
normalised to [-1, 1] (``models.affwildnet.normalise_landmarks``); ``flow`` (AUNets' flow models)
is the flow image of each face (``FaceCache.flow_images``): computed with DIS between consecutive
aligned crops of each video when the split is detected here, read from a ``prepare --flow`` cache
otherwise (a cache without flow is a one-line error saying to add it). Both need aligned crops (a
detected or cached split). With ``tta_flip`` the mirrored view mirrors these inputs too.

**Temporal filtering.** ``median=W`` (odd) median-filters every prediction over the frames of each
video (rows with a non-empty ``video``, grouped by subject and video, in frame order; AUNets used
W = 7), before thresholds and arg-max; windows shrink at the ends
(``facebehavior.temporal.smoothing.median_filter_1d``). Still images are not filtered.

**Metrics** (``facebehavior.metrics``; ``compute_metrics``):

- expression (samples with a single-class label, e.g. the FER+ majority): accuracy, mean diagonal
  of the normalised confusion matrix (= UAR, RAF-DB's metric), macro F1, per-class F1, the
  confusion matrix, FaceBehaviorNet's / ABAW's ``0.67·F1 + 0.33·accuracy`` and the EmotioNet
  expression score;
- AU occurrence (annotated samples per AU): per-AU F1, accuracy and ROC AUC, mean F1 and mean AUC,
  the ABAW and EmotioNet AU scores (soft targets count as present at >= 0.5; prediction at p >= 0.5);
- AU intensity (FERA 2015 / DISFA, ARL/iARL): per-AU ICC(3,1) and MAE on the predictions clipped to
  [0, 5] and rounded to the integer levels the labels use (``icc``, ``mae``: the reported figures),
  and on the unrounded clipped predictions (``icc_raw``, ``mae_raw``); means over AUs;
- VA: CCC, RMSE and Pearson per dimension and the mean CCC;
- attributes (FATAUVA-Net, CelebA): per-attribute accuracy (log-odds > 0) and AUC, their means;
- view (FERA 2017 view classifier): accuracy;
- compound expressions (``rafdb_compound``): ``facebehavior.compound``'s zero-shot scores over
  RAF-DB's 11 classes from the expression, AU and valence outputs: accuracy, mean diagonal and
  macro F1 of the arg-max (the paper's closed set), and with the rejection threshold
  ``COMPOUND_MIN_PROB`` (a rejected face counts as wrong; coverage and accuracy on the accepted
  faces are reported too).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from facebehavior import metrics
from facebehavior.models.transforms import postprocess, preprocess
from facebehavior.models.weights import WeightSpec, load_weights
from facebehavior.train.data import LabelledImages, SetData, eval_inputs, eval_loader, is_clip_model

__all__ = [
    "EvalSplit",
    "NO_FACE_POLICIES",
    "clip_windows",
    "compute_metrics",
    "evaluate_checkpoint",
    "fill_missing",
    "median_filter_predictions",
    "open_split",
    "predict",
    "predict_rows",
    "save_report",
]

logger = logging.getLogger(__name__)

NO_FACE_POLICIES = ("nearest", "exclude")
# Label arrays of ``LabelledImages`` carried into the predictions (``view`` where the data module has it).
LABEL_ARRAYS = ("expression", "expression_dist", "expression_mask", "expression_hard", "au", "au_mask", "va",
                "va_mask", "au_intensity", "au_intensity_mask", "attribute", "attribute_mask", "view",
                "view_mask")  # fmt: skip
# The integer intensity levels of FERA 2015 / DISFA / BP4D labels.
MAX_INTENSITY = 5.0


# ---- the split: labels of every row, pixels of the rows with a face ------------------------------------
@dataclass
class EvalSplit:
    """One evaluation split.

    Attributes:
        table: the split's ``LabelTable`` (N rows), every row, with or without a face.
        labels: ``LabelledImages`` over ``table`` (its label arrays, in the model's label orders).
        status: ``(N,)`` int8 ``facebehavior.data.cache`` status per row (``STATUS_OK`` = face).
        pixels: ``LabelledImages`` serving the crops of the rows with a face (``local[r]`` is row
            ``r``'s index in it).
        local: ``(N,)`` int64 index into ``pixels`` (-1 for rows without a face).
        cache: the ``FaceCache`` read (detected or ``prepare``'d splits), else ``None``.
        faces: how the crops were made, for the report.
    """

    table: Any
    labels: LabelledImages
    status: np.ndarray
    pixels: LabelledImages
    local: np.ndarray
    cache: Any
    faces: dict[str, Any]

    def images(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, C, S, S)`` crops of table rows ``rows`` (rows with a face)."""
        return self.pixels.__getitems__(self.local[rows])["image"]

    def landmarks68(self, rows: np.ndarray) -> torch.Tensor:
        """``(B, 68, 2)`` float32 iBUG-68 points in the model's crop, normalised to [-1, 1].

        The training path: the cache's FaceMesh points mapped to 68 (``FaceCache.landmarks68``),
        then ``models.affwildnet.normalise_landmarks`` at the cache's crop size.
        """
        from facebehavior.models.affwildnet import normalise_landmarks

        if self.cache is None or getattr(self.cache, "_mesh", None) is None:
            raise ValueError(
                "this model takes 68 landmarks per frame; evaluate it on a detected split (no --no-detect) "
                "or a prepare cache built with FaceMesh (without --no-facemesh)"
            )
        pts = self.cache.landmarks68(self.cache.table, self.local[rows])  # (B, 68, 2) crop pixels
        return torch.from_numpy(normalise_landmarks(pts, int(self.cache.crop_size)))

    def spectrogram(self, rows: np.ndarray) -> torch.Tensor:
        """``(B, 1, H, W)`` float32 spectrogram images of table rows ``rows`` (``prepare --audio``)."""
        from facebehavior.io.audio import cached_spectrograms

        if self.cache is None:
            raise ValueError("this model takes the audio: evaluate it on a cache made by `facebehavior "
                             "prepare ... --audio FOLDER_OF_THE_VIDEOS` (--cache)")  # fmt: skip
        return torch.from_numpy(cached_spectrograms(self.cache, self.local[rows]))

    def flow(self, rows: np.ndarray) -> torch.Tensor:
        """uint8 ``(B, 3, S, S)`` AUNets flow images of table rows ``rows`` (``prepare --flow``), at
        the model's input size (resized as the crops are)."""
        if self.cache is None:
            raise ValueError(
                "this model takes optical-flow images, computed on aligned face crops: evaluate it on a "
                "detected split (no --no-detect) or on a cache made by `facebehavior prepare ... --flow dis`"
            )
        flow = self.cache.flow_images(self.cache.table, self.local[rows])  # (B, S, S, 3) uint8
        return torch.from_numpy(self.pixels._convert(flow))  # the crops' layout and resize rule


def _recipe_sets(recipe: Any) -> Iterator[dict]:
    """Every task/validation set dict of a stored recipe (anything holding a ``dataset`` key)."""
    if isinstance(recipe, dict):
        if "dataset" in recipe:
            yield recipe
        for v in recipe.values():
            yield from _recipe_sets(v)
    elif isinstance(recipe, list):
        for v in recipe:
            yield from _recipe_sets(v)


def _trained_on_crops(spec: WeightSpec) -> bool | None:
    """True if the checkpoint's recipe read ``prepare`` caches, False if it read raw corpus images,
    None when the checkpoint carries no recipe."""
    sets = list(_recipe_sets(spec.extra.get("recipe"))) if isinstance(spec.extra, dict) else []
    if not sets:
        return None
    return any(s.get("cache") for s in sets)


def recipe_sequence_length(spec: WeightSpec) -> int:
    """The largest ``sequence_length`` of the checkpoint's recipe sets (0: none, or no recipe)."""
    sets = list(_recipe_sets(spec.extra.get("recipe"))) if isinstance(spec.extra, dict) else []
    return max([int(s.get("sequence_length") or 0) for s in sets] or [0])


def _model_aus(spec: WeightSpec) -> tuple[int, ...]:
    codes = spec.tasks.get("au") or spec.tasks.get("au_intensity") or ()
    return tuple(int(c[2:]) for c in codes)


@contextmanager
def open_split(
    set_cfg: Any,
    spec: WeightSpec,
    *,
    detect: bool | None = None,
    save_cache: str | Path | None = None,
    workers: int = 1,
    device: str = "cpu",
    facemesh: bool = True,
    flow: str | None = None,
) -> Iterator[EvalSplit]:
    """Open the split of ``set_cfg`` (a ``SetConfig``) for the checkpoint described by ``spec``.

    A context manager: a temporary detection cache is removed on exit.

    Args:
        set_cfg: ``dataset``, ``root``, ``split``, ``options``, optionally ``cache`` (a ``prepare``
            folder, read instead of the corpus) and ``holdout``.
        spec: the checkpoint's spec (input size, template, label orders).
        detect: see the module docstring (None: auto).
        save_cache: folder for the detection cache (kept; reusable as ``cache``); default: a
            temporary folder.
        workers, device, facemesh: ``build_cache``'s processes, detector device, FaceMesh alignment.
        flow: the model takes optical-flow images: a detected split gets them computed with this
            method (``"dis"``, ``data.cache.build_flow``, as ``prepare --flow``); a ``prepare`` cache
            must hold them already.
    """
    from facebehavior.data.cache import (
        STATUS_NAMES,
        STATUS_OK,
        CacheConfig,
        FaceCache,
        build_cache,
        build_flow,
    )
    from facebehavior.data.datasets import create_dataset
    from facebehavior.train.data import holdout_split

    inp = spec.input
    aus = _model_aus(spec)
    n_attr = len(spec.tasks.get("attribute", ()))

    def images_of(adapter: Any, table: Any) -> LabelledImages:
        return LabelledImages(SetData(adapter, table), aus, inp.channels, inp.size, attributes=n_attr)

    def holdout(table: Any) -> np.ndarray:
        hold = getattr(set_cfg, "holdout", None)
        if hold is None or hold.fraction <= 0:
            return np.arange(len(table))
        rest, held = holdout_split(table, hold.fraction, hold.seed)
        return held if hold.take == "held" else rest

    tmp: tempfile.TemporaryDirectory | None = None
    try:
        if getattr(set_cfg, "cache", None):
            cache = FaceCache(set_cfg.cache)
            if flow and getattr(cache, "_flow", None) is None:
                raise ValueError(
                    f"{set_cfg.cache} holds no optical-flow images, which this model takes: run "
                    "`facebehavior prepare` again with the same arguments and --flow dis (only the flow is "
                    "computed)"
                )
            faces = {"source": f"prepare cache {set_cfg.cache}", **_cache_settings(cache)}
            if cache.meta["config"]["template"] != inp.template:
                logger.warning(
                    "cache %s was aligned to template %r, the checkpoint expects %r: crops are framed "
                    "differently from what the model learnt",
                    set_cfg.cache, cache.meta["config"]["template"], inp.template,
                )  # fmt: skip
        else:
            adapter = create_dataset(set_cfg.dataset, set_cfg.root, **dict(set_cfg.options or {}))
            table = adapter.load(set_cfg.split)
            if detect is None:
                detect = _auto_detect(adapter, table, spec)
            if not detect:
                if flow:
                    raise ValueError(
                        "this model takes optical-flow images of aligned face crops, so evaluate detects "
                        "faces (drop --no-detect) or reads a cache made by `facebehavior prepare ... "
                        "--flow dis`"
                    )
                table = table.subset(holdout(table))
                labels = images_of(adapter, table)
                n = len(table)
                faces = {"source": f"corpus images resized to {inp.size} px (no detection)"}
                ok = np.full(n, STATUS_OK, np.int8)
                yield EvalSplit(table, labels, ok, labels, np.arange(n), None, faces)
                return
            table = table.subset(holdout(table))
            if save_cache is None:
                tmp = tempfile.TemporaryDirectory(prefix="facebehavior-evaluate-")
                out = Path(tmp.name)
            else:
                out = Path(save_cache)
            config = CacheConfig(size=inp.size, template=inp.template, device=device, facemesh=facemesh)
            logger.info("detecting and aligning %d rows (template %s, %d px) into %s",
                        len(table), inp.template, inp.size, out)  # fmt: skip
            build_cache(adapter, table, out, config, workers=workers)
            if flow:
                build_flow(out, method=flow)
            cache = FaceCache(out)
            faces = {"source": "detected and aligned" + ("" if tmp else f", cache kept in {out}"),
                     **_cache_settings(cache)}  # fmt: skip
        full = cache.full_table
        rows = holdout(full) if getattr(set_cfg, "cache", None) else np.arange(len(full))
        status = cache.status[rows]
        local_full = np.full(len(full), -1, np.int64)
        local_full[cache.found] = np.arange(len(cache.found))
        table = full.subset(rows)
        faces.update({name: int((status == code).sum()) for code, name in STATUS_NAMES.items()})
        yield EvalSplit(table, images_of(cache, table), status, images_of(cache, cache.table),
                        local_full[rows], cache, faces)  # fmt: skip
    finally:
        if tmp is not None:
            tmp.cleanup()


def _cache_settings(cache: Any) -> dict[str, Any]:
    c = cache.meta["config"]
    return {"template": c["template"], "size": c["size"], "detector": c["detector"],
            "fallback": c["fallback"], "facemesh": c["facemesh"], "detect": c["detect"]}  # fmt: skip


def _auto_detect(adapter: Any, table: Any, spec: WeightSpec) -> bool:
    if adapter.image_array(table.subset(np.arange(min(1, len(table))))) is not None:
        logger.info("%s holds face crops in memory: evaluating them as they are", table.corpus)
        return False
    if _trained_on_crops(spec) is False:
        logger.info("the checkpoint's recipe trained on the corpus images without a cache: no detection")
        return False
    return True


# ---- predictions ----------------------------------------------------------------------------------------
def _outputs(spec: WeightSpec, raw: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """``postprocess`` + iARL's ``au_intensity`` (an output in the AU head's order that its spec does
    not list as a task)."""
    out = postprocess(spec, raw)
    au = spec.tasks.get("au", ())
    if "au_intensity" not in out and "au_intensity" in raw and raw["au_intensity"].shape[-1] == len(au):
        out["au_intensity"] = raw["au_intensity"].detach().float().cpu().numpy()
    return out


def clip_windows(n: int, length: int, stride: int) -> list[tuple[int, int]]:
    """``(start, size)`` of the windows covering a track of ``n`` frames (module docstring).

    Windows start every ``stride`` frames; the last one is aligned to the end of the track; a
    track shorter than ``length`` is one window of ``n`` frames (padded by the caller).
    """
    if length < 1 or stride < 1:
        raise ValueError(f"sequence length and stride must be >= 1, got {length}, {stride}")
    if n <= length:
        return [(0, n)] if n else []
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] != n - length:
        starts.append(n - length)
    return [(s, length) for s in starts]


def _tracks(table: Any, rows: np.ndarray) -> list[np.ndarray]:
    """Rows grouped per (subject, video), each in frame order; still images are tracks of one."""
    video = table.video[rows].astype(str)
    subject = table.subject[rows].astype(str)
    key = np.where(
        video != "", np.char.add(np.char.add(subject, "\x00"), video), np.char.add("\x01", rows.astype(str))
    )
    order = np.lexsort((table.frame[rows], key))
    k = key[order]
    cuts = np.flatnonzero(k[1:] != k[:-1]) + 1
    return [rows[order[a:b]] for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(k)], strict=True)]


@torch.no_grad()
def predict_rows(
    model: torch.nn.Module,
    spec: WeightSpec,
    split: EvalSplit,
    *,
    batch_size: int = 256,
    tta_flip: bool = False,
    sequence_length: int = 0,
    stride: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-row predictions of every task: ``task`` → ``(N, K)`` float32, NaN on rows without a face.

    Args:
        sequence_length: ``T`` > 0 runs a clip model over windows of ``T`` frames (module docstring).
        stride: window stride (default ``T // 2``).
        tta_flip: average over the image and its mirror.
    """
    from facebehavior.temporal.flow import flip_flow_image
    from facebehavior.train.data import input_names

    model.eval()
    n = len(split.table)
    rows = np.flatnonzero(split.local >= 0)
    names = input_names(model)
    unsupported = [x for x in names if x not in ("image", "landmarks", "flow", "spectrogram")]
    if unsupported:
        raise ValueError(f"{type(model).__name__} takes {unsupported}; evaluate supplies face crops, "
                         "landmarks, optical flow and spectrograms only")  # fmt: skip
    sums: dict[str, np.ndarray] = {}
    counts = np.zeros(n, np.float64)
    fetch = {"image": split.images, "landmarks": split.landmarks68, "flow": split.flow,
             "spectrogram": split.spectrogram}  # fmt: skip

    def mirror(name: str, x: torch.Tensor) -> torch.Tensor:
        """The input of the mirrored face: images flipped; flow also has its x motion negated; the
        landmarks' x → −x in normalised coordinates, their order not permuted (left/right labels
        swap, as for the image)."""
        if name == "landmarks":
            return x * x.new_tensor([-1.0, 1.0])
        if name == "spectrogram":  # sound is not mirrored
            return x
        if name == "flow":
            return torch.from_numpy(flip_flow_image(x.permute(0, 2, 3, 1).numpy())).permute(0, 3, 1, 2)
        return torch.flip(x, dims=[-1])

    def prepare(inputs: dict[str, torch.Tensor], shape: tuple[int, ...]) -> list[torch.Tensor]:
        """Model arguments (``train.data.eval_inputs``: face and flow preprocessed by the spec) with
        the leading ``shape`` ((B,) or (B, T)) restored."""
        flat = {k: v.reshape(-1, *v.shape[1:]) for k, v in inputs.items()}
        args = eval_inputs(model, flat, spec)
        return [a.reshape(*shape, *a.shape[1:]) for a in args]

    def run(idx: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs for ``idx`` ((B,) rows, or (B, T) rows of clips)."""
        flat = idx.reshape(-1)
        inputs = {k: fetch[k](flat) for k in names}
        views = [inputs]
        if tta_flip:
            views.append({k: mirror(k, v) for k, v in inputs.items()})
        acc: dict[str, np.ndarray] = {}
        for v in views:
            for k, y in _outputs(spec, model(*prepare(v, idx.shape))).items():
                acc[k] = acc[k] + y if k in acc else y
        return {k: y / np.float32(len(views)) for k, y in acc.items()}

    def add(target_rows: np.ndarray, out: dict[str, np.ndarray]) -> None:
        for k, y in out.items():
            if k not in sums:
                sums[k] = np.zeros((n, y.shape[-1]), np.float64)
            np.add.at(sums[k], target_rows, y.reshape(len(target_rows), -1))
        np.add.at(counts, target_rows, 1.0)

    if sequence_length:
        T = int(sequence_length)
        step = int(stride or max(1, T // 2))
        windows = [(tr, s, m) for tr in _tracks(split.table, rows) for s, m in clip_windows(len(tr), T, step)]
        per_batch = max(1, batch_size // T)
        for b in range(0, len(windows), per_batch):
            chunk = windows[b : b + per_batch]
            idx = np.stack([np.r_[tr[s : s + m], np.repeat(tr[s + m - 1], T - m)] for tr, s, m in chunk])
            out = run(idx)
            for j, (tr, s, m) in enumerate(chunk):
                add(tr[s : s + m], {k: y[j, :m] for k, y in out.items()})
    else:
        for b in range(0, len(rows), batch_size):
            r = rows[b : b + batch_size]
            add(r, run(r))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: (v / counts[:, None]).astype(np.float32) for k, v in sums.items()}


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    spec: WeightSpec,
    ds: LabelledImages,
    batch_size: int = 256,
    tta_flip: bool = False,
) -> dict[str, np.ndarray]:
    """Run an image model over every sample of ``ds`` (already face crops); predictions and labels.

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
            for k, y in _outputs(spec, model(v)).items():
                acc[k] = acc[k] + y if k in acc else y
        for k, y in acc.items():
            chunks.setdefault(f"pred_{k}", []).append(y / np.float32(len(views)))
        for k, y in batch.items():
            if k != "image":
                chunks.setdefault(k, []).append(y.numpy())
    return {k: np.concatenate(v) for k, v in chunks.items()}


def fill_missing(
    pred: dict[str, np.ndarray], table: Any, policy: Literal["nearest", "exclude"] = "nearest"
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply the no-face policy (module docstring) to per-row predictions.

    Args:
        pred: task → ``(N, K)`` with NaN rows where no face was found.
        table: the split's ``LabelTable`` (``subject``, ``video``, ``frame``).
        policy: ``"nearest"`` or ``"exclude"``.

    Returns:
        ``(filled predictions, source)``: ``source`` ``(N,)`` int64 is the row each prediction comes
        from (itself for rows with a face, a neighbour for filled rows, -1 for excluded rows).
    """
    if policy not in NO_FACE_POLICIES:
        raise ValueError(f"no_face policy must be one of {NO_FACE_POLICIES}, got {policy!r}")
    n = len(table)
    have = np.ones(n, bool)
    for v in pred.values():
        have &= np.isfinite(v).all(axis=1)
    source = np.where(have, np.arange(n), -1)
    if policy == "nearest" and not have.all():
        video = table.video.astype(str)
        for track in _tracks(table, np.flatnonzero(video != "")):
            ok = track[have[track]]
            if len(ok) == 0 or len(ok) == len(track):
                continue
            f_ok, f = table.frame[ok], table.frame[track]
            j = np.clip(np.searchsorted(f_ok, f), 1, len(ok)) - 1  # last face frame <= f (or the first)
            k = np.minimum(j + 1, len(ok) - 1)
            later = np.abs(f_ok[k] - f) < np.abs(f - f_ok[j])  # ties go to the earlier frame
            source[track] = ok[np.where(later, k, j)]
    out = {k: np.where(source[:, None] >= 0, v[np.maximum(source, 0)], np.nan).astype(np.float32)
           for k, v in pred.items()}  # fmt: skip
    return out, source


def median_filter_predictions(pred: dict[str, np.ndarray], table: Any, window: int) -> dict[str, np.ndarray]:
    """Median-filter every prediction over the frames of each video (module docstring).

    Rows with NaN (excluded) stay NaN and do not enter their neighbours' windows.
    """
    from facebehavior.temporal.smoothing import median_filter_1d

    if window <= 1:
        return pred
    out = {k: v.copy() for k, v in pred.items()}
    video = table.video.astype(str)
    for track in _tracks(table, np.flatnonzero(video != "")):
        if len(track) < 2:
            continue
        for k, v in pred.items():
            seg = v[track].astype(np.float64)
            out[k][track] = np.where(np.isnan(seg), np.nan, median_filter_1d(seg, window))
    return out


# ---- metrics -------------------------------------------------------------------------------------------
def _per(names: list[str], values: np.ndarray) -> dict[str, float]:
    return dict(zip(names, map(float, values), strict=True))


def compute_metrics(
    pred: dict[str, np.ndarray], spec: Any, *, compound_min_prob: float | None = None
) -> dict[str, Any]:
    """Per-task metrics (see the module docstring) from scored rows.

    Args:
        pred: ``pred_<task>`` predictions and the label arrays (``expression``, ``expression_hard``,
            ``au``, ``au_mask``, ``au_intensity``, ``au_intensity_mask``, ``va``, ``va_mask``,
            ``attribute``, ``attribute_mask``, ``compound``), all over the same rows.
        spec: the checkpoint's ``WeightSpec`` (label orders).
        compound_min_prob: rejection threshold of the compound scores (default
            ``facebehavior.compound.COMPOUND_MIN_PROB``).
    """
    res: dict[str, Any] = {}
    if "pred_expression" in pred and "expression_hard" in pred:
        labels = list(spec.tasks["expression"])
        m = pred["expression_hard"] > 0
        if m.any():
            y, p = pred["expression"][m], pred["pred_expression"][m].argmax(1)
            C = len(labels)
            res["expression"] = {
                "n": int(m.sum()),
                "accuracy": metrics.accuracy(y, p),
                "mean_diagonal": metrics.mean_diagonal(y, p, C),
                "macro_f1": metrics.macro_f1(y, p, C),
                "score_0.67f1_0.33acc": metrics.abaw_expr_score(y, p, C),
                "emotionet_score": metrics.emotionet_expr_score(y, p, C),
                "per_class_f1": _per(labels, metrics.f1_per_class(y, p, C)),
                "per_class_support": dict(zip(labels, map(int, np.bincount(y, minlength=C)), strict=True)),
                "labels": labels,
                "confusion_matrix": metrics.confusion_matrix(y, p, C).tolist(),
            }
    if "pred_au" in pred and pred.get("au_mask") is not None and pred["au_mask"].sum() > 0:
        codes = list(spec.tasks["au"])
        cols = pred["au_mask"].sum(0) > 0
        t, p, msk = pred["au"][:, cols], pred["pred_au"][:, cols], pred["au_mask"][:, cols]
        t = (t >= 0.5).astype(np.float32)  # soft targets are scored as occurrence at >= 0.5
        names = [c for c, k in zip(codes, cols, strict=True) if k]
        f1 = metrics.au_f1(t, p, msk)
        auc = metrics.au_auc(t, p, msk)
        res["au"] = {
            "n": int((msk.sum(1) > 0).sum()),
            "f1_mean": float(np.mean(f1)),
            "auc_mean": float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan"),
            "abaw_score": metrics.abaw_au_score(t, p, msk),
            "emotionet_score": metrics.emotionet_au_score(t, p, msk),
            "per_au_f1": _per(names, f1),
            "per_au_accuracy": _per(names, metrics.au_accuracy(t, p, msk)),
            "per_au_auc": _per(names, auc),
            "per_au_support": _per(names, msk.sum(0)),
        }
    if "pred_au_intensity" in pred and pred.get("au_intensity_mask") is not None:
        res.update(_intensity_metrics(pred, spec))
    if "pred_va" in pred and pred["va_mask"].sum() > 1:
        m = pred["va_mask"] > 0
        res["va"] = {"n": int(m.sum())}
        for j, name in enumerate(("valence", "arousal")):
            y, p = pred["va"][m, j], pred["pred_va"][m, j]
            res["va"][name] = {"ccc": float(metrics.ccc(y, p)), "rmse": float(metrics.rmse(y, p)),
                               "pearson": float(metrics.pearson(y, p))}  # fmt: skip
        res["va"]["ccc_mean"] = 0.5 * (res["va"]["valence"]["ccc"] + res["va"]["arousal"]["ccc"])
    if (
        "pred_attribute" in pred
        and pred.get("attribute_mask") is not None
        and pred["attribute_mask"].sum() > 0
    ):
        names = list(spec.tasks["attribute"])
        msk = pred["attribute_mask"]
        t = (pred["attribute"] >= 0.5).astype(np.float32)
        logit = pred["pred_attribute"]
        # Attribute heads output log-odds (FATAUVA-Net's 2-way softmax): present at > 0, i.e. p > 0.5.
        acc = metrics.au_accuracy(t, (logit > 0).astype(np.float32), msk)
        auc = metrics.au_auc(t, logit, msk)
        res["attribute"] = {
            "n": int((msk.sum(1) > 0).sum()),
            "accuracy_mean": float(np.mean(acc)),
            "auc_mean": float(np.nanmean(auc)) if np.isfinite(auc).any() else float("nan"),
            "per_attribute_accuracy": _per(names, acc),
            "per_attribute_auc": _per(names, auc),
        }
    if "pred_view" in pred and pred.get("view_mask") is not None and pred["view_mask"].sum() > 0:
        m = pred["view_mask"] > 0
        y, p = pred["view"][m].astype(np.int64), pred["pred_view"][m].argmax(1)
        res["view"] = {"n": int(m.sum()), "accuracy": metrics.accuracy(y, p),
                       "labels": list(spec.tasks["view"])}  # fmt: skip
    if "compound" in pred and (pred["compound"] >= 0).any():
        res["compound"] = _compound_metrics(pred, spec, compound_min_prob)
    return res


def _intensity_metrics(pred: dict[str, np.ndarray], spec: Any) -> dict[str, Any]:
    msk = pred["au_intensity_mask"] > 0
    codes = list(spec.tasks.get("au") or spec.tasks.get("au_intensity"))
    y_all, p_all = pred["au_intensity"], np.clip(pred["pred_au_intensity"], 0.0, MAX_INTENSITY)
    per: dict[str, dict[str, float]] = {"icc": {}, "mae": {}, "icc_raw": {}, "mae_raw": {}}
    support: dict[str, int] = {}
    for j, code in enumerate(codes):
        m = msk[:, j]
        if m.sum() < 2:
            continue
        y, p = y_all[m, j], p_all[m, j]
        r = np.round(p)  # the labels' integer levels (FERA 2015 / DISFA convention)
        per["icc"][code], per["mae"][code] = float(metrics.icc(y, r)), float(metrics.mae(y, r))
        per["icc_raw"][code], per["mae_raw"][code] = float(metrics.icc(y, p)), float(metrics.mae(y, p))
        support[code] = int(m.sum())
    if not support:
        return {}
    out: dict[str, Any] = {"n": int((msk.sum(1) > 0).sum()), "per_au_support": support}
    for k, v in per.items():
        out[f"{k}_mean"] = float(np.mean(list(v.values())))
        out[f"per_au_{k}"] = v
    return {"au_intensity": out}


def _compound_metrics(pred: dict[str, np.ndarray], spec: Any, min_prob: float | None) -> dict[str, Any]:
    from facebehavior.compound import COMPOUND_MIN_PROB, compound_output_columns, compound_supported
    from facebehavior.relatedness import RAFDB_COMPOUND_11

    emotions = tuple(spec.tasks.get("expression", ()))
    aus = tuple(int(c[2:]) for c in spec.tasks.get("au", ()))
    if "pred_expression" not in pred or "pred_au" not in pred or "pred_va" not in pred:
        raise ValueError(
            "compound scores need a model with expression, AU and valence outputs (FaceBehaviorNet §4.5); "
            f"this checkpoint has {sorted(spec.tasks)}"
        )
    if not compound_supported(emotions, aus, "rafdb"):
        raise ValueError(
            f"the model's expressions {emotions} / AUs {aus} cannot score RAF-DB's compound classes"
        )
    m = pred["compound"] >= 0
    y = pred["compound"][m].astype(np.int64)
    C = len(RAFDB_COMPOUND_11)
    min_prob = COMPOUND_MIN_PROB if min_prob is None else min_prob
    out: dict[str, Any] = {"n": int(m.sum()), "labels": list(RAFDB_COMPOUND_11), "min_prob": min_prob}
    for key, thr in (("closed_set", None), ("with_rejection", min_prob)):
        cols = compound_output_columns(pred["pred_expression"][m], emotions, pred["pred_au"][m], aus,
                                       pred["pred_va"][m, 0], "rafdb", thr)  # fmt: skip
        names = cols["compound"]
        p = np.array([RAFDB_COMPOUND_11.index(s) if s in RAFDB_COMPOUND_11 else C for s in names], np.int64)
        accepted = p < C
        # A rejected face is an extra "none" class (index C): it is wrong for every true class.
        out[key] = {
            "accuracy": float(np.mean(p == y)),
            "mean_diagonal": metrics.mean_diagonal(y, p, C + 1),
            "macro_f1": float(np.mean(metrics.f1_per_class(y, p, C + 1)[:C])),
            "coverage": float(accepted.mean()),
            "accuracy_accepted": float(np.mean(p[accepted] == y[accepted]))
            if accepted.any()
            else float("nan"),
            "confusion_matrix": metrics.confusion_matrix(y, p, C + 1)[:C].tolist(),
        }
    return out


# ---- the whole evaluation ------------------------------------------------------------------------------
def evaluate_checkpoint(
    checkpoint: str | Path,
    set_cfg: Any,
    *,
    batch_size: int = 256,
    tta_flip: bool = False,
    detect: bool | None = None,
    no_face: Literal["nearest", "exclude"] = "nearest",
    median: int = 0,
    sequence_length: int | None = None,
    stride: int | None = None,
    save_cache: str | Path | None = None,
    workers: int = 1,
    device: str = "cpu",
    facemesh: bool = True,
    compound_min_prob: float | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Load ``checkpoint`` and evaluate it on the split described by ``set_cfg`` (a ``SetConfig``).

    Args:
        checkpoint: exported ``.safetensors`` model.
        set_cfg: ``dataset``, ``root``, ``split``, ``options``; ``cache`` reads a ``prepare`` folder.
        detect: detection + alignment (True), the images as they are (False), or auto (None).
        no_face: ``"nearest"`` or ``"exclude"`` (module docstring).
        median: odd median-filter window over each video's frames (0 or 1: none).
        sequence_length: clip length for sequence models (None: the recipe's; 0 forces per-image).
        stride: clip window stride (default half the clip length).
        save_cache: keep the detection cache there (reusable as ``cache``).
        workers, device, facemesh: detection processes, detector device, FaceMesh alignment.
        compound_min_prob: compound rejection threshold (default ``COMPOUND_MIN_PROB``).

    Returns:
        ``(report, predictions)``: ``predictions`` holds, over every row of the split (N), the
        ``pred_<task>`` arrays after the no-face policy and filtering (NaN rows are excluded), the
        label arrays, ``status`` (cache status), ``source`` (row the prediction comes from, -1:
        excluded) and ``scored`` (bool).
    """
    if median and (median < 0 or median % 2 == 0):
        raise ValueError(f"the median window must be odd (e.g. 7), got {median}")
    if no_face not in NO_FACE_POLICIES:
        raise ValueError(f"no_face must be one of {NO_FACE_POLICIES}, got {no_face!r}")
    model, spec = load_weights(checkpoint)
    clip = is_clip_model(model)
    T = recipe_sequence_length(spec) if sequence_length is None else int(sequence_length)
    if clip and T < 1:
        raise ValueError(
            f"{spec.architecture} is a clip model (forward(clip, ...)) and the checkpoint's recipe names no "
            "sequence_length: pass --sequence-length T"
        )
    if not clip:
        if sequence_length:
            logger.warning("%s takes single images: --sequence-length ignored", spec.architecture)
        T = 0
    from facebehavior.train.data import input_names

    flow = "dis" if "flow" in input_names(model) else None
    with open_split(set_cfg, spec, detect=detect, save_cache=save_cache, workers=workers, device=device,
                    facemesh=facemesh, flow=flow) as split:  # fmt: skip
        raw = predict_rows(model, spec, split, batch_size=batch_size, tta_flip=tta_flip, sequence_length=T,
                           stride=stride)  # fmt: skip
        faces, labels, table, status = dict(split.faces), split.labels, split.table, split.status
        has_face = split.local >= 0
    filled, source = fill_missing(raw, table, no_face)
    if median > 1:
        filled = median_filter_predictions(filled, table, median)
    scored = source >= 0
    pred = {f"pred_{k}": v for k, v in filled.items()}
    for k in LABEL_ARRAYS:
        if getattr(labels, k, None) is not None:
            pred[k] = np.asarray(getattr(labels, k))
    if "compound" in table.extra:
        pred["compound"] = np.asarray(table.extra["compound"], np.int64)
    pred.update(status=status, source=source, scored=scored)
    rows = np.flatnonzero(scored)
    res = compute_metrics({k: v[rows] for k, v in pred.items()}, spec, compound_min_prob=compound_min_prob)
    faces.update(
        rows=int(len(table)),
        with_face=int(has_face.sum()),
        without_face=int((~has_face).sum()),
        filled_from_neighbour=int((scored & ~has_face).sum()),
        excluded=int((~scored).sum()),
        no_face_policy=no_face,
    )
    res["checkpoint"] = str(checkpoint)
    res["dataset"] = {
        "name": table.corpus if getattr(set_cfg, "cache", None) else set_cfg.dataset,
        "split": table.split if getattr(set_cfg, "cache", None) else set_cfg.split,
        "n": int(len(table)),
        "tta_flip": tta_flip,
        "median": int(median or 0),
        "sequence_length": T,
        "stride": (stride or max(1, T // 2)) if T else 0,
    }
    res["faces"] = faces
    if faces["without_face"]:
        f = faces
        logger.warning(
            "%d of %d rows without a face: %d filled from the nearest frame, %d excluded (%s)",
            *(f["without_face"], f["rows"], f["filled_from_neighbour"], f["excluded"], no_face),
        )
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
        lines = ["au,f1,accuracy,auc"] + [
            f"{k},{v:.4f},{a['per_au_accuracy'][k]:.4f},{a['per_au_auc'][k]:.4f}"
            for k, v in a["per_au_f1"].items()
        ]
        (out / "au_per_au.csv").write_text("\n".join(lines) + "\n")
        written.append(out / "au_per_au.csv")
    if "au_intensity" in res:
        a = res["au_intensity"]
        lines = ["au,icc,mae,icc_raw,mae_raw,n"] + [
            f"{k},{v:.4f},{a['per_au_mae'][k]:.4f},{a['per_au_icc_raw'][k]:.4f},{a['per_au_mae_raw'][k]:.4f},"
            f"{a['per_au_support'][k]}"
            for k, v in a["per_au_icc"].items()
        ]
        (out / "au_intensity_per_au.csv").write_text("\n".join(lines) + "\n")
        written.append(out / "au_intensity_per_au.csv")
    return written


def write_json(res: dict[str, Any], path: str | Path) -> Path:
    """The report as JSON (NaN written as ``null``)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(clean(res), indent=1))
    return p


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
