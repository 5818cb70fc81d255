"""``facebehavior report RESULTS -o report.html``: a self-contained HTML page of a results table.

One section per source and one block per face: summary table (frames, share of analysed frames,
mean expression distribution, top AUs, mean valence/arousal), AU heatmap over time, expression
ribbon, valence–arousal trajectory on the circumplex, and thumbnails when the media are readable.
The page has no external assets, so it opens offline and can be archived with the results.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_USAGE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument(
        "results", metavar="RESULTS", help="facebehavior analyze output (.csv, .parquet, .jsonl)"
    )
    parser.add_argument("-o", "--output", required=True, metavar="OUT.html", help="the HTML page to write")
    parser.add_argument(
        "--media-root",
        metavar="DIR",
        default=None,
        help="folder the 'source' paths are relative to, for thumbnails (default: as written, i.e. relative "
        "to the folder analyze ran in)",
    )
    parser.add_argument("--no-thumbnails", action="store_true", help="do not read the media (faster)")
    parser.add_argument("--title", default=None, help="page title (default: 'facebehavior report')")
    parser.add_argument(
        "--max-sources",
        type=int,
        default=50,
        metavar="N",
        help="sections for at most N sources (default: %(default)s)",
    )


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")


def run(args: argparse.Namespace) -> int:
    """Write the report; returns 0, or 2 with a one-line message on bad input."""
    from facebehavior.io import InputError
    from facebehavior.io.writers import read_results
    from facebehavior.viz.report import write_report

    src = Path(args.results)
    if not src.is_file():
        _say(f"error: {src}: {'is a folder, not a results file' if src.is_dir() else 'file not found'}")
        return EXIT_USAGE
    if Path(args.output).suffix.lower() not in (".html", ".htm"):
        _say(f"error: {args.output}: the report is an HTML page; name it *.html")
        return EXIT_USAGE
    if args.max_sources < 1:
        _say(f"error: --max-sources must be at least 1, got {args.max_sources}")
        return EXIT_USAGE
    if args.media_root is not None and not Path(args.media_root).is_dir():
        _say(f"error: --media-root {args.media_root}: not a folder")
        return EXIT_USAGE
    try:
        df = read_results(src)
    except InputError as e:
        _say(f"error: {e}")
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 (pandas/pyarrow raise many types on a damaged file)
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        _say(f"error: {src}: cannot read the results ({reason})")
        return EXIT_USAGE
    if len(df.columns) == 0:
        _say(f"error: {src}: holds no results (an empty file: no face was found?); nothing to report")
        return EXIT_USAGE
    try:
        path = write_report(
            df,
            args.output,
            media_root=args.media_root,
            title=args.title,
            thumbnails=not args.no_thumbnails,
            max_sources=args.max_sources,
        )
    except ValueError as e:
        _say(f"error: {src}: {e}")
        return EXIT_USAGE
    except OSError as e:
        _say(f"error: {args.output}: cannot write the report ({e.strerror or e})")
        return EXIT_USAGE
    _say(f"report of {df['source'].nunique()} source(s) written to {path}")
    return EXIT_OK
