"""Facial measurements and geometric AU evidence on the canonical face and synthetic deformations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facebehavior.face import geometry as g
from facebehavior.face.landmarks import indices as ix
from facebehavior.face.pose import canonical_face
from facebehavior.schema import AUS_17

IOD = g.CANONICAL_IOD_CM


def _v() -> np.ndarray:
    return canonical_face().vertices.copy()


def _bump(v: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-np.sum((v[:, :2] - centre[:2]) ** 2, axis=1) / (2 * sigma**2))


# --- synthetic deformations (cm, camera frame: y down) -----------------------------------------
def jaw_open(v: np.ndarray, cm: float) -> np.ndarray:
    """Drop everything below the lip line (weights ramp from upper to lower inner lip)."""
    v = v.copy()
    y_up, y_low = v[ix.UPPER_LIP_INNER, 1], v[ix.LOWER_LIP_INNER, 1]
    w = np.clip((v[:, 1] - y_up) / (y_low - y_up), 0, 1)
    v[:, 1] += cm * w
    return v


def lip_corners_up(v: np.ndarray, cm: float) -> np.ndarray:
    v = v.copy()
    for c, sx in ((ix.MOUTH_RIGHT, -1), (ix.MOUTH_LEFT, 1)):
        w = _bump(v, v[c], 0.8)
        v[:, 1] -= cm * w
        v[:, 0] += sx * 0.5 * cm * w
    return v


def eyes_close(v: np.ndarray, frac: float) -> np.ndarray:
    v = v.copy()
    for up, low in ((ix.RIGHT_EYE_UPPER, ix.RIGHT_EYE_LOWER), (ix.LEFT_EYE_UPPER, ix.LEFT_EYE_LOWER)):
        up, low = np.array(up[1:-1]), np.array(low[1:-1])
        v[up, 1] += frac * (v[low, 1] - v[up, 1])
    return v


def brows(v: np.ndarray, down_cm: float, inward_cm: float = 0.0, inner_only: bool = False) -> np.ndarray:
    """Move both brows down (negative: up) and towards the midline, with a smooth falloff."""
    v = v.copy()
    for brow, sx in ((ix.RIGHT_EYEBROW, 1), (ix.LEFT_EYEBROW, -1)):
        pts = np.array(brow)
        centre = v[pts[[4, 9]]].mean(0) if inner_only else v[pts].mean(0)
        w = _bump(v, centre, 1.0 if inner_only else 1.6) * (v[:, 1] < v[ix.RIGHT_EYE_TOP, 1] - 0.3)
        v[:, 1] += down_cm * w
        v[:, 0] += sx * inward_cm * w
    return v


def _evidence(v: np.ndarray) -> dict[str, float]:
    neutral, _ = g.measure(_v())
    raw = g.raw_evidence(g.measure(v)[0], neutral[0])
    return dict(zip(g.CHANNELS, raw[0], strict=True))


# --- measurements ---------------------------------------------------------------------------------
def test_hand_computed_measurements_on_canonical_face() -> None:
    v = _v()
    m = dict(zip(g.MEASUREMENTS, g.measure(v)[0][0], strict=True))
    assert m["jaw_drop"] == pytest.approx((v[152, 1] - v[1, 1]) / IOD, rel=1e-9)
    assert m["mouth_width"] == pytest.approx(np.linalg.norm(v[61, :2] - v[291, :2]) / IOD, rel=1e-9)
    mids_up, mids_low = [161, 160, 159, 158, 157], [163, 144, 145, 153, 154]
    ear = np.mean(np.linalg.norm(v[mids_up, :2] - v[mids_low, :2], axis=1)) / np.linalg.norm(
        v[33, :2] - v[133, :2]
    )
    assert m["eye_open_r"] == pytest.approx(ear, rel=1e-9)
    assert m["brow_inner_r"] == pytest.approx((v[133, 1] - (v[107, 1] + v[55, 1]) / 2) / IOD, rel=1e-9)
    assert m["brow_gap"] == pytest.approx(
        ((v[336, 0] + v[285, 0]) - (v[107, 0] + v[55, 0])) / 2 / IOD, rel=1e-9
    )
    # The canonical face is symmetric.
    for side in (
        "eye_open",
        "brow_inner",
        "brow_outer",
        "corner_up",
        "corner_out",
        "cheek_raise",
        "lid_brow",
    ):
        assert m[f"{side}_r"] == pytest.approx(m[f"{side}_l"], rel=1e-6)


@pytest.mark.parametrize(
    "angles",
    [
        (30, 0, 0),
        (-30, 0, 0),
        (0, 30, 0),
        (0, -30, 0),
        (0, 0, 30),
        (0, 0, -30),
        (25, -30, 20),
        (-30, 30, -30),
    ],
)
def test_measurements_invariant_to_pose_position_scale(angles: tuple[float, float, float]) -> None:
    face = brows(lip_corners_up(jaw_open(_v(), 0.6), 0.3), -0.4)  # an expressive face, not the template
    rot = Rotation.from_euler("XYZ", angles, degrees=True).as_matrix()
    moved = 37.5 * face @ rot.T + np.array([412.0, -80.0, 33.0])
    m0 = g.measure(face)[0][0]
    m1 = g.measure(moved)[0][0]
    np.testing.assert_allclose(m1, m0, rtol=0.02, atol=1e-9)
    np.testing.assert_allclose(g.measure(moved)[1][0], angles, atol=0.5)


# --- AU direction -----------------------------------------------------------------------------
BROW_AUS = ("AU01", "AU02", "AU04")


def test_jaw_open_raises_au25_au26_only() -> None:
    e = _evidence(jaw_open(_v(), 1.5))
    assert e["AU26"] > 0.2 and e["AU25"] > 0.5
    for au in BROW_AUS + ("AU05", "AU43"):
        assert abs(e[au]) < 1e-3, au
    inten, prob = g.evidence_to_intensity(np.array([[e["AU25"], e["AU26"], e["AU01"]]]))
    assert prob[0, 0] > 0.9 and prob[0, 1] > 0.75 and prob[0, 2] < 0.1


def test_lip_corners_up_raises_au12_not_au15_or_au20() -> None:
    e = _evidence(lip_corners_up(_v(), 0.6))
    assert e["AU12"] > 0.3 and e["AU12L"] > 0.3 and e["AU12R"] > 0.3
    assert e["AU15"] < 0 and e["AU20"] <= 0.05
    assert all(abs(e[au]) < 1e-3 for au in BROW_AUS)


def test_one_sided_corner_raise_is_sided() -> None:
    v = _v()
    w = _bump(v, v[ix.MOUTH_LEFT], 0.8)
    v[:, 1] -= 0.6 * w
    e = _evidence(v)
    assert e["AU12L"] > 0.3 and abs(e["AU12R"]) < 0.05


def test_eyes_closing_raises_au43_au45() -> None:
    half, shut = _evidence(eyes_close(_v(), 0.5)), _evidence(eyes_close(_v(), 0.95))
    assert 0 < half["AU43"] < shut["AU43"]
    assert shut["AU43"] > 0.9 and shut["AU45"] == pytest.approx(shut["AU43"])
    assert shut["AU05"] < 0
    assert all(abs(shut[au]) < 1e-3 for au in BROW_AUS + ("AU25", "AU26", "AU12"))


def test_brows_lowered_and_drawn_together_raise_au4() -> None:
    e = _evidence(brows(_v(), down_cm=0.7, inward_cm=0.4))
    assert e["AU04"] > 0.15 and e["AU04L"] > 0.15 and e["AU04R"] > 0.15
    assert e["AU01"] < 0 and e["AU02"] < 0
    # the forehead skin dragged with the brows nudges the rigid fit a little; effects stay < 0.05 intensity
    assert abs(e["AU26"]) < 0.01 and abs(e["AU12"]) < 0.01


def test_brow_raise_raises_au1_au2() -> None:
    e = _evidence(brows(_v(), down_cm=-1.0))
    assert e["AU01"] > 0.15 and e["AU02"] > 0.15 and e["AU04"] < 0
    inner = _evidence(brows(_v(), down_cm=-1.0, inner_only=True))
    assert inner["AU01"] > 0.15 and inner["AU01"] > 2 * inner["AU02"]


# --- outputs ---------------------------------------------------------------------------------------
def test_intensity_and_probability_mapping() -> None:
    raw = np.array([[-0.5, 0.0, 0.2, 0.4, 1.0, 2.0]])
    inten, prob = g.evidence_to_intensity(raw)
    np.testing.assert_allclose(inten[0], [0, 0, 1, 2, 5, 5], atol=1e-6)
    np.testing.assert_allclose(prob[0, 2], 0.5, atol=1e-6)
    assert np.all(np.diff(prob[0]) > 0)


def test_columns_and_weak_targets() -> None:
    pts = np.stack([_v(), jaw_open(_v(), 1.5), lip_corners_up(_v(), 0.6)]) * 20.0
    neutral = g.measure(_v())[0][0]
    cols = g.geometry_columns(pts, neutral=neutral)
    assert "AU12_intensity_geom" in cols and "AU12L_prob_geom" in cols and "geom_jaw_drop" in cols
    assert all(c.shape == (3,) for c in cols.values())
    assert cols["AU26_intensity_geom"][1] > 1 and cols["AU12_intensity_geom"][2] > 1
    inten, prob, mask = g.weak_au_targets(pts, AUS_17, neutral=neutral)
    assert inten.shape == prob.shape == (3, len(AUS_17)) and mask.dtype == bool
    covered = {au for au, m in zip(AUS_17, mask, strict=True) if m}
    assert covered == {1, 2, 4, 5, 6, 9, 10, 12, 15, 17, 20, 23, 25, 26}
    assert not inten[:, ~mask].any() and not prob[:, ~mask].any()
    k12 = AUS_17.index(12)
    assert inten[2, k12] == pytest.approx(cols["AU12_intensity_geom"][2])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="MEASUREMENTS order"):
        g.raw_evidence(np.zeros((2, 5)), np.zeros(5))
    with pytest.raises(ValueError, match="face_ids"):
        g.geometry_columns(_v(), calibrator=object(), neutral=g.measure(_v())[0][0])


def test_shipped_population_neutral() -> None:
    data = g._neutral_file()
    assert data["source"]["rows"] > 1000 and 0 <= data["source"]["facemesh_failure_rate"] < 0.2
    neutral = g.population_neutral()
    up, down = g.population_spread()
    assert neutral.shape == up.shape == down.shape == (len(g.MEASUREMENTS),)
    assert np.all(up > 0) and np.all(down > 0)
    m = dict(zip(g.MEASUREMENTS, neutral, strict=True))
    assert 0.15 < m["eye_open_r"] < 0.4 and 0.15 < m["eye_open_l"] < 0.4
    assert m["brow_inner_r"] > 0 and m["corner_up_r"] < 0 < m["mouth_width"]
    # The canonical face is a plausible neutral face: no channel beyond intensity 2.5 against it.
    raw = g.raw_evidence(g.measure(_v())[0])
    assert np.abs(raw).max() < 0.5
    cols = g.geometry_columns(_v()[None] * 30.0)  # default = population neutral
    assert cols["AU12_prob_geom"].shape == (1,) and np.isfinite(cols["AU12_prob_geom"]).all()


def test_empty_batch() -> None:
    from facebehavior.temporal.calibration import PersonCalibrator

    cols = g.geometry_columns(np.zeros((0, 468, 3)), face_ids=np.zeros(0, int), calibrator=PersonCalibrator())
    assert cols["AU12_prob_geom"].shape == (0,) and cols["geom_jaw_drop"].shape == (0,)
    inten, prob, mask = g.weak_au_targets(np.zeros((0, 468, 3)), (1, 12, 14))
    assert inten.shape == prob.shape == (0, 3) and mask.tolist() == [True, True, False]
