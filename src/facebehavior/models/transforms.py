"""The one path between aligned face crops and a model, read from the weights (STYLE rule 13).

Modelled on timm's ``resolve_data_config`` / ``create_transform``: a checkpoint's input rule is
resolved once (:func:`resolve_input`, from its ``WeightSpec.input``, a training recipe's ``input``
or a checkpoint file) and every consumer turns crops into model input with :func:`preprocess` and
raw head outputs into user-facing values with :func:`postprocess`: the Analyzer, training
(``facebehavior.train``: validation batches; augmented batches end in :func:`normalise`),
evaluation (``facebehavior.train.evaluate``), ``facebehavior.models.default.predict``, the tools
and the benchmarks. Two copies of "grey, resize, normalise" drift, and train/inference skew is a
silent accuracy bug: a model trained on grey pixels rounded to uint8 but fed unrounded luma at
inference sees inputs it never saw.

The arithmetic, in order (:func:`preprocess`):

1. ``uint8 / 255`` in float32: the spec's ``mean``/``std`` are defined on [0, 1] pixels.
2. channels: RGB → BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` for 1-channel models (the weights
   FER2013's grey pixels were made with, so a colour crop of a face looks like the grey faces the
   model learnt from), computed in float and never rounded back to uint8; grey → replicated to
   RGB for 3-channel models.
3. resize to ``size × size`` (only when the crop has another size): bilinear, half-pixel centres
   (``align_corners=False``), antialiased when shrinking so that a large crop is averaged rather
   than aliased; aligned crops normally already have the model's size (the aligner warps to it).
4. ``(x - mean) / std`` per channel.

Colour conversion comes before resizing because luma is linear: the order does not change the
result beyond rounding, and converting first resizes one channel instead of three.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebehavior.models.weights import InputSpec, WeightSpec, read_spec

if TYPE_CHECKING:
    import torch

__all__ = [
    "LUMA_BT601",
    "preprocess_numpy",
    "TASK_ACTIVATIONS",
    "match_channels",
    "normalise",
    "postprocess",
    "preprocess",
    "resize",
    "resolve_input",
    "to_unit",
]

# ITU-R BT.601 luma weights (R, G, B): how FER2013's grey pixels were made.
LUMA_BT601: tuple[float, float, float] = (0.299, 0.587, 0.114)

# Task head → the function that turns its raw output into the user-facing value. Expression heads
# output logits of one categorical distribution (softmax over the labels); AU occurrence heads
# output one independent log-odds per AU (sigmoid); every other head (VA in [-1, 1], AU
# intensities, attributes, ...) already outputs its value and is passed through as is.
TASK_ACTIVATIONS: Mapping[str, str] = {"expression": "softmax", "au": "sigmoid"}

# Float crops may come from resampling [0, 1] pixels; a margin this small cannot hide [0, 255] input.
_UNIT_SLACK = 1e-3


def resolve_input(source: Any) -> InputSpec:
    """The input rule of a model, from whatever describes it.

    Args:
        source: an ``InputSpec``; a ``WeightSpec`` (its ``input``); a checkpoint path (``.safetensors``,
            its stored spec); a training recipe's ``input`` (``facebehavior.train.config.InputConfig``)
            or any object or mapping with ``size``, ``channels``, ``mean``, ``std`` (``template`` and
            ``features`` optional).

    Returns:
        The validated ``InputSpec`` (``mean``/``std`` as tuples of floats).

    Raises:
        ValueError: a missing field, a channel count other than 1 or 3, ``mean``/``std`` whose
            length is not the channel count, a non-positive ``std`` or ``size``.
        CheckpointError: ``source`` is a path that is not a readable checkpoint.
    """
    if isinstance(source, WeightSpec):
        source = source.input
    elif isinstance(source, (str, Path)):
        source = read_spec(source).input
    if isinstance(source, InputSpec):
        fields = {k: getattr(source, k) for k in ("size", "channels", "mean", "std", "template", "features")}
    else:
        get = source.get if isinstance(source, Mapping) else lambda k, d=None: getattr(source, k, d)
        missing = [k for k in ("size", "channels", "mean", "std") if get(k) is None]
        if missing:
            raise ValueError(
                f"cannot resolve a model input from {type(source).__name__}: no {', '.join(missing)}; "
                "pass a WeightSpec, an InputSpec, a checkpoint path or a recipe's input"
            )
        fields = {k: get(k) for k in ("size", "channels", "mean", "std")}
        fields["template"] = get("template", InputSpec.template) or InputSpec.template
        fields["features"] = get("features", ()) or ()
    size, channels = int(fields["size"]), int(fields["channels"])
    mean = tuple(float(v) for v in fields["mean"])
    std = tuple(float(v) for v in fields["std"])
    if channels not in (1, 3):
        raise ValueError(f"model input channels must be 1 (grey) or 3 (RGB), got {channels}")
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"model input mean {mean} and std {std} need {channels} value(s) each")
    if min(std) <= 0 or size <= 0:
        raise ValueError(f"model input needs size > 0 and std > 0, got size {size}, std {std}")
    return InputSpec(
        size=size,
        channels=channels,
        mean=mean,
        std=std,
        template=str(fields["template"]),
        features=tuple(fields["features"]),
    )


def _as_nchw(crops: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(N, H, W)``, ``(N, H, W, 1|3)`` or ``(N, 1|3, H, W)`` → ``(N, C, H, W)`` (a view, no copy).

    A 4-D input is channels-last when its last axis is 1 or 3 and its second is not: the aligner
    and the numpy corpora give ``(N, S, S, 3)``, training batches ``(N, C, S, S)``.
    """
    import torch

    x = crops if isinstance(crops, torch.Tensor) else torch.as_tensor(np.asarray(crops))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(
            f"faces must be (N, H, W), (N, H, W, 1|3) or (N, 1|3, H, W) crops; got {tuple(x.shape)}"
        )
    return x


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels ``[0, 255]`` → float32 ``[0, 1]`` (``x / 255``); float input must already be in [0, 1].

    Raises:
        ValueError: another dtype, or float values outside [0, 1] (e.g. pixels still in [0, 255]).
    """
    import torch

    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"face crops must be uint8 [0, 255] or float [0, 1], got {x.dtype}")
    x = x.float()
    if x.numel() and (float(x.min()) < -_UNIT_SLACK or float(x.max()) > 1 + _UNIT_SLACK):
        raise ValueError(
            f"float face crops must hold pixels in [0, 1], got values in [{float(x.min()):.3g}, "
            f"{float(x.max()):.3g}]; pass uint8 pixels or divide by 255"
        )
    return x


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Float ``(N, C, H, W)`` → ``(N, channels, H, W)``: BT.601 luma (grey models) or replication (RGB)."""
    if channels == 1 and x.shape[1] == 3:
        return (x * x.new_tensor(LUMA_BT601).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    return x


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float ``(N, C, H, W)`` → ``(N, C, size, size)``; returned as is when it already has that size.

    Bilinear with half-pixel centres; antialiased when shrinking (a 112 px crop read by a 48 px
    model is averaged, not point-sampled).
    """
    if tuple(x.shape[-2:]) == (size, size):
        return x
    import torch.nn.functional as F

    down = max(x.shape[-2:]) > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=down)


def normalise(x: torch.Tensor, inp: Any) -> torch.Tensor:
    """``(x - mean) / std`` per channel of a float ``(N, C, H, W)`` batch in [0, 1].

    The last step of :func:`preprocess`, and the one training applies after its augmentation
    (which resamples and converts colour itself).

    Args:
        x: ``(N, C, H, W)`` float pixels in [0, 1], ``C`` = the input's channel count.
        inp: anything :func:`resolve_input` takes.
    """
    inp = resolve_input(inp)
    if x.shape[-3] != inp.channels:
        raise ValueError(f"normalise: batch has {x.shape[-3]} channel(s), the model takes {inp.channels}")
    mean = x.new_tensor(inp.mean).view(1, -1, 1, 1)
    std = x.new_tensor(inp.std).view(1, -1, 1, 1)
    return (x - mean) / std


def preprocess(crops: np.ndarray | torch.Tensor, inp: Any) -> torch.Tensor:
    """Aligned face crops → the model's input tensor: THE preprocessing of every consumer.

    Steps and their reasons are in the module docstring: ``/ 255``, BT.601 luma (grey models) or
    grey replication (RGB models) in float, bilinear resize to ``inp.size`` if needed (antialiased
    when shrinking), ``(x - mean) / std``. Runs on the device ``crops`` are on.

    Args:
        crops: ``(N, S, S, 3)`` RGB or ``(N, S, S)`` / ``(N, S, S, 1)`` grey uint8 pixels as the
            aligner (``facebehavior.face.align``) or a corpus gives them, or a ``(N, 1|3, S, S)``
            tensor (training batches); float ``[0, 1]`` pixels are accepted too. Crops must be framed
            like ``inp.template``; any square size is resized to ``inp.size``.
        inp: the model's input rule: anything :func:`resolve_input` takes (a ``WeightSpec``, its
            ``input``, a recipe's ``input``, a checkpoint path).

    Returns:
        ``(N, inp.channels, inp.size, inp.size)`` float32, normalised.

    Raises:
        ValueError: unsupported shape, channel count or dtype, float pixels outside [0, 1], or an
            invalid input rule.
    """
    inp = resolve_input(inp)
    x = to_unit(_as_nchw(crops))
    x = match_channels(x, inp.channels)
    x = resize(x, inp.size)
    return normalise(x, inp)


def preprocess_numpy(crops: np.ndarray, inp: Any) -> np.ndarray:
    """``preprocess`` without torch, for crops already at the model's size (what the aligner gives).

    The same float32 operations in the same order (``/ 255``, BT.601 luma as a left-to-right sum
    of the three weighted channels, or grey replication, then ``(x - mean) / std``), so the result
    is bit-identical to ``preprocess`` (``tests/test_numpy_twins.py``). Crops of another size need
    the resize: use ``preprocess``.

    Args:
        crops: ``(N, S, S, 3)`` RGB or ``(N, S, S)`` / ``(N, S, S, 1)`` grey uint8 pixels, ``S``
            = ``inp.size``.
        inp: anything :func:`resolve_input` takes.

    Returns:
        ``(N, inp.channels, S, S)`` float32, normalised.

    Raises:
        ValueError: another dtype, shape or size.
    """
    inp = resolve_input(inp)
    x = np.asarray(crops)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[1:3] != (inp.size, inp.size):
        raise ValueError(
            f"preprocess_numpy takes (N, {inp.size}, {inp.size}[, 1|3]) crops at the model size; got "
            f"{x.shape}; use preprocess to resize"
        )
    if x.dtype != np.uint8:
        raise ValueError(f"preprocess_numpy takes uint8 pixels, got {x.dtype}")
    x = x.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    if inp.channels == 1 and x.shape[1] == 3:
        w = np.asarray(LUMA_BT601, np.float32)
        x = (x[:, 0:1] * w[0] + x[:, 1:2] * w[1]) + x[:, 2:3] * w[2]
    elif inp.channels == 3 and x.shape[1] == 1:
        x = np.repeat(x, 3, axis=1)
    mean = np.asarray(inp.mean, np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(inp.std, np.float32).reshape(1, -1, 1, 1)
    return (x - mean) / std


def _labels_of(spec: Any) -> Mapping[str, tuple[str, ...]]:
    tasks = getattr(spec, "tasks", None)
    if not isinstance(tasks, Mapping):
        raise TypeError(f"postprocess needs a WeightSpec (with tasks), got {type(spec).__name__}")
    return tasks


def postprocess(spec: Any, raw: Mapping[str, np.ndarray | torch.Tensor]) -> dict[str, np.ndarray]:
    """Raw head outputs → the user-facing value of every task the spec names (``TASK_ACTIVATIONS``).

    Expression: softmax probabilities over ``spec.tasks["expression"]``; AU occurrence: sigmoid
    probabilities; valence/arousal, AU intensities and any other head: as the model outputs them.
    The arithmetic is float32 numpy (softmax after subtracting the row maximum, so large logits
    cannot overflow; a sigmoid of a very negative logit is exactly 0, not a warning).

    Args:
        spec: the checkpoint's ``WeightSpec`` (task names and label orders).
        raw: the model's output dict, task → ``(N, K)`` array or tensor (any leading axes; ``K`` the
            number of labels). Entries the spec does not name (features, attention maps) are ignored.

    Returns:
        Task → ``(N, K)`` float32 values, in ``spec.tasks`` order and label order.

    Raises:
        KeyError: the model returned no output for a task of the spec.
        ValueError: an output's last axis does not match the task's label count.
        TypeError: ``spec`` has no tasks or ``raw`` is not a mapping.
    """
    tasks = _labels_of(spec)
    name = getattr(spec, "name", "?")
    if not isinstance(raw, Mapping):
        raise TypeError(f"model {name!r} must return a dict of task outputs, got {type(raw).__name__}")
    out: dict[str, np.ndarray] = {}
    for task, labels in tasks.items():
        if task not in raw:
            raise KeyError(f"model {name!r} returned no {task!r} output (it returned {sorted(raw)})")
        v = raw[task]
        if hasattr(v, "detach"):  # a tensor (torch is imported only if the model gave tensors)
            v = v.detach().float().cpu().numpy()
        v = np.asarray(v, np.float32)
        v = v.astype(np.float32, copy=False)
        if v.ndim == 0 or v.shape[-1] != len(labels):
            raise ValueError(
                f"model {name!r}: {task!r} has "
                f"{v.shape[-1] if v.ndim else 0} outputs but {len(labels)} labels"
            )
        kind = TASK_ACTIVATIONS.get(task)
        if kind == "softmax":
            e = np.exp(v - v.max(axis=-1, keepdims=True))
            v = e / e.sum(axis=-1, keepdims=True)
        elif kind == "sigmoid":
            with np.errstate(over="ignore"):  # exp(-v) = inf for v << 0 gives exactly 0
                v = 1.0 / (1.0 + np.exp(-v))
        out[task] = v.astype(np.float32, copy=False)
    return out
