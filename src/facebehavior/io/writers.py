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

Frames in which no face was found add no rows; they are still committed in the journal (the
``frames`` and ``no_face`` counts), so a resumed run does not analyse them again.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from facebehavior.io import InputError

__all__ = ["SourceProgress", "ResultWriter", "open_writer", "WRITER_FORMATS", "read_results"]

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

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        """Args:
        path: output file.
        resume: keep what an earlier run committed to ``path`` and report it in ``progress``;
            without it an existing output (and its journals) is replaced.
        """
        self.path = Path(path)
        self.progress_path = self.path.with_name(self.path.name + ".progress.jsonl")
        self.state_path = self.path.with_name(self.path.name + ".state.json")
        self._states: list[dict] = []
        self.progress: dict[str, SourceProgress] = {}
        self.rows = 0
        self._columns: list[str] | None = None
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        else:
            for p in (self.path, self.progress_path, self.state_path, *self._side_files()):
                p.unlink(missing_ok=True)
        self._journal = open(self.progress_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

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
        if self._columns is None:
            self._columns = cols
        elif cols != self._columns:
            raise ValueError(
                f"{self.path}: chunk columns {cols[:6]}… differ from the file's {self._columns[:6]}…"
            )
        size = self._append(df) if len(df) or self.fmt == "parquet" else self._size()
        if state is not None:
            self._save_state(source, int(last_frame), state)
        self.rows += len(df)
        prev = self.progress.get(source, SourceProgress())
        entry = SourceProgress(
            last_frame=max(int(last_frame), prev.last_frame),
            done=bool(done),
            frames=prev.frames + int(frames),
            no_face=prev.no_face + int(no_face),
        )
        self.progress[source] = entry
        line = {
            "source": source,
            "last_frame": entry.last_frame,
            "done": entry.done,
            "frames": entry.frames,
            "no_face": entry.no_face,
            "rows": self.rows,
            "bytes": size,
        }
        self._journal.write(json.dumps(line) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    @property
    def columns(self) -> list[str] | None:
        """Columns of the rows already in the output (``None`` before the first chunk)."""
        return self._columns

    def _save_state(self, source: str, last_frame: int, state: dict) -> None:
        # The two latest snapshots are kept: if the process dies between this write and the
        # journal commit, the previous snapshot still matches the last committed chunk.
        self._states = [x for x in self._states if x["source"] == source][-1:]
        self._states.append({"source": source, "last_frame": last_frame, "state": state})
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self._states, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

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
        self._journal.close()
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
            # Rewrite the journal without a torn last line, so later appends stay parseable.
            with open(self.progress_path, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(ln) + "\n" for ln in lines)
            logger.info(
                "%s: resuming after %d committed rows (%d sources done)",
                self.path,
                self.rows,
                sum(p.done for p in self.progress.values()),
            )
        elif self.path.exists() or any(p.exists() for p in self._side_files()):
            # An output without its journal (copied, or written by an older version): trust the
            # rows, treating each source as finished up to its last frame with a face.
            keys = self._existing_keys()
            self.rows = len(keys)
            self._restore(self.rows, None)
            if len(keys):
                for src, last in keys.groupby("source")["frame"].max().items():
                    self.progress[str(src)] = SourceProgress(int(last), False)
            with open(self.progress_path, "w", encoding="utf-8") as f:
                f.write(
                    json.dumps(
                        {
                            "source": "",
                            "last_frame": -1,
                            "done": False,
                            "rows": self.rows,
                            "bytes": self._size() if self.fmt != "parquet" else 0,
                        }
                    )
                    + "\n"
                )
            logger.warning(
                "%s: no progress journal; resuming each source after its last frame with a face", self.path
            )


class _TextWriter(ResultWriter):
    """Shared logic of the line-based formats."""

    def _append(self, df) -> int:
        data = self._encode(df, header=self._size() == 0)
        # One write of the whole chunk, then flush+fsync: the chunk is on disk before it is committed.
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            return f.tell()

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

        return pd.read_csv(io.BytesIO(data[:cut]), usecols=["source", "frame"])

    def _header(self) -> list[str] | None:
        with open(self.path, encoding="utf-8") as f:
            return f.readline().rstrip("\n").split(",")


class JSONLWriter(_TextWriter):
    """One JSON object per row (NaN written as ``null``)."""

    fmt = "jsonl"

    def _encode(self, df, header: bool) -> bytes:
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
                    d = json.loads(line)
                    rows.append((d["source"], d["frame"]))
        return pd.DataFrame(rows, columns=["source", "frame"])

    def _header(self) -> list[str] | None:
        with open(self.path, encoding="utf-8") as f:
            line = f.readline()
        return list(json.loads(line)) if line.strip() else None


class ParquetWriter(ResultWriter):
    """Parquet with one row group per chunk, built from an Arrow IPC journal at close."""

    fmt = "parquet"

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        self.journal_path = Path(path).with_name(Path(path).name + ".journal.arrows")
        self._sink = None
        self._ipc = None
        self._schema = None
        self._empty_schema = None
        super().__init__(path, resume=resume)

    def _side_files(self) -> tuple[Path, ...]:
        return (self.journal_path,)

    def _open_ipc(self, schema) -> None:
        import pyarrow as pa

        self._schema = schema
        self._sink = pa.OSFile(str(self.journal_path), "ab")
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
                raise InputError(self.path, f"existing output is not a readable Parquet file ({e})") from None
            for i in range(pf.num_row_groups):
                for b in pf.read_row_group(i).to_batches():
                    yield pf.schema_arrow, b

    def _restore(self, rows: int, size: int | None) -> None:
        import pyarrow as pa

        old = self.journal_path.with_name(self.journal_path.name + ".old")
        if self.journal_path.exists():
            os.replace(self.journal_path, old)
        kept = 0
        for schema, batch in self._batches(old):
            if kept >= rows:
                break
            if self._ipc is None:
                self._open_ipc(schema)
            batch = batch.slice(0, rows - kept)
            self._ipc.write_table(pa.Table.from_batches([batch], schema=schema))
            kept += batch.num_rows
        if kept < rows:
            raise InputError(
                self.path,
                f"only {kept} of the {rows} committed rows could be read back; run without --resume",
            )
        if self._sink is not None:
            self._sink.flush()
            os.fsync(self._sink.fileno())
            self._columns = list(self._schema.names)
        old.unlink(missing_ok=True)
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
                pq.write_table(self._empty_schema.empty_table(), str(self.path))  # no face anywhere
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        writer = None
        with pa.OSFile(str(self.journal_path), "rb") as f:
            try:
                reader = pa.ipc.open_stream(f)
            except pa.ArrowInvalid:
                reader = None
            if reader is not None:
                writer = pq.ParquetWriter(str(tmp), reader.schema)
                wrote = False
                for batch in reader:
                    writer.write_table(pa.Table.from_batches([batch]))  # one row group per chunk
                    wrote = True
                if not wrote:
                    writer.write_table(reader.schema.empty_table())
                writer.close()
        if writer is not None:
            os.replace(tmp, self.path)
        self.journal_path.unlink()


def open_writer(path: str | Path, *, resume: bool = False) -> ResultWriter:
    """A writer for ``path``, chosen by its extension (.csv, .parquet/.pq, .jsonl/.ndjson).

    Raises:
        InputError: unknown extension (the message lists the supported ones).
    """
    ext = Path(path).suffix.lower()
    fmt = WRITER_FORMATS.get(ext)
    if fmt is None:
        hint = " (JSON output is JSON Lines: use .jsonl)" if ext == ".json" else ""
        raise InputError(
            path,
            f"unknown output format {ext or '(no extension)'!r}{hint}; use one of {sorted(WRITER_FORMATS)}",
        )
    return {"csv": CSVWriter, "jsonl": JSONLWriter, "parquet": ParquetWriter}[fmt](path, resume=resume)


def read_results(path: str | Path):
    """Read a results file written by these writers into a DataFrame (format by extension)."""
    import pandas as pd

    fmt = WRITER_FORMATS.get(Path(path).suffix.lower())
    if fmt == "csv":
        return pd.read_csv(path)
    if fmt == "jsonl":
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
