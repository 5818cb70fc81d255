"""Optical flow (temporal.flow): accuracy on known motion, AUNets' flow-image encoding by hand."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from facebehavior.temporal import flow as F

cv2 = pytest.importorskip("cv2")


def _inner(shape):
    m = np.zeros(shape[:3], bool)
    m[:, 8:-8, 8:-8] = True
    return m


@pytest.mark.parametrize("motion", [{"shift": (1.5, -0.75)}, {"shift": (0.0, 0.0), "rotate_deg": 2.0}])
def test_dis_recovers_known_motion(motion):
    frames, truth = F.synthetic_motion(size=96, frames=4, **motion)
    flow = F.estimate_flows(frames, method="dis")
    assert flow.shape == truth.shape == (3, 96, 96, 2) and flow.dtype == np.float32
    epe = F.endpoint_error(flow, truth, _inner(flow.shape))
    assert epe < 0.15, epe
    # A wrong sign or a swapped x/y would be off by about the motion itself.
    assert F.endpoint_error(flow[..., ::-1], truth, _inner(flow.shape)) > 0.5 or motion["shift"] == (0, 0)
    assert F.endpoint_error(-flow, truth, _inner(flow.shape)) > 0.5


def test_synthetic_truth_is_the_rigid_motion():
    _, truth = F.synthetic_motion(size=9, frames=2, shift=(1.0, 2.0), rotate_deg=90.0)
    # Rotation by 90° about the centre (4, 4) then +(1, 2): pixel (x, y) = (8, 4) goes to (4, 8) + (1, 2).
    np.testing.assert_allclose(truth[0, 4, 8], [5 - 8, 10 - 4], atol=1e-5)


def test_flow_image_hand_values():
    f = np.zeros((4, 5, 2))
    f[..., 0], f[..., 1] = 2.0, -1.0  # uniform motion: each component is ±1 RMS
    img = F.flow_to_image(f)
    # R = 128 + 127 * (2 / 2) / 3, G = 128 − 127 / 3, B = 255 * sqrt(5) / 16.
    np.testing.assert_array_equal(img[0, 0], [170, 86, 36])
    assert img.dtype == np.uint8 and (img == img[0, 0]).all()
    np.testing.assert_array_equal(
        F.flow_to_image(np.zeros((2, 3, 3, 2))), np.full((2, 3, 3, 3), (128, 128, 0))
    )
    # One moving pixel among 16: RMS = 0.4 / 4 = 0.1 px, so it sits at +4 RMS and clips to 255;
    # a 0.01-px field stays near 128 because of the 0.05-px RMS floor.
    g = np.zeros((4, 4, 2))
    g[0, 0, 0] = 0.4
    assert F.flow_to_image(g)[0, 0, 0] == 255 and F.flow_to_image(g)[1, 1, 0] == 128
    assert abs(int(F.flow_to_image(np.full((3, 3, 2), 0.01))[0, 0, 0]) - 128) <= 9
    with pytest.raises(ValueError, match="NaN"):
        F.flow_to_image(np.full((2, 2, 2), np.nan))


def test_track_flow_images_pairing_and_flip():
    frames, _ = F.synthetic_motion(size=64, frames=3, shift=(1.0, 0.0))
    imgs = F.track_flow_images(frames)
    assert imgs.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(imgs[0], imgs[1])  # the first frame reuses the 0 → 1 motion
    assert imgs[2, 16:-16, 16:-16, 0].mean() > 140  # rightward motion: R above 128
    one = F.track_flow_images(frames[:1])
    np.testing.assert_array_equal(one, np.full((1, 64, 64, 3), (128, 128, 0)))
    # Mirrored frames move left: their flow image is the mirrored image with x negated.
    mirrored = F.track_flow_images(frames[:, :, ::-1])
    flipped = F.flip_flow_image(imgs)
    assert np.abs(mirrored[:, 16:-16, 16:-16].astype(int) - flipped[:, 16:-16, 16:-16]).mean() < 6
    np.testing.assert_array_equal(F.flip_flow_image(np.array([[[128, 3, 9], [170, 5, 7]]], np.uint8)),
                                  [[[86, 5, 7], [128, 3, 9]]])  # fmt: skip


def test_bad_input_and_missing_opencv(monkeypatch):
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="same size"):
        F.estimate_flow(a, np.zeros((9, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        F.estimate_flow(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="unknown flow method 'brox'"):
        F.estimate_flow(a, a, method="brox")
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError, match=r"facebehavior\[flow\]"):
        F.estimate_flow(a, a)
    assert F.available_methods() == ()
