"""Datasets, collation and the Lightning data module of the training stack.

Every sample carries the union of the labels of all tasks, with masks (STYLE rule 7), so batches
drawn from different task sets (FaceBehaviorNet's VA-Set / AU-Set / EXPR-Set) concatenate into one
batch and each loss term sees only its own labelled samples:

========================  ===============  =========================================================
key                       shape            meaning
========================  ===============  =========================================================
``image``                 (B, C, H, W)     uint8 pixels at the model's input size (C: see below)
``expression``            (B,)             int64 index in ``EXPRESSIONS_8`` (0 where unlabelled)
``expression_dist``       (B, 8)           float32 soft label (one-hot for hard labels)
``expression_mask``       (B,)             float32 1 where an expression label exists
``expression_hard``       (B,)             float32 1 where it is a single class (hard / majority label)
``au``                    (B, A)           float32 0/1 occurrence in the model's AU order
``au_mask``               (B, A)           float32 1 where that AU is annotated
``va``                    (B, 2)           float32 valence, arousal in [-1, 1]
``va_mask``               (B,)             float32 1 where VA is annotated
``au_intensity``          (B, A)           float32 AU intensity 0–5 in the model's AU order
``au_intensity_mask``     (B, A)           float32 1 where that intensity is annotated
``attribute``             (B, K)           float32 0/1 facial attributes (``table.extra["attributes"]``)
``attribute_mask``        (B, K)           float32 1 where attributes are annotated
``view``                  (B,)             int64 camera view 0..V-1 (``table.extra["view"]``; 0 where absent)
``view_mask``             (B,)             float32 1 where the view is known
``set_index``             (B,)             int64 position of the sample's task set
========================  ===============  =========================================================

Pixels stay uint8, as the aligner gives them to the Analyzer, until
:func:`facebehavior.models.transforms.preprocess` (validation) or the augmentation and
:func:`~facebehavior.models.transforms.normalise` (training) turn a batch into model input: the
grey of a 1-channel model is computed there, in float, exactly as at inference, never rounded to
uint8 here. ``C`` is 3 for colour corpora and 1 for grey ones (grey is replicated to 3 channels for
RGB models, and in batches that mix grey and colour sets, since both are exact in uint8).

Label tables can be extended before training by *hooks* (``SetConfig.hooks``): callables
``(table, adapter) -> LabelTable`` that add targets (e.g. VA from expression votes, geometric AU
pseudo-labels); whatever they put in the table's ``va``/``au_*`` columns is trained on.

Models with more inputs than the face (``input_names`` on the model, see :func:`input_names`) get
them from a face-crop cache: ``flow`` ``(B, 3, H, W)`` uint8, AUNets' optical-flow image of the face
(``prepare --flow``, ``temporal.flow``), and ``landmarks`` ``(B, 68, 2)`` float32, the iBUG 68 points
from the cached FaceMesh in the crop's coordinates normalised to [-1, 1]
(``models.affwildnet.normalise_landmarks``). :func:`model_inputs` turns a batch into the model's
positional arguments; training augments a flow image with the same geometric draw as its face.

Sequence sets (``sequence_length = T > 0``, AffWildNet): a sample is a clip of ``T`` consecutive
frames of one video (rows ordered by ``video``, ``frame``; non-overlapping windows, a video's
incomplete tail dropped); every entry above gains a ``T`` axis after ``B``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from facebehavior.data.datasets import DatasetAdapter, DatasetNotFoundError, create_dataset
from facebehavior.data.labels import NUM_EXPRESSIONS, LabelTable
from facebehavior.data.sampler import (
    MultiTaskBatchSampler,
    au_sample_weights,
    derive_batch_sizes,
    expression_sample_weights,
    va_sample_weights,
)
from facebehavior.models.transforms import resize

__all__ = [
    "LabelledImages",
    "union",
    "SetData",
    "collate",
    "eval_inputs",
    "eval_loader",
    "input_names",
    "is_clip_model",
    "model_inputs",
    "recipe_input_names",
    "holdout_groups",
    "holdout_split",
    "load_set",
    "resolve",
    "task_set_loader",
]

logger = logging.getLogger(__name__)


def resolve(target: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"``.

    Raises:
        ValueError: malformed or unresolvable reference (the message names it).
    """
    if ":" not in target:
        raise ValueError(f"{target!r} must look like 'package.module:function'")
    mod, attr = target.split(":", 1)
    try:
        obj = getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot resolve {target!r}: {e}") from None
    return obj


@dataclass
class SetData:
    """A loaded split: the adapter (for pixels) and its (hook-extended) labels."""

    adapter: DatasetAdapter
    table: LabelTable


def holdout_groups(table: LabelTable) -> np.ndarray:
    """(N,) str group of each row for subject-exclusive holdouts: subject, else video, else image."""
    subject = table.subject.astype(str)
    video = table.video.astype(str)
    image = table.image.astype(str)
    return np.where(subject != "", subject, np.where(video != "", video, image))


def holdout_split(table: LabelTable, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (rest, held) of ``table`` with no subject in both (``HoldoutConfig``).

    A group (``holdout_groups``) is held out when a hash of ``(seed, group)`` falls below
    ``fraction``, so the choice of a subject does not depend on which other rows the table holds:
    two tables of the same corpus (e.g. AffectNet's 7- and 8-class lists, one used for VA and one
    for expressions) hold out the same people. At least one group is held out and one kept.

    Args:
        table: a split's labels.
        fraction: expected share of the groups held out.
        seed: hashing seed.

    Raises:
        ValueError: the split has fewer than two groups.
    """
    import hashlib

    groups = holdout_groups(table)
    uniq, inverse = np.unique(groups, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError(
            f"{table.corpus}/{table.split}: a subject-exclusive holdout needs at least 2 subjects, "
            f"got {len(uniq)}"
        )
    u = np.array(
        [int.from_bytes(hashlib.sha1(f"{seed}:{g}".encode()).digest()[:8], "big") / 2.0**64 for g in uniq]
    )
    held_group = u < fraction
    if not held_group.any():
        held_group[np.argmin(u)] = True
    if held_group.all():
        held_group[np.argmax(u)] = False
    held = held_group[inverse]
    return np.flatnonzero(~held), np.flatnonzero(held)


class _RowsAdapter:
    """The pixels of some rows of an adapter's table: row ``i`` of the subset is ``rows[i]``."""

    def __init__(self, adapter: Any, table: LabelTable, rows: np.ndarray) -> None:
        self.adapter, self.base, self.rows = adapter, table, rows
        self.name = getattr(adapter, "name", type(adapter).__name__)

    def read_images(self, table: LabelTable, index: Any) -> list[np.ndarray]:
        return self.adapter.read_images(self.base, self.rows[np.asarray(list(index), np.int64)])

    def image_array(self, table: LabelTable) -> np.ndarray | None:
        arr = self.adapter.image_array(self.base)
        return None if arr is None else arr[self.rows]

    def flow_images(self, table: LabelTable, index: Any) -> np.ndarray:
        return self.adapter.flow_images(self.base, self.rows[np.asarray(list(index), np.int64)])

    def landmarks68(self, table: LabelTable, index: Any) -> np.ndarray:
        return self.adapter.landmarks68(self.base, self.rows[np.asarray(list(index), np.int64)])

    def spectrograms(self, table: LabelTable, index: Any) -> np.ndarray:
        return _spectrograms(self.adapter, self.base, self.rows[np.asarray(list(index), np.int64)])

    def __getattr__(self, name: str) -> Any:  # crop size, folder ... of the wrapped cache
        if name == "adapter":
            raise AttributeError(name)
        return getattr(self.adapter, name)


# Extra model inputs and the face-crop cache method serving them (spectrograms: ``io.audio``).
_EXTRA_INPUTS = {"flow": "flow_images", "landmarks": "landmarks68", "spectrogram": "spectrograms"}
# What to add to `facebehavior prepare` for each extra input the cache lacks.
_PREPARE_FLAG = {"flow": "with --flow dis ", "spectrogram": "with --audio FOLDER_OF_THE_VIDEOS "}


def _spectrograms(adapter: Any, table: LabelTable, index: Any) -> np.ndarray:
    """(n, 1, H, W) float32 spectrogram images of rows ``index`` of a face-crop cache
    (``io.audio.build_audio``, ``prepare --audio``)."""
    if isinstance(adapter, _RowsAdapter):
        return adapter.spectrograms(table, index)
    from facebehavior.io.audio import cached_spectrograms

    return cached_spectrograms(adapter, index)


def load_set(cfg: Any) -> SetData:
    """Build the adapter of a ``SetConfig`` (or open its face-crop cache), load its split, apply its
    holdout and hooks."""
    if cfg.cache:
        from facebehavior.data.cache import FaceCache

        cache = FaceCache(cfg.cache)
        adapter, table = cache, cache.table
    else:
        adapter = create_dataset(cfg.dataset, cfg.root, **cfg.options)
        table = adapter.load(cfg.split)
    hold = getattr(cfg, "holdout", None)
    if hold is not None and hold.fraction > 0:
        rest, held = holdout_split(table, hold.fraction, hold.seed)
        rows = held if hold.take == "held" else rest
        logger.info(
            "%s/%s: subject-exclusive holdout %.2f (seed %d): %d rest / %d held rows, using %s",
            cfg.dataset, cfg.split, hold.fraction, hold.seed, len(rest), len(held), hold.take,
        )  # fmt: skip
        adapter, table = _RowsAdapter(adapter, table, rows), table.subset(rows)
    for hook in cfg.hooks:
        table = resolve(hook)(table, adapter)
        if not isinstance(table, LabelTable):
            raise TypeError(f"hook {hook!r} must return a LabelTable, got {type(table).__name__}")
    if len(table) == 0:
        raise ValueError(f"{cfg.dataset}/{cfg.split} under {cfg.cache or cfg.root}: no samples")
    return SetData(adapter, table)


class LabelledImages(Dataset):
    """Samples of one ``LabelTable`` in the batch format above.

    Args:
        data: adapter + table.
        aus: the model's AU numbers (output order); the table's AU columns are mapped onto them,
            AUs the table lacks are masked out.
        channels: the model's input channels. 3: grey corpora are replicated to RGB (exact in
            uint8). 1: pixels are kept as they are (grey or RGB); the luma is computed in float by
            the model-input step, as at inference, not rounded to uint8 here.
        load_size: the model's input size; images of another size are resized to it once, at load,
            and rounded to uint8 (as the aligner delivers crops at the model's size). Corpora of
            fixed-size crops at that size (FER2013's 48×48, a cache built at the model's size) are
            used as they are.
        set_index: position of the task set (carried in the batch for per-set logging).
        attributes: number of attribute outputs of the model (0: none).
        sequence_length: >0 serves clips of that many consecutive frames of one video.
        inputs: extra model inputs to serve besides ``image``: ``"flow"`` and/or ``"landmarks"``
            (the adapter must provide them: a face-crop cache, see the module docstring).
    """

    def __init__(
        self,
        data: SetData,
        aus: Sequence[int],
        channels: int,
        load_size: int,
        set_index: int = 0,
        attributes: int = 0,
        sequence_length: int = 0,
        inputs: Sequence[str] = (),
    ) -> None:
        self.adapter, self.table = data.adapter, data.table
        self.inputs = tuple(i for i in inputs if i != "image")
        for name in self.inputs:
            if name not in _EXTRA_INPUTS:
                raise ValueError(
                    f"unknown model input {name!r}; inputs are image, {', '.join(_EXTRA_INPUTS)}"
                )
            if not hasattr(self.adapter, "found" if name == "spectrogram" else _EXTRA_INPUTS[name]):
                raise DatasetNotFoundError(
                    f"{data.table.corpus}/{data.table.split}: the model needs {name} inputs, which come "
                    "from a face-crop cache: run `facebehavior prepare` "
                    f"{_PREPARE_FLAG.get(name, '')}and set the set's `cache:` in the recipe"
                )
            try:  # a cache built without them fails here, at setup, not in a loader worker
                self._fetch(name, np.zeros(1, np.int64))
            except ValueError as e:
                raise DatasetNotFoundError(str(e)) from None
        t, n = self.table, len(self.table)
        self.channels, self.load_size, self.set_index = channels, load_size, set_index
        self.images = self.adapter.image_array(t)
        if self.images is not None:
            self.images = self._convert(self.images)
        dist = np.zeros((n, NUM_EXPRESSIONS), np.float32)
        if t.expression_dist is not None:
            dist[:] = t.expression_dist
        hard = (t.expression >= 0) & (dist.sum(1) == 0)
        dist[np.flatnonzero(hard), t.expression[hard]] = 1.0
        self.expression = np.where(t.expression >= 0, t.expression, dist.argmax(1)).astype(np.int64)
        self.expression_dist = dist
        self.expression_mask = (dist.sum(1) > 0).astype(np.float32)
        self.expression_hard = (t.expression >= 0).astype(np.float32)
        col = {au: j for j, au in enumerate(t.aus)}
        self.au = np.zeros((n, len(aus)), np.float32)
        self.au_mask = np.zeros((n, len(aus)), np.float32)
        for i, au in enumerate(aus):
            if au in col:
                self.au[:, i] = t.au_occurrence[:, col[au]]
                self.au_mask[:, i] = t.au_mask[:, col[au]]
        self.va = t.va.astype(np.float32)
        self.va_mask = t.va_mask.astype(np.float32)
        self.au_intensity = np.zeros((n, len(aus)), np.float32)
        self.au_intensity_mask = np.zeros((n, len(aus)), np.float32)
        if t.au_intensity is not None:
            imask = (
                t.au_intensity_mask if t.au_intensity_mask is not None else np.ones_like(t.au_intensity, bool)
            )
            for i, au in enumerate(aus):
                if au in col:
                    self.au_intensity[:, i] = t.au_intensity[:, col[au]]
                    self.au_intensity_mask[:, i] = imask[:, col[au]]
        self.attribute = np.zeros((n, attributes), np.float32)
        self.attribute_mask = np.zeros((n, attributes), np.float32)
        attrs = getattr(t, "extra", {}).get("attributes") if attributes else None
        if attrs is not None:
            if attrs.shape[1] != attributes:
                raise ValueError(f"{t.corpus}: {attrs.shape[1]} attributes, the model has {attributes}")
            self.attribute[:] = attrs
            self.attribute_mask[:] = 1.0
        view = getattr(t, "extra", {}).get("view")
        view = np.full(n, -1, np.int64) if view is None else np.asarray(view, np.int64)
        self.view, self.view_mask = np.maximum(view, 0), (view >= 0).astype(np.float32)
        self.clips = self._clips(sequence_length) if sequence_length else None

    def _clips(self, T: int) -> np.ndarray:
        """(M, T) row indices of non-overlapping windows of consecutive frames within each video."""
        t = self.table
        order = np.lexsort((t.frame, t.video.astype(str)))
        videos = t.video[order].astype(str)
        clips = []
        start = 0
        for end in list(np.flatnonzero(videos[1:] != videos[:-1]) + 1) + [len(order)]:
            rows = order[start:end]
            clips += [rows[i : i + T] for i in range(0, len(rows) - T + 1, T)]
            start = end
        if not clips:
            raise ValueError(f"{t.corpus}/{t.split}: no video has {T} frames for sequence_length={T}")
        return np.stack(clips)

    def _convert(self, imgs: np.ndarray) -> np.ndarray:
        """(N, H, W[, C]) uint8 → (N, C', load_size, load_size) uint8, C' = 3 for RGB models, else C.

        No colour conversion here (see ``channels``): the only change besides the layout is grey
        replicated for RGB models and a resize when the crops have another size.
        """
        if imgs.ndim == 3:
            imgs = imgs[..., None]
        if imgs.shape[-1] not in (1, 3):
            raise ValueError(f"images must have 1 or 3 channels, got shape {imgs.shape[1:]}")
        if imgs.shape[-1] == 1 and self.channels == 3:
            imgs = np.repeat(imgs, 3, axis=-1)
        x = np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))
        if x.shape[-1] != self.load_size or x.shape[-2] != self.load_size:
            return self._resize(torch.from_numpy(x)).numpy()
        return x

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) → uint8 (N, C, load_size, load_size): the model-input resampling
        (``models.transforms.resize``) on [0, 255] values, rounded back to pixels."""
        return resize(x.float(), self.load_size).round().clamp(0, 255).to(torch.uint8)

    def __len__(self) -> int:
        return len(self.table) if self.clips is None else len(self.clips)

    def _pixels(self, idx: np.ndarray) -> np.ndarray:
        if self.images is not None:
            return self.images[idx]
        return self._convert(
            np.stack([self._resize_one(im) for im in self.adapter.read_images(self.table, idx)])
        )

    def _resize_one(self, im: np.ndarray) -> np.ndarray:
        """One (H, W[, C]) uint8 image of any size → (load_size, load_size, C) uint8."""
        im = im if im.ndim == 3 else im[..., None]
        if im.shape[0] == self.load_size and im.shape[1] == self.load_size:
            return im
        x = torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None]
        return self._resize(x)[0].permute(1, 2, 0).numpy()

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Batched fetch (PyTorch calls this with a whole batch of indices)."""
        idx = np.asarray(indices, np.int64)
        if self.clips is not None:
            rows = self.clips[idx]  # (B, T)
            flat = self._rows(rows.ravel())
            return {k: v.reshape(*rows.shape, *v.shape[1:]) for k, v in flat.items()}
        return self._rows(idx)

    def _fetch(self, name: str, idx: np.ndarray) -> np.ndarray:
        """Raw extra input ``name`` of rows ``idx`` from the adapter (a face-crop cache)."""
        if name == "spectrogram":
            return _spectrograms(self.adapter, self.table, idx)
        return getattr(self.adapter, _EXTRA_INPUTS[name])(self.table, idx)

    def _extra(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """The ``inputs`` of rows ``idx``: flow images at ``load_size``, normalised landmarks."""
        out: dict[str, torch.Tensor] = {}
        if "flow" in self.inputs:
            flow = self.adapter.flow_images(self.table, idx)  # (n, S, S, 3) uint8
            out["flow"] = torch.from_numpy(np.ascontiguousarray(self._convert(flow)))
        if "spectrogram" in self.inputs:
            out["spectrogram"] = torch.from_numpy(self._fetch("spectrogram", idx))  # (n, 1, H, W) in [-1, 1]
        if "landmarks" in self.inputs:
            from facebehavior.models.affwildnet import normalise_landmarks

            pts = self.adapter.landmarks68(self.table, idx)  # (n, 68, 2) crop pixels
            out["landmarks"] = torch.from_numpy(normalise_landmarks(pts, int(self.adapter.crop_size)))
        return out

    def _rows(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        return {
            **self._extra(idx),
            "image": torch.from_numpy(np.ascontiguousarray(self._pixels(idx))),
            "expression": torch.from_numpy(self.expression[idx]),
            "expression_dist": torch.from_numpy(self.expression_dist[idx]),
            "expression_mask": torch.from_numpy(self.expression_mask[idx]),
            "expression_hard": torch.from_numpy(self.expression_hard[idx]),
            "au": torch.from_numpy(self.au[idx]),
            "au_mask": torch.from_numpy(self.au_mask[idx]),
            "va": torch.from_numpy(self.va[idx]),
            "va_mask": torch.from_numpy(self.va_mask[idx]),
            "au_intensity": torch.from_numpy(self.au_intensity[idx]),
            "au_intensity_mask": torch.from_numpy(self.au_intensity_mask[idx]),
            "attribute": torch.from_numpy(self.attribute[idx]),
            "attribute_mask": torch.from_numpy(self.attribute_mask[idx]),
            "view": torch.from_numpy(self.view[idx]),
            "view_mask": torch.from_numpy(self.view_mask[idx]),
            "set_index": torch.full((len(idx),), self.set_index, dtype=torch.int64),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class _MultiSet(ConcatDataset):
    """Concatenated datasets with a batched fetch grouped by dataset.

    Used for the task sets of a step (indices come grouped by set) and for a task set made of
    several splits (``SetConfig.parts``); label arrays of the parts are exposed concatenated.
    """

    def __getattr__(self, name: str) -> Any:
        if name in ("au", "au_mask", "au_intensity", "au_intensity_mask", "expression_dist"):
            return np.concatenate([getattr(d, name) for d in self.datasets])
        raise AttributeError(name)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, np.int64)
        which = np.searchsorted(np.asarray(self.cumulative_sizes), idx, side="right")
        parts = []
        for d in np.unique(which):
            sel = idx[which == d]
            local = sel - (self.cumulative_sizes[d - 1] if d > 0 else 0)
            parts.append(self.datasets[d].__getitems__(local))
        return parts[0] if len(parts) == 1 else collate(parts)


def union(datasets: Sequence[LabelledImages]) -> Dataset:
    """One task set made of several datasets (their samples concatenated, batched fetch kept)."""
    return datasets[0] if len(datasets) == 1 else _MultiSet(list(datasets))


def _same_channels(images: list[torch.Tensor]) -> list[torch.Tensor]:
    """Grey and colour image tensors of one batch → all with 3 channels (axis -3), replicating the
    grey ones: exact in uint8, and the model-input step takes the luma of either."""
    if len({im.shape[-3] for im in images}) <= 1:
        return images
    return [im.expand(*im.shape[:-3], 3, *im.shape[-2:]) if im.shape[-3] == 1 else im for im in images]


def collate(batch: Any) -> dict[str, torch.Tensor]:
    """Collate either pre-batched dicts (from ``__getitems__``) or a list of per-sample dicts.

    Parts whose images have different channel counts (a grey and a colour corpus) are joined with
    the grey ones replicated to 3 channels.
    """
    if isinstance(batch, dict):
        return batch
    join = (
        torch.cat if batch and isinstance(batch[0], dict) and batch[0]["set_index"].ndim >= 1 else torch.stack
    )
    return {
        k: join(_same_channels([b[k] for b in batch]) if k == "image" else [b[k] for b in batch])
        for k in batch[0]
    }


def _sampling_weights(ds: LabelledImages, kind: str, power: float) -> np.ndarray | None:
    if kind == "none":
        return None
    if isinstance(ds, _MultiSet):
        return np.concatenate([_sampling_weights(d, kind, power) for d in ds.datasets])
    if kind == "expression":
        return expression_sample_weights(ds.table, power)
    if kind == "va":
        return va_sample_weights(ds.table, power)
    return au_sample_weights(ds.table, power)


def task_set_loader(
    sets: dict[str, tuple[LabelledImages, Any]],
    *,
    total_batch_size: int,
    num_workers: int = 0,
    seed: int = 0,
    num_replicas: int = 1,
    rank: int = 0,
) -> DataLoader:
    """DataLoader drawing one batch per task set per step (FaceBehaviorNet's batching).

    Args:
        sets: set name → (dataset, its ``SetConfig``).
        total_batch_size: samples per step over all sets, per process; split by
            ``derive_batch_sizes`` unless a set gives its own ``batch_size``.
    """
    sizes = {k: len(ds) for k, (ds, _) in sets.items()}
    derived = derive_batch_sizes(sizes, total_batch_size)
    batch_sizes = {k: (cfg.batch_size or derived[k]) for k, (_, cfg) in sets.items()}
    weights = {
        k: _sampling_weights(ds, cfg.sampling.kind, cfg.sampling.power) for k, (ds, cfg) in sets.items()
    }
    sampler = MultiTaskBatchSampler(
        sizes, batch_sizes, weights=weights, seed=seed, num_replicas=num_replicas, rank=rank
    )
    logger.info("task sets %s, batch sizes %s, %d steps per epoch", sizes, batch_sizes, len(sampler))
    return DataLoader(
        _MultiSet([ds for ds, _ in sets.values()]),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )


def eval_loader(ds: LabelledImages, batch_size: int, num_workers: int = 0) -> DataLoader:
    """Sequential DataLoader over one evaluation set."""
    from torch.utils.data import BatchSampler, SequentialSampler

    return DataLoader(
        ds,
        batch_sampler=BatchSampler(SequentialSampler(range(len(ds))), batch_size, drop_last=False),
        collate_fn=collate,
        num_workers=num_workers,
    )


def input_names(model: torch.nn.Module) -> tuple[str, ...]:
    """The batch keys a model takes, in the order of its positional arguments.

    Models declare them as ``input_names`` (AUNets' flow variants: ``("image", "flow")`` or
    ``("flow",)``; AffWildNet and its family: ``("image", "landmarks")``); ``("image",)`` otherwise.
    """
    return tuple(getattr(model, "input_names", ("image",)))


def is_clip_model(model: torch.nn.Module) -> bool:
    """True for models over clips, ``forward(clip, ...)`` on ``(B, T, C, H, W)`` (AffWildNet, the
    CNN-RNNs, MT-VGG-GRU, A/V-MT-VGG-GRU): their first argument is named ``clip``."""
    import inspect

    # Any callable model works (an nn.Module's forward, or a plain callable standing in for one).
    params = list(inspect.signature(getattr(model, "forward", model)).parameters)
    return bool(params) and params[0] == "clip"


def recipe_input_names(recipe: Any) -> tuple[str, ...]:
    """``input_names`` of a recipe's model, built without allocating its weights (meta device)."""
    from facebehavior.models import create_model

    with torch.device("meta"):
        model = create_model(recipe.model.name, **recipe.model.kwargs)
    return input_names(model)


def model_inputs(module: Any, batch: dict[str, torch.Tensor], train: bool) -> tuple[torch.Tensor, ...]:
    """A batch as the positional arguments of ``module.model`` (``input_names``).

    ``image`` goes through ``module.preprocess``. A flow image is preprocessed like a face; in
    training it gets the same geometric draw as its face (the augmentation's generator is re-seeded
    to the value ``module.preprocess`` used), mirrored samples get their x motion negated, and no
    photometric change is applied (it is motion, not light). The flow vectors are not rotated with
    the image, so flow recipes keep ``rotate_deg: 0``. Landmarks are passed as they are; geometric
    augmentation would move the face away from them, so it is refused with landmark inputs.

    Args:
        module: the ``FaceBehaviorModule`` (``model``, ``preprocess``, ``augment``, ``recipe``).
        batch: a batch of ``LabelledImages``.
        train: training step (augmentation) or evaluation.
    """
    from facebehavior.data.augment import to_float
    from facebehavior.models.transforms import normalise, preprocess

    args: list[torch.Tensor] = []
    augment = getattr(module, "augment", None) if train else None
    for name in input_names(module.model):
        if name == "image":
            args.append(module.preprocess(batch["image"], train))
            continue
        if name not in batch:
            raise ValueError(
                f"{type(module.model).__name__} needs {name} inputs but the batch has none "
                "(train from a face-crop cache; see facebehavior.train.data)"
            )
        x = batch[name]
        if name == "landmarks":
            if augment is not None:
                raise ValueError(
                    "landmark inputs are not augmented with the face: set `augment: {target: null}`"
                )
            args.append(x.float())
            continue
        if name == "spectrogram":  # sound: the face's geometric augmentation does not apply
            args.append(x.float())
            continue
        lead = x.shape[:-3]
        x = x.flatten(0, x.ndim - 4) if x.ndim > 4 else x
        if augment is not None:
            if getattr(augment, "gen", None) is not None:
                augment.gen.manual_seed(module.recipe.seed * 1_000_003 + module.global_step)
            y, flipped = augment.geometry(to_float(x))
            mirrored_x = (256.0 / 255.0 - y[:, 0]).clamp(0, 1)  # code 128 (no motion) stays 128
            y = torch.cat([torch.where(flipped.view(-1, 1, 1), mirrored_x, y[:, 0])[:, None], y[:, 1:]], 1)
            y = normalise(y, module.recipe.input)
        else:
            y = preprocess(x, module.recipe.input)
        args.append(y.reshape(*lead, *y.shape[1:]))
    return tuple(args)


def eval_inputs(model: torch.nn.Module, batch: dict[str, torch.Tensor], inp: Any) -> tuple[torch.Tensor, ...]:
    """Lightning-free :func:`model_inputs` for evaluation and inference: every image input (face,
    flow) through ``models.transforms.preprocess`` with the model's input rule ``inp`` (a
    ``WeightSpec`` or its ``InputSpec``), landmarks as they are.

    Args:
        model: a zoo model (``input_names``).
        batch: a batch of ``LabelledImages`` built with ``inputs=input_names(model)``.
        inp: anything ``models.transforms.resolve_input`` takes.
    """
    from facebehavior.models.transforms import preprocess

    args = []
    for name in input_names(model):
        if name not in batch:
            raise ValueError(f"{type(model).__name__} needs {name} inputs but the batch has none")
        x = batch[name]
        if name in ("landmarks", "spectrogram"):
            args.append(x.float())
        else:
            y = preprocess(x.flatten(0, x.ndim - 4) if x.ndim > 4 else x, inp)
            args.append(y.reshape(*x.shape[:-3], *y.shape[1:]))
    return tuple(args)
