"""Training-step throughput of the ferplus_small model: 1 vs 2 torch threads, NCHW vs channels-last.

Usage:
    python benchmarks/ferplus_train_speed.py [--recipe recipes/ferplus_small.yaml] [--steps 8]

One step = augmentation + forward + soft-label cross-entropy + backward + AdamW update on a batch
of the recipe's size, as ``facebehavior train`` runs it. Each thread count runs in a fresh
process (torch's thread pool cannot shrink reliably in-process). On a shared machine the figures
depend on the load: the script prints the load average next to them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
threads, recipe_path, steps, cl = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1'
torch.set_num_threads(threads)
import os
os.environ.setdefault("FACEBEHAVIOR_DATA", "/unused")
from facebehavior.train.config import load_recipe
from facebehavior.train.module import FaceBehaviorModule
r = load_recipe(recipe_path)
r.trainer.channels_last = cl
m = FaceBehaviorModule(r)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
b = r.data.batch_size
g = torch.Generator().manual_seed(0)
batch = {
    "image": torch.randint(
        0, 256, (b, r.input.channels, r.input.size, r.input.size), generator=g, dtype=torch.uint8
    ),
    "expression_dist": torch.softmax(torch.randn(b, 8, generator=g), 1),
    "expression_mask": torch.ones(b), "expression": torch.zeros(b, dtype=torch.long),
    "set_index": torch.zeros(b, dtype=torch.long),
}
times = []
m.train()
for i in range(steps + 2):
    t = time.perf_counter()
    loss = m.compute_losses(m(m.preprocess(batch["image"], train=True)), batch)["loss"]
    opt.zero_grad(); loss.backward(); opt.step()
    times.append(time.perf_counter() - t)
times = sorted(times[2:])
print(json.dumps({"img_per_s_median": b / times[len(times) // 2], "batch": b}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="recipes/ferplus_small.yaml")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    for threads, cl in ((1, 0), (1, 1), (2, 0), (2, 1)):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(threads), args.recipe, str(args.steps), str(cl)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        res = json.loads(out.stdout.strip().splitlines()[-1])
        load = os.getloadavg()[0]
        rate = res["img_per_s_median"]
        layout = "channels-last" if cl else "NCHW"
        print(
            f"threads={threads} {layout:<13} {rate:.0f} images/s (batch {res['batch']}, load avg {load:.1f})"
        )


if __name__ == "__main__":
    main()
