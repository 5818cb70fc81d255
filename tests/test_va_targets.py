"""VA targets derived from expression distributions (Warriner et al. 2013 coordinates)."""

from __future__ import annotations

import numpy as np
import pytest

from facebehavior.data import va_targets as vt
from facebehavior.schema import EXPRESSIONS_8


def test_scale_conversion_hand_computed() -> None:
    # happy: V 8.47, A 6.05 on 1..9 → ((8.47-5)/4, (6.05-5)/4)
    assert vt.EMOTION_VA["happiness"] == pytest.approx((0.8675, 0.2625))
    # sad: V 2.10, A 3.49
    assert vt.EMOTION_VA["sadness"] == pytest.approx((-0.725, -0.3775))
    assert vt.warriner_to_unit(1.0) == -1.0 and vt.warriner_to_unit(9.0) == 1.0
    assert set(vt.EMOTION_VA) == set(EXPRESSIONS_8)
    for v, a in vt.EMOTION_VA.values():
        assert -1 <= v <= 1 and -1 <= a <= 1


def test_circumplex_sanity() -> None:
    va = vt.EMOTION_VA
    assert va["happiness"][0] > va["surprise"][0] > va["neutral"][0] > 0 > va["anger"][0]
    assert va["anger"][1] > va["neutral"][1] and va["sadness"][1] < va["fear"][1]


def test_ferplus_column_mapping() -> None:
    # FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    votes = np.zeros((3, 10))
    votes[0, 2] = 10  # all surprise
    votes[1, 7] = 4  # all contempt (+ unknown/NF votes that must be ignored)
    votes[1, 8] = 3
    votes[1, 9] = 3
    votes[2, 9] = 10  # not a face: no target
    out = vt.va_from_ferplus_votes(votes)
    np.testing.assert_allclose(out[0], vt.EMOTION_VA["surprise"], rtol=1e-6)
    np.testing.assert_allclose(out[1], vt.EMOTION_VA["contempt"], rtol=1e-6)
    assert np.isnan(out[2]).all()
    e8 = vt.ferplus_to_expressions8(votes)
    assert e8[0, EXPRESSIONS_8.index("surprise")] == 10 and e8[1, EXPRESSIONS_8.index("contempt")] == 4


def test_mixture_is_vote_weighted_mean() -> None:
    votes = np.zeros((1, 10))
    votes[0, 0] = 6  # neutral
    votes[0, 3] = 2  # sadness
    votes[0, 1] = 2  # happiness
    expected = (
        0.6 * np.array(vt.EMOTION_VA["neutral"])
        + 0.2 * np.array(vt.EMOTION_VA["sadness"])
        + 0.2 * np.array(vt.EMOTION_VA["happiness"])
    )
    np.testing.assert_allclose(vt.va_from_ferplus_votes(votes)[0], expected, rtol=1e-5)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        vt.va_from_distribution(np.ones((2, 7)))
    with pytest.raises(ValueError, match="non-negative"):
        vt.va_from_distribution(-np.ones((1, 8)))
    with pytest.raises(KeyError, match="known"):
        vt.expression_va_table(("neutral", "boredom"))


# ---- label-table hooks (facebehavior.data.weak_targets) ----------------------------------------


def _table(dist: np.ndarray):
    from pathlib import Path

    from facebehavior.data.labels import LabelTable

    n = len(dist)
    return LabelTable(
        corpus="ferplus",
        split="Training",
        root=Path("."),
        image=np.array([f"<array>:{i + 10}" for i in range(n)], dtype=object),
        subject=np.full(n, "", dtype=object),
        video=np.full(n, "", dtype=object),
        frame=np.full(n, -1, np.int64),
        expression=np.full(n, -1, np.int64),
        expression_dist=dist.astype(np.float32),
    )


def test_va_hook_masks_rows_without_votes() -> None:
    from facebehavior.data.weak_targets import va_from_votes

    dist = np.zeros((2, 8))
    dist[0, EXPRESSIONS_8.index("happiness")] = 1.0
    t = va_from_votes(_table(dist))
    assert t.va_mask.tolist() == [True, False]
    np.testing.assert_allclose(t.va[0], vt.EMOTION_VA["happiness"], rtol=1e-6)


def test_table_a_au_targets_hand_computed() -> None:
    from facebehavior.data.weak_targets import DEFAULT_AUS, aus_from_votes, table_a_au_targets

    dist = np.zeros((3, 8))
    dist[0, EXPRESSIONS_8.index("happiness")] = 1.0
    dist[1, EXPRESSIONS_8.index("happiness")] = 0.5  # half happy, half surprised
    dist[1, EXPRESSIONS_8.index("surprise")] = 0.5
    dist[2, EXPRESSIONS_8.index("neutral")] = 1.0
    tgt, covered = table_a_au_targets(dist)
    col = {au: i for i, au in enumerate(DEFAULT_AUS)}
    # Table A: happiness 12, 25 (prototypical), 6 (0.51); surprise 1, 2, 25, 26, 5 (0.66).
    assert tgt[0, col[12]] == pytest.approx(1.0) and tgt[0, col[6]] == pytest.approx(0.51)
    assert tgt[0, col[4]] == 0.0
    assert tgt[1, col[25]] == pytest.approx(1.0) and tgt[1, col[12]] == pytest.approx(0.5)
    assert tgt[1, col[5]] == pytest.approx(0.33)
    assert np.all(tgt[2] == 0)  # neutral implies no AU
    assert covered[: len(DEFAULT_AUS) - 2].all() and not covered[col[43]] and not covered[col[45]]
    t = aus_from_votes(_table(dist))
    assert t.aus == DEFAULT_AUS and t.au_mask[:, col[12]].all() and not t.au_mask[:, col[45]].any()
    np.testing.assert_allclose(t.au_occurrence, tgt)


def test_geometry_hook_blends_and_fills(tmp_path, monkeypatch) -> None:
    from facebehavior.data import weak_targets as wt

    dist = np.zeros((3, 8))
    dist[:, EXPRESSIONS_8.index("happiness")] = 1.0
    table = wt.aus_from_votes(_table(dist))  # rows 10, 11, 12 of the corpus
    aus = np.array(wt.DEFAULT_AUS)
    prob = np.zeros((2, len(aus)), np.float32)
    prob[:, list(aus).index(12)] = 0.2
    prob[:, list(aus).index(45)] = 0.9
    cache = tmp_path / "geo.npz"
    np.savez(cache, rows=np.array([10, 12]), presence=np.array([0.9, 0.1]), prob=prob,
             mask=np.isin(aus, [12, 45]), aus=aus)  # fmt: skip
    monkeypatch.setenv(wt.GEOMETRY_CACHE_ENV, str(cache))
    out = wt.aus_from_geometry(table)
    k12, k45 = list(aus).index(12), list(aus).index(45)
    # Row 10: cached, present → blend 0.7·1.0 + 0.3·0.2; row 11: not cached; row 12: presence too low.
    assert out.au_occurrence[0, k12] == pytest.approx(0.7 + 0.3 * 0.2)
    assert out.au_occurrence[1, k12] == pytest.approx(1.0) and out.au_occurrence[2, k12] == pytest.approx(1.0)
    assert out.au_mask[:, k45].tolist() == [True, False, False]
    assert out.au_occurrence[0, k45] == pytest.approx(0.9)
    monkeypatch.delenv(wt.GEOMETRY_CACHE_ENV)
    with pytest.raises(FileNotFoundError, match=wt.GEOMETRY_CACHE_ENV):
        wt.aus_from_geometry(table)
