"""Face identities across video frames: motion + appearance tracking with re-identification.

``FaceTracker`` gives every detection a ``face_id`` that stays the same while a face is visible,
survives short detector misses, and comes back when a face leaves the frame and re-enters:

1. Tracks seen recently are matched to the new detections by Hungarian assignment
   (``face.assign.linear_assignment``) on a cost mixing overlap with the track's
   motion-predicted box (IoU and centre distance) and appearance similarity.
2. Detections still unmatched are compared, by appearance only, with the gallery of lost tracks
   (up to ``reid_max_age`` frames old); a close enough match takes the old identity back.
3. Anything left starts a new track with a new id. A young track that turns out to look like a
   lost one (its first frames may have shown the face cut by the frame edge) is re-labelled.

A face cut by the frame edge is never used to update a track's appearance; it is linked by motion
and re-identified (steps 2 and 3) from the visible part of its thumbnail only, compared with the
same pixels of the gallery's complete views, once at least half of the thumbnail is in view.

The appearance descriptor is deliberately cheap: a 16×16 loosely aligned crop, as a
normalised grey thumbnail plus an 8×8 colour thumbnail (hair, skin and clothing colour
separate people well within one video). It identifies faces within one source, not across
sources; call ``reset()`` before each new video.

State is carried across ``update`` calls, so a long video can be fed in chunks of frames; it can
be saved and restored with ``state_dict()`` / ``load_state_dict()`` (resuming an interrupted run).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from facebehavior.face.assign import linear_assignment
from facebehavior.face.boxes import box_iou
from facebehavior.types import Detections

__all__ = ["FaceTracker", "appearance_descriptors"]

logger = logging.getLogger(__name__)

_DESC_SIZE = 16  # side of the aligned crop the descriptor is computed from (antialiased warp)
_DESC_MARGIN = 1.4  # looser than ArcFace: include hair and some background/clothing
_DESC_DIM = 16 * 16 + 8 * 8 * 3


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
    return _describe(_thumbnails(images, detections)[0])


def _thumbnails(images: np.ndarray, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
    """Loosely aligned 16×16 thumbnails and which of their pixels lie inside the frame.

    Returns:
        thumbs (F, 16, 16, 3) float32 (NaN rows where keypoints cannot be aligned) and visible
        (F, 16, 16) bool.
    """
    from facebehavior.face.align import alignable, crop_matrices, invert_affine, warp_faces_numpy

    f = len(detections)
    thumbs = np.full((f, _DESC_SIZE, _DESC_SIZE, 3), np.nan, np.float32)
    visible = np.zeros((f, _DESC_SIZE, _DESC_SIZE), bool)
    kp = detections.keypoints.astype(np.float64)
    ok = alignable(kp)
    ok[ok] = ((kp[ok] - kp[ok].mean(axis=1, keepdims=True)) ** 2).sum(axis=(1, 2)) > 1e-2
    if not ok.any():
        return thumbs, visible
    mats = crop_matrices(kp[ok], _DESC_SIZE, "arcface", _DESC_MARGIN)
    # The numpy warp (no torch: the onnxruntime path); same sampling as ``warp_faces``, values may
    # differ by 1 grey level where float32 and float64 positions round apart.
    fi = detections.frame_index[ok]
    thumbs[ok] = warp_faces_numpy(images, fi, mats, _DESC_SIZE, border="replicate")
    inv = invert_affine(mats)
    v, u = np.mgrid[0:_DESC_SIZE, 0:_DESC_SIZE].astype(np.float64)
    x = inv[:, 0, 0, None, None] * u + inv[:, 0, 1, None, None] * v + inv[:, 0, 2, None, None]
    y = inv[:, 1, 0, None, None] * u + inv[:, 1, 1, None, None] * v + inv[:, 1, 2, None, None]
    h, w = images.shape[1:3]
    visible[ok] = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    return thumbs, visible


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _describe(thumbs: np.ndarray) -> np.ndarray:
    """(F, 16, 16, 3) float thumbnails → (F, 448) unit descriptors (NaN rows stay NaN)."""
    f = thumbs.shape[0]
    grey16 = (thumbs @ _LUMA).reshape(f, -1)  # (F, 256)
    col8 = thumbs.reshape(f, 8, 2, 8, 2, 3).mean(axis=(2, 4)).reshape(f, -1)  # (F, 192)
    # Each part z-scored on its own, so the two halves weigh equally and brightness cancels.
    desc = np.concatenate([_zscore(grey16), _zscore(col8)], axis=1) / np.sqrt(2.0)
    return desc.astype(np.float32)


def _masked_similarity(gallery: np.ndarray, thumb: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Descriptor cosine between gallery thumbnails and one partly visible thumbnail.

    Both sides are described from the visible pixels only, so a face cut by the frame edge can
    be compared with complete views. With every pixel visible this equals ``_describe``'s cosine.

    Args:
        gallery: (G, 16, 16, 3) complete thumbnails.
        thumb: (16, 16, 3) the partly visible one.
        visible: (16, 16) bool.

    Returns:
        (G,) similarities in [-1, 1].
    """
    g = gallery.shape[0]
    m16 = visible.reshape(-1)
    m8 = visible.reshape(8, 2, 8, 2).all(axis=(1, 3))
    m8 = np.repeat(m8.reshape(-1, 1), 3, axis=1).reshape(-1)
    both = np.concatenate([gallery, thumb[None]], axis=0)
    grey = (both @ _LUMA).reshape(g + 1, -1)[:, m16]
    col = both.reshape(g + 1, 8, 2, 8, 2, 3).mean(axis=(2, 4)).reshape(g + 1, -1)[:, m8]
    zg, zc = _zscore(grey), _zscore(col)
    return 0.5 * (zg[:g] @ zg[g] + zc[:g] @ zc[g])


@dataclass
class _Track:
    face_id: int
    box: np.ndarray  # (4,) last box
    velocity: np.ndarray  # (4,) per-frame box change (smoothed)
    descriptor: np.ndarray | None  # (D,) unit vector (smoothed) or None
    thumb: np.ndarray | None  # (16, 16, 3) smoothed thumbnail (image input only) or None
    last_seen: int  # frame counter of the last match
    first_seen: int

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
        appearance_gate: minimum similarity for a motion link (stops swaps when faces cross),
            unless the predicted box overlaps the detection by at least ``trust_iou``.
        trust_iou: IoU above which a motion link ignores ``appearance_gate``.
        appearance_weight: weight of appearance dissimilarity in the motion-link cost.
        young_frames: a track younger than this may still be re-labelled to a lost identity.
        descriptor_momentum: smoothing of a track's appearance (0 = latest only).
        frame_step: source frames per processed frame (the stride of ``--every N``). Every
            frame count above (``max_lost``, ``reid_max_age``, ``young_frames``) is in source
            frames, so a face that leaves for a given time is handled the same at any stride; a
            track seen on the previous processed frame can always be linked by motion.
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
        trust_iou: float = 0.5,
        appearance_weight: float = 1.0,
        young_frames: int = 12,
        descriptor_momentum: float = 0.8,
        frame_step: int = 1,
    ) -> None:
        if frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {frame_step}")
        self.iou_gate = float(iou_gate)
        self.centre_gate = float(centre_gate)
        self.max_lost = int(max_lost)
        self.reid_max_age = int(reid_max_age)
        self.reid_threshold = float(reid_threshold)
        self.appearance_gate = float(appearance_gate)
        self.trust_iou = float(trust_iou)
        self.appearance_weight = float(appearance_weight)
        self.young_frames = int(young_frames)
        self.descriptor_momentum = float(descriptor_momentum)
        self.frame_step = int(frame_step)
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

    def state_dict(self) -> dict[str, Any]:
        """Everything ``update`` carries from one call to the next (copies; settings excluded).

        Returns:
            ``{"next_id": int, "frame": int, "tracks": [...]}``: ``frame`` is the frame counter of
            the last processed frame (source frames); each track is a dict with ``face_id``,
            ``box`` (4,) and ``velocity`` (4,) float64 pixels (per source frame), ``descriptor``
            (D,) float32 or None, ``thumb`` (16, 16, 3) float32 or None, ``last_seen`` and
            ``first_seen`` (frame counters).
        """
        tracks = []
        for t in self._tracks:
            d = {f.name: getattr(t, f.name) for f in fields(t)}
            tracks.append({k: v.copy() if isinstance(v, np.ndarray) else v for k, v in d.items()})
        return {"next_id": int(self._next_id), "frame": int(self._frame), "tracks": tracks}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()`` output (e.g. of a run that was interrupted).

        Raises:
            ValueError: ``state`` lacks a key or a track has the wrong fields; the message names them.
        """
        missing = {"next_id", "frame", "tracks"} - set(state)
        if missing:
            raise ValueError(f"tracker state lacks {sorted(missing)}; pass FaceTracker.state_dict() output")
        names = {f.name for f in fields(_Track)}
        tracks = []
        for i, tr in enumerate(state["tracks"]):
            if set(tr) != names:
                raise ValueError(
                    f"tracker state: track {i} has fields {sorted(tr)}, expected {sorted(names)}"
                )
            arr = {
                k: None if tr[k] is None else np.array(tr[k])
                for k in ("box", "velocity", "descriptor", "thumb")
            }
            if arr["box"] is None or arr["box"].shape != (4,) or arr["velocity"] is None:
                raise ValueError(f"tracker state: track {i} needs a (4,) box and velocity")
            ints = {k: int(tr[k]) for k in ("face_id", "last_seen", "first_seen")}
            tracks.append(_Track(**arr, **ints))
        self._tracks = tracks
        self._next_id = int(state["next_id"])
        self._frame = int(state["frame"])

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
        thumbs = visible = None
        if descriptors is None and images is not None:
            thumbs, visible = _thumbnails(images, detections)
            descriptors = _describe(thumbs)
        if descriptors is not None and len(descriptors) != f:
            raise ValueError(f"descriptors has {len(descriptors)} rows for {f} detections")
        usable = np.ones(f, bool) if descriptors is None else np.isfinite(descriptors).all(axis=1)
        # A face cut by the frame edge gives an unreliable descriptor: such faces are linked by
        # motion, never update their track's appearance, and are re-identified only on the
        # pixels they show (``partial``), and only if they show at least half the thumbnail.
        partial = np.zeros(f, bool)
        if images is None:
            reliable = usable
        else:
            b = detections.boxes
            h, w = images.shape[1:3]
            in_frame = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)
            if visible is not None:
                frac = visible.mean(axis=(1, 2))
                reliable = usable & in_frame & (frac >= 0.8)
                partial = usable & ~reliable & (frac >= 0.5)
            else:
                reliable = usable & in_frame
        ids = np.full(f, -1, np.int64)
        order = np.argsort(detections.frame_index, kind="stable")
        bounds = np.searchsorted(detections.frame_index[order], np.arange(num_frames + 1))
        for k in range(num_frames):
            sel = order[bounds[k] : bounds[k + 1]]
            self._frame += self.frame_step
            ids[sel] = self._step(
                detections.boxes[sel].astype(np.float64),
                None if descriptors is None else descriptors[sel],
                reliable[sel],
                partial[sel],
                None if thumbs is None else thumbs[sel],
                None if visible is None else visible[sel],
            )
        return replace(detections, face_id=ids)

    # ------------------------------------------------------------------------------------ internals
    def _step(
        self,
        boxes: np.ndarray,
        desc: np.ndarray | None,
        reliable: np.ndarray,
        partial: np.ndarray,
        thumbs: np.ndarray | None,
        visible: np.ndarray | None,
    ) -> np.ndarray:
        now = self._frame
        self._tracks = [t for t in self._tracks if now - t.last_seen <= self.reid_max_age]
        n = boxes.shape[0]
        out = np.full(n, -1, np.int64)
        assigned: dict[int, _Track] = {}
        unmatched = list(range(n))

        # 1. Motion (+ appearance) links to recently seen tracks.
        recent = [t for t in self._tracks if now - t.last_seen <= self._max_gap]
        if recent and n:
            pred = np.stack([t.predict(now, self._max_gap) for t in recent])
            iou = box_iou(pred, boxes)
            side = np.sqrt(np.maximum((pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1]), 1.0))
            cp = (pred[:, :2] + pred[:, 2:]) / 2
            cd = (boxes[:, :2] + boxes[:, 2:]) / 2
            dist = np.linalg.norm(cp[:, None] - cd[None], axis=2) / side[:, None]
            ok = (iou >= self.iou_gate) | (dist <= self.centre_gate)
            cost = (1.0 - iou) + np.minimum(dist, 2.0)
            sim = self._similarity(recent, desc)
            if sim is not None:
                known = ~np.isnan(sim) & reliable[None]
                # A strong overlap is trusted whatever the appearance (head turns change it).
                ok &= ~known | (sim >= self.appearance_gate) | (iou >= self.trust_iou)
                cost = cost + self.appearance_weight * np.where(known, 1.0 - sim, 0.0)
            for ti, di in self._assign(cost, ok):
                assigned[di] = recent[ti]
            unmatched = [i for i in range(n) if i not in assigned]

        # 2. Re-identify remaining detections among tracks not matched in this frame.
        unmatched = [i for i in unmatched if reliable[i] or partial[i]]
        if unmatched and desc is not None:
            taken = {id(t) for t in assigned.values()}
            gallery = [t for t in self._tracks if id(t) not in taken and t.descriptor is not None]
            if gallery:
                sim = np.stack([t.descriptor for t in gallery]) @ desc[unmatched].T  # (G, U)
                for ui, i in enumerate(unmatched):
                    if partial[i]:
                        sim[:, ui] = -1.0
                        with_thumb = [gi for gi, t in enumerate(gallery) if t.thumb is not None]
                        if with_thumb and thumbs is not None and visible is not None:
                            g = np.stack([gallery[gi].thumb for gi in with_thumb])
                            sim[with_thumb, ui] = _masked_similarity(g, thumbs[i], visible[i])
                for gi, ui in self._assign(1.0 - sim, sim >= self.reid_threshold):
                    assigned[unmatched[ui]] = gallery[gi]
                    logger.debug("frame %d: re-identified face %d", now, gallery[gi].face_id)

        # 3. New tracks; update matched ones.
        for i in range(n):
            d = desc[i] if desc is not None and reliable[i] else None
            th = thumbs[i] if thumbs is not None and reliable[i] else None
            t = assigned.get(i)
            if t is None:
                t = _Track(
                    face_id=self._next_id,
                    box=boxes[i].copy(),
                    velocity=np.zeros(4),
                    descriptor=None if d is None else d.copy(),
                    thumb=None if th is None else th.copy(),
                    last_seen=now,
                    first_seen=now,
                )
                self._next_id += 1
                self._tracks.append(t)
            else:
                gap = max(now - t.last_seen, 1)
                if gap <= self._max_gap:
                    t.velocity = 0.5 * t.velocity + 0.5 * (boxes[i] - t.box) / gap
                else:
                    t.velocity = np.zeros(4)
                t.box = boxes[i].copy()
                t.last_seen = now
                self._update_appearance(t, d, th)
            out[i] = t.face_id
        self._relabel_young(out, partial, thumbs, visible)
        return out

    @property
    def _max_gap(self) -> int:
        """Largest gap (source frames) bridged by motion: ``max_lost``, at least one processed frame."""
        return max(self.max_lost, self.frame_step)

    def _update_appearance(self, t: _Track, d: np.ndarray | None, th: np.ndarray | None) -> None:
        """Exponential moving average of a track's thumbnail (or, without one, its descriptor)."""
        m = self.descriptor_momentum
        if th is not None:
            t.thumb = th.copy() if t.thumb is None else m * t.thumb + (1 - m) * th
            t.descriptor = _describe(t.thumb[None])[0]
        elif d is not None:
            if t.descriptor is None:
                t.descriptor = d.copy()
            else:
                v = m * t.descriptor + (1 - m) * d
                t.descriptor = v / max(float(np.linalg.norm(v)), 1e-6)

    def _relabel_young(
        self,
        out: np.ndarray,
        partial: np.ndarray,
        thumbs: np.ndarray | None,
        visible: np.ndarray | None,
    ) -> None:
        """Give a young track the identity of a lost track it turns out to resemble.

        Compared by its smoothed descriptor once it has been seen whole, or before that by the
        visible part of its current, partly cut-off view.
        """
        now = self._frame
        active = {t.face_id for t in self._tracks if t.last_seen == now}
        for t in [t for t in self._tracks if now - t.first_seen < self.young_frames and t.last_seen == now]:
            lost = [
                g
                for g in self._tracks
                if g is not t and g.face_id not in active and g.first_seen < t.first_seen
            ]
            i = int(np.nonzero(out == t.face_id)[0][0])
            if t.descriptor is not None:
                lost = [g for g in lost if g.descriptor is not None]
                sim = np.array([float(g.descriptor @ t.descriptor) for g in lost])
            elif partial[i] and thumbs is not None and visible is not None:
                lost = [g for g in lost if g.thumb is not None]
                sim = (
                    _masked_similarity(np.stack([g.thumb for g in lost]), thumbs[i], visible[i])
                    if lost
                    else []
                )
            else:
                continue
            if not lost:
                continue
            best = int(np.argmax(sim))
            if sim[best] >= self.reid_threshold:
                g = lost[best]
                logger.debug("frame %d: young face %d re-labelled as %d", now, t.face_id, g.face_id)
                out[out == t.face_id] = g.face_id
                g.box, g.velocity, g.last_seen = t.box, t.velocity, t.last_seen
                if t.thumb is not None:
                    self._update_appearance(g, t.descriptor, t.thumb)
                elif t.descriptor is not None:
                    self._update_appearance(g, t.descriptor, None)
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
        rows, cols = linear_assignment(np.where(ok, cost, big))
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if ok[r, c]]
