"""The partitioned Parquet dataset a distributed run writes, and the unit of work that fills it.

Layout of ``OUT_DIR``::

    _facebehavior.json                      the run's columns and settings, and the source order
    clip-3f2a9c01de-f000000000.parquet      a video segment: frames 0 … of clip.mp4
    clip-3f2a9c01de-f000001024.parquet      the next segment (starts after the last committed frame)
    images-8b1d0e77a2c4.parquet             a group of still images

Every part is one Parquet file written to a hidden temporary name (``.NAME.tmp-PID``), ``fsync``-ed
and renamed into place, so a part either exists complete or not at all; readers
(``pandas.read_parquet(OUT_DIR)``, ``pyarrow.dataset``) skip names starting with ``.`` or ``_``.
Each part carries its own bookkeeping in the Parquet footer (key ``facebehavior.part``): which
sources it holds, their first and last frame, whether a source ends there, and — for a video — the
source state after its last frame (face tracker, geometry baseline; ``Analyzer.snapshot``). The
files themselves are therefore the commit journal: a rerun reads the footers, skips sources marked
done, and continues an unfinished video right after its last committed frame *from the state
saved with it*, so face ids and baselines carry on exactly as in an uninterrupted run.

A video is cut into segments of ``segment_frames`` analysed frames, analysed in order by one task,
each segment starting from the state its predecessor committed (the tracker state is handed over,
not re-created): rows and face ids equal a local run's, and a worker killed mid-video loses at
most the segment it was writing. Parallelism comes from analysing different sources at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from facebehavior.io.writers import atomic_write, fsync_dir

__all__ = [
    "MANIFEST",
    "Job",
    "JobReport",
    "SourceCommit",
    "check_manifest",
    "committed",
    "read_dataset",
    "run_job",
]

logger = logging.getLogger(__name__)

MANIFEST = "_facebehavior.json"
FORMAT = "facebehavior-parts/1"
_META_KEY = b"facebehavior.part"
# Analysers of this worker process, by the run's token: a Ray worker process runs many tasks of one
# run, and loading the networks once per process instead of once per task saves ~1 s per task.
_ANALYZERS: dict[str, Any] = {}


@dataclass(frozen=True)
class Job:
    """One unit of work: a video (cut into committed segments), or a group of still images.

    Attributes:
        kind: ``"video"`` or ``"images"``.
        sources: the sources as the user named them (the rows' ``source`` column), in run order.
        paths: the same sources as paths a worker can open (absolute), aligned with ``sources``.
    """

    kind: Literal["video", "images"]
    sources: tuple[str, ...]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class SourceCommit:
    """A source's committed progress, read back from the parts' footers.

    Attributes:
        last_frame: index of the last committed frame (-1: none).
        done: the source was analysed to its end.
        state: source state saved with the last committed segment (videos), else ``None``.
        parts: number of part files holding the source.
    """

    last_frame: int = -1
    done: bool = False
    state: dict | None = None
    parts: int = 0


@dataclass
class JobReport:
    """What a job did.

    Attributes:
        parts: part files written.
        frames: frames analysed.
        rows: rows written (faces, and frames without one unless ``--faces-only``).
        done: sources finished by this job.
        errors: ``"path: reason"`` of each input that could not be read (rows analysed before
            a video broke off are committed).
    """

    parts: int = 0
    frames: int = 0
    rows: int = 0
    done: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------- naming
def _digest(text: str, n: int) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:n]


def video_prefix(source: str) -> str:
    """File-name prefix of a video's segments: readable stem + hash of the source name."""
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "_", Path(source).stem).strip("._") or "video"
    return f"{stem[:40]}-{_digest(source, 10)}-f"


def segment_name(source: str, first_frame: int) -> str:
    """The part file of ``source``'s segment that starts at ``first_frame``."""
    return f"{video_prefix(source)}{first_frame:09d}.parquet"


def images_name(sources: Iterable[str]) -> str:
    """The part file of a group of images (named by its members, so a rerun names it alike)."""
    return f"images-{_digest(chr(10).join(sources), 12)}.parquet"


# ---------------------------------------------------------------------------------- files
def write_part(path: Path, rows: Any, meta: dict) -> None:
    """Write ``rows`` with ``meta`` in the footer as ``path``, atomically (temp file, fsync, rename).

    Args:
        path: the part file.
        rows: pandas DataFrame (may be empty).
        meta: JSON-serialisable bookkeeping (``sources``, ``state``).
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(rows, preserve_index=False)
    # An empty frame's text columns have no values to type them: they are text in filled parts
    # (string or large_string, as this pandas converts text), and a dataset whose files disagree
    # on a column's type cannot be read as one table.
    text = pa.Table.from_pandas(pd.DataFrame({"t": ["x"]}), preserve_index=False).schema.field("t").type
    fields = [pa.field(f.name, text) if pa.types.is_null(f.type) else f for f in table.schema]
    table = table.cast(pa.schema(fields, metadata=table.schema.metadata))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta)})
    # A hidden temporary name per process: workers of one dataset never share one.
    atomic_write(path, lambda t: pq.write_table(table, t), path.with_name(f".{path.name}.tmp-{os.getpid()}"))


def part_meta(path: Path) -> dict | None:
    """The bookkeeping in a part's footer (``None``: not a part of this format, or unreadable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        logger.warning("%s: unreadable part file, ignored (delete it to redo its sources)", path)
        return None
    raw = meta.get(_META_KEY)
    return None if raw is None else json.loads(raw)


def _parts(out_dir: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(p for p in out_dir.glob(pattern) if not p.name.startswith((".", "_")))


def committed(
    out_dir: str | Path, sources: Iterable[str] | None = None, kind: str | None = None
) -> dict[str, SourceCommit]:
    """Committed progress per source, read from the part files' footers.

    Args:
        out_dir: the dataset folder.
        sources: only these sources (``None``: all).
        kind: ``"video"`` (one source: its parts are found by their file-name prefix) or
            ``"images"`` (only image-group parts are read); ``None`` reads every footer.

    Returns:
        Source name → ``SourceCommit`` (sources with no part are absent).
    """
    out_dir = Path(out_dir)
    wanted = None if sources is None else set(sources)
    if kind == "video" and wanted is not None and len(wanted) == 1:
        files = _parts(out_dir, f"{video_prefix(next(iter(wanted)))}*.parquet")
    elif kind == "images":
        files = _parts(out_dir, "images-*.parquet")
    else:
        files = _parts(out_dir)
    found: dict[str, SourceCommit] = {}
    for path in files:
        meta = part_meta(path)
        if meta is None:
            continue
        state = meta.get("state")
        for s in meta.get("sources", []):
            name = s["source"]
            if wanted is not None and name not in wanted:
                continue
            prev = found.get(name, SourceCommit())
            later = s["last_frame"] >= prev.last_frame
            found[name] = SourceCommit(
                last_frame=max(prev.last_frame, s["last_frame"]),
                done=prev.done or bool(s["done"]),
                state=state if later else prev.state,
                parts=prev.parts + 1,
            )
    return found


def check_manifest(out_dir: str | Path, columns: list[str], settings: dict, sources: list[str]) -> None:
    """Create ``OUT_DIR/_facebehavior.json``, or check that a rerun uses the same columns and settings.

    New sources are appended to its source order (``read_dataset`` sorts rows by it).

    Raises:
        ValueError: ``out_dir`` is a file, holds another run's columns or settings (``every``), or
            holds files that are not parts of a facebehavior dataset.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file; -o names a folder for the Parquet dataset")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"{path} is unreadable ({e}); write to a new folder") from None
        if old.get("columns") != columns:
            raise ValueError(
                f"{out_dir} holds other columns than these options produce ({len(old.get('columns') or [])} "
                f"vs {len(columns)}); rerun with the options of the first run (--model, --geometry, "
                "--column-style, --points) or write to a new folder"
            )
        for k, v in settings.items():
            if k in old.get("settings", {}) and old["settings"][k] != v:
                raise ValueError(
                    f"{out_dir} was written with {k}={old['settings'][k]!r}, not {v!r}; rerun with the "
                    "first run's value or write to a new folder"
                )
        order = list(old.get("sources", []))
        known = set(order)
        order += [s for s in sources if s not in known]
    else:
        stray = [p.name for p in _parts(out_dir) if part_meta(p) is None]
        if stray:
            raise ValueError(
                f"{out_dir} holds Parquet files that are not parts of a facebehavior dataset "
                f"({', '.join(stray[:3])}); choose an empty or new folder"
            )
        order = list(sources)
    manifest = {"format": FORMAT, "columns": columns, "settings": settings, "sources": order}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, path)
    fsync_dir(out_dir)


def remove_stale_temporaries(out_dir: str | Path) -> int:
    """Delete temporary part files left by killed workers; returns how many."""
    n = 0
    for p in Path(out_dir).glob(".*.tmp-*"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def read_dataset(out_dir: str | Path) -> Any:
    """Read a distributed run's dataset as one DataFrame, rows in the order a local run writes them.

    Sources come in the order of the run's inputs (``_facebehavior.json``), each source's rows in
    frame order — the same rows, values and order as ``facebehavior analyze … -o out.parquet``.

    Args:
        out_dir: the dataset folder.

    Returns:
        pandas DataFrame (no rows, the run's columns, when nothing was committed).

    Raises:
        FileNotFoundError: ``out_dir`` has no ``_facebehavior.json``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir} is not a facebehavior dataset (no {MANIFEST}); see docs/scale.md")
    manifest = json.loads(path.read_text())
    rank = {s: i for i, s in enumerate(manifest.get("sources", []))}
    keyed = []
    for p in _parts(out_dir):
        meta = part_meta(p)
        if meta is None or not meta.get("sources"):
            continue
        first = meta["sources"][0]
        keyed.append(((rank.get(first["source"], len(rank)), first["source"], first["first_frame"]), p))
    tables = [pq.read_table(p) for _, p in sorted(keyed)]
    tables = [t.replace_schema_metadata(None) for t in tables if t.num_rows]
    if not tables:
        from facebehavior.pipeline.rows import empty_frame

        return empty_frame(manifest["columns"])
    df = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    if "source" in df.columns:
        # Image groups hold sources from anywhere in the input order; a stable sort keeps frames in order.
        df = df.sort_values("source", key=lambda s: s.map(rank).fillna(len(rank)), kind="stable")
        df = df.reset_index(drop=True)
    return df[manifest["columns"]]


# ---------------------------------------------------------------------------------- the work
def _analyzer(token: str, kwargs: Mapping[str, Any]) -> Any:
    """This process's ``Analyzer`` for the run ``token`` (built once per worker process)."""
    from facebehavior.pipeline import Analyzer

    if token not in _ANALYZERS:
        _ANALYZERS.clear()  # another run's models: free them
        _ANALYZERS[token] = Analyzer(**kwargs)
    return _ANALYZERS[token]


def run_job(
    job: Job,
    out_dir: str,
    analyzer_kwargs: Mapping[str, Any],
    *,
    token: str,
    segment_frames: int = 1024,
    setup: Callable[[], Any] | None = None,
) -> JobReport:
    """Analyse one job and commit its parts to ``out_dir`` (what a worker runs; Ray-free).

    A video continues after its last committed frame, from the state saved with it, so a retried
    or rerun job redoes at most the segment that was being written when its worker died.

    Args:
        job: the sources to analyse.
        out_dir: the dataset folder (on a file system every worker sees).
        analyzer_kwargs: ``Analyzer`` keyword arguments.
        token: identifies the run (the worker process keeps one ``Analyzer`` per token).
        segment_frames: analysed frames per committed video segment (rounded up to whole batches).
        setup: called first (the CLI's process settings, e.g. ``_runtime.configure_allocator``).

    Returns:
        What was written.
    """
    from facebehavior.io.writers import SourceProgress

    if setup is not None:
        setup()
    out = Path(out_dir)
    analyzer = _analyzer(token, analyzer_kwargs)
    report = JobReport()
    names = dict(zip(job.paths, job.sources, strict=True))
    prior = committed(out, job.sources, job.kind)
    todo = [p for p in job.paths if not prior.get(names[p], SourceCommit()).done]
    if not todo:
        return report
    skip = {p: SourceProgress(last_frame=prior[names[p]].last_frame) for p in todo if names[p] in prior}

    def on_error(e: Any) -> None:
        report.errors.append(f"{names.get(e.path, e.path)}: {e.reason}")

    def commit(name: str, first: int, chunks: list, file: str, state: dict | None = None) -> None:
        import pandas as pd

        rows = pd.concat([c.rows for c in chunks], ignore_index=True)
        if "source" in rows.columns:
            rows["source"] = [names.get(s, s) for s in rows["source"]]
        entries, start = [], first
        for src in dict.fromkeys(c.source for c in chunks):  # sources in order
            mine = [c for c in chunks if c.source == src]
            entries.append({"source": names.get(src, src), "first_frame": start,
                            "last_frame": mine[-1].last_frame, "done": mine[-1].done,
                            "frames": sum(c.frames for c in mine),
                            "no_face": sum(c.no_face for c in mine)})  # fmt: skip
            start = 0
        write_part(out / file, rows, {"sources": entries, "state": state})
        report.parts += 1
        report.frames += sum(c.frames for c in chunks)
        report.rows += len(rows)
        report.done += [e["source"] for e in entries if e["done"]]

    if job.kind == "images":
        chunks = list(analyzer.iter_chunks(todo, on_error=on_error))
        if chunks:
            commit(chunks[0].source, 0, chunks, images_name(names[p] for p in todo))
        return report

    (path,) = todo
    name = names[path]
    first = prior[name].last_frame + 1 if name in prior else 0
    saved = prior[name].state if name in prior else None
    pending: list = []
    for chunk in analyzer.iter_chunks(
        [path], on_error=on_error, skip=skip, snapshots=True, resume_state=lambda _: saved
    ):
        pending.append(chunk)
        if chunk.done or sum(c.frames for c in pending) >= segment_frames:
            commit(name, first, pending, segment_name(name, first), chunk.state)
            first, pending = chunk.last_frame + 1, []
    if pending:  # the video broke off (a truncated file): keep what was analysed before, as a local run does
        commit(name, first, pending, segment_name(name, first), pending[-1].state)
    return report
