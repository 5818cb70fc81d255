"""Typed weight specifications and safe checkpoint I/O.

A checkpoint is one ``.safetensors`` file whose metadata holds a JSON ``WeightSpec``: the
architecture (a ``MODELS`` registry name and its builder kwargs), the input spec
(size, colour, normalisation, alignment template) and the label order of every task head.
The pipeline and the trainers read these values from the spec, never from constants elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "InputSpec",
    "WeightSpec",
    "CheckpointError",
    "sha256_file",
    "save_checkpoint",
    "read_spec",
    "load_weights",
    "packaged_weights_dir",
]

SPEC_KEY = "facebehavior.spec"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not match its architecture."""


@dataclass(frozen=True)
class InputSpec:
    """How to turn an aligned face crop into a model input.

    Attributes:
        size: side of the square crop in pixels (e.g. 96, 112, 176, 224).
        channels: 3 for RGB, 1 for grayscale (luma, ITU-R BT.601).
        mean: per-channel mean subtracted after scaling pixels to [0, 1].
        std: per-channel std divided after subtracting ``mean``.
        template: alignment template name (``facebehavior.face.align.TEMPLATES``).
        features: per-face inputs the model takes besides the crop, in ``forward`` order after
            it, e.g. ``("blendshapes",)`` for the 52 Face Landmarker scores
            (``schema.BLENDSHAPE_NAMES``); empty for image-only models.
    """

    size: int = 112
    channels: int = 3
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.5, 0.5, 0.5)
    template: str = "arcface"
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class WeightSpec:
    """Everything needed to rebuild a model and interpret its outputs.

    Attributes:
        name: human-readable weight name (e.g. ``"fbn_mobile_ferplus"``).
        architecture: ``MODELS`` registry name passed to ``create_model``.
        arch_kwargs: keyword arguments for the builder.
        input: preprocessing spec.
        tasks: task head name → label names in output order, e.g.
            ``{"expression": ("neutral", ...), "au": ("AU01", ...), "va": ("valence", "arousal")}``.
        licence: SPDX identifier of the weights' licence.
        source: where the weights come from (paper, package and version, or training recipe).
        sha256: digest of the weight file (filled in by ``save_checkpoint`` readers).
        extra: free-form JSON-serialisable metadata (metrics, training config).
    """

    name: str
    architecture: str
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    input: InputSpec = field(default_factory=InputSpec)
    tasks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    licence: str = "Apache-2.0"
    source: str = ""
    sha256: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise to a JSON string (sha256 excluded: it describes the file, not the spec)."""
        d = asdict(self)
        d.pop("sha256")
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, sha256: str = "") -> WeightSpec:
        """Parse a spec produced by ``to_json``."""
        d = json.loads(text)
        inp = d.pop("input", {})
        inp = InputSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in inp.items()})
        tasks = {k: tuple(v) for k, v in d.pop("tasks", {}).items()}
        return cls(input=inp, tasks=tasks, sha256=sha256, **d)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(state_dict: Mapping[str, Any], spec: WeightSpec, path: str | Path) -> str:
    """Write a state dict and its spec to one safetensors file.

    Returns:
        The sha256 of the written file.
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={SPEC_KEY: spec.to_json()})
    return sha256_file(path)


def read_spec(path: str | Path) -> WeightSpec:
    """Read the ``WeightSpec`` stored in a checkpoint's metadata (no tensors are loaded)."""
    from safetensors import safe_open

    path = Path(path)
    if path.is_dir():
        inside = sorted(p.name for p in path.glob("*.safetensors"))[:3]
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise CheckpointError(f"{path}: is a folder; pass the .safetensors checkpoint file itself{hint}")
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors raises several types on corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{path}: no facebehavior weight spec in the file's metadata; "
            "export checkpoints with facebehavior.models.weights.save_checkpoint"
        )
    return WeightSpec.from_json(meta[SPEC_KEY], sha256=sha256_file(path))


def load_weights(path: str | Path, *, expected_sha256: str | None = None):  # -> (nn.Module, WeightSpec)
    """Build the model a checkpoint describes and load its weights strictly.

    Args:
        path: a ``.safetensors`` checkpoint written by ``save_checkpoint``.
        expected_sha256: if given, the file's digest must match.

    Returns:
        ``(model, spec)`` with the model in eval mode.

    Raises:
        CheckpointError: missing/corrupt file, digest mismatch, unknown architecture, or tensors
            that do not match the architecture (the message lists the differences).
    """
    from safetensors.torch import load_file

    from facebehavior.models import create_model

    spec = read_spec(path)
    if expected_sha256 and spec.sha256 != expected_sha256:
        raise CheckpointError(
            f"{path}: sha256 {spec.sha256} does not match the expected {expected_sha256}; "
            "the file is corrupt or was replaced"
        )
    try:
        model = create_model(spec.architecture, **dict(spec.arch_kwargs))
    except KeyError as e:
        raise CheckpointError(f"{path}: {e.args[0]}") from None
    state = load_file(str(path))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} shape mismatch(es), e.g. {k}: file {tuple(state[k].shape)} "
                f"vs model {tuple(own[k].shape)}"
            )
        raise CheckpointError(
            f"{path}: weights do not match architecture {spec.architecture!r}: " + "; ".join(parts)
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, spec


def packaged_weights_dir() -> Path:
    """Directory holding the weight files shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "weights"
