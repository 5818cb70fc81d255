"""VGG-16 and the VGG-FACE layout, written here without torchvision.

Papers: K. Simonyan, A. Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (configuration D); O. M. Parkhi, A. Vedaldi, A. Zisserman, "Deep Face
Recognition", BMVC 2015 (VGG-FACE: the same 13 conv + 5 max-pool layers, 2622 identities). Code:
Apache-2.0.

``VGGTrunk`` is the 13 conv + 5 pool part used by FaceBehaviorNet, AffWildNet and AUNets; its layers
carry the Caffe names (``conv1_1`` … ``conv5_3``) so converted VGG-FACE weights load by name.
``VGGFC`` is the fc6 → fc7 part (4096 units, ReLU, dropout 0.5). Both accept any input size the
papers use (96, 112, 176, 224, 224×448): fc6's input size is ``512 · ⌊H/32⌋ · ⌊W/32⌋``, fixed when
the model is built from ``input_size``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn as nn

from facebehavior.models import register_model

__all__ = [
    "VGG",
    "VGGTrunk",
    "VGGFC",
    "VGG16_CHANNELS",
    "as_hw",
    "vgg16",
    "vgg16_tiny",
    "vgg_face",
]

# Output channels of the 13 conv layers, grouped by block (configuration D).
VGG16_CHANNELS: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)


def as_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``96`` → ``(96, 96)``; ``(224, 448)`` stays (height, width)."""
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class VGGTrunk(nn.Module):
    """The 13 conv (3×3, pad 1, ReLU) + 5 max-pool (2×2, stride 2) layers of VGG-16 / VGG-FACE.

    Args:
        in_channels: input channels (3 RGB; 6 for RGB + optical flow stacked).
        width: channel multiplier (1.0 = the paper; smaller for tiny test variants).

    ``forward(x)``: ``(B, in_channels, H, W) → (B, C5, ⌊H/32⌋, ⌊W/32⌋)`` (pool5), ``C5 = 512·width``.
    ``forward_features(x)`` returns every pool output ``"pool1"`` … ``"pool5"`` (pool2 is the
    "second pooling layer, following the fourth convolutional layer" of the AffWildNet paper).
    """

    def __init__(self, *, in_channels: int = 3, width: float = 1.0) -> None:
        super().__init__()
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        ch = in_channels
        self.block_channels = tuple(max(1, int(round(c[0] * width))) for c in VGG16_CHANNELS)
        for b, block in enumerate(VGG16_CHANNELS, start=1):
            for i, c in enumerate(block, start=1):
                out = max(1, int(round(c * width)))
                layers[f"conv{b}_{i}"] = nn.Conv2d(ch, out, 3, padding=1)
                layers[f"relu{b}_{i}"] = nn.ReLU(inplace=True)
                ch = out
            layers[f"pool{b}"] = nn.MaxPool2d(2, 2)
        self.layers = nn.Sequential(layers)
        self.in_channels = in_channels
        self.out_channels = ch
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"VGG trunk expects (B, {self.in_channels}, H, W) input, got {tuple(x.shape)}")
        if not torch.jit.is_tracing() and min(x.shape[-2:]) < 32:
            raise ValueError(f"VGG trunk needs inputs of at least 32×32 px, got {tuple(x.shape[-2:])}")

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pool outputs ``{"pool1": (B, 64w, H/2, W/2), …, "pool5": (B, 512w, H/32, W/32)}``."""
        self._check(x)
        feats: dict[str, torch.Tensor] = {}
        for name, layer in self.layers.named_children():
            x = layer(x)
            if name.startswith("pool"):
                feats[name] = x
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.layers(x)

    def flat_features(self, input_size: int | tuple[int, int]) -> int:
        """Size of the flattened pool5 output for an input of ``input_size`` (px)."""
        h, w = as_hw(input_size)
        return self.out_channels * (h // 32) * (w // 32)


class VGGFC(nn.Sequential):
    """fc6 → ReLU → dropout → fc7 → ReLU → dropout (VGG's two 4096-unit layers).

    Shapes: ``(B, in_features) → (B, hidden)``.
    """

    def __init__(self, in_features: int, hidden: int = 4096, dropout: float = 0.5) -> None:
        super().__init__(
            OrderedDict(
                # skip_init: the default init of a 100-200 M weight matrix is slow and overwritten below
                fc6=nn.utils.skip_init(nn.Linear, in_features, hidden, device=torch.get_default_device()),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(dropout),
                fc7=nn.utils.skip_init(nn.Linear, hidden, hidden, device=torch.get_default_device()),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(dropout),
            )
        )
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        self.out_features = hidden


class VGG(nn.Module):
    """VGG-16 classifier: trunk → flatten → fc6 → fc7 → fc8.

    Args:
        num_classes: fc8 outputs (1000 ImageNet; 2622 VGG-FACE identities; 2 for a binary AU).
        input_size: input side or (height, width) in px; sets fc6's input size.
        in_channels: input channels.
        width: channel multiplier of the conv trunk.
        hidden: fc6/fc7 units.
        dropout: dropout after fc6 and fc7.

    ``forward(x)`` returns ``{"logits": (B, num_classes)}``; ``forward_features(x)`` returns the trunk's
    pools plus ``"fc6"`` and ``"fc7"`` (``(B, hidden)``, after ReLU).
    """

    def __init__(
        self,
        *,
        num_classes: int = 1000,
        input_size: int | tuple[int, int] = 224,
        in_channels: int = 3,
        width: float = 1.0,
        hidden: int = 4096,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.input_size = as_hw(input_size)
        self.trunk = VGGTrunk(in_channels=in_channels, width=width)
        self.fc = VGGFC(self.trunk.flat_features(self.input_size), hidden, dropout)
        self.heads = nn.ModuleDict({"logits": nn.Linear(hidden, num_classes)})
        nn.init.normal_(self.heads["logits"].weight, 0, 0.01)
        nn.init.zeros_(self.heads["logits"].bias)

    def _check_size(self, x: torch.Tensor) -> None:
        if not torch.jit.is_tracing() and tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"this VGG was built for {self.input_size} inputs (fc6 size depends on it), got "
                f"{tuple(x.shape[-2:])}; rebuild it with input_size={tuple(x.shape[-2:])}"
            )

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pools 1–5 and fc6/fc7 activations."""
        self._check_size(x)
        feats = self.trunk.forward_features(x)
        h = feats["pool5"].flatten(1)
        h = self.fc.drop6(self.fc.relu6(self.fc.fc6(h)))
        feats["fc6"] = h
        feats["fc7"] = self.fc.drop7(self.fc.relu7(self.fc.fc7(h)))
        return feats

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self._check_size(x)
        return {"logits": self.heads["logits"](self.fc(self.trunk(x).flatten(1)))}


@register_model("vgg16")
def vgg16(
    *,
    num_classes: int = 1000,
    input_size: int | tuple[int, int] = 224,
    in_channels: int = 3,
    dropout: float = 0.5,
) -> VGG:
    """VGG-16 (configuration D): 138,357,544 parameters with 1000 classes at 224×224."""
    return VGG(num_classes=num_classes, input_size=input_size, in_channels=in_channels, dropout=dropout)


@register_model("vgg_face")
def vgg_face(
    *, num_classes: int = 2622, input_size: int | tuple[int, int] = 224, in_channels: int = 3
) -> VGG:
    """VGG-FACE (Parkhi et al. 2015): the VGG-16 layout with 2622 identity outputs."""
    return VGG(num_classes=num_classes, input_size=input_size, in_channels=in_channels)


@register_model("vgg16_tiny")
def vgg16_tiny(*, num_classes: int = 10, input_size: int | tuple[int, int] = 64, in_channels: int = 3) -> VGG:
    """VGG-16 layout at 1/16 width with 64-unit fc layers, for fast tests."""
    return VGG(
        num_classes=num_classes, input_size=input_size, in_channels=in_channels, width=1 / 16, hidden=64
    )
