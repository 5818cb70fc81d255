"""The bundled default model: where it is, how to load it, how to feed it.

``fbn_fusion`` (default model v2) is a FaceBehaviorNet-style multi-task network: a MobileNetV2
appearance network (expression and AU heads on 48 px grey face crops) fused with the 52 Face
Landmarker blendshapes of the same face (``facebehavior.models.fusion``), with calibrated AU
probabilities and valence/arousal derived from expression and AU activation. It was fine-tuned in
this repository from ``fbn_mobile_ferplus`` (v1, FER2013 + FER+ votes only, still shipped) on
FER2013 and a second corpus of real photos; see ``src/facebehavior/weights/fbn_fusion.md`` for its
data, method, metrics and limits. Its ``WeightSpec`` (read with
:func:`facebehavior.models.weights.read_spec`) carries the input size, colour, normalisation,
alignment template, extra per-face inputs (``input.features``) and every head's label order; the
helpers below only read them from there. Crops become model input through
:func:`facebehavior.models.transforms.preprocess` (re-exported here as ``preprocess``) and outputs
become probabilities through :func:`facebehavior.models.transforms.postprocess`: the one path the
Analyzer, training and evaluation share.

Nothing is loaded at import; :func:`load_default_model` does the work when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facebehavior import schema
from facebehavior.models.transforms import postprocess, preprocess
from facebehavior.models.weights import WeightSpec, load_weights, packaged_weights_dir

if TYPE_CHECKING:
    import torch

__all__ = [
    "APPEARANCE_AUS",
    "resolve_model",
    "BUNDLED_MODELS",
    "DEFAULT_WEIGHTS",
    "DEFAULT_AUS",
    "V1_WEIGHTS",
    "default_model_path",
    "load_default_model",
    "model_features",
    "preprocess",
    "predict",
    "predict_expression_probs",
]

DEFAULT_WEIGHTS = "fbn_fusion.safetensors"
# v1, image-only (FER2013 + FER+): the appearance network v2 was fine-tuned from.
V1_WEIGHTS = "fbn_mobile_ferplus.safetensors"
# The default model's AU outputs: FaceBehaviorNet's 17 AUs, then blink (AU45). AU43 (eyes closed)
# is not an output: one frame cannot tell it from a blink (``temporal.calibration`` can, on video).
DEFAULT_AUS: tuple[int, ...] = tuple(schema.AUS_17) + (45,)
# v1's AU head (and v2's appearance head): the 17, then eyes closed and blink as the geometry layer
# measures them; the FER+ training hooks (``data.weak_targets``) fill these.
APPEARANCE_AUS: tuple[int, ...] = tuple(schema.AUS_17) + (43, 45)


def default_model_path(name: str = DEFAULT_WEIGHTS) -> Path:
    """Path of the packaged default weights (or of ``V1_WEIGHTS``).

    Raises:
        FileNotFoundError: the file is missing (a broken install or a source checkout without it).
    """
    path = packaged_weights_dir() / name
    if not path.is_file():
        card = path.with_suffix(".md").name
        raise FileNotFoundError(
            f"{path}: the default model's weights are missing; reinstall facebehavior, or retrain them "
            f"as src/facebehavior/weights/{card} describes"
        )
    return path


# Affect models that ship with the package, by the name ``--model`` / ``Analyzer(model=...)`` accepts.
BUNDLED_MODELS: dict[str, str] = {
    "default": DEFAULT_WEIGHTS,
    "fbn_fusion": DEFAULT_WEIGHTS,
    "fbn_mobile_ferplus": V1_WEIGHTS,
}


def resolve_model(model: str | Path) -> Path:
    """A bundled model's name (``BUNDLED_MODELS``) or a checkpoint path → the checkpoint's path.

    Raises:
        FileNotFoundError: a bundled model whose file this installation lacks.
        ValueError: a bare name that is not a bundled model; the message lists the names.
    """
    text = str(model)
    if text in BUNDLED_MODELS:
        return default_model_path(BUNDLED_MODELS[text])
    path = Path(text).expanduser()
    if path.is_file() or path.suffix or len(path.parts) > 1:
        return path  # a path: a missing or bad file is reported by load_weights
    names = ", ".join(sorted(BUNDLED_MODELS))
    raise ValueError(
        f"model {text!r}: no such file and not a bundled model ({names}); give a .safetensors path"
    )


def load_default_model(path: str | Path | None = None) -> tuple[torch.nn.Module, WeightSpec]:
    """Build and load the default model (or another checkpoint of the same kind) in eval mode.

    Args:
        path: a checkpoint; ``None`` loads the packaged default.

    Returns:
        ``(model, spec)``; ``model(x)`` (and ``model(x, blendshapes)`` when ``spec.input.features``
        names them) gives ``{"expression": (B, 8) logits, "au": (B, A) logits, "va": (B, 2) in
        [-1, 1]}`` for ``x`` prepared by :func:`preprocess`; :func:`predict` does both steps.
    """
    return load_weights(default_model_path() if path is None else path)


def model_features(
    spec: WeightSpec, n: int, blendshapes: np.ndarray | torch.Tensor | None = None
) -> list[torch.Tensor | None]:
    """The per-face inputs ``spec.input.features`` asks for, in order (``None`` where not given).

    Args:
        spec: the checkpoint's spec.
        n: number of faces.
        blendshapes: ``(n, 52)`` Face Landmarker scores (``schema.BLENDSHAPE_NAMES``), NaN rows for
            faces without them.

    Raises:
        ValueError: the spec names a feature this package cannot supply, or a shape mismatch.
    """
    import torch

    out: list[torch.Tensor | None] = []
    for name in spec.input.features:
        if name != "blendshapes":
            raise ValueError(f"model {spec.name!r} asks for an unknown input feature {name!r}")
        if blendshapes is None:
            out.append(None)
            continue
        b = torch.from_numpy(np.array(blendshapes, np.float32))
        if b.shape != (n, len(schema.BLENDSHAPE_NAMES)):
            raise ValueError(
                f"blendshapes must be ({n}, {len(schema.BLENDSHAPE_NAMES)}), got {tuple(b.shape)}"
            )
        out.append(b)
    return out


def predict(
    model: torch.nn.Module,
    spec: WeightSpec,
    faces: np.ndarray | torch.Tensor,
    batch_size: int = 256,
    blendshapes: np.ndarray | torch.Tensor | None = None,
) -> dict[str, np.ndarray]:
    """Run the model on face crops.

    Args:
        model: a loaded checkpoint (``load_default_model``).
        spec: its spec.
        faces: aligned crops (see :func:`preprocess`).
        batch_size: faces per forward pass.
        blendshapes: ``(N, 52)`` Face Landmarker scores for models whose ``spec.input.features``
            include ``"blendshapes"`` (ignored otherwise); ``None``: the model's image-only path.

    Returns:
        ``{"expression": (N, E) probabilities, "au": (N, A) probabilities, "va": (N, 2)}`` float32
        (the tasks of ``spec.tasks``, in its label orders; values from
        :func:`~facebehavior.models.transforms.postprocess`, as the Analyzer reports them).
    """
    import torch

    out: dict[str, list[np.ndarray]] = {}
    n = len(faces)
    feats = model_features(spec, n, blendshapes)
    for i in range(0, n, batch_size):
        extra = [None if f is None else f[i : i + batch_size] for f in feats]
        with torch.no_grad():
            y = postprocess(spec, model(preprocess(faces[i : i + batch_size], spec), *extra))
        for task, v in y.items():
            out.setdefault(task, []).append(v)
    return {k: np.concatenate(v) for k, v in out.items()}


def predict_expression_probs(
    model: torch.nn.Module, spec: WeightSpec, faces: np.ndarray, blendshapes: np.ndarray | None = None
) -> np.ndarray:
    """``(N, 8)`` expression probabilities in ``schema.EXPRESSIONS_8`` order (for benchmarks).

    Raises:
        ValueError: the checkpoint's expression labels are not a subset of ``EXPRESSIONS_8``.
    """
    labels = spec.tasks["expression"]
    unknown = [lab for lab in labels if lab not in schema.EXPRESSIONS_8]
    if unknown:
        raise ValueError(f"expression labels {unknown} are not in schema.EXPRESSIONS_8")
    p = predict(model, spec, faces, blendshapes=blendshapes)["expression"]
    out = np.zeros((p.shape[0], len(schema.EXPRESSIONS_8)), dtype=np.float32)
    out[:, [schema.EXPRESSIONS_8.index(lab) for lab in labels]] = p
    return out
