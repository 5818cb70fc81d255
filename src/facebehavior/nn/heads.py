"""Task heads: one small module per task, held in an ``nn.ModuleDict`` keyed by task name.

Task names and output conventions are shared by every multi-task model of the zoo:

- ``"expression"``: ``(B, E)`` logits (softmax gives class probabilities, order of
  ``facebehavior.schema.EXPRESSIONS_7`` / ``EXPRESSIONS_8``);
- ``"au"``: ``(B, A)`` logits (sigmoid gives occurrence probabilities), AUs in the order given
  to the model;
- ``"va"``: ``(B, 2)`` valence, arousal; tanh-bounded to [-1, 1] by default, or the plain linear
  output where a paper says so (FaceBehaviorNet's "(linear) output layer").

A single linear layer whose output is split into [expression | au | va] (FaceBehaviorNet's
formulation) is exactly a set of per-task linear layers on the same input, so the heads are
stored per task: this keeps label order attached to the task and lets a task be dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn as nn

__all__ = ["TaskHeads", "VAHead", "VAActivation"]


VAActivation = Literal["tanh", "linear"]


class VAHead(nn.Module):
    """Linear layer to (valence, arousal), then tanh (outputs in [-1, 1]) unless ``activation="linear"``.

    Shapes: ``(B, in_features) → (B, 2)``.
    """

    def __init__(self, in_features: int, activation: VAActivation = "tanh") -> None:
        super().__init__()
        if activation not in ("tanh", "linear"):
            raise ValueError(f"VA activation must be 'tanh' or 'linear', got {activation!r}")
        self.fc = nn.Linear(in_features, 2)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.tanh(y) if self.activation == "tanh" else y


class TaskHeads(nn.Module):
    """Per-task heads over a shared feature vector.

    Args:
        in_features: size of the shared feature vector.
        tasks: task name → output size. ``"va"`` (size 2) gets a ``VAHead``; every other task gets a
            plain linear layer producing logits. Insertion order is kept.
        va_activation: ``"tanh"`` (bounded to [-1, 1]) or ``"linear"`` for the ``"va"`` head.

    Shapes: ``(B, in_features) → {task: (B, size)}``.
    """

    def __init__(
        self, in_features: int, tasks: Mapping[str, int], va_activation: VAActivation = "tanh"
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("TaskHeads needs at least one task")
        heads = {}
        for task, size in tasks.items():
            if size <= 0:
                raise ValueError(f"task {task!r} must have a positive output size, got {size}")
            if task == "va":
                if size != 2:
                    raise ValueError(f"the 'va' head outputs (valence, arousal): size must be 2, got {size}")
                heads[task] = VAHead(in_features, va_activation)
            else:
                heads[task] = nn.Linear(in_features, size)
        self.heads = nn.ModuleDict(heads)
        self.in_features = in_features
        self.va_activation = va_activation

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: head(x) for task, head in self.heads.items()}
