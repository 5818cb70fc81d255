"""Zero-shot compound expression scores (FaceBehaviorNet §4.5) against hand computations."""

import numpy as np
import pytest
import torch

from facebehavior.compound import compound_columns, compound_scores
from facebehavior.relatedness import EMOTIONET_CLASSES_16, RAFDB_COMPOUND_11
from facebehavior.schema import AUS_17, EXPRESSIONS_7, EXPRESSIONS_8

A = AUS_17.index
E = EXPRESSIONS_7.index
rng = np.random.default_rng(3)


def test_happily_surprised_score_by_hand():
    au = np.zeros((1, 17))
    for k, p in {1: 0.9, 2: 0.8, 12: 0.7, 25: 0.6, 5: 0.5, 26: 0.4, 4: 0.99}.items():
        au[0, A(k)] = p
    ex = np.zeros((1, 7))
    ex[0, E("happiness")], ex[0, E("surprise")], ex[0, E("fear")] = 0.5, 0.3, 0.2
    out = compound_scores(au, ex, [0.4])
    # Du et al.: happily surprised = 1, 2, 12, 25 (+5, 26 observational): mean of those 6 probabilities.
    au_term = (0.9 + 0.8 + 0.7 + 0.6 + 0.5 + 0.4) / 6
    c = RAFDB_COMPOUND_11.index("happily_surprised")
    assert out.scores[0, c] == pytest.approx(au_term + 0.5 + 0.3 + 1.0)
    # Negative valence removes the bonus (0.5·(−1 + 1) = 0); a non-happy class never gets it.
    neg = compound_scores(au, ex, [-0.2])
    assert neg.scores[0, c] == pytest.approx(au_term + 0.8)
    s = RAFDB_COMPOUND_11.index("sadly_angry")
    assert out.scores[0, s] == pytest.approx(neg.scores[0, s])
    # Sadly angry = 4, 15 (+6, 7, 11, 17): only AU4 (0.99) is active; no sadness/anger probability.
    assert out.scores[0, s] == pytest.approx(0.99 / 6)
    assert out.names == ["happily_surprised"]


def test_argmax_picks_intended_class_and_torch_inputs_match():
    au = np.full((2, 17), 0.05)
    for k in (4, 10, 17, 7, 9, 24):  # angrily disgusted
        au[0, A(k)] = 0.95
    for k in (1, 4, 20, 25, 2, 5, 6, 15):  # sadly fearful
        au[1, A(k)] = 0.95
    ex = np.full((2, 7), 0.02)
    ex[0, E("anger")], ex[0, E("disgust")] = 0.45, 0.43
    ex[1, E("sadness")], ex[1, E("fear")] = 0.45, 0.43
    out = compound_scores(au, ex, np.array([-0.5, -0.5]))
    assert out.names == ["angrily_disgusted", "sadly_fearful"]
    out_t = compound_scores(torch.tensor(au), torch.tensor(ex), torch.tensor([-0.5, -0.5]))
    np.testing.assert_array_equal(out.scores, out_t.scores)


def test_emotionet_set_basic_classes_and_eight_expressions():
    au = rng.random((5, 17))
    ex = rng.dirichlet(np.ones(8), size=5)
    v = rng.uniform(-1, 1, 5)
    out = compound_scores(au, ex, v, classes="emotionet", emotions=EXPRESSIONS_8)
    assert out.scores.shape == (5, 16) and out.classes == EMOTIONET_CLASSES_16
    h = EMOTIONET_CLASSES_16.index("happiness")
    au_term = au[:, [A(6), A(12), A(25)]].mean(axis=1)
    bonus = 0.5 * (np.sign(v) + 1)
    np.testing.assert_allclose(
        out.scores[:, h], au_term + 2 * ex[:, EXPRESSIONS_8.index("happiness")] + bonus
    )
    np.testing.assert_array_equal(out.labels, out.scores.argmax(1))
    assert compound_columns("emotionet")[h] == "compound_score_happiness"


def test_au_subset_and_errors():
    aus = (1, 2, 4, 6, 12, 15, 20, 25)  # Aff-Wild2's 8 AUs
    au = np.zeros((1, 8))
    au[0, aus.index(12)] = 1.0
    out = compound_scores(au, np.zeros((1, 7)), [1.0], aus=aus)
    c = RAFDB_COMPOUND_11.index("happily_disgusted")  # 10, 12, 25 (+4, 6, 9) → in subset: 12, 25, 4, 6
    assert out.scores[0, c] == pytest.approx(1 / 4 + 1.0)
    with pytest.raises(ValueError, match="order of aus"):
        compound_scores(np.zeros((1, 5)), np.zeros((1, 7)), [0.0])
    with pytest.raises(ValueError, match="disagree"):
        compound_scores(np.zeros((2, 17)), np.zeros((1, 7)), [0.0])
    with pytest.raises(ValueError, match="unknown compound class set"):
        compound_scores(np.zeros((1, 17)), np.zeros((1, 7)), [0.0], classes="fer")
    with pytest.raises(ValueError, match="use no AU"):
        compound_scores(np.zeros((1, 1)), np.zeros((1, 7)), [0.0], aus=(43,))


def test_output_columns_ignore_aus_outside_the_table_and_match_scores():
    from facebehavior.compound import COMPOUND_MIN_PROB, compound_output_columns

    aus = (*AUS_17, 43, 45)  # the default model's extra geometry AUs are not in Du et al.'s table
    au = rng.random((4, len(aus)))
    ex = rng.dirichlet(np.ones(8), size=4)
    v = rng.uniform(-1, 1, 4)
    cols = compound_output_columns(ex, EXPRESSIONS_8, au, aus, v)
    ref = compound_scores(au[:, :17], ex, v, emotions=EXPRESSIONS_8, min_prob=COMPOUND_MIN_PROB)
    assert list(cols) == [*compound_columns("rafdb"), "compound"]
    for i, name in enumerate(compound_columns("rafdb")):
        np.testing.assert_allclose(cols[name], ref.scores[:, i], rtol=1e-6)
    assert cols["compound"].tolist() == ref.names
    with pytest.raises(ValueError, match="compound table"):
        compound_output_columns(ex, EXPRESSIONS_8, au[:, :2], (43, 45), v)


def test_supported_needs_constituent_emotions_and_table_aus():
    from facebehavior.compound import compound_supported

    assert compound_supported(EXPRESSIONS_8, (*AUS_17, 43))
    assert not compound_supported(tuple(e for e in EXPRESSIONS_7 if e != "disgust"), AUS_17)
    assert not compound_supported(EXPRESSIONS_7, (43, 45, None))
    assert compound_supported(EXPRESSIONS_7, AUS_17, classes="emotionet")
