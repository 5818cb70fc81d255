"""``facebehavior evaluate CHECKPOINT --dataset NAME --root DIR --split S``: the papers' metrics.

Prints per-task figures and saves ``metrics.json``, per-class / per-AU CSV tables and a
confusion-matrix plot to ``--out``. Lightning is not needed (the checkpoint is an exported
safetensors model).
"""

from __future__ import annotations

import argparse
import logging

from facebehavior.commands import add_option_argument, parse_options

__all__ = ["add_arguments", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument("checkpoint", help="exported .safetensors model (facebehavior train's output)")
    parser.add_argument("--dataset", required=True, help="dataset adapter name (e.g. ferplus, fer2013)")
    parser.add_argument("--root", required=True, help="corpus folder in its official layout")
    parser.add_argument("--split", default="test", help="split name (default: test)")
    add_option_argument(parser, "adapter option")
    parser.add_argument("--out", help="folder for metrics.json, CSV tables and confusion_matrix.png")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tta-flip", action="store_true", help="average predictions over the mirrored image")


def _print(res: dict) -> None:
    lines = [f"{res['checkpoint']} on {res['dataset']['name']}/{res['dataset']['split']}"]
    if "expression" in res:
        e = res["expression"]
        lines.append(
            f"expression (n={e['n']}): accuracy {e['accuracy']:.4f}  mean diagonal {e['mean_diagonal']:.4f}  "
            f"macro F1 {e['macro_f1']:.4f}  0.67F1+0.33acc {e['score_0.67f1_0.33acc']:.4f}"
        )
        lines += [
            f"  {c:<10} F1 {f:.4f}  (n={e['per_class_support'][c]})" for c, f in e["per_class_f1"].items()
        ]
    if "au" in res:
        a = res["au"]
        lines.append(f"AU (n={a['n']}): mean F1 {a['f1_mean']:.4f}")
        lines += [
            f"  {k:<5} F1 {v:.4f}  accuracy {a['per_au_accuracy'][k]:.4f}" for k, v in a["per_au_f1"].items()
        ]
    if "va" in res:
        for d in ("valence", "arousal"):
            v = res["va"][d]
            lines.append(
                f"{d} (n={res['va']['n']}): CCC {v['ccc']:.4f}  RMSE {v['rmse']:.4f}  r {v['pearson']:.4f}"
            )
    print("\n".join(lines))  # noqa: T201 - the command's result, for the user


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 2 with a one-line message on bad input."""
    from facebehavior._runtime import configure_threads
    from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError
    from facebehavior.models.weights import CheckpointError
    from facebehavior.train.config import SetConfig
    from facebehavior.train.evaluate import evaluate_checkpoint, save_report

    configure_threads()
    try:
        options = parse_options(args.option)
    except ValueError as e:
        logger.error("%s", e)
        return 2
    cfg = SetConfig(dataset=args.dataset, root=args.root, split=args.split, options=options)
    try:
        res, _ = evaluate_checkpoint(args.checkpoint, cfg, batch_size=args.batch_size, tta_flip=args.tta_flip)
    except (CheckpointError, DatasetNotFoundError, LabelFormatError, KeyError) as e:
        logger.error("%s", e.args[0] if isinstance(e, KeyError) else e)
        return 2
    _print(res)
    if args.out:
        for p in save_report(res, args.out):
            logger.info("wrote %s", p)
    return 0
