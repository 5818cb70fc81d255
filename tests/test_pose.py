"""Head pose from FaceMesh landmarks against the canonical face; rotations built with scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from facebehavior.face.pose import (
    align_to_canonical,
    canonical_face,
    euler_to_rotation,
    head_pose,
    rotation_to_euler,
    similarity_fit,
)

# Landmark ids from the FaceMesh topology (subject's right/left outer eye corner, nose tip, chin).
R_EYE_OUTER, L_EYE_OUTER, NOSE_TIP, CHIN = 33, 263, 1, 152


def _pose_face(angles_deg: np.ndarray, scale: float = 1.0, shift: np.ndarray | None = None) -> np.ndarray:
    """Canonical face posed by intrinsic x-y-z Euler angles (scipy's 'XYZ' = Rx·Ry·Rz)."""
    v = canonical_face().vertices
    rots = Rotation.from_euler("XYZ", np.atleast_2d(angles_deg), degrees=True).as_matrix()
    out = scale * np.einsum("fij,nj->fni", rots, v)
    if shift is not None:
        out = out + shift
    return out


def test_canonical_face_data() -> None:
    face = canonical_face()
    assert face.vertices.shape == (468, 3)
    assert face.triangles.shape == (898, 3) and face.triangles.max() == 467
    assert face.procrustes_ids.shape == (33,)
    assert abs(face.weights().sum() - 1) < 1e-9
    v = face.vertices
    # Camera frame: subject's right eye on the image left, chin below the eyes, nose nearest the camera.
    assert v[R_EYE_OUTER, 0] < 0 < v[L_EYE_OUTER, 0]
    assert v[CHIN, 1] > v[R_EYE_OUTER, 1]
    assert v[NOSE_TIP, 2] < v[R_EYE_OUTER, 2]
    # Left/right mirror symmetry of the model.
    assert np.isclose(v[R_EYE_OUTER, 0], -v[L_EYE_OUTER, 0])


def test_frontal_canonical_is_zero_pose() -> None:
    np.testing.assert_allclose(head_pose(canonical_face().vertices), 0.0, atol=1e-4)


def test_known_rotations_recovered() -> None:
    rng = np.random.default_rng(0)
    angles = np.concatenate(
        [
            np.array(
                [[30, 0, 0], [-30, 0, 0], [0, 30, 0], [0, -30, 0], [0, 0, 30], [0, 0, -30], [20, -35, 15]]
            ),
            rng.uniform(-45, 45, size=(40, 3)),
        ]
    )
    pts = _pose_face(angles, scale=23.0, shift=np.array([300.0, 200.0, 5.0]))
    np.testing.assert_allclose(head_pose(pts), angles, atol=0.5)
    # and torch input of the same
    np.testing.assert_allclose(head_pose(torch.from_numpy(pts).float()), angles, atol=0.5)


def test_sign_conventions() -> None:
    v = canonical_face().vertices
    nose_dx = lambda p: p[0, NOSE_TIP, 0] - p[0, :, 0].mean()  # noqa: E731
    nose_dy = lambda p: p[0, NOSE_TIP, 1] - p[0, :, 1].mean()  # noqa: E731
    assert nose_dx(_pose_face(np.array([0, 20, 0]))) < nose_dx(v[None])  # yaw > 0: nose to the image left
    assert nose_dy(_pose_face(np.array([20, 0, 0]))) > nose_dy(v[None])  # pitch > 0: nose down
    p = _pose_face(np.array([0, 0, 20]))  # roll > 0: subject's left eye (image right) drops
    assert p[0, L_EYE_OUTER, 1] > p[0, R_EYE_OUTER, 1]


def test_robust_to_landmark_noise_and_expression() -> None:
    rng = np.random.default_rng(1)
    angles = np.array([[10.0, -25.0, 5.0]])
    pts = _pose_face(angles, scale=20.0)
    pts = pts + rng.normal(0, 0.05 * 20, size=pts.shape)  # 0.5 mm landmark noise at face scale
    jaw = canonical_face().vertices[:, 1] > 5.0  # lower lip, chin and jaw line below the mouth
    pts[0, jaw] += (
        20.0 * np.array([0.0, 1.0, 0.0]) @ Rotation.from_euler("XYZ", angles[0], degrees=True).as_matrix().T
    )
    np.testing.assert_allclose(head_pose(pts), angles, atol=1.0)  # a 1 cm jaw drop


def test_euler_roundtrip_and_scipy_agreement() -> None:
    rng = np.random.default_rng(2)
    angles = rng.uniform(-80, 80, size=(50, 3))
    rot = euler_to_rotation(angles)
    np.testing.assert_allclose(rot, Rotation.from_euler("XYZ", angles, degrees=True).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rotation_to_euler(rot), angles, atol=1e-9)


def test_similarity_fit_is_proper_rotation_and_align_inverts() -> None:
    pts = _pose_face(
        np.array([[15.0, 25.0, -10.0], [0.0, 0.0, 0.0]]), scale=7.0, shift=np.array([1.0, 2.0, 3.0])
    )
    s, r, t = similarity_fit(canonical_face().vertices, pts)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-9)
    np.testing.assert_allclose(s, 7.0, rtol=1e-9)
    frontal, pose = align_to_canonical(pts)
    np.testing.assert_allclose(frontal, np.broadcast_to(canonical_face().vertices, frontal.shape), atol=1e-8)
    np.testing.assert_allclose(pose[0], [15.0, 25.0, -10.0], atol=1e-6)


def test_bad_input_messages() -> None:
    with pytest.raises(ValueError, match=r"\(F, 468, 3\)"):
        head_pose(np.zeros((2, 68, 2)))
    bad = _pose_face(np.zeros(3))
    bad[0, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        head_pose(bad)


def test_real_photos_mirror_and_sign() -> None:
    """FaceMesh on real photos and their mirror images: yaw and roll flip sign, pitch stays."""
    from pathlib import Path

    from PIL import Image

    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

    torch.set_num_threads(1)
    det, lm = create_detector("blazeface_full"), FaceMeshLandmarker()
    photos = Path(__file__).resolve().parent / "fixtures" / "photos"
    checked = 0
    for name in ("group3.jpg", "group5.jpg"):
        img = np.asarray(Image.open(photos / name).convert("RGB"))
        pair = np.stack([img, img[:, ::-1].copy()])
        d = det(pair)
        out = lm(pair, d)
        pose = head_pose(out.points)
        centre = (d.boxes[:, :2] + d.boxes[:, 2:]) / 2
        orig, flip = np.flatnonzero(d.frame_index == 0), np.flatnonzero(d.frame_index == 1)
        for i in orig:
            mirrored = np.array([img.shape[1] - centre[i, 0], centre[i, 1]])
            j = flip[np.argmin(np.linalg.norm(centre[flip] - mirrored, axis=1))]
            assert abs(pose[i, 1] + pose[j, 1]) < 8 and abs(pose[i, 2] + pose[j, 2]) < 5, (
                name,
                pose[i],
                pose[j],
            )
            assert abs(pose[i, 0] - pose[j, 0]) < 6, (name, pose[i], pose[j])
            # yaw > 0 = turned to the subject's right: nose tip left of the outer eye corners' midpoint
            p = out.points[i]
            nose_offset = p[NOSE_TIP, 0] - (p[R_EYE_OUTER, 0] + p[L_EYE_OUTER, 0]) / 2
            if abs(pose[i, 1]) > 10:
                assert np.sign(pose[i, 1]) == -np.sign(nose_offset), (name, pose[i], nose_offset)
            checked += 1
    assert checked >= 6
