"""Streaming result writers (CSV, Parquet, JSON Lines) that survive interruption and resume.

How a run is made restartable:

* Results arrive in *chunks* (one batch of frames of one source). Each chunk is appended to the
  output, flushed and ``fsync``-ed, and only then *committed*: one line is appended to the
  progress journal ``OUT.progress.jsonl`` saying which source, up to which frame, whether the
  source is finished, and how far the data file reached (rows; bytes for text formats).
* A chunk is therefore either fully written or not written: on ``--resume`` the data file is cut
  back to the last committed size (a chunk half-written when the process was killed is dropped
  and redone), sources marked done are skipped, and an unfinished video restarts right after
  its last committed frame.
* CSV and JSON Lines are appended in place. Parquet cannot be appended to, and a Parquet file
  without its footer is unreadable, so chunks first go to an Arrow IPC stream
  ``OUT.journal.arrows`` (readable up to the last complete record batch) and are rewritten as
  ``OUT`` — one row group per chunk — when the writer is closed, including on Ctrl-C.
* Every file that is *replaced* rather than appended to (the Parquet output, the Arrow journal a
  resume rebuilds, the progress journal a resume rewrites, the tracker state) is written to a
  temporary name, ``fsync``-ed and renamed over the old one: a kill at any moment leaves either
  the old complete file or the new complete file, never a partial one.
* Without ``resume`` an existing output is replaced, but only when the new run commits its first
  chunk: a run that fails before (no usable input, a bad option, Ctrl-C during start-up) leaves
  the earlier results as they were.
* A failed write (a full disk) is rolled back to the last committed chunk, so the file never
  holds a torn row and the rows the caller counted are the rows on disk.

Frames in which no face was found add no rows; they are still committed in the journal (the
``frames`` and ``no_face`` counts), so a resumed run does not analyse them again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from facebehavior.io import InputError

__all__ = ["SourceProgress", "ResultWriter", "open_writer", "check_output", "WRITER_FORMATS", "read_results"]

logger = logging.getLogger(__name__)

WRITER_FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class SourceProgress:
    """How far a source got in a previous (possibly interrupted) run.

    Attributes:
        last_frame: index of the last committed frame (-1: nothing yet).
        done: the source was analysed to its end.
        frames: number of frames analysed so far.
        no_face: how many of those frames held no face.
    """

    last_frame: int = -1
    done: bool = False
    frames: int = 0
    no_face: int = 0


class ResultWriter:
    """Append-only writer of result chunks with a commit journal; see the module docstring.

    Use ``open_writer`` to pick the format from the file extension.
    """

    fmt: str = ""

    def __init__(self, path: str | Path, *, resume: bool = False, meta: dict | None = None) -> None:
        """Args:
        path: output file.
        resume: keep what an earlier run committed to ``path`` and report it in ``progress``;
            without it an existing output (and its journals) is replaced when the first chunk is
            committed (until then it is left untouched).
        meta: JSON-serialisable run settings that must not change on resume (e.g. ``{"every": 2}``);
            recorded with every commit and read back as ``previous_meta``.

        Raises:
            InputError: the output cannot be created where it is asked for, or (``resume``) the
                existing output is not one these writers made.
        """
        self.path = Path(path)
        self.progress_path = self.path.with_name(self.path.name + ".progress.jsonl")
        self.state_path = self.path.with_name(self.path.name + ".state.json")
        self.meta = dict(meta or {})
        self.previous_meta: dict = {}
        self._states: list[dict] = []
        self.progress: dict[str, SourceProgress] = {}
        self.rows = 0
        self._columns: list[str] | None = None
        self._closed = False
        self._journal = None
        self._committed_bytes = 0
        _check_output_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._replace_pending = not resume
        if resume:
            self._resume()

    # --- format hooks -------------------------------------------------------------------
    def _side_files(self) -> tuple[Path, ...]:
        return ()

    def _append(self, df) -> int:
        """Append rows durably; return the data file's committed size marker (bytes or 0)."""
        raise NotImplementedError

    def _restore(self, rows: int, size: int | None) -> None:
        """Cut the existing output back to ``rows`` rows / ``size`` bytes."""
        raise NotImplementedError

    def _existing_keys(self):
        """(source, frame) columns of an existing output without a journal, as a DataFrame."""
        raise NotImplementedError

    def _finish(self) -> None:
        pass

    # --- public API ------------------------------------------------------------------------
    def write(
        self,
        df,
        *,
        source: str,
        last_frame: int,
        done: bool,
        frames: int = 0,
        no_face: int = 0,
        state: dict | None = None,
    ) -> None:
        """Append one chunk and commit it.

        Args:
            df: the chunk's rows (may be empty); every chunk must have the same columns.
            source: the source the chunk belongs to.
            last_frame: index of the last frame the chunk covers.
            done: this chunk ends the source.
            frames: frames analysed in the chunk.
            no_face: frames of the chunk in which no face was found.
            state: JSON-serialisable per-source state to restore on resume (the face tracker);
                kept in ``OUT.state.json`` for the source's latest chunks only.
        """
        if self._closed:
            raise RuntimeError(f"{self.path}: writer is closed")
        cols = [str(c) for c in df.columns]
        if self._columns is not None and cols != self._columns:
            raise ValueError(
                f"{self.path}: chunk columns {cols[:6]}… differ from the file's {self._columns[:6]}…"
            )
        if self._replace_pending:
            # The new run has a chunk to commit: only now may it replace an earlier output.
            for p in (self.path, self.progress_path, self.state_path, *self._side_files()):
                p.unlink(missing_ok=True)
            self._replace_pending = False
        if self._journal is None:
            # Unbuffered: a failed commit leaves nothing behind in a buffer that close() could flush later.
            self._journal = open(self.progress_path, "ab", buffering=0)  # noqa: SIM115 (closed in close())
        self._columns = cols
        try:
            self._commit(df, source, last_frame, done, frames, no_face, state)
        except BaseException:
            # Full disk, or Ctrl-C between data and journal: undo the uncommitted tail so the
            # files hold exactly the committed chunks (what the caller has counted).
            self._rollback()
            raise

    def _commit(
        self,
        df,
        source: str,
        last_frame: int,
        done: bool,
        frames: int,
        no_face: int,
        state: dict | None,
    ) -> None:
        grow = len(df) or self.fmt == "parquet" or not self.path.exists()
        size = self._append(df) if grow else self._size()
        if state is not None:
            self._save_state(source, int(last_frame), state)
        prev = self.progress.get(source, SourceProgress())
        entry = SourceProgress(
            last_frame=max(int(last_frame), prev.last_frame),
            done=bool(done),
            frames=prev.frames + int(frames),
            no_face=prev.no_face + int(no_face),
        )
        line = {
            "source": source,
            "last_frame": entry.last_frame,
            "done": entry.done,
            "frames": entry.frames,
            "no_face": entry.no_face,
            "rows": self.rows + len(df),
            "bytes": size,
        }
        if self.meta:
            line["meta"] = self.meta
        data = (json.dumps(line) + "\n").encode("utf-8")
        if self._journal.write(data) != len(data):
            raise OSError(28, "short write to the progress journal (disk full?)")
        os.fsync(self._journal.fileno())
        # Committed: only now does the chunk count.
        self.progress[source] = entry
        self.rows += len(df)
        self._committed_bytes = size

    def _rollback(self) -> None:
        """Cut the data file and the journal back to the last commit (best effort: the disk may be full,
        but truncating needs no space)."""
        if self._journal is not None:
            with contextlib.suppress(OSError):
                os.truncate(self.progress_path, _journal_size(self.progress_path))
        self._rollback_data()

    def _rollback_data(self) -> None:
        pass

    @property
    def columns(self) -> list[str] | None:
        """Columns of the rows already in the output (``None`` before the first chunk)."""
        return self._columns

    def _save_state(self, source: str, last_frame: int, state: dict) -> None:
        # The two latest snapshots are kept: if the process dies between this write and the
        # journal commit, the previous snapshot still matches the last committed chunk.
        self._states = [x for x in self._states if x["source"] == source][-1:]
        self._states.append({"source": source, "last_frame": last_frame, "state": state})
        _atomic_write(self.state_path, json.dumps(self._states).encode("utf-8"))

    def resume_state(self, source: str) -> dict | None:
        """The state saved with ``source``'s last committed chunk, if any (see ``write``)."""
        prog = self.progress.get(source)
        if prog is None:
            return None
        for x in self._states:
            if x["source"] == source and x["last_frame"] == prog.last_frame:
                return x["state"]
        return None

    def close(self) -> None:
        """Finish the output (Parquet: write the file from its journal). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._journal is not None:
            self._journal.close()
        if not self._replace_pending:
            self._finish()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- resume --------------------------------------------------------------------------
    def _size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def _resume(self) -> None:
        if self.state_path.exists():
            try:
                self._states = json.loads(self.state_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self._states = []
        lines = _read_journal(self.progress_path)
        if lines:
            last = lines[-1]
            self.previous_meta = next((dict(ln["meta"]) for ln in reversed(lines) if "meta" in ln), {})
            self.rows = int(last["rows"])
            for ln in lines:
                if not ln["source"]:
                    continue  # the marker of a resume without journal
                self.progress[ln["source"]] = SourceProgress(
                    int(ln["last_frame"]),
                    bool(ln["done"]),
                    int(ln.get("frames", 0)),
                    int(ln.get("no_face", 0)),
                )
            self._restore(self.rows, last.get("bytes"))
            self._committed_bytes = int(last.get("bytes") or 0)
            # Rewrite the journal without a torn last line, so later appends stay parseable.
            _atomic_write(self.progress_path, "".join(json.dumps(ln) + "\n" for ln in lines).encode("utf-8"))
            logger.info(
                "%s: resuming after %d committed rows (%d sources done)",
                self.path,
                self.rows,
                sum(p.done for p in self.progress.values()),
            )
        elif self.path.exists() or any(p.exists() for p in self._side_files()):
            # An output without its journal (copied, or written by an older version): trust the
            # rows, treating each video as finished up to its last frame with a face and each
            # still image with a row as done (its one frame is in the file).
            from facebehavior.io.sources import classify

            try:
                keys = self._existing_keys()
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise InputError(
                    self.path,
                    f"not a facebehavior results file ({type(e).__name__}: {str(e)[:80]}); --resume "
                    "only continues an output this tool wrote: choose another -o, or drop --resume to "
                    "replace it",
                ) from None
            self.rows = len(keys)
            self._restore(self.rows, None)
            if len(keys):
                for src, last in keys.groupby("source")["frame"].max().items():
                    self.progress[str(src)] = SourceProgress(int(last), classify(str(src)) == "image")
            self._committed_bytes = self._size() if self.fmt != "parquet" else 0
            marker = {"source": "", "last_frame": -1, "done": False, "rows": self.rows}
            marker["bytes"] = self._committed_bytes
            _atomic_write(self.progress_path, (json.dumps(marker) + "\n").encode("utf-8"))
            logger.warning(
                "%s: no progress journal; resuming each video after its last frame with a face (the "
                "sampling --every of the first run cannot be checked)",
                self.path,
            )


class _TextWriter(ResultWriter):
    """Shared logic of the line-based formats."""

    def _append(self, df) -> int:
        # A chunk without rows still creates the file (CSV: its header line), so a run in which
        # no face was found leaves a readable, empty table rather than no file.
        data = self._encode(df, header=self._size() == 0)
        # One write of the whole chunk, then flush+fsync: the chunk is on disk before it is committed.
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            return f.tell()

    def _rollback_data(self) -> None:
        try:
            if self.path.exists() and self._size() > self._committed_bytes:
                os.truncate(self.path, self._committed_bytes)
        except OSError as e:
            logger.warning("%s: could not cut back an uncommitted chunk (%s)", self.path, e)

    def _restore(self, rows: int, size: int | None) -> None:
        if not self.path.exists():
            if rows:
                raise InputError(
                    self.path,
                    f"journal lists {rows} rows but the output file is missing; "
                    "delete the .progress.jsonl file or run without --resume",
                )
            return
        if size is None:
            # No journal: drop a torn last line, if any.
            with open(self.path, "rb") as f:
                data = f.read()
            size = data.rfind(b"\n") + 1
        if self._size() < size:
            raise InputError(
                self.path,
                "output is shorter than its progress journal says; it was modified "
                "after the run — run without --resume",
            )
        with open(self.path, "r+b") as f:
            f.truncate(size)
        if size:
            self._columns = self._header()

    def _header(self) -> list[str] | None:
        return None


class CSVWriter(_TextWriter):
    """Comma-separated values with a header line; floats at full precision."""

    fmt = "csv"

    def _encode(self, df, header: bool) -> bytes:
        return df.to_csv(index=False, header=header, lineterminator="\n").encode("utf-8")

    def _existing_keys(self):
        import pandas as pd

        if not self.path.exists() or self._size() == 0:
            return pd.DataFrame({"source": [], "frame": []})
        with open(self.path, "rb") as f:
            data = f.read()
        cut = data.rfind(b"\n") + 1
        import io

        try:
            return pd.read_csv(io.BytesIO(data[:cut]), usecols=["source", "frame"])
        except UnicodeDecodeError as e:  # a binary file
            raise ValueError("not UTF-8 text") from e

    def _header(self) -> list[str] | None:
        with open(self.path, encoding="utf-8") as f:
            return f.readline().rstrip("\n").split(",")


class JSONLWriter(_TextWriter):
    """One JSON object per row (NaN written as ``null``)."""

    fmt = "jsonl"

    def _encode(self, df, header: bool) -> bytes:
        if not len(df):
            return b""  # JSON Lines has no header: a run without faces is an empty file
        text = df.to_json(orient="records", lines=True, double_precision=10)
        # pandas escapes every "/" as "\/" (legal JSON, but paths become unreadable to people);
        # since every slash is escaped, undoing it cannot touch an escaped backslash.
        text = text.replace("\\/", "/")
        return (text if text.endswith("\n") else text + "\n").encode("utf-8")

    def _existing_keys(self):
        import pandas as pd

        rows = []
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):
                    d = json.loads(line)  # JSONDecodeError is a ValueError
                    rows.append((d["source"], d["frame"]))
        return pd.DataFrame(rows, columns=["source", "frame"])

    def _header(self) -> list[str] | None:
        with open(self.path, encoding="utf-8") as f:
            line = f.readline()
        return list(json.loads(line)) if line.strip() else None


class ParquetWriter(ResultWriter):
    """Parquet with one row group per chunk, built from an Arrow IPC journal at close."""

    fmt = "parquet"

    def __init__(self, path: str | Path, *, resume: bool = False, meta: dict | None = None) -> None:
        self.journal_path = Path(path).with_name(Path(path).name + ".journal.arrows")
        self._sink = None
        self._ipc = None
        self._schema = None
        self._empty_schema = None
        super().__init__(path, resume=resume, meta=meta)

    def _side_files(self) -> tuple[Path, ...]:
        return (self.journal_path,)

    def _open_ipc(self, schema, path: Path | None = None) -> None:
        import pyarrow as pa

        self._schema = schema
        self._sink = pa.OSFile(str(path or self.journal_path), "ab")
        self._ipc = pa.ipc.new_stream(self._sink, schema)

    def _append(self, df) -> int:
        import pyarrow as pa

        table = pa.Table.from_pandas(df, preserve_index=False)
        if self._ipc is None:
            if table.num_rows == 0:
                # An empty chunk cannot tell a text column from an all-null one: wait for rows.
                self._empty_schema = table.schema
                return 0
            self._open_ipc(table.schema)
        else:
            table = table.cast(self._schema)
        if table.num_rows:
            self._ipc.write_table(table)
            self._sink.flush()
            os.fsync(self._sink.fileno())
        return 0

    def _batches(self, journal: Path | None = None):
        """Complete record batches of a journal (default: ours) or of a finished output, in order."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        journal = journal or self.journal_path
        if journal.exists() and journal.stat().st_size:
            with pa.OSFile(str(journal), "rb") as f:
                try:
                    reader = pa.ipc.open_stream(f)
                except pa.ArrowInvalid:
                    return
                while True:
                    try:
                        yield reader.schema, reader.read_next_batch()
                    except (StopIteration, pa.ArrowInvalid, OSError):
                        return  # the end, or a batch torn by a kill: never committed
        elif self.path.exists():
            try:
                pf = pq.ParquetFile(str(self.path))
            except (pa.ArrowInvalid, OSError) as e:
                raise InputError(
                    self.path,
                    f"existing output is not a readable Parquet file ({e}); choose another -o, or drop "
                    "--resume to replace it",
                ) from None
            for i in range(pf.num_row_groups):
                for b in pf.read_row_group(i).to_batches():
                    yield pf.schema_arrow, b

    def _restore(self, rows: int, size: int | None) -> None:
        """Rebuild the journal with the ``rows`` committed rows, atomically.

        The kept batches are copied into ``OUT.journal.arrows.tmp``, which is ``fsync``-ed and only
        then renamed over the journal; the writer goes on appending to it (one Arrow stream). A
        kill during the copy leaves the complete old journal (or finished output) in place.
        """
        import pyarrow as pa

        old = self.journal_path.with_name(self.journal_path.name + ".old")
        if old.exists():
            # Left by an interrupted rebuild of an earlier version, which moved the journal here
            # first: this is the complete copy, the journal beside it a partial one.
            os.replace(old, self.journal_path)
        tmp = self.journal_path.with_name(self.journal_path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        kept = 0
        for schema, batch in self._batches():
            if kept >= rows:
                break
            if self._ipc is None:
                self._open_ipc(schema, tmp)
            batch = batch.slice(0, rows - kept)
            self._ipc.write_table(pa.Table.from_batches([batch], schema=schema))
            kept += batch.num_rows
        if kept < rows:
            if self._ipc is not None:
                self._ipc.close()
                self._sink.close()
                tmp.unlink(missing_ok=True)
            raise InputError(
                self.path,
                f"only {kept} of the {rows} committed rows could be read back; run without --resume",
            )
        if self._sink is not None:
            self._sink.flush()
            os.fsync(self._sink.fileno())
            os.replace(tmp, self.journal_path)  # the open sink now appends to the journal
            fsync_dir(self.journal_path.parent)
            self._columns = list(self._schema.names)
        else:
            self.journal_path.unlink(missing_ok=True)  # nothing committed
        # The finished output's rows now live in the journal; it is rewritten at close.
        self.path.unlink(missing_ok=True)

    def _existing_keys(self):
        import pyarrow as pa

        tables = [
            pa.Table.from_batches([b], schema=s).select(["source", "frame"]) for s, b in self._batches()
        ]
        if not tables:
            import pandas as pd

            return pd.DataFrame({"source": [], "frame": []})
        return pa.concat_tables(tables).to_pandas()

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._ipc is not None:
            self._ipc.close()
            self._sink.close()
        if not self.journal_path.exists():
            if self._empty_schema is not None and not self.path.exists():
                # No face anywhere: an empty table with the columns.
                atomic_write(self.path, lambda tmp: pq.write_table(self._empty_schema.empty_table(), tmp))
            return

        def build(tmp: str) -> None:
            # Only committed rows: a chunk whose commit failed may sit at the journal's end.
            left = self.rows
            with pa.OSFile(str(self.journal_path), "rb") as f:
                reader = pa.ipc.open_stream(f)
                with pq.ParquetWriter(tmp, reader.schema) as writer:
                    wrote = False
                    while left > 0:
                        try:
                            batch = reader.read_next_batch()
                        except (StopIteration, pa.ArrowInvalid, OSError):
                            break
                        batch = batch.slice(0, left)
                        writer.write_table(pa.Table.from_batches([batch]))  # one row group per chunk
                        left -= batch.num_rows
                        wrote = True
                    if not wrote:
                        writer.write_table(reader.schema.empty_table())

        # An empty journal (killed before its first batch) is unreadable: nothing to write then.
        with contextlib.suppress(pa.ArrowInvalid):
            atomic_write(self.path, build)
        self.journal_path.unlink()


def _check_output_path(path: Path) -> None:
    """Refuse an output whose folder cannot exist: a parent that is a file (``notes.txt/out.csv``)."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(
                    path,
                    f"cannot write the output: {parent} is a file, not a folder; choose another -o",
                )
            return


def _journal_size(path: Path) -> int:
    """Bytes of ``path`` up to its last complete line."""
    with open(path, "rb") as f:
        data = f.read()
    return data.rfind(b"\n") + 1


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data``: write a temporary file, fsync it, rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, build, tmp: Path | None = None) -> None:
    """``build(tmp_path)`` writes a file; it replaces ``path`` only once complete and synced.

    Args:
        path: the final file.
        build: called with the temporary path (a ``str``) to write.
        tmp: the temporary file (default: ``path`` + ``.tmp`` beside it).
    """
    tmp = tmp or path.with_name(path.name + ".tmp")
    try:
        build(str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def check_output(path: str | Path) -> str:
    """Check an output path without touching anything; returns its format.

    Raises:
        InputError: unknown extension (the message lists the supported ones), a path that is a
            folder, or one whose folder cannot be created (a parent that is a file).
    """
    ext = Path(path).suffix.lower()
    fmt = WRITER_FORMATS.get(ext)
    if fmt is None:
        hint = " (JSON output is JSON Lines: use .jsonl)" if ext == ".json" else ""
        raise InputError(
            path,
            f"unknown output format {ext or '(no extension)'!r}{hint}; use one of {sorted(WRITER_FORMATS)}",
        )
    if Path(path).is_dir():
        raise InputError(path, "cannot write the output: it is a folder; name a file such as out.csv")
    _check_output_path(Path(path))
    return fmt


def open_writer(path: str | Path, *, resume: bool = False, meta: dict | None = None) -> ResultWriter:
    """A writer for ``path``, chosen by its extension (.csv, .parquet/.pq, .jsonl/.ndjson).

    Args:
        path: the output file.
        resume: continue an earlier run's output (see ``ResultWriter``).
        meta: run settings recorded with each commit (see ``ResultWriter``).

    Raises:
        InputError: unknown extension (the message lists the supported ones), an output that
            cannot be created, or (``resume``) an existing output these writers did not make.
    """
    fmt = check_output(path)
    cls = {"csv": CSVWriter, "jsonl": JSONLWriter, "parquet": ParquetWriter}[fmt]
    return cls(path, resume=resume, meta=meta)


def read_results(path: str | Path):
    """Read a results file written by these writers into a DataFrame (format by extension)."""
    import pandas as pd

    fmt = WRITER_FORMATS.get(Path(path).suffix.lower())
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "jsonl":
        if os.path.getsize(path) == 0:
            return pd.DataFrame()  # a run in which no face was found
        return pd.read_json(path, lines=True)
    if fmt == "parquet":
        return pd.read_parquet(path)
    raise InputError(path, f"unknown results format; use one of {sorted(WRITER_FORMATS)}")


def write_results(df, path: str | Path) -> Path:
    """Write a whole results DataFrame at once (format by extension; no journal, replaces ``path``)."""
    path = Path(path)
    fmt = WRITER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(path, f"unknown results format; use one of {sorted(WRITER_FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_parquet(path, index=False)
    return path


def _read_journal(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn last line: its chunk was never committed
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out
