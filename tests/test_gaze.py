"""68-point subset, millimetre landmarks and iris-based gaze (indices, face.camera, face.gaze)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from facebehavior.face import camera, gaze
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.pose import align_to_canonical, canonical_face
from facebehavior.io.openface import to_openface
from facebehavior.schema import eye_landmark_columns, gaze_columns, landmark68_columns

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face_jpg():
    """samples/face.jpg (four faces) with FaceMesh-468 and Face Mesh V2 landmarks from this package."""
    torch.set_num_threads(1)
    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker
    from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

    img = np.asarray(Image.open(REPO / "samples" / "face.jpg").convert("RGB"))
    det = create_detector("blazeface_full")(img[None])
    v1 = FaceMeshLandmarker()(img[None], det).points
    v2 = FaceMeshV2Landmarker()(img[None], det, refine=1)
    assert len(det) == 4 and np.all(v2.presence > 0.9)
    return img, v1, v2.points


def _gaze_dir(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """Unit vector turned yaw to the image right and pitch downwards from (0, 0, -1)."""
    y, p = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    return np.array([np.sin(y) * np.cos(p), np.sin(p), -np.cos(y) * np.cos(p)])


def test_landmarks68_order_on_real_faces(face_jpg):
    """iBUG ordering properties hold on FaceMesh output, in each face's frontal frame and the image."""
    _, v1, v2 = face_jpg
    for pts in (v1, v2):
        frontal, _ = align_to_canonical(pts[:, : idx.NUM_POINTS])
        lm = idx.landmarks68(frontal)
        img = idx.landmarks68(pts)
        assert lm.shape == (4, 68, 3) and img.shape == (4, 68, 3)
        x, y = lm[..., 0], lm[..., 1]
        # The jaw runs down from the subject's right ear to the chin and up to the left ear; near the
        # ears it is nearly vertical, so x must grow strictly only along the lower jaw.
        assert np.all(np.diff(y[:, :9], axis=1) > 0) and np.all(np.diff(y[:, 8:17], axis=1) < 0)
        assert (
            np.all(np.diff(x[:, 2:15], axis=1) > 0)
            and np.all(x[:, 0] < x[:, 8])
            and np.all(x[:, 8] < x[:, 16])
        )
        assert np.all(np.argmax(img[:, :17, 1], axis=1) == 8)  # chin (8) lowest in the image
        assert np.all(y[:, 17:27].max(1) < y[:, 36:48].min(1))  # brows above the eyes
        assert np.all(np.diff(x[:, 17:27], axis=1) > 0)  # brows right -> left
        assert np.all(np.diff(y[:, 27:31], axis=1) > 0)  # nose bridge runs down to the tip
        assert np.all(np.diff(x[:, 31:36], axis=1) > 0)  # nostrils right -> left
        assert np.all(y[:, 30] < y[:, 33])  # nose tip above the subnasale
        assert np.all(x[:, 36] < x[:, 39]) and np.all(x[:, 39] < x[:, 42]) and np.all(x[:, 42] < x[:, 45])
        assert np.all(y[:, 37:39].max(1) < y[:, 40:42].min(1))  # upper lid above lower lid
        assert np.all(x[:, 48] < x[:, 54]) and np.all(y[:, 51] < y[:, 62]) and np.all(y[:, 66] < y[:, 57])
        assert np.all(y[:, 33] < y[:, 51]) and np.all(y[:, 57] < y[:, 8])  # nose above lips above chin
        # Image-side check: subject's right eye (36-41) appears on the image left of the left eye.
        assert np.all(img[:, 36:42, 0].mean(1) < img[:, 42:48, 0].mean(1))


def test_landmarks68_shapes_and_errors():
    v = canonical_face().vertices
    one = idx.landmarks68(v)
    assert one.shape == (1, 68, 3)
    np.testing.assert_allclose(one[0, 30], v[4])  # single vertex
    np.testing.assert_allclose(one[0, 27], (v[168] + v[6]) / 2)  # mean of a pair
    v2 = np.concatenate([v, np.zeros((10, 3))])
    np.testing.assert_allclose(idx.landmarks68(v2[None, :, :2]), one[..., :2])
    with pytest.raises(ValueError, match="FaceMesh"):
        idx.landmarks68(np.zeros((2, 68, 2)))


def test_gaze_recovers_known_directions_far_camera():
    """Nearly orthographic camera (5 m): the model inverts exactly up to perspective residue."""
    dirs = [(0, 0), (20, 0), (-25, 10), (0, -15), (15, 20)]
    g = np.stack([_gaze_dir(a, b) for a, b in dirs])
    pose = np.array([[0, 0, 0], [10, -20, 5], [-10, 25, -8], [5, 10, 0], [0, -30, 10]], dtype=float)
    pts, truth = gaze.render_synthetic_face(g, pose, distance_mm=5000.0, focal=6000.0)
    est = gaze.estimate_gaze(pts)
    err = np.rad2deg(np.arccos(np.clip((est.vectors * truth[:, None]).sum(-1), -1, 1)))
    assert err.max() < 1.0, err
    np.testing.assert_allclose(np.linalg.norm(est.vectors, axis=-1), 1.0, atol=1e-9)


def test_gaze_sign_conventions():
    """OpenFace: angle_x > 0 looking to the image right, angle_y > 0 looking down; (0,0,-1) is 0."""
    g = np.stack([_gaze_dir(0, 0), _gaze_dir(20, 0), _gaze_dir(-20, 0), _gaze_dir(0, 15), _gaze_dir(0, -15)])
    pts, _ = gaze.render_synthetic_face(g, np.zeros((5, 3)), distance_mm=5000.0, focal=6000.0)
    ang = np.rad2deg(gaze.estimate_gaze(pts).angles)
    np.testing.assert_allclose(ang[0], [0, 0], atol=0.6)
    np.testing.assert_allclose(ang[1:, 0], [20, -20, 0, 0], atol=1.0)
    np.testing.assert_allclose(ang[1:, 1], [0, 0, 15, -15], atol=1.0)


def test_gaze_angles_hand_computed():
    a = np.deg2rad(30.0)
    v = np.array(
        [[[np.sin(a), 0, -np.cos(a)], [np.sin(a), 0, -np.cos(a)]], [[0, 0, -1], [0, np.sin(a), -np.cos(a)]]]
    )
    ang = gaze.gaze_angles(v)
    np.testing.assert_allclose(ang[0], [a, 0.0])
    mean = np.array([0, np.sin(a) / 2, -(1 + np.cos(a)) / 2])
    np.testing.assert_allclose(ang[1], [0.0, np.arctan2(mean[1], -mean[2])])


def test_eye_landmark_layout(face_jpg):
    _, _, v2 = face_jpg
    eyes = gaze.eye_landmarks(v2)
    lm68 = idx.landmarks68(v2)
    assert eyes.shape == (4, 56, 3)
    for e, (c, first68) in enumerate(((idx.RIGHT_IRIS_CENTER, 36), (idx.LEFT_IRIS_CENTER, 42))):
        ring = eyes[:, 28 * e : 28 * e + 8]
        np.testing.assert_allclose(ring.mean(1)[:, :2], v2[:, c, :2], atol=1e-4)  # iris centre = ring mean
        assert np.all(ring[:, 0, 1] < ring[:, 4, 1]) and np.all(ring[:, 2, 0] > ring[:, 6, 0])  # top, right
        lids = eyes[:, 28 * e + 8 : 28 * e + 20]
        # OpenFace eye points 8, 10, 12, 14, 16, 18 sit on 68-point landmarks first68 ... first68 + 5.
        np.testing.assert_allclose(lids[:, ::2], lm68[:, first68 : first68 + 6])
        assert np.isnan(eyes[:, 28 * e + 20 : 28 * e + 28]).all()  # pupil ring not estimated
    # Eye 0 is the subject's right eye, on the image left.
    assert np.all(eyes[:, 8:20, 0].mean(1) < eyes[:, 36:48, 0].mean(1))


def test_outputs_on_real_faces_feed_openface(face_jpg):
    img, _, v2 = face_jpg
    size = img.shape[:2]
    cols = camera.landmark_output_columns(v2, size) | gaze.gaze_output_columns(v2, size)
    expected = landmark68_columns() + landmark68_columns(True) + ["pose_Tx", "pose_Ty", "pose_Tz"]
    expected += gaze_columns() + eye_landmark_columns() + eye_landmark_columns(True)
    assert sorted(cols) == sorted(expected)
    fit = camera.metric_landmarks(v2, size)
    # Outer eye corners ~9 cm apart (canonical size); OpenFace's default camera puts these faces ~1 m away.
    corners = np.linalg.norm(fit.points[:, 33] - fit.points[:, 263], axis=1)
    np.testing.assert_allclose(corners, 89.0, rtol=0.15)  # FaceMesh depth is only roughly metric: 79-91 mm
    assert np.all((cols["pose_Tz"] > 500) & (cols["pose_Tz"] < 2000))
    # Back-projection is consistent: X/Z * f + cx gives the pixel x again.
    np.testing.assert_allclose(
        cols["X_36"] / cols["Z_36"] * fit.focal + size[1] / 2, cols["x_36"], rtol=1e-4, atol=1e-2
    )
    ang = np.rad2deg(np.stack([cols["gaze_angle_x"], cols["gaze_angle_y"]], 1))
    assert np.all(np.abs(ang) < 30)  # people in this photo look roughly at the camera
    df = pd.DataFrame(
        {"frame": 0, "face_id": np.arange(4), "timestamp": 0.0, "success": 1, "confidence": 1.0}
    )
    of = to_openface(pd.concat([df, pd.DataFrame(cols)], axis=1))
    assert np.isfinite(of[["x_36", "Y_8", "Z_30", "gaze_0_z", "eye_lmk_X_10", "pose_Tz"]].to_numpy()).all()


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="--landmarks v2"):
        gaze.estimate_gaze(np.zeros((1, 468, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gaze.estimate_gaze(np.full((1, 478, 3), np.nan))
    with pytest.raises(ValueError, match="positive"):
        camera.default_focal_length(0, 480)
