"""``facebehavior analyze``: bad inputs, exit codes, resume, plots, and the real models on the samples."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.cli import main
from facebehavior.io.writers import ResultWriter, read_results
from test_pipeline import SquareDetector, square_frames, write_video

REPO = Path(__file__).resolve().parent.parent
SAMPLE_VIDEO = REPO / "samples" / "video.mp4"


@pytest.fixture
def squares(monkeypatch):
    """Route every detector name to the square-finding test double (no weights needed)."""
    import facebehavior.face.detect as detect

    monkeypatch.setattr(detect, "create_detector", lambda name, **kw: SquareDetector())


FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none", "--no-progress"]


def test_every_bad_input_is_reported_and_the_rest_written(tmp_path, squares, capsys):
    d = tmp_path / "in"
    d.mkdir()
    write_video(d / "a_good.mp4", square_frames(5))
    Image.fromarray(square_frames(1)[0]).save(d / "b_face.png")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(d / "c_noface.png")
    Image.fromarray(square_frames(1, size=(200, 300))[0]).save(d / "d_huge.png")
    (d / "e_zero.mp4").write_bytes(b"")
    write_video(tmp_path / "full.mp4", square_frames(30))
    data = (tmp_path / "full.mp4").read_bytes()
    (d / "f_truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "g_broken.jpg").symlink_to(d / "nowhere.jpg")
    (tmp_path / "notes.doc").write_text("x")
    out = tmp_path / "out.csv"
    code = main(["analyze", str(d), str(tmp_path / "missing.mp4"), str(tmp_path / "notes.doc"),
                 "-o", str(out), "--max-pixels", "50000", *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    expected = [
        f"{d / 'd_huge.png'}: image is 300x200 = 0.1 MP, above the 0.1 MP limit",
        f"{d / 'e_zero.mp4'}: empty file (0 bytes)",
        f"{d / 'f_truncated.mp4'}: ",
        f"{d / 'g_broken.jpg'}: broken link",
        f"{tmp_path / 'missing.mp4'}: file or folder not found",
        f"{tmp_path / 'notes.doc'}: unsupported file type '.doc'",
    ]
    for msg in expected:
        assert f"error: {msg}" in err, msg
    assert "6 input(s) failed" in err
    assert f"warning: {d / 'c_noface.png'}: no face found in any frame" in err
    assert "Traceback" not in err
    df = read_results(out)
    assert sorted(df["source"].unique()) == [str(d / "a_good.mp4"), str(d / "b_face.png")]
    assert df.groupby("source").size().to_dict() == {str(d / "a_good.mp4"): 5, str(d / "b_face.png"): 1}


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["analyze", "x.jpg", "-o", str(tmp_path / "o.txt"), "--model", "none"]) == 2
    assert "unknown output format '.txt'" in capsys.readouterr().err
    assert (
        main(
            ["analyze", "x.jpg", "-o", str(tmp_path / "o.csv"), "--model", str(tmp_path / "nope.safetensors")]
        )
        == 2
    )
    assert "nope.safetensors: checkpoint not found" in capsys.readouterr().err
    assert main(["analyze", "x.jpg", "-o", str(tmp_path / "o.csv"), "--detector", "retina"]) == 2
    assert "unknown detector 'retina'; valid: [" in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_resume_after_interruption_equals_uninterrupted_run(tmp_path, squares, monkeypatch, ext):
    write_video(tmp_path / "v1.mp4", square_frames(23, missing=(5, 6, 7)))
    # v2: face B (right) from the start, face A (left) joins at frame 6. The run is interrupted
    # after that, inside v2: a fresh tracker would number the left face first (A=0, B=1); the
    # tracker state saved with each chunk keeps B=0, A=1 as in the uninterrupted run.
    v2 = square_frames(17, missing=range(6))
    v2[:, 30:60, 100:125] = (250, 140, 140)
    write_video(tmp_path / "v2.mkv", v2)
    Image.fromarray(square_frames(1)[0]).save(tmp_path / "v3.png")
    inputs = [str(tmp_path / n) for n in ("v1.mp4", "v2.mkv", "v3.png")]
    args = [*FAST, "--batch-size", "4", "--every", "2"]
    ref = tmp_path / f"ref.{ext}"
    assert main(["analyze", *inputs, "-o", str(ref), *args]) == 0

    out = tmp_path / f"out.{ext}"
    real_write = ResultWriter.write
    calls = {"n": 0}

    def flaky_write(self, df, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # the 5th chunk: the second chunk of v2
            raise KeyboardInterrupt
        return real_write(self, df, **kw)

    monkeypatch.setattr(ResultWriter, "write", flaky_write)
    assert main(["analyze", *inputs, "-o", str(out), *args]) == 130
    monkeypatch.setattr(ResultWriter, "write", real_write)
    partial = read_results(out)
    assert 0 < len(partial) < len(read_results(ref))
    assert main(["analyze", *inputs, "-o", str(out), "--resume", *args]) == 0
    pd.testing.assert_frame_equal(read_results(out), read_results(ref))
    ids = (
        read_results(ref)
        .query("source.str.endswith('v2.mkv')")
        .groupby("face_id")["frame"]
        .agg(["min", "max"])
    )
    assert ids.to_dict("index") == {0: {"min": 0, "max": 16}, 1: {"min": 6, "max": 16}}
    # Resuming a finished run does nothing and changes nothing.
    assert main(["analyze", *inputs, "-o", str(out), "--resume", *args]) == 0
    pd.testing.assert_frame_equal(read_results(out), read_results(ref))


def test_plots(tmp_path, squares):
    write_video(tmp_path / "v.mp4", square_frames(8))
    out = tmp_path / "o.csv"
    assert (
        main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--plot", str(tmp_path / "plots"), *FAST])
        == 0
    )
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == ["000_v_overlay_frame0.png", "000_v_timeseries.png"]
    img = np.asarray(Image.open(tmp_path / "plots" / "000_v_overlay_frame0.png"))
    assert img.shape == (96, 128, 3)


def test_va_scatter_and_overlay_pixels(tmp_path):
    from facebehavior.viz import draw_overlay, plot_va_scatter

    rows = pd.DataFrame({"face_id": [0], "x1": [10.0], "y1": [10.0], "x2": [30.0], "y2": [30.0],
                         "nose_x": [20.0], "nose_y": [20.0]})  # fmt: skip
    img = draw_overlay(np.zeros((40, 40, 3), np.uint8), rows)
    assert tuple(img[10, 20]) == (230, 25, 75) and tuple(img[20, 20]) == (230, 25, 75)  # box edge, nose dot
    assert img[15, 15].max() == 0
    df = pd.DataFrame(
        {"source": ["a"] * 3, "face_id": [0] * 3, "valence": [0.1, -0.2, 0.5], "arousal": [0.0, 0.3, -0.1]}
    )
    assert plot_va_scatter(df, tmp_path / "va.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="no valence/arousal columns"):
        plot_va_scatter(df.drop(columns="valence"), tmp_path / "x.png")


@pytest.mark.skipif(not SAMPLE_VIDEO.exists(), reason="samples/video.mp4 not present")
def test_end_to_end_on_the_sample_video(tmp_path, capsys):
    out = tmp_path / "video.parquet"
    code = main(
        ["analyze", str(SAMPLE_VIDEO), "-o", str(out), "--every", "8", "--model", "none", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    df = read_results(out)
    assert set(df["frame"]) <= set(range(0, 125, 8)) and df["frame"].nunique() >= 13
    np.testing.assert_allclose(df["timestamp"], df["frame"] / 25.0, atol=1e-6)
    assert df.groupby("frame").size().max() <= 3 and df["face_id"].nunique() >= 2
    assert df[["pose_pitch", "pose_yaw", "pose_roll"]].notna().all().all()
    # Faces are real faces: eyes above the mouth, right eye (subject's) on the image left.
    assert (df["right_eye_x"] < df["left_eye_x"]).all()
    assert (
        df[["right_eye_y", "left_eye_y"]].max(axis=1) < df[["mouth_right_y", "mouth_left_y"]].min(axis=1)
    ).all()
    assert os.path.getsize(out) > 0


@pytest.mark.skipif(not SAMPLE_VIDEO.exists(), reason="samples/video.mp4 not present")
def test_resume_with_real_models_and_geometry_is_exact(tmp_path, monkeypatch):
    args = [
        str(SAMPLE_VIDEO),
        "--every",
        "6",
        "--batch-size",
        "6",
        "--geometry",
        "--model",
        "none",
        "--no-progress",
    ]
    ref, out = tmp_path / "ref.csv", tmp_path / "out.csv"
    assert main(["analyze", *args, "-o", str(ref)]) == 0
    real_write = ResultWriter.write
    calls = {"n": 0}

    def flaky_write(self, df, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_write(self, df, **kw)

    monkeypatch.setattr(ResultWriter, "write", flaky_write)
    assert main(["analyze", *args, "-o", str(out)]) == 130
    monkeypatch.setattr(ResultWriter, "write", real_write)
    assert main(["analyze", *args, "-o", str(out), "--resume"]) == 0
    got, want = read_results(out), read_results(ref)
    assert got["face_id"].nunique() >= 2 and "AU12_prob_geom" in got.columns
    pd.testing.assert_frame_equal(got, want)


def test_output_that_cannot_be_written(tmp_path, capsys):
    (tmp_path / "taken.csv").mkdir()
    assert main(["analyze", "x.jpg", "-o", str(tmp_path / "taken.csv"), "--model", "none"]) == 2
    assert f"error: {tmp_path / 'taken.csv'}: cannot write the output" in capsys.readouterr().err


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_resume_with_other_columns_is_refused(tmp_path, squares, capsys, ext):
    write_video(tmp_path / "v.mp4", square_frames(4))
    out = tmp_path / f"o.{ext}"
    assert main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), *FAST]) == 0
    before = read_results(out)
    tiny = tmp_path / "m.safetensors"
    import torch

    from facebehavior import schema
    from facebehavior.models import create_model
    from facebehavior.models.weights import InputSpec, WeightSpec, save_checkpoint

    torch.manual_seed(0)
    spec = WeightSpec(
        name="t",
        architecture="facebehaviornet_mobile_tiny",
        arch_kwargs={"num_expressions": 7, "aus": [], "va": False},
        input=InputSpec(size=32),
        tasks={"expression": schema.EXPRESSIONS_7},
    )
    save_checkpoint(
        create_model("facebehaviornet_mobile_tiny", num_expressions=7, aus=(), va=False).state_dict(),
        spec,
        tiny,
    )
    args = [a if a != "none" else str(tiny) for a in FAST]
    assert main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--resume", *args]) == 2
    assert "holds other columns than these options produce" in capsys.readouterr().err
    pd.testing.assert_frame_equal(read_results(out), before)


def test_option_pairs_parse_the_same_for_prepare_and_evaluate():
    from facebehavior.commands import parse_options

    got = parse_options(["camera=right", "aus=[1, 2, 4]", 'corpus="mine"', "majority=microsoft", "k=a: b: c"])
    want = {"camera": "right", "aus": (1, 2, 4), "corpus": "mine", "majority": "microsoft"}
    assert got == {**want, "k": "a: b: c"}
    for bad in ("novalue", "=3"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_options([bad])


def test_landmarks_option_selects_the_landmark_model(tmp_path):
    out = {}
    for version in ("v2", "v1"):
        path = tmp_path / f"{version}.csv"
        assert (
            main(
                [
                    "analyze",
                    str(REPO / "samples" / "face.jpg"),
                    "-o",
                    str(path),
                    "--model",
                    "none",
                    "--landmarks",
                    version,
                ]
            )
            == 0
        )
        out[version] = pd.read_csv(path)
    assert "bs_jawOpen" in out["v2"].columns and "iris_left_x" in out["v2"].columns
    assert "bs_jawOpen" not in out["v1"].columns
    assert len(out["v1"]) == len(out["v2"])
