"""FaceBehaviorNet's task-coupling losses between expressions and AUs (Kollias et al., §3).

All functions take a relatedness ``table`` (``"A"`` = Du et al. 2014, ``"B"`` = Aff-Wild2 empirical, a
:class:`~facebehavior.relatedness.RelatednessTable`, a dict or a JSON path — see
:func:`facebehavior.relatedness.get_table`), the expression order ``emotions`` of the logits' columns
(``schema.EXPRESSIONS_7`` by default; ``EXPRESSIONS_8`` works too) and the AU order ``aus`` of the AU
columns (``schema.AUS_17`` by default; any subset works).

Emotions without a table entry — ``neutral`` and ``contempt`` in the shipped tables — imply no AU:

* co-annotation: an image labelled neutral/contempt gets no AU co-annotation, and AU labels never
  co-annotate an image as neutral/contempt;
* soft co-annotation: they receive target probability 0 (excluded from the softmax), unless
  ``unlisted_score`` is given, in which case they enter the softmax with that score;
* distribution matching: their rows of p(AU|e) are zero, so the probability mass the network puts on them
  contributes to no AU in q.

AUs of the table outside ``aus`` are dropped (an emotion needing such an AU cannot be verified from AU
labels and is therefore never co-annotated from them); AUs in ``aus`` that no listed emotion uses
(e.g. AU14) take no part in distribution matching (q would be 0 and −p·log q unbounded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from facebehavior.losses._utils import as_mask, check_2d, upcast, zero_like_graph
from facebehavior.losses.classification import masked_bce
from facebehavior.relatedness import RelatednessTable, get_table
from facebehavior.schema import AUS_17, EXPRESSIONS_7

__all__ = [
    "coannotate_aus",
    "coannotate_expressions",
    "coannotation_loss",
    "soft_coannotation_targets",
    "soft_coannotation_loss",
    "au_mixture",
    "distribution_matching_loss",
]

TableLike = str | Path | Mapping[str, Any] | RelatednessTable


def _matrix(table: TableLike, emotions: Sequence[str], aus: Sequence[int], weighted: bool) -> np.ndarray:
    return get_table(table).matrix(tuple(emotions), tuple(int(a) for a in aus), weighted=weighted)


def _check_width(x: torch.Tensor, n: int, name: str, what: str) -> None:
    if x.shape[1] != n:
        raise ValueError(f"{name} has {x.shape[1]} columns but {n} {what} were given")


# ---- co-annotation --------------------------------------------------------------------------------
def coannotate_aus(
    expr_labels: torch.Tensor,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """AU labels implied by expression labels (co-annotation, emotion → AUs).

    An image labelled with emotion e gets every prototypical and observational AU of e as *present*; the
    other AUs stay unannotated (FaceBehaviorNet footnote 2: the co-annotated y_au only contains those AUs).

    Args:
        expr_labels: ``(B,)`` integer indices into ``emotions``.
        table, emotions, aus: see module docstring.
        weighted: weight observational AUs by w (the paper's choice); ``False`` weighs all 1.

    Returns:
        ``(target, weight)``, both ``(B, A)`` float32: ``target`` is 1 on the co-annotated AUs, ``weight`` is
        their weight (1 prototypical, w observational) and 0 elsewhere; use ``weight > 0`` as the mask.
    """
    m = torch.as_tensor(
        _matrix(table, emotions, aus, weighted), dtype=torch.float32, device=expr_labels.device
    )
    idx = expr_labels.long()
    if idx.ndim != 1 or bool(((idx < 0) | (idx >= len(emotions))).any()):
        raise ValueError(f"expr_labels must be (B,) indices in [0, {len(emotions)})")
    weight = m[idx]
    return (weight > 0).to(torch.float32), weight


def coannotate_expressions(
    au_labels: torch.Tensor,
    au_mask: torch.Tensor | None = None,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Expression labels implied by AU labels (co-annotation, AUs → emotion).

    An emotion is present when *all* its prototypical and observational AUs are annotated and present.
    When several are, the one requiring the most AUs wins; remaining ties go to the emotion earlier in
    ``emotions``. Emotions needing an AU outside ``aus`` are never assigned.

    Args:
        au_labels: ``(B, A)`` AU labels (present = value ≥ 0.5).
        au_mask: optional ``(B, A)`` annotation mask (unannotated AUs count as not present).

    Returns:
        ``(labels, valid)``: ``(B,)`` int64 indices into ``emotions`` (0 where invalid) and ``(B,)`` bool.
    """
    check_2d(au_labels, "au_labels")
    _check_width(au_labels, len(aus), "au_labels", "AUs")
    tab = get_table(table)
    present = (au_labels >= 0.5) & (as_mask(au_mask, au_labels.float()) > 0)
    col = {int(a): j for j, a in enumerate(aus)}
    B = au_labels.shape[0]
    best_n = torch.full((B,), -1, dtype=torch.long, device=au_labels.device)
    labels = torch.zeros(B, dtype=torch.long, device=au_labels.device)
    for e_idx, emo in enumerate(emotions):
        if emo not in tab.entries:
            continue
        needed = list(tab.entries[emo])
        if any(a not in col for a in needed):
            continue
        ok = present[:, [col[a] for a in needed]].all(dim=1)
        better = ok & (len(needed) > best_n)
        labels = torch.where(better, torch.full_like(labels, e_idx), labels)
        best_n = torch.where(better, torch.full_like(best_n, len(needed)), best_n)
    return labels, best_n >= 0


def coannotation_loss(
    expr_logits: torch.Tensor,
    au_logits: torch.Tensor,
    *,
    expr_labels: torch.Tensor | None = None,
    expr_mask: torch.Tensor | None = None,
    au_labels: torch.Tensor | None = None,
    au_mask: torch.Tensor | None = None,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = True,
) -> torch.Tensor:
    """Co-annotation coupling in both directions (FaceBehaviorNet §3).

    * Expression-labelled images (``expr_labels``, ``expr_mask``): AU BCE on the co-annotated AUs
      (:func:`coannotate_aus`), each term weighted by w, averaged per image over the co-annotated AUs.
    * AU-labelled images (``au_labels``, ``au_mask``): expression cross-entropy towards the co-annotated
      emotion (:func:`coannotate_expressions`) for images where one exists.

    Args:
        expr_logits: ``(B, E)``; au_logits: ``(B, A)``.
        expr_labels: optional ``(B,)`` indices; expr_mask: optional ``(B,)`` (1 = has an expression label).
        au_labels: optional ``(B, A)``; au_mask: optional ``(B, A)`` or ``(B,)``.

    Returns:
        Scalar: the sum of both terms (a term with no eligible image is 0).
    """
    check_2d(expr_logits, "expr_logits")
    check_2d(au_logits, "au_logits")
    _check_width(expr_logits, len(emotions), "expr_logits", "emotions")
    _check_width(au_logits, len(aus), "au_logits", "AUs")
    total = zero_like_graph(expr_logits, au_logits)
    if expr_labels is not None:
        em = (
            as_mask(expr_mask, au_logits[:, 0])
            if expr_mask is not None
            else au_logits.new_ones(len(au_logits))
        )
        labels = torch.where(em > 0, expr_labels.long(), torch.zeros_like(expr_labels.long()))
        target, weight = coannotate_aus(labels, table=table, emotions=emotions, aus=aus, weighted=weighted)
        target, weight = target.to(au_logits), weight.to(au_logits)
        delta = (weight > 0).to(au_logits.dtype) * em[:, None]
        total = total + masked_bce(au_logits, target, delta, weight=weight)
    if au_labels is not None:
        labels, valid = coannotate_expressions(au_labels, au_mask, table=table, emotions=emotions, aus=aus)
        if bool(valid.any()):
            total = total + F.cross_entropy(expr_logits[valid], labels[valid])
    return total


# ---- soft co-annotation -------------------------------------------------------------------------
def soft_coannotation_targets(
    au_labels: torch.Tensor,
    au_mask: torch.Tensor | None = None,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = True,
    temperature: float = 1.0,
    unlisted_score: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft emotion labels from AU labels (FaceBehaviorNet's soft co-annotation).

    Score of emotion e = Σ_{i∈AUs(e)} w_i y_i / Σ_{i∈AUs(e)} w_i over its AUs that are in ``aus`` and
    annotated (e.g. happiness with table A: (y12 + y25 + 0.51·y6) / 2.51); ``weighted=False`` sets every
    w_i = 1. The soft label is ``softmax(scores / temperature)`` over the listed emotions.

    Args:
        au_labels: ``(B, A)`` AU labels in [0, 1].
        au_mask: optional ``(B, A)`` or ``(B,)`` annotation mask.
        temperature: softmax temperature (the paper uses a plain softmax: 1).
        unlisted_score: score given to emotions the table does not list (neutral, contempt); ``None``
            excludes them (target 0).

    Returns:
        ``(targets, valid)``: ``(B, E)`` rows summing to 1 (zeros where invalid) and ``(B,)`` bool — images
        with at least one annotated AU belonging to a listed emotion.
    """
    check_2d(au_labels, "au_labels")
    _check_width(au_labels, len(aus), "au_labels", "AUs")
    y = au_labels.to(torch.float32 if not au_labels.dtype.is_floating_point else au_labels.dtype)
    m = as_mask(au_mask, y)
    W = torch.as_tensor(_matrix(table, emotions, aus, weighted), dtype=y.dtype, device=y.device)  # (E, A)
    num = (y * m) @ W.T
    den = m @ W.T
    scores = num / den.clamp_min(torch.finfo(y.dtype).tiny)
    listed = W.sum(dim=1) > 0
    use = listed[None, :] & (den > 0)
    if unlisted_score is not None:
        use = use | ~listed[None, :]
        scores = torch.where(listed[None, :], scores, torch.full_like(scores, float(unlisted_score)))
    valid = (listed[None, :] & (den > 0)).any(dim=1)
    logits = torch.where(use, scores / temperature, torch.full_like(scores, float("-inf")))
    logits = torch.where(valid[:, None], logits, torch.zeros_like(logits))
    targets = torch.softmax(logits, dim=1) * valid[:, None].to(y.dtype)
    return targets, valid


def soft_coannotation_loss(
    expr_logits: torch.Tensor,
    au_labels: torch.Tensor,
    au_mask: torch.Tensor | None = None,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = True,
    temperature: float = 1.0,
    unlisted_score: float | None = None,
) -> torch.Tensor:
    """Cross-entropy between predicted emotions and soft co-annotation targets, averaged over valid images.

    Args:
        expr_logits: ``(B, E)`` expression logits (columns in ``emotions`` order).
        au_labels, au_mask, table, emotions, aus, weighted, temperature, unlisted_score: see
            :func:`soft_coannotation_targets`.

    Returns:
        Scalar ``mean_b −Σ_e t_be log p(e|x_b)``; 0 (attached) when no image has AU labels.
    """
    check_2d(expr_logits, "expr_logits")
    _check_width(expr_logits, len(emotions), "expr_logits", "emotions")
    targets, valid = soft_coannotation_targets(
        au_labels,
        au_mask,
        table=table,
        emotions=emotions,
        aus=aus,
        weighted=weighted,
        temperature=temperature,
        unlisted_score=unlisted_score,
    )
    if not bool(valid.any()):
        return zero_like_graph(expr_logits)
    logp = F.log_softmax(upcast(expr_logits[valid]), dim=1)
    return -(targets[valid].to(logp) * logp).sum(dim=1).mean()


# ---- distribution matching ----------------------------------------------------------------------
Normalize = Literal["shared", "none"]


def _mixture_matrix(
    table: TableLike, emotions: Sequence[str], aus: Sequence[int], weighted: bool, normalize: Normalize
) -> np.ndarray:
    m = _matrix(table, emotions, aus, weighted)
    if normalize == "shared":
        n = (m > 0).sum(axis=0)
        m = m / np.maximum(n, 1)[None, :]
    elif normalize != "none":
        raise ValueError(f"normalize must be 'shared' or 'none', got {normalize!r}")
    return m


def au_mixture(
    expr_probs: torch.Tensor,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = False,
    normalize: Normalize = "none",
) -> torch.Tensor:
    """q(AU_i | x) = Σ_e p(e|x) p(AU_i|e) (FaceBehaviorNet eq. 2).

    p(AU_i|e) is 1 for the prototypical/observational AUs of e (``weighted=True``: w, footnote 3).
    ``normalize="none"`` (the default) is eq. 2 as written: a mixture of 0/1 rows, so q ≤ 1, and the
    paper's second example holds — p(happiness|x) = 1 ⇒ q(AU12) = q(AU25) = q(AU6) = 1, every other AU 0.
    ``normalize="shared"`` divides each AU's column by the number of emotions that use it, which gives the
    first example, q(AU2|x) = ½(p(surprise|x) + p(fear|x)), but q(AU25 | happiness) = 1/3 against the
    second. No per-AU normalisation satisfies both examples; eq. 2 and the second example agree.

    Args:
        expr_probs: ``(B, E)`` expression probabilities (softmax output).

    Returns:
        ``(B, A)`` q values in [0, 1].
    """
    check_2d(expr_probs, "expr_probs")
    _check_width(expr_probs, len(emotions), "expr_probs", "emotions")
    M = torch.as_tensor(
        _mixture_matrix(table, emotions, aus, weighted, normalize),
        dtype=expr_probs.dtype,
        device=expr_probs.device,
    )
    return expr_probs @ M


def distribution_matching_loss(
    expr_logits: torch.Tensor,
    au_logits: torch.Tensor,
    *,
    table: TableLike = "A",
    emotions: Sequence[str] = EXPRESSIONS_7,
    aus: Sequence[int] = AUS_17,
    weighted: bool = False,
    normalize: Normalize = "none",
    eps: float = 1e-7,
    detach_au: bool = False,
) -> torch.Tensor:
    """FaceBehaviorNet eq. 3: ``E_x Σ_i −p(AU_i|x) log q(AU_i|x)``, used on every training image.

    Args:
        expr_logits: ``(B, E)`` expression logits; p(e|x) = softmax.
        au_logits: ``(B, A)`` AU logits; p(AU_i|x) = sigmoid.
        table, emotions, aus, weighted, normalize: see :func:`au_mixture` (``weighted=True`` is the
            w-reweighted variant).
        eps: q is clamped to ≥ eps before the log.
        detach_au: treat p(AU|x) as a fixed soft target (gradient only through q); by default both
            predictions receive gradients, as in the paper.

    Returns:
        Scalar: sum over the AUs used by at least one listed emotion, mean over the batch.
    """
    check_2d(expr_logits, "expr_logits")
    check_2d(au_logits, "au_logits")
    _check_width(au_logits, len(aus), "au_logits", "AUs")
    if expr_logits.shape[0] != au_logits.shape[0]:
        raise ValueError(
            f"batch sizes differ: expr_logits {expr_logits.shape[0]}, au_logits {au_logits.shape[0]}"
        )
    expr_logits, au_logits = upcast(expr_logits), upcast(au_logits)
    q = au_mixture(
        torch.softmax(expr_logits, dim=1),
        table=table,
        emotions=emotions,
        aus=aus,
        weighted=weighted,
        normalize=normalize,
    )
    covered = torch.as_tensor(_matrix(table, emotions, aus, False).sum(axis=0) > 0, device=au_logits.device)
    if not bool(covered.any()):
        return zero_like_graph(expr_logits, au_logits)
    p = torch.sigmoid(au_logits)
    if detach_au:
        p = p.detach()
    terms = -p[:, covered] * torch.log(q[:, covered].clamp_min(eps))
    return terms.sum(dim=1).mean()
