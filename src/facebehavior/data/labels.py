"""The common, columnar label structure every dataset adapter produces.

Columnar (one array per field over N samples) rather than one object per sample, so that
million-frame video corpora stay compact and batching is plain indexing. Partial labels are
masks, never sentinel values inside targets (STYLE rule 7) — except ``expression`` where -1
means "no label" and is mirrored by ``expression_mask``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from facebehavior.schema import EXPRESSIONS_8

__all__ = ["LabelTable", "NUM_EXPRESSIONS", "ROW_ARRAYS", "OPTIONAL_ROW_ARRAYS"]

NUM_EXPRESSIONS = len(EXPRESSIONS_8)
# Per-row array fields of LabelTable: always present / possibly None.
ROW_ARRAYS: tuple[str, ...] = (
    "image", "subject", "video", "frame", "expression", "au_occurrence", "au_mask", "va", "va_mask",
)  # fmt: skip
OPTIONAL_ROW_ARRAYS: tuple[str, ...] = ("au_intensity", "au_intensity_mask", "expression_dist")


@dataclass(frozen=True)
class LabelTable:
    """Labels of one split of one corpus.

    Attributes:
        corpus: registry name of the corpus (e.g. ``"disfa"``).
        split: split name (e.g. ``"train"``, ``"fold1_test"``).
        root: corpus root folder; ``image`` entries are relative to it.
        image: (N,) object str — image path relative to ``root`` (or ``"<array>:<i>"`` for
            corpora stored as arrays).
        subject: (N,) object str subject id ("" when unknown).
        video: (N,) object str video/sequence id ("" for still images).
        frame: (N,) int64 frame index within ``video`` (-1 for still images).
        expression: (N,) int64 index into ``schema.EXPRESSIONS_8``; -1 = not annotated.
        expression_dist: (N, 8) float32 label distribution (rows sum to 1), or None.
        aus: AU numbers, the column order of the AU arrays.
        au_occurrence: (N, A) float32 0/1 occurrence.
        au_mask: (N, A) bool — True where the AU is annotated for that sample.
        au_intensity: (N, A) float32 intensity 0–5, or None.
        au_intensity_mask: (N, A) bool, or None.
        va: (N, 2) float32 valence, arousal in [-1, 1].
        va_mask: (N,) bool — True where valence/arousal are annotated.
        extra: corpus-specific per-row arrays, each with N rows, keyed by name (e.g. RAF-DB's
            ``"compound"`` (N,) int64 index into ``relatedness.RAFDB_COMPOUND_11`` with -1 = none,
            CelebA's ``"attributes"`` (N, 10) float32 0/1). Each adapter documents its keys.
    """

    corpus: str
    split: str
    root: Path
    image: np.ndarray
    subject: np.ndarray
    video: np.ndarray
    frame: np.ndarray
    expression: np.ndarray
    aus: tuple[int, ...] = ()
    au_occurrence: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    au_mask: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    au_intensity: np.ndarray | None = None
    au_intensity_mask: np.ndarray | None = None
    expression_dist: np.ndarray | None = None
    va: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    va_mask: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.image)
        a = len(self.aus)
        # Fill absent label groups with fully-masked arrays so every table has every field.
        if self.au_occurrence.shape != (n, a):
            if self.au_occurrence.size:
                raise ValueError(f"au_occurrence shape {self.au_occurrence.shape} != {(n, a)}")
            object.__setattr__(self, "au_occurrence", np.zeros((n, a), np.float32))
            object.__setattr__(self, "au_mask", np.zeros((n, a), bool))
        if self.va.shape != (n, 2):
            if self.va.size:
                raise ValueError(f"va shape {self.va.shape} != {(n, 2)}")
            object.__setattr__(self, "va", np.zeros((n, 2), np.float32))
            object.__setattr__(self, "va_mask", np.zeros(n, bool))
        for name in ("subject", "video", "frame", "expression", "au_mask", "va_mask"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, expected {n}")
        if self.expression_dist is not None and self.expression_dist.shape != (n, NUM_EXPRESSIONS):
            raise ValueError(f"expression_dist shape {self.expression_dist.shape} != {(n, NUM_EXPRESSIONS)}")
        for key, value in self.extra.items():
            if len(value) != n:
                raise ValueError(f"extra[{key!r}] has {len(value)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.image)

    @property
    def expression_mask(self) -> np.ndarray:
        """(N,) bool — True where an expression label (hard or distribution) exists."""
        m = self.expression >= 0
        if self.expression_dist is not None:
            m = m | (self.expression_dist.sum(1) > 0)
        return m

    def subset(self, index: np.ndarray) -> LabelTable:
        """Rows selected by an integer or boolean index (a new table; arrays are copied)."""
        idx = np.asarray(index)

        def take(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else x[idx]

        return replace(
            self,
            image=self.image[idx],
            subject=self.subject[idx],
            video=self.video[idx],
            frame=self.frame[idx],
            expression=self.expression[idx],
            au_occurrence=self.au_occurrence[idx],
            au_mask=self.au_mask[idx],
            au_intensity=take(self.au_intensity),
            au_intensity_mask=take(self.au_intensity_mask),
            expression_dist=take(self.expression_dist),
            va=self.va[idx],
            va_mask=self.va_mask[idx],
            extra={k: v[idx] for k, v in self.extra.items()},
        )
