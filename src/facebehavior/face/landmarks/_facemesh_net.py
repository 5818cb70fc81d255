"""The FaceMesh-468 network in PyTorch (see ``face.landmarks.facemesh`` for provenance)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facebehavior.face.detect._blazeface_net import tf_same_pad


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------
class _Block(nn.Module):
    """Depthwise 3x3 (TF SAME, no bias) → 1x1 (bias) + skip → PReLU.

    On stride 2 the skip is a 2x2 VALID max-pool; it is zero-padded in channels when widening.
    """

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.cout = cout
        self.dw = nn.Conv2d(cin, cin, 3, stride, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            # Stride 1: TF SAME is symmetric (1 px), so the convolution pads itself (no padded copy).
            y = self.pw(F.conv2d(x, self.dw.weight, None, 1, 1, 1, self.dw.groups))
        else:
            y = self.pw(self.dw(tf_same_pad(x, 3, self.stride)))
        skip = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        if skip.shape[1] < self.cout:
            skip = F.pad(skip, (0, 0, 0, 0, 0, self.cout - skip.shape[1]))
        return self.act(skip + y)


class _ConvAct(nn.Module):
    """1x1 conv (bias) → PReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class FaceMeshNet(nn.Module):
    """FaceMesh network: (N, 3, 192, 192) RGB in [0, 1] → 468 x (x, y, z) and a presence logit.

    MediaPipe's TF.js graph also computes a 266-value "contours" head that MediaPipe's own
    face_landmark graph never reads (the TFLite model has no such output); it is not ported.
    """

    _BACKBONE = (
        (16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 32, 1), (32, 64, 2), (64, 64, 1),
        (64, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 2), (128, 128, 1),
        (128, 128, 1),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2)
        self.stem_act = nn.PReLU(16)
        self.backbone = nn.Sequential(*(_Block(*b) for b in self._BACKBONE))
        self.mesh = nn.Sequential(_Block(128, 128, 2), _Block(128, 128), _Block(128, 128))
        self.mesh_tail = nn.Sequential(_ConvAct(128, 32), _Block(32, 32))
        self.mesh_out = nn.Conv2d(32, 1404, 3, 3)
        self.flag = nn.Sequential(_Block(128, 128, 2))
        self.flag_tail = nn.Sequential(_ConvAct(128, 32), _Block(32, 32))
        self.flag_out = nn.Conv2d(32, 1, 3, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            x: (N, 3, 192, 192) float RGB in [0, 1].

        Returns:
            ``(mesh, logit)``: (N, 1404) = 468 x (x, y, z) in crop pixels, and (N,) face-presence
            logit (the TF.js graph applies the sigmoid inside; the TFLite model does not).
        """
        x = self.stem_act(self.stem(tf_same_pad(x, 3, 2)))
        x = self.backbone(x)
        mesh = self.mesh_out(self.mesh_tail(self.mesh(x))).flatten(1)
        logit = self.flag_out(self.flag_tail(self.flag(x))).flatten(1)[:, 0]
        return mesh, logit
