"""Task heads: one small module per task, held in an ``nn.ModuleDict`` keyed by task name.

Task names and output conventions are shared by every multi-task model of the zoo:

- ``"expression"``: ``(B, E)`` logits (softmax gives class probabilities, order of
  ``facebehavior.schema.EXPRESSIONS_7`` / ``EXPRESSIONS_8``);
- ``"au"``: ``(B, A)`` logits (sigmoid gives occurrence probabilities), AUs in the order given
  to the model;
- ``"va"``: ``(B, 2)`` valence, arousal in [-1, 1] (tanh-bounded).

A single linear layer whose output is split into [expression | au | va] (FaceBehaviorNet's
formulation) is exactly a set of per-task linear layers on the same input, so the heads are
stored per task: this keeps label order attached to the task and lets a task be dropped.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

__all__ = ["TaskHeads", "VAHead"]


class VAHead(nn.Module):
    """Linear layer to (valence, arousal) followed by tanh, so outputs lie in [-1, 1].

    Shapes: ``(B, in_features) → (B, 2)``.
    """

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x))


class TaskHeads(nn.Module):
    """Per-task heads over a shared feature vector.

    Args:
        in_features: size of the shared feature vector.
        tasks: task name → output size. ``"va"`` (size 2) gets a tanh-bounded head; every other
            task gets a plain linear layer producing logits. Insertion order is kept.

    Shapes: ``(B, in_features) → {task: (B, size)}``.
    """

    def __init__(self, in_features: int, tasks: Mapping[str, int]) -> None:
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
                heads[task] = VAHead(in_features)
            else:
                heads[task] = nn.Linear(in_features, size)
        self.heads = nn.ModuleDict(heads)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {task: head(x) for task, head in self.heads.items()}
