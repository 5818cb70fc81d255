"""Distributed batch analysis on Ray Core: one task per video (or group of images), resumable.

Why Ray Core tasks and not Ray Data: the unit of work is a whole source whose rows a worker
commits itself, segment by segment, with the tracker state — there is no row stream to map over.
``benchmarks/ray_scaling.py --impl core data`` ran the same jobs both ways within the noise of the
test machine (docs/scale.md), and with tasks a failed job is reported on its own while the others
go on, where a failed Ray Data map aborts the whole execution. Tasks are submitted longest video
first and at most ``workers`` at a time; Ray retries a task whose worker died (``retries``), and
the retry continues after the last committed segment (``parts.run_job``).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebehavior.scale.parts import (
    Job,
    JobReport,
    check_manifest,
    committed,
    remove_stale_temporaries,
    run_job,
)

__all__ = ["DistributedRun", "RayNotInstalledError", "analyze_distributed", "plan_jobs"]

logger = logging.getLogger(__name__)

RAY_HINT = "pip install 'facebehavior[ray]'"


class RayNotInstalledError(ImportError):
    """``--engine ray`` / ``analyze_distributed`` without Ray installed."""


@dataclass
class DistributedRun:
    """Outcome of ``analyze_distributed``.

    Attributes:
        out_dir: the dataset folder.
        jobs: jobs submitted (sources already done are not).
        skipped: sources found done by an earlier run.
        parts: part files written by this run.
        frames: frames analysed by this run.
        rows: rows written by this run.
        errors: one line per unreadable input or failed job (a worker that died, an exception);
            a rerun retries them.
        wall_s: seconds from the first submission to the last result.
    """

    out_dir: Path
    jobs: int = 0
    skipped: int = 0
    parts: int = 0
    frames: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


def import_ray() -> Any:
    """Import Ray, or raise ``RayNotInstalledError`` with the install command."""
    try:
        import ray
    except ImportError:
        raise RayNotInstalledError(f"the Ray engine needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


def plan_jobs(
    sources: Iterable[Any], out_dir: str | Path, images_per_part: int = 256
) -> tuple[list[Job], int]:
    """Jobs for the sources not yet done in ``out_dir``, longest video first.

    Args:
        sources: ``io.sources.Source`` items (images and videos).
        out_dir: the dataset folder (read for committed progress).
        images_per_part: still images per job and part file.

    Returns:
        ``(jobs, skipped)``: the jobs, and how many sources were already done.
    """
    sources = list(sources)
    done = {s for s, c in committed(out_dir).items() if c.done}
    videos = [s for s in sources if s.kind == "video" and s.path not in done]
    images = [s for s in sources if s.kind == "image" and s.path not in done]
    skipped = sum(1 for s in sources if s.path in done)

    def size(s: Any) -> int:
        try:
            return os.path.getsize(s.path)
        except OSError:
            return 0

    # Longest first (file size stands in for duration): the last video to start is a short one,
    # so workers finish close together instead of one long video running alone at the end.
    videos.sort(key=size, reverse=True)
    jobs = [Job("video", (s.path,), (os.path.abspath(s.path),)) for s in videos]
    for i in range(0, len(images), images_per_part):
        group = images[i : i + images_per_part]
        paths = tuple(os.path.abspath(s.path) for s in group)
        jobs.append(Job("images", tuple(s.path for s in group), paths))
    return jobs, skipped


def analyze_distributed(
    inputs: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    *,
    workers: int | None = None,
    address: str | None = None,
    recursive: bool = False,
    segment_frames: int = 1024,
    images_per_part: int = 256,
    retries: int = 3,
    setup: Callable[[], Any] | None = None,
    on_job: Callable[[Job, JobReport | None, str | None], None] | None = None,
    **analyzer_kwargs: Any,
) -> DistributedRun:
    """Analyse images and videos on a Ray cluster into a partitioned Parquet dataset; resumable.

    Each video is one Ray task that commits a Parquet part every ``segment_frames`` analysed frames
    (``scale.parts``); still images are analysed in groups of ``images_per_part``, one part per
    group. A rerun on the same ``out_dir`` skips finished sources and continues unfinished videos
    after their last committed frame, with the face tracker state saved there: the rows equal those
    of a local ``Analyzer`` run (``scale.read_dataset(out_dir)`` returns them in its order).

    Example:
        >>> from facebehavior.scale import analyze_distributed, read_dataset
        >>> run = analyze_distributed(["clips/"], "out/", workers=8)  # doctest: +SKIP
        >>> df = read_dataset("out/")  # doctest: +SKIP

    Args:
        inputs: files, folders and glob patterns (as for ``facebehavior analyze``); webcams are refused.
            Inputs and ``out_dir`` must be on a file system every Ray node sees.
        out_dir: folder of the dataset (created; reused by a rerun).
        workers: tasks running at once (``None``: as many as the cluster has CPUs for, one
            CPU — or ``threads`` CPUs — per task). With ``device="cuda"`` each task also takes one
            GPU, so Ray runs at most one task per GPU whatever ``workers`` says.
        address: Ray cluster to join (``"auto"``, ``"ray://head:10001"``); ``None`` joins the
            cluster this process is already connected to, else starts a local one. A cluster
            started here is shut down at the end.
        recursive: descend into sub-folders of folder inputs.
        segment_frames: analysed video frames per committed part (the most a killed worker loses).
        images_per_part: still images per task and part file.
        retries: times Ray reruns a task whose worker process died; each retry continues after
            the last committed segment.
        setup: called in each worker before its job (the CLI passes its process settings).
        on_job: called on the driver as each job ends, with its report or an error line.
        **analyzer_kwargs: ``Analyzer`` arguments (``model``, ``every``, ``geometry`` …), the same in
            every worker.

    Returns:
        A ``DistributedRun`` summary; ``errors`` lists inputs that failed (rerun to retry them).

    Raises:
        RayNotInstalledError: Ray is not installed.
        ValueError: bad options, or ``out_dir`` holds another run's columns or settings.
    """
    from facebehavior.io import InputError
    from facebehavior.io.sources import expand_inputs
    from facebehavior.pipeline import Analyzer

    ray = import_ray()
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if segment_frames < 1 or images_per_part < 1 or retries < 0:
        raise ValueError("segment_frames and images_per_part must be >= 1, retries >= 0")
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    # Built here once, so bad options or a bad model fail before any cluster work, and the columns
    # recorded with the dataset are the ones every worker will produce.
    # On the CPU: the driver (a laptop joining a GPU cluster) need not have the workers' devices.
    analyzer = Analyzer(**{**analyzer_kwargs, "device": "cpu"})
    columns = analyzer.columns
    sources, errs = expand_inputs(inputs, recursive=recursive)
    run = DistributedRun(Path(out_dir))
    run.errors += [str(e) for e in errs]
    for s in [s for s in sources if s.kind == "webcam"]:
        run.errors.append(str(InputError(s.path, "a webcam cannot be distributed; use the local engine")))
    sources = [s for s in sources if s.kind != "webcam"]
    out = Path(out_dir).resolve()
    check_manifest(out, columns, {"every": analyzer.every}, [s.path for s in sources])
    stale = remove_stale_temporaries(out)
    if stale:
        logger.info("%s: removed %d temporary file(s) of killed workers", out, stale)
    jobs, run.skipped = plan_jobs(sources, out, images_per_part)
    run.jobs = len(jobs)
    if not jobs:
        return run

    started = False
    if not ray.is_initialized():
        # configure_logging=False: the host application's logging stays as it set it up.
        ray.init(address=address, configure_logging=False, include_dashboard=False)
        started = True
    elif address is not None:
        logger.info("Ray is already initialised in this process; address=%r ignored", address)
    try:
        cpus = max(1, analyzer.threads)
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
        # A CUDA run asks Ray for one GPU per task: Ray then sets CUDA_VISIBLE_DEVICES, so each
        # task sees its own GPU as "cuda" and no two tasks share one.
        gpus = 1 if str(analyzer_kwargs.get("device", "cpu")).startswith("cuda") else 0
        task = ray.remote(run_job).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=False
        )
        # A task holds `cpus` CPUs: the Analyzer's second (overlap) thread would oversubscribe them;
        # the parallelism comes from the tasks.
        kwargs_ref = ray.put({**analyzer_kwargs, "overlap": False})
        token = uuid.uuid4().hex
        queue = list(reversed(jobs))
        running: dict[Any, Job] = {}
        t0 = time.perf_counter()
        while queue or running:
            while queue and len(running) < workers:
                job = queue.pop()
                ref = task.remote(
                    job, str(out), kwargs_ref, token=token, segment_frames=segment_frames, setup=setup
                )
                running[ref] = job
            ready, _ = ray.wait(list(running), num_returns=1)
            job = running.pop(ready[0])
            try:
                report: JobReport = ray.get(ready[0])
            except (ray.exceptions.RayError, OSError) as e:
                msg = _job_error(job, e)
                run.errors.append(msg)
                if on_job is not None:
                    on_job(job, None, msg)
                continue
            run.parts += report.parts
            run.frames += report.frames
            run.rows += report.rows
            run.errors += report.errors
            if on_job is not None:
                on_job(job, report, None)
        run.wall_s = time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()
    return run


def _job_error(job: Job, e: BaseException) -> str:
    """One line for a job that failed: which sources, why, and that a rerun continues it."""
    what = job.sources[0] if len(job.sources) == 1 else f"{len(job.sources)} images from {job.sources[0]}"
    cause = getattr(e, "cause", None) or e
    reason = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
    if type(e).__name__ in ("WorkerCrashedError", "NodeDiedError", "ObjectLostError"):
        reason = f"the worker died ({type(e).__name__})"
    return f"{what}: {reason}; committed parts are kept, run again to finish it"
