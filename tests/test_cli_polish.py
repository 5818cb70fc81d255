"""CLI conveniences: --version, defaults in --help, bundled model names, progress without a terminal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facebehavior.cli import main
from test_cli import squares  # noqa: F401
from test_pipeline import square_frames, write_video


def test_version_and_defaults_in_help(capsys):
    from facebehavior import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"facebehavior {__version__}"
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("--every N analyse every N-th video frame (default: 1)", "(default: 16)", "(default: cpu)"):
        assert shown in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_bundled_models_by_name(tmp_path, squares, capsys):  # noqa: F811
    clip = tmp_path / "clip.mp4"
    write_video(clip, square_frames(4))
    out = tmp_path / "v1.csv"
    code = main(["analyze", str(clip), "-o", str(out), "--model", "fbn_mobile_ferplus", "--no-progress"])
    assert code == 0 and "AU12_prob" in pd.read_csv(out).columns
    code = main(["analyze", str(clip), "-o", str(tmp_path / "x.csv"), "--model", "fbn_nope", "--no-progress"])
    err = capsys.readouterr().err
    assert (
        code == 2 and "not a bundled model" in err and "fbn_mobile_ferplus" in err and "Traceback" not in err
    )


def test_progress_lines_without_a_terminal(tmp_path, squares, capsys, monkeypatch):  # noqa: F811
    clips = []
    for i in range(2):
        clips.append(tmp_path / f"c{i}.mp4")
        write_video(clips[-1], square_frames(6))
    monkeypatch.setenv("FACEBEHAVIOR_PROGRESS_SECONDS", "0")  # a line per chunk
    out = tmp_path / "out.csv"
    assert main(["analyze", *map(str, clips), "-o", str(out), "--batch-size", "4"]) == 0
    lines = [x for x in capsys.readouterr().err.splitlines() if x.startswith("progress:")]
    assert len(lines) == 4 and lines[-1].startswith("progress: 2/2 inputs done, 12 frames analysed")
    assert main(["analyze", *map(str, clips), "-o", str(out), "--no-progress"]) == 0
    assert "progress:" not in capsys.readouterr().err


def test_api_progress_callback_and_bar(capsys):
    from facebehavior.pipeline import Analyzer
    from test_pipeline import SquareDetector

    seen = []
    an = Analyzer(detector=SquareDetector(), landmarks=False, model=None, batch_size=4)
    df = an.analyze(square_frames(10), video=True, progress=seen.append)
    assert [c.frames for c in seen] == [4, 4, 2] and len(df) == 10
    an.analyze(square_frames(3), video=True, progress=True)
    assert "3frame" in capsys.readouterr().err.replace(" ", "")
    assert np.all(df["success"] == 1)
