"""Person-specific calibration: a resting face with raised brows must not read as AU1/AU2."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facebehavior.face import geometry as g
from facebehavior.face.landmarks import indices as ix
from facebehavior.face.pose import canonical_face
from facebehavior.temporal.calibration import PersonCalibrator, calibrate_offline, split_eye_closure

REST, RAISE = slice(0, 300), slice(300, 360)  # then rest again until 450


def _raise_brows(v: np.ndarray, cm: float) -> np.ndarray:
    v = v.copy()
    for brow in (ix.RIGHT_EYEBROW, ix.LEFT_EYEBROW):
        centre = v[list(brow)].mean(0)
        w = np.exp(-np.sum((v[:, :2] - centre[:2]) ** 2, axis=1) / (2 * 3.0**2))
        band = (v[:, 1] < v[ix.RIGHT_EYE_TOP, 1] - 0.3) & (v[:, 1] > -6.0)  # brows, not the forehead
        v[:, 1] -= cm * w * band
    return v


@pytest.fixture(scope="module")
def video() -> tuple[np.ndarray, np.ndarray]:
    """450 frames of one person whose resting brows sit 0.8 cm high; a real raise at frames 300–359.

    Returns (raw evidence relative to the population neutral = the canonical face, channel index map).
    """
    rng = np.random.default_rng(0)
    v0 = canonical_face().vertices
    rest, raised = _raise_brows(v0, 0.8), _raise_brows(v0, 1.8)
    faces = np.repeat(rest[None], 450, axis=0)
    faces[RAISE] = raised
    angles = np.cumsum(rng.normal(0, 0.5, size=(450, 3)), axis=0).clip(-20, 20)  # head wanders
    rots = Rotation.from_euler("XYZ", angles, degrees=True).as_matrix()
    pts = 25.0 * np.einsum("fij,fnj->fni", rots, faces) + np.array([320.0, 240.0, 0.0])
    pts += rng.normal(0, 0.03 * 25.0, size=pts.shape)  # ~0.3 mm landmark jitter
    neutral = g.measure(v0)[0][0]
    raw = g.analyze_geometry(pts, neutral).raw
    return raw, {name: i for i, name in enumerate(g.CHANNELS)}


def _prob(raw: np.ndarray, col: dict[str, int], au: str) -> np.ndarray:
    return g.evidence_to_intensity(raw)[1][:, col[au]]


def test_uncalibrated_resting_face_reads_as_brow_raise(video) -> None:
    raw, col = video
    assert (_prob(raw, col, "AU01")[REST] > 0.5).mean() > 0.9  # the problem calibration must fix


def test_offline_calibration_removes_resting_brows_keeps_true_raise(video) -> None:
    raw, col = video
    cal, base = calibrate_offline(np.zeros(450, dtype=int), raw)
    rest = np.r_[0:300, 360:450]
    for au in ("AU01", "AU02"):
        p = _prob(cal, col, au)
        assert (p[rest] > 0.5).mean() < 0.05, au
        assert (p[RAISE] > 0.5).mean() > 0.95, au
    assert set(base) == {0} and base[0].shape == (len(g.CHANNELS),)


def test_online_calibration_chunked_equals_one_shot_and_is_correct(video) -> None:
    raw, col = video
    ids = np.zeros(450, dtype=int)
    one = PersonCalibrator(window=300, min_frames=30).update(ids, raw)
    cal = PersonCalibrator(window=300, min_frames=30)
    chunked = np.concatenate([cal.update(ids[s : s + 64], raw[s : s + 64]) for s in range(0, 450, 64)])
    np.testing.assert_allclose(chunked, one, atol=1e-12)
    for au in ("AU01", "AU02"):
        p = _prob(one, col, au)
        assert (p[60:300] > 0.5).mean() < 0.05, au  # after warm-up
        assert (p[RAISE] > 0.5).mean() > 0.95, au


def test_online_is_causal_and_per_face() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2))
    ids = np.array([7, 9] * 20)
    cal = PersonCalibrator(percentile=50, window=10, min_frames=1).update(ids, x)
    for k in (0, 5, 19, 39):
        same = np.flatnonzero(ids == ids[k])
        past = same[same <= k][-10:]
        np.testing.assert_allclose(cal[k], x[k] - np.median(x[past], axis=0), atol=1e-12)
    # changing the future does not change the past
    y = x.copy()
    y[30:] += 100
    cal2 = PersonCalibrator(percentile=50, window=10, min_frames=1).update(ids, y)
    np.testing.assert_allclose(cal2[:30], cal[:30])


def test_offline_matches_numpy_percentile() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3))
    ids = rng.integers(0, 3, size=100)
    out, base = calibrate_offline(ids, x, percentile=np.array([10.0, 25.0, 50.0]))
    for fid in range(3):
        ref = np.array([np.percentile(x[ids == fid, c], q) for c, q in enumerate((10, 25, 50))])
        np.testing.assert_allclose(base[fid], ref)
        np.testing.assert_allclose(out[ids == fid], x[ids == fid] - ref)


def test_warm_up_shrinks_baseline() -> None:
    x = np.ones((10, 1))
    out = PersonCalibrator(percentile=50, window=100, min_frames=4).update(np.zeros(10), x)
    np.testing.assert_allclose(out[:, 0], [0.75, 0.5, 0.25, 0, 0, 0, 0, 0, 0, 0])


def test_split_eye_closure() -> None:
    closed = np.zeros(60, dtype=bool)
    closed[5:9] = True  # 4 frames = 0.13 s at 30 fps: blink
    closed[20:50] = True  # 1 s: eyes closed
    blink, sustained = split_eye_closure(closed, fps=30)
    assert blink[5:9].all() and blink.sum() == 4
    assert sustained[20:50].all() and sustained.sum() == 30


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="face_ids"):
        calibrate_offline(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        PersonCalibrator().update(np.zeros(2), np.array([[np.nan], [0.0]]))
