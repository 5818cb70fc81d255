"""``facebehavior analyze … --engine ray``: the CLI side of the distributed engine.

``commands/analyze.py`` registers these options and hands the run over when ``--engine ray`` is
given; everything else about the distributed run lives here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# Local-engine options that post-process one results file; on a dataset they are separate steps.
_LOCAL_ONLY = {"plot": "--plot", "annotate": "--annotate", "smooth": "--smooth", "show": "--show"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--engine``, ``--address``, ``--workers`` and ``--segment-frames``."""
    from facebehavior.commands.analyze import _positive

    g = parser.add_argument_group("distributed analysis (docs/scale.md)")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: Ray tasks, -o is then a folder receiving a partitioned Parquet "
        "dataset (one file per video segment or group of images) that a rerun completes "
        "(needs pip install 'facebehavior[ray]')",
    )
    g.add_argument(
        "--address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join: auto, or ray://HOST:10001 (default: start a local one)",
    )
    g.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="Ray tasks at once (default: one per CPU of the cluster)",
    )
    g.add_argument(
        "--segment-frames",
        type=_positive,
        default=1024,
        metavar="N",
        help="analysed video frames per committed Parquet part (what a killed worker can lose)",
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)  # noqa: T201 - the command's messages


def _cli_setup() -> None:
    """What the CLI does to its own process, done in each worker before its job."""
    from facebehavior._runtime import configure_allocator

    configure_allocator()


def run(args: argparse.Namespace) -> int:
    """Run ``analyze --engine ray``; returns the exit code.

    0 ok, 1 some inputs failed (a rerun retries them), 2 bad options or no Ray, 130 Ctrl-C.
    """
    from facebehavior.commands.analyze import analyzer_kwargs
    from facebehavior.io import InputError
    from facebehavior.io.writers import WRITER_FORMATS
    from facebehavior.models.weights import CheckpointError
    from facebehavior.scale.engine import RayNotInstalledError, analyze_distributed, import_ray

    try:
        import_ray()
    except RayNotInstalledError as e:
        _say(f"error: --engine ray: {e}")
        return EXIT_USAGE
    used = [flag for key, flag in _LOCAL_ONLY.items() if getattr(args, key, None)]
    if used:
        _say(f"error: {', '.join(used)} work(s) on one results file; with --engine ray run it on "
             "facebehavior.scale.read_dataset(OUT) afterwards, or use the local engine")  # fmt: skip
        return EXIT_USAGE
    if Path(args.output).suffix.lower() in WRITER_FORMATS:
        _say(f"error: with --engine ray, -o names a folder for the Parquet dataset, not a "
             f"{Path(args.output).suffix} file (e.g. -o {Path(args.output).with_suffix('')}/)")  # fmt: skip
        return EXIT_USAGE
    if args.geometry and args.no_landmarks:
        _say("error: --geometry needs the landmarks; drop --no-landmarks")
        return EXIT_USAGE
    if args.resume:
        logger.info("--engine ray always continues an existing dataset; --resume is implied")

    def on_job(job, report, error) -> None:
        if error is not None:
            _say(f"error: {error}")
        elif not args.no_progress:
            what = job.sources[0] if job.kind == "video" else f"{len(job.sources)} image(s)"
            _say(f"done: {what} ({report.frames} frames, {report.parts} part(s))")

    try:
        result = analyze_distributed(
            args.inputs,
            args.output,
            workers=args.workers,
            address=args.address,
            recursive=args.recursive,
            segment_frames=args.segment_frames,
            setup=_cli_setup,
            on_job=on_job,
            **analyzer_kwargs(args),  # commands.analyze's mapping: one place for both engines
        )
    except (InputError, CheckpointError, ValueError, KeyError) as e:
        _say(f"error: {e.args[0] if isinstance(e, KeyError) else e}")
        return EXIT_USAGE
    except ConnectionError as e:
        _say(f"error: --address {args.address}: cannot reach the Ray cluster ({e})")
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say(f"interrupted (Ctrl-C): committed parts in {args.output} are kept; run again to continue")
        return EXIT_INTERRUPTED
    _say(
        f"{result.frames} frames analysed, {result.rows} rows in {result.parts} part(s) written to "
        f"{args.output} ({result.jobs} job(s); {result.skipped} source(s) already done)"
    )
    if result.errors:
        _say(f"{len(result.errors)} input(s) failed:")
        for line in result.errors:
            _say(f"  {line}")
        return EXIT_SOME_FAILED
    return EXIT_OK
