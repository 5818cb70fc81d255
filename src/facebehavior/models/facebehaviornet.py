"""FaceBehaviorNet and the MT-VGG family.

Papers: D. Kollias, V. Sharmanska, S. Zafeiriou, "Face Behavior à la carte: Expressions, Affect and
Action Units in a Single Network" (FaceBehaviorNet) and D. Kollias, S. Zafeiriou et al.'s Aff-Wild
review ("Affect Analysis in-the-wild", §VI-B: MT-VGG, MT-VGG-GRU, A/V-MT-VGG-GRU). Code: Apache-2.0.

FaceBehaviorNet is the 13 conv + 5 max-pool layers of VGG-FACE → FC 4096 → FC 4096 (dropout 0.5)
→ one linear layer whose output is split into 7 expression logits, 17 AU logits and 2 VA values.
The split linear layer is stored as one linear layer per task (``facebehavior.nn.heads.TaskHeads``):
the two are the same function with the same parameter count. VA values are tanh-bounded to
[-1, 1], the range of the annotations.

``facebehaviornet_mobile`` keeps those heads on the efficient MobileNetV2 trunk
(``facebehavior.models.mobilenet``) for CPU use on 48–112 px faces.

Every model here returns a dict keyed by task: ``"expression"`` (…, E) logits in
``schema.EXPRESSIONS_7``/``EXPRESSIONS_8`` order, ``"au"`` (…, A) logits in the order of the
``aus`` argument, ``"va"`` (…, 2) valence and arousal in [-1, 1]. Sequence models return
``(B, T, ·)`` per-frame outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.models.mobilenet import MobileNetV2
from facebehavior.nn.heads import TaskHeads

__all__ = [
    "FaceBehaviorNet",
    "task_sizes",
    "task_labels",
    "facebehaviornet_mobile",
    "facebehaviornet_mobile_tiny",
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
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.heads = TaskHeads(neck_features, tasks)
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
