"""Typed weight specifications and safe checkpoint I/O.

A checkpoint is one ``.safetensors`` file whose metadata holds a JSON ``WeightSpec``: the
architecture (a ``MODELS`` registry name and its builder kwargs), the input spec
(size, colour, normalisation, alignment template) and the label order of every task head.
The pipeline and the trainers read these values from the spec, never from constants elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = [
    "InputSpec",
    "WeightSpec",
    "CheckpointError",
    "sha256_file",
    "save_checkpoint",
    "read_spec",
    "load_weights",
    "packaged_weights_dir",
    "InitReport",
    "au_parameter_prefixes",
    "init_from_checkpoint",
]

logger = logging.getLogger(__name__)

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

    Raises:
        CheckpointError: a tensor holds NaN or ±Inf (nothing is written): such weights make every
            prediction NaN.
    """
    from safetensors.torch import save_file

    from facebehavior.models.outputs import nonfinite_tensors

    bad = nonfinite_tensors(state_dict)
    if bad:
        raise CheckpointError(
            f"{path}: refusing to write non-finite weights ({len(bad)} tensor(s) with NaN/Inf, e.g. "
            f"{bad[:3]}); the training diverged — lower the learning rate or check the loss terms"
        )
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
        with safe_open(str(path), framework="numpy") as f:
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
        CheckpointError: missing/corrupt file, digest mismatch, unknown architecture, tensors
            that do not match the architecture (the message lists the differences), or
            non-finite weights.
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
    from facebehavior.models.outputs import nonfinite_tensors

    bad = nonfinite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} weight tensor(s) hold NaN/Inf (e.g. {bad[:3]}); the model would predict "
            "NaN — it was exported from a diverged training run"
        )
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, spec


def packaged_weights_dir() -> Path:
    """Directory holding the weight files shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "weights"


@dataclass
class InitReport:
    """What ``init_from_checkpoint`` did, key by key.

    Attributes:
        source: the checkpoint read.
        loaded: target parameter/buffer names set from the checkpoint.
        missing: target names the checkpoint does not provide (kept at their initialisation).
        mismatched: target names whose source tensor has another shape (kept), with both shapes.
        unused: checkpoint names no target name mapped to.
        au_sources: target AU → the source AU its per-AU parameters came from (``None``: kept at
            initialisation; the source has no such AU and ``au_map`` names none).
    """

    source: str
    loaded: list[str]
    missing: list[str]
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]]
    unused: list[str]
    au_sources: dict[int, int | None]

    def summary(self) -> str:
        """One paragraph for the log."""
        parts = [f"initialised from {self.source}: {len(self.loaded)} tensors loaded"]
        if self.missing:
            parts.append(f"{len(self.missing)} missing (kept at init, e.g. {self.missing[:4]})")
        if self.mismatched:
            k = next(iter(self.mismatched))
            parts.append(f"{len(self.mismatched)} shape mismatches kept at init (e.g. {k}: "
                         f"file {self.mismatched[k][0]} vs model {self.mismatched[k][1]})")  # fmt: skip
        if self.unused:
            parts.append(f"{len(self.unused)} checkpoint tensors unused (e.g. {self.unused[:4]})")
        if self.au_sources:
            moved = {a: s for a, s in self.au_sources.items() if s != a}
            parts.append(f"AU heads from source AUs {moved}" if moved else "AU heads matched by AU number")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source": self.source, "loaded": self.loaded, "missing": self.missing,
            "mismatched": {k: [list(a), list(b)] for k, (a, b) in self.mismatched.items()},
            "unused": self.unused, "au_sources": {str(k): v for k, v in self.au_sources.items()},
        }  # fmt: skip


def _au_numbers(codes: Sequence[str]) -> list[int]:
    return [int(str(c).upper().removeprefix("AU")) for c in codes]


def au_parameter_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Names (prefixes) of the parameters whose first axis stacks one block per AU, in the order of
    ``model.task_labels["au"]``: the model's ``au_parameters`` attribute, else its ``heads.heads.au.``
    head (the multi-task heads of the zoo)."""
    own = getattr(model, "au_parameters", None)
    if own is not None:
        return tuple(own)
    return ("heads.heads.au.",) if any(k.startswith("heads.heads.au.") for k in model.state_dict()) else ()


def init_from_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    rename: Mapping[str, str] | None = None,
    au_map: Mapping[int, int] | None = None,
) -> InitReport:
    """Initialise ``model`` from a checkpoint of another (or the same) architecture, non-strictly.

    Every tensor of ``model.state_dict()`` is looked up in the checkpoint under its own name, or
    under ``rename[prefix] + rest`` when the name starts with a ``rename`` key (target prefix →
    source prefix, e.g. ``{"trunk.": "encoder.trunk."}``); it is loaded when the shapes agree.
    Per-AU parameters (``au_parameter_prefixes``) are copied AU by AU: target AU ``a`` takes the
    block of source AU ``au_map.get(a, a)``, so a DISFA model can start from a BP4D one with AUs
    9, 25, 26 taken from 10, 23, 24 (ARL §4.1.2). Everything else keeps its initialisation and is
    listed in the returned report.

    Args:
        model: the model to initialise (modified in place).
        path: an exported ``.safetensors`` checkpoint (its spec gives the source AU order), or a
            Lightning ``.ckpt`` (its ``model.`` state; no per-AU remapping).
        rename: target-name prefix → source-name prefix.
        au_map: target AU number → source AU number.

    Returns:
        The ``InitReport``.

    Raises:
        CheckpointError: unreadable file, or a per-AU remapping asked of a source without AU labels.
    """
    path = Path(path)
    rename = dict(rename or {})
    au_map = {int(k): int(v) for k, v in (au_map or {}).items()}
    if path.suffix == ".ckpt":
        import torch

        raw = torch.load(path, map_location="cpu", weights_only=True).get("state_dict", {})
        src = {k[len("model.") :]: v for k, v in raw.items() if k.startswith("model.")}
        src_aus: list[int] = []
    else:
        from safetensors.torch import load_file

        spec = read_spec(path)
        src = load_file(str(path))
        src_aus = _au_numbers(spec.tasks.get("au", ()))
    from facebehavior.models.outputs import nonfinite_tensors

    bad = nonfinite_tensors(src)
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} tensor(s) hold NaN/Inf (e.g. {bad[:3]}); not an initialisation"
        )
    labels = getattr(model, "task_labels", {}) or {}
    tgt_aus = _au_numbers(labels.get("au", ()))
    if au_map and not src_aus:
        raise CheckpointError(f"{path}: au_map needs a source with AU labels (an exported .safetensors)")
    prefixes = au_parameter_prefixes(model)
    state = model.state_dict()
    new: dict[str, Any] = {}
    loaded, missing, used = [], [], set()
    mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    au_sources: dict[int, int | None] = {}
    for name, t in state.items():
        src_name = name
        for tp, sp in rename.items():
            if name.startswith(tp):
                src_name = sp + name[len(tp) :]
                break
        if src_name not in src:
            missing.append(name)
            continue
        s = src[src_name]
        used.add(src_name)
        per_au = tgt_aus and src_aus and t.dim() > 0 and any(name.startswith(p) for p in prefixes)
        if per_au and t.shape[0] % len(tgt_aus) == 0 and s.shape[0] % len(src_aus) == 0:
            bt, bs = t.shape[0] // len(tgt_aus), s.shape[0] // len(src_aus)
            if bt != bs or tuple(t.shape[1:]) != tuple(s.shape[1:]):
                mismatched[name] = (tuple(s.shape), tuple(t.shape))
                continue
            out = t.clone()
            for i, au in enumerate(tgt_aus):
                want = au_map.get(au, au)
                if want in src_aus:
                    j = src_aus.index(want)
                    out[i * bt : (i + 1) * bt] = s[j * bs : (j + 1) * bs].to(out.dtype)
                    au_sources[au] = want
                else:
                    au_sources.setdefault(au, None)
            new[name] = out
            loaded.append(name)
        elif tuple(s.shape) == tuple(t.shape):
            new[name] = s.to(t.dtype)
            loaded.append(name)
        else:
            mismatched[name] = (tuple(s.shape), tuple(t.shape))
    model.load_state_dict(new, strict=False)
    report = InitReport(
        source=str(path), loaded=loaded, missing=missing, mismatched=mismatched,
        unused=sorted(set(src) - used), au_sources=au_sources,
    )  # fmt: skip
    logger.info("%s", report.summary())
    return report
