"""A few-shot compound-expression head on the default model (FaceBehaviorNet §4.5, fine-tuning).

Paper: D. Kollias, V. Sharmanska, S. Zafeiriou, "Face Behavior à la carte: Expressions, Affect and
Action Units in a Single Network", §4.5: besides the zero-shot compound scores
(``facebehavior.compound``), FaceBehaviorNet's shared representation is fine-tuned with a few
examples per compound class. Code: Apache-2.0.

``CompoundFinetuned`` keeps a ``BlendshapeFusion`` model (``fbn_fusion``, the bundled default) whole
— its expression, AU and VA outputs are unchanged — and adds one linear layer that reads the
appearance network's shared representation (``forward_features``, the input of its task heads),
optionally concatenated with the 52 Face Landmarker blendshapes and their present flag
(``fusion.blendshape_input``), and outputs one logit per compound class. ``facebehavior finetune``
trains it and exports it; ``facebehavior analyze --model PATH`` then writes the class probabilities as
``compound_prob_<class>`` columns next to the zero-shot ``compound_score_<class>`` ones.

Outputs: the base model's ``{"expression", "au", "va"}`` plus ``"compound_prob"`` ``(B, K)``
softmax probabilities (what the Analyzer reports: ``models.transforms.postprocess`` passes
heads other than expression/AU through unchanged) and ``"compound_logits"`` ``(B, K)`` (training).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.models.fusion import (
    BlendshapeFusion,
    blendshape_input,
    fbn_fusion_mobile,
    fbn_fusion_mobile_tiny,
)

__all__ = ["COMPOUND_TASK", "CompoundFinetuned", "fbn_fusion_compound", "fbn_fusion_compound_tiny"]

COMPOUND_TASK = "compound_prob"


class CompoundFinetuned(nn.Module):
    """A ``BlendshapeFusion`` model with an added compound-expression head.

    Args:
        base: the fused default-model architecture (its outputs are kept as they are).
        classes: compound class names, in output order.
        blendshapes: whether the head also reads the blendshapes (``False`` for heads trained on
            crops without Face Landmarker results).

    ``forward(x, blendshapes=None)`` with ``x`` the base model's input ``(B, C, H, W)`` returns the
    base outputs plus ``"compound_prob"`` and ``"compound_logits"`` ``(B, len(classes))``.
    """

    def __init__(self, base: BlendshapeFusion, classes: Sequence[str], *, blendshapes: bool = True) -> None:
        super().__init__()
        if not classes:
            raise ValueError("CompoundFinetuned needs at least one class")
        self.base = base
        self.classes = tuple(str(c) for c in classes)
        self.use_blendshapes = bool(blendshapes)
        nb = len(schema.BLENDSHAPE_NAMES) + 1 if self.use_blendshapes else 0
        self.compound_head = nn.Linear(base.appearance.num_features + nb, len(self.classes))
        # Near-uniform start (as the zoo's heads): the few shots, not the initialisation, decide.
        nn.init.normal_(self.compound_head.weight, 0.0, 0.01)
        nn.init.zeros_(self.compound_head.bias)

    @property
    def task_labels(self) -> dict[str, tuple[str, ...]]:
        expression = tuple(self.base.appearance.task_labels["expression"])
        aus = tuple(schema.get_au(a).code for a in self.base.aus)
        return {
            "expression": expression,
            "au": aus,
            "va": ("valence", "arousal"),
            COMPOUND_TASK: self.classes,
        }

    def head_input(self, feats: torch.Tensor, blendshapes: torch.Tensor | None) -> torch.Tensor:
        """``(B, F)`` appearance features (+ blendshapes and flag) → the compound head's input."""
        if not self.use_blendshapes:
            return feats
        return torch.cat([feats, blendshape_input(blendshapes, feats.shape[0], feats)], 1)

    def forward(self, x: torch.Tensor, blendshapes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        app_net = self.base.appearance
        feats = app_net.forward_features(x)
        out = self.base.fuse(app_net.forward_head(feats), blendshapes)
        logits = self.compound_head(self.head_input(feats, blendshapes))
        return {**out, COMPOUND_TASK: logits.softmax(-1), "compound_logits": logits}


@register_model("fbn_fusion_compound")
def fbn_fusion_compound(
    *,
    classes: Sequence[str] = ("happily_surprised", "sadly_angry"),
    base_kwargs: Mapping[str, Any] | None = None,
    blendshapes: bool = True,
) -> CompoundFinetuned:
    """The default model's architecture (``fbn_fusion_mobile(**base_kwargs)``) + a compound head.

    Args:
        classes: compound class names (``facebehavior finetune`` writes the classes it trained).
        base_kwargs: keyword arguments of ``fbn_fusion_mobile`` (the base checkpoint's ``arch_kwargs``).
        blendshapes: the head reads the blendshapes too.
    """
    return CompoundFinetuned(fbn_fusion_mobile(**dict(base_kwargs or {})), classes, blendshapes=blendshapes)


@register_model("fbn_fusion_compound_tiny")
def fbn_fusion_compound_tiny(
    *, classes: Sequence[str] = ("happily_surprised", "sadly_angry"), blendshapes: bool = True
) -> CompoundFinetuned:
    """Tiny ``fbn_fusion_compound`` (``fbn_fusion_mobile_tiny`` base) for fast tests."""
    return CompoundFinetuned(fbn_fusion_mobile_tiny(), classes, blendshapes=blendshapes)
