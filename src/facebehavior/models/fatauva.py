"""FATAUVA-Net: facial attributes → action units → valence/arousal in one staged network.

Paper: W.-Y. Chang, S.-H. Hsu, J.-H. Chien, "FATAUVA-Net: An Integrated Deep Learning Framework for
Facial Attribute Recognition, Action Unit Detection, and Valence-Arousal Estimation", CVPR
Workshops 2017. Code: Apache-2.0 (written from the paper).

Layout (mrPoly-Net): stem → core layer (8 rPoly-2) → attribute layer: 4 part branches (face,
eyebrows, eyes, mouth; 2 rPoly-2 each) with 10 CelebA attribute heads (table 2) → AU layer:
9 branches (2 rPoly-3 each) with 14 AU heads (table 3), each branch fed by its facial part
(eyebrows → AU1, AU2, AU4; eyes → AU6_7, AU45; mouth → Lip_c, Lip_u, Mouth; face → Chin) → V-A
layer: Con_Val = concat(AU6_7, AU45, AU4, Lip_c, Mouth), Con_Aro = concat(AU45, AU1, AU2, AU4,
Chin), each → 1×1 dimension-reducing conv → 2 rPoly-3 → 3 FC layers. Every head is three FC
layers; attribute and AU heads end in the paper's 2-way softmax, returned as log-odds.

The paper gives no channel widths, input size or strides; this implementation uses 112×112 inputs
and channels (32, 64, 96, 128) in the core, 64 in the branches, 128/64-unit FC layers over a 4×4
average-pooled map. Training is staged: ``freeze_until("attribute")`` before training the AU layer,
``freeze_until("au")`` before the V-A layer.

Outputs of ``forward(x)`` (``x``: ``(B, 3, S, S)``):
- ``"attribute"``: ``(B, 10)`` log-odds, order ``ATTRIBUTES``;
- ``"au"``: ``(B, 14)`` log-odds, order ``schema.DATASET_AU_SUBSETS["fatauva"]``
  (1, 2, 4, 6, 7, 10, 12, 15, 17, 23, 24, 25, 26, 45);
- ``"va"``: ``(B, 2)`` valence, arousal in [-1, 1] (regression: tanh of the last FC; class-based:
  decoded from the 11 classes with ``decode_va_classes``);
- class-based only: ``"valence_logits"``, ``"arousal_logits"``: ``(B, 11)`` for classes −5 … 5;
- ``"va_features"``: ``(B, 2, D)`` the second-last FC features of the valence and arousal heads
  (the "deep features" of the paper's center loss).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.nn.rpoly import ConvBNReLU, rpoly2, rpoly3

__all__ = [
    "FATAUVANet",
    "ATTRIBUTES",
    "AU_BRANCHES",
    "STAGES",
    "decode_va_classes",
    "fatauva_net",
    "fatauva_net_tiny",
]

# Table 2: attribute branch → CelebA attributes.
ATTRIBUTE_BRANCHES: dict[str, tuple[str, ...]] = {
    "face": ("attractive", "male", "no_beard", "young"),
    "eyebrows": ("arched_eyebrows", "bushy_eyebrows"),
    "eyes": ("eyeglasses", "narrow_eyes"),
    "mouth": ("mouth_slightly_open", "smiling"),
}
ATTRIBUTES: tuple[str, ...] = tuple(a for attrs in ATTRIBUTE_BRANCHES.values() for a in attrs)

# Table 3: AU branch → (parent attribute branch, AUs it detects).
AU_BRANCHES: dict[str, tuple[str, tuple[int, ...]]] = {
    "au6_7": ("eyes", (6, 7)),
    "au45": ("eyes", (45,)),
    "au1": ("eyebrows", (1,)),
    "au2": ("eyebrows", (2,)),
    "au4": ("eyebrows", (4,)),
    "chin": ("face", (17, 26)),
    "lip_c": ("mouth", (12, 15)),
    "lip_u": ("mouth", (10,)),
    "mouth": ("mouth", (23, 24, 25)),
}
VALENCE_INPUTS = ("au6_7", "au45", "au4", "lip_c", "mouth")
AROUSAL_INPUTS = ("au45", "au1", "au2", "au4", "chin")
AUS: tuple[int, ...] = schema.DATASET_AU_SUBSETS["fatauva"]
STAGES: tuple[str, ...] = ("core", "attribute", "au", "va")
VA_CLASSES = 11  # −5 … 5


def decode_va_classes(logits: torch.Tensor) -> torch.Tensor:
    """FATAUVA-Net's class-based V-A prediction, scaled to [-1, 1].

    If the three most probable of the 11 classes (values −5 … 5) are consecutive, the value is their
    probability-weighted mean; otherwise it is the top-1 class. The result is divided by 5.

    Args:
        logits: ``(…, 11)`` class logits.

    Returns:
        ``(…)`` values in [-1, 1].
    """
    if logits.shape[-1] != VA_CLASSES:
        raise ValueError(f"expected {VA_CLASSES} V-A class logits (−5 … 5), got {logits.shape[-1]}")
    probs = torch.softmax(logits, dim=-1)
    top_p, top_i = probs.topk(3, dim=-1)
    values = top_i.to(probs.dtype) - 5
    consecutive = (top_i.amax(-1) - top_i.amin(-1)) == 2  # three distinct indices spanning 3 → consecutive
    weighted = (top_p * values).sum(-1) / top_p.sum(-1)
    return torch.where(consecutive, weighted, values[..., 0]) / 5


class _Head(nn.Sequential):
    """Three FC layers over a 4×4 average-pooled map: ``(B, C, H, W) → (B, out)``."""

    def __init__(self, channels: int, hidden: tuple[int, int], out: int) -> None:
        super().__init__(
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(1),
            nn.Linear(channels * 16, hidden[0]),
            nn.ReLU(inplace=True),
            nn.Linear(hidden[0], hidden[1]),
            nn.ReLU(inplace=True),
            nn.Linear(hidden[1], out),
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the second-to-last FC layer (after ReLU)."""
        for layer in list(self)[:-1]:
            x = layer(x)
        return x


def _log_odds(two_way: torch.Tensor) -> torch.Tensor:
    return two_way[..., 1] - two_way[..., 0]


class FATAUVANet(nn.Module):
    """FATAUVA-Net (see the module docstring).

    Args:
        va_mode: ``"regression"`` (tanh output, trained with center + smooth-ℓ1 losses) or
            ``"class"`` (11 classes −5 … 5, softmax).
        core_channels: channels of the four core stages (2 rPoly-2 blocks each).
        branch_channels: channels of the attribute, AU and V-A branches.
        fc_hidden: units of the first two FC layers of every head.
        in_channels: input channels.
    """

    def __init__(
        self,
        *,
        va_mode: Literal["regression", "class"] = "regression",
        core_channels: tuple[int, int, int, int] = (32, 64, 96, 128),
        branch_channels: int = 64,
        fc_hidden: tuple[int, int] = (128, 64),
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if va_mode not in ("regression", "class"):
            raise ValueError(f"va_mode must be 'regression' or 'class', got {va_mode!r}")
        self.va_mode = va_mode
        self.in_channels = in_channels
        c0 = core_channels[0]
        # Stem then core: 8 rPoly-2 in four stages of two, halving resolution between stages
        # (stride 8 overall at the core output: 112 → 14).
        core: list[nn.Module] = [ConvBNReLU(in_channels, c0, 3), nn.MaxPool2d(2)]
        prev = c0
        for i, c in enumerate(core_channels):
            if c != prev:
                core.append(ConvBNReLU(prev, c, 1))
            core += [rpoly2(c), rpoly2(c)]
            if i in (0, 1):
                core.append(nn.MaxPool2d(2))
            prev = c
        self.core = nn.Sequential(*core)
        cb = branch_channels
        self.attribute_layers = nn.ModuleDict(
            {p: nn.Sequential(ConvBNReLU(prev, cb, 1), rpoly2(cb), rpoly2(cb)) for p in ATTRIBUTE_BRANCHES}
        )
        self.attribute_heads = nn.ModuleDict({a: _Head(cb, fc_hidden, 2) for a in ATTRIBUTES})
        self.au_layers = nn.ModuleDict({b: nn.Sequential(rpoly3(cb), rpoly3(cb)) for b in AU_BRANCHES})
        self.au_heads = nn.ModuleDict({f"au{a}": _Head(cb, fc_hidden, 2) for a in AUS})
        out = VA_CLASSES if va_mode == "class" else 1
        self.va_layers = nn.ModuleDict(
            {
                "valence": nn.Sequential(ConvBNReLU(len(VALENCE_INPUTS) * cb, cb, 1), rpoly3(cb), rpoly3(cb)),
                "arousal": nn.Sequential(ConvBNReLU(len(AROUSAL_INPUTS) * cb, cb, 1), rpoly3(cb), rpoly3(cb)),
            }
        )
        self.va_heads = nn.ModuleDict(
            {"valence": _Head(cb, fc_hidden, out), "arousal": _Head(cb, fc_hidden, out)}
        )
        self.task_labels = {
            "attribute": ATTRIBUTES,
            "au": tuple(schema.get_au(a).code for a in AUS),
            "va": ("valence", "arousal"),
        }
        self._frozen: tuple[str, ...] = ()

    # -- staged training ------------------------------------------------------------------------
    def stage_modules(self, stage: str) -> Iterator[nn.Module]:
        """Modules of a stage: ``"core"``, ``"attribute"`` (layers + heads), ``"au"``, ``"va"``."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages in training order: {STAGES}")
        if stage == "core":
            yield self.core
        elif stage == "attribute":
            yield from (self.attribute_layers, self.attribute_heads)
        elif stage == "au":
            yield from (self.au_layers, self.au_heads)
        else:
            yield from (self.va_layers, self.va_heads)

    def freeze_until(self, stage: str | None) -> None:
        """Freeze every stage up to and including ``stage`` (``None`` unfreezes all).

        ``freeze_until("attribute")`` is the AU-training setup, ``freeze_until("au")`` the V-A one.
        Frozen stages also keep their BatchNorm statistics fixed (they stay in eval mode).
        """
        if stage is not None and stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; stages in training order: {STAGES}")
        upto = () if stage is None else STAGES[: STAGES.index(stage) + 1]
        self._frozen = upto
        for s in STAGES:
            for m in self.stage_modules(s):
                m.requires_grad_(s not in upto)
        self.train(self.training)

    def train(self, mode: bool = True) -> FATAUVANet:
        super().train(mode)
        for s in self._frozen:
            for m in self.stage_modules(s):
                m.eval()
        return self

    # -- forward ------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"FATAUVA-Net expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        core = self.core(x)
        parts = {p: layer(core) for p, layer in self.attribute_layers.items()}
        attribute = torch.stack(
            [
                _log_odds(self.attribute_heads[a](parts[p]))
                for p, attrs in ATTRIBUTE_BRANCHES.items()
                for a in attrs
            ],
            1,
        )
        au_maps = {b: self.au_layers[b](parts[parent]) for b, (parent, _) in AU_BRANCHES.items()}
        branch_of = {a: b for b, (_, aus) in AU_BRANCHES.items() for a in aus}
        au = torch.stack([_log_odds(self.au_heads[f"au{a}"](au_maps[branch_of[a]])) for a in AUS], 1)
        out = {"attribute": attribute, "au": au}
        values, feats = [], []
        for name, inputs in (("valence", VALENCE_INPUTS), ("arousal", AROUSAL_INPUTS)):
            h = self.va_layers[name](torch.cat([au_maps[b] for b in inputs], 1))
            head = self.va_heads[name]
            f = head.features(h)
            feats.append(f)
            y = head[-1](f)
            if self.va_mode == "class":
                out[f"{name}_logits"] = y
                values.append(decode_va_classes(y))
            else:
                values.append(torch.tanh(y[:, 0]))
        out["va"] = torch.stack(values, 1)
        out["va_features"] = torch.stack(feats, 1)
        return out


@register_model("fatauva_net")
def fatauva_net(
    *, va_mode: Literal["regression", "class"] = "regression", in_channels: int = 3
) -> FATAUVANet:
    """FATAUVA-Net (mrPoly-Net) for 112×112 faces; ``va_mode`` "regression" or "class" (11 classes)."""
    return FATAUVANet(va_mode=va_mode, in_channels=in_channels)


@register_model("fatauva_net_tiny")
def fatauva_net_tiny(*, va_mode: Literal["regression", "class"] = "class") -> FATAUVANet:
    """Tiny FATAUVA-Net (8/16-channel blocks, 16/8-unit FC) for fast tests."""
    return FATAUVANet(va_mode=va_mode, core_channels=(8, 8, 16, 16), branch_channels=8, fc_hidden=(16, 8))
