"""Zero-shot compound expression recognition (FaceBehaviorNet §4.5; Aff-Wild review §VI-B).

Given any model's AU probabilities, basic-expression probabilities and valence, every candidate class c
gets the score

    C_s(c) = [Σ_k p(AU_k|c)]⁻¹ Σ_k p(AU_k|x) p(AU_k|c)  +  p(emo1|x) + p(emo2|x)  +  b(c) · 0.5 (sign(v) + 1)

where p(AU_k|c) ∈ {0, 1} marks the prototypical and observational AUs of c in Du et al.'s (2014) table
(:data:`facebehavior.relatedness.COMPOUND_TABLE`, restricted to the AUs the model predicts), emo1/emo2
are c's two constituent basic emotions (:data:`facebehavior.relatedness.COMPOUND_CONSTITUENTS`), and
b(c) = 1 only for the positive-valence classes (happily surprised, happily disgusted). The prediction is
the arg-max.

Class sets: ``"rafdb"`` — RAF-DB's 11 compound classes; ``"emotionet"`` — the EmotioNet 2017 challenge's
6 basic + 10 compound classes. The paper leaves two details of the EmotioNet variant open; we define
them as follows (documented choices, not the paper's words):

* a basic class e is scored with emo1 = emo2 = e, i.e. its AU term + 2·p(e|x), so basic and compound
  classes carry expression terms of the same scale;
* the valence bonus, which the paper reserves for the classes "expected to have positive valence", also
  goes to ``happiness`` when it is a candidate (otherwise every positive happy face would be out-scored by
  happily surprised).

Valence exactly 0 gives the bonus 0.5 (sign(0) = 0; the paper's term is undefined there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facebehavior.metrics._common import ArrayLike, to_numpy
from facebehavior.relatedness import (
    BASIC_6,
    COMPOUND_CONSTITUENTS,
    COMPOUND_TABLE,
    EMOTIONET_CLASSES_16,
    RAFDB_COMPOUND_11,
    RelatednessTable,
)
from facebehavior.schema import AUS_17, EXPRESSIONS_7

__all__ = [
    "CompoundPrediction",
    "CLASS_SETS",
    "POSITIVE_VALENCE_CLASSES",
    "compound_scores",
    "compound_columns",
    "compound_output_columns",
    "compound_supported",
    "COMPOUND_LABEL_COLUMN",
]

COMPOUND_LABEL_COLUMN = "compound"

CLASS_SETS: dict[str, tuple[str, ...]] = {"rafdb": RAFDB_COMPOUND_11, "emotionet": EMOTIONET_CLASSES_16}
POSITIVE_VALENCE_CLASSES: tuple[str, ...] = ("happily_surprised", "happily_disgusted", "happiness")


@dataclass(frozen=True)
class CompoundPrediction:
    """Zero-shot compound expression output for N faces.

    Attributes:
        classes: candidate class names, column order of ``scores``.
        scores: ``(N, C)`` candidate scores C_s (in [0, 4]).
        labels: ``(N,)`` int64 arg-max index into ``classes``.
    """

    classes: tuple[str, ...]
    scores: np.ndarray  # (N, C) candidate scores
    labels: np.ndarray  # (N,) arg-max class index

    @property
    def names(self) -> list[str]:
        """Predicted class name per face."""
        return [self.classes[i] for i in self.labels]


def compound_columns(classes: str | Sequence[str] = "rafdb") -> list[str]:
    """Output column names ``compound_<class>`` for a class set (name or explicit list)."""
    names = CLASS_SETS[classes] if isinstance(classes, str) else tuple(classes)
    return [f"compound_{c}" for c in names]


def compound_scores(
    au_probs: ArrayLike,
    expr_probs: ArrayLike,
    valence: ArrayLike,
    *,
    classes: str | Sequence[str] = "rafdb",
    aus: Sequence[int] = AUS_17,
    emotions: Sequence[str] = EXPRESSIONS_7,
    table: RelatednessTable = COMPOUND_TABLE,
    positive_classes: Sequence[str] = POSITIVE_VALENCE_CLASSES,
) -> CompoundPrediction:
    """Candidate scores and arg-max label for every face (see the module docstring for the formula).

    Args:
        au_probs: ``(N, A)`` AU occurrence probabilities in the order ``aus``.
        expr_probs: ``(N, E)`` basic-expression probabilities in the order ``emotions`` (7, or 8 with
            contempt, which no candidate uses).
        valence: ``(N,)`` valence in [−1, 1].
        classes: ``"rafdb"`` (11 compound), ``"emotionet"`` (6 basic + 10 compound) or a list of class
            names from ``table``.
        aus, emotions: column orders of the inputs.
        table: AU table for the candidate classes (Du et al. 2014 by default).
        positive_classes: classes receiving the valence bonus (only those among ``classes`` matter).

    Returns:
        :class:`CompoundPrediction`.

    Raises:
        ValueError: shapes disagree, a class is unknown, or a class's AUs are all outside ``aus``.
    """
    if isinstance(classes, str):
        if classes not in CLASS_SETS:
            raise ValueError(f"unknown compound class set {classes!r}; valid: {sorted(CLASS_SETS)} or a list")
        names = CLASS_SETS[classes]
    else:
        names = tuple(classes)
    au = to_numpy(au_probs, "au_probs")
    ex = to_numpy(expr_probs, "expr_probs")
    v = to_numpy(valence, "valence").reshape(-1)
    if au.ndim != 2 or au.shape[1] != len(aus):
        raise ValueError(f"au_probs must be (N, {len(aus)}) in the order of aus, got {au.shape}")
    if ex.ndim != 2 or ex.shape[1] != len(emotions):
        raise ValueError(f"expr_probs must be (N, {len(emotions)}) in the order of emotions, got {ex.shape}")
    if not (au.shape[0] == ex.shape[0] == v.shape[0]):
        raise ValueError(
            f"au_probs, expr_probs and valence disagree on N: {au.shape[0]}, {ex.shape[0]}, {len(v)}"
        )
    for c in names:
        if c not in table.entries:
            raise ValueError(
                f"compound class {c!r} is not in table {table.name!r}; it lists {list(table.entries)}"
            )
    mat = table.matrix(names, tuple(aus))  # (C, A) ∈ {0, 1}
    n_aus = mat.sum(axis=1)
    if np.any(n_aus == 0):
        raise ValueError(
            f"classes {[c for c, k in zip(names, n_aus, strict=True) if k == 0]} use no AU in {aus}"
        )
    emo_idx = {e: i for i, e in enumerate(emotions)}
    pair = np.zeros((len(names), len(emotions)))
    for ci, c in enumerate(names):
        constituents = (c, c) if c in BASIC_6 else COMPOUND_CONSTITUENTS[c]
        for e in constituents:
            if e not in emo_idx:
                raise ValueError(f"class {c!r} needs p({e}) but emotions {tuple(emotions)} lack it")
            pair[ci, emo_idx[e]] += 1.0
    bonus = np.array([1.0 if c in positive_classes else 0.0 for c in names])
    scores = au @ mat.T / n_aus[None, :] + ex @ pair.T + 0.5 * (np.sign(v)[:, None] + 1) * bonus[None, :]
    return CompoundPrediction(classes=names, scores=scores, labels=scores.argmax(axis=1).astype(np.int64))


def compound_output_columns(
    expr_probs: np.ndarray,
    emotions: Sequence[str],
    au_probs: np.ndarray,
    aus: Sequence[int],
    valence: np.ndarray,
    classes: str | Sequence[str] = "rafdb",
) -> dict[str, np.ndarray]:
    """Per-face output columns of the zero-shot compound scores (what ``facebehavior analyze`` writes).

    Args:
        expr_probs: ``(N, E)`` expression probabilities in the order ``emotions``.
        emotions: expression label order (must contain every constituent emotion of ``classes``).
        au_probs: ``(N, A)`` AU occurrence probabilities in the order ``aus``; AUs outside the
            compound table are ignored.
        aus: AU codes of the columns of ``au_probs``.
        valence: ``(N,)`` valence in [−1, 1].
        classes: candidate class set (see :func:`compound_scores`).

    Returns:
        ``compound_<class>`` → ``(N,)`` float32 score for every candidate class, and
        ``compound`` → ``(N,)`` object array of the arg-max class names.
    """
    used = set().union(*(set(e) for e in COMPOUND_TABLE.entries.values()))
    keep = [k for k, a in enumerate(aus) if a in used]
    if not keep:
        raise ValueError(f"none of the model's AUs {tuple(aus)} occurs in the compound table")
    pred = compound_scores(
        np.asarray(au_probs)[:, keep],
        expr_probs,
        valence,
        classes=classes,
        aus=tuple(aus[k] for k in keep),
        emotions=tuple(emotions),
    )
    cols = {
        name: pred.scores[:, i].astype(np.float32) for i, name in enumerate(compound_columns(pred.classes))
    }
    cols[COMPOUND_LABEL_COLUMN] = np.asarray(pred.names, dtype=object)
    return cols


def compound_supported(
    emotions: Sequence[str], aus: Sequence[int | None], classes: str | Sequence[str] = "rafdb"
) -> bool:
    """Whether a model with these expression labels and AU codes can score ``classes``.

    Every candidate needs its constituent emotions among ``emotions`` and at least one of its AUs
    among ``aus`` (``None`` entries, labels that are not AU codes, are ignored).
    """
    names = CLASS_SETS[classes] if isinstance(classes, str) else tuple(classes)
    have_e, have_a = set(emotions), {a for a in aus if a is not None}
    for c in names:
        constituents = (c,) if c in BASIC_6 else COMPOUND_CONSTITUENTS.get(c, ())
        if c not in COMPOUND_TABLE.entries or not constituents or not set(constituents) <= have_e:
            return False
        if not set(COMPOUND_TABLE.entries[c]) & have_a:
            return False
    return True
