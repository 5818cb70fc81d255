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
