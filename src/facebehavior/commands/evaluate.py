"""``facebehavior evaluate CHECKPOINT --dataset NAME --root DIR --split S``: the papers' metrics.

Faces are detected and aligned as ``facebehavior prepare`` does it, with the checkpoint's template
and input size (or read from a ``prepare`` cache with ``--cache``); rows without a face are
counted and handled by ``--no-face``; clip models run over windows of their sequence length. Prints
a table of every task's figures; ``--json PATH`` saves the whole report, ``--out DIR`` also the
per-class / per-AU CSV tables and the confusion-matrix plot. Lightning is not needed (the
checkpoint is an exported safetensors model). Conventions: ``facebehavior.train.evaluate``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import Any

from facebehavior.commands import add_option_argument, parse_options

__all__ = ["add_arguments", "format_report", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument("checkpoint", help="exported .safetensors model (facebehavior train's output)")
    parser.add_argument("--dataset", help="dataset adapter name (e.g. bp4d, disfa, ferplus, rafdb_compound)")
    parser.add_argument("--root", help="corpus folder in its official layout")
    parser.add_argument("--split", default="test", help="split name (default: test)")
    parser.add_argument(
        "--cache", help="read this `facebehavior prepare` cache of the split instead of detecting faces"
    )
    add_option_argument(parser, "adapter option")
    det = parser.add_mutually_exclusive_group()
    det.add_argument(
        "--detect",
        dest="detect",
        action="store_const",
        const=True,
        default=None,
        help="detect and align faces (default: yes, except for corpora of face crops such as FER2013 "
        "and checkpoints trained on raw corpus images)",
    )
    det.add_argument(
        "--no-detect",
        dest="detect",
        action="store_const",
        const=False,
        help="resize each image as it is (the corpus' own face crops)",
    )
    parser.add_argument(
        "--no-face",
        choices=("nearest", "exclude"),
        default="nearest",
        help="rows without a face: 'nearest' takes the nearest frame of the same video with a face and "
        "leaves still images out; 'exclude' leaves every such row out (default: nearest)",
    )
    parser.add_argument(
        "--median", type=int, default=0, help="median-filter predictions over W frames per video (AUNets: 7)"
    )
    parser.add_argument(
        "--sequence-length", type=int, default=None, help="clip models: window length (default: the recipe's)"
    )
    parser.add_argument(
        "--stride", type=int, default=None, help="clip models: window stride (default: T // 2)"
    )
    parser.add_argument("--save-cache", help="keep the detected crops here as a prepare cache (for --cache)")
    parser.add_argument("--workers", type=int, default=1, help="detection processes (default 1)")
    parser.add_argument("--device", default="cpu", help="torch device of the detectors (default cpu)")
    parser.add_argument(
        "--no-facemesh", action="store_true", help="align on the detector's keypoints instead of FaceMesh's"
    )
    parser.add_argument("--json", help="write the whole report to this JSON file")
    parser.add_argument("--out", help="folder for metrics.json, CSV tables and confusion_matrix.png")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--tta-flip", action="store_true", help="average predictions over the mirrored image")


def _f(x: Any) -> str:
    if isinstance(x, float):
        return "n/a" if math.isnan(x) else f"{x:.4f}"
    return str(x)


def format_report(res: dict[str, Any]) -> str:
    """The report as a plain-text table (one line per figure; per-label lines indented)."""
    d = res["dataset"]
    head = f"{res['checkpoint']} on {d['name']}/{d['split']} ({d['n']} rows)"
    opts = [f"median {d['median']}" if d.get("median") else "", "flip TTA" if d.get("tta_flip") else ""]
    if d.get("sequence_length"):
        opts.append(f"clips of {d['sequence_length']} frames, stride {d['stride']}")
    opts = [o for o in opts if o]
    lines = [head + (f" [{', '.join(opts)}]" if opts else "")]
    f = res.get("faces", {})
    if f:
        where = f["source"] + (f", template {f['template']} at {f['size']} px" if "template" in f else "")
        lines.append(f"faces: {where}")
        lines.append(
            f"  {f['with_face']} of {f['rows']} rows with a face; {f['without_face']} without "
            f"({f.get('no_face', 0)} not found, {f.get('unreadable', 0)} unreadable): "
            f"{f['filled_from_neighbour']} scored with the nearest frame's prediction, "
            f"{f['excluded']} excluded"
        )
    rows: list[tuple[str, str, str, str]] = []

    def add(task: str, metric: str, value: Any, n: Any = "") -> None:
        rows.append((task, metric, _f(value), str(n)))

    if "expression" in res:
        e = res["expression"]
        for k, name in (("accuracy", "accuracy"), ("mean_diagonal", "mean diagonal (UAR)"),
                        ("macro_f1", "macro F1"), ("score_0.67f1_0.33acc", "0.67 F1 + 0.33 acc"),
                        ("emotionet_score", "EmotioNet score")):  # fmt: skip
            add("expression", name, e[k], e["n"] if k == "accuracy" else "")
        for c, v in e["per_class_f1"].items():
            add("  " + c, "F1", v, e["per_class_support"][c])
    if "au" in res:
        a = res["au"]
        add("AU", "mean F1", a["f1_mean"], a["n"])
        add("AU", "mean AUC", a["auc_mean"])
        add("AU", "ABAW 0.5 F1 + 0.5 acc", a["abaw_score"])
        add("AU", "EmotioNet score", a["emotionet_score"])
        for k, v in a["per_au_f1"].items():
            rows.append(("  " + k, "F1 / acc / AUC",
                         f"{_f(v)} / {_f(a['per_au_accuracy'][k])} / {_f(a['per_au_auc'][k])}",
                         str(int(a["per_au_support"][k]))))  # fmt: skip
    if "au_intensity" in res:
        a = res["au_intensity"]
        add("AU intensity", "mean ICC(3,1) (rounded)", a["icc_mean"], a["n"])
        add("AU intensity", "mean MAE (rounded)", a["mae_mean"])
        add("AU intensity", "mean ICC(3,1) / MAE (raw)", f"{_f(a['icc_raw_mean'])} / {_f(a['mae_raw_mean'])}")
        for k, v in a["per_au_icc"].items():
            rows.append(
                ("  " + k, "ICC / MAE", f"{_f(v)} / {_f(a['per_au_mae'][k])}", str(a["per_au_support"][k]))
            )
    if "va" in res:
        v = res["va"]
        for dim in ("valence", "arousal"):
            add(
                dim,
                "CCC / RMSE / r",
                f"{_f(v[dim]['ccc'])} / {_f(v[dim]['rmse'])} / {_f(v[dim]['pearson'])}",
                v["n"],
            )
        add("VA", "mean CCC", v["ccc_mean"])
    if "attribute" in res:
        a = res["attribute"]
        add("attribute", "mean accuracy", a["accuracy_mean"], a["n"])
        add("attribute", "mean AUC", a["auc_mean"])
        for k, v in a["per_attribute_accuracy"].items():
            add("  " + k, "accuracy / AUC", f"{_f(v)} / {_f(a['per_attribute_auc'][k])}")
    if "view" in res:
        add("view", "accuracy", res["view"]["accuracy"], res["view"]["n"])
    if "compound" in res:
        c = res["compound"]
        for key, name in (("closed_set", "compound (closed set)"),
                          ("with_rejection", f"compound (reject < {c['min_prob']:g})")):  # fmt: skip
            s = c[key]
            add(name, "accuracy", s["accuracy"], c["n"])
            add(name, "mean diagonal / macro F1", f"{_f(s['mean_diagonal'])} / {_f(s['macro_f1'])}")
            if key == "with_rejection":
                add(
                    name,
                    "coverage / accuracy accepted",
                    f"{_f(s['coverage'])} / {_f(s['accuracy_accepted'])}",
                )
    if rows:
        w = [max(len(r[i]) for r in rows + [("task", "metric", "value", "n")]) for i in range(4)]
        lines.append(f"{'task':<{w[0]}}  {'metric':<{w[1]}}  {'value':>{w[2]}}  {'n':>{w[3]}}")
        lines += [f"{t:<{w[0]}}  {m:<{w[1]}}  {v:>{w[2]}}  {n:>{w[3]}}" for t, m, v, n in rows]
    else:
        lines.append("no task of the checkpoint has labels in this split")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0, or 2 with a one-line message on bad input."""
    from facebehavior._runtime import configure_threads
    from facebehavior.data.cache import CacheMismatchError
    from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError
    from facebehavior.models.weights import CheckpointError
    from facebehavior.train.config import SetConfig
    from facebehavior.train.evaluate import evaluate_checkpoint, save_report, write_json

    configure_threads()
    if not args.cache and not (args.dataset and args.root):
        logger.error("evaluate needs --dataset and --root (the corpus), or --cache (a prepare folder)")
        return 2
    try:
        options = parse_options(args.option)
    except ValueError as e:
        logger.error("%s", e)
        return 2
    cfg = SetConfig(
        dataset=args.dataset or "cache",
        root=args.root or "",
        split=args.split,
        options=options,
        cache=args.cache,
    )
    try:
        res, _ = evaluate_checkpoint(
            args.checkpoint,
            cfg,
            batch_size=args.batch_size,
            tta_flip=args.tta_flip,
            detect=args.detect,
            no_face=args.no_face,
            median=args.median,
            sequence_length=args.sequence_length,
            stride=args.stride,
            save_cache=args.save_cache,
            workers=args.workers,
            device=args.device,
            facemesh=not args.no_facemesh,
        )
    except (CheckpointError, DatasetNotFoundError, LabelFormatError, CacheMismatchError, FileNotFoundError,
            KeyError, ValueError) as e:  # fmt: skip
        logger.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return 2
    sys.stdout.write(format_report(res) + "\n")
    if args.json:
        logger.info("wrote %s", write_json(res, args.json))
    if args.out:
        for p in save_report(res, args.out):
            logger.info("wrote %s", p)
    return 0
