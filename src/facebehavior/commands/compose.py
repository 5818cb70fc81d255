"""``facebehavior compose-multiview``: AUNets' multi-view system as one checkpoint.

The view classifier (``recipes/aunets_fera17_views.yaml``) and one AU detector per camera view
(AUNets/HydraNet recipes on FERA 2017 with ``options: {pose: V}``) are trained separately; this
command checks that they fit together and writes them as one ``aunets_multiview`` checkpoint
(``models.aunets.ViewSpecificEnsemble``) that ``analyze --model`` and ``evaluate`` load like any
other. The ensemble picks one view per model call: ``video_view`` over the faces of the batch
(analyze: every face of a batch of ``--batch-size`` frames; evaluate: a batch of ``--batch-size`` rows,
so evaluate one view at a time with ``--option pose=V``). The chosen view is not an output column.

    facebehavior compose-multiview --views views.safetensors \\
        --detector 0,1,2=left.safetensors --detector 3,4,5,6,7,8=front.safetensors -o multiview.safetensors
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "compose_multiview", "parse_detector", "run"]

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument("--views", required=True, help="exported view classifier (task 'view')")
    parser.add_argument(
        "--detector",
        action="append",
        required=True,
        metavar="V[,V...]=PATH",
        help="exported AU detector for the 0-based view index(es) V (FERA 2017 pose - 1); repeat until "
        "every view of the classifier has one; all detectors must share architecture, AUs and input",
    )
    parser.add_argument("-o", "--output", required=True, help="the composed .safetensors checkpoint")
    parser.add_argument("--name", help="weight name stored in the spec (default: the output's stem)")


def parse_detector(text: str) -> tuple[list[int], Path]:
    """``"0,3=a.safetensors"`` → ``([0, 3], Path("a.safetensors"))``.

    Raises:
        ValueError: no ``=``, no path, or a view that is not a non-negative whole number.
    """
    views, sep, path = text.partition("=")
    if not sep or not path or not views:
        raise ValueError(f"--detector expects V[,V...]=PATH (e.g. 0,1=left.safetensors), got {text!r}")
    out = []
    for v in views.split(","):
        if not v.strip().isdigit():
            raise ValueError(f"--detector {text!r}: view {v!r} is not a 0-based view index")
        out.append(int(v))
    return out, Path(path)


def _same(what: str, a: Any, b: Any, pa: Path, pb: Path) -> None:
    if a != b:
        raise ValueError(f"{pb} has another {what} than {pa}: {b!r} vs {a!r}; the views must share it")


def compose_multiview(
    views: str | Path,
    detectors: Mapping[int, str | Path],
    output: str | Path,
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """Write a view classifier and per-view AU detectors as one ``aunets_multiview`` checkpoint.

    Args:
        views: checkpoint of the view classifier (a ``view`` task with one label per view).
        detectors: 0-based view index → checkpoint of that view's AU detector (``au`` task, image
            input only); every view of the classifier needs one, several views may share a file.
        output: the ``.safetensors`` file to write.
        name: the spec's weight name (default: ``output``'s stem).

    Returns:
        ``{"output", "sha256", "num_views", "aus", "detectors"}`` (view index → detector file).

    Raises:
        CheckpointError: a part cannot be read or does not match its architecture.
        ValueError: the parts do not fit together (message says which and how).
    """
    from facebehavior.models.weights import WeightSpec, load_weights, read_spec, save_checkpoint

    views = Path(views)
    vspec = read_spec(views)
    view_labels = tuple(vspec.tasks.get("view", ()))
    if not view_labels:
        raise ValueError(f"{views}: not a view classifier (its tasks are {sorted(vspec.tasks)}, no 'view')")
    n = len(view_labels)
    bad = sorted(v for v in detectors if not 0 <= v < n)
    if bad:
        raise ValueError(f"--detector views {bad} are outside the classifier's views 0..{n - 1}")
    missing = [v for v in range(n) if v not in detectors]
    if missing:
        raise ValueError(
            f"views {missing} of {views.name}'s {n} have no detector; give each one (several views may "
            "share a file: --detector 0,1,2=PATH)"
        )
    specs = {v: read_spec(p) for v, p in detectors.items()}
    first = Path(detectors[0])
    ref = specs[0]
    for v in range(n):
        s, p = specs[v], Path(detectors[v])
        if "au" not in s.tasks:
            raise ValueError(f"{p}: not an AU detector (its tasks are {sorted(s.tasks)}, no 'au')")
        if s.input.features:
            raise ValueError(
                f"{p}: takes per-face inputs {s.input.features}; the multi-view system feeds images"
            )
        _same("architecture", (ref.architecture, dict(ref.arch_kwargs)),
              (s.architecture, dict(s.arch_kwargs)), first, p)  # fmt: skip
        _same("AU order", tuple(ref.tasks["au"]), tuple(s.tasks["au"]), first, p)
        _same("input spec", ref.input, s.input, first, p)
    # One tensor goes to the view classifier and to the detectors, so both need one preprocessing.
    _same("input spec", ref.input, vspec.input, first, views)

    from facebehavior.models import create_model

    view_model, _ = load_weights(views)
    loaded: dict[Path, Any] = {}
    for p in {Path(p) for p in detectors.values()}:
        loaded[p], _ = load_weights(p)
        extra = getattr(loaded[p], "input_names", ("image",))
        if tuple(extra) != ("image",):
            raise ValueError(
                f"{p}: {ref.architecture} takes inputs {tuple(extra)}; only image-only detectors can be "
                "composed (a flow detector needs analyze's clip path)"
            )
    kwargs = {
        "view_model": vspec.architecture, "view_kwargs": dict(vspec.arch_kwargs),
        "detector_model": ref.architecture, "detector_kwargs": dict(ref.arch_kwargs), "num_views": n,
    }  # fmt: skip
    ensemble = create_model("aunets_multiview", **kwargs)
    ensemble.view_classifier.load_state_dict(view_model.state_dict(), strict=True)
    for v in range(n):
        ensemble.detectors[v].load_state_dict(loaded[Path(detectors[v])].state_dict(), strict=True)
    output = Path(output)
    licences = sorted({vspec.licence, *(s.licence for s in specs.values())})
    parts = {"views": {"file": views.name, "sha256": vspec.sha256},
             "detectors": {str(v): {"file": Path(detectors[v]).name, "sha256": specs[v].sha256}
                           for v in range(n)}}  # fmt: skip
    spec = WeightSpec(
        name=name or output.stem,
        architecture="aunets_multiview",
        arch_kwargs=kwargs,
        input=ref.input,
        tasks={"au": tuple(ref.tasks["au"])},
        licence=" AND ".join(licences),
        source="facebehavior compose-multiview: view classifier + one AU detector per view",
        extra={"parts": parts, "view_labels": list(view_labels)},
    )
    sha = save_checkpoint(ensemble.state_dict(), spec, output)
    logger.info("composed %d views into %s", n, output)
    return {
        "output": str(output), "sha256": sha, "num_views": n, "aus": list(ref.tasks["au"]),
        "detectors": {v: str(detectors[v]) for v in range(n)},
    }  # fmt: skip


def _detector_map(items: Sequence[str]) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for text in items:
        views, path = parse_detector(text)
        for v in views:
            if v in out:
                raise ValueError(f"view {v} is given two detectors ({out[v]} and {path})")
            out[v] = path
    return out


def run(args: argparse.Namespace) -> int:
    """Compose; 0 on success, 2 on a bad part or argument (one-line message)."""
    from facebehavior.models.weights import CheckpointError

    try:
        report = compose_multiview(args.views, _detector_map(args.detector), args.output, name=args.name)
    except (CheckpointError, ValueError, KeyError) as e:
        logger.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return 2
    print(  # noqa: T201 - the command's result, for the user
        f"wrote {report['output']} ({report['num_views']} views, AUs {', '.join(report['aus'])}; "
        f"sha256 {report['sha256'][:12]})"
    )
    return 0
