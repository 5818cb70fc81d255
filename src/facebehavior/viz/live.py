"""A live window: each analysed frame with its results drawn on it, and the measured analysis rate.

``facebehavior analyze webcam:0 -o out.csv --show`` (or a video file) opens a ``LiveWindow`` and
hands it every analysed batch through ``Analyzer.on_batch``; the window draws each frame with
``viz.overlay.draw_overlay`` (the overlay of ``--annotate``) and stamps the analysis rate in its
top-left corner. Closing the window, pressing ``q`` or ``Esc`` sets ``closed``; the caller decides
what to do with that (the CLI stops at the next chunk boundary, its results written).

The window uses tkinter from the standard library, not a GUI toolkit of its own, so the package
gains no dependency (OpenCV's ``imshow`` needs a GUI build of OpenCV, which conflicts with the
headless one other tools install). Everything runs in the calling thread: frames are drawn while
the analysis waits, and window events are processed between frames; macOS requires Tk on the main
thread, so no worker thread is used.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from facebehavior.types import Frames

__all__ = ["DisplayError", "LiveWindow", "display_problem"]

logger = logging.getLogger(__name__)

# Frame-rate estimate: analysed frames over the wall time of the last few batches, so the number
# follows changes (more faces, a slower scene) within a few seconds instead of averaging them away.
_RATE_BATCHES = 5


class DisplayError(RuntimeError):
    """No window can be opened: no display, or no tkinter. The message is one line."""


def display_problem() -> str | None:
    """Why no window can be opened here, in one line, or ``None`` when one probably can.

    Cheap checks only (no connection is made): tkinter importable, and on Linux/BSD a ``DISPLAY``
    or ``WAYLAND_DISPLAY`` set. ``LiveWindow`` still reports a display that is set but unreachable.
    """
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return "needs tkinter, which this Python lacks (Debian/Ubuntu: apt install python3-tk)"
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "needs a display, and DISPLAY is not set (run it on a desktop, over ssh -X, or under xvfb-run)"
    return None


class LiveWindow:
    """A window that shows analysed frames with their results (a tkinter ``Tk`` root).

    Example:
        >>> from facebehavior import Analyzer
        >>> from facebehavior.viz.live import LiveWindow
        >>> analyzer = Analyzer()  # doctest: +SKIP
        >>> with LiveWindow() as window:  # doctest: +SKIP
        ...     analyzer.on_batch = window.show
        ...     for chunk in analyzer.iter_chunks("webcam:0"):
        ...         if window.closed:
        ...             break

    Attributes:
        closed: the user closed the window (close button, ``q`` or ``Esc``) or it was closed.
        frames_shown: frames displayed so far.
        frames_analysed: frames handed to ``show`` (a closed window stops displaying, not counting).
        last_image: the last displayed picture, (h, w, 3) uint8 RGB, overlay and rate included
            (scaled to fit the screen), or ``None``.
    """

    def __init__(
        self, title: str = "facebehavior", *, max_size: tuple[int, int] | None = None, **overlay: Any
    ):
        """Open the window (blank until the first frame).

        Args:
            title: window title; the source's file name is appended while it is shown.
            max_size: largest displayed (width, height) in pixels; larger frames are scaled down
                (default: 90 % of the screen).
            **overlay: options of ``viz.overlay.draw_overlay`` (``panel``, ``top_aus`` …).

        Raises:
            DisplayError: no display or no tkinter (the message says which, in one line).
        """
        problem = display_problem()
        if problem:
            raise DisplayError(problem)
        import tkinter as tk

        try:
            self._root = tk.Tk(className="facebehavior")
        except tk.TclError as e:
            msg = str(e).splitlines()[0] if str(e) else "Tk failed"
            raise DisplayError(f"cannot open a window ({msg})") from None
        self._tk = tk
        self._title = title
        self._root.title(title)
        self._root.protocol("WM_DELETE_WINDOW", self._on_close)
        for key in ("<KeyPress-q>", "<KeyPress-Q>", "<KeyPress-Escape>"):
            self._root.bind(key, lambda _e: self._on_close())
        self._label = tk.Label(self._root, borderwidth=0, highlightthickness=0, background="black")
        self._label.pack()
        if max_size is None:
            max_size = (
                max(320, int(self._root.winfo_screenwidth() * 0.9)),
                max(240, int(self._root.winfo_screenheight() * 0.9)),
            )
        self.max_size = (int(max_size[0]), int(max_size[1]))
        self.overlay = overlay
        self.closed = False
        self.frames_shown = 0
        self.frames_analysed = 0
        self.last_image: np.ndarray | None = None
        self._photo: Any = None  # Tk shows the image only while a Python reference to it lives
        self._source: str | None = None
        self._marks: collections.deque[tuple[float, int]] = collections.deque(maxlen=_RATE_BATCHES + 1)
        self.restart_clock()
        self._pump()

    # ------------------------------------------------------------------ rate
    def restart_clock(self) -> None:
        """Start measuring the analysis rate now (call it right before analysing)."""
        self._start = time.monotonic()
        self._marks.clear()
        self._marks.append((self._start, 0))
        self.frames_analysed = 0

    @property
    def fps(self) -> float:
        """Analysed frames per second over the last few batches (wall time; 0 before the first)."""
        if len(self._marks) < 2:
            return 0.0
        (t0, _), (t1, _) = self._marks[0], self._marks[-1]
        n = sum(k for _, k in list(self._marks)[1:])
        return n / max(t1 - t0, 1e-9)

    @property
    def mean_fps(self) -> float:
        """Analysed frames per second since ``restart_clock`` (up to the last batch)."""
        if len(self._marks) < 2:
            return 0.0
        return self.frames_analysed / max(self._marks[-1][0] - self._start, 1e-9)

    # ------------------------------------------------------------------ drawing
    def show(self, frames: Frames, rows: pd.DataFrame) -> None:
        """Display one analysed batch, frame by frame, with its rows drawn on it.

        Matches ``Analyzer.on_batch``. Does nothing once the window is closed.

        Args:
            frames: the batch, ``images`` (N, H, W, 3) uint8 RGB, ``index`` (N,) frame numbers.
            rows: its result rows in this package's column names (``frame``, ``face_id``, ``x1``…);
                rows with ``success`` 0 are not drawn.
        """
        self._marks.append((time.monotonic(), len(frames)))
        self.frames_analysed += len(frames)
        if self.closed:
            return
        if str(frames.source) != self._source:
            self._source = str(frames.source)
            self._set_title(f"{self._title} — {Path(self._source).name}")
        by_frame: dict[int, Any] = {}
        if len(rows) and "frame" in rows.columns:
            by_frame = {int(f): g for f, g in rows.groupby("frame")}
        fps = self.fps
        for img, fi in zip(frames.images, frames.index, strict=True):
            if self.closed:
                return
            self._display(self.render(img, by_frame.get(int(fi)), fps))

    def render(self, image: np.ndarray, rows: pd.DataFrame | None, fps: float) -> np.ndarray:
        """The picture ``show`` displays for one frame: overlay, scaled to ``max_size``, rate stamped.

        Args:
            image: (H, W, 3) uint8 RGB frame.
            rows: the frame's rows, or ``None``.
            fps: the rate to print (analysed frames per second; 0 prints ``…``).

        Returns:
            (h, w, 3) uint8 RGB, h ≤ ``max_size[1]``, w ≤ ``max_size[0]``.
        """
        from PIL import Image, ImageDraw

        from facebehavior.viz.overlay import draw_overlay, font, overlay_font_size

        pic = draw_overlay(image, rows, **self.overlay) if rows is not None else image[..., :3]
        h, w = pic.shape[:2]
        scale = min(1.0, self.max_size[0] / w, self.max_size[1] / h)
        im = Image.fromarray(np.ascontiguousarray(pic))
        if scale < 1.0:
            im = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        fs = overlay_font_size((im.height, im.width))
        text = f"{fps:.1f} fps" if fps > 0 else "… fps"
        f = font(fs)
        pad = max(2, fs // 3)
        draw = ImageDraw.Draw(im)
        draw.rectangle([0, 0, f.getlength(text) + 2 * pad, fs * 1.25 + 2 * pad], fill=(0, 0, 0))
        draw.text((pad, pad), text, fill=(255, 255, 255), font=f)
        return np.asarray(im)

    def _display(self, pic: np.ndarray) -> None:
        from PIL import Image, ImageTk

        try:
            im = Image.fromarray(pic)
            if self._photo is not None and (self._photo.width(), self._photo.height()) == im.size:
                self._photo.paste(im)  # into the image on screen: ~2x cheaper than a new Tk image
            else:
                self._photo = ImageTk.PhotoImage(im, master=self._root)
                self._label.configure(image=self._photo)
            self.last_image = pic
            self.frames_shown += 1
        except self._tk.TclError:  # destroyed by the window manager between two checks
            self.closed = True
            return
        self._pump()

    def _set_title(self, title: str) -> None:
        try:
            self._root.title(title)
        except self._tk.TclError:
            self.closed = True

    # ------------------------------------------------------------------ events
    def poll(self) -> bool:
        """Process pending window events; ``True`` while the window is open."""
        self._pump()
        return not self.closed

    def _pump(self) -> None:
        if self.closed:
            return
        try:
            self._root.update()
        except self._tk.TclError:
            self.closed = True

    def _on_close(self) -> None:
        self.closed = True

    def window_region(self) -> tuple[int, int, int, int]:
        """The displayed picture's (x1, y1, x2, y2) in screen pixels (for screenshots in tests)."""
        x, y = self._label.winfo_rootx(), self._label.winfo_rooty()
        return x, y, x + self._label.winfo_width(), y + self._label.winfo_height()

    def close(self) -> None:
        """Close the window (safe to call twice, and after the user closed it)."""
        self.closed = True
        root, self._root = getattr(self, "_root", None), None
        if root is None:
            return
        try:
            self._photo = None
            root.destroy()
        except self._tk.TclError:
            pass

    def __enter__(self) -> LiveWindow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
