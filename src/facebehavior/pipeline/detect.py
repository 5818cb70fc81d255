"""Face detection stage: the BlazeFace short → full-range cascade, tiling for crowds, limits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from facebehavior.pipeline.base import Batch, Faces, SourceState
from facebehavior.types import Detections

__all__ = ["Detect", "limit_faces", "SMALL_FACE_FRACTION", "TILE_MIN_SCORE"]

# Short-range BlazeFace is trained on faces filling most of a selfie frame; below about a fifth of
# the frame's long side it starts missing faces (MediaPipe's own guidance: "within 2 m"). Frames
# whose faces are all smaller than this go to the full-range model.
SMALL_FACE_FRACTION = 0.2
# Tiles (``Detect._tiled``) show clothing and hair at face scale: short-range BlazeFace's own 0.5
# threshold let through a sweater fold at 0.54 in samples/face.jpg, while the 30 faces of a photo
# grid scored 0.84-0.98. Tile detections must clear this higher bar.
TILE_MIN_SCORE = 0.75


class Detect:
    """Find faces (box, score, 5 keypoints) in every frame of a batch, in one batched call.

    Args:
        detector: ``"auto"`` runs BlazeFace short-range on the batch and, only for the frames in
            which it found nothing or only small faces, BlazeFace full-range (then tiles, see
            ``_tiled``); a ``DETECTORS`` name; or a ``FaceDetector`` object (``images → Detections``).
        device: torch device of the detector networks.
        backend: runtime of the BlazeFace networks: ``"auto"``, ``"onnx"`` or ``"torch"``
            (``backends.resolve_backend``).
        max_faces: keep at most this many faces per frame (highest scores first).
        min_face_size: drop faces whose box side is smaller than this many pixels.
    """

    name = "detect"

    def __init__(
        self,
        detector: str | Any = "auto",
        *,
        device: str = "cpu",
        max_faces: int | None = None,
        min_face_size: float = 0.0,
        backend: str = "auto",
    ) -> None:
        from facebehavior.backends import resolve_backend

        if isinstance(detector, str) and detector != "auto":
            from facebehavior.face.detect import MODULE_OF
            from facebehavior.registry import DETECTORS

            if detector not in MODULE_OF:
                DETECTORS.get(detector)  # an unknown name fails now, listing the valid ones
        self.detector = detector
        self.device = device
        self.backend = resolve_backend(backend, device)
        if self.backend == "torch":
            import torch  # noqa: F401  (imported before the first batch so its thread scope applies)
        self.max_faces = max_faces
        self.min_face_size = float(min_face_size)
        self._nets: dict[str, Any] = {}

    def columns(self) -> list[str]:
        return []

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        return replace(batch, faces=self.find(batch.frames.images))

    def find(self, images: np.ndarray) -> Faces:
        """Faces in (N, H, W, 3) uint8 frames, sorted by frame then score, limits applied."""
        arg = self.detector
        if isinstance(arg, str) and arg == "auto":
            det = self._net("blazeface_short")(images)
            det = self._tiled(images, self._cascade(images, det))
        elif isinstance(arg, str):
            det = self._net(arg)(images)
        else:
            det = arg(images)
        return limit_faces(Faces.from_detections(det), self.max_faces, self.min_face_size)

    def _net(self, name: str) -> Any:
        if name not in self._nets:
            from facebehavior.face.detect import create_detector

            # BlazeFace runs on the chosen backend; create_detector imports only its module.
            kwargs = {"backend": self.backend} if name.startswith("blazeface") else {}
            self._nets[name] = create_detector(name, device=self.device, **kwargs)
        return self._nets[name]

    def _cascade(self, images: np.ndarray, det: Detections) -> Detections:
        """Re-run frames where short-range found nothing, or only small faces, at full range."""
        n, h, w = images.shape[:3]
        side = np.maximum(det.boxes[:, 2] - det.boxes[:, 0], det.boxes[:, 3] - det.boxes[:, 1])
        big = np.zeros(n, bool)
        big[det.frame_index[side >= SMALL_FACE_FRACTION * max(h, w)]] = True
        redo = np.flatnonzero(~big)
        if redo.size == 0:
            return det
        full = self._net("blazeface_full")(images[redo])
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
        from facebehavior.face.boxes import batched_nms

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
            d = self._net("blazeface_short")(tiles)
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
        keep = np.sort(np.asarray(batched_nms(boxes, scores, fi, 0.3), np.int64))
        return Detections(fi[keep], boxes[keep], scores[keep], kps[keep])


def limit_faces(faces: Faces, max_faces: int | None, min_face_size: float = 0.0) -> Faces:
    """Drop faces smaller than ``min_face_size`` pixels, keep the ``max_faces`` best per frame.

    Returns:
        The kept faces sorted by frame, then by descending score.
    """
    keep = np.ones(len(faces), bool)
    if min_face_size > 0:
        side = np.minimum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
        keep &= side >= min_face_size
    order = np.lexsort((-faces.scores, faces.frame_index))
    order = order[keep[order]]
    if max_faces is not None and order.size:
        fi = faces.frame_index[order]
        first = np.searchsorted(fi, fi, side="left")
        rank = np.arange(order.size) - first
        order = order[rank < max_faces]
    return faces.take(order)
