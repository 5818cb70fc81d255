"""``facebehavior train RECIPE``: train a model from a YAML recipe and export it.

The exported ``.safetensors`` file (in the recipe's ``output_dir``) carries its ``WeightSpec``, so
it can be used directly with ``facebehavior analyze --model PATH`` and ``facebehavior evaluate``.
"""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument("recipe", help="YAML training recipe (see recipes/ and docs/training.md)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set trainer.max_epochs=2 --set data.sets.expr.root=/data/fer",
    )
    parser.add_argument(
        "--resume", metavar="CKPT", help="resume from a Lightning checkpoint ('last' = the run's last)"
    )
    parser.add_argument("--output-dir", help="override the recipe's output_dir")


def run(args: argparse.Namespace) -> int:
    """Train; returns 0 on success, 2 on a recipe or data error (with a one-line message)."""
    from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError
    from facebehavior.models.weights import CheckpointError
    from facebehavior.train.config import ConfigError, load_recipe

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    try:
        recipe = load_recipe(args.recipe, overrides)
    except (FileNotFoundError, ConfigError) as e:
        logger.error("%s", e)
        return 2
    logging.getLogger("facebehavior").setLevel(min(logging.getLogger().level, logging.INFO))
    from facebehavior.train.runner import UnsupervisedTrainingError, fit

    try:
        path = fit(recipe, resume=args.resume)
    except (
        DatasetNotFoundError,
        LabelFormatError,
        ConfigError,
        CheckpointError,
        UnsupervisedTrainingError,
        FloatingPointError,
    ) as e:
        logger.error("%s", e)
        return 2
    print(f"exported {path}")  # noqa: T201 - the command's result, for the user
    return 0
