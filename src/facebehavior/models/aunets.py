"""AUNets and HydraNet: per-AU binary VGG-16 detectors, optical-flow fusions and the multi-view system.

Paper: C. Romero, J. C. Pérez, P. Arbeláez, "Multi-View Dynamic Facial Action Unit Detection",
Image and Vision Computing 2018 (FERA 2017). Code: Apache-2.0 (written from the paper).

- ``aunet``: one VGG-16 per AU (13 conv, fc6, fc7, a 2-way softmax layer fc8), input 224×224.
- ``hydranet``: a frozen shared VGG-16 conv trunk and one learnable (fc6, fc7, fc8) head per AU.
- Optical flow (OF, a 3-channel image: normalised x, normalised y, magnitude) fused with RGB by
  extra input channels (``aunet_of_channels``, 224×224×6, first layer copied from RGB), horizontal
  concatenation (``aunet_of_horizontal``, 224×448×3, fc6 widened), or two streams merged after
  conv5_3 / fc6 / fc7 (``aunet_pi_conv`` / ``aunet_pi_fc6`` / ``aunet_pi_fc7``, RGB stream frozen).
- ``aunets_view_classifier``: the 9-way view classifier of the multi-view system, and
  ``ViewSpecificEnsemble``: view classifier + one set of AU detectors per view.

Parameter counts per AU (paper table 3 → this implementation, exact):
HydraNet 134m / 119m learnable → 134,268,738 / 119,554,050; AUNet 134m → 134,268,738;
channels 134m → 134,270,466; horizontal 237m → 237,029,186; π/conv 251m / 237m → 251,743,874 /
237,029,186; π/fc6 268m / 151m → 268,525,186 / 151,045,954; π/fc7 268m / 134m → 268,537,474 /
134,276,930. The learnable counts of the π networks match the paper only with the RGB stream
frozen (the stream that was trained first and copied into the motion stream), so that is the default.

Outputs: every detector returns ``{"au": (B, n) log-odds}`` (σ gives the presence probability);
the 2-way softmax of the paper is kept as the 2-output fc8, and ``logit[present] − logit[absent]``
is its log-odds. The view classifier returns ``{"view": (B, 9) logits}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn as nn

from facebehavior import schema
from facebehavior.models import register_model
from facebehavior.models.vgg import VGGFC, VGGTrunk, as_hw

__all__ = [
    "AUNet",
    "AUEnsemble",
    "HydraNet",
    "PiNet",
    "ViewClassifier",
    "ViewSpecificEnsemble",
    "video_view",
    "NUM_VIEWS",
]

NUM_VIEWS = 9  # FERA 2017's camera views
OpticalFlow = Literal["none", "alone", "channels", "horizontal"]


class BinaryHead(nn.Linear):
    """fc8: a 2-way (absent, present) softmax layer, returned as log-odds ``(B, 1)``."""

    def __init__(self, in_features: int) -> None:
        super().__init__(in_features, 2)
        nn.init.normal_(self.weight, 0, 0.01)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = super().forward(x)
        return logits[:, 1:] - logits[:, :1]


def _labels(aus: Sequence[int]) -> dict[str, tuple[str, ...]]:
    return {"au": tuple(schema.get_au(a).code for a in aus)}


class AUNet(nn.Module):
    """One independent binary VGG-16 AU detector, optionally fed optical flow.

    Args:
        au: FACS number of the detected AU.
        optical_flow: ``"none"`` (RGB only), ``"alone"`` (OF image only), ``"channels"`` (RGB ⊕ OF
            as 6 input channels) or ``"horizontal"`` (RGB | OF side by side, 224×448).
        input_size: side (px) of each input image (224 in the paper).
        width, hidden, dropout: VGG conv width multiplier, fc6/fc7 units, dropout.

    ``forward(rgb, flow=None)``: ``rgb`` and ``flow`` are ``(B, 3, S, S)``; ``flow`` is required for
    ``"channels"`` / ``"horizontal"``; for ``"alone"`` pass the OF image as ``rgb``.
    The OF image is ``facebehavior.temporal.flow``'s encoding (``prepare --flow`` caches it).
    Returns ``{"au": (B, 1) log-odds}``.
    """

    def __init__(
        self,
        *,
        au: int,
        optical_flow: OpticalFlow = "none",
        input_size: int = 224,
        width: float = 1.0,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if optical_flow not in ("none", "alone", "channels", "horizontal"):
            raise ValueError(
                f"optical_flow must be 'none', 'alone', 'channels' or 'horizontal', got {optical_flow!r}"
            )
        schema.get_au(au)
        self.au = au
        self.task_labels = _labels([au])
        self.optical_flow = optical_flow
        h, w = as_hw(input_size)
        self.image_size = (h, w)
        self.input_size = (h, 2 * w) if optical_flow == "horizontal" else (h, w)
        self.trunk = VGGTrunk(in_channels=6 if optical_flow == "channels" else 3, width=width)
        if optical_flow == "channels":
            _copy_rgb_to_flow_channels(self.trunk)
        self.fc = VGGFC(self.trunk.flat_features(self.input_size), hidden, dropout)
        self.fc8 = BinaryHead(hidden)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Batch keys of the positional inputs (``facebehavior.train.data.input_names``)."""
        return {"none": ("image",), "alone": ("flow",)}.get(self.optical_flow, ("image", "flow"))

    def combine(self, rgb: torch.Tensor, flow: torch.Tensor | None = None) -> torch.Tensor:
        """The network input built from the RGB and OF images (see the class docstring)."""
        if rgb.dim() != 4 or rgb.shape[1] != 3 or tuple(rgb.shape[-2:]) != self.image_size:
            raise ValueError(
                f"AUNet expects (B, 3, {self.image_size[0]}, {self.image_size[1]}) images, "
                f"got {tuple(rgb.shape)}"
            )
        if self.optical_flow in ("none", "alone"):
            return rgb
        if flow is None or flow.shape != rgb.shape:
            raise ValueError(
                f"AUNet with optical_flow={self.optical_flow!r} needs a flow image shaped like rgb "
                f"{tuple(rgb.shape)}, got {None if flow is None else tuple(flow.shape)}"
            )
        return torch.cat([rgb, flow], dim=1 if self.optical_flow == "channels" else 3)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x = self.trunk(self.combine(rgb, flow)).flatten(1)
        return {"au": self.fc8(self.fc(x))}

    @torch.no_grad()
    def init_from_rgb(self, rgb: AUNet) -> None:
        """Initialise from a trained RGB AUNet as the paper does: "channels" copies the RGB first-layer
        weights onto the OF channels; "horizontal" replicates fc6's pool5 weights over both halves;
        every other layer is copied unchanged.
        """
        src = rgb.state_dict()
        dst = self.state_dict()
        for k, v in src.items():
            t = dst[k]
            if t.shape == v.shape:
                t.copy_(v)
            elif k == "trunk.layers.conv1_1.weight" and self.optical_flow == "channels":
                t.copy_(torch.cat([v, v], dim=1))
            elif k == "fc.fc6.weight" and self.optical_flow == "horizontal":
                c = rgb.trunk.out_channels
                gh, gw = rgb.image_size[0] // 32, rgb.image_size[1] // 32
                t.copy_(v.reshape(-1, c, gh, gw).repeat(1, 1, 1, 2).reshape(t.shape))
            else:
                raise ValueError(f"cannot initialise {k} {tuple(t.shape)} from RGB weights {tuple(v.shape)}")


def _copy_rgb_to_flow_channels(trunk: VGGTrunk) -> None:
    """The 6-channel first layer starts with the OF filters equal to the RGB filters."""
    with torch.no_grad():
        w = trunk.layers.conv1_1.weight
        w[:, 3:] = w[:, :3]


class HydraNet(nn.Module):
    """A frozen shared VGG-16 conv trunk with one learnable (fc6, fc7, fc8) head per AU.

    Args:
        aus: FACS numbers of the heads, in output order.
        input_size: input side in px (224 in the paper).
        width, hidden, dropout: as for ``AUNet``.
        freeze_trunk: freeze the shared conv layers (the paper's HydraNet).

    ``forward(x)`` with ``x`` of shape ``(B, 3, S, S)`` returns ``{"au": (B, n) log-odds}``.
    ``grow_head(au)`` adds a head for a new AU (the paper's modularity argument).
    """

    def __init__(
        self,
        *,
        aus: Sequence[int],
        input_size: int = 224,
        width: float = 1.0,
        hidden: int = 4096,
        dropout: float = 0.5,
        freeze_trunk: bool = True,
    ) -> None:
        super().__init__()
        if not aus:
            raise ValueError("HydraNet needs at least one AU")
        self.input_size = as_hw(input_size)
        self.trunk = VGGTrunk(width=width)
        self.trunk.requires_grad_(not freeze_trunk)
        self._hidden, self._dropout = hidden, dropout
        self.heads = nn.ModuleDict()
        self.aus: tuple[int, ...] = ()
        for au in aus:
            self.grow_head(au)

    @property
    def task_labels(self) -> dict[str, tuple[str, ...]]:
        return _labels(self.aus)

    def grow_head(self, au: int) -> None:
        """Add a randomly initialised (fc6, fc7, fc8) head for ``au``."""
        code = schema.get_au(au).code
        if code in self.heads:
            raise ValueError(f"HydraNet already has a head for {code}")
        self.heads[code] = nn.Sequential(
            VGGFC(self.trunk.flat_features(self.input_size), self._hidden, self._dropout),
            BinaryHead(self._hidden),
        )
        self.aus = (*self.aus, au)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"HydraNet was built for {self.input_size} inputs, got {tuple(x.shape[-2:])}")
        feats = self.trunk(x).flatten(1)
        return {"au": torch.cat([head(feats) for head in self.heads.values()], dim=1)}


class _Stream(nn.Module):
    """VGG-16 up to conv5_3 (pool5), fc6 or fc7: ``(B, 3, S, S) → (B, features)``."""

    def __init__(
        self, until: str, input_size: tuple[int, int], width: float, hidden: int, dropout: float
    ) -> None:
        super().__init__()
        self.trunk = VGGTrunk(width=width)
        flat = self.trunk.flat_features(input_size)
        layers: list[nn.Module] = []
        if until in ("fc6", "fc7"):
            layers += [nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        if until == "fc7":
            layers += [nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        self.fc = nn.Sequential(*layers)
        self.out_features = flat if until == "conv" else hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.trunk(x).flatten(1))


class PiNet(nn.Module):
    """Two-stream ("π") AUNet: RGB and OF VGG-16 streams merged after conv5_3, fc6 or fc7.

    Args:
        au: FACS number of the detected AU.
        fusion: ``"conv"`` (concatenate pool5 channels → fc6 → fc7 → fc8), ``"fc6"`` (concatenate
            fc6 → fc7 → fc8) or ``"fc7"`` (concatenate fc7 → fc8).
        freeze_rgb: freeze the RGB stream (matches the learnable counts of the paper's table 3).
        input_size, width, hidden, dropout: as for ``AUNet``.

    ``forward(rgb, flow)`` with two ``(B, 3, S, S)`` images returns ``{"au": (B, 1) log-odds}``.
    """

    input_names = ("image", "flow")  # positional inputs as batch keys (train.data.input_names)

    def __init__(
        self,
        *,
        au: int,
        fusion: Literal["conv", "fc6", "fc7"] = "fc7",
        freeze_rgb: bool = True,
        input_size: int = 224,
        width: float = 1.0,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if fusion not in ("conv", "fc6", "fc7"):
            raise ValueError(f"fusion must be 'conv', 'fc6' or 'fc7', got {fusion!r}")
        schema.get_au(au)
        self.au = au
        self.task_labels = _labels([au])
        self.fusion = fusion
        self.input_size = as_hw(input_size)
        self.rgb = _Stream(fusion, self.input_size, width, hidden, dropout)
        self.flow = _Stream(fusion, self.input_size, width, hidden, dropout)
        self.rgb.requires_grad_(not freeze_rgb)
        joint = 2 * self.rgb.out_features
        layers: list[nn.Module] = []
        if fusion == "conv":
            layers.append(VGGFC(joint, hidden, dropout))
        elif fusion == "fc6":
            layers += [nn.Linear(joint, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
        layers.append(BinaryHead(hidden if fusion != "fc7" else joint))
        self.head = nn.Sequential(*layers)

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
        if rgb.shape != flow.shape:
            raise ValueError(
                f"rgb {tuple(rgb.shape)} and flow {tuple(flow.shape)} images must have the same shape"
            )
        if not torch.jit.is_tracing() and tuple(rgb.shape[-2:]) != self.input_size:
            raise ValueError(
                f"this π network was built for {self.input_size} inputs, got {tuple(rgb.shape[-2:])}"
            )
        return {"au": self.head(torch.cat([self.rgb(rgb), self.flow(flow)], dim=1))}

    @torch.no_grad()
    def init_from_rgb(self, rgb: AUNet) -> None:
        """Copy a trained RGB AUNet's encoder (conv layers and the fc layers inside the streams)
        into both streams, as the paper initialises the motion stream from the RGB one."""
        if rgb.optical_flow != "none":
            raise ValueError("init_from_rgb needs an RGB-only AUNet")
        for stream in (self.rgb, self.flow):
            stream.trunk.load_state_dict(rgb.trunk.state_dict())
            fcs = [m for m in stream.fc if isinstance(m, nn.Linear)]
            for dst, src in zip(fcs, (rgb.fc.fc6, rgb.fc.fc7), strict=False):
                dst.load_state_dict(src.state_dict())


class ViewClassifier(nn.Module):
    """9-way view classifier (FERA 2017 camera views): VGG-16 → 9 logits.

    The paper fine-tunes Caffe's GoogLeNet; this uses the VGG-16 layout already in the zoo
    (see docs/models.md). ``forward(x)`` with ``(B, 3, S, S)`` frames returns ``{"view": (B, 9)}``.
    """

    def __init__(
        self, *, num_views: int = NUM_VIEWS, input_size: int = 224, width: float = 1.0, hidden: int = 4096
    ) -> None:
        super().__init__()
        self.input_size = as_hw(input_size)
        self.trunk = VGGTrunk(width=width)
        self.fc = VGGFC(self.trunk.flat_features(self.input_size), hidden, 0.5)
        self.heads = nn.ModuleDict({"view": nn.Linear(hidden, num_views)})
        self.task_labels = {"view": tuple(f"view{i}" for i in range(num_views))}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"view": self.heads["view"](self.fc(self.trunk(x).flatten(1)))}


def video_view(frame_logits: torch.Tensor) -> torch.Tensor:
    """A video's view from per-frame view logits: arg-max over views of the per-view maximum
    probability over frames (the paper's ``max_v(p)``).

    Args:
        frame_logits: ``(T, V)`` logits of the frames of one video.

    Returns:
        0-d long tensor, the view index.
    """
    if frame_logits.dim() != 2 or frame_logits.shape[0] == 0:
        raise ValueError(f"frame_logits must be (T, V) with T >= 1, got {tuple(frame_logits.shape)}")
    return torch.softmax(frame_logits, dim=1).amax(0).argmax()


class ViewSpecificEnsemble(nn.Module):
    """The multi-view system: predict a video's view, then run that view's AU detectors.

    Args:
        view_classifier: returns ``{"view": (T, V)}`` for ``(T, 3, S, S)`` frames.
        detectors: one module per view (index = view), each mapping ``(T, …)`` frames to
            ``{"au": (T, n)}`` with the same AUs in the same order (e.g. a ``HydraNet``, or an
            ``AUEnsemble`` of per-AU ``AUNet``s).

    ``forward(frames, flow=None)`` with one video's ``(T, 3, S, S)`` frames (and OF images when the
    detectors take them) returns ``{"au": (T, n) log-odds, "view_logits": (T, V), "view": () long}``.
    Only the selected view's detectors run.
    """

    def __init__(self, view_classifier: nn.Module, detectors: Sequence[nn.Module]) -> None:
        super().__init__()
        self.view_classifier = view_classifier
        self.detectors = nn.ModuleList(detectors)

    def forward(self, frames: torch.Tensor, flow: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        view_logits = self.view_classifier(frames)["view"]
        if view_logits.shape[1] != len(self.detectors):
            raise ValueError(f"{view_logits.shape[1]} views but {len(self.detectors)} detector sets")
        view = video_view(view_logits)
        det = self.detectors[int(view)]
        out = det(frames) if flow is None else det(frames, flow)
        return {"au": out["au"], "view_logits": view_logits, "view": view}


class AUEnsemble(nn.Module):
    """Independent per-AU detectors evaluated together: ``{"au": (B, n)}`` in the order given.

    Args:
        detectors: AU number → detector returning ``{"au": (B, 1)}`` (e.g. ``AUNet``).
    """

    def __init__(self, detectors: Mapping[int, nn.Module]) -> None:
        super().__init__()
        self.aus = tuple(detectors)
        self.task_labels = _labels(self.aus)
        self.detectors = nn.ModuleDict({schema.get_au(a).code: m for a, m in detectors.items()})

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        outs = [m(rgb) if flow is None else m(rgb, flow) for m in self.detectors.values()]
        return {"au": torch.cat([o["au"] for o in outs], dim=1)}


_TINY = {"input_size": 64, "width": 1 / 16, "hidden": 64}


@register_model("aunet")
def aunet(*, au: int = 12, input_size: int = 224) -> AUNet:
    """AUNet: one RGB VGG-16 binary detector for ``au`` (134.27 M parameters)."""
    return AUNet(au=au, input_size=input_size)


@register_model("aunet_of_alone")
def aunet_of_alone(*, au: int = 12, input_size: int = 224) -> AUNet:
    """AUNet on the optical-flow image alone (paper fig. 4a)."""
    return AUNet(au=au, optical_flow="alone", input_size=input_size)


@register_model("aunet_of_channels")
def aunet_of_channels(*, au: int = 12, input_size: int = 224) -> AUNet:
    """AUNet with RGB ⊕ OF as 6 input channels (first layer's OF filters copied from RGB)."""
    return AUNet(au=au, optical_flow="channels", input_size=input_size)


@register_model("aunet_of_horizontal")
def aunet_of_horizontal(*, au: int = 12, input_size: int = 224) -> AUNet:
    """AUNet on RGB | OF concatenated horizontally (224×448 input), the paper's best variant."""
    return AUNet(au=au, optical_flow="horizontal", input_size=input_size)


@register_model("aunet_pi_conv")
def aunet_pi_conv(*, au: int = 12, input_size: int = 224, freeze_rgb: bool = True) -> PiNet:
    """Two-stream AUNet merged after conv5_3 (π/conv)."""
    return PiNet(au=au, fusion="conv", input_size=input_size, freeze_rgb=freeze_rgb)


@register_model("aunet_pi_fc6")
def aunet_pi_fc6(*, au: int = 12, input_size: int = 224, freeze_rgb: bool = True) -> PiNet:
    """Two-stream AUNet merged after fc6 (π/fc6)."""
    return PiNet(au=au, fusion="fc6", input_size=input_size, freeze_rgb=freeze_rgb)


@register_model("aunet_pi_fc7")
def aunet_pi_fc7(*, au: int = 12, input_size: int = 224, freeze_rgb: bool = True) -> PiNet:
    """Two-stream AUNet merged after fc7 (π/fc7)."""
    return PiNet(au=au, fusion="fc7", input_size=input_size, freeze_rgb=freeze_rgb)


@register_model("hydranet")
def hydranet(*, aus: Sequence[int] = schema.DATASET_AU_SUBSETS["bp4d"], input_size: int = 224) -> HydraNet:
    """HydraNet: frozen shared VGG-16 trunk + one (fc6, fc7, fc8) head per AU (BP4D's 12 by default)."""
    return HydraNet(aus=tuple(aus), input_size=input_size)


@register_model("aunets_view_classifier")
def aunets_view_classifier(*, num_views: int = NUM_VIEWS, input_size: int = 224) -> ViewClassifier:
    """The multi-view system's 9-way view classifier."""
    return ViewClassifier(num_views=num_views, input_size=input_size)


@register_model("aunets_multiview")
def aunets_multiview(
    *,
    view_model: str = "aunets_view_classifier",
    view_kwargs: Mapping[str, object] | None = None,
    detector_model: str = "hydranet",
    detector_kwargs: Mapping[str, object] | None = None,
    num_views: int = NUM_VIEWS,
) -> ViewSpecificEnsemble:
    """The multi-view system rebuilt from its parts' registry names, so a composed system is one checkpoint.

    ``facebehavior compose-multiview`` writes this architecture: the view classifier
    ``create_model(view_model, **view_kwargs)`` and ``num_views`` detector sets
    ``create_model(detector_model, **detector_kwargs)`` (index = view), all of one architecture so
    they share AUs and input. ``forward`` picks one view per call (``video_view`` over the batch).

    Raises:
        ValueError: the view classifier has another number of views than ``num_views``.
    """
    from facebehavior.models import create_model

    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    view = create_model(view_model, **dict(view_kwargs or {}))
    n = len(getattr(view, "task_labels", {}).get("view", ()))
    if n != num_views:
        raise ValueError(f"view classifier {view_model!r} predicts {n} views, but num_views is {num_views}")
    dets = [create_model(detector_model, **dict(detector_kwargs or {})) for _ in range(num_views)]
    return ViewSpecificEnsemble(view, dets)


@register_model("aunet_tiny")
def aunet_tiny(*, au: int = 12, optical_flow: OpticalFlow = "none") -> AUNet:
    """Tiny AUNet (64 px, 1/16 width, 64-unit fc) for fast tests."""
    return AUNet(au=au, optical_flow=optical_flow, **_TINY)


@register_model("aunet_of_horizontal_tiny")
def aunet_of_horizontal_tiny(*, au: int = 12) -> AUNet:
    """Tiny horizontal-concatenation AUNet for fast tests."""
    return AUNet(au=au, optical_flow="horizontal", **_TINY)


@register_model("aunet_of_channels_tiny")
def aunet_of_channels_tiny(*, au: int = 12) -> AUNet:
    """Tiny 6-channel AUNet for fast tests."""
    return AUNet(au=au, optical_flow="channels", **_TINY)


@register_model("aunet_pi_tiny")
def aunet_pi_tiny(*, au: int = 12, fusion: Literal["conv", "fc6", "fc7"] = "fc6") -> PiNet:
    """Tiny two-stream AUNet (RGB stream frozen) for fast tests."""
    return PiNet(au=au, fusion=fusion, **_TINY)


@register_model("hydranet_tiny")
def hydranet_tiny(*, aus: Sequence[int] = (1, 2, 12)) -> HydraNet:
    """Tiny HydraNet for fast tests."""
    return HydraNet(aus=tuple(aus), **_TINY)


@register_model("aunets_view_classifier_tiny")
def aunets_view_classifier_tiny(*, num_views: int = NUM_VIEWS) -> ViewClassifier:
    """Tiny view classifier (64 px, 1/16 width, 64-unit fc) for fast tests."""
    return ViewClassifier(num_views=num_views, **_TINY)


@register_model("aunets_multiview_tiny")
def aunets_multiview_tiny(
    *, aus: Sequence[int] = (1, 12), num_views: int = NUM_VIEWS
) -> ViewSpecificEnsemble:
    """Tiny multi-view system (view classifier + one tiny HydraNet per view) for fast tests.

    A full-size system holds one set of VGG-16 detectors per view (9 × 10 AUNets ≈ 12 G parameters
    in the paper), so it is composed from trained parts (``facebehavior compose-multiview``, saved as
    the ``aunets_multiview`` architecture) rather than trained as one network.
    """
    return ViewSpecificEnsemble(
        ViewClassifier(num_views=num_views, **_TINY),
        [HydraNet(aus=tuple(aus), **_TINY) for _ in range(num_views)],
    )
