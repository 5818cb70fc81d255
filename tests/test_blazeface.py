"""BlazeFace ports against golden outputs of independent runtimes on real photos.

Goldens (``tests/fixtures/mediapipe/blazeface_*.npz``, made once by ``tools/golden_mediapipe.py``):
TF.js running the same graph files the converter reads, LiteRT running MediaPipe's own
``face_detection_short_range.tflite``, and a plain loop re-implementation of MediaPipe's decoding
and weighted NMS applied to the TF.js outputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebehavior.face.detect import FaceDetector, create_detector, list_detectors
from facebehavior.face.detect.blazeface import (
    BlazeFaceDetector,
    decode_boxes,
    keypoints5_from_raw,
    letterbox,
    make_anchors,
)
from facebehavior.types import Detections

FIX = Path(__file__).resolve().parent / "fixtures"
NAMES = ("blazeface_short", "blazeface_full")


@pytest.fixture(scope="module", params=NAMES)
def case(request):
    det = create_detector(request.param)
    return request.param, det, dict(np.load(FIX / "mediapipe" / f"{request.param}.npz"))


def _image(source: str) -> np.ndarray:
    photo, box = str(source).split(":")
    x1, y1, x2, y2 = (int(v) for v in box.split(","))
    return np.asarray(Image.open(FIX / "photos" / photo).convert("RGB"))[y1:y2, x1:x2].copy()


def _ref(g: dict, i: int):
    sel = g["ref_image"] == i
    return g["ref_scores"][sel], g["ref_boxes"][sel], g["ref_keypoints6"][sel]


def test_registered_and_protocol():
    assert set(NAMES) <= set(list_detectors())
    det = create_detector("blazeface_short", score_threshold=0.7, iou_threshold=0.4)
    assert isinstance(det, FaceDetector)
    assert det.score_threshold == 0.7 and det.iou_threshold == 0.4 and det.name == "blazeface_short"
    assert create_detector("blazeface_full").score_threshold == 0.6  # MediaPipe's default
    with pytest.raises(ValueError, match="score_threshold"):
        create_detector("blazeface_short", score_threshold=1.5)


def test_raw_outputs_match_tfjs(case):
    name, det, g = case
    out = det.raw(torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float())
    assert out.shape == (len(g["inputs"]), 896 if name == "blazeface_short" else 2304, 17)
    np.testing.assert_allclose(out[..., 0], g["tfjs_logits"], atol=1e-3, rtol=0)
    reg = out[tuple(g["reg_index"].T)][:, 1:]
    # Regressors are in network-input pixels: the port must agree within 1e-3 px.
    np.testing.assert_allclose(reg, g["tfjs_reg"], atol=1e-3, rtol=0)


def test_raw_outputs_match_mediapipe_tflite():
    g = dict(np.load(FIX / "mediapipe" / "blazeface_short.npz"))
    det = create_detector("blazeface_short")
    out = det.raw(torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float())
    np.testing.assert_allclose(out[tuple(g["reg_index"].T)][:, 1:], g["tflite_reg"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out[..., 0], g["tflite_logits"], atol=5e-3, rtol=0)


def test_decoding_matches_reference(case):
    """Port raw outputs → library decode/NMS/letterbox removal vs the plain reference decode."""
    _, det, g = case
    raw = det.raw(torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float())
    for i in range(len(g["inputs"])):
        fi, scores, boxes, kp6 = det.decode(raw[i : i + 1], g["letterbox"][i])
        rs, rb, rk = _ref(g, i)
        assert len(scores) == len(rs), f"image {i}: {len(scores)} faces vs reference {len(rs)}"
        np.testing.assert_allclose(scores, rs, atol=1e-5)
        np.testing.assert_allclose(boxes, rb, atol=1e-3, rtol=0)
        np.testing.assert_allclose(kp6, rk, atol=1e-3, rtol=0)


def test_end_to_end_on_photos(case):
    """Photo → detector: the letterboxed input is the stored one and detections match in pixels."""
    _, det, g = case
    for i, src in enumerate(g["sources"]):
        img = _image(src)
        px, geometry = letterbox(img[None], det.config.input_size)
        np.testing.assert_array_equal(geometry, g["letterbox"][i])
        np.testing.assert_array_equal(px[0].permute(1, 2, 0).numpy().astype(np.uint8), g["inputs"][i])
        res = det.detect(img[None])
        rs, rb, rk = _ref(g, i)
        assert len(res.detections) == len(rs)
        np.testing.assert_allclose(res.detections.boxes, rb, atol=1e-3, rtol=0)
        np.testing.assert_allclose(res.keypoints6, rk, atol=1e-3, rtol=0)
        np.testing.assert_array_equal(res.detections.frame_index, 0)
        np.testing.assert_allclose(res.detections.keypoints[:, :3], rk[:, :3], atol=1e-3, rtol=0)


def test_subject_right_eye_is_on_image_left():
    g = dict(np.load(FIX / "mediapipe" / "blazeface_full.npz"))
    kp = g["ref_keypoints6"]
    upright = np.abs(kp[:, 1, 1] - kp[:, 0, 1]) < np.abs(kp[:, 1, 0] - kp[:, 0, 0])
    assert upright.sum() >= 8
    assert np.all(kp[upright, 0, 0] < kp[upright, 1, 0])


def test_no_face_gives_empty_detections(case):
    _, det, _ = case
    yy, xx = np.mgrid[0:240, 0:320]
    blank = np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8)
    res = det(np.stack([blank, np.zeros_like(blank)]))
    assert isinstance(res, Detections) and len(res) == 0
    assert res.boxes.shape == (0, 4) and res.keypoints.shape == (0, 5, 2)
    assert len(det(np.zeros((0, 64, 64, 3), np.uint8))) == 0


def test_grayscale_photo_still_detects(case):
    """A grayscale frame ((N, H, W) or replicated to 3 channels) still finds every clear face
    (reference score >= 0.85; borderline small faces may drop below threshold without colour)."""
    _, det, g = case
    checked = 0
    for i, src in enumerate(g["sources"]):
        img = _image(src)
        gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
        rs, rb, _ = _ref(g, i)
        if rs.max() < 0.85:
            continue
        checked += 1
        best = rb[np.argmax(rs)]
        for batch in (gray[None], np.repeat(gray[None, ..., None], 3, -1)):
            res = det(batch)
            assert len(res) >= 1, f"{src}: no face in grayscale"
            centres = (res.boxes[:, :2] + res.boxes[:, 2:]) / 2
            err = np.min(np.linalg.norm(centres - (best[:2] + best[2:]) / 2, axis=1))
            assert err < 0.25 * (best[2] - best[0]), f"{src}: best face moved {err:.1f} px"
    assert checked >= 3


def test_batch_equals_one_by_one(case):
    _, det, g = case
    crops = [_image(s) for s in g["sources"][:3]]
    h, w = min(c.shape[0] for c in crops), min(c.shape[1] for c in crops)
    frames = np.stack([c[:h, :w] for c in crops])
    batch = det(frames)
    for i in range(len(frames)):
        one = det(frames[i : i + 1])
        sel = batch.frame_index == i
        assert sel.sum() == len(one)
        np.testing.assert_allclose(batch.boxes[sel], one.boxes, atol=1e-4)
        np.testing.assert_allclose(batch.keypoints[sel], one.keypoints, atol=1e-4)
        np.testing.assert_allclose(batch.scores[sel], one.scores, atol=1e-6)


def test_bad_input_is_explained():
    det = create_detector("blazeface_short")
    with pytest.raises(ValueError, match="image\\[None\\]"):
        det(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="\\(N, H, W, 3\\)"):
        det(np.zeros((1, 64, 64, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        det(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(FileNotFoundError, match="tools/convert_mediapipe.py"):
        BlazeFaceDetector(create_detector("blazeface_short").config, weights="/nonexistent.safetensors")


def test_anchors_layout():
    a = make_anchors(((16, 2), (8, 6)))
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[1], a[0])  # 2 anchors per cell
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])  # then x advances
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])
    assert make_anchors(((48, 1),)).shape == (2304, 2)


def test_decode_hand_computed():
    raw = np.zeros((1, 17), np.float32)
    raw[0, :5] = [0.0, 12.8, -6.4, 32.0, 64.0]  # logit 0 → score 0.5; offsets in 128-px units
    raw[0, 5:7] = [1.28, 2.56]
    scores, g = decode_boxes(raw, np.array([[0.25, 0.5]], np.float32), 128)
    assert scores[0] == pytest.approx(0.5)
    cx, cy, w, h = 0.25 + 0.1, 0.5 - 0.05, 0.25, 0.5
    np.testing.assert_allclose(g[0, :4], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-6)
    np.testing.assert_allclose(g[0, 4:6], [0.26, 0.52], atol=1e-6)


def test_mouth_corner_approximation():
    kp6 = np.array([[[10, 20], [30, 20], [20, 30], [20, 40], [0, 25], [40, 25]]], np.float32)
    k5 = keypoints5_from_raw(kp6, mouth_half_width=0.5)
    np.testing.assert_allclose(k5[0], [[10, 20], [30, 20], [20, 30], [10, 40], [30, 40]])


@pytest.mark.parametrize("name", NAMES)
def test_onnx_backend_matches_torch(name):
    pytest.importorskip("onnxruntime")
    g = dict(np.load(FIX / "mediapipe" / f"{name}.npz"))
    det = create_detector(name, backend="onnx")
    assert det.backend == "onnx"
    out = det.raw(torch.from_numpy(g["inputs"]).permute(0, 3, 1, 2).float())
    np.testing.assert_allclose(out[tuple(g["reg_index"].T)][:, 1:], g["tfjs_reg"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(out[..., 0], g["tfjs_logits"], atol=1e-3, rtol=0)
    img = _image(g["sources"][0])
    a, b = det(img[None]), create_detector(name)(img[None])
    assert len(a) == len(b)
    # 0.1 px: the ONNX path letterboxes with Pillow, 1 grey level off torch on <0.1 % of pixels.
    np.testing.assert_allclose(a.boxes, b.boxes, atol=0.1)
    with pytest.raises(ValueError, match="valid"):
        create_detector(name, backend="tensorrt")


@pytest.mark.parametrize("name", ("blazeface_short", "blazeface_full", "facemesh"))
def test_weight_files_carry_spec_and_match_card(name):
    from facebehavior.models.weights import packaged_weights_dir, read_spec

    path = packaged_weights_dir() / f"{name}.safetensors"
    spec = read_spec(path)
    assert spec.licence == "Apache-2.0" and "human-models 3.0.4" in spec.source
    assert spec.input.size == {"blazeface_short": 128}.get(name, 192)
    card = path.with_suffix(".md").read_text()
    assert f"`{spec.sha256}`" in card, f"{path.name}: model card sha256 is stale"
