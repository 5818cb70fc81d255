"""Small helpers shared by the loss modules (input checks, graph-connected zeros)."""

from __future__ import annotations

import torch


def check_2d(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (batch, classes), got {tuple(x.shape)}")
    return x


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} {tuple(a.shape)} and {name_b} {tuple(b.shape)} must have the same shape")


def as_mask(mask: torch.Tensor | None, like: torch.Tensor, name: str = "mask") -> torch.Tensor:
    """Float 0/1 (or soft) mask broadcast to ``like``'s shape; all ones when ``mask`` is None."""
    if mask is None:
        return torch.ones_like(like)
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    m = mask.to(device=like.device, dtype=like.dtype)
    if m.ndim == 1 and like.ndim == 2 and m.shape[0] == like.shape[0]:
        m = m[:, None]
    try:
        return torch.broadcast_to(m, like.shape)
    except RuntimeError:
        raise ValueError(
            f"{name} of shape {tuple(mask.shape)} cannot broadcast to {tuple(like.shape)}"
        ) from None


def zero_like_graph(*tensors: torch.Tensor) -> torch.Tensor:
    """A scalar 0 that stays connected to the autograd graph (so ``.backward()`` still works)."""
    total = tensors[0].new_zeros(())
    for t in tensors:
        if t.requires_grad:
            total = total + t.sum() * 0.0
    return total


def upcast(x: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 → float32 (mixed-precision training): CCC's ε and log-clamps underflow in half."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
