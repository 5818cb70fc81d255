"""Compound rejection: ``compound = "none"`` unless both constituent expressions are probable."""

from __future__ import annotations

import numpy as np
import pytest

from facebehavior.compound import (
    COMPOUND_MIN_PROB,
    NO_COMPOUND,
    compound_columns,
    compound_output_columns,
    compound_scores,
)
from facebehavior.relatedness import COMPOUND_TABLE, RAFDB_COMPOUND_11
from facebehavior.schema import AUS_17, EXPRESSIONS_7, EXPRESSIONS_8

E = EXPRESSIONS_7.index


def _aus_of(cls: str) -> np.ndarray:
    """AU probabilities 0.9 on every AU of ``cls`` in Du et al.'s table, 0 elsewhere."""
    au = np.zeros((1, len(AUS_17)))
    for a in COMPOUND_TABLE.entries[cls]:
        if a in AUS_17:
            au[0, AUS_17.index(a)] = 0.9
    return au


def test_smile_is_not_happily_disgusted():
    """A clear smile with happily-disgusted AUs and positive valence: the closed set says
    happily_disgusted, the rejection rule says none (p(disgust) is far below the threshold)."""
    ex = np.zeros((1, 7))
    ex[0, E("happiness")], ex[0, E("disgust")], ex[0, E("neutral")] = 0.9, 0.03, 0.07
    au = _aus_of("happily_disgusted")
    closed = compound_scores(au, ex, [0.8])
    assert closed.names == ["happily_disgusted"]
    out = compound_scores(au, ex, [0.8], min_prob=COMPOUND_MIN_PROB)
    assert out.names == [NO_COMPOUND] and out.labels.tolist() == [-1]
    np.testing.assert_array_equal(out.scores, closed.scores)  # scores unchanged, only the label


def test_best_qualifying_class_wins():
    ex = np.zeros((2, 7))
    # Face 0: happiness 0.45, surprise 0.35, disgust 0.2 -> happily_surprised qualifies, and
    # happily_disgusted (disgust exactly at the threshold) too; the higher score wins.
    ex[0, [E("happiness"), E("surprise"), E("disgust")]] = 0.45, 0.35, 0.2
    # Face 1: sadness 0.5, fear 0.19, anger 0.31 -> sadly_fearful is out (0.19 < 0.2); sadly_angry in.
    ex[1, [E("sadness"), E("fear"), E("anger")]] = 0.5, 0.19, 0.31
    au = np.vstack([_aus_of("happily_disgusted"), _aus_of("sadly_fearful")])
    out = compound_scores(au, ex, [0.5, -0.5], min_prob=0.2)
    s = out.scores
    hs, hd = RAFDB_COMPOUND_11.index("happily_surprised"), RAFDB_COMPOUND_11.index("happily_disgusted")
    assert out.names[0] == RAFDB_COMPOUND_11[hs if s[0, hs] > s[0, hd] else hd]
    assert out.names[1] == "sadly_angry"
    assert compound_scores(au, ex, [0.5, -0.5]).names[1] == "sadly_fearful"  # closed set picks it


def test_output_columns_are_named_scores_and_reject_by_default():
    ex = np.zeros((2, 8))
    ex[0, EXPRESSIONS_8.index("neutral")] = 1.0
    ex[1, [EXPRESSIONS_8.index("happiness"), EXPRESSIONS_8.index("surprise")]] = 0.6, 0.4
    au = np.vstack([_aus_of("sadly_angry"), _aus_of("happily_surprised")])
    cols = compound_output_columns(ex, EXPRESSIONS_8, au, AUS_17, np.array([0.0, 0.6]))
    assert sorted(k for k in cols if k != "compound") == sorted(compound_columns("rafdb"))
    assert all(k.startswith("compound_score_") for k in cols if k != "compound")
    assert cols["compound"].tolist() == [NO_COMPOUND, "happily_surprised"]  # neutral face: none
    closed = compound_output_columns(ex, EXPRESSIONS_8, au, AUS_17, np.array([0.0, 0.6]), min_prob=None)
    assert closed["compound"][0] != NO_COMPOUND
    with pytest.raises(ValueError, match="min_prob"):
        compound_scores(au, ex[:, :7], [0.0, 0.0], min_prob=1.5)


def test_emotionet_basic_classes_need_their_own_probability():
    ex = np.full((1, 7), 0.1)
    ex[0, E("happiness")] = 0.4
    out = compound_scores(np.full((1, 17), 0.5), ex, [0.5], classes="emotionet", min_prob=0.3)
    assert out.names == ["happiness"]


def test_threshold_on_ferplus_happy_faces():
    """On FER+ PrivateTest faces voted >= 90 % happy, the default model never gives a disgust
    probability that lets happily_disgusted through (even with its AUs and positive valence)."""
    import torch

    from facebehavior.models.default import load_default_model, predict_expression_probs
    from shared_data import shared_path

    torch.set_num_threads(1)
    with np.load(shared_path("datasets", "fer2013", "fer2013.npz")) as d:
        test = np.flatnonzero(d["usage"] == list(d["usage_names"]).index("PrivateTest"))
        votes = d["ferplus_votes"][test].astype(float)
        cols = list(d["ferplus_columns"])
        happy = test[votes[:, cols.index("happiness")] / votes.sum(1) >= 0.9][:300]
        faces = d["images"][happy]
    model, spec = load_default_model()
    p8 = predict_expression_probs(model, spec, faces)
    ex = p8[:, [EXPRESSIONS_8.index(e) for e in EXPRESSIONS_7]]
    au = np.repeat(_aus_of("happily_disgusted"), len(ex), axis=0)
    out = compound_scores(au, ex, np.ones(len(ex)), min_prob=COMPOUND_MIN_PROB)
    closed = compound_scores(au, ex, np.ones(len(ex)))
    assert len(ex) >= 200
    assert "happily_disgusted" not in out.names
    assert closed.names.count("happily_disgusted") > 0.5 * len(ex)  # what the closed set did
