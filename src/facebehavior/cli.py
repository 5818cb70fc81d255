"""Command-line entry point: a thin shell over the public API.

Each sub-command lives in ``facebehavior.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when used.

The CLI is the application, so it owns the process's signal handling (the library never touches
it): SIGTERM is turned into ``commands.Terminated``, a ``KeyboardInterrupt``, so ``kill`` unwinds
like Ctrl-C — outputs are finished and the process exits 143 (Ctrl-C: 130) with a one-line
message, wherever it was interrupted (start-up, model loading, a resume's rebuild).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM

COMMANDS: dict[str, str] = {
    "analyze": "Analyse images, videos, folders or a webcam: faces, AUs, expressions, VA.",
    "prepare": "Detect and align faces once over a corpus into a training cache.",
    "train": "Train a model from a YAML recipe.",
    "evaluate": "Evaluate a checkpoint on a dataset split with the papers' metrics.",
    "finetune": "Few-shot compound-expression head on the default model (FaceBehaviorNet 4.5), exported.",
    "report": "Write a self-contained HTML report (per source and face) of an analyze results file.",
    "compose-multiview": "Compose AUNets' view classifier and per-view AU detectors into one checkpoint.",
}
# Commands whose module name is not the command's name.
MODULES: dict[str, str] = {"compose-multiview": "compose"}


class _HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default, unless its help already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and not isinstance(
            action, (argparse._HelpAction, argparse._VersionAction)
        )
        if shown and "default" not in text and (action.option_strings or action.nargs in ("?", "*")):
            text += " (default: %(default)s)"
        return text


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser, importing only the sub-command named in ``argv`` (if any)."""
    from facebehavior import __version__

    parser = argparse.ArgumentParser(
        prog="facebehavior", description=__doc__.splitlines()[0], formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"facebehavior {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = next((a for a in argv if a in COMMANDS), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        if name == wanted:
            importlib.import_module(f"facebehavior.commands.{MODULES.get(name, name)}").add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (130 on Ctrl-C, 143 on SIGTERM)."""
    from facebehavior.commands import Terminated

    previous = _on_sigterm(Terminated)
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        level = logging.WARNING - 10 * min(args.verbose, 2)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
        if not args.command:
            parser.print_help()
            return 2
        module = importlib.import_module(f"facebehavior.commands.{MODULES.get(args.command, args.command)}")
        return int(module.run(args) or 0)
    except KeyboardInterrupt as e:
        # Interrupted outside a command's own handling (start-up, model loading, a second Ctrl-C
        # while an output is being finished): files are replaced atomically, so nothing is torn.
        terminated = isinstance(e, Terminated)
        sys.stderr.write(f"interrupted ({'SIGTERM' if terminated else 'Ctrl-C'})\n")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_sigterm(exc: type[BaseException]):
    """Raise ``exc`` on SIGTERM; returns the previous handler (``None`` if none could be set)."""

    def handler(signum: int, frame: object) -> None:
        raise exc()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not the main thread, or no SIGTERM on this platform
        return None


if __name__ == "__main__":
    raise SystemExit(main())
