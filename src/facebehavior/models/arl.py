"""ARL and iARL: attention and relation learning for AU detection / intensity estimation.

Paper: Z. Shao, Z. Liu, J. Cai, Y. Wu, L. Ma, "Facial Action Unit Detection Using Attention and
Relation Learning", IEEE Transactions on Affective Computing, 2019. Code: Apache-2.0 (written from
the paper; no weights shipped).

Architecture (l = 176, c = 8 by default):
- hierarchical multi-scale region learning: two ``HierarchicalRegionLayer`` blocks (3 → 4c at l,
  4c → 8c at l/2), each followed by a 2×2 max pool → ``(B, 8c, l/4, l/4)``;
- per AU i (all AU branches run together as grouped convolutions, group = AU):
  f1 = conv; channel attention v_c = σ(W·GAP(f1)) (8c×8c FC, no bias); f2 = conv(f1);
  f_c = v_c * f2; f3 = conv(f_c); f3s = conv(f3) (2c pixel features); v0s = σ(1-channel conv(f3s));
  v_s = CRF(v0s, f3s) (``facebehavior.nn.crf.DenseCRF``, exact over all (l/4)² pixel pairs,
  5 mean-field iterations, one learnable Potts-initialised compatibility per AU);
  f4 = conv(f3); f_s = v_s ⋆ f4; f_r = GAP(conv(f_s)) (8c); logit_i = w_i·f_r + b_i.

All convolutions are 3×3, stride 1, pad 1, followed by BatchNorm and ReLU (the paper's Caffe nets
use BN; the 1-channel attention conv is followed by the sigmoid only).

``forward(x)`` with ``x`` of shape ``(B, 3, l, l)`` returns:
- ``"au"``: ``(B, n)`` logits (σ gives occurrence probabilities), AUs in the order of ``aus``;
- ``"attention"``: ``(B, n, l/4, l/4)`` CRF-refined spatial attention v_s in [0, 1] (to visualise);
- ``"attention_init"``: ``(B, n, l/4, l/4)`` initial attention v0s;
- ``"crf_energy"``: ``(B, n)`` expected CRF energy E(Q = v_s) of each AU (sum over pixels/pairs,
  nats) — ARL's objective is E_det + Σ_i E_i^crf;
- iARL only, ``"au_intensity"``: ``(B, n)`` intensities σ(logit)·L with L = 5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.nn.crf import DenseCRF
from facebehavior.nn.region import HierarchicalRegionLayer, conv_bn_relu

__all__ = ["ARL", "arl", "arl_tiny", "iarl", "iarl_tiny"]


class ARL(nn.Module):
    """ARL / iARL network (see the module docstring for the outputs).

    Args:
        aus: FACS numbers of the AU branches, in output order.
        input_size: ``l``, side of the square input in px (multiple of 16; 176 in the paper).
        c: channel hyperparameter (8 in the paper).
        in_channels: input channels.
        crf: the CRF refining each AU's attention (``groups`` must equal ``len(aus)``).
        max_intensity: ``L`` for iARL's ``"au_intensity"`` output; ``None`` for AU detection.
    """

    def __init__(
        self,
        *,
        aus: Sequence[int],
        input_size: int = 176,
        c: int = 8,
        in_channels: int = 3,
        crf: DenseCRF | None = None,
        max_intensity: float | None = None,
    ) -> None:
        super().__init__()
        for au in aus:
            schema.get_au(au)
        if not aus:
            raise ValueError("ARL needs at least one AU")
        if input_size % 16:
            raise ValueError(f"ARL's input_size must be a multiple of 16 (region grids), got {input_size}")
        n = len(aus)
        self.aus = tuple(aus)
        self.task_labels = {"au": tuple(schema.get_au(a).code for a in aus)}
        self.input_size = input_size
        self.in_channels = in_channels
        self.max_intensity = max_intensity
        c8 = 8 * c
        self.region = nn.Sequential(
            HierarchicalRegionLayer(in_channels, 4 * c),
            nn.MaxPool2d(2, 2),
            HierarchicalRegionLayer(4 * c, c8),
            nn.MaxPool2d(2, 2),
        )
        self.num_aus = n
        self.c8 = c8
        self.conv_f1 = conv_bn_relu(c8, n * c8)  # shared input, one 8c-channel slice per AU
        self.channel_fc = nn.Parameter(torch.empty(n, c8, c8))  # W^(1c) per AU, no bias
        nn.init.kaiming_uniform_(self.channel_fc, a=5**0.5)
        self.conv_f2 = conv_bn_relu(n * c8, n * c8, groups=n)
        self.conv_f3 = conv_bn_relu(n * c8, n * c8, groups=n)
        self.conv_f3s = conv_bn_relu(n * c8, n * 2 * c, groups=n)
        self.conv_v0 = nn.Conv2d(n * 2 * c, n, 3, 1, 1, groups=n)
        self.crf = crf if crf is not None else DenseCRF(groups=n)
        if self.crf.groups != n:
            raise ValueError(
                f"the CRF must have groups={n} (one compatibility per AU), got {self.crf.groups}"
            )
        self.conv_f4 = conv_bn_relu(n * c8, n * c8, groups=n)
        self.conv_fr = conv_bn_relu(n * c8, n * c8, groups=n)
        self.head_weight = nn.Parameter(torch.empty(n, c8))
        self.head_bias = nn.Parameter(torch.zeros(n))
        nn.init.normal_(self.head_weight, 0, 0.01)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ARL expects (B, {self.in_channels}, {self.input_size}, {self.input_size}) input, "
                f"got {tuple(x.shape)}"
            )
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"ARL was built for {self.input_size}×{self.input_size} faces, got {tuple(x.shape[-2:])}; "
                f"rebuild it with input_size={x.shape[-1]} (a multiple of 16)"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Shared multi-scale region features ``(B, 8c, l/4, l/4)``."""
        self._check(x)
        return self.region(x)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.forward_features(x)
        b, _, h, w = feats.shape
        n, c8 = self.num_aus, self.c8
        f1 = self.conv_f1(feats)  # (B, n·8c, h, w)
        gap = f1.mean((2, 3)).reshape(b, n, c8)
        v_c = torch.sigmoid(torch.einsum("bnc,ndc->bnd", gap, self.channel_fc))  # (B, n, 8c)
        f2 = self.conv_f2(f1)
        f_c = f2 * v_c.reshape(b, n * c8, 1, 1)
        f3 = self.conv_f3(f_c)
        f3s = self.conv_f3s(f3)  # (B, n·2c, h, w)
        v0 = torch.sigmoid(self.conv_v0(f3s))  # (B, n, h, w)
        maps = v0.reshape(b * n, h, w)
        pix = f3s.reshape(b * n, -1, h, w)
        kernel = self.crf.kernels(pix)
        q = self.crf.mean_field(maps, pix, kernel)[-1]
        energy = self.crf.energy(maps, pix, q, kernel=kernel).reshape(b, n)
        v_s = q[..., 1].reshape(b, n, h, w)
        f4 = self.conv_f4(f3)
        f_s = f4 * v_s.repeat_interleave(c8, dim=1)
        f_r = self.conv_fr(f_s).mean((2, 3)).reshape(b, n, c8)
        logits = (f_r * self.head_weight).sum(-1) + self.head_bias
        out = {"au": logits, "attention": v_s, "attention_init": v0, "crf_energy": energy}
        if self.max_intensity is not None:
            out["au_intensity"] = torch.sigmoid(logits) * self.max_intensity
        return out


_BP4D = schema.DATASET_AU_SUBSETS["bp4d"]
_DISFA_INT = schema.DATASET_AU_SUBSETS["disfa_intensity"]


def _crf(n: int, crf_iters: int) -> DenseCRF:
    return DenseCRF(
        num_iters=crf_iters, w_appearance=5.0, w_smooth=3.0, alpha=160.0, beta=3.0, gamma=3.0, groups=n
    )


@register_model("arl")
def arl(
    *, aus: Sequence[int] = _BP4D, input_size: int = 176, c: int = 8, crf_iters: int = 5, in_channels: int = 3
) -> ARL:
    """ARL for AU detection (defaults: BP4D's 12 AUs, l = 176, c = 8, 5 CRF iterations)."""
    return ARL(
        aus=tuple(aus), input_size=input_size, c=c, in_channels=in_channels, crf=_crf(len(aus), crf_iters)
    )


@register_model("arl_tiny")
def arl_tiny(*, aus: Sequence[int] = (1, 2, 12), input_size: int = 48) -> ARL:
    """Tiny ARL (c = 2, 48 px input, 3 AUs, 2 CRF iterations) for fast tests."""
    return ARL(aus=tuple(aus), input_size=input_size, c=2, crf=_crf(len(aus), 2))


@register_model("iarl")
def iarl(
    *,
    aus: Sequence[int] = _DISFA_INT,
    input_size: int = 176,
    c: int = 8,
    crf_iters: int = 5,
    max_intensity: float = 5.0,
    in_channels: int = 3,
) -> ARL:
    """iARL for AU intensity (defaults: DISFA's 12 intensity AUs, L = 5); adds ``"au_intensity"``."""
    return ARL(
        aus=tuple(aus),
        input_size=input_size,
        c=c,
        in_channels=in_channels,
        crf=_crf(len(aus), crf_iters),
        max_intensity=max_intensity,
    )


@register_model("iarl_tiny")
def iarl_tiny(*, aus: Sequence[int] = (6, 12), input_size: int = 48) -> ARL:
    """Tiny iARL for fast tests."""
    return ARL(aus=tuple(aus), input_size=input_size, c=2, crf=_crf(len(aus), 2), max_intensity=5.0)
