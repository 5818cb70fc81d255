"""The Analyzer: frames → faces → landmarks → aligned crops → affect predictions → rows.

Stages, each run on whole batches (the only per-face loop on the hot path cuts each face's
neighbourhood out of its frame for the warps, a few microseconds of Python per face):

1. **frames** — images, videos and webcams are read in batches of ``batch_size`` frames
   (``facebehavior.io``); every batch of one source becomes one *chunk* of results.
2. **detection** — ``"auto"`` runs BlazeFace short-range on the batch and, only for the frames in
   which it found nothing or only small faces, BlazeFace full-range (see ``docs/pipeline.md`` for
   the measurements behind this choice). Any registered detector name, or a ``FaceDetector``
   object, can be given instead.
3. **landmarks** — ``landmarks="auto"``: Face Mesh V2 (478 points with irises) and its 52
   blendshapes on still images, FaceMesh-468 on video frames (``"v2"`` / ``"v1"`` force one). As
   in MediaPipe, a face found once is *tracked*: the next frame's crop comes from the current
   landmarks, so the detector only runs on the first frame of each batch, every
   ``redetect_every`` frames, and whenever a tracked face is lost (presence below
   ``min_presence``). This is where the speed comes from: the landmark network alone per frame
   instead of detector + landmarks. With landmarks, a face's box is the box of its points and
   ``det_score`` the landmark model's face presence.
4. **alignment** — a 5-point similarity warp onto the affect model's template, one call per batch;
   a face that cannot be aligned is skipped and recorded (``Analyzer.skipped_faces``).
5. **tracking** — a ``face_id`` per person across frames (``facebehavior.face.track``).
6. **head pose** — pitch/yaw/roll from the first 468 landmarks (``facebehavior.face.pose``).
7. **affect model** — one protocol: the checkpoint's ``WeightSpec`` gives the input size, colour,
   normalisation, template, extra per-face inputs (the blendshapes) and label names; outputs
   become columns named by ``facebehavior.schema``.

Frames in which no face is found produce no rows; their count is reported per chunk
(``Chunk.no_face``) and per source by the CLI. With no affect model, rows hold the face columns
only (``schema.face_columns()``).
"""

from __future__ import annotations

import base64
import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from facebehavior import schema
from facebehavior.io import InputError
from facebehavior.types import Detections, Frames

__all__ = ["Analyzer", "Chunk", "SkippedFace", "analyze"]

logger = logging.getLogger(__name__)

# Short-range BlazeFace is trained on faces filling most of a selfie frame; below about a fifth of
# the frame's long side it starts missing faces (MediaPipe's own guidance: "within 2 m"). Frames
# whose faces are all smaller than this go to the full-range model.
SMALL_FACE_FRACTION = 0.2
# Tiles (``Analyzer._tiled``) show clothing and hair at face scale: short-range BlazeFace's own 0.5
# threshold let through a sweater fold at 0.54 in samples/face.jpg, while the 30 faces of a photo
# grid scored 0.84-0.98. Tile detections must clear this higher bar.
TILE_MIN_SCORE = 0.75

# Skipped faces (``Analyzer.skipped_faces``) logged as warnings per source; the rest at debug level.
_SKIP_WARNINGS = 5
# Errors one face's data can cause while it is aligned (degenerate or absurd keypoints, singular
# matrices, a crop outside any frame): that face is skipped. Anything else propagates.
_PER_FACE_ERRORS = (ValueError, ArithmeticError, IndexError, RuntimeError)


@dataclass(frozen=True)
class Chunk:
    """Results of one batch of frames of one source.

    Attributes:
        source: the source the frames came from.
        rows: one row per face (columns ``Analyzer.columns``); empty if no face was found.
        frames: number of frames analysed.
        no_face: frames in which no face was found.
        last_frame: index of the last frame of the batch.
        done: this chunk ends the source.
        skipped: faces found but left out of ``rows`` because they could not be aligned or
            analysed (each is logged and listed in ``Analyzer.skipped_faces``).
        state: JSON-serialisable source state after the chunk — face tracker and ``--geometry``
            baseline (only with ``iter_chunks(snapshots=True)``), so a resumed run continues them.
    """

    source: str
    rows: Any  # pandas.DataFrame
    frames: int
    no_face: int
    last_frame: int
    done: bool
    state: dict | None = None
    skipped: int = 0


@dataclass(frozen=True)
class SkippedFace:
    """A face that was found but could not be analysed; its frame's other faces were kept.

    Attributes:
        source: the source of the frame.
        frame: frame index in the source.
        reason: why (e.g. the alignment error).
    """

    source: str
    frame: int
    reason: str


@dataclass
class _SourceState:
    """What carries over from one batch of a source to the next.

    Attributes:
        tracker: the ``FaceTracker`` giving face ids.
        video: the source is a frame sequence (video, webcam, array), not a still image.
        calibrator: per-person geometric baseline (``--geometry`` on videos only).
    """

    tracker: Any = None
    video: bool = True
    calibrator: Any = None


@dataclass
class _Faces:
    """Faces of one batch, flat (F = faces in the batch)."""

    frame_index: np.ndarray  # (F,) int64 position in the batch
    boxes: np.ndarray  # (F, 4) float32 pixels
    scores: np.ndarray  # (F,) float32
    keypoints: np.ndarray  # (F, 5, 2) float32 pixels
    landmarks: np.ndarray | None = None  # (F, P, 3) float32 pixels; P = 468 (v1) or 478 (V2, irises)
    face_id: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    blendshapes: np.ndarray | None = None  # (F, 52) float32, Face Mesh V2 only

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def take(self, idx: np.ndarray) -> _Faces:
        return _Faces(
            self.frame_index[idx],
            self.boxes[idx],
            self.scores[idx],
            self.keypoints[idx],
            None if self.landmarks is None else self.landmarks[idx],
            self.face_id[idx] if len(self.face_id) else self.face_id,
            None if self.blendshapes is None else self.blendshapes[idx],
        )


class Analyzer:
    """Analyse faces in images, videos and webcams.

    Example:
        >>> from facebehavior import Analyzer
        >>> df = Analyzer(model=None).analyze("samples/video.mp4")  # doctest: +SKIP
        >>> df[["frame", "timestamp", "face_id", "pose_yaw"]].head()  # doctest: +SKIP

    Models are built on first use, not in the constructor.
    """

    def __init__(
        self,
        detector: str | Any = "auto",
        landmarks: bool | str | Any = "auto",
        model: str | Path | None | tuple[Any, Any] = "default",
        geometry: bool = False,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        every: int = 1,
        max_faces: int | None = None,
        column_style: schema.ColumnStyle = "facebehavior",
        *,
        redetect_every: int = 8,
        min_presence: float = 0.5,
        min_face_size: float = 0.0,
        max_pixels: int | None = None,
        downscale_huge: bool = False,
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
        threads: torch intra-op threads (``None``: ``$FACEBEHAVIOR_THREADS`` or the library default).
        batch_size: frames per batch (and per written chunk).
        every: analyse every ``every``-th video frame (face tracking still counts video frames:
            ``FaceTracker(frame_step=every)``).
        max_faces: keep at most this many faces per frame (highest scores first).
        column_style: ``"facebehavior"`` (``AU12_prob``) or ``"openface"`` (``AU12_c``) column names.
        redetect_every: with landmarks, run the detector at least every this many frames to pick
            up faces that entered (tracked faces keep their crops in between).
        min_presence: FaceMesh presence below which a tracked face counts as lost.
        min_face_size: drop faces whose box side is smaller than this many pixels.
        max_pixels: largest still image accepted (``None``: ``io.images.DEFAULT_MAX_PIXELS``).
        downscale_huge: shrink larger images to ``max_pixels`` instead of rejecting them.
        """
        from facebehavior._runtime import check_device, configure_allocator, configure_threads

        if batch_size < 1 or every < 1 or redetect_every < 1:
            raise ValueError("batch_size, every and redetect_every must be >= 1")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces}")
        if column_style not in ("facebehavior", "openface"):
            raise ValueError(f"column_style must be 'facebehavior' or 'openface', got {column_style!r}")
        if isinstance(detector, str) and detector != "auto":
            from facebehavior.registry import DETECTORS

            DETECTORS.get(detector)  # an unknown name fails now, listing the valid ones
        self.detector_arg = detector
        if isinstance(landmarks, str) and landmarks not in ("auto", "v1", "v2"):
            raise ValueError(
                f"landmarks must be 'auto', 'v1', 'v2', True, False or a landmarker; got {landmarks!r}"
            )
        self.landmarks_arg = "auto" if landmarks is True else landmarks
        self._blendshaper: Any = None
        self.model_arg = model
        self.geometry = bool(geometry)
        self.device = check_device(device)
        self.threads = configure_threads(threads)
        configure_allocator()
        self.batch_size = int(batch_size)
        self.every = int(every)
        self.max_faces = max_faces
        self.column_style = column_style
        self.redetect_every = int(redetect_every)
        self.min_presence = float(min_presence)
        self.min_face_size = float(min_face_size)
        self.max_pixels = max_pixels
        self.downscale_huge = downscale_huge
        self.failures: list[InputError] = []
        self.skipped_faces: list[SkippedFace] = []
        self._skip_counts: dict[str, int] = {}
        self._detectors: dict[str, Any] = {}
        self._landmarkers: dict[str, Any] = {}
        self._model: Any = None
        self._spec: Any = None
        self._model_resolved = False

    # ------------------------------------------------------------------ lazy components
    def _detector(self, name: str) -> Any:
        if name not in self._detectors:
            from facebehavior.face.detect import create_detector

            self._detectors[name] = create_detector(name, device=self.device)
        return self._detectors[name]

    @property
    def uses_landmarks(self) -> bool:
        return self.landmarks_arg is not False and self.landmarks_arg is not None

    @property
    def landmark_points(self) -> int:
        """Most landmarks per face this Analyzer can produce: 478 (Face Mesh V2 on some or all
        inputs: the iris and blendshape columns are written), 468 (v1) or 0 (no landmarks)."""
        if not self.uses_landmarks:
            return 0
        if self.landmarks_arg in ("auto", "v2"):
            return 478
        if self.landmarks_arg == "v1":
            return 468
        return int(getattr(self.landmarks_arg, "num_points", 468))

    def _get_landmarker(self, video: bool = True) -> Any:
        """The landmark model for a still image (``video=False``) or for video frames."""
        arg = self.landmarks_arg
        if not isinstance(arg, str):
            return arg
        # Why "auto" splits: V2 runs on every tracked video frame (2.3x the end-to-end cost of
        # samples/video.mp4), on a still only once; stills get the blendshapes, video the speed.
        version = ("v1" if video else "v2") if arg == "auto" else arg
        if version not in self._landmarkers:
            if version == "v2":
                from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

                self._landmarkers[version] = FaceMeshV2Landmarker(device=self.device)
            else:
                from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

                self._landmarkers[version] = FaceMeshLandmarker(device=self.device)
        return self._landmarkers[version]

    def _blendshapes(self, points: np.ndarray) -> np.ndarray | None:
        """(F, 52) Blendshape V2 scores of Face Mesh V2 landmarks; ``None`` for 468-point landmarks."""
        if points.shape[1] != 478:
            return None
        if self._blendshaper is None:
            from facebehavior.face.landmarks.blendshapes import FaceBlendshapes

            self._blendshaper = FaceBlendshapes(device=self.device)
        return self._blendshaper(points)

    def _resolve_model(self) -> None:
        if self._model_resolved:
            return
        self._model_resolved = True
        arg = self.model_arg
        if arg is None or (isinstance(arg, str) and arg.lower() == "none"):
            return
        if isinstance(arg, tuple):
            self._model, self._spec = arg
        else:
            from facebehavior.models.weights import load_weights

            path = _default_model_path() if isinstance(arg, str) and arg == "default" else Path(arg)
            if path is None:
                logger.info("no bundled affect model in this installation; writing face columns only")
                return
            self._model, self._spec = load_weights(path)
        import torch

        self._model = self._model.to(torch.device(self.device)).eval()

    @property
    def spec(self) -> Any:
        """The affect model's ``WeightSpec`` (``None`` without a model); loads the model."""
        self._resolve_model()
        return self._spec

    @property
    def columns(self) -> list[str]:
        """Output columns, in order."""
        self._resolve_model()
        cols = schema.face_columns()
        if self.landmark_points == 478:
            cols += schema.landmark_feature_columns()
        if self.geometry:
            cols += _geometry_columns()
        if self._spec is not None:
            cols += _prediction_columns(self._spec, self.column_style)
        return cols

    # ------------------------------------------------------------------ public API
    def analyze(self, inputs: Any, *, errors: Literal["raise", "skip"] = "raise") -> Any:
        """Analyse everything in ``inputs`` and return one DataFrame.

        Args:
            inputs: a path (``str``, ``bytes`` or ``Path``: image, video, folder, glob,
                ``webcam:N``); an (H, W, 3) uint8 RGB image or a ``PIL.Image`` (one photo, source
                ``"array"``); an (N, H, W, 3) uint8 stack, analysed as the frames of **one video**
                (faces tracked across them, ``frame`` 0…N-1); or a list of any of these, each item
                on its own — a list of (H, W, 3) arrays is a set of independent photos (sources
                ``"array[0]"``, ``"array[1]"``, … each with ``frame`` 0, no tracking across them).
            errors: ``"raise"`` stops at the first unreadable input; ``"skip"`` logs it, records it
                in ``self.failures`` and goes on.

        Returns:
            pandas DataFrame, one row per face and frame, columns ``self.columns``.

        Raises:
            TypeError: ``inputs`` is none of the above (e.g. ``None``).
            ValueError: an unknown ``errors`` mode, or an array of the wrong shape or dtype.
        """
        import pandas as pd

        parts = [df for df in self.stream(inputs, errors=errors) if len(df)]
        if not parts:
            return _empty_frame(self.columns)
        return pd.concat(parts, ignore_index=True)

    def stream(self, inputs: Any, *, errors: Literal["raise", "skip"] = "raise") -> Iterator[Any]:
        """Like ``analyze`` but yields one DataFrame per batch of frames (constant memory)."""
        if errors not in ("raise", "skip"):
            raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
        for chunk in self.iter_chunks(inputs, on_error=None if errors == "raise" else self._log_failure):
            yield chunk.rows

    def iter_chunks(
        self,
        inputs: Any,
        *,
        on_error: Callable[[InputError], None] | None = None,
        skip: dict[str, Any] | None = None,
        on_source: Callable[[Any, Any], None] | None = None,
        snapshots: bool = False,
        resume_state: Callable[[str], dict | None] | None = None,
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
        """
        self.failures = []
        self.skipped_faces = []
        self._skip_counts = {}
        skip = skip or {}
        items = _input_items(inputs)
        if not any(isinstance(x, np.ndarray) for x in items):
            yield from self._run_paths(items, on_error, skip, on_source, snapshots, resume_state)
            return
        # In-memory images: each item on its own (a list of photos is not a video).
        for i, x in enumerate(items):
            if isinstance(x, np.ndarray):
                yield from self._run_array(x, "array" if len(items) == 1 else f"array[{i}]")
            else:
                yield from self._run_paths([x], on_error, skip, on_source, snapshots, resume_state)

    def _run_paths(
        self,
        items: list[str],
        on_error: Callable[[InputError], None] | None,
        skip: dict[str, Any],
        on_source: Callable[[Any, Any], None] | None,
        snapshots: bool,
        resume_state: Callable[[str], dict | None] | None,
    ) -> Iterator[Chunk]:
        """``iter_chunks`` over paths: expand them into sources and run each (see ``iter_chunks``)."""
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
            state = _SourceState()
            if start > 0:
                saved = resume_state(src.path) if resume_state is not None else None
                if saved is not None:
                    _restore(saved, state, self.every)
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

    def process(self, frames: Frames, state: _SourceState | None = None) -> tuple[Any, int]:
        """Analyse one batch of frames.

        Args:
            frames: a batch from one source.
            state: carry-over from the previous batch of the same source (face tracks).

        Returns:
            ``(rows, no_face)``: the DataFrame of faces and the number of frames without a face.
        """
        state = state or _SourceState()
        images = frames.images
        faces = self._landmark_faces(images, state.video) if self.uses_landmarks else self._detect(images)
        faces = self._screen(frames, faces)
        faces.face_id = self._track(state, frames, faces)
        no_face = int(len(frames) - np.unique(faces.frame_index).size)
        return self._rows(frames, faces, state), no_face

    # ------------------------------------------------------------------ sources
    def _run_array(self, arr: np.ndarray, name: str = "array") -> Iterator[Chunk]:
        """An (H, W, 3) photo or an (N, H, W, 3) video held in memory, as source ``name``."""
        photo, shape = arr.ndim == 3, arr.shape
        if photo:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(
                f"{name}: arrays must be (H, W, 3) or (N, H, W, 3) uint8 RGB, got {shape} {arr.dtype}"
                + ("; convert with .astype(np.uint8) (values 0-255)" if arr.dtype != np.uint8 else "")
            )
        state = _SourceState(video=not photo)
        n = arr.shape[0]
        for s in range(0, n, self.batch_size):
            e = min(n, s + self.batch_size)
            idx = np.arange(s, e, dtype=np.int64)
            frames = Frames(arr[s:e], idx, np.zeros(e - s), name)
            before = len(self.skipped_faces)
            rows, no_face = self.process(frames, state)
            yield Chunk(name, rows, e - s, no_face, e - 1, e == n, skipped=len(self.skipped_faces) - before)

    def _run_source(
        self, src: Any, start: int, on_source: Callable | None, state: _SourceState, snapshots: bool
    ) -> Iterator[Chunk]:
        from facebehavior.io.images import DEFAULT_MAX_PIXELS, read_image
        from facebehavior.io.video import VideoReader, WebcamReader

        if src.kind == "image":
            if on_source:
                on_source(src, None)
            img = read_image(
                src.path,
                max_pixels=self.max_pixels or DEFAULT_MAX_PIXELS,
                downscale=self.downscale_huge,
            )
            frames = Frames(img[None], np.zeros(1, np.int64), np.zeros(1), src.path)
            state.video = False  # geometry against the population neutral, no per-person baseline
            before = len(self.skipped_faces)
            rows, no_face = self.process(frames, state)
            if no_face:
                logger.info("%s: no face found", src.path)
            yield Chunk(src.path, rows, 1, no_face, 0, True, skipped=len(self.skipped_faces) - before)
            return
        if src.kind == "video":
            reader = VideoReader(src.path, batch_size=self.batch_size, every=self.every, start_frame=start)
        else:
            reader = WebcamReader(src.device, batch_size=self.batch_size, every=self.every)
        if on_source:
            on_source(src, reader)
        pending = None
        try:
            for frames in reader:
                # Hold each chunk back by one batch so the last one can be marked ``done``.
                if pending is not None:
                    yield pending
                before = len(self.skipped_faces)
                rows, no_face = self.process(frames, state)
                snap = _snapshot(state) if snapshots else None
                skipped = len(self.skipped_faces) - before
                pending = Chunk(
                    src.path, rows, len(frames), no_face, int(frames.index[-1]), False, snap, skipped
                )
        except InputError:
            # The stream broke off (truncated file): keep what was analysed, then report.
            if pending is not None:
                yield pending
            raise
        if pending is not None:
            yield dataclasses.replace(pending, done=True)
        else:
            # Nothing left after ``start`` (a resumed source that had only trailing frames left).
            yield Chunk(src.path, _empty_frame(self.columns), 0, 0, max(start - 1, 0), True)

    def _fail(self, e: InputError, on_error: Callable[[InputError], None] | None) -> None:
        self.failures.append(e)
        if on_error is None:
            raise e
        on_error(e)

    @staticmethod
    def _log_failure(e: InputError) -> None:
        logger.warning("%s", e)

    # ------------------------------------------------------------------ detection
    def _detect(self, images: np.ndarray) -> _Faces:
        """Batched detection (with the auto cascade) → faces with 5 detector keypoints."""
        arg = self.detector_arg
        if isinstance(arg, str) and arg == "auto":
            det = self._detector("blazeface_short")(images)
            det = self._tiled(images, self._cascade(images, det))
        elif isinstance(arg, str):
            det = self._detector(arg)(images)
        else:
            det = arg(images)
        faces = _Faces(
            det.frame_index.astype(np.int64),
            det.boxes.astype(np.float32),
            det.scores.astype(np.float32),
            det.keypoints.astype(np.float32),
        )
        return self._limit(faces)

    def _cascade(self, images: np.ndarray, det: Detections) -> Detections:
        """Re-run frames where short-range found nothing, or only small faces, at full range."""
        n, h, w = images.shape[:3]
        side = np.maximum(det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1])
        big = np.zeros(n, bool)
        big[det.frame_index[side >= SMALL_FACE_FRACTION * max(h, w)]] = True
        redo = np.flatnonzero(~big)
        if redo.size == 0:
            return det
        full = self._detector("blazeface_full")(images[redo])
        if len(full) == 0:
            return det
        # Frames the full-range model saw replace their short-range results when it found at
        # least as many faces (it also finds large faces; short-range is merely faster on them).
        full_fi = redo[full.frame_index]
        n_short = np.bincount(det.frame_index, minlength=n)
        n_full = np.bincount(full_fi, minlength=n)
        use_full = np.zeros(n, bool)
        use_full[redo] = n_full[redo] >= np.maximum(n_short[redo], 1)
        keep_short = ~use_full[det.frame_index]
        keep_full = use_full[full_fi]
        return Detections(
            frame_index=np.concatenate([det.frame_index[keep_short], full_fi[keep_full]]),
            boxes=np.concatenate([det.boxes[keep_short], full.boxes[keep_full]]),
            scores=np.concatenate([det.scores[keep_short], full.scores[keep_full]]),
            keypoints=np.concatenate([det.keypoints[keep_short], full.keypoints[keep_full]]),
        )

    def _tiled(self, images: np.ndarray, det: Detections) -> Detections:
        """Look again, in tiles, at frames whose faces are all small (crowds, photo grids).

        Full-range BlazeFace sees the whole frame at 192 px: in a 1200 px grid of 200 px portraits
        each face shrinks to ~30 px and most are missed (measured: 3-20 of 30 depending on the
        crop). Where the cascade found faces and all are below ``SMALL_FACE_FRACTION`` of the
        frame, short-range BlazeFace runs on square tiles about 3x the median face side, half
        overlapping (so every face of up to half a tile lies whole in some tile), in one batch per
        frame; tile and whole-frame detections are merged by NMS. Frames without any face are not
        tiled, so faceless video costs nothing extra.
        """
        if len(det) == 0:
            return det
        import torch

        from facebehavior.face.detect.mtcnn import batched_nms

        n, h, w = images.shape[:3]
        side = np.maximum(det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1])
        parts = [det]
        for i in np.unique(det.frame_index):
            s = side[det.frame_index == i]
            if s.max() >= SMALL_FACE_FRACTION * max(h, w):
                continue
            t = int(min(h, w, max(64.0, 3 * float(np.median(s)))))
            step = max(1, t // 2)
            ys = sorted({*range(0, h - t + 1, step), h - t})
            xs = sorted({*range(0, w - t + 1, step), w - t})
            off = np.array([(x, y) for y in ys for x in xs], np.float32)
            tiles = np.stack([images[i, y : y + t, x : x + t] for x, y in off.astype(int)])
            d = self._detector("blazeface_short")(tiles)
            ok = np.flatnonzero(d.scores >= TILE_MIN_SCORE)
            if ok.size:
                o = off[d.frame_index[ok]]
                parts.append(
                    Detections(
                        np.full(ok.size, i, np.int64),
                        (d.boxes[ok] + np.tile(o, 2)).astype(np.float32),
                        d.scores[ok],
                        (d.keypoints[ok] + o[:, None, :]).astype(np.float32),
                    )
                )
        if len(parts) == 1:
            return det
        fi = np.concatenate([p.frame_index for p in parts]).astype(np.int64)
        boxes = np.concatenate([p.boxes for p in parts]).astype(np.float32)
        scores = np.concatenate([p.scores for p in parts]).astype(np.float32)
        kps = np.concatenate([p.keypoints for p in parts]).astype(np.float32)
        keep = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(fi), 0.3)
        keep = np.sort(keep.numpy())
        return Detections(fi[keep], boxes[keep], scores[keep], kps[keep])

    def _limit(self, faces: _Faces) -> _Faces:
        """Drop tiny faces and keep the ``max_faces`` best per frame; sort by frame then score."""
        keep = np.ones(len(faces), bool)
        if self.min_face_size > 0:
            side = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
            keep &= side >= self.min_face_size
        order = np.lexsort((-faces.scores, faces.frame_index))
        order = order[keep[order]]
        if self.max_faces is not None and order.size:
            fi = faces.frame_index[order]
            first = np.searchsorted(fi, fi, side="left")
            rank = np.arange(order.size) - first
            order = order[rank < self.max_faces]
        return faces.take(order)

    # ------------------------------------------------------------------ landmarks (tracked)
    def _landmark_faces(self, images: np.ndarray, video: bool = True) -> _Faces:
        """FaceMesh on every frame, each frame's crops taken from the previous frame's landmarks.

        The batch is cut into intervals of ``redetect_every`` frames whose first frame is a key
        frame: the detector runs on all key frames in one call. Tracking inside an interval is
        sequential (frame j's crop needs frame j-1's landmarks), but the intervals are independent,
        so they advance together in *waves*: wave w runs FaceMesh once on frame ``key + w`` of every
        interval. A batch of N frames thus costs ``redetect_every`` FaceMesh calls of about
        ``N / redetect_every`` frames each, instead of N calls of one frame — the per-frame result
        is exactly MediaPipe's track-from-previous-landmarks, computed in batches. An interval that
        tracks fewer faces than ``max_faces`` (no face, without a limit) runs the detector on each
        of its frames (batched per wave).
        """
        from facebehavior.face.landmarks.facemesh import keypoints5, roi_from_landmarks

        lm = self._get_landmarker(video)
        n = images.shape[0]
        k = self.redetect_every
        keyframes = np.arange(0, n, k)
        key = self._detect(images[keyframes])
        # ROIs of the current wave, frame_index = absolute frame in the batch.
        rois = self._rois_from_detections(key, keyframes[key.frame_index], images, lm)
        out_fi, out_pts, out_pres = [], [], []
        for w in range(k):
            if w > 0:
                # Intervals tracking fewer faces than wanted (``max_faces``; without a limit, none)
                # look for faces on every frame, as MediaPipe does: an entering face is picked up
                # at once. Duplicates of tracked faces are removed after FaceMesh (``_dedupe``).
                cand = keyframes + w
                tracked = np.bincount(rois.frame_index, minlength=n)
                cand = cand[cand < n]
                cand = cand[tracked[cand] < (self.max_faces or 1)]
                if cand.size:
                    det = self._detect(images[cand])
                    if len(det):
                        rois = _concat_rois(
                            rois, self._rois_from_detections(det, cand[det.frame_index], images, lm)
                        )
            if len(rois) == 0:
                continue
            marks = lm.from_rois(images, rois)
            pts = np.asarray(marks.points, np.float32)
            pres = np.asarray(marks.presence, np.float32)
            fi = rois.frame_index
            ok = pres >= self.min_presence
            if w > 0 and not ok.all():
                # A tracked face was lost (turned away, occluded, moved too fast): detect again on
                # those frames (one batched call) rather than dropping them.
                lost = np.unique(fi[~ok])
                det = self._detect(images[lost])
                if len(det):
                    redo = self._rois_from_detections(det, lost[det.frame_index], images, lm)
                    again = lm.from_rois(images, redo)
                    keep_old = ~np.isin(fi, lost)
                    pts = np.concatenate([pts[keep_old], np.asarray(again.points, np.float32)])
                    pres = np.concatenate([pres[keep_old], np.asarray(again.presence, np.float32)])
                    fi = np.concatenate([fi[keep_old], redo.frame_index])
                    ok = pres >= self.min_presence
            pts, pres, fi = pts[ok], pres[ok], fi[ok]
            pts, pres, fi = _dedupe(pts, pres, fi)
            out_fi.append(fi)
            out_pts.append(pts)
            out_pres.append(pres)
            nxt = fi + 1
            cont = (nxt < n) & (w + 1 < k)
            rois = roi_from_landmarks(pts[cont], nxt[cont])
        if not out_fi or sum(len(x) for x in out_fi) == 0:
            return _Faces(
                np.zeros(0, np.int64),
                np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32),
                np.zeros((0, 5, 2), np.float32),
                np.zeros((0, getattr(lm, "num_points", 468), 3), np.float32),
            )
        pts = np.concatenate(out_pts).astype(np.float32)
        xy = pts[..., :2]
        boxes = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
        faces = _Faces(
            np.concatenate(out_fi).astype(np.int64),
            boxes,
            np.concatenate(out_pres).astype(np.float32),
            keypoints5(pts),
            pts,
        )
        faces = self._limit(faces)
        if len(faces) and faces.landmarks is not None:
            faces = replace(faces, blendshapes=self._blendshapes(faces.landmarks))
        return faces

    def _rois_from_detections(
        self, faces: _Faces, frame_index: np.ndarray, images: np.ndarray, lm: Any
    ) -> Any:
        """Landmark ROIs of detected faces (frame_index into ``images``).

        Face Mesh V2 is sensitive to its ROI: from this package's BlazeFace boxes (anti-aliased
        input, so up to 16 px and 8° off MediaPipe's) a face of ``samples/face.jpg`` gets presence
        0.33, and 0.99 one pass later. So with V2 a detected face's ROI is refined once from its own
        landmarks (MediaPipe's video-mode ROI, which every tracked frame uses anyway).
        """
        from facebehavior.face.landmarks.facemesh import roi_from_detections, roi_from_landmarks

        fi = np.asarray(frame_index, np.int64)
        rois = roi_from_detections(Detections(fi, faces.boxes, faces.scores, faces.keypoints))
        if getattr(lm, "num_points", 468) != 478 or len(rois) == 0:
            return rois
        first = lm.from_rois(images, rois)
        return roi_from_landmarks(np.asarray(first.points, np.float32), fi)

    # ------------------------------------------------------------------ tracking
    def _track(self, state: _SourceState, frames: Frames, faces: _Faces) -> np.ndarray:
        from facebehavior.face.track import FaceTracker

        if state.tracker is None:
            state.tracker = FaceTracker(frame_step=self.every)
        dets = Detections(faces.frame_index, faces.boxes, faces.scores, faces.keypoints)
        if len(dets) == 0:
            # Nothing to describe: only age the tracks by the batch's frames.
            state.tracker.update(dets, None, num_frames=len(frames))
            return np.zeros(0, np.int64)
        return np.asarray(state.tracker.update(dets, frames.images).face_id, np.int64)

    # ------------------------------------------------------------------ rows
    def _rows(self, frames: Frames, faces: _Faces, state: _SourceState) -> Any:
        import pandas as pd

        f = len(faces)
        cols: dict[str, np.ndarray] = {}
        fi = faces.frame_index
        cols["source"] = np.array([frames.source] * f, dtype=object)
        cols["frame"] = frames.index[fi].astype(np.int64)
        cols["timestamp"] = frames.timestamp[fi].astype(np.float64)
        cols["face_id"] = faces.face_id.astype(np.int64)
        for k, name in enumerate(("x1", "y1", "x2", "y2")):
            cols[name] = faces.boxes[:, k]
        cols["det_score"] = faces.scores
        for k, name in enumerate(schema.KEYPOINTS_5):
            cols[f"{name}_x"] = faces.keypoints[:, k, 0]
            cols[f"{name}_y"] = faces.keypoints[:, k, 1]
        if faces.landmarks is not None and f:
            from facebehavior.face.pose import head_pose

            pose = head_pose(faces.landmarks[:, :468])
        else:
            pose = np.full((f, 3), np.nan, np.float32)
        cols["pose_pitch"], cols["pose_yaw"], cols["pose_roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
        if self.landmark_points == 478:
            cols.update(_landmark_features(faces))
        if self.geometry:
            if state.video and state.calibrator is None:
                from facebehavior.temporal.calibration import PersonCalibrator

                state.calibrator = PersonCalibrator()
            mesh = None if faces.landmarks is None else faces.landmarks[:, :468]
            cols.update(_geometry(mesh, faces.face_id, state.calibrator))
        self._resolve_model()
        if self._spec is not None:
            pred, ok = self._predict(frames, faces)
            if not ok.all():
                cols = {k: v[ok] for k, v in cols.items()}
            cols.update(pred)
            f = int(ok.sum())
        df = pd.DataFrame(cols)
        return df[self.columns] if f else _empty_frame(self.columns)

    def _predict(self, frames: Frames, faces: _Faces) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Align the batch's faces to the model's template and run the model in one call.

        A face whose alignment fails (e.g. ``DegenerateKeypointsError``), or whose outputs are not
        finite, is skipped — logged and recorded in ``skipped_faces`` — and the batch goes on with
        the others.

        Returns:
            ``(columns, kept)``: prediction columns for the kept faces and the (F,) bool mask of
            the faces kept.
        """
        import torch

        spec = self._spec
        f = len(faces)
        kept = np.ones(f, bool)
        if f == 0:
            return {c: np.zeros(0, np.float32) for c in _prediction_columns(spec, self.column_style)}, kept
        crops, kept = self._align(frames, faces, spec.input)
        if not kept.any():
            return {c: np.zeros(0, np.float32) for c in _prediction_columns(spec, self.column_style)}, kept
        from facebehavior.models.default import model_features, preprocess

        # One preprocessing path for training, benchmarks and the pipeline: the spec's input.
        x = preprocess(crops, spec).contiguous()
        bs = None if faces.blendshapes is None else faces.blendshapes[kept]
        extra = [None if t is None else t.to(self.device) for t in model_features(spec, len(x), bs)]
        with torch.inference_mode():
            out = self._model(x.to(torch.device(self.device)), *extra)
        if not isinstance(out, dict):
            raise TypeError(
                f"model {spec.name!r} must return a dict of task outputs, got {type(out).__name__}"
            )
        from facebehavior.models.outputs import nonfinite_rows

        values = {k: v.float().cpu().numpy() for k, v in out.items()}
        bad = nonfinite_rows(values)
        if bad.size and bad.any():
            # A NaN/Inf output (diverged weights, overflow on an odd input) is never written as if
            # it were a prediction: the face is skipped and recorded like one that cannot be aligned.
            pos = np.flatnonzero(kept)[bad]
            for i in pos:
                self._skip(frames, faces.frame_index[i], f"model {spec.name!r} gave non-finite outputs")
            kept[pos] = False
            values = {k: v[~bad] for k, v in values.items()}
        cols = _prediction_values(spec, values, self.column_style)
        return cols, kept

    def _align(self, frames: Frames, faces: _Faces, inp: Any) -> tuple[np.ndarray, np.ndarray]:
        """Aligned crops (K, S, S, 3) uint8 of the faces that can be aligned, and the (F,) kept mask.

        One batched warp; only if it fails are the faces aligned one by one to find the culprits.
        Errors a face's data can cause (``_PER_FACE_ERRORS``: value, arithmetic, index and runtime
        errors, ``DegenerateKeypointsError`` among them) skip that face; others (an unknown
        template, a wrong type) are not about faces and propagate.
        """
        from facebehavior.face.align import align_faces

        f = len(faces)

        def dets(idx: slice) -> Detections:
            return Detections(
                faces.frame_index[idx], faces.boxes[idx], faces.scores[idx], faces.keypoints[idx]
            )

        try:
            al = align_faces(frames.images, dets(slice(None)), size=inp.size, template=inp.template)
            return al.crops, np.ones(f, bool)
        except _PER_FACE_ERRORS:
            pass
        crops, kept = [], np.zeros(f, bool)
        for i in range(f):
            try:
                one = align_faces(frames.images, dets(slice(i, i + 1)), size=inp.size, template=inp.template)
            except _PER_FACE_ERRORS as e:
                self._skip(frames, faces.frame_index[i], f"alignment failed: {type(e).__name__}: {e}")
                continue
            crops.append(one.crops)
            kept[i] = True
        empty = np.zeros((0, inp.size, inp.size, 3), np.uint8)
        return (np.concatenate(crops) if crops else empty), kept

    def _screen(self, frames: Frames, faces: _Faces) -> _Faces:
        """Drop faces that cannot be analysed (non-finite or coincident keypoints/landmarks).

        Each is logged and recorded in ``skipped_faces``; the frame's other faces are kept.
        """
        from facebehavior.face.align import alignable

        if len(faces) == 0:
            return faces
        ok = alignable(faces.keypoints) & np.isfinite(faces.boxes).all(axis=1)
        if faces.landmarks is not None:
            ok &= np.isfinite(faces.landmarks).all(axis=(1, 2))
        if ok.all():
            return faces
        for i in np.flatnonzero(~ok):
            self._skip(frames, faces.frame_index[i], "keypoints or landmarks are non-finite or coincident")
        return faces.take(np.flatnonzero(ok))

    def _skip(self, frames: Frames, position: int, reason: str) -> None:
        """Record a face left out of the rows; the first few per source are logged as warnings."""
        frame = int(frames.index[int(position)])
        source = str(frames.source)
        self.skipped_faces.append(SkippedFace(source, frame, reason))
        n = self._skip_counts[source] = self._skip_counts.get(source, 0) + 1
        if n <= _SKIP_WARNINGS:
            more = " (further ones of this source at debug level)" if n == _SKIP_WARNINGS else ""
            logger.warning("%s frame %d: face skipped (%s)%s", source, frame, reason, more)
        else:
            logger.debug("%s frame %d: face skipped (%s)", source, frame, reason)


# ---------------------------------------------------------------------------------------- helpers
def _input_items(inputs: Any) -> list[Any]:
    """``inputs`` as a list of paths (``str``) and (H, W, 3) / (N, H, W, 3) arrays.

    PIL images become arrays (EXIF orientation applied, as for image files); ``bytes`` paths are
    decoded with the file system's encoding.

    Raises:
        TypeError: an input of any other type, with what is accepted.
    """

    def one(x: Any) -> Any:
        if isinstance(x, (str, Path)):
            return str(x)
        if isinstance(x, bytes):
            import os

            return os.fsdecode(x)
        if isinstance(x, np.ndarray):
            return x
        if type(x).__module__.startswith("PIL.") and hasattr(x, "getexif"):
            from PIL import ImageOps

            from facebehavior.io.images import to_rgb8

            return to_rgb8(ImageOps.exif_transpose(x))
        raise TypeError(
            f"cannot analyse {type(x).__name__}: pass a path (str, bytes, Path), a uint8 RGB array "
            "(H, W, 3) or (N, H, W, 3), a PIL image, or a list of these"
        )

    if isinstance(inputs, (list, tuple)):
        return [one(x) for x in inputs]
    if inputs is None or isinstance(inputs, (str, bytes, Path, np.ndarray)) or hasattr(inputs, "getexif"):
        return [one(inputs)]
    if hasattr(inputs, "__iter__"):
        return [one(x) for x in inputs]
    return [one(inputs)]


def analyze(inputs: Any, **kwargs: Any) -> Any:
    """One-call analysis: ``Analyzer(**kwargs).analyze(inputs)`` (see ``Analyzer``)."""
    errors = kwargs.pop("errors", "raise")
    return Analyzer(**kwargs).analyze(inputs, errors=errors)


def _concat_rois(a: Any, b: Any) -> Any:
    """Two ``FaceRoi`` sets as one."""
    return type(a)(
        frame_index=np.concatenate([a.frame_index, b.frame_index]),
        center=np.concatenate([a.center, b.center]),
        size=np.concatenate([a.size, b.size]),
        angle=np.concatenate([a.angle, b.angle]),
    )


def _dedupe(
    pts: np.ndarray, pres: np.ndarray, fi: np.ndarray, iou: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two tracked crops that drifted onto the same face: keep the more confident one (per frame).

    Not a full greedy NMS (a face suppressed by a suppressed face is dropped too): duplicates here
    are pairs of crops on one face, not chains, and this form needs no loop over faces.
    """
    if pts.shape[0] < 2:
        return pts, pres, fi
    xy = pts[..., :2]
    b = np.concatenate([xy.min(1), xy.max(1)], axis=1)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    ix1 = np.maximum(b[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(b[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(b[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    overlap = (inter / (area[:, None] + area[None, :] - inter + 1e-9) > iou) & (fi[:, None] == fi[None, :])
    # Drop a face if an overlapping one on the same frame is more confident (ties: lower index wins).
    idx = np.arange(len(pres))
    better = (pres[None, :] > pres[:, None]) | (
        (pres[None, :] == pres[:, None]) & (idx[None, :] < idx[:, None])
    )
    keep = ~(overlap & better).any(axis=1)
    return pts[keep], pres[keep], fi[keep]


def _enc(v: Any) -> Any:
    """JSON-safe, bit-exact encoding of arrays (base64 of their bytes)."""
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return {
            "b64": base64.b64encode(a.tobytes()).decode("ascii"),
            "dtype": str(a.dtype),
            "shape": list(a.shape),
        }
    return v


def _dec(v: Any) -> Any:
    if isinstance(v, dict) and "b64" in v:
        return np.frombuffer(base64.b64decode(v["b64"]), dtype=v["dtype"]).reshape(v["shape"]).copy()
    return v


def _snapshot(state: _SourceState) -> dict:
    """What a resumed run needs to continue a source exactly: tracker and geometry baseline.

    JSON-safe: the components' ``state_dict()`` with arrays base64-encoded (``_enc``).
    """
    out: dict[str, Any] = {}
    if state.tracker is not None:
        t = state.tracker.state_dict()
        t["tracks"] = [{k: _enc(v) for k, v in tr.items()} for tr in t["tracks"]]
        out["tracker"] = t
    if state.calibrator is not None:
        c = state.calibrator.state_dict()
        out["calibrator"] = {
            "history": {str(k): _enc(v) for k, v in c["history"].items()},
            "count": {str(k): int(v) for k, v in c["count"].items()},
        }
    return out


def _restore(saved: dict, state: _SourceState, every: int = 1) -> None:
    """Continue a source from ``_snapshot`` output (``every``: the run's frame stride)."""
    if "tracker" in saved:
        from facebehavior.face.track import FaceTracker

        t = dict(saved["tracker"])
        t["tracks"] = [{k: _dec(v) for k, v in tr.items()} for tr in t["tracks"]]
        state.tracker = FaceTracker(frame_step=every)
        state.tracker.load_state_dict(t)
    if "calibrator" in saved:
        from facebehavior.temporal.calibration import PersonCalibrator

        c = saved["calibrator"]
        state.calibrator = PersonCalibrator()
        state.calibrator.load_state_dict(
            {
                "history": {int(k): _dec(v) for k, v in c["history"].items()},
                "count": {int(k): int(v) for k, v in c["count"].items()},
            }
        )


def _default_model_path() -> Path | None:
    """The bundled affect model (``facebehavior.models.default``), or None if this install lacks it."""
    from facebehavior.models.default import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as e:
        logger.warning("%s", e)
        return None


def _geometry_columns() -> list[str]:
    from facebehavior.face import geometry

    m = geometry.measurement_columns(np.zeros((0, len(geometry.MEASUREMENTS))))
    e = geometry.evidence_columns(np.zeros((0, len(geometry.CHANNELS))))
    return [*m, *e]


def _landmark_features(faces: _Faces) -> dict[str, np.ndarray]:
    """Iris centres and blendshape columns (``schema.landmark_feature_columns``), NaN where absent."""
    from facebehavior.face.landmarks import indices

    f = len(faces)
    pts, bs = faces.landmarks, faces.blendshapes
    cols: dict[str, np.ndarray] = {}
    for side, k in (("right", indices.RIGHT_IRIS_CENTER), ("left", indices.LEFT_IRIS_CENTER)):
        for j, axis in enumerate("xy"):
            ok = pts is not None and pts.shape[1] > k
            cols[f"iris_{side}_{axis}"] = pts[:, k, j] if ok else np.full(f, np.nan, np.float32)
    for j, name in enumerate(schema.BLENDSHAPE_NAMES):
        cols[f"bs_{name}"] = bs[:, j] if bs is not None else np.full(f, np.nan, np.float32)
    return cols


def _geometry(landmarks: np.ndarray | None, face_ids: np.ndarray, calibrator: Any) -> dict[str, np.ndarray]:
    from facebehavior.face import geometry

    f = len(face_ids)
    if landmarks is None or f == 0:
        return {n: np.full(f, np.nan, np.float32) for n in _geometry_columns()}
    return geometry.geometry_columns(landmarks, face_ids=face_ids, calibrator=calibrator)


def _au_number(label: str) -> int | None:
    text = label.upper().removeprefix("AU")
    return int(text) if text.isdigit() else None


_TASK_ORDER = ("expression", "au", "au_intensity", "va")


def _tasks(spec: Any) -> list[tuple[str, tuple[str, ...]]]:
    """The spec's tasks in a fixed output order (checkpoints store them sorted by name)."""
    rank = {t: i for i, t in enumerate(_TASK_ORDER)}
    return sorted(spec.tasks.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def _prediction_columns(spec: Any, style: schema.ColumnStyle) -> list[str]:
    cols: list[str] = []
    for task, labels in _tasks(spec):
        if task == "expression":
            cols += schema.expression_columns(tuple(labels)) + [schema.EXPRESSION_LABEL_COLUMN]
        elif task in ("au", "au_intensity"):
            kind = "prob" if task == "au" else "intensity"
            cols += [schema.au_column(_au_number(lb), kind, style) for lb in labels]
        elif task == "va":
            cols += [schema.VALENCE_COLUMN, schema.AROUSAL_COLUMN]
        else:
            cols += [f"{task}_{lb}" for lb in labels]
    if _has_compound(spec):
        from facebehavior.compound import COMPOUND_LABEL_COLUMN, compound_columns

        cols += [*compound_columns("rafdb"), COMPOUND_LABEL_COLUMN]
    return cols


def _has_compound(spec: Any) -> bool:
    """Zero-shot compound scores need expression probabilities, AU probabilities and valence."""
    if not all(t in spec.tasks for t in ("expression", "au", "va")):
        return False
    from facebehavior.compound import compound_supported

    return compound_supported(tuple(spec.tasks["expression"]), [_au_number(lb) for lb in spec.tasks["au"]])


def _prediction_values(
    spec: Any, out: dict[str, np.ndarray], style: schema.ColumnStyle
) -> dict[str, np.ndarray]:
    """Turn raw head outputs into named columns: softmax for expressions, sigmoid for AU logits."""
    cols: dict[str, np.ndarray] = {}
    for task, labels in _tasks(spec):
        if task not in out:
            raise KeyError(f"model {spec.name!r} returned no {task!r} output (it returned {sorted(out)})")
        v = out[task]
        if v.shape[-1] != len(labels):
            raise ValueError(
                f"model {spec.name!r}: {task!r} has {v.shape[-1]} outputs but {len(labels)} labels"
            )
        if task == "expression":
            e = np.exp(v - v.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
            for name, k in zip(schema.expression_columns(tuple(labels)), range(len(labels)), strict=True):
                cols[name] = p[:, k].astype(np.float32)
            cols[schema.EXPRESSION_LABEL_COLUMN] = np.asarray(labels, dtype=object)[p.argmax(axis=1)]
        elif task == "au":
            p = 1.0 / (1.0 + np.exp(-v))
            for k, lb in enumerate(labels):
                cols[schema.au_column(_au_number(lb), "prob", style)] = p[:, k].astype(np.float32)
        elif task == "au_intensity":
            for k, lb in enumerate(labels):
                cols[schema.au_column(_au_number(lb), "intensity", style)] = v[:, k].astype(np.float32)
        elif task == "va":
            cols[schema.VALENCE_COLUMN] = v[:, 0].astype(np.float32)
            cols[schema.AROUSAL_COLUMN] = v[:, 1].astype(np.float32)
        else:
            for k, lb in enumerate(labels):
                cols[f"{task}_{lb}"] = v[:, k].astype(np.float32)
    if _has_compound(spec):
        from facebehavior.compound import compound_output_columns

        ex_labels = tuple(spec.tasks["expression"])
        au_labels = tuple(spec.tasks["au"])
        ex = np.stack([cols[c] for c in schema.expression_columns(ex_labels)], axis=1)
        au = np.stack([cols[schema.au_column(_au_number(lb), "prob", style)] for lb in au_labels], axis=1)
        aus = tuple(_au_number(lb) for lb in au_labels)
        cols.update(compound_output_columns(ex, ex_labels, au, aus, cols[schema.VALENCE_COLUMN]))
    return cols


def _empty_frame(columns: list[str]) -> Any:
    import pandas as pd

    dtypes = {"source": object, "frame": np.int64, "timestamp": np.float64, "face_id": np.int64}
    dtypes[schema.EXPRESSION_LABEL_COLUMN] = object
    return pd.DataFrame({c: pd.Series([], dtype=dtypes.get(c, np.float32)) for c in columns})
