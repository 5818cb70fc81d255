"""``facebehavior analyze``: faces, AUs, expressions and valence/arousal for images, videos, webcams.

Results stream to the output file chunk by chunk (one batch of frames at a time), so an
interrupted run (Ctrl-C, SIGTERM, kill -9, a full disk) keeps everything finished and ``--resume``
continues where it stopped. Unreadable inputs are reported one line each and skipped; the exit
code is 1 if any failed. An existing output is only replaced once the new run has a first chunk
to commit, so a run that fails earlier never destroys earlier results.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's options."""
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image/video files, folders, glob patterns ('clips/*.mp4'), or webcam:N",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="results file: .csv, .parquet or .jsonl"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the rows already in OUT and continue after them"
    )
    parser.add_argument(
        "--every", type=_positive, default=1, metavar="N", help="analyse every N-th video frame"
    )
    parser.add_argument(
        "--max-faces", type=_positive, default=None, metavar="N", help="at most N faces per frame"
    )
    parser.add_argument("--device", default="cpu", metavar="D", help="torch device (cpu, cuda, cuda:1, mps)")
    parser.add_argument(
        "--threads",
        type=_non_negative,
        default=None,
        metavar="N",
        help="torch threads (default: the library's setting)",
    )
    parser.add_argument(
        "--no-overlap",
        action="store_true",
        help="run every stage in one thread (default: on videos the affect model of a batch runs in a "
        "second thread while the next batch is decoded; ~15%% less wall time on 2 cores)",
    )
    parser.add_argument(
        "--model",
        default="default",
        metavar="NAME|PATH|none",
        help="affect model: a bundled one (default = fbn_fusion; fbn_mobile_ferplus = v1, image only), a "
        "checkpoint (.safetensors), or none for face columns only",
    )
    parser.add_argument(
        "--detector",
        default="auto",
        help="auto (BlazeFace short→full range), blazeface_short, blazeface_full, mtcnn",
    )
    parser.add_argument(
        "--landmarks",
        choices=("auto", "v2", "v1"),
        default="auto",
        help="landmark model: v2 = Face Mesh V2, 478 points with irises + 52 blendshapes (iris_*, bs_* "
        "columns; an input of the default model); v1 = FaceMesh-468, no blendshapes (the default model "
        "then uses its image-only path); auto = v2 on still images, v1 on video frames, where v2 would "
        "cost 2.3x the end-to-end time (default: %(default)s)",
    )
    parser.add_argument(
        "--no-landmarks", action="store_true", help="skip FaceMesh (no head pose/geometry; faster on stills)"
    )
    parser.add_argument(
        "--geometry", action="store_true", help="add geometric AU evidence from the landmarks"
    )
    parser.add_argument(
        "--batch-size", type=_positive, default=16, metavar="N", help="frames per batch/chunk"
    )
    parser.add_argument(
        "--faces-only",
        action="store_true",
        help="write face rows only (default: also one row per analysed frame without a face, success=0)",
    )
    parser.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    parser.add_argument(
        "--max-pixels",
        type=_positive,
        default=None,
        metavar="N",
        help="largest still image in pixels (default 40 million); larger ones are skipped",
    )
    parser.add_argument(
        "--downscale-huge",
        action="store_true",
        help="shrink images above the pixel limit instead of skipping them",
    )
    parser.add_argument("--plot", metavar="DIR", default=None, help="also save plots of the results into DIR")
    parser.add_argument(
        "--annotate",
        metavar="PATH",
        default=None,
        help="also write each input with its results drawn on it (boxes, ids, pose, expressions, AUs, VA): "
        "PATH is the annotated .mp4/.png for one input, a folder for several",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="show each analysed frame in a window with the --annotate overlay and the measured frames/s; "
        "close it, or press q or Esc, to stop (the results so far are written). Frames appear batch by "
        "batch: --batch-size 4 makes a webcam view more fluid",
    )
    parser.add_argument(
        "--smooth",
        type=_odd,
        default=None,
        metavar="W",
        help="also write OUT's stem + '.smoothed' + suffix: predictions median-filtered over W analysed "
        "frames per face track (odd W; AUNets used 7)",
    )
    parser.add_argument(
        "--column-style",
        choices=("facebehavior", "openface"),
        default="facebehavior",
        help="facebehavior: this package's columns; openface: OpenFace 2.0 FeatureExtraction's 714 columns "
        "(names, order, units; AU*_c 0/1, AU*_r 0-5 or NaN), then source (default: %(default)s)",
    )
    parser.add_argument(
        "--points",
        choices=("none", "68", "openface", "all"),
        default=None,
        help="landmark columns: 68 = 68-point subset in pixels + head position + gaze; openface = also 3-D "
        "points and eye-region landmarks; all = also every mesh point (default: 68; openface with "
        "--column-style openface)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    from facebehavior.scale.cli import add_arguments as add_scale_arguments  # --engine ray & co.

    add_scale_arguments(parser)


def _non_negative(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (torch's default) or more, got {v}")
    return v


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _odd(text: str) -> int:
    v = _positive(text)
    if v % 2 == 0:
        raise argparse.ArgumentTypeError(f"the median window must be odd, got {v}")
    return v


def _say(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Run the analysis; returns the exit code.

    0 ok (also when the ``--show`` window was closed early), 1 some inputs failed (or none was
    usable) or ``--annotate`` failed, 2 bad options or an output that cannot be written, 130 Ctrl-C,
    143 SIGTERM. Everything that can be checked without analysing — options, a display for
    ``--show``, the output's and plot folder's paths, every input — is checked before the output is
    touched, and an existing output is replaced only once the new run commits its first chunk.
    """
    window = None
    if getattr(args, "show", False):
        from facebehavior.viz.live import DisplayError, LiveWindow

        try:
            window = LiveWindow()
        except DisplayError as e:
            _say(f"error: --show {e}")
            return EXIT_USAGE
    try:
        return _run(args, window)
    finally:
        if window is not None:
            window.close()


def _run(args: argparse.Namespace, window) -> int:
    if getattr(args, "engine", "local") == "ray":  # distributed: facebehavior.scale owns that run
        from facebehavior.scale.cli import run as run_distributed

        return run_distributed(args)
    from facebehavior._runtime import configure_allocator
    from facebehavior.commands import Terminated
    from facebehavior.io import InputError
    from facebehavior.io.sources import expand_inputs
    from facebehavior.io.writers import check_output, open_writer
    from facebehavior.models.weights import CheckpointError
    from facebehavior.pipeline import Analyzer

    # Process-wide settings belong to the application, not the library (an embedding program keeps
    # its own): the allocator tuning measured in _runtime.configure_allocator applies to CLI runs.
    configure_allocator()
    try:
        check_output(args.output)
        if args.plot:
            _check_folder(Path(args.plot), "--plot")
        if args.annotate:  # a file for one input (its folder must be writable), else a folder
            annotate = Path(args.annotate)
            _check_folder(annotate.parent if annotate.suffix else annotate, "--annotate")
        if args.geometry and args.no_landmarks:
            raise ValueError("--geometry needs the landmarks; drop --no-landmarks")
        analyzer = Analyzer(**analyzer_kwargs(args))
        analyzer.columns  # noqa: B018 (loads the affect model now, so a bad --model fails before any work)
    except (InputError, CheckpointError, ValueError, KeyError) as e:
        _say(f"error: {e.args[0] if isinstance(e, KeyError) else e}")
        return EXIT_USAGE

    failures: list[InputError] = []
    sources, errs = expand_inputs(args.inputs, recursive=args.recursive)
    sources, errs = _not_the_output(sources, errs, args.output)
    for e in errs:
        failures.append(e)
        _say(f"error: {e}")
    if args.annotate:
        problem = _annotate_problem(args.annotate, sources)
        if problem:
            _say(f"error: --annotate {args.annotate}: {problem}")
            return EXIT_USAGE
    if not sources:
        kept = " (left unchanged)" if Path(args.output).exists() else ""
        _say(f"error: nothing to analyse; {args.output}{kept} not written")
        return EXIT_SOME_FAILED

    writer = None
    try:
        try:
            writer = open_writer(args.output, resume=args.resume, meta={"every": args.every})
            _check_resumable(writer, analyzer, args)
        except (InputError, ValueError) as e:
            _say(f"error: {e}")
            return EXIT_USAGE
        except OSError as e:  # the output cannot be created (no permission, read-only disk)
            _say(f"error: {args.output}: cannot write the output ({e.strerror or e})")
            return EXIT_USAGE
        return _analyze(args, analyzer, writer, sources, failures, window)
    except KeyboardInterrupt as e:  # during start-up or a resume's rebuild (both leave files intact)
        what = "SIGTERM" if isinstance(e, Terminated) else "Ctrl-C"
        _say(f"interrupted ({what}); committed results in {args.output} are kept")
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    finally:
        if writer is not None:
            _close(writer, args)


def _analyze(args: argparse.Namespace, analyzer, writer, sources: list, failures: list, window=None) -> int:
    """The analysis loop: chunks → writer (and the ``--show`` window), progress bars, summary,
    smoothing, plots and annotated copies."""
    from tqdm import tqdm

    from facebehavior.commands import Terminated
    from facebehavior.io import InputError

    todo = [s for s in sources if not _done(writer, s.path)]
    if args.resume and len(todo) < len(sources):
        _say(f"resuming: {len(sources) - len(todo)} of {len(sources)} inputs already done")

    quiet = args.no_progress or not sys.stderr.isatty() and not _force_bars()
    # Without a terminal (nohup, Slurm, pipes) bars would be noise: a plain line every
    # PROGRESS_SECONDS instead, so a long job shows it is alive and how fast it goes.
    lines = None if args.no_progress or not quiet else _ProgressLines(len(todo))
    files_bar = tqdm(total=len(todo), unit="file", desc="files", position=0, disable=quiet, file=sys.stderr)
    frame_bar = None
    counts = {"frames": 0, "rows": 0, "no_face": 0}
    faceless: list[str] = []
    per_source: dict[str, list[int]] = {}

    def on_source(src, reader) -> None:
        nonlocal frame_bar
        if frame_bar is not None:
            frame_bar.close()
        total = None
        if reader is not None and getattr(reader, "frame_count", None):
            start = writer.progress[src.path].last_frame + 1 if src.path in writer.progress else 0
            total = max(0, -(-(reader.frame_count - start) // args.every))
        frame_bar = tqdm(
            total=total if src.kind != "image" else 1,
            unit="frame",
            desc=Path(src.path).name[:40],
            position=1,
            leave=False,
            disable=quiet,
            file=sys.stderr,
        )

    def on_error(e: InputError) -> None:
        failures.append(e)
        _say(f"error: {e}")

    interrupted: KeyboardInterrupt | None = None
    write_failed = False
    stopped = False
    if window is not None:
        analyzer.on_batch = window.show
        window.restart_clock()
    try:
        for chunk in analyzer.iter_chunks(
            [s.path for s in todo],
            on_error=on_error,
            skip=writer.progress,
            on_source=on_source,
            snapshots=True,
            resume_state=writer.resume_state,
        ):
            writer.write(
                chunk.rows,
                source=chunk.source,
                last_frame=chunk.last_frame,
                done=chunk.done,
                frames=chunk.frames,
                no_face=chunk.no_face,
                state=chunk.state,
            )
            counts["frames"] += chunk.frames
            counts["rows"] += _face_rows(chunk.rows)
            counts["no_face"] += chunk.no_face
            tally = per_source.setdefault(chunk.source, [0, 0])
            tally[0] += chunk.frames
            tally[1] += chunk.no_face
            if frame_bar is not None:
                frame_bar.update(chunk.frames)
            if lines is not None:
                lines.update(chunk)
            if chunk.done:
                files_bar.update(1)
                prog = writer.progress[chunk.source]
                if prog.frames and prog.no_face == prog.frames:
                    faceless.append(chunk.source)
            if window is not None and not window.poll():
                # Closed by the user: stop at this chunk boundary; everything committed is kept.
                stopped = True
                break
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (commands.Terminated)
        interrupted = e
    except OSError as e:  # disk full, output removed mid-run: stop cleanly, the journal is intact
        _say(f"error: {args.output}: writing failed ({e.strerror or e}); finished chunks are kept, "
             "fix the cause and run again with --resume")  # fmt: skip
        write_failed = True
    finally:
        if frame_bar is not None:
            frame_bar.close()
        files_bar.close()
    if not _close(writer, args):
        write_failed = True

    # Sources that failed part-way (truncated videos) still have their earlier chunks written.
    failed_paths = {f.path for f in failures}
    for src in failed_paths & set(per_source):
        logger.info("%s: %d frames analysed before the failure were kept", src, per_source[src][0])
    summary = f"{counts['frames']} frames analysed, {counts['rows']} face rows written to {args.output}" + (
        f"; {counts['no_face']} frames had no face" if counts["no_face"] else ""
    )
    _say(summary)
    if window is not None:
        _say(f"live window: {window.frames_shown} frames shown, {window.mean_fps:.1f} frames/s analysed")
    if stopped:
        unfinished = [s for s in todo if s.kind == "video" and not _done(writer, s.path)]
        more = "; run again with --resume to finish the videos" if unfinished else ""
        _say(f"stopped: the live window was closed; the results so far are in {args.output}{more}")
    for src in faceless:
        _say(f"warning: {src}: no face found in any frame")
    if write_failed:
        return EXIT_USAGE
    if interrupted is not None:
        what = "SIGTERM" if isinstance(interrupted, Terminated) else "Ctrl-C"
        _say(f"interrupted ({what}): finished chunks are saved; run again with --resume to continue "
             f"({args.output})")  # fmt: skip
        return EXIT_TERMINATED if isinstance(interrupted, Terminated) else EXIT_INTERRUPTED
    if args.smooth:
        _smooth(args)
    if args.plot:
        _plot(args)
    annotate_failed = 0
    if args.annotate:
        annotate_failed = _annotate(args, [s.path for s in sources if s.path not in failed_paths])
    if failures:
        _say(f"{len(failures)} input(s) failed:")
        for f in failures:
            _say(f"  {f}")
    if annotate_failed:
        _say(f"--annotate failed for {annotate_failed} input(s); the results in {args.output} are complete")
    return EXIT_SOME_FAILED if failures or annotate_failed else EXIT_OK


def _done(writer, path: str) -> bool:
    return path in writer.progress and writer.progress[path].done


def _close(writer, args: argparse.Namespace) -> bool:
    """Finish the output (Parquet: written from its journal); False, with a message, if that fails."""
    try:
        writer.close()
    except OSError as e:
        journal = getattr(writer, "journal_path", writer.progress_path)
        _say(f"error: {args.output}: finishing the output failed ({e.strerror or e}); the "
             f"{writer.rows} committed rows are kept in {journal.name}: free space and run again "
             "with --resume")  # fmt: skip
        return False
    return True


def _check_resumable(writer, analyzer, args: argparse.Namespace) -> None:
    """Refuse to resume onto an output written with other columns or another ``--every``."""
    if writer.columns is not None and writer.columns != analyzer.columns:
        raise ValueError(
            f"{args.output} holds other columns than these options produce "
            f"({len(writer.columns)} vs {len(analyzer.columns)}); resume with the options of the "
            "first run (--model, --geometry, --column-style) or write to a new output"
        )
    every = writer.previous_meta.get("every")
    if args.resume and every is not None and int(every) != args.every:
        # Mixing samplings would make the file's frames incomparable and a resumed video's rows
        # differ from an uninterrupted run's.
        raise ValueError(
            f"{args.output} was written with --every {every}; resume with --every {every}, or write "
            "to a new output"
        )


def _check_folder(folder: Path, option: str) -> None:
    """Refuse a folder that cannot be created or written (checked before any work)."""
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == folder else f"cannot be created: {p} is a file"
                raise ValueError(f"{option} {folder}: {where}, not a folder; choose another folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ValueError(f"{option} {folder}: {p} is not writable; choose another folder")
            return


def _not_the_output(sources: list, errors: list, output: str) -> tuple[list, list]:
    """Move the output file (or one of its journals), if given as an input, to the errors."""
    from facebehavior.io import InputError

    out = os.path.realpath(output)

    def is_output(path: str) -> bool:
        real = os.path.realpath(path)
        return real == out or real.startswith(out + ".")

    msg = "is this run's output (-o), not an input; drop it from the inputs"
    kept = [s for s in sources if not is_output(s.path)]
    errs = [InputError(e.path, msg) if is_output(e.path) else e for e in errors]
    errs += [InputError(s.path, msg) for s in sources if is_output(s.path)]
    return kept, errs


def analyzer_kwargs(args: argparse.Namespace) -> dict:
    """``Analyzer`` arguments from the analyze options (also what ``--engine ray`` workers get)."""
    return dict(
        detector=args.detector,
        landmarks=False if args.no_landmarks else args.landmarks,
        model=None if str(args.model).lower() == "none" else args.model,
        geometry=args.geometry,
        device=args.device,
        threads=args.threads,
        batch_size=args.batch_size,
        every=args.every,
        max_faces=args.max_faces,
        column_style=args.column_style,
        downscale_huge=args.downscale_huge,
        max_pixels=args.max_pixels,
        empty_frames=not args.faces_only,
        points=args.points,
        overlap=not args.no_overlap,
    )


def _face_rows(rows) -> int:
    """Rows that hold a face (``success`` 1); frames without one are rows too (``--faces-only``)."""
    from facebehavior.schema import SUCCESS_COLUMN

    return int((rows[SUCCESS_COLUMN] == 1).sum()) if SUCCESS_COLUMN in rows else len(rows)


def smoothed_path(output: str | Path) -> Path:
    """Where ``--smooth`` writes: ``out.csv`` → ``out.smoothed.csv``."""
    out = Path(output)
    return out.with_name(f"{out.stem}.smoothed{out.suffix}")


def _smooth(args: argparse.Namespace) -> None:
    from facebehavior.io.writers import read_results, write_results
    from facebehavior.temporal.smoothing import median_smooth

    out = Path(args.output)
    if not out.exists():
        _say("no results to smooth")
        return
    df = read_results(out)
    if not len(df):
        _say("no face rows: nothing to smooth")
        return
    path = write_results(median_smooth(df, args.smooth), smoothed_path(out))
    _say(f"median-smoothed predictions (window {args.smooth}) written to {path}")


def _plot(args: argparse.Namespace) -> None:
    from facebehavior.io.writers import read_results
    from facebehavior.viz import plot_results

    out = Path(args.output)
    if not out.exists():
        _say("no results to plot")
        return
    df = read_results(out)
    if not len(df):
        _say("no face rows: nothing to plot")
        return
    paths = plot_results(df, args.plot)
    _say(f"{len(paths)} plot(s) saved to {args.plot}")


def _annotate_problem(annotate: str, sources: list) -> str | None:
    """Why ``--annotate`` cannot work for these inputs (checked before any analysis), or ``None``."""
    from facebehavior.viz.overlay import IMAGE_OUT_EXTENSIONS, VIDEO_OUT_EXTENSIONS

    cams = [s.path for s in sources if s.kind == "webcam"]
    if cams:
        return (
            f"{cams[0]} cannot be annotated (camera frames are not kept); watch it live with --show instead"
        )
    suffix = Path(annotate).suffix.lower()
    if not suffix:
        return None
    if len(sources) > 1:
        return f"{len(sources)} inputs need a folder, not a file"
    kind = sources[0].kind if sources else None
    allowed = {"video": VIDEO_OUT_EXTENSIONS, "image": IMAGE_OUT_EXTENSIONS}.get(kind)
    if allowed is not None and suffix not in allowed:
        return f"an annotated {kind} is written as {', '.join(sorted(allowed))}; change the extension"
    return None


def _annotate(args: argparse.Namespace, paths: list[str]) -> int:
    """Re-read each input and write it with its rows drawn on it (``--annotate``); returns how many
    inputs could not be annotated (each reported in one line)."""
    import pandas as pd

    from facebehavior.io.writers import read_results
    from facebehavior.viz.overlay import annotate_results

    failed: list[str] = []

    def on_error(e: Exception) -> None:
        failed.append(str(e))
        _say(f"error: --annotate: {e}")

    out = Path(args.output)
    df = read_results(out) if out.exists() else pd.DataFrame()
    if "source" not in df.columns:  # no face anywhere: the copies are written unannotated
        df = pd.DataFrame({"source": pd.Series(dtype=str), "frame": pd.Series(dtype=int)})
    done = annotate_results(df, paths, args.annotate, hold=args.every - 1, on_error=on_error)
    _say(f"{len(done)} annotated file(s) written to {args.annotate}")
    return len(failed)


PROGRESS_SECONDS = 10.0


class _ProgressLines:
    """Periodic one-line progress reports on stderr for runs without a terminal."""

    def __init__(self, files: int, every: float | None = None) -> None:
        import os
        import time

        if every is None:
            env = os.environ.get("FACEBEHAVIOR_PROGRESS_SECONDS", "").strip()
            try:
                every = float(env) if env else PROGRESS_SECONDS
            except ValueError:
                every = -1.0
            if not every >= 0:  # a typo must not stop a long batch job: say so, use the default
                _say(f"warning: FACEBEHAVIOR_PROGRESS_SECONDS={env!r} is not a number of seconds >= 0; "
                     f"reporting every {PROGRESS_SECONDS:g} s")  # fmt: skip
                every = PROGRESS_SECONDS
        self.every = every
        self.files, self.done, self.frames = files, 0, 0
        self.start = self.last = time.monotonic()

    def update(self, chunk) -> None:
        import time

        self.frames += chunk.frames
        self.done += int(chunk.done)
        now = time.monotonic()
        if now - self.last >= self.every or (chunk.done and self.done == self.files):
            self.last = now
            rate = self.frames / max(now - self.start, 1e-9)
            _say(
                f"progress: {self.done}/{self.files} inputs done, {self.frames} frames analysed "
                f"({rate:.1f} frames/s); now {Path(chunk.source).name}"
            )


def _force_bars() -> bool:
    import os

    return os.environ.get("FACEBEHAVIOR_PROGRESS", "") == "1"
