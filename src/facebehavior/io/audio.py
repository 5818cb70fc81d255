"""Audio of videos for A/V-MT-VGG-GRU: PyAV decoding, the Aff-Wild review's spectrograms, one
spectrogram image per video frame.

The Aff-Wild review (§IV, "audio (mono) signal was sampled at 44,100 Hz … spectrogram frames were
computed over a 33 ms window with 11 ms overlap … intensity values normalized in [−1, 1]") fixes
the sampling and the analysis windows; A/V-MT-VGG-GRU then feeds "spectrograms" to a VGG stream,
one input per video frame. What the paper leaves open is fixed here (``AudioConfig``):

- the STFT: Hann window of 33 ms (1455 samples at 44.1 kHz), hop 22 ms (33 − 11), magnitude
  spectrum over 0 … 22.05 kHz (728 bins); magnitudes in dB relative to a full-scale sine
  (a sine of amplitude 1 reads 0 dB), clipped to [``floor_db``, 0] and mapped linearly to
  [−1, 1]. A *fixed* dB range (not each recording's min/max) keeps a frame's image independent of
  the rest of the file, so streaming analysis computes exactly what training computed;
- the image of video frame ``t``: the spectrogram of the ``context_s`` seconds of audio centred on
  the frame's timestamp (0.5 s: 21 STFT columns, so a frame sees the syllable it lies in, not just
  the 33 ms around it); samples before the start or after the end of the track are silence;
  resized to ``size`` (H frequency bands averaging the bins, low frequencies at the bottom row;
  W columns linearly interpolated in time), shape ``(1, H, W)`` float32.

Audio and video are aligned on presentation times: a video frame's timestamp (``io.video``:
``(pts − video start) × time_base``) and the audio sample at the same time since the video
stream's start. Decoding is sequential (``AudioStream`` never seeks), so analysing a video batch
by batch decodes the same samples as decoding the whole track at once.

Videos without an audio track raise ``NoAudioError`` (an ``io.InputError``: one line naming the
file). ``build_audio`` adds the per-row spectrogram images of a ``facebehavior prepare`` cache
(``audio.npy`` (N, H, W) float16 + ``audio.json``), read in training by ``cached_spectrograms``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.io import InputError

__all__ = [
    "AudioConfig",
    "AudioStream",
    "NoAudioError",
    "build_audio",
    "cached_spectrograms",
    "find_media",
    "frame_spectrograms",
    "read_audio",
    "spectrogram",
]

logger = logging.getLogger(__name__)

MEDIA_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wav", ".flac", ".m4a")


class NoAudioError(InputError):
    """A video has no audio track, or its audio cannot be decoded."""


@dataclass(frozen=True)
class AudioConfig:
    """Spectrogram settings (module docstring).

    Attributes:
        sample_rate: Hz (44.1 kHz mono in the paper).
        window_ms: STFT window length (33 ms in the paper).
        overlap_ms: overlap of consecutive windows (11 ms in the paper); hop = window − overlap.
        context_s: seconds of audio around each video frame that make its image.
        floor_db: dB (re a full-scale sine) mapped to −1; 0 dB maps to +1.
        size: (H, W) of a frame's spectrogram image.
    """

    sample_rate: int = 44100
    window_ms: float = 33.0
    overlap_ms: float = 11.0
    context_s: float = 0.5
    floor_db: float = -80.0
    size: tuple[int, int] = (96, 96)

    @property
    def window(self) -> int:
        """STFT window in samples."""
        return int(round(self.window_ms * 1e-3 * self.sample_rate))

    @property
    def hop(self) -> int:
        """STFT hop in samples."""
        return self.window - int(round(self.overlap_ms * 1e-3 * self.sample_rate))

    @property
    def context(self) -> int:
        """Samples of audio per video frame."""
        return int(round(self.context_s * self.sample_rate))

    @staticmethod
    def for_size(size: int | Sequence[int], **kw: Any) -> AudioConfig:
        """The paper's settings at a model's spectrogram input size (``audio_size``)."""
        hw = (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))
        return AudioConfig(size=hw, **kw)


def spectrogram(samples: np.ndarray, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """Log-magnitude spectrogram of mono samples, in [−1, 1].

    Args:
        samples: (N,) float samples in [−1, 1] at ``config.sample_rate``; N >= one window.
        config: STFT and scaling settings.

    Returns:
        (window // 2 + 1, C) float32, C = (N − window) // hop + 1 columns; row 0 is 0 Hz.
    """
    x = np.asarray(samples, np.float64)
    win, hop = config.window, config.hop
    if x.ndim != 1 or len(x) < win:
        raise ValueError(f"need (N,) samples with N >= {win}, got shape {x.shape}")
    cols = (len(x) - win) // hop + 1
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:cols]
    w = np.hanning(win + 2)[1:-1]  # periodic-free Hann without zero end points
    mag = np.abs(np.fft.rfft(frames * w, axis=1)).T  # (bins, C)
    # A full-scale sine of amplitude 1 peaks at sum(w) / 2: that is 0 dB.
    db = 20.0 * np.log10(np.maximum(mag / (w.sum() / 2.0), 1e-12))
    lo = config.floor_db
    return (2.0 * (np.clip(db, lo, 0.0) - lo) / -lo - 1.0).astype(np.float32)


def _resize(spec: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(bins, C) → (H, W): frequency bins averaged into H bands (top row = highest band), columns
    linearly interpolated to W."""
    h, w = size
    bands = np.stack([b.mean(0) for b in np.array_split(spec, h, axis=0)])[::-1]  # (H, C)
    c = bands.shape[1]
    pos = np.linspace(0.0, c - 1.0, w) if c > 1 else np.zeros(w)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, c - 1)
    t = (pos - lo)[None]
    return ((1.0 - t) * bands[:, lo] + t * bands[:, hi]).astype(np.float32)


def frame_spectrograms(
    samples: np.ndarray, times: Sequence[float], config: AudioConfig = AudioConfig(), origin: float = 0.0
) -> np.ndarray:
    """One spectrogram image per video frame.

    Args:
        samples: (N,) mono samples at ``config.sample_rate``; sample ``k`` is at time
            ``origin + k / sample_rate`` seconds (video time).
        times: (F,) video frame timestamps in seconds.
        config: settings (``context_s`` around each time, output ``size``).
        origin: time of ``samples[0]``.

    Returns:
        (F, 1, H, W) float32 in [−1, 1]; audio outside ``samples`` counts as silence.
    """
    x = np.asarray(samples, np.float32)
    n = config.context
    out = np.empty((len(times), 1, *config.size), np.float32)
    for i, t in enumerate(times):
        start = int(round((float(t) - origin) * config.sample_rate)) - n // 2
        seg = np.zeros(n, np.float32)
        a, b = max(start, 0), min(start + n, len(x))
        if b > a:
            seg[a - start : b - start] = x[a:b]
        out[i, 0] = _resize(spectrogram(seg, config), config.size)
    return out


class AudioStream:
    """Sequential reader of a media file's audio as 44.1 kHz mono float32, for growing time ranges.

    ``segment(start, end)`` returns the samples between two video times; calls must not go back
    in time by more than what is still buffered (the Analyzer asks batch after batch). Memory stays
    bounded: samples before the last requested start are dropped.

    Args:
        path: a video or audio file.
        sample_rate: Hz.

    Raises:
        NoAudioError: the file has no audio track.
        InputError: the file cannot be opened.
    """

    def __init__(self, path: str | Path, sample_rate: int = 44100) -> None:
        import av

        self.path = str(path)
        self.sample_rate = int(sample_rate)
        try:
            self._container = av.open(self.path)
        except (av.error.FFmpegError, OSError) as e:
            raise InputError(self.path, f"cannot open for audio ({e})") from None
        if not self._container.streams.audio:
            self._container.close()
            raise NoAudioError(self.path, "no audio track; A/V models (av_mt_vgg_gru) need videos with sound")
        stream = self._container.streams.audio[0]
        video = self._container.streams.video
        # Video time 0 is the video stream's start (io.video); audio is placed on the same clock.
        v0 = video[0].start_time * video[0].time_base if video and video[0].start_time is not None else 0
        self._v0 = float(v0)
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
        self._frames = self._container.decode(stream)
        self._buf = np.zeros(0, np.float32)
        self._buf_t0: float | None = None  # video time of self._buf[0]
        self._done = False

    def close(self) -> None:
        """Close the file."""
        self._container.close()

    def _decode_more(self) -> bool:
        import av

        try:
            frame = next(self._frames)
        except StopIteration:
            chunks = self._resampler.resample(None)
            self._done = True
        except av.error.FFmpegError as e:
            raise InputError(self.path, f"audio cannot be decoded ({e})") from None
        else:
            if self._buf_t0 is None:
                t = frame.time if frame.time is not None else 0.0
                self._buf_t0 = float(t) - self._v0
            chunks = self._resampler.resample(frame)
        for c in chunks:
            self._buf = np.concatenate([self._buf, c.to_ndarray().reshape(-1).astype(np.float32)])
        return not self._done

    def segment(self, start: float, end: float) -> tuple[np.ndarray, float]:
        """Samples covering video times [``start``, ``end``) seconds (fewer at the end of the track).

        Returns:
            ``(samples, origin)``: (N,) float32 and the video time of ``samples[0]`` (may be later
            than ``start`` at the beginning of the track, which ``frame_spectrograms`` pads).
        """
        while not self._done and (
            self._buf_t0 is None or self._buf_t0 + len(self._buf) / self.sample_rate < end
        ):
            self._decode_more()
        if self._buf_t0 is None:
            return np.zeros(0, np.float32), float(start)
        drop = int(np.floor((start - self._buf_t0) * self.sample_rate))
        if drop > 0:  # older samples are never asked for again
            drop = min(drop, len(self._buf))
            self._buf = self._buf[drop:]
            self._buf_t0 += drop / self.sample_rate
        return self._buf.copy(), self._buf_t0

    def frames(self, times: Sequence[float], config: AudioConfig) -> np.ndarray:
        """(F, 1, H, W) spectrogram images of the video frames at ``times`` (nondecreasing batches)."""
        if len(times) == 0:
            return np.zeros((0, 1, *config.size), np.float32)
        half = config.context / 2.0 / self.sample_rate
        samples, origin = self.segment(float(np.min(times)) - half - 1.0 / self.sample_rate,
                                       float(np.max(times)) + half + 1.0 / self.sample_rate)  # fmt: skip
        return frame_spectrograms(samples, times, config, origin)


def read_audio(path: str | Path, sample_rate: int = 44100) -> tuple[np.ndarray, float]:
    """The whole audio track of ``path`` as mono float32 samples.

    Returns:
        ``(samples (N,), origin)``: ``origin`` is the video time of ``samples[0]`` in seconds.

    Raises:
        NoAudioError: no audio track.
    """
    s = AudioStream(path, sample_rate)
    try:
        return s.segment(-1e9, float("inf"))
    finally:
        s.close()


def find_media(root: str | Path, video: str) -> Path | None:
    """The media file of a corpus video under ``root``: ``<video>.<ext>`` anywhere below it, also
    without Aff-Wild2's ``_left`` / ``_right`` suffix of two-person videos."""
    root = Path(root)
    names = [video]
    for suffix in ("_left", "_right"):
        if video.endswith(suffix):
            names.append(video[: -len(suffix)])
    for name in names:
        for ext in MEDIA_EXTENSIONS:
            direct = root / f"{name}{ext}"
            if direct.is_file():
                return direct
    for name in names:
        for p in sorted(root.rglob(f"{Path(name).name}.*")):
            if p.suffix.lower() in MEDIA_EXTENSIONS and p.is_file():
                return p
    return None


def _fps(path: Path) -> float:
    import av

    with av.open(str(path)) as c:
        if not c.streams.video or c.streams.video[0].average_rate is None:
            raise InputError(path, "no video stream to number frames by; pass fps")
        return float(c.streams.video[0].average_rate)


def build_audio(
    folder: str | Path,
    media_root: str | Path,
    *,
    config: AudioConfig = AudioConfig(),
    first_frame: int = 1,
    fps: float | None = None,
    overwrite: bool = False,
) -> dict[str, int]:
    """Add the spectrogram image of every face row of a ``prepare`` cache (``audio.npy``).

    Row ``r`` of video ``v`` (``table.video``) with frame number ``f`` (``table.frame``) gets the
    image at video time ``(f − first_frame) / fps`` of ``v``'s media file under ``media_root``
    (``find_media``; fps from its video stream unless given). Aff-Wild2 numbers frames from 1.

    Args:
        folder: a cache written by ``facebehavior prepare``.
        media_root: folder holding the corpus' original videos (with sound).
        config: spectrogram settings (its ``size`` = the model's ``audio_size``).
        first_frame: frame number of a video's first frame.
        fps: frame rate (None: each media file's own).
        overwrite: recompute even when ``audio.json`` records the same settings.

    Returns:
        ``{"videos": media files decoded, "rows": rows with a spectrogram}``.

    Raises:
        ValueError: a video's media file is missing under ``media_root``, or has no audio track (one
            line naming it).
    """
    from facebehavior.data.cache import FaceCache

    cache = FaceCache(folder)
    out = Path(folder)
    meta = {"config": asdict(config), "first_frame": first_frame, "fps": fps, "table": cache.meta["table"]}
    meta = json.loads(json.dumps(meta))  # tuples as lists, as read back
    meta_path = out / "audio.json"
    if meta_path.is_file() and not overwrite and json.loads(meta_path.read_text()) == meta:
        return {"videos": 0, "rows": 0}
    meta_path.unlink(missing_ok=True)  # written last: its presence means audio.npy is complete
    t = cache.table
    videos = t.video.astype(str)
    missing = sorted({v for v in np.unique(videos) if v and find_media(media_root, v) is None})
    if missing:
        raise ValueError(
            f"no media file (video with sound) under {media_root} for {len(missing)} video(s), e.g. "
            f"{missing[0]}.mp4; --audio must name the folder of the corpus' original videos"
        )
    tmp = out / "audio.tmp.npy"
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                    shape=(len(cache.full_table), *config.size))  # fmt: skip
    arr[:] = -1.0  # silence: rows without a face, still images
    decoded = 0
    for video in np.unique(videos[videos != ""]):
        media = find_media(media_root, video)
        assert media is not None
        items = np.flatnonzero(videos == video)
        rate = fps or _fps(media)
        try:
            samples, origin = read_audio(media, config.sample_rate)
        except InputError as e:
            raise ValueError(str(e)) from None
        times = (t.frame[items].astype(np.float64) - first_frame) / rate
        arr[cache.found[items]] = frame_spectrograms(samples, times, config, origin)[:, 0].astype(np.float16)
        decoded += 1
    arr.flush()
    del arr
    os.replace(tmp, out / "audio.npy")
    meta_path.write_text(json.dumps(meta, indent=1))
    logger.info("cache %s: spectrograms of %d faces from %d videos", out, int((videos != "").sum()), decoded)
    return {"videos": decoded, "rows": int((videos != "").sum())}


def cached_spectrograms(cache: Any, index: Iterable[int]) -> np.ndarray:
    """(n, 1, H, W) float32 spectrogram images (``build_audio``) of rows ``index`` of ``cache.table``.

    Raises:
        ValueError: the cache holds no spectrograms (the message says how to add them).
    """
    folder = Path(cache.folder)
    if not (folder / "audio.json").is_file():
        raise ValueError(
            f"{folder} holds no audio spectrograms; add them with `facebehavior prepare` and --audio "
            "FOLDER_OF_THE_ORIGINAL_VIDEOS (same arguments as before: only the audio is computed)"
        )
    arr = np.load(folder / "audio.npy", mmap_mode="r")
    rows = cache.found[np.asarray(list(index), np.int64)]
    return np.asarray(arr[rows], np.float32)[:, None]
