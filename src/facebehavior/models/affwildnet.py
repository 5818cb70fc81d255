"""AffWildNet and the multi-component CNN-RNN family for valence/arousal in the wild.

Paper: D. Kollias, P. Tzirakis, M. A. Nicolaou, A. Papaioannou, G. Zhao, B. Schuller, I. Kotsia,
S. Zafeiriou, "Deep Affect Prediction in-the-wild: Aff-Wild Database and Challenge, Deep
Architectures, and Beyond", IJCV 2019, and the Aff-Wild review (§V). Code: Apache-2.0.

- ``affwildnet`` / ``affwildnet_resnet``: per-frame CNN (VGG-FACE conv+pool, or ResNet-50); its last
  pool output ⊕ 68 landmarks → FC (4096 for VGG-FACE, 1500 for ResNet-50; ReLU, dropout 0.5) →
  2-layer GRU (128) → linear → (valence, arousal).
- ``cnn_1rnn`` / ``cnn_3rnn``: VGG-FACE with features from pool2 (after the 4th conv), the last pool
  (before the landmarks are appended) and the FC layer; concatenated into one 2-layer GRU (1RNN) or
  fed to three 2-layer GRUs whose outputs are concatenated (3RNN) → output layer.
- ``affwild_model_fusion``: a CNN-1RNN and a CNN-3RNN whose RNN outputs (128 + 3·128) are
  concatenated and fused by one GRU layer (128, "Model-level Fusion + RNN") or an FC layer (128,
  "+ FC") → output layer.
- ``DecisionLevelFusion``: weighted average of several networks' V-A predictions, weights
  proportional to each network's validation CCC, per dimension (paper eq. 3).

Inputs: ``clip`` ``(B, T, 3, 96, 96)`` aligned faces in [-1, 1] and ``landmarks`` ``(B, T, 68, 2)``
(or ``(B, T, 136)``) — the 68 dlib/iBUG points in the crop's coordinates, normalised to [-1, 1]
(``normalise_landmarks``; training takes them from FaceMesh's 68-point subset in the face-crop cache).
Output: ``{"va": (B, T, 2)}`` per-frame valence and arousal in [-1, 1] (tanh-bounded); the paper
takes the median over a sequence's frames as the sequence estimate (``facebehavior.temporal``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from facebehavior.models import register_model
from facebehavior.models.resnet import ResNet
from facebehavior.models.vgg import VGGTrunk, as_hw
from facebehavior.nn.heads import VAHead
from facebehavior.nn.recurrent import FrameGRU

__all__ = [
    "AffWildNet",
    "CNNMultiRNN",
    "ModelLevelFusion",
    "DecisionLevelFusion",
    "NUM_LANDMARKS",
    "normalise_landmarks",
]

NUM_LANDMARKS = 68


def normalise_landmarks(points: np.ndarray, size: int) -> np.ndarray:
    """Landmarks in crop pixels → the networks' input range [-1, 1] (pixel centres: the crop's
    edges map to ±1), so the same face gives the same input at any crop size.

    Args:
        points: (..., 68, 2) x, y in pixels of a ``size`` × ``size`` crop (FaceMesh's 68-point
            subset, ``face.landmarks.indices.landmarks68``).
        size: crop side in pixels.

    Returns:
        float32 array of the same shape.
    """
    p = np.asarray(points, np.float32)
    if p.shape[-2:] != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected (..., 68, 2) landmarks, got {p.shape}")
    return ((p + 0.5) * (2.0 / size) - 1.0).astype(np.float32)


def _check_clip(clip: torch.Tensor, input_size: tuple[int, int]) -> None:
    """Raise a clear error unless ``clip`` is ``(B, T, C, H, W)`` at the model's input size."""
    if clip.dim() != 5 or tuple(clip.shape[-2:]) != input_size:
        raise ValueError(
            f"expected a clip (B, T, 3, {input_size[0]}, {input_size[1]}), got {tuple(clip.shape)}"
        )


def _flat_landmarks(landmarks: torch.Tensor, clip: torch.Tensor) -> torch.Tensor:
    if landmarks.shape[:2] != clip.shape[:2]:
        raise ValueError(
            f"landmarks (B, T) {tuple(landmarks.shape[:2])} must match the clip's {tuple(clip.shape[:2])}"
        )
    flat = landmarks.reshape(*landmarks.shape[:2], -1)
    if flat.shape[-1] != 2 * NUM_LANDMARKS:
        raise ValueError(f"expected 68 (x, y) landmarks per frame, got {tuple(landmarks.shape[2:])}")
    return flat


class _VGGFeatures(nn.Module):
    """Per-frame VGG-FACE features: pool2, last pool (flattened) and FC(last pool ⊕ landmarks)."""

    def __init__(self, input_size: tuple[int, int], width: float, fc: int, dropout: float) -> None:
        super().__init__()
        self.trunk = VGGTrunk(width=width)
        self.input_size = input_size
        h, w = input_size
        self.pool2_features = self.trunk.block_channels[1] * (h // 4) * (w // 4)
        self.pool5_features = self.trunk.flat_features(input_size)
        self.fc = nn.Sequential(
            nn.Linear(self.pool5_features + 2 * NUM_LANDMARKS, fc), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.fc_features = fc

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_clip(clip, self.input_size)
        lm = _flat_landmarks(landmarks, clip)
        b, t = clip.shape[:2]
        feats = self.trunk.forward_features(clip.reshape(b * t, *clip.shape[2:]))
        pool2 = feats["pool2"].reshape(b, t, -1)
        pool5 = feats["pool5"].reshape(b, t, -1)
        fc = self.fc(torch.cat([pool5, lm], dim=-1))
        return {"pool2": pool2, "pool5": pool5, "fc": fc}


class AffWildNet(nn.Module):
    """CNN (last pool ⊕ landmarks) → FC → 2-layer GRU (128) → (valence, arousal) per frame.

    Args:
        backbone: ``"vgg_face"`` or ``"resnet50"``.
        input_size: face size in px (96 in the paper).
        fc: FC units (4096 for VGG-FACE, 1500 for ResNet-50).
        gru_hidden: GRU units per layer.
        width: channel multiplier of the CNN (tiny variants).
        dropout: after the FC layer.

    ``forward(clip, landmarks)`` → ``{"va": (B, T, 2)}``.
    """

    input_names = ("image", "landmarks")  # positional inputs as batch keys (train.data.input_names)

    def __init__(
        self,
        *,
        backbone: Literal["vgg_face", "resnet50"] = "vgg_face",
        input_size: int | tuple[int, int] = 96,
        fc: int | None = None,
        gru_hidden: int = 128,
        width: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.input_size = as_hw(input_size)
        if backbone == "vgg_face":
            self.cnn: nn.Module = VGGTrunk(width=width)
            cnn_features = self.cnn.flat_features(self.input_size)
            fc = 4096 if fc is None else fc
        elif backbone == "resnet50":
            self.cnn = ResNet(layers=(3, 4, 6, 3), width=max(1, int(64 * width)))
            cnn_features = self.cnn.num_features
            fc = 1500 if fc is None else fc
        else:
            raise ValueError(f"backbone must be 'vgg_face' or 'resnet50', got {backbone!r}")
        self.fc = nn.Sequential(
            nn.Linear(cnn_features + 2 * NUM_LANDMARKS, fc), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.rnn = FrameGRU(fc, gru_hidden, 2)
        self.heads = nn.ModuleDict({"va": VAHead(gru_hidden)})
        self.task_labels = {"va": ("valence", "arousal")}

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        _check_clip(clip, self.input_size)
        lm = _flat_landmarks(landmarks, clip)
        b, t = clip.shape[:2]
        feats = self.cnn(clip.reshape(b * t, *clip.shape[2:])).reshape(b, t, -1)
        h = self.rnn(self.fc(torch.cat([feats, lm], dim=-1)))
        return {"va": self.heads["va"](h)}


class CNNMultiRNN(nn.Module):
    """CNN-1RNN / CNN-3RNN over VGG-FACE pool2, last-pool and FC features.

    Args:
        num_rnns: 1 (features concatenated into one GRU) or 3 (one GRU per feature set).
        input_size, fc, gru_hidden, width, dropout: as for ``AffWildNet``.

    ``forward(clip, landmarks)`` → ``{"va": (B, T, 2)}``; ``rnn_outputs(clip, landmarks)`` gives the
    concatenated RNN outputs ``(B, T, num_rnns·gru_hidden)`` used by model-level fusion.
    """

    input_names = ("image", "landmarks")  # positional inputs as batch keys (train.data.input_names)

    FEATURES = ("pool2", "pool5", "fc")

    def __init__(
        self,
        *,
        num_rnns: Literal[1, 3] = 3,
        input_size: int | tuple[int, int] = 96,
        fc: int = 4096,
        gru_hidden: int = 128,
        width: float = 1.0,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if num_rnns not in (1, 3):
            raise ValueError(f"num_rnns must be 1 or 3, got {num_rnns}")
        self.features = _VGGFeatures(as_hw(input_size), width, fc, dropout)
        sizes = {
            "pool2": self.features.pool2_features,
            "pool5": self.features.pool5_features,
            "fc": self.features.fc_features,
        }
        if num_rnns == 1:
            self.rnns = nn.ModuleDict({"all": FrameGRU(sum(sizes.values()), gru_hidden, 2)})
        else:
            self.rnns = nn.ModuleDict({k: FrameGRU(sizes[k], gru_hidden, 2) for k in self.FEATURES})
        self.out_features = num_rnns * gru_hidden
        self.heads = nn.ModuleDict({"va": VAHead(self.out_features)})
        self.task_labels = {"va": ("valence", "arousal")}

    def rnn_outputs(self, clip: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Concatenated per-frame RNN outputs ``(B, T, num_rnns·gru_hidden)``."""
        feats = self.features(clip, landmarks)
        if "all" in self.rnns:
            return self.rnns["all"](torch.cat([feats[k] for k in self.FEATURES], dim=-1))
        return torch.cat([self.rnns[k](feats[k]) for k in self.FEATURES], dim=-1)

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"va": self.heads["va"](self.rnn_outputs(clip, landmarks))}


class ModelLevelFusion(nn.Module):
    """Model-level fusion of CNN-RNN networks: their RNN outputs are concatenated and fused by a
    single GRU layer (``mode="rnn"``) or an FC layer (``mode="fc"``) of ``hidden`` units → V-A.

    ``forward(clip, landmarks)`` → ``{"va": (B, T, 2)}``.
    """

    input_names = ("image", "landmarks")  # positional inputs as batch keys (train.data.input_names)

    def __init__(
        self, networks: Sequence[CNNMultiRNN], mode: Literal["rnn", "fc"] = "rnn", hidden: int = 128
    ) -> None:
        super().__init__()
        if mode not in ("rnn", "fc"):
            raise ValueError(f"mode must be 'rnn' or 'fc', got {mode!r}")
        self.networks = nn.ModuleList(networks)
        for n in networks:
            # Fusion replaces the networks' own output layers; they stay (so pretrained networks load
            # unchanged) but take no part in the forward pass, so they are frozen.
            n.heads.requires_grad_(False)
        joint = sum(n.out_features for n in networks)
        self.mode = mode
        self.fusion: nn.Module = (
            FrameGRU(joint, hidden, 1)
            if mode == "rnn"
            else nn.Sequential(nn.Linear(joint, hidden), nn.ReLU(inplace=True))
        )
        self.heads = nn.ModuleDict({"va": VAHead(hidden)})
        self.task_labels = {"va": ("valence", "arousal")}

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        joint = torch.cat([n.rnn_outputs(clip, landmarks) for n in self.networks], dim=-1)
        return {"va": self.heads["va"](self.fusion(joint))}


class DecisionLevelFusion(nn.Module):
    """Weighted average of networks' V-A predictions, weights ∝ validation CCC (paper eq. 3).

    Args:
        networks: models returning ``{"va": (B, T, 2)}`` from ``(clip, landmarks)``.
        ccc: ``(len(networks), 2)`` validation CCC of each network for (valence, arousal); default
            equal weights. Negative CCCs are clipped to 0 (a worse-than-chance network gets no weight).

    ``forward(clip, landmarks)`` → ``{"va": (B, T, 2)}``. Only the networks learn; the weights are buffers.
    """

    input_names = ("image", "landmarks")  # positional inputs as batch keys (train.data.input_names)

    def __init__(
        self, networks: Sequence[nn.Module], ccc: torch.Tensor | Sequence[Sequence[float]] | None = None
    ):
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.register_buffer("weights", torch.full((len(networks), 2), 1.0 / len(networks)))
        if ccc is not None:
            self.set_ccc(ccc)
        self.task_labels = {"va": ("valence", "arousal")}

    def set_ccc(self, ccc: torch.Tensor | Sequence[Sequence[float]]) -> None:
        """Set the fusion weights from validation CCCs ``(n_networks, 2)``."""
        # Checked on the CPU: the model may be built on the meta device (recipe_input_names).
        t = torch.as_tensor(ccc, dtype=torch.float32, device="cpu").clamp_min(0)
        if t.shape != (len(self.networks), 2):
            raise ValueError(
                f"ccc must have shape ({len(self.networks)}, 2) (valence, arousal), got {tuple(t.shape)}"
            )
        total = t.sum(0)
        if (total <= 0).any():
            raise ValueError("every dimension needs at least one network with a positive validation CCC")
        self.weights.copy_((t / total).to(self.weights.device))

    def forward(self, clip: torch.Tensor, landmarks: torch.Tensor) -> dict[str, torch.Tensor]:
        preds = torch.stack([n(clip, landmarks)["va"] for n in self.networks], dim=0)  # (N, B, T, 2)
        return {"va": (preds * self.weights[:, None, None, :]).sum(0)}


_TINY = {"width": 1 / 16, "fc": 64, "gru_hidden": 16}


@register_model("affwildnet")
def affwildnet(*, input_size: int = 96, dropout: float = 0.5) -> AffWildNet:
    """AffWildNet with VGG-FACE: last pool ⊕ 68 landmarks → FC 4096 → 2-layer GRU 128 → V-A."""
    return AffWildNet(backbone="vgg_face", input_size=input_size, dropout=dropout)


@register_model("affwildnet_resnet")
def affwildnet_resnet(*, input_size: int = 96, dropout: float = 0.5) -> AffWildNet:
    """AffWildNet with ResNet-50: pooled features ⊕ 68 landmarks → FC 1500 → 2-layer GRU 128 → V-A."""
    return AffWildNet(backbone="resnet50", input_size=input_size, dropout=dropout)


@register_model("cnn_1rnn")
def cnn_1rnn(*, input_size: int = 96) -> CNNMultiRNN:
    """CNN-1RNN-2nd-pool_last-pool_fc (VGG-FACE)."""
    return CNNMultiRNN(num_rnns=1, input_size=input_size)


@register_model("cnn_3rnn")
def cnn_3rnn(*, input_size: int = 96) -> CNNMultiRNN:
    """CNN-3RNN-2nd-pool_last-pool_fc (VGG-FACE), the paper's best single multi-component network."""
    return CNNMultiRNN(num_rnns=3, input_size=input_size)


@register_model("affwild_model_fusion")
def affwild_model_fusion(*, mode: Literal["rnn", "fc"] = "rnn", input_size: int = 96) -> ModelLevelFusion:
    """Model-level fusion (+ RNN or + FC) of a CNN-1RNN and a CNN-3RNN."""
    return ModelLevelFusion(
        [CNNMultiRNN(num_rnns=1, input_size=input_size), CNNMultiRNN(num_rnns=3, input_size=input_size)], mode
    )


@register_model("affwild_decision_fusion")
def affwild_decision_fusion(
    *, ccc: Sequence[Sequence[float]] | None = None, input_size: int = 96
) -> DecisionLevelFusion:
    """Decision-level fusion of a CNN-1RNN and a CNN-3RNN, weights from validation CCC ``(2, 2)``."""
    return DecisionLevelFusion(
        [CNNMultiRNN(num_rnns=1, input_size=input_size), CNNMultiRNN(num_rnns=3, input_size=input_size)], ccc
    )


@register_model("affwildnet_tiny")
def affwildnet_tiny(*, backbone: Literal["vgg_face", "resnet50"] = "vgg_face") -> AffWildNet:
    """Tiny AffWildNet for fast tests."""
    return AffWildNet(backbone=backbone, input_size=96, **_TINY)


@register_model("cnn_3rnn_tiny")
def cnn_3rnn_tiny(*, num_rnns: Literal[1, 3] = 3) -> CNNMultiRNN:
    """Tiny CNN-3RNN (or CNN-1RNN with ``num_rnns=1``) for fast tests."""
    return CNNMultiRNN(num_rnns=num_rnns, input_size=96, **_TINY)


@register_model("affwild_model_fusion_tiny")
def affwild_model_fusion_tiny(*, mode: Literal["rnn", "fc"] = "rnn") -> ModelLevelFusion:
    """Tiny model-level fusion for fast tests."""
    return ModelLevelFusion(
        [CNNMultiRNN(num_rnns=1, input_size=96, **_TINY), CNNMultiRNN(num_rnns=3, input_size=96, **_TINY)],
        mode,
        16,
    )


@register_model("affwild_decision_fusion_tiny")
def affwild_decision_fusion_tiny(
    *, ccc: Sequence[Sequence[float]] | None = ((0.5, 0.3), (0.6, 0.4))
) -> DecisionLevelFusion:
    """Tiny decision-level fusion for fast tests."""
    return DecisionLevelFusion(
        [CNNMultiRNN(num_rnns=1, input_size=96, **_TINY), CNNMultiRNN(num_rnns=3, input_size=96, **_TINY)],
        ccc,
    )
