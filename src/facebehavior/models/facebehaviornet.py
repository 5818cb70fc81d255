"""FaceBehaviorNet and the MT-VGG family.

Papers: D. Kollias, V. Sharmanska, S. Zafeiriou, "Face Behavior à la carte: Expressions, Affect and
Action Units in a Single Network" (FaceBehaviorNet) and D. Kollias, S. Zafeiriou et al.'s Aff-Wild
review ("Affect Analysis in-the-wild", §VI-B: MT-VGG, MT-VGG-GRU, A/V-MT-VGG-GRU). Code: Apache-2.0.

FaceBehaviorNet is the 13 conv + 5 max-pool layers of VGG-FACE → FC 4096 → FC 4096 (dropout 0.5)
→ one linear layer whose output is split into 7 expression logits, 17 AU logits and 2 VA values.
The split linear layer is stored as one linear layer per task (``facebehavior.nn.heads.TaskHeads``):
the two are the same function with the same parameter count. The VA outputs are linear as in the
paper (``va_activation="tanh"`` bounds them to [-1, 1], the range of the annotations).

``facebehaviornet_mobile`` keeps those heads on the efficient MobileNetV2 trunk
(``facebehavior.models.mobilenet``) for CPU use on 48–112 px faces.

Every model here returns a dict keyed by task: ``"expression"`` (…, E) logits in
``schema.EXPRESSIONS_7``/``EXPRESSIONS_8`` order, ``"au"`` (…, A) logits in the order of the
``aus`` argument, ``"va"`` (…, 2) valence and arousal (the papers' linear output layer for the VGG
models, tanh-bounded to [-1, 1] for ``facebehaviornet_mobile``). Sequence models return
``(B, T, ·)`` per-frame outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.models.mobilenet import MobileNetV2
from facebehavior.models.vgg import VGGFC, VGGTrunk, as_hw
from facebehavior.nn.heads import TaskHeads, VAActivation
from facebehavior.nn.recurrent import FrameGRU, per_frame

__all__ = [
    "FaceBehaviorNet",
    "task_sizes",
    "task_labels",
    "MTVGGGRU",
    "AVMTVGGGRU",
    "facebehaviornet",
    "facebehaviornet_tiny",
    "facebehaviornet_mobile",
    "facebehaviornet_mobile_tiny",
    "mt_vgg",
    "mt_vgg_tiny",
    "mt_vgg_gru",
    "mt_vgg_gru_tiny",
    "av_mt_vgg_gru",
    "av_mt_vgg_gru_tiny",
]


def task_sizes(num_expressions: int, aus: Sequence[int], va: bool) -> dict[str, int]:
    """Head sizes for the expression / AU / VA tasks; a task of size 0 (or ``va=False``) is omitted.

    Raises:
        ValueError: no task left, or an AU number outside ``schema.AU_CATALOGUE``.
    """
    for au in aus:
        schema.get_au(au)
    if len(set(aus)) != len(aus):
        raise ValueError(f"aus contains duplicates: {tuple(aus)}")
    if num_expressions < 0:
        raise ValueError(f"num_expressions must be >= 0, got {num_expressions}")
    tasks: dict[str, int] = {}
    if num_expressions:
        tasks["expression"] = num_expressions
    if len(aus):
        tasks["au"] = len(aus)
    if va:
        tasks["va"] = 2
    if not tasks:
        raise ValueError("a model needs at least one task: num_expressions > 0, non-empty aus, or va=True")
    return tasks


def task_labels(num_expressions: int, aus: Sequence[int], va: bool) -> dict[str, tuple[str, ...]]:
    """Label names of each head in output order (for ``WeightSpec.tasks``)."""
    labels: dict[str, tuple[str, ...]] = {}
    if num_expressions:
        if num_expressions == 7:
            labels["expression"] = schema.EXPRESSIONS_7
        elif num_expressions == 8:
            labels["expression"] = schema.EXPRESSIONS_8
        else:
            labels["expression"] = tuple(f"class{i}" for i in range(num_expressions))
    if len(aus):
        labels["au"] = tuple(schema.get_au(a).code for a in aus)
    if va:
        labels["va"] = ("valence", "arousal")
    return labels


class FaceBehaviorNet(nn.Module):
    """Shared trunk → neck → per-task heads.

    Args:
        trunk: maps ``(B, C, H, W)`` images to ``(B, trunk_features)`` vectors.
        neck: maps trunk vectors to ``(B, neck_features)`` (FC layers, dropout or identity).
        neck_features: size of the neck output, input of every head.
        tasks: task name → head size (see ``task_sizes``).
        labels: task name → label names, kept as ``self.task_labels``.
        va_activation: ``"tanh"`` (VA in [-1, 1]) or ``"linear"`` (the paper's linear output layer).

    ``forward(x)`` returns ``{"expression": (B, E) logits, "au": (B, A) logits, "va": (B, 2) in
    [-1, 1]}`` (tasks that were configured). ``forward_features(x)`` returns the ``(B, neck_features)``
    shared representation the heads read.
    """

    def __init__(
        self,
        trunk: nn.Module,
        neck: nn.Module,
        neck_features: int,
        tasks: dict[str, int],
        labels: dict[str, tuple[str, ...]] | None = None,
        va_activation: VAActivation = "tanh",
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.heads = TaskHeads(neck_features, tasks, va_activation)
        self.num_features = neck_features
        self.task_labels = dict(labels or {})

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Shared representation ``(B, num_features)``."""
        return self.neck(self.trunk(x))

    def forward_head(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """Task outputs from the shared representation."""
        return self.heads(feats)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


def _mobile(
    *,
    num_expressions: int,
    aus: Sequence[int],
    va: bool,
    in_channels: int,
    width: float,
    dropout: float,
    stem_stride: int,
    last_channels: int | None = None,
) -> FaceBehaviorNet:
    tasks = task_sizes(num_expressions, aus, va)
    trunk = MobileNetV2(
        width=width, in_channels=in_channels, stem_stride=stem_stride, last_channels=last_channels
    )
    model = FaceBehaviorNet(
        trunk, nn.Dropout(dropout), trunk.num_features, tasks, task_labels(num_expressions, aus, va)
    )
    for m in model.heads.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return model


@register_model("facebehaviornet_mobile")
def facebehaviornet_mobile(
    *,
    num_expressions: int = 8,
    aus: Sequence[int] = schema.AUS_17,
    va: bool = True,
    in_channels: int = 3,
    width: float = 1.0,
    dropout: float = 0.2,
    stem_stride: int = 2,
) -> FaceBehaviorNet:
    """FaceBehaviorNet heads on a MobileNetV2 trunk, for CPU inference on 48–112 px faces.

    Args:
        num_expressions: expression classes (8 = ``schema.EXPRESSIONS_8``, 7 = ``EXPRESSIONS_7``,
            0 drops the head).
        aus: FACS numbers of the AU head, in output order (empty drops the head).
        va: whether to add the valence/arousal head.
        in_channels: 1 (grayscale) or 3 (RGB).
        width: trunk width multiplier (1.0 ≈ 2.3 M parameters).
        dropout: dropout before the heads.
        stem_stride: 2 (default) or 1 to keep resolution for 48 px faces (≈4× compute).

    Returns:
        A ``FaceBehaviorNet``; ``forward`` gives ``{"expression": (B, E), "au": (B, A), "va": (B, 2)}``.
    """
    return _mobile(
        num_expressions=num_expressions,
        aus=tuple(aus),
        va=va,
        in_channels=in_channels,
        width=width,
        dropout=dropout,
        stem_stride=stem_stride,
    )


@register_model("facebehaviornet_mobile_tiny")
def facebehaviornet_mobile_tiny(
    *, num_expressions: int = 8, aus: Sequence[int] = schema.AUS_17, va: bool = True, in_channels: int = 3
) -> FaceBehaviorNet:
    """Tiny ``facebehaviornet_mobile`` (width 0.25, 64 final channels) for fast tests."""
    return _mobile(
        num_expressions=num_expressions,
        aus=tuple(aus),
        va=va,
        in_channels=in_channels,
        width=0.25,
        dropout=0.2,
        stem_stride=2,
        last_channels=64,
    )


class _FlatTrunk(nn.Module):
    """VGG conv trunk followed by flattening: ``(B, C, H, W) → (B, C5·⌊H/32⌋·⌊W/32⌋)``."""

    def __init__(self, trunk: VGGTrunk, input_size: tuple[int, int]) -> None:
        super().__init__()
        self.vgg = trunk
        self.input_size = input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"this model was built for {self.input_size} px inputs (the first FC layer's size depends "
                f"on it), got {tuple(x.shape[-2:])}; rebuild it with input_size={tuple(x.shape[-2:])}"
            )
        return self.vgg(x).flatten(1)


def _vgg_multitask(
    *,
    num_expressions: int,
    aus: Sequence[int],
    va: bool,
    input_size: int | tuple[int, int],
    in_channels: int,
    width: float,
    hidden: int,
    dropout: float,
    va_activation: VAActivation = "linear",
) -> FaceBehaviorNet:
    tasks = task_sizes(num_expressions, aus, va)
    size = as_hw(input_size)
    vgg = VGGTrunk(in_channels=in_channels, width=width)
    neck = VGGFC(vgg.flat_features(size), hidden, dropout)
    labels = task_labels(num_expressions, aus, va)
    return FaceBehaviorNet(_FlatTrunk(vgg, size), neck, hidden, tasks, labels, va_activation)


@register_model("facebehaviornet")
def facebehaviornet(
    *,
    num_expressions: int = 7,
    aus: Sequence[int] = schema.AUS_17,
    va: bool = True,
    input_size: int | tuple[int, int] = 96,
    in_channels: int = 3,
    dropout: float = 0.5,
    va_activation: VAActivation = "linear",
) -> FaceBehaviorNet:
    """FaceBehaviorNet: VGG-FACE's 13 conv + 5 pool → FC 4096 → FC 4096 (dropout 0.5) → expression/AU/VA.

    Args:
        num_expressions: expression logits (7 in the paper, ``schema.EXPRESSIONS_7``).
        aus: FACS numbers of the AU logits (the paper's 17, ``schema.AUS_17``).
        va: add the (valence, arousal) output.
        input_size: aligned face size in px (96 in the paper).
        in_channels: 3 (RGB) or 1.
        dropout: after each FC layer.
        va_activation: ``"linear"`` (the paper's "(linear) output layer") or ``"tanh"`` (bounded to [-1, 1]).

    Returns:
        A ``FaceBehaviorNet``: ``{"expression": (B, 7), "au": (B, 17), "va": (B, 2)}``; 50.48 M parameters
        at 96×96.
    """
    return _vgg_multitask(
        num_expressions=num_expressions,
        aus=tuple(aus),
        va=va,
        input_size=input_size,
        in_channels=in_channels,
        width=1.0,
        hidden=4096,
        dropout=dropout,
        va_activation=va_activation,
    )


@register_model("facebehaviornet_tiny")
def facebehaviornet_tiny(
    *,
    num_expressions: int = 7,
    aus: Sequence[int] = schema.AUS_17,
    va: bool = True,
    input_size: int | tuple[int, int] = 96,
    in_channels: int = 3,
    va_activation: VAActivation = "linear",
) -> FaceBehaviorNet:
    """FaceBehaviorNet layout at 1/16 conv width with 64-unit FC layers, for fast tests."""
    return _vgg_multitask(
        num_expressions=num_expressions,
        aus=tuple(aus),
        va=va,
        input_size=input_size,
        in_channels=in_channels,
        width=1 / 16,
        hidden=64,
        dropout=0.5,
        va_activation=va_activation,
    )


@register_model("mt_vgg")
def mt_vgg(
    *,
    num_expressions: int = 7,
    aus: Sequence[int] = schema.DATASET_AU_SUBSETS["affwild2"],
    va: bool = True,
    input_size: int | tuple[int, int] = 96,
    in_channels: int = 3,
    va_activation: VAActivation = "linear",
) -> FaceBehaviorNet:
    """MT-VGG (Aff-Wild review §VI-B): FaceBehaviorNet's layout with Aff-Wild2's 8 AUs.

    Returns ``{"expression": (B, 7), "au": (B, 8), "va": (B, 2)}``.
    """
    return _vgg_multitask(
        num_expressions=num_expressions,
        aus=tuple(aus),
        va=va,
        input_size=input_size,
        in_channels=in_channels,
        width=1.0,
        hidden=4096,
        dropout=0.5,
        va_activation=va_activation,
    )


@register_model("mt_vgg_tiny")
def mt_vgg_tiny(*, input_size: int | tuple[int, int] = 96) -> FaceBehaviorNet:
    """Tiny MT-VGG (1/16 conv width, 64-unit FC layers) for fast tests."""
    return _vgg_multitask(
        num_expressions=7,
        aus=schema.DATASET_AU_SUBSETS["affwild2"],
        va=True,
        input_size=input_size,
        in_channels=3,
        width=1 / 16,
        hidden=64,
        dropout=0.5,
    )


class _FrameEncoder(nn.Module):
    """One MT-VGG-GRU stream without its output layer: per-frame VGG trunk → FC (ReLU, dropout) → GRU.

    Shapes: ``(B, T, C, H, W) → (B, T, gru_hidden)``.
    """

    def __init__(
        self,
        *,
        input_size: tuple[int, int],
        in_channels: int,
        width: float,
        fc: int,
        gru_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        vgg = VGGTrunk(in_channels=in_channels, width=width)
        self.trunk = _FlatTrunk(vgg, input_size)
        self.fc = nn.Sequential(
            nn.Linear(vgg.flat_features(input_size), fc), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.gru = FrameGRU(fc, gru_hidden, 2)
        self.out_features = gru_hidden

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.gru(per_frame(lambda frames: self.fc(self.trunk(frames)), clip))


class MTVGGGRU(nn.Module):
    """MT-VGG-GRU: per-frame VGG trunk → first FC (4096) → 2-layer GRU (128) → expression/AU/VA.

    ``forward(clip)`` takes ``(B, T, C, H, W)`` aligned faces and returns per-frame outputs
    ``{"expression": (B, T, E) logits, "au": (B, T, A) logits, "va": (B, T, 2)}`` (linear VA output,
    as MT-VGG's).
    """

    def __init__(
        self,
        encoder: _FrameEncoder,
        tasks: dict[str, int],
        labels: dict[str, tuple[str, ...]],
        va_activation: VAActivation = "linear",
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.heads = TaskHeads(encoder.out_features, tasks, va_activation)
        self.task_labels = labels

    def forward(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.encoder(clip))


class AVMTVGGGRU(nn.Module):
    """A/V-MT-VGG-GRU: a visual and an audio MT-VGG-GRU stream (without output layers), their
    128-d outputs concatenated (256-d) and fused by a 2-layer GRU (128) → expression/AU/VA.

    ``forward(clip, spectrogram)``: ``clip`` is ``(B, T, C, H, W)`` faces; ``spectrogram`` is
    ``(B, T, C_a, H_a, W_a)``, one spectrogram image per video frame (the paper computes 33 ms
    windows with 11 ms overlap on 44.1 kHz mono audio, values scaled to [-1, 1]; the patch of
    spectrogram frames aligned with each video frame is resized to ``audio_size``). Returns
    ``{"expression": (B, T, E), "au": (B, T, A), "va": (B, T, 2)}``.

    Two-phase training (review §VI-B: "first the audio/visual streams were trained independently
    and then the audiovisual network was trained end-to-end"): in phase ``"streams"`` each stream
    has its own MT-VGG-GRU output layer (``stream_heads``) and ``forward`` returns the visual
    stream's outputs under the task names and the audio stream's as ``audio/<task>`` (the trainer
    sums both streams' losses; they share no parameter, so each learns as if alone); the fusion GRU
    and the output layer are frozen. Phase ``"joint"`` (the default, inference) is the network
    above, trained end to end, with the stream heads frozen (discarded). The trainer enters the
    phase named like the recipe stage (``set_phase``).
    """

    input_names = ("image", "spectrogram")  # positional inputs as batch keys (train.data.input_names)
    phases = ("streams", "joint")

    def __init__(
        self,
        visual: _FrameEncoder,
        audio: _FrameEncoder,
        gru_hidden: int,
        tasks: dict[str, int],
        labels: dict[str, tuple[str, ...]],
        va_activation: VAActivation = "linear",
    ) -> None:
        super().__init__()
        self.visual = visual
        self.audio = audio
        self.fusion = FrameGRU(visual.out_features + audio.out_features, gru_hidden, 2)
        self.heads = TaskHeads(gru_hidden, tasks, va_activation)
        self.stream_heads = nn.ModuleDict(
            {"visual": TaskHeads(visual.out_features, tasks, va_activation),
             "audio": TaskHeads(audio.out_features, tasks, va_activation)}
        )  # fmt: skip
        self.task_labels = labels
        self.audio_size = audio.trunk.input_size  # (H, W) of a spectrogram image (io.audio.AudioConfig.size)
        self.set_phase("joint")

    def set_phase(self, phase: str) -> None:
        """Enter training phase ``"streams"`` or ``"joint"`` (``""``: joint); freezes the parts the
        phase does not use."""
        phase = phase or "joint"
        if phase not in self.phases:
            raise ValueError(f"A/V-MT-VGG-GRU phases are {self.phases}; got {phase!r} (name the stages so)")
        self.phase = phase
        streams = phase == "streams"
        self.stream_heads.requires_grad_(streams)
        self.fusion.requires_grad_(not streams)
        self.heads.requires_grad_(not streams)

    def forward(self, clip: torch.Tensor, spectrogram: torch.Tensor) -> dict[str, torch.Tensor]:
        if spectrogram.shape[:2] != clip.shape[:2]:
            raise ValueError(
                f"spectrogram (B, T) {tuple(spectrogram.shape[:2])} must match the clip's "
                f"{tuple(clip.shape[:2])}: one spectrogram image per video frame"
            )
        v, a = self.visual(clip), self.audio(spectrogram)
        if self.phase == "streams":
            out = self.stream_heads["visual"](v)
            out.update({f"audio/{k}": y for k, y in self.stream_heads["audio"](a).items()})
            return out
        return self.heads(self.fusion(torch.cat([v, a], dim=-1)))


_AFFWILD2_AUS = schema.DATASET_AU_SUBSETS["affwild2"]


@register_model("mt_vgg_gru")
def mt_vgg_gru(
    *,
    num_expressions: int = 7,
    aus: Sequence[int] = _AFFWILD2_AUS,
    va: bool = True,
    input_size: int | tuple[int, int] = 96,
    in_channels: int = 3,
    dropout: float = 0.5,
    va_activation: VAActivation = "linear",
) -> MTVGGGRU:
    """MT-VGG-GRU (Aff-Wild review §VI-B) over ``(B, T, 3, 96, 96)`` clips; per-frame outputs."""
    enc = _FrameEncoder(
        input_size=as_hw(input_size),
        in_channels=in_channels,
        width=1.0,
        fc=4096,
        gru_hidden=128,
        dropout=dropout,
    )
    return MTVGGGRU(
        enc, task_sizes(num_expressions, aus, va), task_labels(num_expressions, aus, va), va_activation
    )


@register_model("mt_vgg_gru_tiny")
def mt_vgg_gru_tiny(*, input_size: int | tuple[int, int] = 96) -> MTVGGGRU:
    """Tiny MT-VGG-GRU (1/16 conv width, 64-unit FC, 16-unit GRU) for fast tests."""
    enc = _FrameEncoder(
        input_size=as_hw(input_size), in_channels=3, width=1 / 16, fc=64, gru_hidden=16, dropout=0.5
    )
    return MTVGGGRU(enc, task_sizes(7, _AFFWILD2_AUS, True), task_labels(7, _AFFWILD2_AUS, True))


@register_model("av_mt_vgg_gru")
def av_mt_vgg_gru(
    *,
    num_expressions: int = 7,
    aus: Sequence[int] = _AFFWILD2_AUS,
    va: bool = True,
    input_size: int | tuple[int, int] = 96,
    audio_size: int | tuple[int, int] = 96,
    audio_channels: int = 1,
    dropout: float = 0.5,
    va_activation: VAActivation = "linear",
) -> AVMTVGGGRU:
    """A/V-MT-VGG-GRU (Aff-Wild review §VI-B): ``forward(clip, spectrogram)``, per-frame outputs."""
    visual = _FrameEncoder(
        input_size=as_hw(input_size), in_channels=3, width=1.0, fc=4096, gru_hidden=128, dropout=dropout
    )
    audio = _FrameEncoder(
        input_size=as_hw(audio_size),
        in_channels=audio_channels,
        width=1.0,
        fc=4096,
        gru_hidden=128,
        dropout=dropout,
    )
    tasks, labels = task_sizes(num_expressions, aus, va), task_labels(num_expressions, aus, va)
    return AVMTVGGGRU(visual, audio, 128, tasks, labels, va_activation)


@register_model("av_mt_vgg_gru_tiny")
def av_mt_vgg_gru_tiny(
    *, input_size: int | tuple[int, int] = 96, audio_size: int | tuple[int, int] = 64
) -> AVMTVGGGRU:
    """Tiny A/V-MT-VGG-GRU for fast tests."""
    visual = _FrameEncoder(
        input_size=as_hw(input_size), in_channels=3, width=1 / 16, fc=64, gru_hidden=16, dropout=0.5
    )
    audio = _FrameEncoder(
        input_size=as_hw(audio_size), in_channels=1, width=1 / 16, fc=64, gru_hidden=16, dropout=0.5
    )
    return AVMTVGGGRU(
        visual, audio, 16, task_sizes(7, _AFFWILD2_AUS, True), task_labels(7, _AFFWILD2_AUS, True)
    )
