"""MTCNN port: golden comparison with facenet-pytorch 2.6.0, keypoint order, protocol (NMS: test_boxes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebehavior.face.detect import FaceDetector, create_detector, list_detectors
from facebehavior.face.detect.mtcnn import MTCNNDetector, load_mtcnn_nets, pyramid_scales
from facebehavior.models.weights import CheckpointError, packaged_weights_dir, read_spec, sha256_file
from facebehavior.types import Detections

FIXTURES = Path(__file__).resolve().parent / "fixtures"
GOLDEN = FIXTURES / "mtcnn" / "golden.npz"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def nets():
    return load_mtcnn_nets()


@pytest.fixture(scope="module")
def detector() -> MTCNNDetector:
    return create_detector("mtcnn")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def group6_pair(detector) -> Detections:
    """Detections on group6.jpg and its mirror image, batched (shared by several tests)."""
    im = _photo("group6.jpg")
    return detector(np.stack([im, np.ascontiguousarray(im[:, ::-1])]))


def _norm(u8: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(u8.copy()).permute(0, 3, 1, 2).float() - 127.5) * 0.0078125


def _photo(name: str, mirror: bool = False) -> np.ndarray:
    im = np.asarray(Image.open(FIXTURES / "photos" / name).convert("RGB"))
    return np.ascontiguousarray(im[:, ::-1]) if mirror else im


# ---------------------------------------------------------------------------------- golden: networks
def test_pnet_matches_reference(nets, golden):
    with torch.no_grad():
        reg, prob = nets.pnet(_norm(golden["pnet_in"][None]))
    np.testing.assert_allclose(reg.numpy(), golden["pnet_reg"], atol=1e-4)
    np.testing.assert_allclose(prob.numpy(), golden["pnet_prob"], atol=1e-4)


def test_rnet_onet_match_reference(nets, golden):
    with torch.no_grad():
        rr, rp = nets.rnet(_norm(golden["rnet_in"]))
        orr, ol, op = nets.onet(_norm(golden["onet_in"]))
    np.testing.assert_allclose(rr.numpy(), golden["rnet_reg"], atol=1e-4)
    np.testing.assert_allclose(rp.numpy(), golden["rnet_prob"], atol=1e-4)
    np.testing.assert_allclose(orr.numpy(), golden["onet_reg"], atol=1e-4)
    np.testing.assert_allclose(ol.numpy(), golden["onet_lmk"], atol=1e-4)
    np.testing.assert_allclose(op.numpy(), golden["onet_prob"], atol=1e-4)
    # The fixture holds real faces (first four patches) and background: the nets must tell them apart.
    assert (golden["onet_prob"][:4, 1] > 0.9).all()


# ----------------------------------------------------------------------------------- golden: cascade
@pytest.mark.parametrize("case", [0, 1])
def test_cascade_matches_reference(detector, golden, group6_pair, case):
    name = str(golden[f"case{case}_name"])
    mirrors = [bool(m) for m in golden[f"case{case}_mirror"]]
    min_face = float(golden[f"case{case}_min_face"])
    if name == "group6.jpg" and mirrors == [False, True] and min_face == detector.min_face_size:
        got = group6_pair
    else:
        det = MTCNNDetector(detector.nets, min_face_size=min_face)
        got = det(np.stack([_photo(name, m) for m in mirrors]))
    assert set(got.frame_index.tolist()) <= set(range(len(mirrors)))
    for bi in range(len(mirrors)):
        ref_boxes = golden[f"case{case}_img{bi}_boxes"]
        ref_points = golden[f"case{case}_img{bi}_points"]
        sel = got.frame_index == bi
        assert sel.sum() == len(ref_boxes) > 0
        # Reference order is its NMS pick order (by score); ours is by score too.
        order = np.argsort(-ref_boxes[:, 4], kind="stable")
        np.testing.assert_allclose(got.boxes[sel], ref_boxes[order, :4], atol=1e-3)
        np.testing.assert_allclose(got.scores[sel], ref_boxes[order, 4], atol=1e-5)
        np.testing.assert_allclose(got.keypoints[sel], ref_points[order], atol=1e-3)


# ------------------------------------------------------------------------------------ keypoint order
def test_keypoints_follow_schema_order_on_real_and_mirrored_photo(group6_pair):
    dets = group6_pair
    for f in (0, 1):
        kp = dets.keypoints[dets.frame_index == f]
        assert len(kp) == 4
        # KEYPOINTS_5 = right_eye, left_eye, nose, mouth_right, mouth_left (subject-centric): on an
        # upright, non-mirrored face the subject's right eye/mouth corner is on the image's left.
        assert (kp[:, 0, 0] < kp[:, 1, 0]).all()
        assert (kp[:, 3, 0] < kp[:, 4, 0]).all()
        # eyes above nose above mouth
        assert (kp[:, :2, 1].max(1) < kp[:, 2, 1]).all()
        assert (kp[:, 2, 1] < kp[:, 3:, 1].min(1)).all()
        boxes = dets.boxes[dets.frame_index == f]
        inside = (kp[..., 0] > boxes[:, None, 0]) & (kp[..., 0] < boxes[:, None, 2])
        assert inside.all()


def test_mirrored_frame_gives_mirrored_boxes(group6_pair):
    w = _photo("group6.jpg").shape[1]
    dets = group6_pair
    a = dets.boxes[dets.frame_index == 0]
    b = dets.boxes[dets.frame_index == 1]
    b_back = np.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
    # each face found in the mirror maps back onto a face of the original within a few pixels
    d = np.abs(a[:, None] - b_back[None]).max(-1)
    assert d.min(1).max() < 8.0


# ------------------------------------------------------------------------------------- API / errors
def test_registered_and_follows_protocol(detector):
    assert "mtcnn" in list_detectors()
    assert isinstance(detector, FaceDetector)
    out = detector(np.zeros((2, 64, 80, 3), np.uint8))
    assert isinstance(out, Detections) and len(out) == 0


def test_pyramid_scales_reference_values():
    # 12/20 = 0.6, then × 0.709 while the short side (100 px × scale) stays ≥ 12
    s = pyramid_scales(100, 200, 20, 0.709)
    np.testing.assert_allclose(s, [0.6 * 0.709**k for k in range(len(s))])
    assert 100 * s[-1] >= 12 > 100 * s[-1] * 0.709


def test_bad_input_raises_clear_errors(detector):
    with pytest.raises(ValueError, match="uint8"):
        detector(np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        detector(np.zeros((1, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="min_face_size"):
        create_detector("mtcnn", min_face_size=5)
    with pytest.raises(FileNotFoundError, match="not found.*convert_mtcnn"):
        create_detector("mtcnn", weights="/nonexistent/mtcnn.safetensors")
    with pytest.raises(CheckpointError, match="'blazeface_short' weights, not 'mtcnn'"):
        load_mtcnn_nets(packaged_weights_dir() / "blazeface_short.safetensors")


def test_weight_file_matches_model_card():
    path = packaged_weights_dir() / "mtcnn.safetensors"
    card = (packaged_weights_dir() / "mtcnn.md").read_text()
    assert sha256_file(path) in card
    spec = read_spec(path)
    assert spec.licence == "MIT" and "facenet-pytorch 2.6.0" in spec.source


def test_chunked_batches_give_the_same_detections(detector):
    small = np.asarray(Image.open(FIXTURES / "photos" / "group6.jpg").convert("RGB").resize((400, 320)))
    frames = np.stack([small, np.ascontiguousarray(small[:, ::-1]), np.zeros_like(small), small])
    whole = MTCNNDetector(detector.nets, batch_size=4)(frames)
    one_by_one = MTCNNDetector(detector.nets, batch_size=1)(frames)
    assert len(whole) >= 6 and set(whole.frame_index.tolist()) == {0, 1, 3}
    np.testing.assert_array_equal(whole.frame_index, one_by_one.frame_index)
    np.testing.assert_allclose(whole.boxes, one_by_one.boxes, atol=1e-3)
    np.testing.assert_allclose(whole.keypoints, one_by_one.keypoints, atol=1e-3)
