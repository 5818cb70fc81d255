"""Appearance + blendshape fusion with calibrated AU outputs and derived valence/arousal.

The default model v2 (``fbn_fusion``): a FaceBehaviorNet-style appearance network (expression and
AU heads on aligned face crops) whose outputs are fused with the 52 MediaPipe Face Landmarker
blendshapes of the same face (``schema.BLENDSHAPE_NAMES``), as FaceBehaviorNet fuses evidence of
one face for several tasks:

* **expression**: appearance logits plus a learned correction from the blendshapes,
  ``e = e_app + MLP([e_app, b, 1])``. Blendshapes are computed by a landmark network trained on
  far more varied faces than the appearance model, so they carry expression evidence that small
  grey crops lose (a linear classifier on them separates posed basic expressions well).
* **AUs**: one calibrated logistic unit per AU, reading the appearance head's logit for that AU
  and the blendshapes FACS-mapped to it (``ARKIT_TO_FACS``, after Apple's ARKit blendshape
  definitions and the measured mapping in ``../shared/models/face_landmarker/README.md``):
  ``logit_k = a_k · z_k + Σ_j w_kj · b_j + c_k``. Fitted on weak occurrence labels, so that 0.5 is
  a usable decision threshold (see the model card for how well it is calibrated).
* **valence/arousal**: *derived*, not learned from VA labels (none are available offline):
  valence is the expectation of the expression's published valence (Warriner et al. 2013) under
  the expression probabilities; arousal is that expectation plus an *activation* term, the mean
  probability of the AUs that raise arousal on the circumplex (``AROUSAL_AUS``: brow raising and
  lowering, upper-lid raising, lip stretching and the opened mouth) above its neutral-face
  baseline. So arousal follows facial activation (surprise, fear and anger above neutral and
  sadness) and is not a re-labelling of the expression.

When blendshapes are missing for a face (``blendshapes=None`` or a NaN row: no Face Landmarker
result), every fused part falls back to the appearance-only path it was trained with (the
present flag is 0 and the blendshape inputs are zeroed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.data.va_targets import EMOTION_VA
from facebehavior.models import register_model
from facebehavior.models.facebehaviornet import (
    FaceBehaviorNet,
    facebehaviornet_mobile,
    facebehaviornet_mobile_tiny,
)

__all__ = [
    "ARKIT_TO_FACS",
    "AROUSAL_AUS",
    "BlendshapeFusion",
    "blendshape_input",
    "fbn_fusion_mobile",
    "fbn_fusion_mobile_tiny",
]

# FACS AU → the ARKit-style blendshapes that move the same muscles (Face Landmarker v2 names).
# AU25 (lips part) reads the jaw and lower-lip openers; AU11 and AU23 have no ARKit counterpart.
ARKIT_TO_FACS: Mapping[int, tuple[str, ...]] = {
    1: ("browInnerUp",),
    2: ("browOuterUpLeft", "browOuterUpRight"),
    4: ("browDownLeft", "browDownRight"),
    5: ("eyeWideLeft", "eyeWideRight"),
    6: ("cheekSquintLeft", "cheekSquintRight"),
    7: ("eyeSquintLeft", "eyeSquintRight"),
    9: ("noseSneerLeft", "noseSneerRight"),
    10: ("mouthUpperUpLeft", "mouthUpperUpRight"),
    12: ("mouthSmileLeft", "mouthSmileRight"),
    14: ("mouthDimpleLeft", "mouthDimpleRight"),
    15: ("mouthFrownLeft", "mouthFrownRight"),
    17: ("mouthShrugLower",),
    20: ("mouthStretchLeft", "mouthStretchRight"),
    24: ("mouthPressLeft", "mouthPressRight"),
    25: ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthClose"),
    26: ("jawOpen",),
    43: ("eyeBlinkLeft", "eyeBlinkRight"),
    45: ("eyeBlinkLeft", "eyeBlinkRight"),
}
# AUs whose activation raises arousal: brow raisers (1, 2) and lowerer (4), upper-lid raiser (5),
# lip stretcher (20), lips part / jaw drop (25, 26).
AROUSAL_AUS: tuple[int, ...] = (1, 2, 4, 5, 20, 25, 26)


def blendshape_input(blendshapes: torch.Tensor | None, batch: int, like: torch.Tensor) -> torch.Tensor:
    """``(B, 52)`` scores (NaN rows = missing) → ``(B, 53)``: zero-filled scores and a present flag."""
    n = len(schema.BLENDSHAPE_NAMES)
    if blendshapes is None:
        return like.new_zeros(batch, n + 1)
    b = blendshapes.to(like)
    if b.shape != (batch, n):
        raise ValueError(f"blendshapes must be ({batch}, {n}), got {tuple(b.shape)}")
    present = torch.isfinite(b).all(1, keepdim=True)
    return torch.cat([torch.where(present, b, torch.zeros_like(b)), present.to(b)], 1)


class BlendshapeFusion(nn.Module):
    """Appearance network + blendshape fusion; see the module docstring.

    Args:
        appearance: a ``FaceBehaviorNet`` with ``expression`` and ``au`` heads.
        appearance_aus: FACS numbers of the appearance AU head, in its output order.
        aus: FACS numbers of the fused AU output (a subset of ``appearance_aus``).
        expressions: expression labels of the appearance head (``schema.EXPRESSIONS_8`` names).
        hidden: width of the expression correction MLP.

    ``forward(x, blendshapes)`` with ``x`` the appearance input ``(B, C, H, W)`` and ``blendshapes``
    ``(B, 52)`` (or ``None``) returns ``{"expression": (B, E) logits, "au": (B, len(aus)) logits,
    "va": (B, 2) in [-1, 1]}``.
    """

    def __init__(
        self,
        appearance: FaceBehaviorNet,
        appearance_aus: Sequence[int],
        aus: Sequence[int],
        expressions: Sequence[str] = schema.EXPRESSIONS_8,
        hidden: int = 32,
    ) -> None:
        super().__init__()
        self.appearance = appearance
        names = schema.BLENDSHAPE_NAMES
        nb = len(names) + 1
        n_e = len(expressions)
        self.expr_mlp = nn.Sequential(nn.Linear(n_e + nb, hidden), nn.ReLU(), nn.Linear(hidden, n_e))
        # Near-identity start: the fused model begins as the appearance model it is fine-tuned from.
        nn.init.normal_(self.expr_mlp[2].weight, 0.0, 1e-3)
        nn.init.zeros_(self.expr_mlp[2].bias)
        missing = [a for a in aus if a not in appearance_aus]
        if missing:
            raise ValueError(
                f"fused AUs {missing} are not outputs of the appearance head {tuple(appearance_aus)}"
            )
        self.register_buffer("au_index", torch.tensor([list(appearance_aus).index(a) for a in aus]))
        mask = torch.zeros(len(aus), nb)
        for k, au in enumerate(aus):
            for name in ARKIT_TO_FACS.get(au, ()):
                mask[k, names.index(name)] = 1.0
        mask[:, -1] = 1.0  # the present flag: a separate bias when blendshapes are available
        self.register_buffer("au_bs_mask", mask)
        self.au_scale = nn.Parameter(torch.ones(len(aus)))
        self.au_bias = nn.Parameter(torch.zeros(len(aus)))
        self.au_bs = nn.Parameter(torch.zeros(len(aus), nb))
        va = torch.tensor([EMOTION_VA[e] for e in expressions], dtype=torch.float32)
        self.register_buffer("expression_va", va)  # (E, 2) Warriner et al. (2013) coordinates
        self.register_buffer(
            "arousal_aus", torch.tensor([k for k, a in enumerate(aus) if a in AROUSAL_AUS], dtype=torch.long)
        )
        # Mean activation of a neutral face and the gain of the activation term, fitted with the
        # heads (``tools/train_default_v2.py``) and stored as buffers.
        self.register_buffer("arousal_baseline", torch.tensor(0.0))
        self.register_buffer("arousal_gain", torch.tensor(1.0))
        self.aus = tuple(int(a) for a in aus)

    def fuse(
        self, app: Mapping[str, torch.Tensor], blendshapes: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        """Fuse appearance outputs with blendshapes.

        Args:
            app: ``{"expression": (B, E) logits, "au": (B, A_app) logits}`` of the appearance model.
            blendshapes: ``(B, 52)`` scores in [0, 1]; ``None`` or NaN rows for faces without them.

        Returns:
            ``{"expression": (B, E) logits, "au": (B, A) logits, "va": (B, 2)}``.
        """
        e_app = app["expression"]
        b = blendshape_input(blendshapes, e_app.shape[0], e_app)
        expr = e_app + self.expr_mlp(torch.cat([e_app, b], 1))
        z = app["au"][:, self.au_index]
        au = self.au_scale * z + self.au_bias + b @ (self.au_bs * self.au_bs_mask).T
        return {"expression": expr, "au": au, "va": self.derive_va(expr, au)}

    def derive_va(self, expression_logits: torch.Tensor, au_logits: torch.Tensor) -> torch.Tensor:
        """``(B, 2)`` valence/arousal from expression probabilities and AU activation (no learned VA)."""
        p = expression_logits.softmax(-1)
        va = p @ self.expression_va
        act = au_logits[:, self.arousal_aus].sigmoid().mean(1)
        arousal = va[:, 1] + self.arousal_gain * (act - self.arousal_baseline)
        return torch.stack([va[:, 0], arousal], 1).clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor, blendshapes: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return self.fuse(self.appearance(x), blendshapes)


# The v1 default model's appearance network: 8 expressions, FaceBehaviorNet's 17 AUs + AU43/45,
# 1-channel 48 px input, width 0.5, stem stride 1. Its VA head is not built: VA is derived.
_APPEARANCE: dict[str, object] = {
    "num_expressions": 8,
    "aus": tuple(schema.AUS_17) + (43, 45),
    "va": False,
    "in_channels": 1,
    "width": 0.5,
    "stem_stride": 1,
}


def _fusion(build: object, kw: Mapping[str, object], aus: Sequence[int], hidden: int) -> BlendshapeFusion:
    app = build(**kw)  # type: ignore[operator]
    return BlendshapeFusion(app, tuple(kw["aus"]), tuple(aus), hidden=hidden)  # type: ignore[arg-type]


@register_model("fbn_fusion_mobile")
def fbn_fusion_mobile(
    *,
    appearance_kwargs: Mapping[str, object] | None = None,
    aus: Sequence[int] = tuple(schema.AUS_17) + (45,),
    hidden: int = 32,
) -> BlendshapeFusion:
    """``facebehaviornet_mobile`` appearance network fused with Face Landmarker blendshapes.

    Args:
        appearance_kwargs: overrides of the ``facebehaviornet_mobile`` keyword arguments (default:
            the v1 default model's trunk, 8 expressions, 17 AUs + AU43/45, 1 channel, width 0.5,
            stem stride 1, no VA head); its ``aus`` must contain ``aus``.
        aus: FACS numbers of the fused AU output.
        hidden: width of the expression correction MLP.

    Returns:
        A ``BlendshapeFusion``; ``forward(x (B, 1, 48, 48), blendshapes (B, 52) | None)`` gives
        ``{"expression": (B, 8), "au": (B, len(aus)), "va": (B, 2)}``.
    """
    return _fusion(facebehaviornet_mobile, {**_APPEARANCE, **(appearance_kwargs or {})}, aus, hidden)


@register_model("fbn_fusion_mobile_tiny")
def fbn_fusion_mobile_tiny(*, aus: Sequence[int] = tuple(schema.AUS_17) + (45,)) -> BlendshapeFusion:
    """Tiny ``fbn_fusion_mobile`` (``facebehaviornet_mobile_tiny`` appearance network) for fast tests."""
    kw = {k: v for k, v in _APPEARANCE.items() if k not in ("width", "stem_stride")}
    return _fusion(facebehaviornet_mobile_tiny, kw, aus, hidden=8)
