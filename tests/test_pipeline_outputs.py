"""What analyze writes: every analysed frame, landmark/gaze columns, a real OpenFace 2 table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebehavior import schema
from facebehavior.cli import main
from facebehavior.pipeline import Analyzer
from test_pipeline import SAMPLE_IMAGE, sample_frames, write_video  # noqa: F401

FIXTURE = Path(__file__).parent / "fixtures" / "openface2_featureextraction_header.csv"


@pytest.fixture(scope="module")
def leaving_clip(tmp_path_factory, sample_frames) -> Path:  # noqa: F811
    """10 frames of the sample video; nobody in frames 4-6 (the faces leave and come back)."""
    frames = sample_frames[:10].copy()
    frames[4:7] = 0
    path = tmp_path_factory.mktemp("clip") / "leave.mp4"
    write_video(path, frames)
    return path


def test_a_clip_where_the_faces_leave_and_return_has_a_row_per_analysed_frame(leaving_clip, tmp_path):
    out = tmp_path / "out.csv"
    assert main(["analyze", str(leaving_clip), "-o", str(out), "--no-progress"]) == 0
    df = pd.read_csv(out)
    assert sorted(df["frame"].unique()) == list(range(10))
    empty = df[df["success"] == 0]
    assert empty["frame"].tolist() == [4, 5, 6]  # one row each, no face
    assert (empty["face_id"] == -1).all() and empty[["x1", "valence", "x_30"]].isna().all().all()
    faces = df[df["success"] == 1]
    assert set(faces["frame"]) == set(range(10)) - {4, 5, 6}
    assert faces[["x1", "valence", "x_30", "y_8"]].notna().all().all()
    assert faces.groupby("frame").size().eq(2).all()  # the sample's two people, back after the gap
    only = tmp_path / "faces.csv"
    assert main(["analyze", str(leaving_clip), "-o", str(only), "--no-progress", "--faces-only"]) == 0
    assert (pd.read_csv(only)["success"] == 1).all() and len(pd.read_csv(only)) == len(faces)


def test_a_no_face_image_writes_a_header_only_csv(tmp_path):
    from PIL import Image

    img = tmp_path / "wall.png"
    Image.fromarray(np.full((120, 160, 3), 128, np.uint8)).save(img)
    out = tmp_path / "out.csv"
    main(["analyze", str(img), "-o", str(out), "--no-progress"])
    df = pd.read_csv(out)
    assert len(df) == 0 and "success" in df.columns and "AU12_prob" in df.columns


def test_landmark_and_gaze_columns_follow_the_points_option():
    from facebehavior.io.images import read_image

    img = read_image(SAMPLE_IMAGE)
    base = Analyzer(model=None, points="68").analyze(img)
    assert set(schema.landmark68_columns() + schema.gaze_columns()) <= set(base.columns)
    assert not any(c.startswith(("X_", "eye_lmk_", "mesh_")) for c in base.columns)
    # The 68 points are the FaceMesh points of the documented mapping, in frame pixels.
    from facebehavior.face.landmarks.indices import landmarks68

    full = Analyzer(model=None, points="all").analyze(img)
    mesh = np.stack([full[[f"mesh_{a}_{i}" for i in range(478)]].to_numpy() for a in "xyz"], axis=-1).astype(
        np.float32
    )
    ref = landmarks68(mesh)
    np.testing.assert_allclose(full[[f"x_{i}" for i in range(68)]].to_numpy(), ref[..., 0], atol=1e-3)
    np.testing.assert_allclose(full[[f"y_{i}" for i in range(68)]].to_numpy(), ref[..., 1], atol=1e-3)
    assert set(schema.landmark68_columns(three_d=True) + schema.eye_landmark_columns()) <= set(full.columns)
    g = full[["gaze_angle_x", "gaze_angle_y"]].to_numpy()
    assert np.isfinite(g).all() and (np.abs(g) < 0.8).all()  # people looking roughly at the camera
    none = Analyzer(model=None, points="none").analyze(img)
    assert not any(c.startswith(("x_", "gaze_")) for c in none.columns)
    with pytest.raises(ValueError, match="points"):
        Analyzer(model=None, points="everything")


def test_openface_style_is_openface_2s_table(leaving_clip, tmp_path):
    """Header read from OpenFace 2's FeatureExtraction output; a script using only its names runs."""
    out = tmp_path / "of.csv"
    assert (
        main(["analyze", str(leaving_clip), "-o", str(out), "--no-progress", "--column-style", "openface"])
        == 0
    )
    df = pd.read_csv(out, skipinitialspace=True)
    header = FIXTURE.read_text().strip().split(",")
    assert list(df.columns) == [h.strip() for h in header] + ["source"]
    # An OpenFace user's script: frames are 1-based, success flags every frame, AU_c is 0/1.
    assert df["frame"].min() == 1 and sorted(df["frame"].unique()) == list(range(1, 11))
    ok = df[df["success"] == 1]
    assert ok["frame"].nunique() == 7 and df.loc[df["success"] == 0, "frame"].tolist() == [5, 6, 7]
    c_cols = [c for c in df.columns if c.endswith("_c")]
    assert len(c_cols) == 18
    assert set(np.unique(ok[c_cols].to_numpy()[np.isfinite(ok[c_cols].to_numpy())])) <= {0.0, 1.0}
    r = ok[[c for c in df.columns if c.endswith("_r")]].to_numpy()
    assert np.all((r[np.isfinite(r)] >= 0) & (r[np.isfinite(r)] <= 5))
    smiling = (ok["AU12_c"] == 1).mean()
    assert 0.0 <= smiling <= 1.0
    assert np.abs(ok[["pose_Rx", "pose_Ry", "pose_Rz"]].to_numpy()).max() < 1.6  # radians, not degrees
    assert ok[["x_0", "y_67", "X_30", "Z_30", "pose_Tz"]].notna().all().all() and (ok["pose_Tz"] > 0).all()
