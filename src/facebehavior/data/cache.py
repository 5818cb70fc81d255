"""Face-crop cache: detect and align every labelled frame once, then train from memory-mapped crops.

Layout of one cached split (``build_cache`` writes it, ``FaceCache`` reads it)::

    <out>/
      meta.json                     # corpus, split, crop size, template, detector(s), shard size, rows
      labels.npz                    # the split's LabelTable (no pickles; ``load_table``)
      shard_00000.crops.npy         # (M, S, S, 3) uint8 aligned crops, one per table row of the shard
      shard_00000.index.npz         # row (M,) int64 table row; status (M,) int8; score (M,) float32;
                                    # box (M, 4) and kp5 (M, 5, 2) float32 frame pixels;
                                    # kp5_crop (M, 5, 2) float32 crop pixels; matrix (M, 2, 3) frame→crop;
                                    # landmarks (M, P, 2) crop pixels when the corpus ships landmarks;
                                    # mesh_presence (M,) float32 FaceMesh presence (``facemesh``)
      shard_00000.mesh.npy          # (M, 468, 2) float16 FaceMesh points in crop pixels (``facemesh``)
      shard_00000.done              # written last: the shard is complete (resume skips it)
      flow.npy, flow.json           # optional (``build_flow``, ``prepare --flow``): (N, S, S, 3) uint8
                                    # AUNets flow image of every row (``temporal.flow``), + settings

Every table row has an entry: rows whose face was not found (``STATUS_NO_FACE``) or whose image
could not be read (``STATUS_UNREADABLE``) keep a black crop and their status, so nothing is
silently dropped; ``FaceCache`` serves only ``STATUS_OK`` rows and reports the others. One face
is kept per row: the largest detection (the annotated person fills the frame in every corpus
with labels per image or per frame), or, for corpora that annotate the face box (AffectNet), the
detection overlapping that box. Frames where the first detector finds nothing are retried
with ``fallback`` (BlazeFace full-range by default, for small or far faces). Crops are aligned on
FaceMesh's five points by default, as ``Analyzer`` aligns them at inference (``CacheConfig``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facebehavior.data.labels import OPTIONAL_ROW_ARRAYS, ROW_ARRAYS, LabelTable
from facebehavior.face.boxes import box_iou

__all__ = [
    "CACHE_VERSION",
    "CacheConfig",
    "CacheMismatchError",
    "FaceCache",
    "STATUS_NAMES",
    "STATUS_NO_FACE",
    "STATUS_OK",
    "STATUS_UNREADABLE",
    "build_cache",
    "build_flow",
    "load_table",
    "save_table",
]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
STATUS_OK, STATUS_NO_FACE, STATUS_UNREADABLE = 0, 1, 2
STATUS_NAMES = {STATUS_OK: "ok", STATUS_NO_FACE: "no_face", STATUS_UNREADABLE: "unreadable"}


class CacheMismatchError(ValueError):
    """An existing cache folder was built with other settings or another table."""


@dataclass(frozen=True)
class CacheConfig:
    """How a cache is built.

    Attributes:
        size: crop side in pixels.
        template: alignment template name (``face.align.TEMPLATES``).
        margin: template looseness (``None``: the template's own).
        detector: ``DETECTORS`` name of the first detector.
        fallback: detector retried on frames without a face (``None``: no retry).
        score_threshold: detection threshold (``None``: each detector's default).
        shard_size: table rows per shard (the unit of resume and of parallel work).
        batch_size: frames per detector call.
        device: torch device for the detectors.
        facemesh: run FaceMesh on each kept face and align on its 5 points (eye centres, nose
            tip, true mouth corners) — what ``Analyzer`` does with ``landmarks=True``, so training
            crops are framed like inference crops. Faces whose FaceMesh presence is below
            ``min_presence`` keep the detector's keypoints. ``False``: detector keypoints only
            (as ``Analyzer(landmarks=False)``).
        min_presence: FaceMesh presence needed to use its keypoints.
        detect: ``False`` trusts the corpus' own face crops (Aff-Wild2's ``cropped_aligned``,
            RAF-DB's aligned images, FER2013): each image is resized to ``size`` as it is, with
            no detection or alignment (keypoints are NaN, ``facemesh`` is ignored).
    """

    size: int = 112
    template: str = "arcface"
    margin: float | None = None
    detector: str = "blazeface_short"
    fallback: str | None = "blazeface_full"
    score_threshold: float | None = None
    shard_size: int = 1024
    batch_size: int = 32
    device: str = "cpu"
    facemesh: bool = True
    min_presence: float = 0.5
    detect: bool = True

    def fingerprint(self) -> dict:
        """The settings that change the cache contents (``batch_size``/``device`` do not)."""
        d = asdict(self)
        d.pop("batch_size")
        d.pop("device")
        return d


def save_table(table: LabelTable, path: str | Path) -> None:
    """Write a ``LabelTable`` to ``path`` (.npz, strings as unicode arrays: loadable without pickle)."""
    arrays: dict[str, np.ndarray] = {}
    for name in ROW_ARRAYS + OPTIONAL_ROW_ARRAYS:
        value = getattr(table, name)
        if value is None:
            continue
        arrays[name] = value.astype(str) if value.dtype == object else value
    for key, value in table.extra.items():
        arrays[f"extra.{key}"] = value.astype(str) if value.dtype == object else value
    meta = {"corpus": table.corpus, "split": table.split, "root": str(table.root), "aus": list(table.aus)}
    arrays["__meta__"] = np.array(json.dumps(meta))
    tmp = Path(f"{path}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_table(path: str | Path) -> LabelTable:
    """Read a table written by ``save_table``."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["__meta__"]))
        fields: dict[str, object] = {}
        extra: dict[str, np.ndarray] = {}
        for key in z.files:
            if key == "__meta__":
                continue
            value = z[key]
            if value.dtype.kind == "U":
                value = value.astype(object)
            if key.startswith("extra."):
                extra[key[len("extra.") :]] = value
            else:
                fields[key] = value
    return LabelTable(
        corpus=meta["corpus"],
        split=meta["split"],
        root=Path(meta["root"]),
        aus=tuple(meta["aus"]),
        extra=extra,
        **fields,  # type: ignore[arg-type]
    )


def _shard_rows(n: int, shard_size: int) -> list[np.ndarray]:
    return [np.arange(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]


def _shard_path(out: Path, shard: int, suffix: str) -> Path:
    return out / f"shard_{shard:05d}.{suffix}"


def _table_signature(table: LabelTable) -> dict:
    """What identifies the rows of a table: their images and frames, hashed in order.

    Labels are not part of it: relabelling a corpus rewrites ``labels.npz`` without re-detecting.
    """
    h = hashlib.sha1()
    for start in range(0, len(table), 65536):
        chunk = slice(start, start + 65536)
        h.update("\n".join(map(str, table.image[chunk])).encode())
        h.update(np.ascontiguousarray(table.frame[chunk], np.int64).tobytes())
    return {"corpus": table.corpus, "split": table.split, "rows": len(table), "sha1": h.hexdigest()}


def build_cache(
    adapter: object,
    table: LabelTable,
    out: str | Path,
    config: CacheConfig = CacheConfig(),
    *,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, int]:
    """Detect, align and store every row of ``table`` (resumable, optionally in parallel).

    Args:
        adapter: the dataset adapter that produced ``table`` (its ``read_images`` serves pixels).
        table: the split to cache.
        out: folder of this split's cache (created).
        config: crop size, template, detectors, shard size.
        workers: processes working on shards in parallel (each loads its own detectors; they
            are spawned, so scripts calling this must guard their entry point with
            ``if __name__ == "__main__":``, as for any spawn-based multiprocessing).
        overwrite: rebuild every shard even when complete; needed when settings changed.

    Returns:
        Counts: ``shards`` (total), ``skipped`` (already complete), ``built``, and per status
        (``ok``, ``no_face``, ``unreadable``) over the shards built now.

    Raises:
        CacheMismatchError: ``out`` holds a cache built with other settings or another table
            (and ``overwrite`` is False).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "version": CACHE_VERSION,
        "config": config.fingerprint(),
        "table": _table_signature(table),
        "shard_size": config.shard_size,
    }
    meta_path = out / "meta.json"
    if meta_path.is_file() and not overwrite:
        old = json.loads(meta_path.read_text())
        if old != meta:
            raise CacheMismatchError(
                f"{out} holds a cache built with other settings or for other rows ({old.get('config')}, "
                f"{old.get('table')}); use another output folder or overwrite=True (CLI: --overwrite)"
            )
    if overwrite:
        for p in out.glob("shard_*.done"):
            p.unlink()
    meta_path.write_text(json.dumps(meta, indent=1))
    save_table(table, out / "labels.npz")
    shards = _shard_rows(len(table), config.shard_size)
    pending = [s for s in range(len(shards)) if not _shard_path(out, s, "done").is_file()]
    counts = {"shards": len(shards), "skipped": len(shards) - len(pending), "built": 0}
    counts.update({name: 0 for name in STATUS_NAMES.values()})
    jobs = [(s, shards[s]) for s in pending]
    started = time.monotonic()
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        # The adapter and table travel once per process (initializer), not once per shard.
        with ProcessPoolExecutor(
            workers,
            mp_context=mp.get_context("spawn"),
            initializer=_init_process,
            initargs=(adapter, table, config),
        ) as pool:
            for stats in pool.map(_shard_job, [(out, s, r) for s, r in jobs]):
                _add(counts, stats)
                _progress(out, counts, len(jobs), started)
    else:
        worker = _Worker(config)
        for s, rows in jobs:
            _add(counts, worker.run_shard(adapter, table, out, s, rows))
            _progress(out, counts, len(jobs), started)
    logger.info("cache %s: %s", out, counts)
    return counts


def _progress(out: Path, counts: dict[str, int], total: int, started: float) -> None:
    done = counts["built"]
    rows = counts["ok"] + counts["no_face"] + counts["unreadable"]
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done)
    logger.info("%s: shard %d/%d, %.1f rows/s, %d without a face, about %.0f s left",
                out.name, done, total, rows / max(elapsed, 1e-9), counts["no_face"], eta)  # fmt: skip


def _add(counts: dict[str, int], stats: dict[str, int]) -> None:
    counts["built"] += 1
    for k, v in stats.items():
        counts[k] += v


_PROCESS: tuple[_Worker, object, LabelTable] | None = None


def _init_process(adapter: object, table: LabelTable, config: CacheConfig) -> None:
    global _PROCESS
    import torch

    torch.set_num_threads(1)  # one process per core: intra-op threads would oversubscribe
    _PROCESS = (_Worker(config), adapter, table)


def _shard_job(args: tuple) -> dict[str, int]:
    out, shard, rows = args
    assert _PROCESS is not None, "worker process not initialised"
    worker, adapter, table = _PROCESS
    return worker.run_shard(adapter, table, out, shard, rows)


@dataclass(frozen=True)
class _ShardBuffers:
    """One shard's outputs, filled batch by batch (M = rows of the shard).

    Attributes:
        rows: (M,) int64 label-table rows of the shard.
        crops: (M, S, S, 3) uint8 aligned crops.
        index: per-row arrays written to ``index.npz`` (status, score, box, kp5, kp5_crop, matrix,
            optionally landmarks and mesh_presence).
        dense: (N, L, 2) corpus-provided landmarks of the whole table, or None.
        mesh: (M, 468, 2) float16 FaceMesh points in crop pixels, or None.
        table_boxes: (N, 4) corpus-provided face boxes of the whole table, or None.
    """

    rows: np.ndarray
    crops: np.ndarray
    index: dict[str, np.ndarray]
    dense: np.ndarray | None
    mesh: np.ndarray | None
    table_boxes: np.ndarray | None


class _Worker:
    """Detectors of one process (loaded on first use) and the per-shard work."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self._detectors: dict[str, object] = {}

    def detector(self, name: str):
        if name not in self._detectors:
            from facebehavior.face.detect import create_detector

            kwargs: dict[str, object] = {"device": self.config.device}
            if self.config.score_threshold is not None:
                kwargs["score_threshold"] = self.config.score_threshold
            self._detectors[name] = create_detector(name, **kwargs)
        return self._detectors[name]

    def run_shard(
        self, adapter, table: LabelTable, out: Path, shard: int, rows: np.ndarray
    ) -> dict[str, int]:
        cfg = self.config
        m, s = len(rows), cfg.size
        crops = np.zeros((m, s, s, 3), np.uint8)
        index: dict[str, np.ndarray] = {
            "row": rows.astype(np.int64),
            "status": np.full(m, STATUS_NO_FACE, np.int8),
            "score": np.zeros(m, np.float32),
            "box": np.zeros((m, 4), np.float32),
            "kp5": np.zeros((m, 5, 2), np.float32),
            "kp5_crop": np.zeros((m, 5, 2), np.float32),
            "matrix": np.zeros((m, 2, 3), np.float32),
        }
        dense = _corpus_landmarks(table)
        if dense is not None:
            index["landmarks"] = np.full((m, dense.shape[1], 2), np.nan, np.float32)
        boxes = np.asarray(table.extra["face_box"], np.float32) if "face_box" in table.extra else None
        mesh = None
        if cfg.facemesh and cfg.detect:
            index["mesh_presence"] = np.zeros(m, np.float32)
            mesh = np.full((m, 468, 2), np.nan, np.float16)
        buf = _ShardBuffers(rows, crops, index, dense, mesh, boxes)
        for start in range(0, m, cfg.batch_size):
            pos = np.arange(start, min(start + cfg.batch_size, m))
            images = _read(adapter, table, rows[pos])
            for group in _same_shape(images):
                ok = [i for i in group if images[i] is not None]
                if not ok:
                    for i in group:
                        index["status"][pos[i]] = STATUS_UNREADABLE
                    continue
                batch = np.stack([images[i] for i in ok])
                if cfg.detect:
                    self._detect_align(batch, pos[ok], buf)
                else:
                    self._resize(batch, pos[ok], buf)
        np.save(_shard_path(out, shard, "crops.npy"), crops)
        if mesh is not None:
            np.save(_shard_path(out, shard, "mesh.npy"), mesh)
        tmp = _shard_path(out, shard, "index.tmp.npz")
        np.savez(tmp, **index)
        os.replace(tmp, _shard_path(out, shard, "index.npz"))
        _shard_path(out, shard, "done").write_text(json.dumps({"rows": m}))
        return {name: int((index["status"] == code).sum()) for code, name in STATUS_NAMES.items()}

    def _resize(self, batch: np.ndarray, pos: np.ndarray, buf: _ShardBuffers) -> None:
        """Store whole images resized to the crop size (the corpus' own crops, trusted)."""
        import torch

        from facebehavior.face.align import transform_points

        s = self.config.size
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        x = torch.nn.functional.interpolate(
            x, size=(s, s), mode="bilinear", antialias=True, align_corners=False
        )
        buf.crops[pos] = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        index, dense, rows = buf.index, buf.dense, buf.rows
        h, w = batch.shape[1:3]
        # Pixel-centre convention: frame pixel centre (x + 0.5) * s / w maps to crop (u + 0.5).
        mat = np.array([[s / w, 0, 0.5 * s / w - 0.5], [0, s / h, 0.5 * s / h - 0.5]], np.float32)
        index["status"][pos] = STATUS_OK
        index["score"][pos] = np.nan
        index["box"][pos] = (0, 0, w, h)
        index["kp5"][pos] = np.nan
        index["kp5_crop"][pos] = np.nan
        index["matrix"][pos] = mat
        if dense is not None:
            index["landmarks"][pos] = transform_points(dense[rows[pos]], np.repeat(mat[None], len(pos), 0))

    def landmarker(self):
        if "facemesh" not in self._detectors:
            from facebehavior.face.landmarks.facemesh import FaceMeshLandmarker

            self._detectors["facemesh"] = FaceMeshLandmarker(device=self.config.device)
        return self._detectors["facemesh"]

    def _detect_align(self, batch: np.ndarray, pos: np.ndarray, buf: _ShardBuffers) -> None:
        """Detect, choose, (FaceMesh-refine) and align one face per image into ``buf`` at ``pos``."""
        from facebehavior.face.align import align_faces, transform_points
        from facebehavior.types import Detections

        cfg = self.config
        index, dense, rows = buf.index, buf.dense, buf.rows
        boxes = buf.table_boxes[rows[pos]] if buf.table_boxes is not None else None
        best = _choose(self.detector(cfg.detector)(batch), len(batch), boxes)
        if cfg.fallback:
            missing = [i for i in range(len(batch)) if best[i] is None]
            if missing:
                sub = boxes[missing] if boxes is not None else None
                again = _choose(self.detector(cfg.fallback)(batch[missing]), len(missing), sub)
                for j, i in enumerate(missing):
                    best[i] = again[j]
        found = [i for i in range(len(batch)) if best[i] is not None]
        if not found:
            return
        det = Detections(
            frame_index=np.asarray(found, np.int64),
            boxes=np.stack([best[i][0] for i in found]),
            scores=np.asarray([best[i][1] for i in found], np.float32),
            keypoints=np.stack([best[i][2] for i in found]),
        )
        p = pos[found]
        points = None
        if cfg.facemesh:
            from facebehavior.face.landmarks.facemesh import keypoints5

            marks = self.landmarker()(batch, det)
            points = np.asarray(marks.points, np.float32)[..., :2]
            presence = np.asarray(marks.presence, np.float32)
            index["mesh_presence"][p] = presence
            use = presence >= cfg.min_presence
            if use.any():
                kp = det.keypoints.copy()
                kp[use] = keypoints5(points[use])
                det = Detections(det.frame_index, det.boxes, det.scores, kp)
        aligned = align_faces(batch, det, size=cfg.size, template=cfg.template, margin=cfg.margin)
        buf.crops[p] = aligned.crops
        index["status"][p] = STATUS_OK
        index["score"][p] = det.scores
        index["box"][p] = det.boxes
        index["kp5"][p] = det.keypoints
        index["kp5_crop"][p] = transform_points(det.keypoints, aligned.matrices)
        index["matrix"][p] = aligned.matrices
        if dense is not None:
            index["landmarks"][p] = transform_points(dense[rows[p]], aligned.matrices)
        if points is not None:
            buf.mesh[p] = transform_points(points, aligned.matrices).astype(np.float16)


def _corpus_landmarks(table: LabelTable) -> np.ndarray | None:
    """(N, P, 2) frame-pixel landmarks shipped with the corpus (e.g. AFEW-VA's 68), if any."""
    for key in ("landmarks68",):
        if key in table.extra:
            return np.asarray(table.extra[key], np.float32)
    return None


def _read(adapter, table: LabelTable, rows: np.ndarray) -> list[np.ndarray | None]:
    """Pixels of ``rows`` as (H, W, 3) uint8; ``None`` for rows that cannot be read."""
    try:
        images = list(adapter.read_images(table, rows))
    except Exception:  # noqa: BLE001 — one bad file must not hide the good ones: retry one by one
        images = []
        failed: dict[str, tuple[int, str]] = {}  # file → (rows, first reason): one line per file
        for r in rows:
            try:
                images.append(adapter.read_images(table, [r])[0])
            except Exception as e:  # noqa: BLE001 — recorded as STATUS_UNREADABLE with the reason logged
                n, reason = failed.get(str(table.image[r]), (0, str(e)))
                failed[str(table.image[r])] = (n + 1, reason)
                images.append(None)
        for file, (n, reason) in failed.items():
            logger.warning("cache: %s unreadable (%d row%s): %s", file, n, "s" if n > 1 else "", reason)
    out: list[np.ndarray | None] = []
    for im in images:
        if im is None:
            out.append(None)
            continue
        im = np.asarray(im)
        if im.ndim == 2:
            im = im[..., None]
        if im.shape[-1] == 1:  # grayscale corpora (FER2013): the detectors take RGB
            im = np.repeat(im, 3, axis=-1)
        out.append(np.ascontiguousarray(im[..., :3], dtype=np.uint8))
    return out


def _same_shape(images: Sequence[np.ndarray | None]) -> Iterator[list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, im in enumerate(images):
        groups.setdefault(None if im is None else im.shape, []).append(i)
    yield from groups.values()


MIN_BOX_IOU = 0.3


def _choose(
    det, n: int, boxes: np.ndarray | None = None
) -> list[tuple[np.ndarray, float, np.ndarray] | None]:
    """Per frame, the (box, score, keypoints) of the labelled face, or None.

    Without annotated boxes the labelled face is the largest one (the annotated person fills
    the frame in every corpus labelled per image or per frame). With them (AffectNet's
    ``extra["face_box"]``, (n, 4) x1, y1, x2, y2) it is the detection overlapping the annotated
    box most, and none when no detection reaches IoU ``MIN_BOX_IOU``: a bystander's face must not
    inherit the label.
    """
    best: list[tuple[np.ndarray, float, np.ndarray] | None] = [None] * n
    key = np.full(n, -np.inf)
    for k in range(len(det)):
        f = int(det.frame_index[k])
        b = det.boxes[k].astype(np.float64)
        if boxes is None:
            value = (b[2] - b[0]) * (b[3] - b[1])
        else:
            value = float(box_iou(b[None], boxes[f][None])[0, 0])
            if value < MIN_BOX_IOU:
                continue
        if value > key[f]:
            best[f] = (
                det.boxes[k].astype(np.float32),
                float(det.scores[k]),
                det.keypoints[k].astype(np.float32),
            )
            key[f] = value
    return best


def _torch_dataset_base() -> type:
    try:
        from torch.utils.data import Dataset

        return Dataset
    except ImportError:  # pragma: no cover — torch is a dependency; keep the reader usable without it
        return object


class FaceCache(_torch_dataset_base()):  # type: ignore[misc]
    """Reader of a cache written by ``build_cache``: a torch ``Dataset`` over found faces.

    Crops stay memory-mapped (``np.load(mmap_mode="r")``), so opening a million-frame cache costs
    only its index. Item ``i`` is the ``i``-th row of ``self.table`` (the rows with a face).

    Args:
        folder: the split's cache folder.
        transform: optional callable applied to each item dict before it is returned.

    Attributes:
        table: LabelTable of the rows with a face (what training iterates over).
        crop_size: side of the crops in pixels.
        full_table: the complete LabelTable of the split.
        status: (N,) int8 status of every row of ``full_table``.
        aligned_keypoints: (F, 5, 2) float32 keypoints of ``table``'s rows in crop pixels.
    """

    def __init__(self, folder: str | Path, *, transform=None) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"{self.folder} is not a face cache (no meta.json); run `facebehavior prepare`"
            )
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("version") != CACHE_VERSION:
            raise CacheMismatchError(
                f"{self.folder}: cache version {self.meta.get('version')} != {CACHE_VERSION}"
            )
        self.full_table = load_table(self.folder / "labels.npz")
        n = len(self.full_table)
        shards = _shard_rows(n, int(self.meta["shard_size"]))
        incomplete = [s for s in range(len(shards)) if not _shard_path(self.folder, s, "done").is_file()]
        if incomplete:
            raise CacheMismatchError(
                f"{self.folder}: shards {incomplete[:5]} of {len(shards)} are incomplete; rerun "
                "`facebehavior prepare` with the same arguments to finish them"
            )
        self._num_shards = len(shards)
        self._open_arrays()
        parts: dict[str, list[np.ndarray]] = {}
        for s in range(len(shards)):
            with np.load(_shard_path(self.folder, s, "index.npz")) as z:
                for k in z.files:
                    parts.setdefault(k, []).append(z[k])
        index = {k: np.concatenate(v) for k, v in parts.items()}
        if not np.array_equal(index["row"], np.arange(n)):
            raise CacheMismatchError(f"{self.folder}: shard index rows do not cover the table 0..{n - 1}")
        self.index = index
        self.status = index["status"]
        self.found = np.flatnonzero(self.status == STATUS_OK)
        self.table = self.full_table.subset(self.found)
        self.aligned_keypoints = index["kp5_crop"][self.found]
        self.shard_size = int(self.meta["shard_size"])
        self.crop_size = int(self.meta["config"]["size"])
        self.transform = transform

    def _open_arrays(self) -> None:
        """Memory-map the crop (and mesh) shards."""
        shards = range(self._num_shards)
        self._crops = [np.load(_shard_path(self.folder, s, "crops.npy"), mmap_mode="r") for s in shards]
        self._flow = None
        if (self.folder / "flow.json").is_file():
            self._flow = np.load(self.folder / "flow.npy", mmap_mode="r")
        self._mesh = None
        if _shard_path(self.folder, 0, "mesh.npy").is_file():
            self._mesh = [np.load(_shard_path(self.folder, s, "mesh.npy"), mmap_mode="r") for s in shards]

    def __getstate__(self) -> dict:
        # Pickling a memory map copies its data: DataLoader workers started by spawn would each
        # receive every crop. They get the paths and map the shards themselves instead.
        state = dict(self.__dict__)
        state.pop("_crops", None)
        state.pop("_mesh", None)
        state.pop("_flow", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open_arrays()

    def __len__(self) -> int:
        return len(self.found)

    def crop(self, i: int) -> np.ndarray:
        """(S, S, 3) uint8 crop of item ``i`` (a row of ``self.table``)."""
        r = int(self.found[i])
        return np.array(self._crops[r // self.shard_size][r % self.shard_size])  # a writable copy

    def mesh(self, i: int) -> np.ndarray | None:
        """(468, 2) float32 FaceMesh points of item ``i`` in crop pixels (``None`` if not cached)."""
        if self._mesh is None:
            return None
        r = int(self.found[i])
        return np.asarray(self._mesh[r // self.shard_size][r % self.shard_size], np.float32)

    def flow_images(self, table: LabelTable, index: Iterable[int]) -> np.ndarray:
        """(n, S, S, 3) uint8 flow images (``build_flow``) of rows ``index`` of ``self.table``.

        Raises:
            ValueError: the cache holds no flow images (the message says how to add them).
        """
        if self._flow is None:
            raise ValueError(
                f"{self.folder} holds no optical-flow images; add them with `facebehavior prepare` and "
                "--flow dis (same arguments as before: only the flow is computed)"
            )
        return np.stack([np.asarray(self._flow[int(self.found[int(i)])]) for i in index])

    def landmarks68(self, table: LabelTable, index: Iterable[int]) -> np.ndarray:
        """(n, 68, 2) float32 iBUG 68-point landmarks in crop pixels of rows ``index`` of ``self.table``,
        taken from the cached FaceMesh points (``face.landmarks.indices.landmarks68``).

        Raises:
            ValueError: the cache was built without FaceMesh, or a requested face has no mesh.
        """
        from facebehavior.face.landmarks.indices import landmarks68

        if self._mesh is None:
            raise ValueError(
                f"{self.folder} holds no FaceMesh points, so no 68 landmarks; rebuild it with FaceMesh "
                "(`facebehavior prepare` without --no-facemesh / --no-detect)"
            )
        mesh = np.stack([self.mesh(int(i)) for i in index])
        if not np.isfinite(mesh).all():
            raise ValueError(f"{self.folder}: some faces have no FaceMesh points; rebuild the cache")
        return landmarks68(mesh).astype(np.float32)

    def read_images(self, table: LabelTable, index: Iterable[int]) -> list[np.ndarray]:
        """Crops of rows ``index`` of ``table`` (which must be ``self.table``): the adapter protocol."""
        if table is not self.table and len(table) != len(self.table):
            raise ValueError("FaceCache.read_images serves rows of FaceCache.table only")
        return [self.crop(int(i)) for i in index]

    def image_array(self, table: LabelTable) -> None:
        """Crops stay on disk (memory-mapped); use ``read_images``."""
        return None

    def __getitem__(self, i: int) -> dict[str, object]:
        """Item ``i``: ``image`` (S, S, 3) uint8 and the row's labels and masks as numpy values."""
        t = self.table
        item: dict[str, object] = {
            "image": self.crop(i),
            "row": int(self.found[i]),
            "expression": int(t.expression[i]),
            "expression_mask": bool(t.expression_mask[i]),
            "au": t.au_occurrence[i],
            "au_mask": t.au_mask[i],
            "va": t.va[i],
            "va_mask": bool(t.va_mask[i]),
            "keypoints": self.aligned_keypoints[i],
        }
        if t.au_intensity is not None and t.au_intensity_mask is not None:
            item["au_intensity"] = t.au_intensity[i]
            item["au_intensity_mask"] = t.au_intensity_mask[i]
        if t.expression_dist is not None:
            item["expression_dist"] = t.expression_dist[i]
        for k, v in t.extra.items():
            item[f"extra.{k}"] = v[i]
        if "landmarks" in self.index:
            item["landmarks"] = self.index["landmarks"][self.found[i]]
        if self._mesh is not None:
            item["mesh"] = self.mesh(i)
        return self.transform(item) if self.transform is not None else item

    def missing(self) -> LabelTable:
        """Rows without a usable face (no face found or unreadable), for reporting."""
        return self.full_table.subset(np.flatnonzero(self.status != STATUS_OK))

    def summary(self) -> dict[str, int]:
        """Row counts per status."""
        return {name: int((self.status == code).sum()) for code, name in STATUS_NAMES.items()}

    def with_transform(self, transform) -> FaceCache:
        """A shallow copy with another per-item transform."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other.transform = transform
        return other


def build_flow(
    folder: str | Path, *, method: str = "dis", overwrite: bool = False, **encoding: float
) -> dict[str, int]:
    """Add AUNets' optical-flow image of every face to a built cache (``flow.npy``, ``flow.json``).

    Flow runs between consecutive aligned crops of each video (rows of one ``video`` with a face,
    in ``frame`` order: a frame without a face is skipped, so its neighbours are paired); the
    pairing and encoding are ``temporal.flow.track_flow_images``'s. Rows without a face, and still
    images (no ``video``), get the still field (128, 128, 0).

    Args:
        folder: a cache written by ``build_cache`` (all shards complete).
        method: ``"dis"`` or ``"tvl1"`` (``temporal.flow``).
        overwrite: recompute even when ``flow.json`` says the same settings were used.
        **encoding: ``flow_to_image`` settings (``clip``, ``min_rms``, ``max_magnitude``).

    Returns:
        ``{"tracks": videos processed, "rows": faces with flow}`` (both 0 when already built).
    """
    from facebehavior.temporal.flow import STILL, track_flow_images

    cache = FaceCache(folder)
    out = Path(folder)
    meta = {"method": method, "encoding": encoding, "table": cache.meta["table"]}
    meta_path = out / "flow.json"
    if meta_path.is_file() and not overwrite and json.loads(meta_path.read_text()) == meta:
        return {"tracks": 0, "rows": 0}
    meta_path.unlink(missing_ok=True)  # flow.json last: its presence means flow.npy is complete
    s = int(cache.meta["config"]["size"])
    tmp = out / "flow.tmp.npy"
    flow = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(cache.full_table), s, s, 3))
    flow[:] = np.array(STILL, np.uint8)
    t = cache.table
    videos = t.video.astype(str)
    tracks = 0
    for video in np.unique(videos[videos != ""]):
        items = np.flatnonzero(videos == video)
        items = items[np.argsort(t.frame[items], kind="stable")]
        for start in range(0, len(items), 512):  # chunks bound the memory of long videos
            first = max(start - 1, 0)  # one frame of overlap: the chunk's first pair is continuous
            crops = np.stack([cache.crop(int(i)) for i in items[first : start + 512]])
            images = track_flow_images(crops, method=method, **encoding)
            flow[cache.found[items[start : start + 512]]] = images[start - first :]
        tracks += 1
    flow.flush()
    del flow
    os.replace(tmp, out / "flow.npy")
    meta_path.write_text(json.dumps(meta, indent=1))
    logger.info("cache %s: %s flow images of %d faces in %d videos", out, method, len(cache), tracks)
    return {"tracks": tracks, "rows": int((videos != "").sum())}
