"""Sequence helpers: run a per-frame module over ``(B, T, …)`` clips and a GRU over the frames."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

__all__ = ["per_frame", "FrameGRU"]


def per_frame(module: Callable[[torch.Tensor], torch.Tensor], clip: torch.Tensor) -> torch.Tensor:
    """Apply an image module to every frame of a clip as one batch.

    Args:
        module: maps ``(N, C, H, W)`` to ``(N, …)`` (a module or any function of one tensor).
        clip: ``(B, T, C, H, W)``.

    Returns:
        ``(B, T, …)``.
    """
    if clip.dim() != 5:
        raise ValueError(f"expected a clip of shape (B, T, C, H, W), got {tuple(clip.shape)}")
    b, t = clip.shape[:2]
    out = module(clip.reshape(b * t, *clip.shape[2:]))
    return out.reshape(b, t, *out.shape[1:])


class FrameGRU(nn.Module):
    """Batch-first multi-layer GRU returning every step's top-layer output.

    Args:
        in_features: per-frame input size.
        hidden: GRU units per layer (128 in the AffWildNet family).
        num_layers: stacked layers (2 in the AffWildNet family).

    Shapes: ``(B, T, in_features) → (B, T, hidden)``.
    """

    def __init__(self, in_features: int, hidden: int = 128, num_layers: int = 2) -> None:
        super().__init__()
        self.gru = nn.GRU(in_features, hidden, num_layers=num_layers, batch_first=True)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"FrameGRU expects (B, T, features), got {tuple(x.shape)}")
        return self.gru(x)[0]
