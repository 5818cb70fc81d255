"""Environment variables the CLI reads (docs/pipeline.md, "Environment variables"): bad values say so."""

from __future__ import annotations

from facebehavior.cli import main
from test_cli import squares  # noqa: F401
from test_pipeline import square_frames, write_video

FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none"]


def test_a_bad_progress_interval_warns_and_the_run_goes_on(tmp_path, squares, monkeypatch, capsys):  # noqa: F811
    write_video(tmp_path / "v.mp4", square_frames(4))
    monkeypatch.setenv("FACEBEHAVIOR_PROGRESS_SECONDS", "ten")
    assert main(["analyze", str(tmp_path / "v.mp4"), "-o", str(tmp_path / "o.csv"), *FAST]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: FACEBEHAVIOR_PROGRESS_SECONDS='ten' is not a number of seconds >= 0; reporting every 10 s"
        in err
    )
    assert "progress: 1/1 inputs done, 4 frames analysed" in err and "Traceback" not in err


def test_a_bad_thread_count_is_a_usage_error(tmp_path, squares, monkeypatch, capsys):  # noqa: F811
    write_video(tmp_path / "v.mp4", square_frames(2))
    monkeypatch.setenv("FACEBEHAVIOR_THREADS", "many")
    assert main(["analyze", str(tmp_path / "v.mp4"), "-o", str(tmp_path / "o.csv"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("error: FACEBEHAVIOR_THREADS='many': expected a whole number >= 0") and "\n" not in err
    )
