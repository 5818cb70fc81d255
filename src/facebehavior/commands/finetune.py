"""``facebehavior finetune``: few-shot compound-expression fine-tuning of the default model.

FaceBehaviorNet §4.5 (Kollias et al.): the multi-task network's shared representation, learned on
expressions, AUs and VA, recognises compound expressions from a handful of examples per class. This
command adds a compound head (``facebehavior.models.compound_head``) to the default model (or another
``fbn_fusion`` checkpoint), trains it on ``--shots`` images per class of a compound corpus (RAF-DB's
compound set, CFEE, …) with the trunk frozen (``--unfreeze`` fine-tunes named parts of it too), and
exports one ``.safetensors`` file that ``facebehavior analyze --model PATH`` runs: it writes the
base model's columns plus ``compound_prob_<class>``.

Faces reach the head exactly as ``analyze`` will give them (``--faces detect``, the default): each
training image goes through the Analyzer's detection, Face Landmarker (blendshapes) and alignment to
the model's template, and the head learns from those inputs. ``--faces crops`` takes the images as
face crops already framed like the model's template (no detection, no blendshapes: the head then
reads the appearance features only).

    facebehavior finetune --dataset rafdb_compound --root /data/RAF-DB --option images=original \\
        --shots 10 -o runs/compound10.safetensors --eval-split test
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior import schema
from facebehavior.commands import add_option_argument, parse_options

__all__ = ["add_arguments", "run", "finetune", "FinetuneError"]

logger = logging.getLogger(__name__)


class FinetuneError(ValueError):
    """The data or the base model cannot give a few-shot compound head (the message says why)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the sub-command's arguments."""
    parser.add_argument("--dataset", required=True, help="compound corpus adapter: rafdb_compound, cfee, …")
    parser.add_argument("--root", required=True, help="the corpus folder, in its official layout")
    parser.add_argument("--split", default=None, help="split to draw the shots from (default: the first)")
    add_option_argument(parser)
    parser.add_argument("-o", "--output", required=True, help="the exported .safetensors model")
    parser.add_argument(
        "--model", default="default", help="base model: bundled name or fbn_fusion checkpoint"
    )
    parser.add_argument("--shots", type=int, default=10, help="training images per class")
    parser.add_argument(
        "--classes", nargs="+", default=None, help="class names to learn (default: those with a shot)"
    )
    parser.add_argument("--label", default="compound", help="label column of the table's extra arrays")
    parser.add_argument(
        "--faces",
        choices=("detect", "crops"),
        default="detect",
        help="detect + align faces as analyze does, or use the images as aligned crops",
    )
    parser.add_argument("--steps", type=int, default=300, help="optimiser steps")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    parser.add_argument("--weight-decay", type=float, default=1e-3, help="L2 penalty of the head")
    parser.add_argument(
        "--unfreeze",
        nargs="*",
        default=[],
        metavar="PREFIX",
        help="parameter-name prefixes of the base to fine-tune too (e.g. base.appearance.trunk)",
    )
    parser.add_argument("--eval-split", default=None, help="report accuracy on this split afterwards")
    parser.add_argument("--seed", type=int, default=0, help="shot selection and initialisation")


def run(args: argparse.Namespace) -> int:
    """Fine-tune; 0 on success, 2 on a data/model error (one-line message)."""
    from facebehavior.data.datasets import DatasetNotFoundError, LabelFormatError
    from facebehavior.models.weights import CheckpointError

    try:
        report = finetune(
            dataset=args.dataset, root=args.root, split=args.split, options=parse_options(args.option),
            output=args.output, model=args.model, shots=args.shots, classes=args.classes, label=args.label,
            faces=args.faces, steps=args.steps, lr=args.lr, weight_decay=args.weight_decay,
            unfreeze=args.unfreeze, eval_split=args.eval_split, seed=args.seed,
        )  # fmt: skip
    except (FinetuneError, DatasetNotFoundError, LabelFormatError, CheckpointError, FileNotFoundError,
            KeyError, ValueError) as e:  # fmt: skip
        logger.error("%s", e.args[0] if isinstance(e, KeyError) and e.args else e)
        return 2
    lines = [f"exported {report['output']}",
             f"classes {report['classes']}, {report['train_faces']} training faces, "
             f"train accuracy {report['train_accuracy']:.3f}, {report['seconds']:.1f} s"]  # fmt: skip
    if "eval_accuracy" in report:
        lines.append(
            f"{report['eval_split']}: accuracy {report['eval_accuracy']:.3f} on {report['eval_faces']} faces"
        )
    print("\n".join(lines))  # noqa: T201 - the command's result, for the user
    return 0


def _class_names(label: str, table: Any) -> tuple[str, ...]:
    """Names of the label indices of ``table.extra[label]`` (RAF-DB's 11 compounds, CFEE's 22 categories)."""
    from facebehavior.relatedness import RAFDB_COMPOUND_11

    if label == "compound":
        return RAFDB_COMPOUND_11
    if label == "category" and table.corpus == "cfee":
        from facebehavior.data.datasets.cfee import CFEE_CATEGORIES_22

        return CFEE_CATEGORIES_22
    raise FinetuneError(f"--label {label!r}: no class names known for {table.corpus}; use compound")


def _pick_shots(labels: np.ndarray, wanted: list[int], shots: int, seed: int) -> np.ndarray:
    """Row indices: ``shots`` random rows (fewer if the class has fewer) of each wanted class."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in wanted:
        idx = np.flatnonzero(labels == c)
        rows.append(rng.permutation(idx)[:shots])
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


class _Recorder:
    """Stands in for the affect model inside an Analyzer: keeps the inputs it is given (the aligned,
    preprocessed crops and the blendshapes) and answers with the base model's outputs."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.x: list[Any] = []
        self.bs: list[Any] = []

    def to(self, *args: Any, **kwargs: Any) -> _Recorder:
        return self

    def eval(self) -> _Recorder:
        return self

    def __call__(self, x: Any, blendshapes: Any = None) -> dict[str, Any]:
        import torch

        self.x.append(x.detach().clone())
        n = len(schema.BLENDSHAPE_NAMES)
        self.bs.append(
            torch.full((len(x), n), float("nan")) if blendshapes is None else blendshapes.detach().clone()
        )
        return self.base(x, blendshapes)


def model_inputs(images: list[np.ndarray], base: Any, spec: Any, faces: str) -> tuple[Any, Any, np.ndarray]:
    """Model inputs of a list of images, as ``analyze`` would build them.

    Args:
        images: ``(H, W, 3)`` uint8 RGB pictures.
        base: the loaded base model.
        spec: its ``WeightSpec``.
        faces: ``"detect"`` (Analyzer: detection, landmarks/blendshapes, alignment; the most
            confident face of each picture) or ``"crops"`` (the pictures are the crops).

    Returns:
        ``x`` ``(M, C, S, S)`` float32 model input, ``blendshapes`` ``(M, 52)`` (NaN rows: none),
        ``kept`` ``(M,)`` indices of the pictures that gave a face.
    """
    import torch

    from facebehavior.models.transforms import preprocess

    if faces == "crops":
        x = torch.cat([preprocess(im[None], spec.input) for im in images]) if images else torch.zeros(0)
        return (
            x,
            torch.full((len(images), len(schema.BLENDSHAPE_NAMES)), float("nan")),
            np.arange(len(images)),
        )
    from facebehavior import Analyzer

    rec = _Recorder(base)
    analyzer = Analyzer(model=(rec, spec), max_faces=1)
    xs, bss, kept = [], [], []
    for i, im in enumerate(images):
        before = len(rec.x)
        analyzer.analyze(np.ascontiguousarray(im))
        if len(rec.x) > before and len(rec.x[-1]):
            xs.append(rec.x[-1][:1])
            bss.append(rec.bs[-1][:1])
            kept.append(i)
    if not xs:
        return torch.zeros(0), torch.zeros(0, len(schema.BLENDSHAPE_NAMES)), np.zeros(0, np.int64)
    return torch.cat(xs), torch.cat(bss), np.asarray(kept, np.int64)


def finetune(
    *,
    dataset: str,
    root: str | Path,
    output: str | Path,
    split: str | None = None,
    options: dict[str, Any] | None = None,
    model: str | Path = "default",
    shots: int = 10,
    classes: list[str] | None = None,
    label: str = "compound",
    faces: str = "detect",
    steps: int = 300,
    lr: float = 0.01,
    weight_decay: float = 1e-3,
    unfreeze: list[str] | None = None,
    eval_split: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Few-shot compound head on an ``fbn_fusion`` model; see the module docstring.

    Returns:
        A report: ``output``, ``classes``, ``train_faces``, ``train_accuracy``, ``seconds`` (training
        only), and ``eval_split``/``eval_faces``/``eval_accuracy`` when ``eval_split`` is given.

    Raises:
        FinetuneError: a base model that is not an ``fbn_fusion`` model, a split without labelled
            rows, unknown class names, too few faces, bad numbers.
    """
    import torch
    import torch.nn.functional as F

    from facebehavior.data.datasets import create_dataset
    from facebehavior.models.compound_head import COMPOUND_TASK, CompoundFinetuned
    from facebehavior.models.default import resolve_model
    from facebehavior.models.fusion import BlendshapeFusion
    from facebehavior.models.weights import WeightSpec, load_weights, save_checkpoint

    if shots < 1 or steps < 1 or lr <= 0:
        raise FinetuneError(f"--shots and --steps must be >= 1 and --lr > 0 (got {shots}, {steps}, {lr})")
    if faces not in ("detect", "crops"):
        raise FinetuneError(f"--faces must be detect or crops, got {faces!r}")
    base, spec = load_weights(resolve_model(model))
    if not isinstance(base, BlendshapeFusion):
        raise FinetuneError(
            f"base model {spec.name!r} ({spec.architecture}) is not an fbn_fusion model; few-shot compound "
            "heads are built on the default model's architecture (--model default)"
        )
    adapter = create_dataset(dataset, root, **(options or {}))
    split = split or adapter.splits[0]
    table = adapter.load(split)
    if label not in table.extra:
        raise FinetuneError(f"{dataset}/{split} has no {label!r} labels (it has {sorted(table.extra)})")
    names = _class_names(label, table)
    labels = np.asarray(table.extra[label], np.int64)
    if classes:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise FinetuneError(f"--classes {unknown} are not {label} classes; valid: {list(names)}")
        wanted = [names.index(c) for c in classes]
    else:
        wanted = sorted(int(c) for c in np.unique(labels[labels >= 0]))
    if len(wanted) < 2:
        raise FinetuneError(
            f"{dataset}/{split}: {len(wanted)} {label} class(es) with images; need at least 2"
        )
    rows = _pick_shots(labels, wanted, shots, seed)
    images = adapter.read_images(table, rows)
    x, bs, kept = model_inputs(images, base, spec, faces)
    if len(kept) < 2:
        raise FinetuneError(f"only {len(kept)} of {len(rows)} training images gave a face; nothing to learn")
    if len(kept) < len(rows):
        logger.warning(
            "%d of %d training images gave no face and are skipped", len(rows) - len(kept), len(rows)
        )
    y = torch.as_tensor(np.searchsorted(np.asarray(wanted), labels[rows[kept]]), dtype=torch.long)
    if len(torch.unique(y)) < 2:
        raise FinetuneError("the faces found cover fewer than 2 classes; add images or --shots")

    torch.manual_seed(seed)
    net = CompoundFinetuned(base, [names[c] for c in wanted], blendshapes=faces == "detect")
    net.requires_grad_(False)
    net.compound_head.requires_grad_(True)
    prefixes = list(unfreeze or [])
    for name, p in net.named_parameters():
        if any(name.startswith(pref) for pref in prefixes):
            p.requires_grad_(True)
    t0 = time.perf_counter()
    net.eval()  # frozen BatchNorm statistics and no dropout: the head learns on inference features
    with torch.no_grad():
        feats = net.head_input(base.appearance.forward_features(x), bs)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    for _ in range(steps):
        h = net.head_input(base.appearance.forward_features(x), bs) if prefixes else feats
        logits = net.compound_head(h)
        loss = F.cross_entropy(logits, y) + weight_decay * net.compound_head.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        train_acc = float((net(x, bs)["compound_logits"].argmax(1) == y).float().mean())
    out_spec = WeightSpec(
        name=Path(output).stem,
        architecture="fbn_fusion_compound",
        arch_kwargs={"classes": list(net.classes), "base_kwargs": dict(spec.arch_kwargs),
                     "blendshapes": net.use_blendshapes},  # fmt: skip
        input=spec.input,
        tasks={**{k: tuple(v) for k, v in spec.tasks.items()}, COMPOUND_TASK: net.classes},
        licence=spec.licence,
        source=f"facebehavior finetune: {shots}-shot {label} head on {spec.name} ({dataset}/{split})",
        extra={"finetune": {"base": spec.name, "base_sha256": spec.sha256, "dataset": dataset, "split": split,
                            "shots": shots, "faces": faces, "steps": steps, "lr": lr, "unfreeze": prefixes,
                            "train_faces": int(len(kept)), "train_accuracy": train_acc}},
    )  # fmt: skip
    save_checkpoint(net.state_dict(), out_spec, output)
    report: dict[str, Any] = {
        "output": str(output), "classes": list(net.classes), "train_faces": int(len(kept)),
        "train_accuracy": train_acc, "seconds": seconds,
    }  # fmt: skip
    logger.info("few-shot head: %s", report)
    if eval_split:
        et = adapter.load(eval_split)
        el = np.asarray(et.extra[label], np.int64)
        erows = np.flatnonzero(np.isin(el, wanted))
        ex, ebs, ekept = model_inputs(adapter.read_images(et, erows), base, spec, faces)
        if len(ekept):
            ey = np.searchsorted(np.asarray(wanted), el[erows[ekept]])
            with torch.no_grad():
                pred = net(ex, ebs)["compound_logits"].argmax(1).numpy()
            report.update(eval_split=eval_split, eval_faces=int(len(ekept)),
                          eval_accuracy=float((pred == ey).mean()))  # fmt: skip
    return report
