"""FaceMesh port against golden outputs of independent runtimes on real face crops.

Goldens (``tests/fixtures/mediapipe/facemesh.npz``, made once by ``tools/golden_mediapipe.py``):
TF.js running the same graph file the converter reads, LiteRT running MediaPipe's own
``face_landmark.tflite``, and a per-point re-implementation of MediaPipe's landmark projection.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebehavior.face.detect import create_detector
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.landmarks.facemesh import (
    FaceMeshLandmarker,
    FaceRoi,
    crop_rois,
    keypoints5,
    project_landmarks,
    refine_detections,
    roi_from_detections,
    roi_from_landmarks,
    roi_matrices,
)
from facebehavior.types import Detections, Landmarks

FIX = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(FIX / "mediapipe" / "facemesh.npz"))


@pytest.fixture(scope="module")
def lm():
    return FaceMeshLandmarker()


def _image(source: str) -> np.ndarray:
    photo, box = str(source).split(":")
    x1, y1, x2, y2 = (int(v) for v in box.split(","))
    return np.asarray(Image.open(FIX / "photos" / photo).convert("RGB"))[y1:y2, x1:x2].copy()


def _roi(row: np.ndarray, frame: int = 0) -> FaceRoi:
    return FaceRoi(
        frame_index=np.array([frame], np.int64),
        center=row[None, :2].astype(np.float32),
        size=row[2:3].astype(np.float32),
        angle=row[3:4].astype(np.float32),
    )


def test_raw_outputs_match_tfjs(golden, lm):
    mesh, presence = lm.raw(torch.from_numpy(golden["inputs"]).permute(0, 3, 1, 2).float())
    assert mesh.shape == (len(golden["inputs"]), 468, 3)
    np.testing.assert_allclose(mesh.reshape(len(mesh), -1), golden["tfjs_mesh"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(presence, golden["tfjs_presence"], atol=1e-5)
    assert np.all(presence[:-1] > 0.99) and presence[-1] < 0.05  # four faces, then background


def test_raw_outputs_match_mediapipe_tflite(golden, lm):
    mesh, presence = lm.raw(torch.from_numpy(golden["inputs"]).permute(0, 3, 1, 2).float())
    np.testing.assert_allclose(mesh.reshape(len(mesh), -1), golden["tflite_mesh"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(presence, golden["tflite_presence"], atol=1e-4)


def test_projection_matches_reference(golden, lm):
    mesh, _ = lm.raw(torch.from_numpy(golden["inputs"]).permute(0, 3, 1, 2).float())
    for i, row in enumerate(golden["rois"]):
        pts = project_landmarks(mesh[i : i + 1], _roi(row))
        # 2e-4 px: float32 resolution of coordinates in the hundreds of pixels is 3-6e-5.
        np.testing.assert_allclose(pts[0], golden["ref_points"][i], atol=2e-4, rtol=0)


def test_end_to_end_on_photos(golden, lm):
    """Photo + ROI → crop identical to the stored one → landmarks in frame pixels match."""
    for i, (src, row) in enumerate(zip(golden["sources"], golden["rois"], strict=True)):
        img = _image(src)
        crop = crop_rois(img[None], _roi(row))[0].permute(1, 2, 0).numpy().astype(np.uint8)
        np.testing.assert_array_equal(crop, golden["inputs"][i])
        out = lm.from_rois(img[None], _roi(row))
        assert isinstance(out, Landmarks) and out.points.shape == (1, 468, 3)
        np.testing.assert_allclose(out.points[0], golden["ref_points"][i], atol=2e-4, rtol=0)


def test_batched_over_frames_and_faces(golden, lm):
    """Several faces in several frames in one call equal one face at a time."""
    srcs = golden["sources"][:4]
    imgs = [_image(s) for s in srcs]
    h, w = max(i.shape[0] for i in imgs), max(i.shape[1] for i in imgs)
    frames = np.zeros((len(imgs), h, w, 3), np.uint8)
    for k, im in enumerate(imgs):
        frames[k, : im.shape[0], : im.shape[1]] = im
    order = [2, 0, 3, 1]  # faces not grouped by frame
    rois = FaceRoi(
        frame_index=np.array(order, np.int64),
        center=golden["rois"][order, :2],
        size=golden["rois"][order, 2],
        angle=golden["rois"][order, 3],
    )
    out = lm.from_rois(frames, rois)
    for j, k in enumerate(order):
        one = lm.from_rois(frames[k][None], _roi(golden["rois"][k]))
        np.testing.assert_allclose(out.points[j], one.points[0], atol=1e-3)


def test_detector_to_landmarks_and_keypoints(lm):
    """Full pipeline on a photo: detections → landmarks → 5 keypoints in schema order."""
    img = np.asarray(Image.open(FIX / "photos" / "group3.jpg").convert("RGB"))
    det = create_detector("blazeface_full")(img[None])
    out = lm(img[None], det)
    assert out.points.shape == (len(det), 468, 3) and np.all(out.presence > 0.9)
    k5 = keypoints5(out.points)
    # Subject's right eye and mouth corner appear on the image left for these upright faces.
    assert np.all(k5[:, 0, 0] < k5[:, 1, 0]) and np.all(k5[:, 3, 0] < k5[:, 4, 0])
    assert np.all(k5[:, 2, 1] > k5[:, :2, 1].max(1)) and np.all(k5[:, 3:, 1] > k5[:, 2:3, 1])
    # FaceMesh eye centres agree with BlazeFace's eye keypoints within a quarter of the eye distance.
    iod = np.linalg.norm(k5[:, 1] - k5[:, 0], axis=1)
    assert np.all(np.linalg.norm(k5[:, :2] - det.keypoints[:, :2], axis=2).max(1) < 0.25 * iod)
    ref = refine_detections(det, out)
    np.testing.assert_array_equal(ref.boxes, det.boxes)
    np.testing.assert_allclose(ref.keypoints, k5)
    right = out.points[:, list(idx.RIGHT_EYE), 0].mean(1)
    left = out.points[:, list(idx.LEFT_EYE), 0].mean(1)
    assert np.all(right < left)


def test_tracking_roi_is_stable(golden, lm):
    """ROI from landmarks → landmarks again: a still face stays put (MediaPipe-style tracking)."""
    img = _image(golden["sources"][0])
    first = lm.from_rois(img[None], _roi(golden["rois"][0]))
    roi = roi_from_landmarks(first.points)
    again = lm.from_rois(img[None], roi)
    scale = np.linalg.norm(first.points[0, idx.LEFT_EYE_OUTER, :2] - first.points[0, idx.RIGHT_EYE_OUTER, :2])
    err = np.linalg.norm(again.points[0, :, :2] - first.points[0, :, :2], axis=1)
    assert np.median(err) < 0.03 * scale and again.presence[0] > 0.99


def test_tracking_follows_a_moving_face(golden, lm):
    """Previous frame's landmarks → ROI → landmarks on a frame where the face moved."""
    img = _image(golden["sources"][0])
    first = lm.from_rois(img[None], _roi(golden["rois"][0]))
    dx, dy = 14, -9  # the whole scene moves right and up
    moved = np.zeros_like(img)
    moved[max(dy, 0) : img.shape[0] + min(dy, 0), dx:] = img[max(-dy, 0) : img.shape[0] - max(dy, 0), :-dx]
    out = lm.from_rois(moved[None], roi_from_landmarks(first.points))
    iod = np.linalg.norm(first.points[0, idx.LEFT_EYE_OUTER, :2] - first.points[0, idx.RIGHT_EYE_OUTER, :2])
    err = np.linalg.norm(out.points[0, :, :2] - (first.points[0, :, :2] + [dx, dy]), axis=1)
    assert np.median(err) < 0.05 * iod and out.presence[0] > 0.99


def test_roi_rules_hand_computed():
    det = Detections(
        frame_index=np.array([3]),
        boxes=np.array([[10, 20, 50, 80]], np.float32),
        scores=np.array([0.9], np.float32),
        keypoints=np.array([[[20, 40], [40, 60], [30, 50], [25, 70], [35, 70]]], np.float32),
    )
    r = roi_from_detections(det)
    np.testing.assert_allclose(r.center, [[30, 50]])
    assert r.size[0] == pytest.approx(90.0) and r.angle[0] == pytest.approx(np.pi / 4)
    assert r.frame_index[0] == 3
    # Landmarks: a rotated rectangle of points; the ROI follows corners 33 → 263.
    pts = np.zeros((1, 468, 3), np.float32)
    pts[0, :, 0] = np.linspace(100, 200, 468)
    pts[0, :, 1] = 50
    pts[0, idx.RIGHT_EYE_OUTER, :2] = [120, 40]
    pts[0, idx.LEFT_EYE_OUTER, :2] = [180, 40]
    pts[0, 0, 1] = 130
    r = roi_from_landmarks(pts, frame_index=np.array([1]))
    np.testing.assert_allclose(r.center, [[150, 85]])
    assert r.size[0] == pytest.approx(150.0) and r.angle[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="468"):
        roi_from_landmarks(np.zeros((1, 68, 2)))


def test_roi_matrix_maps_crop_centre_and_axes():
    r = FaceRoi(np.zeros(1, np.int64), np.array([[100, 50]], np.float32), np.array([192.0], np.float32),
                np.array([np.pi / 2], np.float32))  # fmt: skip
    m = roi_matrices(r)[0]
    np.testing.assert_allclose(m @ [96, 96, 1], [100, 50], atol=1e-9)
    # Rotated +90°: the crop's x axis points down the frame (+y), its y axis points left (-x).
    np.testing.assert_allclose(m @ [97, 96, 1] - m @ [96, 96, 1], [0, 1], atol=1e-6)
    np.testing.assert_allclose(m @ [96, 97, 1] - m @ [96, 96, 1], [-1, 0], atol=1e-6)


def test_rotated_frame_gives_rotated_landmarks(golden, lm):
    """The same face in a frame turned 90° (with the ROI turned alike) gives the same landmarks."""
    img = _image(golden["sources"][0])
    row = golden["rois"][0].astype(np.float64)
    base = lm.from_rois(img[None], _roi(row)).points[0]
    rot = np.ascontiguousarray(np.rot90(img, k=-1))  # clockwise: frame (x, y) → (H - y, x)
    h = img.shape[0]
    row_r = np.array([h - row[1], row[0], row[2], row[3] + np.pi / 2])
    out = lm.from_rois(rot[None], _roi(row_r)).points[0]
    back = np.stack([out[:, 1], h - out[:, 0]], 1)
    np.testing.assert_allclose(back, base[:, :2], atol=0.5)
    np.testing.assert_allclose(out[:, 2], base[:, 2], atol=0.5)


def test_empty_and_grayscale(golden, lm):
    img = _image(golden["sources"][0])
    out = lm(img[None], Detections.empty())
    assert out.points.shape == (0, 468, 3) and out.presence.shape == (0,)
    gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    a = lm.from_rois(img[None], _roi(golden["rois"][0]))
    b = lm.from_rois(gray[None], _roi(golden["rois"][0]))
    assert b.presence[0] > 0.9
    iod = np.linalg.norm(a.points[0, idx.LEFT_EYE_OUTER] - a.points[0, idx.RIGHT_EYE_OUTER])
    assert np.median(np.linalg.norm(a.points[0, :, :2] - b.points[0, :, :2], axis=1)) < 0.05 * iod


def test_bad_inputs_are_explained(lm):
    with pytest.raises(ValueError, match="image\\[None\\]"):
        lm(np.zeros((64, 64, 3), np.uint8), Detections.empty())
    r = FaceRoi(np.array([2]), np.zeros((1, 2), np.float32), np.ones(1, np.float32), np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="frame_index"):
        lm.from_rois(np.zeros((1, 32, 32, 3), np.uint8), r)
    with pytest.raises(FileNotFoundError, match="convert_mediapipe"):
        FaceMeshLandmarker(weights="/nonexistent/facemesh.safetensors")


def test_onnx_backend_matches_torch(golden):
    pytest.importorskip("onnxruntime")
    lm = FaceMeshLandmarker(backend="onnx")
    mesh, presence = lm.raw(torch.from_numpy(golden["inputs"]).permute(0, 3, 1, 2).float())
    np.testing.assert_allclose(mesh.reshape(len(mesh), -1), golden["tfjs_mesh"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(presence, golden["tfjs_presence"], atol=1e-4)
