"""Coupling losses, built from FaceBehaviorNet's own worked examples and hand computations."""

import math

import numpy as np
import pytest
import torch

from facebehavior.losses import (
    au_mixture,
    coannotate_aus,
    coannotate_expressions,
    coannotation_loss,
    distribution_matching_loss,
    soft_coannotation_loss,
    soft_coannotation_targets,
)
from facebehavior.schema import AUS_17, EXPRESSIONS_7, EXPRESSIONS_8

E = EXPRESSIONS_7.index
A = AUS_17.index
g = torch.Generator().manual_seed(1)


def _onehot_expr(name, emotions=EXPRESSIONS_7):
    p = torch.zeros(1, len(emotions), dtype=torch.float64)
    p[0, emotions.index(name)] = 1
    return p


# ---- distribution matching ---------------------------------------------------------------------
def test_q_au2_for_pure_surprise_is_half_with_shared_normalisation():
    # Paper's first example: q(AU2|x) = ½(p(surprise|x) + p(fear|x)); AU2 is shared by surprise and fear.
    q = au_mixture(_onehot_expr("surprise"), normalize="shared")
    assert q[0, A(2)].item() == pytest.approx(0.5)
    p = torch.tensor([[0, 0, 0, 0.3, 0.1, 0, 0.6]], dtype=torch.float64)
    assert au_mixture(p, normalize="shared")[0, A(2)].item() == pytest.approx(0.5 * (0.6 + 0.3))
    # Eq. 2 as written (the default, no normalisation) gives the plain mixture.
    assert au_mixture(_onehot_expr("surprise"))[0, A(2)].item() == 1.0
    assert au_mixture(p)[0, A(2)].item() == pytest.approx(0.6 + 0.3)


def test_pure_happiness_activates_exactly_aus_12_25_6():
    for normalize in ("none", "shared"):
        q = au_mixture(_onehot_expr("happiness"), normalize=normalize)[0]
        active = {AUS_17[j] for j in torch.nonzero(q).flatten().tolist()}
        assert active == {6, 12, 25}
        assert (q == 0).sum().item() == 14
    q = au_mixture(_onehot_expr("happiness"))[0]  # the default: eq. 2 as written
    assert q[A(12)] == q[A(25)] == q[A(6)] == 1.0  # the paper's second example: "q = 1" for all three
    q = au_mixture(_onehot_expr("happiness"), normalize="shared")[0]
    # shared: AU25 is used by happiness, fear, surprise; AU6 by happiness and sadness.
    assert q[A(12)].item() == 1.0 and q[A(25)].item() == pytest.approx(1 / 3) and q[A(6)].item() == 0.5


def test_weighted_variant_uses_w():
    q = au_mixture(_onehot_expr("happiness"), weighted=True, normalize="none")[0]
    assert q[A(6)].item() == pytest.approx(0.51) and q[A(12)].item() == 1.0
    qb = au_mixture(_onehot_expr("happiness"), table="B", weighted=True, normalize="none")[0]
    assert qb[A(7)].item() == pytest.approx(0.83)


def test_distribution_matching_matches_hand_computation():
    expr = torch.randn(3, 7, generator=g, dtype=torch.float64)
    au = torch.randn(3, 17, generator=g, dtype=torch.float64)
    pe = torch.softmax(expr, 1).numpy()
    pa = 1 / (1 + np.exp(-au.numpy()))
    from facebehavior.relatedness import TABLE_A

    M = TABLE_A.matrix(EXPRESSIONS_7, AUS_17)
    n_share = M.sum(0)
    covered = n_share > 0
    q = pe @ M  # eq. 2
    ref = np.mean(np.sum(-pa[:, covered] * np.log(q[:, covered]), axis=1))
    assert distribution_matching_loss(expr, au).item() == pytest.approx(ref, rel=1e-10)
    q = pe @ (M / np.maximum(n_share, 1))
    ref = np.mean(np.sum(-pa[:, covered] * np.log(q[:, covered]), axis=1))
    assert distribution_matching_loss(expr, au, normalize="shared").item() == pytest.approx(ref, rel=1e-10)
    assert covered.all()  # table A uses all 17 of FaceBehaviorNet's AUs


def test_distribution_matching_gradcheck_and_au_subset_with_uncovered_au():
    aus = (1, 2, 12, 14, 25)  # AU14 is used by no emotion of table A
    expr = torch.randn(4, 8, generator=g, dtype=torch.float64, requires_grad=True)
    au = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    f = lambda e, a: distribution_matching_loss(e, a, emotions=EXPRESSIONS_8, aus=aus)  # noqa: E731
    assert torch.autograd.gradcheck(f, (expr, au))
    loss = f(expr, au)
    loss.backward()
    assert au.grad[:, 3].abs().max().item() == 0.0  # AU14 takes no part
    assert torch.autograd.gradcheck(
        lambda e, a: distribution_matching_loss(e, a, weighted=True, normalize="none", table="B"),
        (
            torch.randn(2, 7, dtype=torch.float64, requires_grad=True),
            torch.randn(2, 17, dtype=torch.float64, requires_grad=True),
        ),
    )


def test_contempt_mass_implies_no_au():
    p = torch.zeros(1, 8, dtype=torch.float64)
    p[0, EXPRESSIONS_8.index("contempt")] = 1
    assert au_mixture(p, emotions=EXPRESSIONS_8).abs().sum().item() == 0.0


# ---- soft co-annotation ------------------------------------------------------------------------
def test_happiness_soft_score_is_weighted_fraction():
    for y6, y12, y25 in [(1, 1, 1), (0, 1, 1), (1, 0, 1), (1, 0, 0), (0, 0, 0)]:
        y = torch.zeros(1, 17)
        y[0, A(6)], y[0, A(12)], y[0, A(25)] = y6, y12, y25
        t, valid = soft_coannotation_targets(y)
        assert valid.item()
        score = (y12 + y25 + 0.51 * y6) / 2.51
        # Recover the happiness score from the softmax: log t_h − log t_neutral-free reference (anger).
        # Anger's AUs (4, 7, 24, 10, 17, 23) are all absent here, so its score is 0.
        got = math.log(t[0, E("happiness")].item()) - math.log(t[0, E("anger")].item())
        assert got == pytest.approx(score, abs=1e-6)
        assert t[0, E("neutral")].item() == 0.0
        assert t.sum().item() == pytest.approx(1.0)


def test_soft_targets_full_softmax_and_unweighted_variant():
    y = torch.zeros(1, 17)
    for au in (1, 2, 25, 26):  # the prototypical AUs of surprise
        y[0, A(au)] = 1
    from facebehavior.relatedness import TABLE_A

    scores = {}
    for emo in ("anger", "disgust", "fear", "happiness", "sadness", "surprise"):
        w = TABLE_A.weights(emo)
        scores[emo] = sum(wi * y[0, A(a)].item() for a, wi in w.items()) / sum(w.values())
    z = np.exp(list(scores.values()))
    ref = dict(zip(scores, z / z.sum(), strict=True))
    t, _ = soft_coannotation_targets(y)
    for emo, v in ref.items():
        assert t[0, E(emo)].item() == pytest.approx(v, rel=1e-6)
    tu, _ = soft_coannotation_targets(y, weighted=False)
    # Unweighted surprise score: 4 of its 5 AUs → 0.8; fear: 1, 2, 25, 26 of 7 → 4/7.
    assert math.log(tu[0, E("surprise")] / tu[0, E("fear")]) == pytest.approx(0.8 - 4 / 7, abs=1e-6)
    t0, _ = soft_coannotation_targets(y, unlisted_score=0.0)
    assert t0[0, E("neutral")].item() > 0


def test_soft_coannotation_mask_subset_and_loss():
    y = torch.zeros(2, 17)
    y[0, A(12)] = 1
    mask = torch.ones(2, 17)
    mask[1] = 0  # second image has no AU labels
    t, valid = soft_coannotation_targets(y, mask)
    assert valid.tolist() == [True, False] and t[1].sum().item() == 0
    logits = torch.randn(2, 7, generator=g, dtype=torch.float64, requires_grad=True)
    loss = soft_coannotation_loss(logits, y, mask)
    ref = -(t[0].double() * torch.log_softmax(logits[0], 0)).sum()
    torch.testing.assert_close(loss, ref)
    loss.backward()
    assert logits.grad[1].abs().sum().item() == 0.0
    # AU subset (Aff-Wild2's 8 AUs): happiness is scored over 6, 12, 25 which are all in it.
    aus8 = (1, 2, 4, 6, 12, 15, 20, 25)
    y8 = torch.zeros(1, 8)
    y8[0, aus8.index(12)] = 1
    t8, _ = soft_coannotation_targets(y8, aus=aus8, emotions=EXPRESSIONS_8)
    assert t8.shape == (1, 8) and t8[0, EXPRESSIONS_8.index("contempt")].item() == 0.0


# ---- co-annotation -----------------------------------------------------------------------------
def test_coannotate_aus_from_emotion():
    target, weight = coannotate_aus(torch.tensor([E("happiness"), E("neutral")]))
    assert {AUS_17[j] for j in torch.nonzero(target[0]).flatten().tolist()} == {6, 12, 25}
    assert weight[0, A(6)].item() == pytest.approx(0.51) and weight[0, A(12)].item() == 1.0
    assert target[1].sum().item() == 0  # neutral implies no AU
    _, w_unweighted = coannotate_aus(torch.tensor([E("happiness")]), weighted=False)
    assert w_unweighted[0, A(6)].item() == 1.0


def test_coannotate_expression_from_aus_and_tie_break():
    y = torch.zeros(4, 17)
    for au in (12, 25, 6):
        y[0, A(au)] = 1  # happiness complete
    for au in (12, 25):
        y[1, A(au)] = 1  # happiness missing observational AU6 → no emotion
    for au in (1, 2, 4, 5, 20, 25, 26):
        y[2, A(au)] = 1  # fear (7 AUs) and surprise (1, 2, 25, 26, 5: 5 AUs) both complete → fear
    y[3] = 1  # everything present: fear needs the most AUs (7)
    labels, valid = coannotate_expressions(y)
    assert valid.tolist() == [True, False, True, True]
    assert (
        labels[0].item() == E("happiness") and labels[2].item() == E("fear") and labels[3].item() == E("fear")
    )
    # Unannotated AUs count as absent.
    mask = torch.ones(4, 17)
    mask[0, A(6)] = 0
    _, valid = coannotate_expressions(y, mask)
    assert not valid[0]
    # With an AU subset lacking AU6, happiness can never be verified.
    aus = (1, 2, 12, 25)
    _, valid = coannotate_expressions(torch.ones(1, 4), aus=aus)
    assert not valid.any()


def test_coannotation_loss_matches_components():
    expr_logits = torch.randn(3, 7, generator=g, dtype=torch.float64, requires_grad=True)
    au_logits = torch.randn(3, 17, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([E("happiness"), E("sadness"), 0])
    emask = torch.tensor([1.0, 1.0, 0.0])
    au_labels = torch.zeros(3, 17)
    for au in (12, 25, 6):
        au_labels[2, A(au)] = 1
    au_mask = torch.tensor([0.0, 0.0, 1.0])
    loss = coannotation_loss(
        expr_logits, au_logits, expr_labels=labels, expr_mask=emask, au_labels=au_labels, au_mask=au_mask
    )
    # Reference, by hand: image 0 → AUs 12, 25 (w 1) and 6 (w .51); image 1 → sadness AUs with weights.
    from facebehavior.relatedness import TABLE_A

    def bce_pos(z):
        return -torch.nn.functional.logsigmoid(z)

    per = []
    for b, emo in ((0, "happiness"), (1, "sadness")):
        w = TABLE_A.weights(emo)
        per.append(sum(wi * bce_pos(au_logits[b, A(a)]) for a, wi in w.items()) / len(w))
    ref = sum(per) / 2 + torch.nn.functional.cross_entropy(expr_logits[2:3], torch.tensor([E("happiness")]))
    torch.testing.assert_close(loss, ref)
    loss.backward()
