"""The Face Mesh V2 network in PyTorch (see ``face.landmarks.facemesh_v2`` for provenance)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from facebehavior.backends import ConvertedWeights, load_converted
from facebehavior.face.detect._blazeface_net import tf_same_pad
from facebehavior.face.landmarks import indices as idx

_SOURCE = ConvertedWeights(
    "facemesh_v2.safetensors", "facemesh_v2", "Face Mesh V2", "tools/convert_face_landmarker.py"
)


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------
class _Residual(nn.Module):
    """PReLU bottleneck: 1x1 reduce → PReLU → depthwise 3x3 → 1x1 expand, + input → PReLU.

    With ``down=True`` the reduce is a 2x2 stride-2 convolution and the skip a 2x2 max-pool,
    zero-padded in channels to ``cout``. The depthwise convolution has no bias (the TFLite graph
    feeds it an all-zero one).
    """

    def __init__(self, cin: int, mid: int, cout: int, down: bool = False) -> None:
        super().__init__()
        self.down = down
        self.cout = cout
        self.reduce = nn.Conv2d(cin, mid, 2 if down else 1, 2 if down else 1)
        self.reduce_act = nn.PReLU(mid)
        self.dw = nn.Conv2d(mid, mid, 3, 1, 1, groups=mid, bias=False)
        self.expand = nn.Conv2d(mid, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(self.dw(self.reduce_act(self.reduce(x))))
        skip = F.max_pool2d(x, 2, 2) if self.down else x
        if skip.shape[1] < self.cout:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.cout - skip.shape[1]))
        return self.act(skip + y)


class FaceMeshV2Net(nn.Module):
    """Face Mesh V2: (N, 3, 256, 256) RGB in [0, 1] → 478 x (x, y, z), presence and aux logits."""

    # (cin, mid, cout) of each stage's first block (a downsampling one except in stage 0); every
    # stage then has four more identity blocks of width cout (reduce to ``mid``).
    _STAGES = ((16, 8, 16), (16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 64, 128), (128, 64, 128),
               (128, 64, 128))  # fmt: skip
    _BLOCKS_PER_STAGE = 4

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2)
        self.stem_act = nn.PReLU(16)
        blocks: list[nn.Module] = []
        for s, (cin, mid, cout) in enumerate(self._STAGES):
            if s > 0:
                blocks.append(_Residual(cin, mid, cout, down=True))
            blocks += [_Residual(cout, mid, cout) for _ in range(self._BLOCKS_PER_STAGE)]
        self.blocks = nn.Sequential(*blocks)
        self.mesh = nn.Conv2d(128, 3 * idx.NUM_POINTS_V2, 2)
        self.presence = nn.Conv2d(128, 1, 2)
        self.aux = nn.Conv2d(128, 1, 2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 256, 256) → (N, 128, 2, 2)."""
        return self.blocks(self.stem_act(self.stem(tf_same_pad(x, 3, 2))))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args:
            x: (N, 3, 256, 256) float RGB in [0, 1].

        Returns:
            ``(mesh, presence_logit, aux_logit)``: (N, 1434) = 478 x (x, y, z) in crop pixels,
            (N,) face-presence logit (sigmoid gives MediaPipe's presence score) and (N,) logit of
            the unused second score.
        """
        f = self.forward_features(x)
        return self.mesh(f).flatten(1), self.presence(f).flatten(1)[:, 0], self.aux(f).flatten(1)[:, 0]


def load_facemesh_v2(path: str | Path | None = None) -> FaceMeshV2Net:
    """Build ``FaceMeshV2Net`` with the packaged (or given) converted weights, in eval mode.

    Raises:
        FileNotFoundError: the weight file is missing (with how to regenerate it).
        facebehavior.models.weights.CheckpointError: the file is not a Face Mesh V2 checkpoint.
    """
    return load_converted(FaceMeshV2Net(), path, _SOURCE)
