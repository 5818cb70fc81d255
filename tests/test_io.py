"""Readers, input expansion and resumable writers, on files each test builds itself."""

from __future__ import annotations

import io
import json
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facebehavior.io import InputError
from facebehavior.io.images import read_image
from facebehavior.io.sources import expand_inputs
from facebehavior.io.video import VideoReader, probe_video
from facebehavior.io.writers import open_writer, read_results


def write_video(
    path: Path, pts_ms: list[int], *, size=(64, 48), faststart: bool = False, seed: int = 0
) -> np.ndarray:
    """Write an H.264 video whose frame k is shown at pts_ms[k] milliseconds; returns the frames."""
    w, h = size
    # Smooth pictures (a codec keeps them), each frame a different colour.
    ramp = np.linspace(0, 120, w)[None, :, None]
    colours = (np.arange(len(pts_ms))[:, None] * np.array([37, 71, 13]) + seed) % 120
    frames = (ramp[None] + colours[:, None, None, :] + np.zeros((1, h, 1, 1))).astype(np.uint8)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=opts) as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for img, p in zip(frames, pts_ms, strict=True):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts, f.time_base = p, Fraction(1, 1000)
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return frames


# --- images -------------------------------------------------------------------------------------


def test_rgb_jpeg_png_bmp_tiff_webp_roundtrip(tmp_path):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[:, :4, 2] = 50
    for ext in ("png", "bmp", "tiff", "webp", "jpg"):
        p = tmp_path / f"x.{ext}"
        kw = {"lossless": True} if ext == "webp" else ({"quality": 100} if ext == "jpg" else {})
        Image.fromarray(rgb).save(p, **kw)
        out = read_image(p)
        assert out.shape == (6, 8, 3) and out.dtype == np.uint8
        tol = 16 if ext == "jpg" else 0  # JPEG: chroma subsampling at a sharp colour edge
        assert np.abs(out.astype(int) - rgb).max() <= tol, ext


def test_grayscale_becomes_three_equal_channels(tmp_path):
    g = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(g, "L").save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], g)


def test_alpha_is_composited_on_black(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = [[255, 0], [128, 51]]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png").astype(int)
    expected = np.rint(np.array((200, 100, 50))[None, None] * rgba[..., 3:4] / 255.0)
    assert np.abs(out - expected).max() <= 1


def test_16bit_is_scaled_not_clipped(tmp_path):
    v = np.array([[0, 257, 32896, 65535]], np.uint16)  # 8-bit 0, 1, 128, 255 in 16 bits
    Image.fromarray(v).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    out = read_image(tmp_path / "d.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])


def test_palette_image(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    img.putdata([0, 1, 2])
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_image(tmp_path / "p.png")[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])


def test_exif_orientation_is_applied(tmp_path):
    # Stored 4 wide x 2 high with a red left column; orientation 6 = "rotate 90° clockwise to view".
    a = np.zeros((2, 4, 3), np.uint8)
    a[:, 0] = (255, 0, 0)
    img = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.png", exif=exif)
    out = read_image(tmp_path / "r.png")
    assert out.shape == (4, 2, 3)  # now portrait
    np.testing.assert_array_equal(out[0, :, 0], [255, 255])  # left column went to the top row
    assert out[1:, :, 0].max() == 0


def test_huge_image_rejected_or_downscaled(tmp_path):
    Image.new("RGB", (100, 80), (10, 20, 30)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match=r"big.png: image is 100x80 .*above the 0.0 MP limit"):
        read_image(tmp_path / "big.png", max_pixels=2000)
    out = read_image(tmp_path / "big.png", max_pixels=2000, downscale=True)
    assert out.shape[0] * out.shape[1] <= 2000 and out.shape[1] / out.shape[0] == pytest.approx(
        1.25, abs=0.05
    )
    assert tuple(out[3, 3]) == (10, 20, 30)


@pytest.mark.parametrize(
    ("content", "name", "reason"),
    [
        (None, "missing.jpg", "file not found"),
        (b"", "empty.jpg", r"empty file \(0 bytes\)"),
        (b"this is not an image" * 10, "text.png", "not a readable image"),
        ("truncated", "cut.jpg", "corrupt or truncated image"),
    ],
)
def test_bad_images_give_one_line_errors(tmp_path, content, name, reason):
    p = tmp_path / name
    if content == "truncated":
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
            buf, "JPEG"
        )
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=reason) as e:
        read_image(p)
    assert str(e.value).startswith(str(p)) and "\n" not in str(e.value)


# --- video --------------------------------------------------------------------------------------


def test_vfr_timestamps_indices_and_batches(tmp_path):
    pts = [0, 33, 100, 110, 400, 433, 1000]
    frames = write_video(tmp_path / "vfr.mp4", pts)
    batches = list(VideoReader(tmp_path / "vfr.mp4", batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    idx = np.concatenate([b.index for b in batches])
    ts = np.concatenate([b.timestamp for b in batches])
    np.testing.assert_array_equal(idx, np.arange(7))
    np.testing.assert_allclose(ts, np.array(pts) / 1000.0, atol=1e-9)
    first = batches[0].images[0].astype(int)
    assert first.shape == (48, 64, 3) and np.abs(first - frames[0]).mean() < 4  # lossy codec, same picture


def test_every_and_start_frame(tmp_path):
    write_video(tmp_path / "v.mkv", [40 * k for k in range(10)])
    got = [
        (int(i), round(float(t), 3))
        for b in VideoReader(tmp_path / "v.mkv", every=3, start_frame=4)
        for i, t in zip(b.index, b.timestamp, strict=True)
    ]
    assert got == [(6, 0.24), (9, 0.36)]
    assert probe_video(tmp_path / "v.mkv")["width"] == 64


def test_bad_videos(tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(InputError, match=r"zero.mp4: empty file \(0 bytes\)"):
        VideoReader(tmp_path / "zero.mp4")
    write_video(tmp_path / "full.mp4", [33 * k for k in range(40)])
    data = (tmp_path / "full.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])  # moov atom at the end is lost
    with pytest.raises(InputError, match=r"cut.mp4: .*truncated"):
        list(VideoReader(tmp_path / "cut.mp4"))
    # Header at the front (faststart), media cut off: the frames before the cut still come out.
    write_video(tmp_path / "fs.mp4", [33 * k for k in range(40)], faststart=True)
    data = (tmp_path / "fs.mp4").read_bytes()
    (tmp_path / "fscut.mp4").write_bytes(data[: len(data) // 2])
    got = []
    with pytest.raises(InputError, match=r"fscut.mp4: video ends after \d+ of 40 declared frames"):
        for b in VideoReader(tmp_path / "fscut.mp4", batch_size=4):
            got += b.index.tolist()
    assert 1 <= len(got) < 40 and got == list(range(len(got)))
    with av.open(str(tmp_path / "audio.mkv"), "w") as c:  # audio only
        s = c.add_stream("pcm_s16le", rate=8000)
        fr = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        fr.sample_rate = 8000
        for pk in s.encode(fr):
            c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    with pytest.raises(InputError, match=r"audio.mkv: no video stream"):
        VideoReader(tmp_path / "audio.mkv")


def test_missing_webcam_is_an_input_error():
    from facebehavior.io.video import WebcamReader

    with pytest.raises(InputError, match=r"webcam:97: cannot open camera"):
        list(WebcamReader(97))


# --- sources ------------------------------------------------------------------------------------


def test_expand_inputs(tmp_path):
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    for name in ("img10.png", "img2.png", "clip.mp4", "notes.txt", ".hidden.png", "sub/deep.jpg"):
        (d / name).write_bytes(b"x")
    (d / "gone.jpg").symlink_to(d / "nowhere.jpg")
    (tmp_path / "a.xyz").write_bytes(b"x")
    srcs, errs = expand_inputs(
        [d, tmp_path / "missing.mp4", tmp_path / "a.xyz", str(tmp_path / "*.none"), "webcam:1"]
    )
    assert [(Path(s.path).name, s.kind) for s in srcs] == [
        ("clip.mp4", "video"),
        ("img2.png", "image"),
        ("img10.png", "image"),
        ("webcam:1", "webcam"),
    ]
    assert srcs[-1].device == 1
    msgs = [str(e) for e in errs]
    assert any("gone.jpg: broken link" in m for m in msgs)
    assert any("missing.mp4: file or folder not found" in m for m in msgs)
    assert any("a.xyz: unsupported file type '.xyz'" in m for m in msgs)
    assert any("*.none: no files match" in m for m in msgs)
    deep, _ = expand_inputs([d], recursive=True)
    assert "deep.jpg" in [Path(s.path).name for s in deep]
    globbed, _ = expand_inputs([str(d / "img*.png"), str(d / "img2.png")])
    assert [Path(s.path).name for s in globbed] == ["img2.png", "img10.png"]


def test_unreadable_folder_entry_is_reported(tmp_path, monkeypatch):
    (tmp_path / "ok.png").write_bytes(b"x")
    locked = tmp_path / "locked.png"
    locked.write_bytes(b"x")
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # running as root: permissions do not apply, pretend they do
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    try:
        srcs, errs = expand_inputs([tmp_path])
    finally:
        locked.chmod(0o644)
    assert [Path(s.path).name for s in srcs] == ["ok.png"]
    assert [str(e) for e in errs] == [f"{locked}: permission denied (file is not readable)"]


# --- writers ------------------------------------------------------------------------------------


def _chunk(src: str, frames: list[int]) -> pd.DataFrame:
    f = np.array(frames, np.int64)
    return pd.DataFrame(
        {"source": pd.Series([src] * len(f), dtype=object), "frame": f, "v": f.astype(np.float32) / 4}
    )


@pytest.mark.parametrize("ext", ["csv", "jsonl", "parquet"])
def test_writer_resume_drops_uncommitted_chunk(tmp_path, ext):
    out = tmp_path / f"out.{ext}"
    w = open_writer(out)
    w.write(_chunk("a", [0, 1]), source="a", last_frame=1, done=False, frames=2)
    w.write(_chunk("a", []), source="a", last_frame=3, done=True, frames=2, no_face=2)
    w.write(_chunk("b", [0]), source="b", last_frame=0, done=False, frames=1)
    # Simulate a kill: the next chunk reaches the data file but is never committed, the writer
    # never closes.
    w._journal.close()
    if ext == "parquet":
        w._ipc.write_table(__import__("pyarrow").Table.from_pandas(_chunk("b", [1]), preserve_index=False))
        w._sink.flush()
    else:
        with open(out, "ab") as f:
            f.write(b"b,1,0.25\nb,2,0" if ext == "csv" else b'{"source":"b","frame":1,"v":0.25}\n{"sou')
    with open(w.progress_path, "a") as f:
        f.write('{"source": "b", "last_fr')  # a torn journal line
    w2 = open_writer(out, resume=True)
    assert w2.progress["a"].done and w2.progress["a"].no_face == 2 and w2.progress["a"].frames == 4
    assert w2.progress["b"].last_frame == 0 and not w2.progress["b"].done
    w2.write(_chunk("b", [1, 2]), source="b", last_frame=2, done=True, frames=2)
    w2.close()
    got = read_results(out)
    expected = pd.concat([_chunk("a", [0, 1]), _chunk("b", [0, 1, 2])], ignore_index=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    lines = [json.loads(x) for x in w2.progress_path.read_text().splitlines()]
    assert lines[-1]["rows"] == 5 and lines[-1]["done"]


def test_parquet_has_row_group_per_chunk_and_resumes_from_finished_file(tmp_path):
    import pyarrow.parquet as pq

    out = tmp_path / "r.parquet"
    with open_writer(out) as w:
        w.write(_chunk("a", [0, 1]), source="a", last_frame=1, done=False)
        w.write(_chunk("a", [2]), source="a", last_frame=2, done=False)
    assert pq.ParquetFile(out).num_row_groups == 2
    with open_writer(out, resume=True) as w:
        assert w.progress["a"].last_frame == 2
        w.write(_chunk("a", [3]), source="a", last_frame=3, done=True)
    assert read_results(out)["frame"].tolist() == [0, 1, 2, 3]
    assert not (tmp_path / "r.parquet.journal.arrows").exists()


def test_resume_without_journal_uses_rows(tmp_path):
    out = tmp_path / "o.csv"
    pd.concat([_chunk("a", [0, 5]), _chunk("b", [2])]).to_csv(out, index=False)
    with open(out, "a") as f:
        f.write("b,3")  # torn line
    w = open_writer(out, resume=True)
    assert w.progress["a"].last_frame == 5 and w.progress["b"].last_frame == 2
    w.close()
    assert read_results(out)["frame"].tolist() == [0, 5, 2]


def test_unknown_output_extension():
    with pytest.raises(
        InputError, match=r"out.json: unknown output format '.json' \(JSON output is JSON Lines"
    ):
        open_writer("out.json")


def test_parquet_first_chunk_empty(tmp_path):
    out = tmp_path / "e.parquet"
    empty = _chunk("a", []).astype({"source": object})
    with open_writer(out) as w:
        w.write(empty, source="a", last_frame=0, done=True, frames=1, no_face=1)
        w.write(_chunk("b", [0, 1]), source="b", last_frame=1, done=True, frames=2)
    assert read_results(out)["source"].tolist() == ["b", "b"]
    with open_writer(tmp_path / "only_empty.parquet") as w:
        w.write(empty, source="a", last_frame=0, done=True, frames=1, no_face=1)
    assert len(read_results(tmp_path / "only_empty.parquet")) == 0


def test_jsonl_paths_are_readable_and_round_trip(tmp_path):
    df = pd.DataFrame({"source": ["clips/a.mp4", "odd\\/name", "x\\\\/y"], "frame": [0, 1, 2]})
    with open_writer(tmp_path / "o.jsonl") as w:
        w.write(df, source="s", last_frame=2, done=True)
    text = (tmp_path / "o.jsonl").read_text()
    assert '"source":"clips/a.mp4"' in text
    assert [json.loads(line)["source"] for line in text.splitlines()] == df["source"].tolist()
