"""Default model v2 parts: blendshape fusion, derived VA, weak AU labels and blended AU targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebehavior import schema
from facebehavior.data.va_targets import EMOTION_VA
from facebehavior.data.weak_targets import blended_au_targets, blendshape_au_evidence, weak_au_labels
from facebehavior.models import create_model
from facebehavior.models.default import model_features
from facebehavior.models.fusion import ARKIT_TO_FACS, AROUSAL_AUS, blendshape_input
from facebehavior.models.weights import InputSpec, WeightSpec
from facebehavior.relatedness import get_table

E8 = schema.EXPRESSIONS_8
BS = schema.BLENDSHAPE_NAMES
AUS = tuple(schema.AUS_17) + (45,)


def _model():
    torch.manual_seed(0)
    return create_model("fbn_fusion_mobile_tiny").eval()


def _bs(**scores: float) -> torch.Tensor:
    b = torch.zeros(1, len(BS))
    for name, v in scores.items():
        b[0, BS.index(name)] = v
    return b


def test_arkit_mapping_names_exist_and_cover_the_strong_blendshapes():
    for au, names in ARKIT_TO_FACS.items():
        schema.get_au(au)
        for n in names:
            assert n in BS, f"AU{au}: {n} is not a Face Landmarker blendshape"
    assert ARKIT_TO_FACS[12] == ("mouthSmileLeft", "mouthSmileRight")
    assert ARKIT_TO_FACS[45] == ("eyeBlinkLeft", "eyeBlinkRight")


def test_blendshape_input_marks_missing_faces():
    like = torch.zeros(1)
    none = blendshape_input(None, 3, like)
    assert none.shape == (3, 53) and none.abs().sum() == 0
    b = torch.rand(3, 52)
    b[1, 7] = float("nan")
    x = blendshape_input(b, 3, like)
    assert x[:, -1].tolist() == [1.0, 0.0, 1.0]
    assert x[1].abs().sum() == 0
    assert torch.equal(x[0, :52], b[0])
    with pytest.raises(ValueError, match=r"\(3, 52\)"):
        blendshape_input(torch.rand(3, 51), 3, like)


def test_missing_blendshapes_take_the_appearance_only_path():
    m = _model()
    x = torch.randn(2, 1, 48, 48)
    nan = torch.full((2, 52), float("nan"))
    with torch.no_grad():
        a, b = m(x), m(x, nan)
        c = m(x, torch.rand(2, 52))
    for k in a:
        assert torch.allclose(a[k], b[k])
    assert not torch.allclose(a["expression"], c["expression"])


def test_each_au_unit_reads_only_its_mapped_blendshapes():
    m = _model()
    with torch.no_grad():
        m.au_bs.fill_(1.0)
        app = {"expression": torch.zeros(1, 8), "au": torch.zeros(1, 19)}
        base = m.fuse(app, _bs())["au"]
        brow = m.fuse(app, _bs(browInnerUp=0.9))["au"]
        smile = m.fuse(app, _bs(mouthSmileLeft=0.9))["au"]
    k12, k1 = AUS.index(12), AUS.index(1)
    assert brow[0, k12] == base[0, k12] and brow[0, k1] > base[0, k1]
    assert smile[0, k12] > base[0, k12] and smile[0, k1] == base[0, k1]


def test_fused_aus_follow_the_appearance_head_order_without_au43():
    m = _model()
    app_aus = tuple(schema.AUS_17) + (43, 45)
    z = torch.arange(19, dtype=torch.float32)[None]
    with torch.no_grad():
        out = m.fuse({"expression": torch.zeros(1, 8), "au": z}, None)["au"]
    assert out[0].tolist() == [float(app_aus.index(a)) for a in AUS]


def test_derived_va_is_hand_computable():
    m = _model()
    big = torch.full((1, 8), -30.0)
    big[0, E8.index("surprise")] = 30.0
    au = torch.full((1, len(AUS)), -30.0)
    for a in (1, 2, 25, 26):
        au[0, AUS.index(a)] = 30.0
    with torch.no_grad():
        m.arousal_baseline.fill_(0.1)
        m.arousal_gain.fill_(0.8)
        va = m.derive_va(big, au)
    v, a = EMOTION_VA["surprise"]
    act = 4 / len(AROUSAL_AUS)
    assert va[0, 0].item() == pytest.approx(v, abs=1e-5)
    assert va[0, 1].item() == pytest.approx(min(1.0, a + 0.8 * (act - 0.1)), abs=1e-5)


def test_arousal_follows_the_circumplex_for_prototypical_faces():
    """Surprise, fear and anger above neutral and sadness; valence and arousal not one signal."""
    m = _model()
    tab = get_table("A")
    va = {}
    for e in ("neutral", "happiness", "sadness", "surprise", "fear", "anger", "disgust"):
        logits = torch.full((1, 8), -30.0)
        logits[0, E8.index(e)] = 30.0
        au = torch.full((1, len(AUS)), -5.0)
        if e != "neutral":
            for a in tab.prototypical(e):
                au[0, AUS.index(a)] = 5.0
        with torch.no_grad():
            va[e] = m.derive_va(logits, au)[0].tolist()
    low = max(va["neutral"][1], va["sadness"][1])
    for e in ("surprise", "fear", "anger"):
        assert va[e][1] > low, (e, va)
    assert va["fear"][1] > va["happiness"][1]
    v, a = np.array([x[0] for x in va.values()]), np.array([x[1] for x in va.values()])
    assert abs(np.corrcoef(v, a)[0, 1]) < 0.5


def test_weak_au_labels_by_hand():
    expr = np.array([E8.index("neutral"), E8.index("happiness"), E8.index("sadness"), -1])
    bs = np.full((4, 52), np.nan, np.float32)
    bs[0, [BS.index("eyeBlinkLeft"), BS.index("eyeBlinkRight")]] = 0.8  # closed
    bs[1, [BS.index("eyeBlinkLeft"), BS.index("eyeBlinkRight")]] = 0.4  # ambiguous
    bs[2, [BS.index("eyeBlinkLeft"), BS.index("eyeBlinkRight")]] = 0.1  # open
    y, m = weak_au_labels(expr, bs, AUS)
    k = {a: AUS.index(a) for a in AUS}
    assert m[0, k[12]] and y[0, k[12]] == 0  # neutral: absent
    assert m[1, k[12]] and y[1, k[12]] == 1 and y[1, k[25]] == 1  # happiness prototypes
    assert m[1, k[4]] and y[1, k[4]] == 0  # unrelated to happiness
    assert not m[2, k[1]]  # AU1 is only observational (0.6) in sadness: unlabelled
    assert m[2, k[6]] and y[2, k[6]] == 1  # no emotion has AU6 as prototype: w >= 0.5 counts
    assert not m[:, k[11]].any() and not m[:, k[23]].any()  # never a positive: left out
    assert not m[3].any()  # no confident label, no blendshapes
    assert y[0, k[45]] == 1 and m[0, k[45]]
    assert not m[1, k[45]]
    assert y[2, k[45]] == 0 and m[2, k[45]]


def test_blended_au_targets_by_hand():
    dist = np.zeros((2, 8))
    dist[:, E8.index("happiness")] = 1.0
    bs = np.zeros((2, 52), np.float32)
    bs[0, [BS.index("mouthSmileLeft"), BS.index("mouthSmileRight")]] = (0.6, 1.0)
    bs[0, [BS.index("eyeBlinkLeft"), BS.index("eyeBlinkRight")]] = 0.2
    bs[1] = np.nan
    aus = (12, 45, 11)
    t, m = blended_au_targets(dist, bs, aus)
    assert t[0, 0] == pytest.approx(0.5 * 1.0 + 0.5 * 0.8)
    assert t[0, 1] == pytest.approx(0.2) and m[0, 1]  # AU45: blendshape evidence only
    assert t[1, 0] == pytest.approx(1.0) and m[1, 0]  # no blendshapes: table A alone
    assert not m[1, 1]
    assert m[:, 2].all() and t[0, 2] == 0  # AU11: table A covers it (sadness), happiness gives 0
    ev, cov = blendshape_au_evidence(np.nan_to_num(bs), (25, 11))
    assert cov.tolist() == [True, False]


def test_model_features_follow_the_spec():
    spec = WeightSpec("m", "fbn_fusion_mobile_tiny", input=InputSpec(features=("blendshapes",)))
    assert model_features(spec, 2, None) == [None]
    (b,) = model_features(spec, 2, np.zeros((2, 52)))
    assert b.shape == (2, 52) and b.dtype == torch.float32
    with pytest.raises(ValueError, match="blendshapes must be"):
        model_features(spec, 2, np.zeros((3, 52)))
    bad = WeightSpec("m", "x", input=InputSpec(features=("gaze",)))
    with pytest.raises(ValueError, match="unknown input feature 'gaze'"):
        model_features(bad, 1, None)
    assert WeightSpec.from_json(spec.to_json()).input.features == ("blendshapes",)
    assert model_features(WeightSpec("m", "x"), 2, np.zeros((2, 52))) == []
