"""The live window (``analyze --show``, ``facebehavior.viz.live``), tested on a real X display.

The tests need an X server: the one in ``$DISPLAY``, else a private ``Xvfb`` they start (Debian:
``apt install xvfb``). Without either they skip (pytest prints the reason: ``-ra``). What is checked: the
picture on the screen (a screenshot of the window) is the ``--annotate`` overlay of the frame with
the measured rate in a corner; every analysed frame is shown; closing the window, ``q`` and Ctrl-C
stop the run with the committed results written; no display gives a one-line error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facebehavior.types import Frames
from facebehavior.viz import live
from facebehavior.viz._common import face_colour, hex_rgb
from facebehavior.viz.overlay import draw_overlay
from test_cli import squares  # noqa: F401
from test_pipeline import square_frames, write_video

REPO = Path(__file__).resolve().parent.parent
FAST = ["--detector", "blazeface_short", "--no-landmarks", "--model", "none", "--no-progress"]


def _can_connect(display: str) -> bool:
    code = "import tkinter; tkinter.Tk().destroy()"
    env = {**os.environ, "DISPLAY": display}
    return (
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60).returncode == 0
    )


@pytest.fixture(scope="module")
def display():
    """An X display for the module: ``$DISPLAY`` if it works, else a private Xvfb; skip otherwise."""
    try:
        import tkinter  # noqa: F401
    except ImportError:
        reason = "the live window needs tkinter (apt install python3-tk)"
        pytest.skip(reason)
    existing = os.environ.get("DISPLAY")
    if existing and _can_connect(existing):
        yield existing
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        reason = "no X display and no Xvfb to start one (apt install xvfb); the live window is not tested"
        pytest.skip(reason)
    r, w = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()  # Xvfb writes its display number once it accepts clients
    try:
        if not number:
            reason = "Xvfb did not start; the live window is not tested"
            pytest.skip(reason)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DISPLAY", f":{number}")
            mp.delenv("WAYLAND_DISPLAY", raising=False)
            yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def monotonic(self) -> float:
        return self.t


def face_table(frames: range, missing=(), source="clip.mp4") -> pd.DataFrame:
    """Rows like ``analyze`` writes for square_frames: one face per frame, success-0 rows in ``missing``."""
    rows = []
    for k in frames:
        if k in missing:
            rows.append({"source": source, "frame": k, "face_id": -1, "success": 0, "x1": np.nan,
                         "y1": np.nan, "x2": np.nan, "y2": np.nan})  # fmt: skip
        else:
            rows.append({"source": source, "frame": k, "face_id": 0, "success": 1, "x1": 10.0 + 2 * k,
                         "y1": 20.0, "x2": 50.0 + 2 * k, "y2": 60.0, "expr_happiness": 0.8,
                         "expr_neutral": 0.2, "expression": "happiness"})  # fmt: skip
    return pd.DataFrame(rows)


def screenshot(window: live.LiveWindow) -> np.ndarray:
    from PIL import ImageGrab, features

    if not features.check_feature("xcb"):
        pytest.skip("this Pillow build cannot take X screenshots (no XCB support)")

    window.poll()
    return np.asarray(ImageGrab.grab(bbox=window.window_region()))[..., :3]


def test_the_screen_shows_the_overlay_and_the_measured_rate(display, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(live, "time", types.SimpleNamespace(monotonic=clock.monotonic))
    imgs = square_frames(6, missing=(3,))
    rows = face_table(range(6), missing=(3,))
    with live.LiveWindow(max_size=(1000, 1000)) as window:
        assert window.fps == 0.0
        clock.t += 1.0
        window.show(Frames(imgs[:3], np.arange(3), np.zeros(3), "clip.mp4"), rows[rows.frame < 3])
        assert window.fps == pytest.approx(3 / 1.0)  # 3 frames, 1 s since the clock started
        shot = screenshot(window)
        assert np.array_equal(shot, window.last_image)  # what is on the screen is what was rendered
        expected = draw_overlay(imgs[2], rows[rows.frame == 2])
        # Outside the rate's corner the screen is the --annotate overlay, pixel for pixel ...
        corner = np.any(shot != expected, axis=2)
        ys, xs = np.nonzero(corner)
        assert ys.max() < 30 and xs.max() < 60, "only the top-left corner differs from the overlay"
        # ... with the face's box in the face's colour (the square of frame 2 spans x 14..54).
        assert tuple(shot[40, 14]) == hex_rgb(face_colour(0))
        # The corner holds the rate ("3.0 fps") as white (anti-aliased: grey) text.
        text = shot[corner].astype(int)
        assert (text[:, 0] == text[:, 1]).all() and (text[:, 1] == text[:, 2]).all() and text.max() > 200

        clock.t += 0.5
        window.show(Frames(imgs[3:], np.arange(3, 6), np.zeros(3), "clip.mp4"), rows[rows.frame >= 3])
        assert window.fps == pytest.approx(6 / 1.5)
        assert window.frames_shown == 6
        assert np.array_equal(screenshot(window)[35:], draw_overlay(imgs[5], rows[rows.frame == 5])[35:])
        # Seven more batches of 2 frames, 0.25 s apart: the rate follows the last 5 batches only.
        for _ in range(7):
            clock.t += 0.25
            window.show(Frames(imgs[:2], np.arange(2), np.zeros(2), "clip.mp4"), rows.iloc[:0])
        assert window.fps == pytest.approx(10 / 1.25)
        assert window.mean_fps == pytest.approx(20 / 3.25)
        # A frame whose rows are success 0 (no face) is shown without a box.
        window.show(Frames(imgs[3:4], np.array([3]), np.zeros(1), "clip.mp4"), rows[rows.frame == 3])
        assert np.array_equal(screenshot(window)[35:], imgs[3][35:])


def test_large_frames_are_scaled_to_fit(display):
    big = np.full((900, 1600, 3), 80, np.uint8)
    with live.LiveWindow(max_size=(800, 600)) as window:
        window.show(Frames(big[None], np.zeros(1, np.int64), np.zeros(1), "big.png"), pd.DataFrame())
        assert window.last_image.shape == (450, 800, 3)
        assert screenshot(window).shape == (450, 800, 3)


def test_close_button_q_and_escape_close_the_window(display):
    imgs = square_frames(2)
    for how in ("WM_DELETE_WINDOW", "q", "Escape"):
        window = live.LiveWindow()
        try:
            assert window.poll()
            if how == "WM_DELETE_WINDOW":  # what the window manager calls when the close button is hit
                window._root.tk.eval(window._root.wm_protocol("WM_DELETE_WINDOW"))
            else:
                window._root.focus_force()
                window._root.update()
                window._root.event_generate(f"<KeyPress-{how}>", when="tail")
            assert not window.poll(), how
            window.show(Frames(imgs, np.arange(2), np.zeros(2), "clip.mp4"), pd.DataFrame())
            assert window.frames_shown == 0 and window.frames_analysed == 2
        finally:
            window.close()
        window.close()  # twice is fine


class Recorder(live.LiveWindow):
    """The CLI's window, keeping every picture it put on the screen."""

    instances: list[Recorder] = []
    close_after: int | None = None  # batches after which the "user" closes the window
    interrupt_at: int | None = None  # batch at which Ctrl-C "arrives"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.pictures: list[np.ndarray] = []
        self.batches: list[list[int]] = []
        Recorder.instances.append(self)

    def show(self, frames, rows) -> None:
        if self.interrupt_at is not None and len(self.batches) == self.interrupt_at:
            raise KeyboardInterrupt
        self.batches.append([int(i) for i in frames.index])
        super().show(frames, rows)
        if self.close_after is not None and len(self.batches) == self.close_after:
            self._root.tk.eval(self._root.wm_protocol("WM_DELETE_WINDOW"))

    def _display(self, pic) -> None:
        super()._display(pic)
        self.pictures.append(pic)


@pytest.fixture
def recorder(monkeypatch, display):
    Recorder.instances = []
    Recorder.close_after = Recorder.interrupt_at = None
    monkeypatch.setattr(live, "LiveWindow", Recorder)
    return Recorder


def test_analyze_show_draws_every_frame_and_writes_every_row(tmp_path, squares, recorder, capsys):  # noqa: F811
    from facebehavior.cli import main

    write_video(tmp_path / "v.mp4", square_frames(10, missing=(4,)))
    out = tmp_path / "o.csv"
    code = main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--show", "--batch-size", "4", *FAST])
    err = capsys.readouterr().err
    assert code == 0, err
    df = pd.read_csv(out)
    assert df["frame"].tolist() == list(range(10)) and df["success"].tolist() == [1] * 4 + [0] + [1] * 5
    (window,) = recorder.instances
    assert window.batches == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(window.pictures) == 10 and window.closed and window._root is None
    assert "live window: 10 frames shown" in err and "frames/s analysed" in err
    colour = np.array(hex_rgb(face_colour(0)))
    for k, pic in enumerate(window.pictures):
        row = df.iloc[k]
        boxed = (np.abs(pic.astype(int) - colour).sum(axis=2) < 30).sum()
        if row.success:  # the box outline, in the face's colour, where the CSV puts it
            assert boxed > 100, k
            x = int(round(row.x1))
            assert (np.abs(pic[int(row.y1) + 20, x - 1 : x + 2].astype(int) - colour).sum(axis=1) < 30).any()
        else:
            assert boxed < 5, k


def test_closing_the_window_stops_with_the_results_written_and_resumable(tmp_path, squares, recorder, capsys):  # noqa: F811
    from facebehavior.cli import main

    write_video(tmp_path / "v.mp4", square_frames(12))
    out = tmp_path / "o.csv"
    args = ["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--batch-size", "4", *FAST]
    recorder.close_after = 1
    assert main([*args, "--show"]) == 0
    err = capsys.readouterr().err
    assert "stopped: the live window was closed" in err and "--resume" in err
    # Chunk 1 is committed when batch 2 has been read; the run stops at that chunk boundary.
    assert pd.read_csv(out)["frame"].tolist() == [0, 1, 2, 3]
    assert recorder.instances[0]._root is None
    assert main([*args, "--resume"]) == 0
    resumed = pd.read_csv(out)
    assert main([*args[:3], str(tmp_path / "full.csv"), *args[4:]]) == 0
    full = pd.read_csv(tmp_path / "full.csv")
    pd.testing.assert_frame_equal(resumed.drop(columns="source"), full.drop(columns="source"))


def test_ctrl_c_in_the_window_keeps_the_committed_rows(tmp_path, squares, recorder, capsys):  # noqa: F811
    from facebehavior.cli import main

    write_video(tmp_path / "v.mp4", square_frames(12))
    out = tmp_path / "o.csv"
    recorder.interrupt_at = 2  # while batch 3 is analysed, once chunks 1 and 2 are committed
    code = main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--show", "--batch-size", "4", *FAST])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert pd.read_csv(out)["frame"].tolist() == list(range(8))
    assert recorder.instances[0]._root is None


@pytest.mark.parametrize("env", [None, ":987"])
def test_show_without_a_display_is_one_line(tmp_path, squares, monkeypatch, capsys, env):  # noqa: F811
    from facebehavior.cli import main

    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if env is None:
        monkeypatch.delenv("DISPLAY", raising=False)
    else:
        if not sys.platform.startswith("linux"):
            pytest.skip("X display names are a Linux/BSD matter")
        monkeypatch.setenv("DISPLAY", env)  # set, but no X server behind it
    write_video(tmp_path / "v.mp4", square_frames(3))
    out = tmp_path / "o.csv"
    code = main(["analyze", str(tmp_path / "v.mp4"), "-o", str(out), "--show", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --show "), err
    if env is None and sys.platform.startswith("linux"):
        assert "DISPLAY is not set" in lines[0]
    elif env is not None:
        assert "cannot open a window" in lines[0] and env in lines[0]


@pytest.mark.slow
def test_show_with_the_real_models_in_a_process(tmp_path, display):
    """The whole command, as a user runs it, on 16 frames of the sample video."""
    import av

    clip = tmp_path / "clip.mp4"
    with av.open(str(REPO / "samples" / "video.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(16), c.decode(video=0), strict=False)]
    write_video(clip, np.stack(frames))
    out = tmp_path / "o.csv"
    env = {**os.environ, "DISPLAY": display, "FACEBEHAVIOR_THREADS": "1"}
    cmd = [sys.executable, "-m", "facebehavior", "analyze", str(clip), "-o", str(out), "--show",
           "--batch-size", "8", "--no-progress"]  # fmt: skip
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    df = pd.read_csv(out)
    assert sorted(set(df["frame"])) == list(range(16)) and (df["success"] == 1).all()  # 2 faces a frame
    assert "live window: 16 frames shown" in p.stderr
    assert float(p.stderr.split("frames shown, ")[1].split(" frames/s")[0]) > 0
