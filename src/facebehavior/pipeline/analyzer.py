"""The Analyzer: a thin loop of stages over batches of frames from images, videos and webcams."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from facebehavior import schema
from facebehavior.io import InputError
from facebehavior.pipeline.base import Batch, Chunk, SkippedFace, SourceState, Stage
from facebehavior.pipeline.detect import Detect
from facebehavior.pipeline.landmarks import TrackLandmarks
from facebehavior.pipeline.predict import Predict
from facebehavior.pipeline.rows import empty_frame, to_frame
from facebehavior.pipeline.stages import Measure, Screen, Track
from facebehavior.types import Frames

if TYPE_CHECKING:
    import pandas as pd

    from facebehavior.models.weights import WeightSpec

__all__ = ["Analyzer", "analyze"]

logger = logging.getLogger(__name__)

# Skipped faces (``Analyzer.skipped_faces``) logged as warnings per source; the rest at debug level.
_SKIP_WARNINGS = 5


class Analyzer:
    """Analyse faces in images, videos and webcams.

    The work is a list of stages (``self.stages``), each ``Batch → Batch`` (``pipeline.base.Stage``):
    faces (``Detect``, or ``TrackLandmarks`` which calls it) → ``Screen`` → ``Track`` (face ids) →
    ``Measure`` (pose, irises, blendshapes, geometry) → ``Predict`` (the affect model). The Analyzer
    reads sources in batches, runs the stages, and turns each batch into rows; a stage can be
    replaced, removed or wrapped (``pipeline.base.Timed``) by editing ``self.stages``.

    Example:
        >>> from facebehavior import Analyzer
        >>> df = Analyzer(model=None).analyze("samples/video.mp4")  # doctest: +SKIP
        >>> df[["frame", "timestamp", "face_id", "pose_yaw"]].head()  # doctest: +SKIP

    Models are built on first use, not in the constructor. The Analyzer does not change process-wide
    settings: its thread count applies while it runs (``_runtime.scoped_threads``) and is restored
    afterwards.
    """

    def __init__(
        self,
        detector: str | Any = "auto",
        landmarks: bool | str | Any = "auto",
        model: str | Path | None | tuple[Any, Any] = "default",
        geometry: bool = False,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 16,
        every: int = 1,
        max_faces: int | None = None,
        column_style: schema.ColumnStyle = "facebehavior",
        *,
        redetect_every: int = 8,
        min_presence: float = 0.5,
        min_face_size: float = 0.0,
        max_pixels: int | None = None,
        downscale_huge: bool = False,
        empty_frames: bool = True,
        points: str | None = None,
        overlap: bool = True,
    ) -> None:
        """Args:
        detector: ``"auto"`` (BlazeFace short → full-range cascade), a ``DETECTORS`` name
            (``"blazeface_short"``, ``"blazeface_full"``, ``"mtcnn"``), or a ``FaceDetector`` object.
        landmarks: ``"auto"`` (or ``True``): Face Mesh V2 on still images, FaceMesh-468 on
            video frames; ``"v2"``: Face Mesh V2 everywhere (478 points with irises and the 52
            blendshapes: ``iris_*``/``bs_*`` columns, an input of the default model; 2.3x the
            end-to-end cost of a video); ``"v1"``: FaceMesh-468 everywhere (no irises or
            blendshapes: the default model runs its image-only path); ``False`` aligns on the
            detector's 5 keypoints; or a landmarker object (``from_rois(images, rois)`` →
            ``Landmarks``, with ``num_points``). Head pose and geometry need landmarks.
        model: ``"default"`` (the bundled affect model ``weights/fbn_fusion.safetensors``,
            if this installation ships it), a checkpoint path, ``None`` for faces only, or a
            ``(model, WeightSpec)`` pair.
        geometry: add geometric AU evidence columns computed from the landmarks.
        device: torch device for every network.
        threads: torch intra-op threads while analysing (``None``: ``$FACEBEHAVIOR_THREADS`` or
            the library default, 1; ``0``: leave torch's setting); restored after each batch.
        batch_size: frames per batch (and per written chunk). 16: on the sample video (2 faces,
            640x480) the same CPU time as 32 with ~60 MiB less peak memory (docs/pipeline.md).
        every: analyse every ``every``-th video frame (face tracking still counts video frames:
            ``FaceTracker(frame_step=every)``).
        max_faces: keep at most this many faces per frame (highest scores first).
        column_style: ``"facebehavior"``: this package's columns (``AU12_prob``, ``pose_yaw`` in
            degrees, 0-based ``frame`` …); ``"openface"``: OpenFace 2.0 FeatureExtraction's 714
            columns, names, order, units and conventions (``io.openface.to_openface``), followed
            by ``source``.
        redetect_every: with landmarks, run the detector at least every this many frames to pick
            up faces that entered (tracked faces keep their crops in between).
        min_presence: FaceMesh presence below which a tracked face counts as lost.
        min_face_size: drop faces whose box side is smaller than this many pixels.
        max_pixels: largest still image accepted (``None``: ``io.images.DEFAULT_MAX_PIXELS``).
        downscale_huge: shrink larger images to ``max_pixels`` instead of rejecting them.
        points: landmark columns (``pipeline.stages.Measure``): ``"none"``, ``"68"`` (the 68-point
            subset in pixels, head position, gaze), ``"openface"`` (also 3-D points and eye-region
            landmarks), ``"all"`` (also every mesh point); ``None``: ``"68"``, or ``"openface"``
            with ``column_style="openface"``.
        empty_frames: write one row per analysed video frame without a face (``success`` 0,
            NaN measures, ``face_id`` -1); ``False`` writes face rows only. A still image without
            a face gives no row either way.
        overlap: on videos, run the trailing ``overlappable`` stages of each batch (face ids,
            measures, the affect model and its alignment) and the row building in one worker
            thread while the next batch is decoded and its faces are found: the same rows, chunks
            and snapshots, in the same order (``benchmarks/vs_mediapipe.py``: docs/pipeline.md).
            A stage is overlappable when it runs no PyTorch (torch's thread setting is
            process-wide) and keeps its state to itself; ``Predict`` is on the default
            onnxruntime path. ``False`` runs everything in the calling thread.
        """
        from facebehavior._runtime import check_device, resolve_threads

        if batch_size < 1 or every < 1 or redetect_every < 1:
            raise ValueError("batch_size, every and redetect_every must be >= 1")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces}")
        if column_style not in ("facebehavior", "openface"):
            raise ValueError(f"column_style must be 'facebehavior' or 'openface', got {column_style!r}")
        if isinstance(landmarks, str) and landmarks not in ("auto", "v1", "v2"):
            raise ValueError(
                f"landmarks must be 'auto', 'v1', 'v2', True, False or a landmarker; got {landmarks!r}"
            )
        self.device = check_device(device)
        self.threads = resolve_threads(threads)
        self.batch_size = int(batch_size)
        self.every = int(every)
        self.column_style = column_style
        self.max_pixels = max_pixels
        self.downscale_huge = downscale_huge
        self.empty_frames = bool(empty_frames)
        self.overlap = bool(overlap)
        self.failures: list[InputError] = []
        # Called as on_batch(frames, rows) after each batch, rows in this package's column names
        # whatever column_style is: the hook of the CLI's live window (analyze --show).
        self.on_batch: Callable[[Frames, pd.DataFrame], None] | None = None
        self.skipped_faces: list[SkippedFace] = []
        self._skip_counts: dict[str, int] = {}

        detect = Detect(detector, device=self.device, max_faces=max_faces, min_face_size=min_face_size)
        if landmarks is True:
            landmarks = "auto"
        faces: Detect | TrackLandmarks = detect
        if landmarks is not False and landmarks is not None:
            faces = TrackLandmarks(
                landmarks,
                detect,
                device=self.device,
                redetect_every=redetect_every,
                min_presence=min_presence,
            )
        self.landmark_points = faces.num_points if isinstance(faces, TrackLandmarks) else 0
        self.stages: list[Stage] = [
            faces,
            Screen(),
            Track(every=self.every),
            Measure(
                self.landmark_points, geometry, points or ("openface" if column_style == "openface" else "68")
            ),
        ]
        if not (model is None or (isinstance(model, str) and model.lower() == "none")):
            from facebehavior.pipeline.clips import Clips, needs_clips

            # Clip, flow, landmark and audio models (their input_names) need per-track state: Clips.
            predict = Clips if needs_clips(model) else Predict
            self.stages.append(predict(model, device=self.device))

    # ------------------------------------------------------------------ introspection
    def stage(self, name: str) -> Stage:
        """The stage called ``name`` (``"detect"``, ``"landmarks"``, ``"track"``, ``"predict"`` …)."""
        for s in self.stages:
            if s.name == name:
                return s
            if name == "detect" and isinstance(getattr(s, "detect", None), Detect):
                return s.detect
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    @property
    def spec(self) -> WeightSpec | None:
        """The affect model's ``WeightSpec`` (``None`` without a model); loads the model."""
        return next((s.spec for s in self.stages if s.name == "predict"), None)

    @property
    def columns(self) -> list[str]:
        """Output columns, in order (loads the affect model)."""
        if self.column_style == "openface":
            from facebehavior.io.openface import openface_columns

            return openface_columns() + ["source"]
        return self.canonical_columns

    @property
    def canonical_columns(self) -> list[str]:
        """The stages' columns in this package's names (what ``openface`` style is converted from)."""
        cols = schema.face_columns()[:-3]  # the pose columns come from ``Measure``
        for s in self.stages:
            cols += s.columns()
        return cols

    # ------------------------------------------------------------------ the loop
    def process(self, frames: Frames, state: SourceState | None = None) -> tuple[pd.DataFrame, int]:
        """Analyse one batch of frames.

        Args:
            frames: a batch from one source.
            state: carry-over from the previous batch of the same source (face tracks, baselines).

        Returns:
            ``(rows, no_face)``: the rows (faces, and frames without one unless ``empty_frames`` is
            off) and the number of frames without a face. ``self.on_batch``, when set, is called
            with the frames and the rows (this package's columns) before they are returned.
        """
        state = state or SourceState()
        batch = self._run_stages(self.stages, Batch(frames), state)
        return self._rows(frames, batch, state)

    def _run_stages(self, stages: list[Stage], batch: Batch, state: SourceState, torch: bool = True) -> Batch:
        from facebehavior._runtime import scoped_threads

        with scoped_threads(self.threads, torch=torch):
            for stage in stages:
                batch = stage(batch, state)
        return batch

    def _table(self, batch: Batch, state: SourceState) -> pd.DataFrame:
        """The batch's rows in this package's columns."""
        # A still without a face stays without rows (a header-only file); video frames are accounted for.
        return to_frame(batch, self.canonical_columns, empty_frames=self.empty_frames and state.video)

    def _rows(
        self, frames: Frames, batch: Batch, state: SourceState, rows: pd.DataFrame | None = None
    ) -> tuple[pd.DataFrame, int]:
        """``process``'s second half: record skipped faces, build the rows (unless given), call
        ``on_batch``, convert the column style."""
        for s in batch.skipped:
            self._record_skip(s)
        no_face = int(len(frames) - np.unique(batch.faces.frame_index).size)
        if rows is None:
            rows = self._table(batch, state)
        if self.on_batch is not None:
            self.on_batch(frames, rows)
        if self.column_style == "openface":
            from facebehavior.io.openface import to_openface

            rows = to_openface(rows, extra_columns=("source",))
        return rows, no_face

    def snapshot(self, state: SourceState, stages: list[Stage] | None = None) -> dict:
        """JSON-safe state of a source (tracker, geometry baseline) for a resumed run."""
        out: dict[str, Any] = {}
        for s in self.stages if stages is None else stages:
            if hasattr(s, "snapshot"):
                out.update(s.snapshot(state))
        return out

    def restore(self, saved: dict, state: SourceState) -> None:
        """Continue a source from ``snapshot`` output."""
        for s in self.stages:
            if hasattr(s, "restore"):
                s.restore(saved, state)

    # ------------------------------------------------------------------ public API
    def analyze(
        self,
        inputs: Any,
        *,
        errors: Literal["raise", "skip"] = "raise",
        video: bool = False,
        progress: bool | Callable[[Chunk], None] = False,
    ) -> pd.DataFrame:
        """Analyse everything in ``inputs`` and return one DataFrame.

        Args:
            inputs: a path (``str``, ``bytes`` or ``Path``: image, video, folder, glob,
                ``webcam:N``); an (H, W, 3) uint8 RGB image or a ``PIL.Image``; an (N, H, W, 3)
                uint8 stack of photos; or a list of any of these. In-memory photos are independent
                (sources ``"array[0]"``, ``"array[1]"``, … each with ``frame`` 0, no tracking across
                them; a single (H, W, 3) array is source ``"array"``).
            errors: ``"raise"`` stops at the first unreadable input; ``"skip"`` logs it, records it
                in ``self.failures`` and goes on.
            video: an (N, H, W, 3) stack is the frames of **one video** (source ``"array"``,
                ``frame`` 0…N-1, faces tracked across frames) instead of N photos.
            progress: ``True`` shows a ``tqdm`` bar of analysed frames (on stderr); a callable is
                called with each finished ``Chunk`` (source, frames, rows …), e.g. to feed a GUI.

        Returns:
            pandas DataFrame, one row per face and frame (plus one per frame without a face, see
            ``empty_frames``), columns ``self.columns``.

        Raises:
            TypeError: ``inputs`` is none of the above (e.g. ``None``).
            ValueError: an unknown ``errors`` mode, or an array of the wrong shape or dtype.
        """
        import pandas as pd

        parts = [df for df in self.stream(inputs, errors=errors, video=video, progress=progress) if len(df)]
        if not parts:
            return empty_frame(self.columns)
        return pd.concat(parts, ignore_index=True)

    def stream(
        self,
        inputs: Any,
        *,
        errors: Literal["raise", "skip"] = "raise",
        video: bool = False,
        progress: bool | Callable[[Chunk], None] = False,
    ) -> Iterator[pd.DataFrame]:
        """Like ``analyze`` but yields one DataFrame per batch of frames (constant memory)."""
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        on_error = None if errors == "raise" else _log_failure
        bar = None
        if progress is True:
            from tqdm import tqdm

            bar = tqdm(unit="frame", desc="analysed")
        try:
            for chunk in self.iter_chunks(inputs, on_error=on_error, video=video):
                if bar is not None:
                    bar.update(chunk.frames)
                elif callable(progress):
                    progress(chunk)
                yield chunk.rows
        finally:
            if bar is not None:
                bar.close()

    def iter_chunks(
        self,
        inputs: Any,
        *,
        on_error: Callable[[InputError], None] | None = None,
        skip: dict[str, Any] | None = None,
        on_source: Callable[[Any, Any], None] | None = None,
        snapshots: bool = False,
        resume_state: Callable[[str], dict | None] | None = None,
        video: bool = False,
    ) -> Iterator[Chunk]:
        """Analyse ``inputs`` chunk by chunk, with the bookkeeping a resumable writer needs.

        Args:
            inputs: as for ``analyze``.
            on_error: called with each ``InputError`` (unreadable input); ``None`` raises it.
                Chunks decoded before a video broke off are still yielded first.
            skip: source → ``io.writers.SourceProgress`` of an earlier run: sources marked done
                are skipped, others restart after their ``last_frame``.
            on_source: called as ``on_source(source, reader)`` before each source starts (the
                reader is ``None`` for in-memory arrays and images); used for progress bars.
            snapshots: attach the source's state (face tracker, geometry baseline) to each video
                chunk (``Chunk.state``).
            resume_state: source → state saved with its last committed chunk (or ``None``); a
                source resumed mid-way continues from it, so face ids and baselines carry on.
            video: as for ``analyze``.
        """
        from facebehavior.pipeline.sources import input_items

        self.failures = []
        self.skipped_faces = []
        self._skip_counts = {}
        items = input_items(inputs, video=video)
        paths = [x for _, x in items if not isinstance(x, np.ndarray)]
        if len(paths) == len(items):  # paths only: expanded together (duplicates, error order)
            yield from self._run_paths(paths, on_error, skip or {}, on_source, snapshots, resume_state)
            return
        for name, x in items:
            if isinstance(x, np.ndarray):
                yield from self._run_array(x, name)
            else:
                yield from self._run_paths([x], on_error, skip or {}, on_source, snapshots, resume_state)

    # ------------------------------------------------------------------ sources
    def _run_paths(
        self,
        items: list[str],
        on_error: Callable[[InputError], None] | None,
        skip: dict[str, Any],
        on_source: Callable[[Any, Any], None] | None,
        snapshots: bool,
        resume_state: Callable[[str], dict | None] | None,
    ) -> Iterator[Chunk]:
        """``iter_chunks`` over paths: expand them into sources and run each."""
        from facebehavior.io.sources import expand_inputs

        sources, errs = expand_inputs(items)
        for e in errs:
            self._fail(e, on_error)
        for src in sources:
            prev = skip.get(src.path)
            # A still image has one frame: once it is committed it is done, whatever the journal says.
            if prev is not None and (prev.done or (src.kind == "image" and prev.last_frame >= 0)):
                logger.info("%s: already done, skipped", src.path)
                continue
            start = prev.last_frame + 1 if prev is not None else 0
            state = SourceState(video=src.kind != "image")
            if start > 0:
                saved = resume_state(src.path) if resume_state is not None else None
                if saved is not None:
                    self.restore(saved, state)
                else:
                    logger.warning(
                        "%s: no saved state; face ids and geometry baselines restart at frame %d",
                        src.path,
                        start,
                    )
            try:
                yield from self._run_source(src, start, on_source, state, snapshots)
            except InputError as e:
                self._fail(e, on_error)

    def _run_array(self, arr: np.ndarray, name: str) -> Iterator[Chunk]:
        """An (H, W, 3) photo or an (N, H, W, 3) video held in memory, as source ``name``."""
        photo = arr.ndim == 3
        if photo:
            arr = arr[None]
        n, step = arr.shape[0], self.batch_size

        def batches() -> Iterator[Frames]:
            for s in range(0, n, step):
                e = min(n, s + step)
                yield Frames(arr[s:e], np.arange(s, e, dtype=np.int64), np.zeros(e - s), name)

        yield from self._run_batches(batches(), SourceState(video=not photo), False)

    def _run_source(
        self, src: Any, start: int, on_source: Callable | None, state: SourceState, snapshots: bool
    ) -> Iterator[Chunk]:
        from facebehavior.io.images import DEFAULT_MAX_PIXELS, read_image
        from facebehavior.io.video import VideoReader, WebcamReader

        if src.kind == "image":
            if on_source:
                on_source(src, None)
            max_pixels = self.max_pixels or DEFAULT_MAX_PIXELS
            img = read_image(src.path, max_pixels=max_pixels, downscale=self.downscale_huge)
            frames = Frames(img[None], np.zeros(1, np.int64), np.zeros(1), src.path)
            chunk = self._finish(self._start(frames, state, False, None), True)
            if chunk.no_face:
                logger.info("%s: no face found", src.path)
            yield chunk
            return
        if src.kind == "video":
            reader = VideoReader(src.path, batch_size=self.batch_size, every=self.every, start_frame=start)
        else:
            reader = WebcamReader(src.device, batch_size=self.batch_size, every=self.every)
        if on_source:
            on_source(src, reader)
        any_chunk = False
        for chunk in self._run_batches(reader, state, snapshots):
            any_chunk = True
            yield chunk
        if not any_chunk:
            # Nothing left after ``start`` (a resumed source that had only trailing frames left).
            yield Chunk(src.path, empty_frame(self.columns), 0, 0, max(start - 1, 0), True)

    def _run_batches(self, batches: Iterable[Frames], state: SourceState, snapshots: bool) -> Iterator[Chunk]:
        """The chunks of one source's batches, the last one marked ``done``.

        Each chunk is held back until the next batch has been read, so the last can be marked; with
        ``overlap`` also until that batch's first stages have run (the lane finishes batch k
        meanwhile), so a crash then loses one batch more than the serial loop would. A stream that
        breaks off (``InputError``, a truncated file) yields what was analysed, then raises.
        """
        # Serial: a finished Chunk (its frames are released before the next batch is decoded).
        # Overlap: a _Job whose lane may still be running.
        pending: Chunk | _Job | None = None

        def hand_out(p: Chunk | _Job, done: bool) -> Chunk:
            return dataclasses.replace(p, done=done) if isinstance(p, Chunk) else self._finish(p, done)

        with self._lane() as lane:
            try:
                for frames in batches:
                    if lane is None:
                        # Chunk k is handed out before batch k+1 is worked on.
                        if pending is not None:
                            yield pending
                        pending = self._finish(self._start(frames, state, snapshots, None), False)
                    else:
                        # Batch k+1's first stages run while the lane finishes batch k.
                        job = self._start(frames, state, snapshots, lane)
                        if pending is not None:
                            yield hand_out(pending, False)
                        pending = job
                    del frames
            except InputError:
                if pending is not None:
                    yield hand_out(pending, False)
                raise
            if pending is not None:
                yield hand_out(pending, True)

    def _lane_start(self) -> int:
        """Where the lane's stages begin: the longest run of ``overlappable`` stages at the end of
        ``self.stages`` (never the first stage); ``len(self.stages)`` when there is none."""
        k = len(self.stages)
        while k > 1 and getattr(self.stages[k - 1], "overlappable", False):
            k -= 1
        return k

    @contextlib.contextmanager
    def _lane(self) -> Iterator[ThreadPoolExecutor | None]:
        """The worker thread of ``overlap`` for one source (``None``: everything runs here)."""
        if not self.overlap or self._lane_start() == len(self.stages):
            yield None
            return
        with ThreadPoolExecutor(1, thread_name_prefix="facebehavior-lane") as pool:
            yield pool

    def _start(
        self, frames: Frames, state: SourceState, snapshots: bool, lane: ThreadPoolExecutor | None
    ) -> _Job:
        """Run a batch's stages here — all of them, or those before the lane, which gets the rest."""
        k = len(self.stages) if lane is None else self._lane_start()
        front, back = self.stages[:k], self.stages[k:]
        batch = self._run_stages(front, Batch(frames), state)
        snap = self.snapshot(state, front) if snapshots else None
        if lane is None:
            return _Job(frames, state, batch, snap)

        def run_back() -> tuple[Batch, pd.DataFrame, dict | None]:
            # Overlappable stages run no torch: only the thread count onnxruntime reads is scoped
            # here, never torch's process-wide one.
            out = self._run_stages(back, batch, state, torch=False)
            return out, self._table(out, state), (self.snapshot(state, back) if snapshots else None)

        return _Job(frames, state, lane.submit(run_back), snap)

    def _finish(self, job: _Job, done: bool) -> Chunk:
        """Wait for a job's lane, then build its chunk (in the calling thread, in order)."""
        batch, snap, rows = job.batch, job.snapshot, None
        if isinstance(batch, Future):
            batch, rows, back_snap = batch.result()
            if snap is not None:
                snap = {**snap, **(back_snap or {})}
        before = len(self.skipped_faces)
        rows, no_face = self._rows(job.frames, batch, job.state, rows)
        skipped = len(self.skipped_faces) - before
        frames = job.frames
        return Chunk(
            str(frames.source), rows, len(frames), no_face, int(frames.index[-1]), done, snap, skipped
        )

    def _fail(self, e: InputError, on_error: Callable[[InputError], None] | None) -> None:
        self.failures.append(e)
        if on_error is None:
            raise e
        on_error(e)

    def _record_skip(self, s: SkippedFace) -> None:
        """Record a face left out of the rows; the first few per source are logged as warnings."""
        self.skipped_faces.append(s)
        n = self._skip_counts[s.source] = self._skip_counts.get(s.source, 0) + 1
        if n <= _SKIP_WARNINGS:
            more = " (further ones of this source at debug level)" if n == _SKIP_WARNINGS else ""
            logger.warning("%s frame %d: face skipped (%s)%s", s.source, s.frame, s.reason, more)
        else:
            logger.debug("%s frame %d: face skipped (%s)", s.source, s.frame, s.reason)


@dataclasses.dataclass(frozen=True)
class _Job:
    """A batch in flight: its first stages have run; ``batch`` is the result, or the lane's future
    of ``(batch, rows, lane snapshot)``."""

    frames: Frames
    state: SourceState
    batch: Batch | Future
    snapshot: dict | None


def _log_failure(e: InputError) -> None:
    logger.warning("%s", e)


def analyze(inputs: Any, **kwargs: Any) -> pd.DataFrame:
    """One-call analysis: ``Analyzer(**kwargs).analyze(inputs)`` (see ``Analyzer``)."""
    errors = kwargs.pop("errors", "raise")
    video = kwargs.pop("video", False)
    progress = kwargs.pop("progress", False)
    return Analyzer(**kwargs).analyze(inputs, errors=errors, video=video, progress=progress)
