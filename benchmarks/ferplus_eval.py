"""FER+ accuracy of an exported checkpoint (8 classes, majority vote, PrivateTest by default).

Usage:
    python benchmarks/ferplus_eval.py runs/ferplus_small/ferplus_small.safetensors \
        [--root /path/to/fer2013] [--split test] [--tta-flip]

Prints the accuracy under two test-set definitions:

- ``majority`` (the project's, ``facebehavior.data.datasets.fer2013.ferplus_majority``): arg-max of the
  8 emotion votes; rows with a tie for the top emotion, or where ``unknown``/``NF`` has at least
  as many votes as the top emotion, are excluded (3,376 of PrivateTest's 3,589 rows);
- ``ferplus_strict`` (the FER+ paper's protocol, Microsoft's ``ferplus.py`` "majority" mode,
  ``fer2013.ferplus_majority_microsoft``; 3,153 PrivateTest rows): emotions chosen by a single
  tagger are zeroed first, and the top category must hold more than half of the remaining votes
  and be an emotion. ``facebehavior evaluate ... --option majority=microsoft`` gives the same set.

Checkpoint selection must use PublicTest (``--split val``) only; PrivateTest is reported once.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--root", help="folder of fer2013.npz (default: $FACEBEHAVIOR_FER2013)")
    parser.add_argument("--split", default="test", help="test = PrivateTest, val = PublicTest")
    parser.add_argument("--tta-flip", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from facebehavior import metrics
    from facebehavior.data.datasets import create_dataset
    from facebehavior.data.datasets.fer2013 import SPLIT_USAGE, default_root, ferplus_majority_microsoft
    from facebehavior.train.config import SetConfig
    from facebehavior.train.evaluate import evaluate_checkpoint

    t0 = time.perf_counter()
    root = str(args.root or default_root())
    cfg = SetConfig(dataset="ferplus", root=root, split=args.split)
    res, pred = evaluate_checkpoint(args.checkpoint, cfg, batch_size=512, tta_flip=args.tta_flip)
    e = res["expression"]
    print(f"checkpoint {args.checkpoint}")
    took = time.perf_counter() - t0
    print(f"split {args.split} ({res['dataset']['n']} rows), tta_flip={args.tta_flip}, {took:.1f} s")
    print(f"majority        n={e['n']:5d}  accuracy {e['accuracy']:.4f}  macro F1 {e['macro_f1']:.4f}  "
          f"mean diagonal {e['mean_diagonal']:.4f}")  # fmt: skip

    ds = create_dataset("ferplus", root)
    raw = ds.raw
    votes = raw.votes[raw.usage == SPLIT_USAGE[args.split]]
    y = ferplus_majority_microsoft(votes)
    valid = y >= 0
    p = pred["pred_expression"].argmax(1)
    yv, pv = y[valid], p[valid]
    C = len(e["labels"])
    acc, f1, md = metrics.accuracy(yv, pv), metrics.macro_f1(yv, pv, C), metrics.mean_diagonal(yv, pv, C)
    n = int(valid.sum())
    print(f"ferplus_strict  n={n:5d}  accuracy {acc:.4f}  macro F1 {f1:.4f}  mean diagonal {md:.4f}")
    strict_f1 = metrics.f1_per_class(yv, pv, C)
    strict_n = np.bincount(yv, minlength=C)
    print(f"  {'class':<10} {'F1 majority (n)':>18} {'F1 ferplus_strict (n)':>24}")
    for i, c in enumerate(e["labels"]):
        print(f"  {c:<10} {e['per_class_f1'][c]:>8.4f} ({e['per_class_support'][c]:>5}) "
              f"{strict_f1[i]:>13.4f} ({strict_n[i]:>5})")  # fmt: skip


if __name__ == "__main__":
    main()
