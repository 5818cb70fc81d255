"""MediaPipe Blendshape V2: 52 ARKit-style expression scores from Face Mesh V2 landmarks, in PyTorch.

The blendshape model of MediaPipe's Face Landmarker (model card "Blendshape V2", Google, 2022),
an MLP-Mixer (Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021)
over 146 of the 478 landmarks. Weights: ``face_blendshapes.tflite`` of MediaPipe's
``face_landmarker.task`` bundle (fp16), Apache-2.0; converted by
``tools/convert_face_landmarker.py``. Outputs match LiteRT to float rounding
(``tests/test_face_landmarker.py``).

Input preparation, as in MediaPipe's ``face_blendshapes_graph.cc``: the landmarks of
``LANDMARK_SUBSET`` (in that order), x and y only, in image pixels (MediaPipe multiplies its
normalised x by the image width and y by the height, i.e. plain pixel coordinates; z is not
used). The model normalises them itself, so any translation or uniform scale of the input gives
the same scores; rotation and anisotropic scaling do not:

* centre on the mean of the 146 points, divide by their mean distance to that centre, x 0.5;
* a linear map mixes the 146 points into 96 tokens (per coordinate), each embedded to 64
  channels; a learned extra token is prepended (97 x 64);
* four Mixer blocks (LayerNorm without bias, eps = fp16(1e-6); token MLP 97 → 384 → 97, channel
  MLP 64 → 256 → 64, ReLU, residual);
* the extra token → linear 64 → 52 → sigmoid, in ``schema.BLENDSHAPE_NAMES`` order.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from facebehavior.backends import ConvertedWeights, load_converted
from facebehavior.face.landmarks import indices as idx
from facebehavior.schema import BLENDSHAPE_NAMES

__all__ = [
    "LANDMARK_SUBSET",
    "BLENDSHAPE_NAMES",
    "WEIGHTS",
    "BlendshapeNet",
    "FaceBlendshapes",
    "blendshapes",
    "load_blendshape_net",
]

WEIGHTS = "blendshapes_v2.safetensors"
_SOURCE = ConvertedWeights(WEIGHTS, "blendshapes_v2", "Blendshape V2", "tools/convert_face_landmarker.py")

# The 146 landmarks the model reads, in input order (kLandmarksSubsetIdxs of MediaPipe's
# face_blendshapes_graph.cc, Apache-2.0): brows, eyes and lids, nose, lips, jaw line and all ten
# iris points.
LANDMARK_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477,
)  # fmt: skip

# The graph's LayerNorm epsilon is stored as float16: 1e-6 rounds to 17 x 2**-24.
LN_EPS = float(np.float16(1e-6))


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
        x = torch.cat([self.extra_token.expand(len(tokens), -1, -1), tokens], 1)
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


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
def _subset_xy(landmarks_px: np.ndarray | torch.Tensor) -> torch.Tensor:
    pts = torch.as_tensor(
        np.asarray(landmarks_px) if not isinstance(landmarks_px, torch.Tensor) else landmarks_px
    )
    if pts.ndim != 3 or pts.shape[1] != idx.NUM_POINTS_V2 or pts.shape[2] not in (2, 3):
        raise ValueError(
            f"landmarks must be (N, {idx.NUM_POINTS_V2}, 2|3) Face Mesh V2 points in pixels, got "
            f"{tuple(pts.shape)}; FaceMesh-468 has no irises, run FaceMeshV2Landmarker"
        )
    return pts[:, list(LANDMARK_SUBSET), :2].to(torch.float32)


class FaceBlendshapes:
    """Blendshape V2 scorer holding its network (explicit device and batch size).

    Example:
        >>> scorer = FaceBlendshapes()  # doctest: +SKIP
        >>> scores = scorer(marks.points)  # (F, 52)  # doctest: +SKIP
    """

    names: tuple[str, ...] = BLENDSHAPE_NAMES

    def __init__(
        self, *, device: str | torch.device = "cpu", weights: str | Path | None = None, batch_size: int = 1024
    ) -> None:
        """Args:
        device: torch device for the network.
        weights: override the packaged ``blendshapes_v2.safetensors``.
        batch_size: faces per network call.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.net = load_blendshape_net(weights).to(self.device)

    @torch.inference_mode()
    def __call__(self, landmarks_px: np.ndarray | torch.Tensor) -> np.ndarray:
        """Scores for a batch of faces.

        Args:
            landmarks_px: (N, 478, 2 or 3) Face Mesh V2 landmarks in image pixels (e.g.
                ``FaceMeshV2Landmarker(...).points``; z is ignored).

        Returns:
            (N, 52) float32 scores in [0, 1], ``BLENDSHAPE_NAMES`` order.
        """
        xy = _subset_xy(landmarks_px)
        out = [
            self.net(xy[i : i + self.batch_size].to(self.device)).cpu()
            for i in range(0, len(xy), self.batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, len(BLENDSHAPE_NAMES)), np.float32)


_DEFAULT: FaceBlendshapes | None = None
_DEFAULT_LOCK = threading.Lock()


def blendshapes(landmarks_px: np.ndarray | torch.Tensor) -> np.ndarray:
    """52 blendshape scores per face from Face Mesh V2 landmarks (CPU; weights load on first call).

    Args:
        landmarks_px: (N, 478, 2 or 3) landmarks in image pixels.

    Returns:
        (N, 52) float32 scores in [0, 1], ``BLENDSHAPE_NAMES`` order.
    """
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = FaceBlendshapes()
    return _DEFAULT(landmarks_px)
