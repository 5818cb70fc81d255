"""Local vs Ray wall time of ``facebehavior analyze`` on N copies of the sample video (whole process).

Each configuration runs as its own process, timed from start to exit — interpreter start, model
loading and, for Ray, starting a local cluster and its workers are all included, as a user waits
for them:

* ``local``: ``facebehavior analyze COPIES -o out.parquet`` (one process);
* ``ray`` with 1 and 2 workers: ``facebehavior analyze COPIES -o out/ --engine ray --workers W``
  (Ray Core tasks, ``facebehavior.scale``);
* with ``--impl data`` also Ray Data (``ray.data.from_items(jobs).map(run_job, concurrency=W)``)
  running the very same per-job function, which is how the engine's choice of Ray Core was made.

Every Ray run's dataset is checked against the local output (same rows). Usage::

    python benchmarks/ray_scaling.py                 # 8 copies, 1 and 2 workers
    python benchmarks/ray_scaling.py --impl data     # also Ray Data
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "video.mp4"


def _data_child(inputs: list[str], out: str, workers: int) -> None:
    """Ray Data variant of the engine: the same jobs and ``run_job``, mapped by Ray Data."""
    import uuid

    import ray

    from facebehavior.io.sources import expand_inputs
    from facebehavior.pipeline import Analyzer
    from facebehavior.scale.engine import plan_jobs
    from facebehavior.scale.parts import check_manifest, run_job

    analyzer = Analyzer()
    sources, _ = expand_inputs(inputs)
    check_manifest(out, analyzer.columns, {"every": 1}, [s.path for s in sources])
    jobs, _ = plan_jobs(sources, out)
    token = uuid.uuid4().hex
    ray.init(include_dashboard=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False

    def work(row: dict) -> dict:
        report = run_job(row["job"], out, {}, token=token)
        return {"frames": report.frames}

    ds = ray.data.from_items([{"job": j} for j in jobs]).map(work, concurrency=workers, num_cpus=1)
    frames = sum(r["frames"] for r in ds.take_all())
    ray.shutdown()
    print(f"{frames} frames", file=sys.stderr)


def _timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--impl", choices=("core", "data"), nargs="+", default=["core"])
    ap.add_argument("--repeat", type=int, default=1, help="rounds (interleaved); the minimum is shown")
    ap.add_argument("--data-child", nargs=3, metavar=("INPUT_DIR", "OUT", "WORKERS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.data_child:
        src, out, workers = args.data_child
        _data_child(sorted(str(p) for p in Path(src).glob("*.mp4")), out, int(workers))
        return

    import pandas as pd

    from facebehavior.scale import read_dataset

    env = dict(os.environ, FACEBEHAVIOR_PROGRESS_SECONDS="1000")
    cli = [sys.executable, "-m", "facebehavior", "analyze"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        for i in range(args.copies):
            shutil.copy(SAMPLE, src / f"copy{i:02d}.mp4")
        inputs = sorted(str(p) for p in src.glob("*.mp4"))
        ref = tmp / "local.parquet"
        configs = [("local", 0)] + [(impl, w) for impl in args.impl for w in args.workers]
        walls: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
        same: dict[tuple[str, int], bool] = {}
        for _ in range(args.repeat):  # rounds interleave the configurations: load changes hit all alike
            for impl, w in configs:
                out = tmp / f"{impl}{w}"
                shutil.rmtree(out, ignore_errors=True)
                if impl == "local":
                    cmd = [*cli, *inputs, "-o", str(ref), "--no-progress"]
                elif impl == "core":
                    cmd = [*cli, *inputs, "-o", str(out), "--engine", "ray", "--workers", str(w)]
                    cmd.append("--no-progress")
                else:
                    cmd = [sys.executable, __file__, "--data-child", str(src), str(out), str(w)]
                walls[(impl, w)].append(_timed(cmd, env))
                if impl != "local":
                    same[(impl, w)] = read_dataset(out).equals(pd.read_parquet(ref))
        rows = len(pd.read_parquet(ref))
        print(f"{args.copies} copies of {SAMPLE.name} ({rows} rows), {os.cpu_count()} CPUs, "
              f"minimum of {args.repeat} round(s); load average now {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'engine':<22}{'wall s':>9}{'local / engine':>16}")
        local = min(walls[("local", 0)])
        for (impl, w), times in walls.items():
            name = "local" if impl == "local" else f"ray {impl}, {w} worker{'s' if w > 1 else ''}"
            flag = "" if same.get((impl, w), True) else "  ROWS DIFFER"
            print(f"{name:<22}{min(times):>9.1f}{local / min(times):>16.2f}{flag}")


if __name__ == "__main__":
    main()
