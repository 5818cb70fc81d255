"""Video files and webcams → batches of ``Frames`` with true per-frame timestamps.

Decoding uses PyAV (FFmpeg). Timestamps come from each frame's own presentation time
(``(pts − stream.start_time) × time_base`` seconds), never from ``index / fps``, so variable
frame-rate recordings (phones, screen captures) line up with their audio and annotations.
Frames are decoded lazily and handed out ``batch_size`` at a time: memory stays constant
however long the video is.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from facebehavior.io import InputError
from facebehavior.types import Frames

__all__ = ["VIDEO_EXTENSIONS", "VideoReader", "WebcamReader", "probe_video"]

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".wmv",
        ".flv",
        ".3gp",
        ".ogv",
        ".y4m",
    }
)


class _Decoder:
    """Shared batching over an open PyAV container (files and devices alike)."""

    source: str

    def __init__(self, *, batch_size: int, every: int, start_frame: int, max_frames: int | None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.batch_size = int(batch_size)
        self.every = int(every)
        self.start_frame = int(start_frame)
        self.max_frames = max_frames
        self._container = None
        self._stream = None

    def _open(self):  # -> (container, stream)
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frames]:
        """Yield batches of up to ``batch_size`` frames.

        Every ``every``-th frame is kept (indices 0, every, 2·every, ...), starting at the first
        kept index ``>= start_frame``. Skipped frames are still decoded (that is how codecs work)
        but never converted to RGB, which is most of the per-frame cost.

        Raises:
            InputError: the stream breaks off mid-way (truncated or corrupt file). Frames decoded
                before the break are yielded first, so their results are kept.
        """
        import av

        container, stream = self._open()
        base = stream.time_base or Fraction(1, 1)
        images: list[np.ndarray] = []
        index: list[int] = []
        times: list[float] = []
        i = -1
        first_pts = None
        try:
            try:
                for frame in self._frames(container, stream):
                    i += 1
                    if self.max_frames is not None and i >= self.max_frames:
                        break
                    if i < self.start_frame or i % self.every:
                        continue
                    if frame.pts is None:
                        # Some raw streams carry no timestamps: fall back to the nominal rate.
                        rate = stream.average_rate or stream.guessed_rate or 0
                        t = i / float(rate) if rate else float("nan")
                    else:
                        if first_pts is None:
                            first_pts = frame.pts
                        origin = self._origin(stream, first_pts)
                        t = float((frame.pts - origin) * base)
                    images.append(_upright(frame))
                    index.append(i)
                    times.append(t)
                    if len(images) == self.batch_size:
                        # Drop the per-frame arrays before yielding: while the batch is analysed
                        # only its stacked copy stays alive (one batch of frames, not two).
                        batch = self._batch(images, index, times)
                        images, index, times = [], [], []
                        yield batch
                        del batch
            except av.error.FFmpegError as e:
                if images:
                    yield self._batch(images, index, times)
                    images = []
                raise InputError(
                    self.source, f"video stream breaks off after frame {i} (truncated or corrupt: {e})"
                ) from None
            if images:
                yield self._batch(images, index, times)
            if i < 0:
                raise InputError(self.source, "video stream holds no decodable frames (empty or corrupt)")
            declared = self._declared_frames()
            stopped_early = self.max_frames is not None and i + 1 >= self.max_frames
            # Containers such as MP4 declare their frame count, which is their packet count; a
            # cut-off file ends early without any decoder error. Packets, not decoded frames, are
            # compared: an edit list marks leading packets "discard" and the decoder drops their
            # frames, so an intact file can decode fewer frames than it declares (ffmpeg agrees).
            if declared and not stopped_early and self._packets < declared - 2:
                raise InputError(
                    self.source, f"video ends after {i + 1} of {declared} declared frames (truncated file?)"
                )
        finally:
            container.close()

    def _frames(self, container, stream) -> Iterator:
        """Decoded frames of ``stream``, counting the demuxed packets in ``self._packets``."""
        self._packets = 0
        for packet in container.demux(stream):
            if packet.size:
                self._packets += 1
            yield from packet.decode()

    def _declared_frames(self) -> int | None:
        return None

    def _origin(self, stream, first_pts: int) -> int:
        # Files: the stream's declared start, so timestamps match what players show.
        return stream.start_time if stream.start_time is not None else 0

    def _batch(self, images: list[np.ndarray], index: list[int], times: list[float]) -> Frames:
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            # A resolution change mid-stream (rare: adaptive streams). Detectors need equal-sized
            # frames per batch, so the frames before the change in this batch are dropped, loudly.
            logger.warning(
                "%s: frame size changes mid-stream %s; %d frame(s) before the change dropped",
                self.source,
                sorted(shapes),
                sum(im.shape != images[-1].shape for im in images),
            )
            keep = [k for k, im in enumerate(images) if im.shape == images[-1].shape]
            images = [images[k] for k in keep]
            index = [index[k] for k in keep]
            times = [times[k] for k in keep]
        return Frames(
            images=np.stack(images),
            index=np.asarray(index, np.int64),
            timestamp=np.asarray(times, np.float64),
            source=self.source,
        )


class VideoReader(_Decoder):
    """Batches of frames from a video file.

    Example:
        >>> for frames in VideoReader("clip.mp4", batch_size=32, every=2):
        ...     frames.images.shape   # (≤32, H, W, 3) uint8 RGB
    """

    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 32,
        every: int = 1,
        start_frame: int = 0,
        max_frames: int | None = None,
    ) -> None:
        """Open and check the file (its header is read now; frames when iterated).

        Args:
            path: video file.
            batch_size: frames per yielded batch.
            every: keep every ``every``-th frame.
            start_frame: first frame index to yield (frames before it are decoded and dropped),
                used to resume a run.
            max_frames: stop after this many decoded frames (``None``: the whole video).

        Raises:
            InputError: missing, empty, unreadable file or no video stream.
        """
        super().__init__(batch_size=batch_size, every=every, start_frame=start_frame, max_frames=max_frames)
        self.path = Path(path)
        self.source = str(path)
        info = probe_video(self.path)
        self.width, self.height = info["width"], info["height"]
        self.fps: float = info["fps"]
        self.frame_count: int | None = info["frames"]
        self.duration: float | None = info["duration"]

    def _declared_frames(self) -> int | None:
        return self.frame_count

    def _open(self):
        container = _open_container(self.path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container, stream


def probe_video(path: str | Path) -> dict:
    """Read a video's header.

    Returns:
        dict with ``width``, ``height`` (pixels), ``fps`` (average frames per second, 0.0 if
        unknown), ``frames`` (declared frame count or ``None``) and ``duration`` (seconds or ``None``).

    Raises:
        InputError: missing, empty or unreadable file, or a file without a video stream.
    """
    path = Path(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return {
            "width": int(stream.codec_context.width),
            "height": int(stream.codec_context.height),
            "fps": float(rate) if rate else 0.0,
            "frames": int(stream.frames) if stream.frames else None,
            "duration": duration,
        }
    finally:
        container.close()


def _open_container(path: Path):
    import av

    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a video")
    try:
        if path.stat().st_size == 0:
            raise InputError(path, "empty file (0 bytes)")
    except OSError as e:
        raise InputError(path, f"cannot access file ({e.strerror})") from None
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        raise InputError(
            path, f"not a readable video (truncated, corrupt or unsupported: {_short(e)})"
        ) from None
    except OSError as e:
        raise InputError(path, f"cannot open file ({e})") from None
    if not container.streams.video:
        container.close()
        raise InputError(path, "no video stream found (audio-only, or a truncated file)")
    return container


def _upright(frame) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 RGB, turned as players show it.

    Phones store portrait or upside-down recordings as shot and tag them with a display matrix
    (the old ``rotate`` tag): every player turns them, so the faces, boxes and head roll must be
    computed on the turned frame too, as still images honour their EXIF orientation. PyAV reports
    the matrix's counter-clockwise angle; ``np.rot90`` turns counter-clockwise.
    """
    rgb = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _short(e: Exception) -> str:
    text = str(e)
    # PyAV appends "; last error log: [...]" chatter; the first clause is the reason.
    return text.split("; last error log")[0].strip()


class WebcamReader(_Decoder):
    """Batches of frames from a camera, with the same interface as ``VideoReader``.

    Timestamps are seconds since the first captured frame. The stream is endless unless
    ``max_frames`` is set; stop it with ``close()`` or by breaking out of the loop.
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        batch_size: int = 1,
        every: int = 1,
        max_frames: int | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        """Args:
        device: camera index (``0`` → ``/dev/video0`` on Linux) or a device name/path.
        batch_size: frames per batch; keep 1 for live display latency.
        every: keep every ``every``-th frame.
        max_frames: stop after this many captured frames.
        options: FFmpeg input options, e.g. ``{"video_size": "640x480", "framerate": "30"}``.
        """
        super().__init__(batch_size=batch_size, every=every, start_frame=0, max_frames=max_frames)
        self.device, self.format = _camera(device)
        self.source = f"webcam:{device}"
        self.options = dict(options or {})

    def _open(self):
        import av

        try:
            container = av.open(self.device, format=self.format, options=self.options)
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(self.source, f"cannot open camera {self.device!r} ({_short(e)})") from None
        if not container.streams.video:
            container.close()
            raise InputError(self.source, "camera offers no video stream")
        return container, container.streams.video[0]

    def _origin(self, stream, first_pts: int) -> int:
        # Cameras stamp frames with wall-clock time; count from the first captured frame.
        return first_pts


def _camera(device: int | str) -> tuple[str, str]:
    if sys.platform.startswith("linux"):
        fmt = "v4l2"
        name = f"/dev/video{device}" if isinstance(device, int) or str(device).isdigit() else str(device)
    elif sys.platform == "darwin":
        fmt, name = "avfoundation", str(device)
    elif sys.platform.startswith("win"):
        fmt = "dshow"
        name = str(device) if str(device).startswith("video=") else f"video={device}"
    else:
        raise InputError(f"webcam:{device}", f"no camera input format known for platform {sys.platform!r}")
    return name, fmt
