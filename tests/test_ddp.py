"""DDP training for real (2 CPU processes, gloo) and the multi-task sampler's sharding over ranks."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import yaml

from facebehavior.data.sampler import MultiTaskBatchSampler, derive_batch_sizes


def _epoch(sizes: dict, batches: dict, world: int, epoch: int = 0, seed: int = 3) -> list[list[list[int]]]:
    """Every rank's batches of one epoch."""
    out = []
    for rank in range(world):
        s = MultiTaskBatchSampler(sizes, batches, seed=seed, num_replicas=world, rank=rank)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


def _set_of(index: int, sizes: dict) -> str:
    ends = np.cumsum(list(sizes.values()))
    return list(sizes)[int(np.searchsorted(ends, index, side="right"))]


@pytest.mark.parametrize("world", [2, 3])
def test_ranks_draw_disjoint_samples_with_equal_per_set_batches(world):
    # Set sizes that are whole multiples of steps x batch x world: one epoch is exactly one pass.
    batches = {"va": 4, "au": 2, "expr": 1}
    steps = 5
    sizes = {k: b * steps * world for k, b in batches.items()}
    ranks = _epoch(sizes, batches, world)
    assert [len(r) for r in ranks] == [steps] * world  # same step count: no rank waits in an all-reduce
    for r in ranks:
        for batch in r:  # one batch per set per step, grouped by set in recipe order
            assert [_set_of(i, sizes) for i in batch] == ["va"] * 4 + ["au"] * 2 + ["expr"]
    seen = [set(i for b in r for i in b) for r in ranks]
    for a in range(world):
        for b in range(a + 1, world):
            assert not seen[a] & seen[b], (a, b)
    assert set().union(*seen) == set(range(sum(sizes.values())))  # together: every sample once
    # another epoch: other permutations, still disjoint and the same per rank when redrawn
    later = _epoch(sizes, batches, world, epoch=1)
    assert later != ranks and later == _epoch(sizes, batches, world, epoch=1)
    assert not {i for b in later[0] for i in b} & {i for b in later[1] for i in b}


def test_uneven_sets_stay_balanced_over_ranks():
    # 25 and 7 samples on 2 ranks cannot split evenly: like DistributedSampler's padding, a few
    # samples are drawn twice, but no sample more than once beyond any other.
    sizes = {"a": 25, "b": 7}
    batches = derive_batch_sizes({k: -(-n // 2) for k, n in sizes.items()}, 4)
    ranks = _epoch(sizes, batches, 2)
    assert len(ranks[0]) == len(ranks[1])
    for k, lo, hi in (("a", 0, 25), ("b", 25, 32)):
        counts = Counter(i for r in ranks for b in r for i in b if lo <= i < hi)
        assert set(counts) == set(range(lo, hi)), k  # every sample is seen
        assert max(counts.values()) - min(counts.values()) <= 1, k
        per_rank = [sum(1 for b in r for i in b if lo <= i < hi) for r in ranks]
        assert per_rank[0] == per_rank[1] == len(ranks[0]) * batches[k]


def test_ddp_training_with_two_cpu_processes(tmp_path):
    """``facebehavior train … --set trainer.strategy=ddp --set trainer.devices=2`` on gloo."""
    pytest.importorskip("lightning")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("this torch build has no gloo backend for CPU DDP")
    from facebehavior.models.weights import load_weights
    from test_train import _fer_tree

    root = _fer_tree(tmp_path / "fer")  # 36 training + 12 validation faces, brightness = class
    recipe = {
        "name": "ddp_fixture",
        "seed": 1,
        "output_dir": str(tmp_path / "run"),
        "model": {
            "name": "facebehaviornet_mobile_tiny",
            "kwargs": {"num_expressions": 8, "aus": [], "va": False, "in_channels": 1},
        },
        "input": {"size": 48, "channels": 1, "mean": [0.5], "std": [0.5], "template": "arcface"},
        "data": {
            "batch_size": 12,
            # two task sets: the sampler concatenates one batch of each per step, on every rank
            "sets": {
                "a": {"dataset": "ferplus", "root": str(root)},
                "b": {"dataset": "ferplus", "root": str(root), "split": "val"},
            },
            "val": [{"dataset": "ferplus", "root": str(root), "split": "val"}],
        },
        "augment": {"target": None},
        "optim": {"name": "sgd", "lr": 0.05},
        "trainer": {"max_epochs": 2, "accelerator": "cpu", "log_every_n_steps": 1},
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(recipe))
    cmd = [sys.executable, "-m", "facebehavior", "-v", "train", str(path),
           "--set", "trainer.strategy=ddp", "--set", "trainer.devices=2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "Starting with 2 processes" in log and "distributed_backend=gloo" in log
    # 36 + 12 samples over 2 ranks at 12 per rank and step: batches 9 + 3, 2 steps, on both ranks
    shards = sorted(re.findall(r"rank (\d) of 2: (\d+) steps per epoch, per-set batch sizes (\{.*?\})", log))
    assert shards == [("0", "2", "{'a': 9, 'b': 3}"), ("1", "2", "{'a': 9, 'b': 3}")], log[-3000:]
    assert re.search(r"epoch 1 step 4 ", log)  # 2 epochs x 2 steps, in lockstep
    assert len(re.findall(r"INFO facebehavior.train.runner: exported", log)) == 1  # rank 0 writes it
    model, spec = load_weights(tmp_path / "run" / "model.safetensors")
    assert spec.name == "ddp_fixture" and spec.tasks["expression"][0] == "neutral"
    assert (tmp_path / "run" / "recipe.json").is_file()
