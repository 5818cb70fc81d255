"""The Blendshape V2 network in PyTorch (see ``face.landmarks.blendshapes`` for provenance)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from facebehavior.backends import ConvertedWeights, load_converted
from facebehavior.face.landmarks.blendshapes import LANDMARK_SUBSET, LN_EPS
from facebehavior.schema import BLENDSHAPE_NAMES

_SOURCE = ConvertedWeights(
    "blendshapes_v2.safetensors", "blendshapes_v2", "Blendshape V2", "tools/convert_face_landmarker.py"
)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------
class _MixerBlock(nn.Module):
    """x + token_mlp(LN(x)ᵀ)ᵀ, then x + channel_mlp(LN(x)); LayerNorms scale only (no bias)."""

    def __init__(self, tokens: int, dim: int, token_hidden: int, channel_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LN_EPS, bias=False)
        self.token_mlp = nn.Sequential(
            nn.Linear(tokens, token_hidden), nn.ReLU(), nn.Linear(token_hidden, tokens)
        )
        self.norm2 = nn.LayerNorm(dim, eps=LN_EPS, bias=False)
        self.channel_mlp = nn.Sequential(
            nn.Linear(dim, channel_hidden), nn.ReLU(), nn.Linear(channel_hidden, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class BlendshapeNet(nn.Module):
    """Blendshape V2: (N, 146, 2) landmark x, y (pixels) → (N, 52) scores in [0, 1]."""

    def __init__(
        self,
        *,
        num_points: int = len(LANDMARK_SUBSET),
        num_tokens: int = 96,
        dim: int = 64,
        depth: int = 4,
        token_hidden: int = 384,
        channel_hidden: int = 256,
        num_outputs: int = len(BLENDSHAPE_NAMES),
    ) -> None:
        super().__init__()
        self.point_mix = nn.Linear(num_points, num_tokens)
        self.embed = nn.Linear(2, dim)
        self.extra_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.Sequential(
            *(_MixerBlock(num_tokens + 1, dim, token_hidden, channel_hidden) for _ in range(depth))
        )
        self.head = nn.Linear(dim, num_outputs)

    @staticmethod
    def normalize(points: torch.Tensor) -> torch.Tensor:
        """The graph's own input normalisation: centred, unit mean radius, x 0.5.

        Args:
            points: (N, 146, 2) x, y.

        Returns:
            (N, 146, 2).
        """
        centred = points - points.mean(1, keepdim=True)
        radius = centred.norm(dim=2, keepdim=True).mean(1, keepdim=True)
        return centred / radius * 0.5

    def forward_features(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 146, 2) → (N, 64): the extra token after the Mixer blocks."""
        x = self.normalize(points)
        tokens = self.embed(self.point_mix(x.transpose(1, 2)).transpose(1, 2))  # (N, 96, 64)
        # tokens.shape[0], not len(tokens): the ONNX tracer keeps the batch axis dynamic.
        x = torch.cat([self.extra_token.expand(tokens.shape[0], -1, -1), tokens], 1)
        return self.blocks(x)[:, 0]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Args:
            points: (N, 146, 2) float x, y of ``LANDMARK_SUBSET`` in image pixels.

        Returns:
            (N, 52) scores in [0, 1], ``BLENDSHAPE_NAMES`` order.
        """
        return torch.sigmoid(self.head(self.forward_features(points)))


def load_blendshape_net(path: str | Path | None = None) -> BlendshapeNet:
    """Build ``BlendshapeNet`` with the packaged (or given) converted weights, in eval mode.

    Raises:
        FileNotFoundError: the weight file is missing (with how to regenerate it).
        facebehavior.models.weights.CheckpointError: the file is not a Blendshape V2 checkpoint.
    """
    return load_converted(BlendshapeNet(), path, _SOURCE)
