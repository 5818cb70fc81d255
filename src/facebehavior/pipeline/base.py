"""What pipeline stages share: the batch they pass along, the stage protocol, per-source state.

A stage is any object with a ``name``, the output ``columns()`` it adds, and
``__call__(batch, state) -> batch``. The ``Analyzer`` owns the loop over its ``stages`` list and
nothing else, so a stage can be replaced, removed or wrapped (``Timed``) from outside.
Stages that carry state from one batch of a source to the next (face ids, a person's geometric
baseline) keep it in ``SourceState.stages[stage.name]`` and may implement ``snapshot(state)`` /
``restore(saved, state)`` so a resumed run continues exactly. A stage that runs no PyTorch (its
thread count is process-wide) and keeps its state to itself may declare ``overlappable = True``:
the Analyzer then runs it, with the others at the end of the list that do, in a worker thread one
batch behind the stages before it (``Analyzer(overlap=True)``).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from facebehavior.types import Detections, Frames

__all__ = ["Batch", "Chunk", "Faces", "SkippedFace", "SourceState", "Stage", "Timed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Faces:
    """Faces of one batch, flat (F = faces in the batch).

    Attributes:
        frame_index: (F,) int64 position of each face's frame in the batch.
        boxes: (F, 4) float32 x1, y1, x2, y2 pixels.
        scores: (F,) float32 detector score, or the landmark model's face presence.
        keypoints: (F, 5, 2) float32 pixels, ``schema.KEYPOINTS_5`` order.
        landmarks: (F, P, 3) float32 pixels (z in the same scale); P = 468 (v1) or 478 (V2,
            irises last); ``None`` without a landmark stage.
        face_id: (F,) int64 identity across frames; -1 before tracking.
        blendshapes: (F, 52) float32 Blendshape V2 scores (Face Mesh V2 only), else ``None``.
    """

    frame_index: np.ndarray  # (F,) int64
    boxes: np.ndarray  # (F, 4) float32
    scores: np.ndarray  # (F,) float32
    keypoints: np.ndarray  # (F, 5, 2) float32
    landmarks: np.ndarray | None = None  # (F, P, 3) float32
    face_id: np.ndarray | None = None  # (F,) int64
    blendshapes: np.ndarray | None = None  # (F, 52) float32

    def __post_init__(self) -> None:
        if self.face_id is None:
            object.__setattr__(self, "face_id", np.full(len(self.frame_index), -1, np.int64))

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    def take(self, idx: np.ndarray) -> Faces:
        """The faces at positions (or mask) ``idx``, in that order."""
        return Faces(
            self.frame_index[idx],
            self.boxes[idx],
            self.scores[idx],
            self.keypoints[idx],
            None if self.landmarks is None else self.landmarks[idx],
            self.face_id[idx],
            None if self.blendshapes is None else self.blendshapes[idx],
        )

    def detections(self) -> Detections:
        """The faces as ``Detections`` (box, score, 5 keypoints, face id)."""
        return Detections(self.frame_index, self.boxes, self.scores, self.keypoints, self.face_id)

    @staticmethod
    def from_detections(det: Detections) -> Faces:
        return Faces(
            det.frame_index.astype(np.int64),
            det.boxes.astype(np.float32),
            det.scores.astype(np.float32),
            det.keypoints.astype(np.float32),
        )

    @staticmethod
    def empty(points: int = 0) -> Faces:
        """No faces; with ``points`` > 0 an empty (0, points, 3) landmark array."""
        return Faces(
            np.zeros(0, np.int64),
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 5, 2), np.float32),
            np.zeros((0, points, 3), np.float32) if points else None,
        )


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


@dataclass(frozen=True)
class Batch:
    """What flows through the stages: a batch of frames, its faces and their output columns.

    Attributes:
        frames: the frames (one source).
        faces: the faces found so far.
        columns: output column name → (F,) array, aligned with ``faces``.
        skipped: faces dropped by a stage, with the reason.
    """

    frames: Frames
    faces: Faces = field(default_factory=Faces.empty)
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)
    skipped: tuple[SkippedFace, ...] = ()

    def take(self, idx: np.ndarray) -> Batch:
        """Keep the faces (and their columns) at positions or mask ``idx``."""
        return replace(self, faces=self.faces.take(idx), columns={k: v[idx] for k, v in self.columns.items()})

    def with_columns(self, columns: Mapping[str, np.ndarray]) -> Batch:
        """Add (or replace) per-face columns."""
        return replace(self, columns={**self.columns, **columns})

    def drop(self, positions: np.ndarray, reasons: str | list[str]) -> Batch:
        """Leave the faces at ``positions`` out, recording each as a ``SkippedFace``."""
        positions = np.asarray(positions, np.int64)
        if positions.size == 0:
            return self
        if isinstance(reasons, str):
            reasons = [reasons] * positions.size
        src = str(self.frames.source)
        new = tuple(
            SkippedFace(src, int(self.frames.index[self.faces.frame_index[p]]), r)
            for p, r in zip(positions, reasons, strict=True)
        )
        keep = np.ones(len(self.faces), bool)
        keep[positions] = False
        return replace(self.take(np.flatnonzero(keep)), skipped=self.skipped + new)


@dataclass
class SourceState:
    """What carries over from one batch of a source to the next.

    Attributes:
        video: the source is a frame sequence (video, webcam, array stack), not a still image.
        stages: stage name → that stage's state for this source (owned and typed by the stage).
    """

    video: bool = True
    stages: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Stage(Protocol):
    """One step of the pipeline: ``Batch`` in, ``Batch`` out."""

    name: str

    def columns(self) -> list[str]:
        """Output columns this stage adds to every face row, in order."""
        ...

    def __call__(self, batch: Batch, state: SourceState) -> Batch: ...


class Timed:
    """Wrap a stage to time it: ``analyzer.stages = [Timed(s) for s in analyzer.stages]``.

    Attributes:
        stage: the wrapped stage.
        seconds: wall time spent in it.
        cpu_seconds: process CPU time spent in it.
        calls: number of batches it processed.
    """

    def __init__(self, stage: Any) -> None:
        self.stage = stage
        self.name = stage.name
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0

    def columns(self) -> list[str]:
        return self.stage.columns()

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        return self._timed(self.stage, batch, state)

    def find(self, images: np.ndarray) -> Any:
        """Timed ``find`` of a wrapped ``Detect``, which ``TrackLandmarks`` calls directly:
        ``lm.detect = Timed(lm.detect)`` times detection inside landmark tracking."""
        return self._timed(self.stage.find, images)

    def _timed(self, fn: Any, *args: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args)
        finally:
            self.seconds += time.perf_counter() - t
            self.cpu_seconds += time.process_time() - c
            self.calls += 1

    def __getattr__(self, name: str) -> Any:  # snapshot/restore and the stage's own attributes
        return getattr(self.__dict__["stage"], name)


@dataclass(frozen=True)
class Chunk:
    """Results of one batch of frames of one source.

    Attributes:
        source: the source the frames came from.
        rows: one row per face, plus (by default) one per frame without an analysed face;
            columns ``Analyzer.columns``.
        frames: number of frames analysed.
        no_face: frames in which no face was found.
        last_frame: index of the last frame of the batch.
        done: this chunk ends the source.
        state: JSON-serialisable source state after the chunk — face tracker and ``--geometry``
            baseline (only with ``iter_chunks(snapshots=True)``), so a resumed run continues them.
        skipped: faces found but left out because they could not be aligned or analysed (each
            is logged and listed in ``Analyzer.skipped_faces``).
    """

    source: str
    rows: Any  # pandas.DataFrame
    frames: int
    no_face: int
    last_frame: int
    done: bool
    state: dict | None = None
    skipped: int = 0


def encode_array(v: Any) -> Any:
    """JSON-safe, bit-exact encoding of an array (base64 of its bytes); other values unchanged."""
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v)
        return {
            "b64": base64.b64encode(a.tobytes()).decode("ascii"),
            "dtype": str(a.dtype),
            "shape": list(a.shape),
        }
    return v


def decode_array(v: Any) -> Any:
    """Inverse of ``encode_array``."""
    if isinstance(v, dict) and "b64" in v:
        return np.frombuffer(base64.b64decode(v["b64"]), dtype=v["dtype"]).reshape(v["shape"]).copy()
    return v
