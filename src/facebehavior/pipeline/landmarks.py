"""Landmark stage: dense face landmarks on every frame, tracked from frame to frame as in MediaPipe."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from facebehavior.pipeline.base import Batch, Faces, SourceState
from facebehavior.pipeline.detect import Detect, limit_faces
from facebehavior.types import Detections

__all__ = ["TrackLandmarks", "concat_rois"]


class TrackLandmarks:
    """Face Mesh landmarks for every face of every frame; finds faces with a ``Detect`` stage.

    As in MediaPipe, a face found once is *tracked*: the next frame's crop comes from the current
    landmarks, so the detector only runs on the first frame of each batch, every
    ``redetect_every`` frames, and whenever a tracked face is lost (presence below
    ``min_presence``) — the landmark network alone per frame instead of detector + landmarks. A
    face's box is then the box of its points and its score the landmark model's face presence.

    Args:
        landmarks: ``"auto"``: Face Mesh V2 (478 points with irises, and its 52 blendshapes) on
            still images, FaceMesh-468 on video frames; ``"v2"`` / ``"v1"`` force one; or a
            landmarker object (``from_rois(images, rois) → Landmarks``, with ``num_points``).
        detect: the detection stage used on key frames and for lost faces.
        device: torch device of the landmark networks.
        backend: runtime of the landmark and blendshape networks: ``"auto"``, ``"onnx"`` or
            ``"torch"`` (``backends.resolve_backend``); ``detect`` keeps its own.
        redetect_every: run the detector at least every this many frames.
        min_presence: face presence below which a tracked face counts as lost.
    """

    name = "landmarks"

    def __init__(
        self,
        landmarks: str | Any = "auto",
        detect: Detect | None = None,
        *,
        device: str = "cpu",
        redetect_every: int = 8,
        min_presence: float = 0.5,
        backend: str = "auto",
    ) -> None:
        from facebehavior.backends import resolve_backend

        if isinstance(landmarks, str) and landmarks not in ("auto", "v1", "v2"):
            raise ValueError(f"landmarks must be 'auto', 'v1', 'v2' or a landmarker; got {landmarks!r}")
        if redetect_every < 1:
            raise ValueError("redetect_every must be >= 1")
        self.landmarks = landmarks
        self.detect = detect if detect is not None else Detect(device=device)
        self.device = device
        self.backend = resolve_backend(backend, device)
        if self.backend == "torch":
            import torch  # noqa: F401  (imported before the first batch so its thread scope applies)
        self.redetect_every = int(redetect_every)
        self.min_presence = float(min_presence)
        self._models: dict[str, Any] = {}
        self._blendshaper: Any = None

    @property
    def num_points(self) -> int:
        """Most landmarks per face: 478 when Face Mesh V2 runs on some or all inputs, else 468."""
        if isinstance(self.landmarks, str):
            return 468 if self.landmarks == "v1" else 478
        return int(getattr(self.landmarks, "num_points", 468))

    def columns(self) -> list[str]:
        return []

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        return replace(batch, faces=self.find(batch.frames.images, state.video))

    def landmarker(self, video: bool = True) -> Any:
        """The landmark model for video frames or (``video=False``) a still image."""
        arg = self.landmarks
        if not isinstance(arg, str):
            return arg
        # Why "auto" splits: V2 runs on every tracked video frame (2.3x the end-to-end cost of
        # samples/video.mp4), on a still only once; stills get the blendshapes, video the speed.
        version = ("v1" if video else "v2") if arg == "auto" else arg
        if version not in self._models:
            if version == "v2":
                from facebehavior.face.landmarks.facemesh_v2 import FaceMeshV2Landmarker

                self._models[version] = FaceMeshV2Landmarker(device=self.device, backend=self.backend)
            else:
                from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

                self._models[version] = FaceMeshLandmarker(device=self.device, backend=self.backend)
        return self._models[version]

    def blendshapes(self, points: np.ndarray) -> np.ndarray | None:
        """(F, 52) Blendshape V2 scores of Face Mesh V2 landmarks; ``None`` for 468-point landmarks."""
        if points.shape[1] != 478:
            return None
        if self._blendshaper is None:
            from facebehavior.face.landmarks.blendshapes import FaceBlendshapes

            self._blendshaper = FaceBlendshapes(device=self.device, backend=self.backend)
        return self._blendshaper(points)

    def find(self, images: np.ndarray, video: bool = True) -> Faces:
        """Landmarks on every frame, each frame's crops taken from the previous frame's landmarks.

        The batch is cut into intervals of ``redetect_every`` frames whose first frame is a key
        frame: the detector runs on all key frames in one call. Tracking inside an interval is
        sequential (frame j's crop needs frame j-1's landmarks), but the intervals are independent,
        so they advance together in *waves*: wave w runs the landmark model once on frame
        ``key + w`` of every interval. A batch of N frames thus costs ``redetect_every`` calls of
        about ``N / redetect_every`` frames each, instead of N calls of one frame — the per-frame
        result is exactly MediaPipe's track-from-previous-landmarks, computed in batches. An
        interval that tracks fewer faces than ``max_faces`` (no face, without a limit) runs the
        detector on each of its frames (batched per wave).
        """
        from facebehavior.face.landmarks.facemesh import keypoints5, roi_from_landmarks

        lm = self.landmarker(video)
        find = self.detect.find
        max_faces = self.detect.max_faces
        n = images.shape[0]
        k = self.redetect_every
        keyframes = np.arange(0, n, k)
        key = find(images[keyframes])
        # ROIs of the current wave, frame_index = absolute frame in the batch.
        rois = self._rois(key, keyframes[key.frame_index], images, lm)
        out_fi, out_pts, out_pres = [], [], []
        for w in range(k):
            if w > 0:
                # Intervals tracking fewer faces than wanted (``max_faces``; without a limit, none)
                # look for faces on every frame, as MediaPipe does: an entering face is picked up
                # at once. Duplicates of tracked faces are removed after the landmarks (``dedupe``).
                cand = keyframes + w
                tracked = np.bincount(rois.frame_index, minlength=n)
                cand = cand[cand < n]
                cand = cand[tracked[cand] < (max_faces or 1)]
                if cand.size:
                    det = find(images[cand])
                    if len(det):
                        rois = concat_rois(rois, self._rois(det, cand[det.frame_index], images, lm))
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
                det = find(images[lost])
                if len(det):
                    redo = self._rois(det, lost[det.frame_index], images, lm)
                    again = lm.from_rois(images, redo)
                    keep_old = ~np.isin(fi, lost)
                    pts = np.concatenate([pts[keep_old], np.asarray(again.points, np.float32)])
                    pres = np.concatenate([pres[keep_old], np.asarray(again.presence, np.float32)])
                    fi = np.concatenate([fi[keep_old], redo.frame_index])
                    ok = pres >= self.min_presence
            pts, pres, fi = pts[ok], pres[ok], fi[ok]
            keep = dedupe(pts, pres, fi)
            pts, pres, fi = pts[keep], pres[keep], fi[keep]
            out_fi.append(fi)
            out_pts.append(pts)
            out_pres.append(pres)
            nxt = fi + 1
            cont = (nxt < n) & (w + 1 < k)
            rois = roi_from_landmarks(pts[cont], nxt[cont])
        if sum(len(x) for x in out_fi) == 0:
            return Faces.empty(getattr(lm, "num_points", 468))
        pts = np.concatenate(out_pts).astype(np.float32)
        xy = pts[..., :2]
        faces = Faces(
            np.concatenate(out_fi).astype(np.int64),
            np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1),
            np.concatenate(out_pres).astype(np.float32),
            keypoints5(pts),
            pts,
        )
        faces = limit_faces(faces, max_faces, self.detect.min_face_size)
        if len(faces):
            faces = replace(faces, blendshapes=self.blendshapes(faces.landmarks))
        return faces

    def _rois(self, faces: Faces, frame_index: np.ndarray, images: np.ndarray, lm: Any) -> Any:
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


def concat_rois(a: Any, b: Any) -> Any:
    """Two ``FaceRoi`` sets as one."""
    return type(a)(
        frame_index=np.concatenate([a.frame_index, b.frame_index]),
        center=np.concatenate([a.center, b.center]),
        size=np.concatenate([a.size, b.size]),
        angle=np.concatenate([a.angle, b.angle]),
    )


def dedupe(pts: np.ndarray, presence: np.ndarray, frame_index: np.ndarray, iou: float = 0.5) -> np.ndarray:
    """Positions to keep when tracked crops drifted onto the same face: per frame, greedy NMS on
    the landmarks' boxes by presence (``face.boxes.batched_nms``), in input order.

    Args:
        pts: (F, P, 3) landmarks, pixels.
        presence: (F,) face presence.
        frame_index: (F,) frame of each face.
        iou: overlap above which two faces are one.
    """
    if pts.shape[0] < 2:
        return np.arange(pts.shape[0])
    from facebehavior.face.boxes import batched_nms

    xy = pts[..., :2]
    boxes = np.concatenate([xy.min(1), xy.max(1)], axis=1)
    return np.sort(np.asarray(batched_nms(boxes, presence, frame_index, iou), np.int64))
