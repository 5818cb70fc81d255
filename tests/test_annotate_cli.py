"""``analyze --annotate`` failures: refused before the analysis when they can be foreseen, exit 1 after it."""

from __future__ import annotations

import pandas as pd
from PIL import Image

from facebehavior.cli import main
from test_cli import squares  # noqa: F401
from test_pipeline import square_frames, write_video

FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none", "--no-progress"]


def test_a_failed_annotation_exits_1_with_the_error(tmp_path, squares, monkeypatch, capsys):  # noqa: F811
    import facebehavior.viz.overlay as overlay

    write_video(tmp_path / "v.mp4", square_frames(6))
    Image.fromarray(square_frames(1)[0]).save(tmp_path / "a.png")

    def disk_full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(overlay, "annotate_video", disk_full)
    out = tmp_path / "o.csv"
    code = main(["analyze", str(tmp_path / "v.mp4"), str(tmp_path / "a.png"), "-o", str(out),
                 "--annotate", str(tmp_path / "ann"), *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"error: --annotate: {tmp_path / 'v.mp4'}: cannot be annotated (No space left on device)" in err
    assert "--annotate failed for 1 input(s)" in err and "Traceback" not in err
    # The other input is still annotated, and the results file is complete.
    assert [p.name for p in (tmp_path / "ann").iterdir()] == ["a.annotated.png"]
    assert len(pd.read_csv(out)) == 7

    # An error the annotators report themselves (the source became unreadable) also gives exit 1.
    import facebehavior.io.images as images
    from facebehavior.io import InputError

    code = main(["analyze", str(tmp_path / "a.png"), "-o", str(out), "--annotate", str(tmp_path / "b.png"),
                 *FAST])  # fmt: skip
    assert code == 0 and (tmp_path / "b.png").exists(), capsys.readouterr().err
    real = images.read_image
    calls = []

    def fail_second_read(path, *a, **kw):  # the analysis reads the image, the annotation cannot
        calls.append(path)
        if len(calls) > 1:
            raise InputError(path, "image cannot be decoded")
        return real(path, *a, **kw)

    monkeypatch.setattr(images, "read_image", fail_second_read)
    code = main(["analyze", str(tmp_path / "a.png"), "-o", str(out), "--annotate", str(tmp_path / "c.png"),
                 *FAST])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and f"error: --annotate: {tmp_path / 'a.png'}: image cannot be decoded" in err
    assert not (tmp_path / "c.png").exists() and len(pd.read_csv(out)) == 1


def test_foreseeable_annotation_problems_are_refused_before_the_analysis(tmp_path, squares, capsys):  # noqa: F811
    Image.fromarray(square_frames(1)[0]).save(tmp_path / "a.png")
    write_video(tmp_path / "v.mp4", square_frames(4))
    out = tmp_path / "o.csv"
    cases = [
        ([str(tmp_path / "a.png")], "x.mp4", "an annotated image is written as .bmp, .jpeg, .jpg, .png"),
        ([str(tmp_path / "v.mp4")], "x.png", "an annotated video is written as .m4v, .mkv, .mov, .mp4"),
        ([str(tmp_path / "v.mp4"), str(tmp_path / "a.png")], "x.mp4", "2 inputs need a folder, not a file"),
        (["webcam:0"], "ann", "webcam:0 cannot be annotated (camera frames are not kept); watch it live"),
    ]
    for inputs, target, msg in cases:
        code = main(["analyze", *inputs, "-o", str(out), "--annotate", str(tmp_path / target), *FAST])
        err = capsys.readouterr().err
        assert code == 2, (target, err)
        assert f"error: --annotate {tmp_path / target}: {msg}" in err, err
        assert not out.exists() and not (tmp_path / target).exists()
