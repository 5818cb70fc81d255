"""The Analyzer: batching, rows, affect-model protocol, bad inputs, the real face models on samples."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import torch

from facebehavior import schema
from facebehavior.io import InputError
from facebehavior.models import create_model
from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint
from facebehavior.pipeline import Analyzer
from facebehavior.types import Detections

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGE = REPO / "samples" / "face.jpg"
SAMPLE_VIDEO = REPO / "samples" / "video.mp4"


class SquareDetector:
    """Test double for the FaceDetector protocol: every bright square is a 'face'.

    Box = the square's pixel extent; score = its mean brightness / 255; keypoints at fixed
    fractions of the box (eyes at 30 %/70 % across, 35 % down; nose centre; mouth at 75 %).
    """

    name = "squares"

    def __call__(self, images: np.ndarray) -> Detections:
        fi, boxes, scores = [], [], []
        for i, img in enumerate(images):
            g = img.mean(axis=2)
            # Label squares by columns: test frames hold squares in distinct column bands.
            cols = np.flatnonzero((g > 128).any(axis=0))
            if cols.size == 0:
                continue
            runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
            for run in runs:
                rows = np.flatnonzero((g[:, run] > 128).any(axis=1))
                x1, x2, y1, y2 = run[0], run[-1] + 1, rows[0], rows[-1] + 1
                fi.append(i)
                boxes.append((x1, y1, x2, y2))
                scores.append(g[y1:y2, x1:x2].mean() / 255.0)
        if not fi:
            return Detections.empty()
        b = np.array(boxes, np.float32)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        fx = np.array([0.3, 0.7, 0.5, 0.3, 0.7], np.float32)
        fy = np.array([0.35, 0.35, 0.55, 0.75, 0.75], np.float32)
        kp = np.stack([b[:, :1] + w[:, None] * fx, b[:, 1:2] + h[:, None] * fy], axis=-1)
        return Detections(np.array(fi, np.int64), b, np.array(scores, np.float32), kp.astype(np.float32))


def square_frames(n: int, *, size=(96, 128), missing=(), second=False) -> np.ndarray:
    """Frames with a 40 px bright square moving right 2 px per frame (none in ``missing``)."""
    h, w = size
    out = np.zeros((n, h, w, 3), np.uint8)
    for k in range(n):
        if k in missing:
            continue
        out[k, 20:60, 10 + 2 * k : 50 + 2 * k] = 250
        if second:
            out[k, 30:60, 100:125] = 180
    return out


def write_video(path: Path, frames: np.ndarray, fps: int = 25, faststart: bool = False) -> None:
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        s.options = {"crf": "10"}
        for img in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("facebehaviornet_mobile_tiny", num_expressions=8, aus=(1, 12), va=True)
    spec = WeightSpec(
        name="tiny_test",
        architecture="facebehaviornet_mobile_tiny",
        arch_kwargs={"num_expressions": 8, "aus": [1, 12], "va": True},
        input=InputSpec(
            size=64, channels=3, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), template="arcface"
        ),
        tasks={"expression": schema.EXPRESSIONS_8, "au": ("AU01", "AU12"), "va": ("valence", "arousal")},
    )
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(model.state_dict(), spec, path)
    return path


def test_face_rows_from_an_array_of_frames():
    frames = square_frames(10, missing=(3, 4))
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=4)
    chunks = list(an.iter_chunks(frames, video=True))
    assert [c.frames for c in chunks] == [4, 4, 2] and [c.no_face for c in chunks] == [1, 1, 0]
    assert [c.done for c in chunks] == [False, False, True]
    every = pd.concat([c.rows for c in chunks], ignore_index=True)
    assert list(every.columns) == schema.face_columns()
    # Every analysed frame is a row: frames 3 and 4 have no face (success 0, NaN measures, id -1).
    assert every["frame"].tolist() == list(range(10))
    assert every["success"].tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    gap = every[every["success"] == 0]
    assert (gap["face_id"] == -1).all() and (gap["confidence"] == 0).all()
    assert gap[["x1", "y2", "right_eye_x", "pose_yaw"]].isna().all().all()
    assert every["timestamp"].notna().all() and (every["source"] == "array").all()
    faces_only = Analyzer(
        detector=SquareDetector(), landmarks=False, model=None, batch_size=4, empty_frames=False
    ).analyze(frames, video=True)
    df = every[every["success"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(faces_only, df)
    assert df["frame"].tolist() == [0, 1, 2, 5, 6, 7, 8, 9]
    k = df["frame"].to_numpy()
    np.testing.assert_allclose(df["x1"], 10 + 2 * k)
    np.testing.assert_allclose(df["x2"], 50 + 2 * k)
    np.testing.assert_allclose(df["right_eye_x"], 10 + 2 * k + 12, atol=1e-4)
    np.testing.assert_allclose(df["mouth_left_y"], 20 + 30, atol=1e-4)
    assert df["pose_yaw"].isna().all()  # no landmarks, no pose
    # One face moving smoothly, a two-frame gap: one identity throughout.
    assert df["face_id"].nunique() == 1 and (df["face_id"] >= 0).all()


def test_max_faces_keeps_the_best_scoring():
    frames = square_frames(3, second=True)
    both = Analyzer(detector=SquareDetector(), landmarks=False, model=None).analyze(frames, video=True)
    assert both.groupby("frame").size().tolist() == [2, 2, 2]
    assert both["face_id"].nunique() == 2
    one = Analyzer(detector=SquareDetector(), landmarks=False, model=None, max_faces=1).analyze(
        frames, video=True
    )
    assert one.groupby("frame").size().tolist() == [1, 1, 1]
    np.testing.assert_allclose(one["confidence"], 250 / 255, atol=1e-6)  # the brighter square


def test_affect_model_protocol(tiny_checkpoint):
    from facebehavior.face.align import align_faces
    from facebehavior.models.weights import load_weights

    frames = square_frames(3)
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint)
    df = an.analyze(frames, video=True)
    probs = schema.expression_columns(schema.EXPRESSIONS_8)
    assert an.columns == schema.face_columns() + probs + [
        "expression",
        "AU01_prob",
        "AU12_prob",
        "valence",
        "arousal",
    ]
    np.testing.assert_allclose(df[probs].sum(axis=1), 1.0, atol=1e-5)
    # Independent path: align with the spec's template, normalise by hand, run the model.
    model, spec = load_weights(tiny_checkpoint)
    crops = align_faces(frames, SquareDetector()(frames), size=64, template="arcface").crops
    x = (torch.from_numpy(crops).float().permute(0, 3, 1, 2) / 255 - 0.5) / 0.25
    with torch.no_grad():
        out = model(x)
    np.testing.assert_allclose(df[probs], torch.softmax(out["expression"], 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(df[["AU01_prob", "AU12_prob"]], torch.sigmoid(out["au"]).numpy(), atol=1e-5)
    np.testing.assert_allclose(df[["valence", "arousal"]], out["va"].numpy(), atol=1e-5)
    assert df["expression"].tolist() == [
        schema.EXPRESSIONS_8[i] for i in out["expression"].argmax(1).tolist()
    ]
    oface = Analyzer(
        detector=SquareDetector(), landmarks=False, model=tiny_checkpoint, column_style="openface"
    )
    assert {"AU01_c", "AU12_c"} <= set(oface.columns)


def test_no_face_at_all_gives_empty_typed_frame(tiny_checkpoint):
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=tiny_checkpoint)
    df = an.analyze(np.zeros((2, 32, 32, 3), np.uint8))
    assert len(df) == 0 and list(df.columns) == an.columns
    assert df["frame"].dtype == np.int64


def test_bad_inputs_are_reported_and_the_rest_is_analysed(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, square_frames(6))
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "notes.xyz").write_text("hello")
    inputs = [tmp_path / "missing.mp4", tmp_path / "zero.mp4", tmp_path / "notes.xyz", good]
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=4)
    with pytest.raises(InputError, match="missing.mp4: file or folder not found"):
        an.analyze(inputs)
    df = an.analyze(inputs, errors="skip")
    assert df["source"].unique().tolist() == [str(good)] and df["frame"].tolist() == list(range(6))
    msgs = sorted(str(e) for e in an.failures)
    assert msgs == sorted(
        [
            f"{tmp_path / 'missing.mp4'}: file or folder not found",
            f"{tmp_path / 'zero.mp4'}: empty file (0 bytes)",
            f"{tmp_path / 'notes.xyz'}: unsupported file type '.xyz'; images: "
            + msgs[[m.startswith(str(tmp_path / "notes")) for m in msgs].index(True)].split("; images: ")[1],
        ]
    )


def test_truncated_video_keeps_the_frames_before_the_break(tmp_path):
    write_video(tmp_path / "full.mp4", square_frames(40), faststart=True)
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    # One frame per chunk: the chunk analysed last before the break must not be lost.
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=1)
    df = an.analyze(tmp_path / "cut.mp4", errors="skip")
    assert [str(e) for e in an.failures] == [
        f"{tmp_path / 'cut.mp4'}: video ends after {len(df)} of 40 declared frames (truncated file?)"
    ]
    assert 2 <= len(df) < 40 and df["frame"].tolist() == list(range(len(df)))


@pytest.fixture(scope="module")
def sample_frames() -> np.ndarray:
    if not SAMPLE_VIDEO.exists():
        pytest.skip("samples/video.mp4 not present")
    from facebehavior.io.video import VideoReader

    return next(iter(VideoReader(SAMPLE_VIDEO, batch_size=10))).images


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_batched_tracking_equals_frame_by_frame_tracking(sample_frames, version, monkeypatch):
    """The wave schedule gives exactly MediaPipe's sequential track-from-previous-landmarks.

    Both sides on the torch reference networks: this checks the schedule; the onnxruntime runtime's
    agreement with torch is tests/test_onnx_exports.py's subject."""
    monkeypatch.setenv("FACEBEHAVIOR_BACKEND", "torch")
    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.facemesh import (
        FaceMeshLandmarker,
        roi_from_detections,
        roi_from_landmarks,
    )
    from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

    frames = sample_frames[:10]
    an = Analyzer(detector="blazeface_short", landmarks=version, model=None, redetect_every=5, batch_size=10)
    df = an.analyze(frames, video=True)
    lm = FaceMeshLandmarker() if version == "v1" else FaceMeshV2Landmarker()
    det = create_detector("blazeface_short")
    ref = []
    for j in range(10):
        if j % 5 == 0:
            rois = roi_from_detections(det(frames[j : j + 1]))
            if version == "v2":  # the Analyzer refines a detection ROI once with V2
                rois = roi_from_landmarks(lm.from_rois(frames[j : j + 1], rois).points)
        marks = lm.from_rois(frames[j : j + 1], rois)
        ref.append(marks.points)
        rois = roi_from_landmarks(marks.points)
    ref_pts = np.concatenate(ref)
    assert len(df) == len(ref_pts) == 20  # two faces in each frame
    xy = ref_pts[..., :2]
    ref_boxes = np.concatenate([xy.min(1), xy.max(1)], 1)
    got = df.sort_values(["frame", "x1"])[["x1", "y1", "x2", "y2"]].to_numpy()
    order = np.lexsort((ref_boxes[:, 0], np.repeat(np.arange(10), 2)))
    np.testing.assert_allclose(got, ref_boxes[order], atol=1e-3)
    assert df.groupby("face_id").size().tolist() == [10, 10]


def test_real_models_on_the_sample_photo():
    if not SAMPLE_IMAGE.exists():
        pytest.skip("samples/face.jpg not present")
    an = Analyzer(model=None, geometry=True)
    df = an.analyze(SAMPLE_IMAGE)
    assert len(df) == 4 and sorted(df["face_id"]) == [0, 1, 2, 3]
    assert list(df.columns) == an.columns and "AU12_prob_geom" in df.columns
    assert df[["pose_pitch", "pose_yaw", "pose_roll", "AU12_prob_geom"]].notna().all().all()
    # Eye centres lie inside the face box, the subject's right eye on the image left.
    assert ((df["right_eye_x"] > df["x1"]) & (df["left_eye_x"] < df["x2"])).all()
    assert (df["right_eye_x"] < df["left_eye_x"]).all()
    # The short→full cascade: these ~130 px faces are below 0.2 of the frame's long side, so the
    # full-range model is consulted; both models find the same four faces.
    short = Analyzer(detector="blazeface_short", model=None, landmarks=False).analyze(SAMPLE_IMAGE)
    auto = Analyzer(detector="auto", model=None, landmarks=False).analyze(SAMPLE_IMAGE)
    assert len(short) == len(auto) == 4


def test_grey_model_gets_bt601_luma(tmp_path):
    from facebehavior.face.align import align_faces
    from facebehavior.models.weights import load_weights

    torch.manual_seed(1)
    model = create_model("facebehaviornet_mobile_tiny", num_expressions=7, aus=(), va=True, in_channels=1)
    spec = WeightSpec(
        name="tiny_grey",
        architecture="facebehaviornet_mobile_tiny",
        arch_kwargs={"num_expressions": 7, "aus": [], "va": True, "in_channels": 1},
        input=InputSpec(size=48, channels=1, mean=(0.5,), std=(0.5,), template="fer2013"),
        tasks={"expression": schema.EXPRESSIONS_7, "va": ("valence", "arousal")},
    )
    save_checkpoint(model.state_dict(), spec, tmp_path / "grey.safetensors")
    frames = square_frames(2)
    frames[..., 1] //= 2  # colour matters: luma is not the channel mean
    df = Analyzer(detector=SquareDetector(), landmarks=False, model=tmp_path / "grey.safetensors").analyze(
        frames
    )
    model, _ = load_weights(tmp_path / "grey.safetensors")
    crops = align_faces(frames, SquareDetector()(frames), size=48, template="fer2013").crops.astype(
        np.float64
    )
    luma = crops @ np.array([0.299, 0.587, 0.114]) / 255.0
    x = torch.from_numpy(((luma - 0.5) / 0.5)[:, None]).float()
    with torch.no_grad():
        out = model(x)
    np.testing.assert_allclose(df[["valence", "arousal"]], out["va"].numpy(), atol=1e-5)
    probs = df[schema.expression_columns(schema.EXPRESSIONS_7)].to_numpy()
    np.testing.assert_allclose(probs, torch.softmax(out["expression"], 1).numpy(), atol=1e-5)


def test_faces_entering_between_key_frames_are_picked_up(sample_frames):
    frames = sample_frames[:10].copy()
    frames[:3] = 0  # nobody until frame 3; key frames are 0 and 8
    df = Analyzer(detector="blazeface_short", model=None, redetect_every=8).analyze(frames, video=True)
    assert df[df["success"] == 1].groupby("frame").size().to_dict() == {j: 2 for j in range(3, 10)}
    assert df[df["success"] == 0]["frame"].tolist() == [0, 1, 2]


def test_with_max_faces_a_second_face_is_picked_up_at_once(sample_frames):
    frames = sample_frames[:10].copy()
    frames[:3, :, 300:] = 0  # the right-hand face enters at frame 3, the left one is tracked
    late = Analyzer(detector="blazeface_short", model=None, redetect_every=8).analyze(frames, video=True)
    assert late.groupby("frame").size().tolist() == [1] * 8 + [2] * 2  # found at key frame 8
    eager = Analyzer(detector="blazeface_short", model=None, redetect_every=8, max_faces=2).analyze(
        frames, video=True
    )
    assert eager.groupby("frame").size().tolist() == [1] * 3 + [2] * 7


def test_dedupe_keeps_the_more_confident_of_overlapping_tracks():
    from facebehavior.pipeline.landmarks import dedupe

    base = np.zeros((468, 3), np.float32)
    base[:, 0] = np.linspace(0, 100, 468)
    base[:, 1] = np.linspace(0, 100, 468)[::-1]
    pts = np.stack([base, base + 5, base, base + 300])  # 0/1 overlap on frame 0; 2 on frame 1; 3 apart
    pres = np.array([0.7, 0.9, 0.8, 0.6], np.float32)
    fi = np.array([0, 0, 1, 0])
    keep = dedupe(pts, pres, fi)
    p, f = pres[keep], fi[keep]
    assert p.tolist() == pytest.approx([0.9, 0.8, 0.6]) and f.tolist() == [0, 1, 0]


def test_tracked_faces_run_the_detector_on_key_frames_only(sample_frames):
    """With landmarks, FaceMesh follows the faces: the detector sees 2 of 16 frames, not all 16."""
    from facebehavior.face.detect import create_detector

    seen: list[int] = []
    det = create_detector("blazeface_short")

    def counting(images: np.ndarray) -> Detections:
        seen.append(len(images))
        return det(images)

    frames = np.concatenate([sample_frames, sample_frames[::-1][:6]])  # 16 frames, faces throughout
    df = Analyzer(detector=counting, model=None, redetect_every=8, batch_size=16).analyze(frames, video=True)
    assert df.groupby("frame").size().tolist() == [2] * 16
    assert seen == [2]  # one call on the key frames 0 and 8
    seen.clear()
    an = Analyzer(detector=counting, model=None, redetect_every=8, batch_size=16, max_faces=2)
    assert len(an.analyze(frames, video=True)) == 32 and seen == [2]


def test_face_mesh_v2_columns_are_its_blendshapes_and_irises(monkeypatch):
    """Default landmarks: Face Mesh V2 on the detector's ROI, Blendshape V2 on those 478 points
    (torch reference on both sides, as above)."""
    monkeypatch.setenv("FACEBEHAVIOR_BACKEND", "torch")
    from facebehavior.face.detect import create_detector
    from facebehavior.face.landmarks.blendshapes import blendshapes
    from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker
    from facebehavior.io.images import read_image

    img = read_image(SAMPLE_IMAGE)
    an = Analyzer(detector="blazeface_short", model=None)
    df = an.analyze(img).sort_values("x1")
    points = schema.landmark68_columns() + list(schema.POSE_TRANSLATION_COLUMNS) + schema.gaze_columns()
    assert list(df.columns) == schema.face_columns() + schema.landmark_feature_columns() + points
    # detection ROI refined once from its landmarks (see Analyzer._rois_from_detections)
    marks = FaceMeshV2Landmarker()(img[None], create_detector("blazeface_short")(img[None]), refine=1)
    keep = np.flatnonzero(
        marks.presence >= an.stage("landmarks").min_presence
    )  # the Analyzer drops the others
    ref = blendshapes(marks.points)
    order = keep[np.argsort(marks.points[keep, :, 0].min(1))]
    bs = df[[f"bs_{n}" for n in schema.BLENDSHAPE_NAMES]].to_numpy()
    np.testing.assert_allclose(bs, ref[order], atol=1e-5)
    # each iris centre lies between its eye's corners
    for side, (a, b) in (("right", (33, 133)), ("left", (362, 263))):
        x = df[f"iris_{side}_x"].to_numpy()
        lo = np.minimum(marks.points[order, a, 0], marks.points[order, b, 0])
        hi = np.maximum(marks.points[order, a, 0], marks.points[order, b, 0])
        assert ((x > lo) & (x < hi)).all()
    v1 = Analyzer(detector="blazeface_short", landmarks="v1", model=None).analyze(img)
    v1_points = schema.landmark68_columns() + list(schema.POSE_TRANSLATION_COLUMNS)  # no irises: no gaze
    assert list(v1.columns) == schema.face_columns() + v1_points and len(v1) == len(df)
    with pytest.raises(ValueError, match="landmarks must be"):
        Analyzer(landmarks="v3")


def test_a_blendshape_model_receives_the_rows_blendshapes(tmp_path):
    """A checkpoint whose spec asks for blendshapes gets the scores its bs_* columns show."""
    from facebehavior.face.align import align_faces
    from facebehavior.io.images import read_image
    from facebehavior.models.default import predict
    from facebehavior.models.weights import load_weights

    torch.manual_seed(0)
    model = create_model("fbn_fusion_mobile_tiny")
    with torch.no_grad():
        model.au_bs.fill_(3.0)  # make the AU outputs depend visibly on the blendshapes
    spec = WeightSpec(
        name="tiny_fusion",
        architecture="fbn_fusion_mobile_tiny",
        input=InputSpec(
            size=48, channels=1, mean=(0.5,), std=(0.5,), template="fer2013", features=("blendshapes",)
        ),
        tasks={
            "expression": schema.EXPRESSIONS_8,
            "au": tuple(schema.get_au(a).code for a in model.aus),
            "va": ("valence", "arousal"),
        },
    )
    path = tmp_path / "fusion.safetensors"
    save_checkpoint(model.state_dict(), spec, path)
    img = read_image(SAMPLE_IMAGE)
    au_cols = schema.au_columns(model.aus, "prob")
    for version in ("v2", "v1"):
        df = Analyzer(detector="blazeface_short", landmarks=version, model=path).analyze(img)
        kp = np.stack([df[[f"{n}_x", f"{n}_y"]].to_numpy() for n in schema.KEYPOINTS_5], 1)
        dets = Detections(
            np.zeros(len(df), np.int64),
            df[["x1", "y1", "x2", "y2"]].to_numpy(),
            df["confidence"].to_numpy(),
            kp,
        )
        crops = align_faces(img[None], dets, size=48, template="fer2013").crops
        bs = (
            df[[f"bs_{n}" for n in schema.BLENDSHAPE_NAMES]].to_numpy(np.float32) if version == "v2" else None
        )
        m, sp = load_weights(path)
        ref = predict(m, sp, crops, blendshapes=bs)["au"]
        np.testing.assert_allclose(df[au_cols].to_numpy(), ref, atol=2e-3)
        if version == "v2":
            assert np.isfinite(bs).all()
            alone = predict(m, sp, crops)["au"]
            assert np.abs(alone - ref).max() > 0.05  # the blendshapes changed the outputs


def test_auto_landmarks_use_face_mesh_v2_on_stills_and_v1_on_video(sample_frames):
    from facebehavior.io.images import read_image

    an = Analyzer(model=None)  # landmarks="auto"
    photo = an.analyze(read_image(SAMPLE_IMAGE))
    video = an.analyze(sample_frames[:4], video=True)
    assert list(photo.columns) == list(video.columns) == an.columns
    bs = [f"bs_{n}" for n in schema.BLENDSHAPE_NAMES]
    assert np.isfinite(photo[bs].to_numpy()).all() and photo["iris_left_x"].notna().all()
    assert video[bs].isna().all().all() and video["iris_left_x"].isna().all()
    assert len(video) == 8  # two faces in each of the four frames, tracked with FaceMesh-468
    assert Analyzer(landmarks=True).stage("landmarks").landmarks == "auto"


def test_non_finite_model_outputs_are_skipped_not_written(tiny_checkpoint):
    """A face whose outputs hold NaN/Inf is left out and recorded; the other faces are written."""
    from facebehavior.models.weights import load_weights

    model, spec = load_weights(tiny_checkpoint)

    class Poisoned(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x):
            out = dict(self.inner(x))
            out["va"] = out["va"].clone()
            out["va"][0, 1] = float("nan")  # the first face of every batch
            return out

    frames = square_frames(3)
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=(Poisoned().eval(), spec), batch_size=1)
    df = an.analyze(frames, video=True)
    assert (df["success"] == 0).all() and df["valence"].isna().all() and len(an.skipped_faces) == 3
    assert all("non-finite outputs" in s.reason for s in an.skipped_faces)
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=(Poisoned().eval(), spec), batch_size=3)
    df = an.analyze(frames, video=True)
    assert df["success"].tolist() == [0, 1, 1] and df["valence"].isna().tolist() == [True, False, False]
    assert np.isfinite(df.loc[1:, ["valence", "arousal"]].to_numpy()).all()
    assert [s.frame for s in an.skipped_faces] == [0]
