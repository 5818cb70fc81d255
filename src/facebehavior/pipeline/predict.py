"""Affect-model stage: align each face to the model's template and run the model on the batch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior import schema
from facebehavior.pipeline.base import Batch, SourceState

__all__ = ["Predict", "prediction_columns", "prediction_values"]

logger = logging.getLogger(__name__)

# Faces per affect-model run on the onnxruntime path (bounds its activation memory).
PREDICT_CHUNK = 8

# Errors one face's data can cause while it is aligned (degenerate or absurd keypoints, singular
# matrices, a crop outside any frame): that face is skipped. Anything else propagates.
_PER_FACE_ERRORS = (ValueError, ArithmeticError, IndexError, RuntimeError)


class Predict:
    """Expression / AU / VA columns from an affect model, read through its ``WeightSpec``.

    The spec gives the input size, colour, normalisation, alignment template, extra per-face inputs
    (the blendshapes) and label names; outputs become columns named by ``facebehavior.schema``.
    The model loads on first use.

    Args:
        model: ``"default"`` (the bundled model, if this installation ships it), a bundled
            model's name (``models.default.BUNDLED_MODELS``: ``fbn_fusion``, ``fbn_mobile_ferplus``),
            a checkpoint path, or a ``(model, WeightSpec)`` pair.
        device: torch device.
        backend: ``"auto"`` (``backends.resolve_backend``: onnxruntime on the CPU when it is
            installed), ``"onnx"`` or ``"torch"``. onnxruntime runs a bundled model's shipped
            ``.onnx`` export (no torch import); a checkpoint without one, or a ``(model, spec)``
            pair, runs in PyTorch.
    """

    name = "predict"

    def __init__(
        self,
        model: str | Path | tuple[Any, Any] = "default",
        *,
        device: str = "cpu",
        backend: str = "auto",
    ) -> None:
        from facebehavior.backends import resolve_backend

        self.model_arg = model
        self.device = device
        self.backend = resolve_backend(backend, device)
        if self.backend == "torch":
            import torch  # noqa: F401  (imported before the first batch so its thread scope applies)
        self._onnx: Any = None
        self._model: Any = None
        self._spec: Any = None
        self._resolved = False

    @property
    def spec(self) -> Any:
        """The model's ``WeightSpec`` (``None`` if no bundled model ships); loads the model."""
        self._resolve()
        return self._spec

    def columns(self) -> list[str]:
        return [] if self.spec is None else prediction_columns(self.spec)

    @property
    def overlappable(self) -> bool:
        """Whether the Analyzer may run this stage in its worker thread (``Analyzer(overlap=...)``):
        only without PyTorch (onnxruntime, or no model), whose thread count is process-wide. Loads
        the model."""
        self._resolve()
        return self._model is None

    def _resolve(self) -> None:
        if self._resolved:
            return
        arg = self.model_arg
        if isinstance(arg, tuple):
            model, spec = arg
        else:
            from facebehavior.models.weights import load_weights

            path = _default_model_path() if isinstance(arg, str) and arg == "default" else _model_path(arg)
            if path is None:
                logger.info("no bundled affect model in this installation; writing face columns only")
                self._resolved = True
                return
            onnx = Path(path).with_suffix(".onnx")
            if self.backend == "onnx" and onnx.is_file():
                from facebehavior.backends import OnnxNet
                from facebehavior.models.weights import read_spec

                spec = read_spec(path)
                self._onnx, self._spec = OnnxNet(onnx), spec
                if _onnx_source_sha(self._onnx) not in (None, spec.sha256):
                    raise ValueError(
                        f"{onnx} was exported from another version of {Path(path).name}; re-export it "
                        "with tools/export_onnx.py"
                    )
                self._resolved = True
                return
            model, spec = load_weights(path)
        import torch

        self._model, self._spec = model.to(torch.device(self.device)).eval(), spec
        self._resolved = True

    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        """Align the batch's faces and run the model in one call.

        A face whose alignment fails (e.g. ``DegenerateKeypointsError``), or whose outputs are not
        finite, is dropped and recorded; the batch goes on with the others.
        """
        spec = self.spec
        if spec is None:
            return batch
        if len(batch.faces) == 0:
            return batch.with_columns({c: np.zeros(0, np.float32) for c in self.columns()})
        crops, batch = self._align(batch, spec.input)
        if len(batch.faces) == 0:
            return batch.with_columns({c: np.zeros(0, np.float32) for c in self.columns()})
        values = self.run(crops, batch.faces.blendshapes)
        from facebehavior.models.outputs import nonfinite_rows

        bad = nonfinite_rows(values)
        if bad.size and bad.any():
            # A NaN/Inf output (diverged weights, overflow on an odd input) is never written as if
            # it were a prediction: the face is dropped and recorded like one that cannot be aligned.
            batch = batch.drop(np.flatnonzero(bad), f"model {spec.name!r} gave non-finite outputs")
            values = {k: v[~bad] for k, v in values.items()}
        return batch.with_columns(prediction_values(spec, values))

    def run(self, crops: np.ndarray, blendshapes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Raw head outputs for (K, S, S, 3) uint8 aligned crops (and their (K, 52) blendshapes)."""
        spec = self.spec
        if self._onnx is not None:
            from facebehavior.models.transforms import preprocess_numpy

            x = preprocess_numpy(crops, spec.input)
            feats = []
            for name in spec.input.features:  # the graph's inputs after the crop (tools/export_onnx.py)
                if name != "blendshapes":
                    raise ValueError(f"model {spec.name!r} asks for an unknown input feature {name!r}")
                # NaN rows = no blendshapes: the fused model's image-only path, as ``None`` in torch.
                b = np.full((len(x), 52), np.nan, np.float32) if blendshapes is None else blendshapes
                feats.append(np.asarray(b, np.float32))
            # In chunks: onnxruntime (no memory arena) allocates a run's activations afresh, so a
            # bounded chunk bounds the process's peak memory; the per-run overhead is ~0.1 ms.
            parts = []
            for s in range(0, len(x), PREDICT_CHUNK):
                o = self._onnx(x[s : s + PREDICT_CHUNK], *(f[s : s + PREDICT_CHUNK] for f in feats))
                parts.append(o if isinstance(o, tuple) else (o,))
            outs = [np.concatenate(p) for p in zip(*parts, strict=True)] if parts else []
            return dict(zip(self._onnx.output_names, outs, strict=True))
        import torch

        from facebehavior.models.default import model_features
        from facebehavior.models.transforms import preprocess

        spec = self.spec
        # One preprocessing path for training, evaluation and inference: the spec's input.
        x = preprocess(crops, spec.input).contiguous()
        extra = [None if t is None else t.to(self.device) for t in model_features(spec, len(x), blendshapes)]
        with torch.inference_mode():
            out = self._model(x.to(torch.device(self.device)), *extra)
        if not isinstance(out, dict):
            raise TypeError(
                f"model {spec.name!r} must return a dict of task outputs, got {type(out).__name__}"
            )
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def _align(self, batch: Batch, inp: Any) -> tuple[np.ndarray, Batch]:
        """Aligned (K, S, S, 3) uint8 crops of the faces that can be aligned; the others dropped.

        One batched warp; only if it fails are the faces aligned one by one to find the culprits.
        Errors a face's data can cause (``_PER_FACE_ERRORS``) drop that face; others (an unknown
        template, a wrong type) are not about faces and propagate.
        """
        from facebehavior.face.align import align_faces

        images, faces = batch.frames.images, batch.faces
        kw = {"size": inp.size, "template": inp.template, "numpy": self._onnx is not None}
        try:
            return align_faces(images, faces.detections(), **kw).crops, batch
        except _PER_FACE_ERRORS:
            pass
        crops, bad, reasons = [], [], []
        for i in range(len(faces)):
            try:
                one = align_faces(images, faces.take([i]).detections(), **kw)
            except _PER_FACE_ERRORS as e:
                bad.append(i)
                reasons.append(f"alignment failed: {type(e).__name__}: {e}")
                continue
            crops.append(one.crops)
        empty = np.zeros((0, inp.size, inp.size, 3), np.uint8)
        return (np.concatenate(crops) if crops else empty), batch.drop(np.asarray(bad, np.int64), reasons)


def _onnx_source_sha(net: Any) -> str | None:
    """The sha256 of the safetensors file an export was made from (its metadata), if recorded."""
    return net.session.get_modelmeta().custom_metadata_map.get("facebehavior.source_sha256")


def _default_model_path() -> Path | None:
    """The bundled affect model (``facebehavior.models.default``), or None if this install lacks it."""
    from facebehavior.models.default import default_model_path

    try:
        return default_model_path()
    except FileNotFoundError as e:
        logger.warning("%s", e)
        return None


def _model_path(model: str | Path) -> Path:
    from facebehavior.models.default import resolve_model

    return resolve_model(model)


def _au_number(label: str) -> int | None:
    text = label.upper().removeprefix("AU")
    return int(text) if text.isdigit() else None


_TASK_ORDER = ("expression", "au", "au_intensity", "va")


def _tasks(spec: Any) -> list[tuple[str, tuple[str, ...]]]:
    """The spec's tasks in a fixed output order (checkpoints store them sorted by name)."""
    rank = {t: i for i, t in enumerate(_TASK_ORDER)}
    return sorted(spec.tasks.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))


def prediction_columns(spec: Any) -> list[str]:
    """The columns an affect model with ``spec`` writes, in order."""
    cols: list[str] = []
    for task, labels in _tasks(spec):
        if task == "expression":
            cols += schema.expression_columns(tuple(labels)) + [schema.EXPRESSION_LABEL_COLUMN]
        elif task in ("au", "au_intensity"):
            kind = "prob" if task == "au" else "intensity"
            cols += [schema.au_column(_au_number(lb), kind) for lb in labels]
        elif task == "va":
            cols += [schema.VALENCE_COLUMN, schema.AROUSAL_COLUMN]
        else:
            cols += [f"{task}_{lb}" for lb in labels]
    if _has_compound(spec):
        from facebehavior.compound import COMPOUND_LABEL_COLUMN, compound_columns

        cols += [*compound_columns("rafdb"), COMPOUND_LABEL_COLUMN]
    return cols


def _has_compound(spec: Any) -> bool:
    """Zero-shot compound scores need expression probabilities, AU probabilities and valence."""
    if not all(t in spec.tasks for t in ("expression", "au", "va")):
        return False
    from facebehavior.compound import compound_supported

    return compound_supported(tuple(spec.tasks["expression"]), [_au_number(lb) for lb in spec.tasks["au"]])


def prediction_values(spec: Any, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Name the model's outputs: probabilities for expressions and AUs, intensities, VA, compound."""
    from facebehavior.models.transforms import postprocess

    values = postprocess(spec, out)
    cols: dict[str, np.ndarray] = {}
    for task, labels in _tasks(spec):
        v = values[task]
        if task == "expression":
            for name, k in zip(schema.expression_columns(tuple(labels)), range(len(labels)), strict=True):
                cols[name] = v[:, k]
            cols[schema.EXPRESSION_LABEL_COLUMN] = np.asarray(labels, dtype=object)[v.argmax(axis=1)]
        elif task in ("au", "au_intensity"):
            kind = "prob" if task == "au" else "intensity"
            for k, lb in enumerate(labels):
                cols[schema.au_column(_au_number(lb), kind)] = v[:, k]
        elif task == "va":
            cols[schema.VALENCE_COLUMN] = v[:, 0]
            cols[schema.AROUSAL_COLUMN] = v[:, 1]
        else:
            for k, lb in enumerate(labels):
                cols[f"{task}_{lb}"] = v[:, k]
    if _has_compound(spec):
        from facebehavior.compound import compound_output_columns

        ex_labels = tuple(spec.tasks["expression"])
        au_labels = tuple(spec.tasks["au"])
        ex = values["expression"]
        au = values["au"]
        aus = tuple(_au_number(lb) for lb in au_labels)
        cols.update(compound_output_columns(ex, ex_labels, au, aus, cols[schema.VALENCE_COLUMN]))
    return cols
