"""``facebehavior prepare``: the CLI over the face-crop cache."""

from __future__ import annotations

from facebehavior.cli import main
from facebehavior.data.cache import FaceCache
from test_cache import make_corpus


def test_prepare_cli_builds_and_resumes(tmp_path, capsys):
    manifest = make_corpus(tmp_path / "corpus")
    out = tmp_path / "cache"
    args = ["prepare", "manifest", str(manifest), "--split", "train", "-o", str(out), "--size", "96",
            "--shard-size", "3", "--option", 'corpus="mine"']  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "3 faces, 1 without a face, 1 unreadable (2 shards built now, 0 were complete)" in text
    cache = FaceCache(out / "train")
    assert cache.table.corpus == "mine" and cache.crop(0).shape == (96, 96, 3)
    assert main(args) == 0
    assert "(0 shards built now, 2 were complete)" in capsys.readouterr().out
    # Other settings into the same folder are refused with an actionable message.
    assert main([*args[:-4], "--size", "64"]) == 2
    # The recipes' naming: one folder per split, named by the caller.
    flat = [*args[:6], str(tmp_path / "c" / "mine_{split}"), "--size", "64", "--no-facemesh"]
    assert main(flat) == 0 and FaceCache(tmp_path / "c" / "mine_train").crop(0).shape == (64, 64, 3)


def test_prepare_reports_missing_corpus(tmp_path, caplog):
    assert (
        main(["prepare", "disfa", str(tmp_path / "nope"), "--split", "fold1_test", "-o", str(tmp_path)]) == 2
    )
    assert "ActionUnit_Labels" in caplog.text
    assert (
        main(["prepare", "disfa", str(tmp_path), "--split", "x", "-o", str(tmp_path), "--detector", "nope"])
        == 2
    )
    assert "nope" in caplog.text


def test_prepare_video_corpus(tmp_path, capsys):
    """DISFA layout whose SN001 video is the repo's sample clip; other subjects' videos are broken."""
    import shutil
    from pathlib import Path

    from facebehavior.data.datasets.disfa import DISFA_AUS, DISFA_PARTS

    root = tmp_path / "DISFA"
    sample = Path(__file__).resolve().parents[1] / "samples" / "video.mp4"
    for s in sorted(x for p in DISFA_PARTS for x in p):
        n = 6 if s == "SN001" else 1
        for a in DISFA_AUS:
            f = root / "ActionUnit_Labels" / s / f"{s}_au{a}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(f"{i + 1},{3 if a == 12 else 0}\n" for i in range(n)))
        video = root / "Videos_LeftCamera" / f"LeftVideo{s}_comp.avi"
        video.parent.mkdir(parents=True, exist_ok=True)
        if s == "SN001":
            shutil.copy(sample, video)
        else:
            video.write_bytes(b"not a video")
    out = tmp_path / "cache"
    args = [
        "prepare",
        "disfa",
        str(root),
        "--split",
        "all",
        "-o",
        str(out),
        "--no-facemesh",
        "--shard-size",
        "8",
    ]
    assert main(args) == 0
    assert "6 faces, 0 without a face, 26 unreadable" in capsys.readouterr().out
    cache = FaceCache(out / "all")
    assert cache.table.subject.tolist() == ["SN001"] * 6 and cache.table.frame.tolist() == list(range(6))
    assert cache[0]["au"][DISFA_AUS.index(12)] == 1 and cache[0]["image"].std() > 10
