"""FaceBehaviorNet's multi-task batching: one batch per task set, concatenated every step.

The training data are split into task sets (e.g. VA-Set, AU-Set, EXPR-Set). Every step draws one
batch from each set and concatenates them, so every loss term contributes to every update and the
CCC loss sees enough VA predictions. Batch sizes are chosen so that one epoch covers every set:
with ``S = ceil(N / B)`` steps per epoch (``N`` samples in all, ``B`` the total batch size),
set ``k`` gets ``b_k = ceil(n_k / S)`` samples per step. Sets of 401 000 / 247 000 / 103 000
images and ``B = 751`` give the paper's 401 / 247 / 103.

Imbalance (FATAUVA-Net's over/under-sampling): a set may carry per-sample weights; it is then
drawn with replacement in proportion to them (``n_k`` draws per epoch), so rare classes / AUs
are over-sampled and frequent ones under-sampled. ``expression_sample_weights`` and
``au_sample_weights`` compute such weights from a ``LabelTable``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Sampler

from facebehavior.data.labels import LabelTable

__all__ = [
    "MultiTaskBatchSampler",
    "au_sample_weights",
    "derive_batch_sizes",
    "expression_sample_weights",
    "steps_per_epoch",
    "va_sample_weights",
]


def derive_batch_sizes(set_sizes: Mapping[str, int], total_batch_size: int) -> dict[str, int]:
    """Per-set batch sizes such that one epoch of ``ceil(N / B)`` steps covers every set.

    Args:
        set_sizes: task-set name → number of samples ``n_k`` (all > 0).
        total_batch_size: desired samples per step ``B`` over all sets.

    Returns:
        Set name → ``b_k = ceil(n_k / ceil(N / B))`` (at least 1). ``Σ b_k`` equals ``B`` when the
        set sizes are multiples of the step count and never exceeds ``B + K - 1`` (``K`` sets).

    Raises:
        ValueError: an empty set, no sets, or a non-positive batch size.
    """
    if not set_sizes:
        raise ValueError("derive_batch_sizes needs at least one task set")
    if total_batch_size <= 0:
        raise ValueError(f"total batch size must be positive, got {total_batch_size}")
    empty = [k for k, n in set_sizes.items() if n <= 0]
    if empty:
        raise ValueError(f"task set(s) {empty} are empty; remove them from the recipe or fix their data")
    steps = math.ceil(sum(set_sizes.values()) / total_batch_size)
    return {k: max(1, math.ceil(n / steps)) for k, n in set_sizes.items()}


def steps_per_epoch(set_sizes: Mapping[str, int], batch_sizes: Mapping[str, int]) -> int:
    """Steps needed for every set to be fully drawn once: ``max_k ceil(n_k / b_k)``."""
    return max(math.ceil(set_sizes[k] / batch_sizes[k]) for k in set_sizes)


class MultiTaskBatchSampler(Sampler[list[int]]):
    """Yields, per step, the concatenated indices of one batch from every task set.

    The datasets of the sets are meant to be concatenated (``torch.utils.data.ConcatDataset``) in
    the order of ``set_sizes``; the indices yielded are global (offset by the sizes of the sets
    before). Within a step the indices are grouped by set, in that order.

    A set shorter than the epoch (in steps) is cycled with a fresh permutation; the epoch length is
    ``steps_per_epoch``. With several processes (DDP), each rank draws the same permutations and
    keeps every ``num_replicas``-th sample, so the ranks see disjoint data.

    Args:
        set_sizes: set name → number of samples.
        batch_sizes: set name → samples per step (per rank), e.g. from ``derive_batch_sizes``.
        weights: optional set name → ``(n_k,)`` non-negative sampling weights (drawn with replacement).
        shuffle: shuffle within each set (False: sequential order, for evaluation/debugging).
        drop_last: ignored for cycling sets; kept for DataLoader compatibility.
        seed: base seed; epoch ``e`` uses ``seed + e`` (call ``set_epoch``), so runs are reproducible
            and resuming at an epoch boundary redraws the same batches.
        num_replicas: number of data-parallel processes.
        rank: this process' rank.
    """

    def __init__(
        self,
        set_sizes: Mapping[str, int],
        batch_sizes: Mapping[str, int],
        *,
        weights: Mapping[str, np.ndarray | None] | None = None,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if set(set_sizes) != set(batch_sizes):
            raise ValueError(f"batch sizes {sorted(batch_sizes)} do not match task sets {sorted(set_sizes)}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")
        self.names = list(set_sizes)
        self.set_sizes = {k: int(set_sizes[k]) for k in self.names}
        self.batch_sizes = {k: int(batch_sizes[k]) for k in self.names}
        for k in self.names:
            if self.set_sizes[k] <= 0 or self.batch_sizes[k] <= 0:
                raise ValueError(
                    f"task set {k!r}: size {self.set_sizes[k]} and batch {self.batch_sizes[k]} must be > 0"
                )
        self.weights: dict[str, np.ndarray | None] = {}
        for k in self.names:
            w = None if weights is None else weights.get(k)
            if w is not None:
                w = np.asarray(w, np.float64)
                if w.shape != (self.set_sizes[k],) or (w < 0).any() or w.sum() <= 0:
                    raise ValueError(
                        f"task set {k!r}: weights must be ({self.set_sizes[k]},) non-negative, not all 0"
                    )
            self.weights[k] = w
        self.offsets = dict(
            zip(
                self.names,
                np.cumsum([0] + [self.set_sizes[k] for k in self.names])[:-1].tolist(),
                strict=True,
            )
        )
        self.shuffle = shuffle
        self.seed = int(seed)
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutations of ``epoch`` (Lightning calls this before every epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = {k: math.ceil(n / self.num_replicas) for k, n in self.set_sizes.items()}
        return steps_per_epoch(per_rank, self.batch_sizes)

    def _stream(self, name: str, gen: torch.Generator, count: int) -> np.ndarray:
        """``count`` local indices of set ``name`` for the whole world (all ranks)."""
        n = self.set_sizes[name]
        w = self.weights[name]
        if w is not None:
            draws = torch.multinomial(torch.as_tensor(w), count, replacement=True, generator=gen)
            return draws.numpy()
        parts, have = [], 0
        while have < count:
            p = torch.randperm(n, generator=gen).numpy() if self.shuffle else np.arange(n)
            parts.append(p)
            have += n
        return np.concatenate(parts)[:count]

    def __iter__(self) -> Iterator[list[int]]:
        steps = len(self)
        gen = torch.Generator()
        gen.manual_seed(self.seed + self.epoch)
        streams = {}
        for k in self.names:
            world = self._stream(k, gen, steps * self.batch_sizes[k] * self.num_replicas)
            streams[k] = world[self.rank :: self.num_replicas] + self.offsets[k]
        for s in range(steps):
            batch: list[int] = []
            for k in self.names:
                b = self.batch_sizes[k]
                batch.extend(streams[k][s * b : (s + 1) * b].tolist())
            yield batch


def expression_sample_weights(table: LabelTable, power: float = 1.0) -> np.ndarray:
    """Per-sample weights ``∝ freq(class)^-power`` for class-balanced expression sampling.

    Soft labels count fractionally (a sample's weight is the expectation over its distribution);
    unlabelled samples get weight 0.

    Returns:
        ``(N,)`` float64 weights with mean 1 over labelled samples.
    """
    n = len(table)
    if table.expression_dist is not None:
        dist = table.expression_dist.astype(np.float64)
        hard = table.expression >= 0
        dist = dist.copy()
        rows = np.flatnonzero(hard & (dist.sum(1) == 0))
        dist[rows, table.expression[rows]] = 1.0
    else:
        dist = np.zeros((n, 8), np.float64)
        lab = table.expression >= 0
        dist[np.flatnonzero(lab), table.expression[lab]] = 1.0
    freq = dist.sum(0)
    inv = np.where(freq > 0, np.maximum(freq, 1e-12) ** -power, 0.0)
    w = dist @ inv
    lab = w > 0
    if lab.any():
        w[lab] /= w[lab].mean()
    return w


def au_sample_weights(table: LabelTable, power: float = 1.0) -> np.ndarray:
    """Per-sample weights favouring samples with rare active AUs (FATAUVA-Net's over-sampling).

    A sample's weight is the largest ``rate_i^-power`` over the AUs active in it (``rate_i`` the
    occurrence rate of AU ``i`` among annotated samples), or ``max(1 - rate)^-power`` over its
    annotated AUs when none is active; samples with no annotated AU get 0.

    Returns:
        ``(N,)`` float64 weights with mean 1 over annotated samples.
    """
    occ, mask = table.au_occurrence.astype(np.float64), table.au_mask
    if occ.shape[1] == 0:
        raise ValueError(f"{table.corpus}/{table.split}: no AU labels to balance")
    ann = mask.sum(0)
    rate = np.where(ann > 0, (occ * mask).sum(0) / np.maximum(ann, 1), 0.5).clip(1e-4, 1 - 1e-4)
    pos = np.where((occ > 0.5) & mask, rate[None, :] ** -power, 0.0).max(1)
    neg = np.where(mask, (1 - rate[None, :]) ** -power, 0.0).max(1)
    w = np.where(pos > 0, pos, neg)
    lab = mask.any(1)
    w = np.where(lab, w, 0.0)
    if lab.any():
        w[lab] /= w[lab].mean()
    return w


def va_sample_weights(table: LabelTable, power: float = 1.0, bins: int = 11) -> np.ndarray:
    """Per-sample weights favouring rare valence/arousal values (FATAUVA-Net's VA-bin sampling).

    Valence and arousal are each cut into ``bins`` equal bins over [-1, 1] (FATAUVA-Net's 11
    classes −5 … 5); a sample's weight is the geometric mean of ``freq(bin)^-power`` over the two
    dimensions; samples without VA get 0.

    Returns:
        ``(N,)`` float64 weights with mean 1 over VA-labelled samples.
    """
    lab = np.asarray(table.va_mask, bool)
    if not lab.any():
        raise ValueError(f"{table.corpus}/{table.split}: no valence/arousal labels to balance")
    va = np.clip(np.asarray(table.va, np.float64), -1.0, 1.0)
    idx = np.clip(np.rint((va + 1.0) / 2.0 * (bins - 1)).astype(np.int64), 0, bins - 1)
    w = np.ones(len(table), np.float64)
    for d in range(2):
        freq = np.bincount(idx[lab, d], minlength=bins).astype(np.float64) / lab.sum()
        w *= np.maximum(freq[idx[:, d]], 1e-12) ** (-power / 2)
    w = np.where(lab, w, 0.0)
    w[lab] /= w[lab].mean()
    return w
