"""Face identities across video frames: motion + appearance tracking with re-identification.

``FaceTracker`` gives every detection a ``face_id`` that stays the same while a face is visible,
survives short detector misses, and comes back when a face leaves the frame and re-enters:

1. Tracks seen recently are matched to the new detections by Hungarian assignment
   (``scipy.optimize.linear_sum_assignment``) on a cost mixing overlap with the track's
   motion-predicted box (IoU and centre distance) and appearance similarity.
2. Detections still unmatched are compared, by appearance only, with the gallery of lost tracks
   (up to ``reid_max_age`` frames old); a close enough match takes the old identity back.
3. Anything left starts a new track with a new id. A young track that turns out to look like a
   lost one (its first frames may have shown the face cut by the frame edge) is re-labelled.

The appearance descriptor is deliberately cheap: a 16×16 loosely aligned crop, as a
normalised grey thumbnail plus an 8×8 colour thumbnail (hair, skin and clothing colour
separate people well within one video). It identifies faces within one source, not across
sources; call ``reset()`` before each new video.

State is carried across ``update`` calls, so a long video can be fed in chunks of frames.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from facebehavior.types import Detections

__all__ = ["FaceTracker", "appearance_descriptors", "box_iou"]

logger = logging.getLogger(__name__)

_DESC_SIZE = 16  # side of the aligned crop the descriptor is computed from (antialiased warp)
_DESC_MARGIN = 1.4  # looser than ArcFace: include hair and some background/clothing
_DESC_DIM = 16 * 16 + 8 * 8 * 3


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (A, 4) and (B, 4) x1, y1, x2, y2 boxes → (A, B)."""
    a = np.asarray(a, dtype=np.float64)[:, None]
    b = np.asarray(b, dtype=np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _zscore(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-6)


def appearance_descriptors(images: np.ndarray, detections: Detections) -> np.ndarray:
    """Cheap per-face appearance embeddings for re-identification within one video.

    Args:
        images: (N, H, W, 3) uint8 RGB frames the detections refer to.
        detections: faces with 5 keypoints.

    Returns:
        (F, 448) float32 unit vectors; cosine similarity near 1 means the same face. Rows are NaN
        for faces whose keypoints cannot be aligned (coincident or non-finite).
    """
    from facebehavior.face.align import crop_matrices, warp_faces

    out = np.full((len(detections), _DESC_DIM), np.nan, np.float32)
    kp = detections.keypoints.astype(np.float64)
    spread = np.nan_to_num((kp - kp.mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2))
    ok = np.isfinite(kp).all(axis=(1, 2)) & (spread > 1e-2)
    if not ok.any():
        return out
    mats = crop_matrices(kp[ok], _DESC_SIZE, "arcface", _DESC_MARGIN)
    crops = warp_faces(images, detections.frame_index[ok], mats, _DESC_SIZE, border="replicate")
    out[ok] = _describe(crops.astype(np.float32))
    return out


def _describe(crops: np.ndarray) -> np.ndarray:
    """(F, 16, 16, 3) float crops → (F, 448) unit descriptors."""
    f = crops.shape[0]
    grey16 = (crops @ np.array([0.299, 0.587, 0.114], np.float32)).reshape(f, -1)  # (F, 256)
    col8 = crops.reshape(f, 8, 2, 8, 2, 3).mean(axis=(2, 4))  # (F, 8, 8, 3)
    # Colour as chromaticity-ish: per channel z-scored jointly so brightness changes cancel.
    col = col8.reshape(f, -1)
    desc = np.concatenate([_zscore(grey16), _zscore(col)], axis=1) / np.sqrt(2.0)
    return desc.astype(np.float32)


@dataclass
class _Track:
    face_id: int
    box: np.ndarray  # (4,) last box
    velocity: np.ndarray  # (4,) per-frame box change (smoothed)
    descriptor: np.ndarray | None  # (D,) unit vector (smoothed) or None
    last_seen: int  # frame counter of the last match
    first_seen: int
    hits: int = 1

    def predict(self, now: int, horizon: int) -> np.ndarray:
        gap = min(now - self.last_seen, horizon)
        return self.box + self.velocity * gap


class FaceTracker:
    """Streaming multi-face tracker assigning stable ``face_id``s.

    Args:
        iou_gate: minimum IoU between a track's predicted box and a detection to link them by
            motion (alternatively the centres must be within ``centre_gate`` box sizes).
        centre_gate: maximum centre distance, in units of the track's box side, for a motion link.
        max_lost: frames a track may go undetected and still be matched by motion.
        reid_max_age: frames a lost track stays in the re-identification gallery.
        reid_threshold: minimum appearance cosine similarity to re-identify a lost face.
        appearance_gate: minimum similarity for a motion link (stops swaps when faces cross).
        appearance_weight: weight of appearance dissimilarity in the motion-link cost.
        young_frames: a track younger than this may still be re-labelled to a lost identity.
        descriptor_momentum: smoothing of a track's appearance (0 = latest only).
    """

    def __init__(
        self,
        *,
        iou_gate: float = 0.1,
        centre_gate: float = 0.75,
        max_lost: int = 10,
        reid_max_age: int = 750,
        reid_threshold: float = 0.75,
        appearance_gate: float = 0.3,
        appearance_weight: float = 1.0,
        young_frames: int = 12,
        descriptor_momentum: float = 0.8,
    ) -> None:
        self.iou_gate = float(iou_gate)
        self.centre_gate = float(centre_gate)
        self.max_lost = int(max_lost)
        self.reid_max_age = int(reid_max_age)
        self.reid_threshold = float(reid_threshold)
        self.appearance_gate = float(appearance_gate)
        self.appearance_weight = float(appearance_weight)
        self.young_frames = int(young_frames)
        self.descriptor_momentum = float(descriptor_momentum)
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 0 (call before each new source)."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._frame = -1

    @property
    def num_identities(self) -> int:
        """Number of distinct face ids handed out since the last reset."""
        return self._next_id

    def update(
        self,
        detections: Detections,
        images: np.ndarray | None = None,
        *,
        num_frames: int | None = None,
        descriptors: np.ndarray | None = None,
    ) -> Detections:
        """Assign face ids to the detections of the next consecutive frames.

        Args:
            detections: faces of a batch of consecutive frames (``frame_index`` into the batch).
            images: (N, H, W, 3) uint8 frames of the batch; used for appearance descriptors
                (without them, and without ``descriptors``, tracking uses motion only and a face
                that leaves the frame gets a new id when it returns).
            num_frames: frames in the batch (default: ``len(images)``, or the largest frame
                index + 1); frames without faces still age the tracks.
            descriptors: (F, D) precomputed unit appearance vectors instead of ``images``.

        Returns:
            The detections, in the same order, with ``face_id`` set.
        """
        f = len(detections)
        if num_frames is None:
            num_frames = (
                len(images) if images is not None else int(detections.frame_index.max()) + 1 if f else 0
            )
        if f and int(detections.frame_index.max()) >= num_frames:
            raise ValueError(
                f"detections refer to frame {int(detections.frame_index.max())} but the batch has "
                f"{num_frames} frames"
            )
        if descriptors is None and images is not None:
            descriptors = appearance_descriptors(images, detections)
        if descriptors is not None and len(descriptors) != f:
            raise ValueError(f"descriptors has {len(descriptors)} rows for {f} detections")
        usable = np.ones(f, bool) if descriptors is None else np.isfinite(descriptors).all(axis=1)
        # A face cut by the frame edge gives an unreliable descriptor: such faces are linked by
        # motion only, never re-identified, and do not update their track's appearance.
        if images is None:
            inside = np.ones(f, bool)
        else:
            b = detections.boxes
            inside = (
                (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= images.shape[2]) & (b[:, 3] <= images.shape[1])
            )
        inside &= usable  # a face without a usable descriptor is treated like a cut-off one
        ids = np.full(f, -1, np.int64)
        order = np.argsort(detections.frame_index, kind="stable")
        bounds = np.searchsorted(detections.frame_index[order], np.arange(num_frames + 1))
        for k in range(num_frames):
            sel = order[bounds[k] : bounds[k + 1]]
            self._frame += 1
            d = None if descriptors is None else descriptors[sel]
            ids[sel] = self._step(detections.boxes[sel].astype(np.float64), d, inside[sel])
        return replace(detections, face_id=ids)

    # ------------------------------------------------------------------------------------ internals
    def _step(self, boxes: np.ndarray, desc: np.ndarray | None, inside: np.ndarray) -> np.ndarray:
        now = self._frame
        self._tracks = [t for t in self._tracks if now - t.last_seen <= self.reid_max_age]
        n = boxes.shape[0]
        out = np.full(n, -1, np.int64)
        assigned: dict[int, _Track] = {}
        unmatched = list(range(n))

        # 1. Motion (+ appearance) links to recently seen tracks.
        recent = [t for t in self._tracks if now - t.last_seen <= self.max_lost]
        if recent and n:
            pred = np.stack([t.predict(now, self.max_lost) for t in recent])
            iou = box_iou(pred, boxes)
            side = np.sqrt(np.maximum((pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1]), 1.0))
            cp = (pred[:, :2] + pred[:, 2:]) / 2
            cd = (boxes[:, :2] + boxes[:, 2:]) / 2
            dist = np.linalg.norm(cp[:, None] - cd[None], axis=2) / side[:, None]
            ok = (iou >= self.iou_gate) | (dist <= self.centre_gate)
            cost = (1.0 - iou) + np.minimum(dist, 2.0)
            sim = self._similarity(recent, desc)
            if sim is not None:
                known = ~np.isnan(sim) & inside[None]
                ok &= ~known | (sim >= self.appearance_gate)
                cost = cost + self.appearance_weight * np.where(known, 1.0 - sim, 0.0)
            for ti, di in self._assign(cost, ok):
                assigned[di] = recent[ti]
            unmatched = [i for i in range(n) if i not in assigned]

        # 2. Re-identify remaining detections among tracks not matched in this frame.
        unmatched = [i for i in unmatched if inside[i]]
        if unmatched and desc is not None:
            taken = {id(t) for t in assigned.values()}
            gallery = [t for t in self._tracks if id(t) not in taken and t.descriptor is not None]
            if gallery:
                sim = np.stack([t.descriptor for t in gallery]) @ desc[unmatched].T
                for gi, ui in self._assign(1.0 - sim, sim >= self.reid_threshold):
                    assigned[unmatched[ui]] = gallery[gi]
                    logger.debug("frame %d: re-identified face %d", now, gallery[gi].face_id)

        # 3. New tracks; update matched ones.
        for i in range(n):
            d = None if desc is None or not inside[i] else desc[i]
            t = assigned.get(i)
            if t is None:
                t = _Track(
                    face_id=self._next_id,
                    box=boxes[i].copy(),
                    velocity=np.zeros(4),
                    descriptor=None if d is None else d.copy(),
                    last_seen=now,
                    first_seen=now,
                )
                self._next_id += 1
                self._tracks.append(t)
            else:
                gap = max(now - t.last_seen, 1)
                if gap <= self.max_lost:
                    t.velocity = 0.5 * t.velocity + 0.5 * (boxes[i] - t.box) / gap
                else:
                    t.velocity = np.zeros(4)
                t.box = boxes[i].copy()
                t.last_seen = now
                t.hits += 1
                if d is not None:
                    if t.descriptor is None:
                        t.descriptor = d.copy()
                    else:
                        m = self.descriptor_momentum
                        v = m * t.descriptor + (1 - m) * d
                        t.descriptor = v / max(float(np.linalg.norm(v)), 1e-6)
            out[i] = t.face_id
        self._relabel_young(out)
        return out

    def _relabel_young(self, out: np.ndarray) -> None:
        """Give a young track the identity of a lost track it turns out to resemble."""
        now = self._frame
        young = [
            t for t in self._tracks if now - t.first_seen < self.young_frames and t.descriptor is not None
        ]
        if not young:
            return
        active = {t.face_id for t in self._tracks if t.last_seen == now}
        for t in young:
            if t.last_seen != now:
                continue
            lost = [
                g
                for g in self._tracks
                if g is not t
                and g.face_id not in active
                and g.descriptor is not None
                and g.first_seen < t.first_seen
            ]
            if not lost:
                continue
            sim = np.array([float(g.descriptor @ t.descriptor) for g in lost])
            best = int(np.argmax(sim))
            if sim[best] >= self.reid_threshold:
                g = lost[best]
                logger.debug("frame %d: young face %d re-labelled as %d", now, t.face_id, g.face_id)
                out[out == t.face_id] = g.face_id
                g.box, g.velocity, g.last_seen = t.box, t.velocity, t.last_seen
                g.hits += t.hits
                self._tracks.remove(t)
                active.add(g.face_id)

    def _similarity(self, tracks: list[_Track], desc: np.ndarray | None) -> np.ndarray | None:
        """(T, F) cosine similarities; NaN where a track has no descriptor yet."""
        if desc is None:
            return None
        sim = np.full((len(tracks), desc.shape[0]), np.nan)
        for i, t in enumerate(tracks):
            if t.descriptor is not None:
                sim[i] = desc @ t.descriptor
        return sim

    @staticmethod
    def _assign(cost: np.ndarray, ok: np.ndarray) -> list[tuple[int, int]]:
        """Hungarian assignment restricted to allowed pairs → list of (row, col)."""
        if cost.size == 0 or not ok.any():
            return []
        big = 1e6
        rows, cols = linear_sum_assignment(np.where(ok, cost, big))
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ok[r, c]]
