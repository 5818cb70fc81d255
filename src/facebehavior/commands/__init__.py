"""Sub-command implementations for ``facebehavior.cli`` (one module per command)."""

from __future__ import annotations

import argparse

__all__ = ["Terminated", "add_option_argument", "parse_options"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (see ``facebehavior.cli``).

    A ``KeyboardInterrupt`` subclass so that every command unwinds from ``kill`` exactly as from
    Ctrl-C (outputs finished, journals closed); the exit code tells them apart (143 vs 130).
    """


def add_option_argument(parser: argparse.ArgumentParser, what: str = "adapter keyword argument") -> None:
    """Add the repeatable ``--option KEY=VALUE`` flag (dataset adapter options) to ``parser``."""
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"{what}; VALUE parsed as YAML/JSON when it can be (camera=right, aus=[1,2,4])",
    )


def parse_options(pairs: list[str]) -> dict[str, object]:
    """``["k=v", ...]`` → ``{k: value}``; values parsed as YAML (a JSON superset), else kept as text.

    Lists become tuples (hashable, so they can key a cache's configuration).

    Raises:
        ValueError: a pair without ``=`` or with an empty key.
    """
    import yaml

    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        out[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return out
