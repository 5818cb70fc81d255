"""Small stages: screen out unusable faces, give faces identities, measure pose/landmark features."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from facebehavior import schema
from facebehavior.pipeline.base import Batch, SourceState, decode_array, encode_array

if TYPE_CHECKING:  # imported where used: both pull in heavier modules than a stage's definition
    from facebehavior.face.track import FaceTracker
    from facebehavior.temporal.calibration import PersonCalibrator

__all__ = ["Screen", "Track", "Measure", "POINT_COLUMNS"]

# Landmark columns written per face (``Measure(points=...)``, ``analyze --points``).
PointColumns = Literal["none", "68", "openface", "all"]
POINT_COLUMNS: tuple[str, ...] = ("none", "68", "openface", "all")


class Screen:
    """Drop faces that cannot be analysed (non-finite or coincident keypoints/landmarks).

    Each is recorded as skipped; the frame's other faces are kept.
    """

    name = "screen"
    overlappable = True  # numpy only, state in SourceState.stages[name] (Analyzer overlap)

    def columns(self) -> list[str]:
        return []

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        from facebehavior.face.align import alignable

        faces = batch.faces
        if len(faces) == 0:
            return batch
        ok = alignable(faces.keypoints) & np.isfinite(faces.boxes).all(axis=1)
        if faces.landmarks is not None:
            ok &= np.isfinite(faces.landmarks).all(axis=(1, 2))
        return batch.drop(np.flatnonzero(~ok), "keypoints or landmarks are non-finite or coincident")


class Track:
    """A ``face_id`` per person across the frames of a source (``face.track.FaceTracker``).

    Args:
        every: the run's frame stride (the tracker counts video frames, not analysed ones).
    """

    name = "track"
    overlappable = True  # numpy only, state in SourceState.stages[name] (Analyzer overlap)

    def __init__(self, every: int = 1) -> None:
        self.every = int(every)

    def columns(self) -> list[str]:
        return []

    def tracker(self, state: SourceState) -> FaceTracker:
        """This source's tracker (created on first use)."""
        from facebehavior.face.track import FaceTracker

        if self.name not in state.stages:
            state.stages[self.name] = FaceTracker(frame_step=self.every)
        return state.stages[self.name]

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        tracker = self.tracker(state)
        faces = batch.faces
        if len(faces) == 0:
            # Nothing to describe: only age the tracks by the batch's frames.
            tracker.update(faces.detections(), None, num_frames=len(batch.frames))
            return batch
        ids = np.asarray(tracker.update(faces.detections(), batch.frames.images).face_id, np.int64)
        return replace(batch, faces=replace(faces, face_id=ids))

    def snapshot(self, state: SourceState) -> dict:
        """The tracker's state, JSON-safe (arrays base64-encoded, bit-exact)."""
        if self.name not in state.stages:
            return {}
        t = state.stages[self.name].state_dict()
        t["tracks"] = [{k: encode_array(v) for k, v in tr.items()} for tr in t["tracks"]]
        return {"tracker": t}

    def restore(self, saved: dict, state: SourceState) -> None:
        if "tracker" not in saved:
            return
        t = dict(saved["tracker"])
        t["tracks"] = [{k: decode_array(v) for k, v in tr.items()} for tr in t["tracks"]]
        self.tracker(state).load_state_dict(t)


class Measure:
    """Head pose, iris centres and blendshapes, and (optionally) geometric AU evidence.

    Args:
        landmark_points: most landmarks per face the run produces: 478 adds the ``iris_*`` and
            ``bs_*`` columns and gaze (NaN on faces with 468 points), 468 or 0 do not.
        points: landmark columns: ``"none"``; ``"68"`` (default): the 68-point iBUG subset in
            pixels (``x_0 … y_67``), head position ``pose_Tx/Ty/Tz`` in mm and gaze (``gaze_*``);
            ``"openface"``: also the 68 points in mm (``X_/Y_/Z_*``) and OpenFace's 56 eye-region
            landmarks (``eye_lmk_*``), everything OpenFace 2 writes; ``"all"``: also every mesh
            point (``mesh_x/y/z_*``, pixels). See ``docs/pipeline.md`` "Output columns".
        geometry: add the geometric measurement and AU-evidence columns (``face.geometry``); on
            video, against a per-person baseline (``temporal.calibration.PersonCalibrator``).
    """

    name = "measure"
    overlappable = True  # numpy only, state in SourceState.stages[name] (Analyzer overlap)

    def __init__(
        self, landmark_points: int = 468, geometry: bool = False, points: PointColumns = "68"
    ) -> None:
        if points not in POINT_COLUMNS:
            raise ValueError(f"points must be one of {POINT_COLUMNS}, got {points!r}")
        self.landmark_points = int(landmark_points)
        self.geometry = bool(geometry)
        self.points = points if self.landmark_points else "none"

    def columns(self) -> list[str]:
        cols = ["pose_pitch", "pose_yaw", "pose_roll"]
        if self.landmark_points == 478:
            cols += schema.landmark_feature_columns()
        cols += self._point_columns()
        if self.geometry:
            cols += geometry_columns()
        return cols

    def _point_columns(self) -> list[str]:
        if self.points == "none":
            return []
        v2 = self.landmark_points == 478
        cols = schema.landmark68_columns() + list(schema.POSE_TRANSLATION_COLUMNS)
        cols += schema.gaze_columns() if v2 else []
        if self.points in ("openface", "all"):
            cols += schema.landmark68_columns(three_d=True)
            cols += schema.eye_landmark_columns() + schema.eye_landmark_columns(three_d=True) if v2 else []
        if self.points == "all":
            cols += mesh_columns(self.landmark_points)
        return cols

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        faces = batch.faces
        f = len(faces)
        cols: dict[str, np.ndarray] = {}
        if faces.landmarks is not None and f:
            from facebehavior.face.pose import head_pose

            pose = head_pose(faces.landmarks[:, :468])
        else:
            pose = np.full((f, 3), np.nan, np.float32)
        cols["pose_pitch"], cols["pose_yaw"], cols["pose_roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
        if self.landmark_points == 478:
            cols.update(_landmark_features(faces.landmarks, faces.blendshapes, f))
        if self.points != "none":
            cols.update(self._points(faces.landmarks, batch.frames.images.shape[1:3], f))
        if self.geometry:
            calibrator = self.calibrator(state) if state.video else None
            mesh = None if faces.landmarks is None else faces.landmarks[:, :468]
            if mesh is None or f == 0:
                cols.update({n: np.full(f, np.nan, np.float32) for n in geometry_columns()})
            else:
                from facebehavior.face import geometry

                cols.update(geometry.geometry_columns(mesh, face_ids=faces.face_id, calibrator=calibrator))
        return batch.with_columns(cols)

    def _points(self, pts: np.ndarray | None, image_size: tuple[int, int], f: int) -> dict[str, np.ndarray]:
        """68-point landmarks (pixels, millimetres), head position, gaze and eye landmarks.

        Gaze and the eye-region landmarks need Face Mesh V2's irises: NaN on faces with 468 points.
        """
        names = self._point_columns()
        if pts is None or f == 0:
            return {n: np.full(f, np.nan, np.float32) for n in names}
        from facebehavior.face.camera import landmark_output_columns

        cols = landmark_output_columns(pts, image_size)
        if pts.shape[1] >= 478 and any(n.startswith(("gaze_", "eye_lmk_")) for n in names):
            from facebehavior.face.gaze import gaze_output_columns

            cols.update(gaze_output_columns(pts, image_size))
        if self.points == "all":
            p = pts.shape[1]
            for j, axis in enumerate("xyz"):
                for i in range(self.landmark_points):
                    cols[f"mesh_{axis}_{i}"] = pts[:, i, j] if i < p else np.full(f, np.nan, np.float32)
        return {n: cols[n] if n in cols else np.full(f, np.nan, np.float32) for n in names}

    def calibrator(self, state: SourceState) -> PersonCalibrator:
        """This source's per-person geometric baseline (created on first use)."""
        from facebehavior.temporal.calibration import PersonCalibrator

        if self.name not in state.stages:
            state.stages[self.name] = PersonCalibrator()
        return state.stages[self.name]

    def snapshot(self, state: SourceState) -> dict:
        """The per-person geometric baseline, JSON-safe."""
        if self.name not in state.stages:
            return {}
        c = state.stages[self.name].state_dict()
        return {
            "calibrator": {
                "history": {str(k): encode_array(v) for k, v in c["history"].items()},
                "count": {str(k): int(v) for k, v in c["count"].items()},
            }
        }

    def restore(self, saved: dict, state: SourceState) -> None:
        if "calibrator" not in saved:
            return
        c = saved["calibrator"]
        self.calibrator(state).load_state_dict(
            {
                "history": {int(k): decode_array(v) for k, v in c["history"].items()},
                "count": {int(k): int(v) for k, v in c["count"].items()},
            }
        )


def mesh_columns(points: int) -> list[str]:
    """Columns of the full landmark mesh (``points="all"``): ``mesh_x_0 …, mesh_y_0 …, mesh_z_0 …``
    in frame pixels (z: relative depth, same scale)."""
    return [f"mesh_{axis}_{i}" for axis in "xyz" for i in range(points)]


def geometry_columns() -> list[str]:
    """Names of the ``--geometry`` columns, in order."""
    from facebehavior.face import geometry

    m = geometry.measurement_columns(np.zeros((0, len(geometry.MEASUREMENTS))))
    e = geometry.evidence_columns(np.zeros((0, len(geometry.CHANNELS))))
    return [*m, *e]


def _landmark_features(pts: np.ndarray | None, bs: np.ndarray | None, f: int) -> dict[str, np.ndarray]:
    """Iris centres and blendshape columns (``schema.landmark_feature_columns``), NaN where absent."""
    from facebehavior.face.landmarks import indices

    cols: dict[str, np.ndarray] = {}
    for side, k in (("right", indices.RIGHT_IRIS_CENTER), ("left", indices.LEFT_IRIS_CENTER)):
        for j, axis in enumerate("xy"):
            ok = pts is not None and pts.shape[1] > k
            cols[f"iris_{side}_{axis}"] = pts[:, k, j] if ok else np.full(f, np.nan, np.float32)
    for j, name in enumerate(schema.BLENDSHAPE_NAMES):
        cols[f"bs_{name}"] = bs[:, j] if bs is not None else np.full(f, np.nan, np.float32)
    return cols
