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
  v_s = CRF(v0s, f3s) (``facebehavior.nn.crf.DenseCRF``: exact over all (l/4)² pixel pairs with
  normalised kernels of total weight 1 in the paper's w1 : w2 = 5 : 3, 5 mean-field iterations,
  one Potts-initialised compatibility per AU clamped to [0, 4]); f4 = conv(f3);
  f_s = ReLU(BN(v_s ⋆ f4)); f_r = GAP(conv(f_s)) (8c); logit_i = w_i·f_r + b_i.

The convolutions are 3×3, stride 1, pad 1. Up to f3 each is followed by BatchNorm and ReLU (the
paper's Caffe nets use BN); f3s by BN and tanh, and f4 / the conv before GAP by nothing, with BN +
ReLU after the attention product — the layer order of the authors' Caffe model
(``BP4D_train_val.prototxt``). Bounded pixel features keep the CRF's appearance kernel
``exp(−|Δf|²/2β²)`` (β = 3) from collapsing to the identity. The 1-channel attention conv is
followed by the sigmoid only. ``set_au_prior`` starts each AU's logit at its base rate.

``attention`` selects the paper's ablations (Table 5): ``"crf"`` (ARL), ``"spatial"`` (WCS: channel +
spatial attention, v_s = v0s), ``"channel"`` (WC) and ``"none"`` (W: f_s = f4 with f_c = f2).

``forward(x)`` with ``x`` of shape ``(B, 3, l, l)`` returns:
- ``"au"``: ``(B, n)`` logits (σ gives occurrence probabilities), AUs in the order of ``aus``;
- ``"attention"``: ``(B, n, l/4, l/4)`` refined spatial attention v_s in [0, 1] (to visualise;
  ``"crf"`` and ``"spatial"`` only);
- ``"attention_init"``: ``(B, n, l/4, l/4)`` initial attention v0s (same);
- ``"crf_energy"``: ``(B, n)`` expected CRF energy E_i(Q = v_s) of each AU **per pixel** (E_i / m,
  nats; ``"crf"`` only). Dividing by m = (l/4)² puts the relation term on the scale of the
  per-AU detection loss whatever the input size; ARL's objective is E_det + λ Σ_i E_i / m (the
  recipes set λ = 1 with ``loss.outputs.crf_energy``). Its gradient reaches the CRF's pixel
  features only (``DenseCRF.energy``, ``energy_wrt="features"``);
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


ATTENTION_MODES = ("crf", "spatial", "channel", "none")


class ARL(nn.Module):
    """ARL / iARL network (see the module docstring for the outputs).

    Every AU branch is a slice of grouped layers: the parameters named in ``au_parameters`` stack
    one block per AU along their first axis, in ``aus`` order (``init_from_checkpoint`` moves
    them AU by AU).

    Args:
        aus: FACS numbers of the AU branches, in output order.
        input_size: ``l``, side of the square input in px (multiple of 16; 176 in the paper).
        c: channel hyperparameter (8 in the paper).
        in_channels: input channels.
        crf: the CRF refining each AU's attention (``groups`` must equal ``len(aus)``); used when
            ``attention="crf"``.
        max_intensity: ``L`` for iARL's ``"au_intensity"`` output; ``None`` for AU detection.
        attention: ``"crf"`` (ARL), ``"spatial"``, ``"channel"`` or ``"none"`` (the paper's ablations).
    """

    au_parameters = (
        "conv_f1.", "channel_fc", "conv_f2.", "conv_f3.", "conv_f3s.", "conv_v0.", "crf.compatibility",
        "conv_f4.", "bn_s.", "conv_fr.", "head_weight", "head_bias",
    )  # fmt: skip

    def __init__(
        self,
        *,
        aus: Sequence[int],
        input_size: int = 176,
        c: int = 8,
        in_channels: int = 3,
        crf: DenseCRF | None = None,
        max_intensity: float | None = None,
        attention: str = "crf",
    ) -> None:
        super().__init__()
        for au in aus:
            schema.get_au(au)
        if not aus:
            raise ValueError("ARL needs at least one AU")
        if input_size % 16:
            raise ValueError(f"ARL's input_size must be a multiple of 16 (region grids), got {input_size}")
        if attention not in ATTENTION_MODES:
            raise ValueError(f"attention must be one of {ATTENTION_MODES}, got {attention!r}")
        n = len(aus)
        self.aus = tuple(aus)
        codes = tuple(schema.get_au(a).code for a in aus)
        self.task_labels = {"au": codes}
        if max_intensity is not None:  # iARL: its intensity head is a task of the exported spec too
            self.task_labels["au_intensity"] = codes
        self.input_size = input_size
        self.in_channels = in_channels
        self.max_intensity = max_intensity
        self.attention = attention
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
        if attention != "none":
            self.channel_fc = nn.Parameter(torch.empty(n, c8, c8))  # W^(1c) per AU, no bias
            nn.init.kaiming_uniform_(self.channel_fc, a=5**0.5)
        self.conv_f2 = conv_bn_relu(n * c8, n * c8, groups=n)
        self.conv_f3 = conv_bn_relu(n * c8, n * c8, groups=n)
        if attention in ("crf", "spatial"):
            self.conv_f3s = nn.Sequential(
                nn.Conv2d(n * c8, n * 2 * c, 3, 1, 1, groups=n, bias=False),
                nn.BatchNorm2d(n * 2 * c),
                nn.Tanh(),
            )
            self.conv_v0 = nn.Conv2d(n * 2 * c, n, 3, 1, 1, groups=n)
        if attention == "crf":
            self.crf = crf if crf is not None else DenseCRF(groups=n)
            if self.crf.groups != n:
                raise ValueError(
                    f"the CRF must have groups={n} (one compatibility per AU), got {self.crf.groups}"
                )
        # As in the authors' Caffe model: f4 is a plain conv; BN + ReLU follow the attention product
        # (so only the attention's spatial contrast matters, not its level), then a plain conv + GAP.
        self.conv_f4 = nn.Conv2d(n * c8, n * c8, 3, 1, 1, groups=n)
        self.bn_s = nn.BatchNorm2d(n * c8)
        self.conv_fr = nn.Conv2d(n * c8, n * c8, 3, 1, 1, groups=n)
        self.head_weight = nn.Parameter(torch.empty(n, c8))
        self.head_bias = nn.Parameter(torch.zeros(n))
        nn.init.normal_(self.head_weight, 0, 0.01)

    def set_au_prior(self, rates: Sequence[float]) -> None:
        """Start every AU's logit at the log-odds of its training occurrence rate.

        The training module calls this before the first step. Started at logit 0, a branch's first
        updates only lower its output towards the base rate — through the attention too, which
        then learns to switch *off* where its AU's evidence is (the synthetic check of
        ``benchmarks/arl_synthetic.py`` showed such inverted maps); from the prior, the attention
        learns to let the evidence through.

        iARL (``max_intensity`` = L) starts instead at each AU's mean training intensity / L (pass
        those as ``rates``): its least-squares constant output.

        Args:
            rates: ``(n,)`` occurrence rates (or mean intensities / L) in ``aus`` order; NaN (no
                label) leaves that AU at 0.
        """
        r = torch.as_tensor(rates, dtype=self.head_bias.dtype).reshape(-1)
        if r.shape != self.head_bias.shape:
            raise ValueError(f"need {self.num_aus} rates, got {tuple(r.shape)}")
        r = r.clamp(1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.head_bias.copy_(torch.where(torch.isnan(r), torch.zeros_like(r), torch.log(r / (1 - r))))

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
        f2 = self.conv_f2(f1)
        if self.attention == "none":
            f_c = f2
        else:
            gap = f1.mean((2, 3)).reshape(b, n, c8)
            v_c = torch.sigmoid(torch.einsum("bnc,ndc->bnd", gap, self.channel_fc))  # (B, n, 8c)
            f_c = f2 * v_c.reshape(b, n * c8, 1, 1)
        f3 = self.conv_f3(f_c)
        f4 = self.conv_f4(f3)
        out: dict[str, torch.Tensor] = {}
        if self.attention in ("crf", "spatial"):
            f3s = self.conv_f3s(f3)  # (B, n·2c, h, w) in [-1, 1]
            v0 = torch.sigmoid(self.conv_v0(f3s))  # (B, n, h, w)
            v_s = v0
            if self.attention == "crf":
                maps = v0.reshape(b * n, h, w)
                pix = f3s.reshape(b * n, -1, h, w)
                # The energy term trains the relation features f3s; the attention and μ learn from
                # the task loss through the unrolled inference (see DenseCRF.energy).
                refined, energy = self.crf.refine(maps, pix, energy_wrt="features")
                out["crf_energy"] = (energy / (h * w)).reshape(b, n)
                v_s = refined.reshape(b, n, h, w)
            out["attention"] = v_s
            out["attention_init"] = v0
            f4 = f4 * v_s.repeat_interleave(c8, dim=1)
        f_r = self.conv_fr(torch.relu(self.bn_s(f4))).mean((2, 3)).reshape(b, n, c8)
        logits = (f_r * self.head_weight).sum(-1) + self.head_bias
        out = {"au": logits, **out}
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
    *,
    aus: Sequence[int] = _BP4D,
    input_size: int = 176,
    c: int = 8,
    crf_iters: int = 5,
    in_channels: int = 3,
    attention: str = "crf",
) -> ARL:
    """ARL for AU detection (defaults: BP4D's 12 AUs, l = 176, c = 8, 5 CRF iterations).

    ``attention`` = ``"spatial"`` / ``"channel"`` / ``"none"`` builds the paper's ablations.
    """
    return ARL(
        aus=tuple(aus),
        input_size=input_size,
        c=c,
        in_channels=in_channels,
        crf=_crf(len(aus), crf_iters),
        attention=attention,
    )


@register_model("arl_tiny")
def arl_tiny(*, aus: Sequence[int] = (1, 2, 12), input_size: int = 48, attention: str = "crf") -> ARL:
    """Tiny ARL (c = 2, 48 px input, 3 AUs, 2 CRF iterations) for fast tests."""
    return ARL(aus=tuple(aus), input_size=input_size, c=2, crf=_crf(len(aus), 2), attention=attention)


@register_model("iarl")
def iarl(
    *,
    aus: Sequence[int] = _DISFA_INT,
    input_size: int = 176,
    c: int = 8,
    crf_iters: int = 5,
    max_intensity: float = 5.0,
    in_channels: int = 3,
    attention: str = "crf",
) -> ARL:
    """iARL for AU intensity (defaults: DISFA's 12 intensity AUs, L = 5); adds ``"au_intensity"``."""
    return ARL(
        aus=tuple(aus),
        input_size=input_size,
        c=c,
        in_channels=in_channels,
        crf=_crf(len(aus), crf_iters),
        max_intensity=max_intensity,
        attention=attention,
    )


@register_model("iarl_tiny")
def iarl_tiny(*, aus: Sequence[int] = (6, 12), input_size: int = 48, attention: str = "crf") -> ARL:
    """Tiny iARL for fast tests."""
    return ARL(
        aus=tuple(aus),
        input_size=input_size,
        c=2,
        crf=_crf(len(aus), 2),
        max_intensity=5.0,
        attention=attention,
    )
