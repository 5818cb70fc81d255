"""BlazeFace short- and full-range networks in PyTorch (see ``face.detect.blazeface`` for provenance)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------------------------
# TF-compatible building blocks
# --------------------------------------------------------------------------------------------
def tf_same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad an NCHW tensor the way TensorFlow's ``SAME`` padding does.

    TF puts the odd pixel of the total padding at the bottom/right (PyTorch's symmetric
    ``padding=`` cannot express that, which shifts every stride-2 layer by half a pixel).
    """
    h, w = x.shape[-2:]

    def amount(n: int) -> tuple[int, int]:
        out = -(-n // stride)
        total = max((out - 1) * stride + kernel - n, 0)
        return total // 2, total - total // 2

    top, bottom = amount(h)
    left, right = amount(w)
    if top == bottom == left == right == 0:
        return x
    return F.pad(x, (left, right, top, bottom))


class _SameConv(nn.Conv2d):
    """Conv2d (or depthwise when ``groups == in_ch``) with TF ``SAME`` padding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1 and k % 2 == 1:
            # Stride 1: SAME is symmetric, so the convolution pads itself (no padded copy).
            return F.conv2d(x, self.weight, self.bias, 1, k // 2, 1, self.groups)
        x = tf_same_pad(x, k, s)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)


def _channel_pad(x: torch.Tensor, channels: int) -> torch.Tensor:
    extra = channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra > 0 else x


def _to_anchor_major(t: torch.Tensor, per_anchor: int) -> torch.Tensor:
    """(N, A*K, H, W) → (N, H*W*A, K), i.e. TF's NHWC reshape order."""
    n = t.shape[0]
    return t.permute(0, 2, 3, 1).reshape(n, -1, per_anchor)


class _BlazeBlock(nn.Module):
    """Short-range block: depthwise 3x3 (no bias) → 1x1 (bias) + skip → ReLU.

    The skip is 2x2 max-pooled on stride 2 and zero-padded in channels when widening.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.cout = cout
        self.dw = _SameConv(cin, cin, 3, stride, groups=cin, bias=False)
        self.pw = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        skip = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        return F.relu(_channel_pad(skip, self.cout) + y)


class BlazeFaceShortNet(nn.Module):
    """BlazeFace short-range network: (N, 3, 128, 128) in [-1, 1] → (N, 896, 17) raw outputs."""

    input_size = 128
    # (cin, cout, stride) of the 16 blocks; heads read after block 11 (16x16) and 16 (8x8).
    _BLOCKS = (
        (24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2), (48, 56, 1),
        (56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1),
        (88, 96, 2), (96, 96, 1), (96, 96, 1), (96, 96, 1), (96, 96, 1),
    )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.stem = _SameConv(3, 24, 5, 2)
        self.blocks = nn.ModuleList(_BlazeBlock(*b) for b in self._BLOCKS)
        self.cls16 = nn.Conv2d(88, 2, 1)
        self.reg16 = nn.Conv2d(88, 32, 1)
        self.cls8 = nn.Conv2d(96, 6, 1)
        self.reg8 = nn.Conv2d(96, 96, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: (N, 3, 128, 128) float RGB in [-1, 1].

        Returns:
            (N, 896, 17): logit, then 16 regressors in input pixels (anchor order: 16x16 grid x 2
            anchors, then 8x8 grid x 6 anchors, row-major).
        """
        x = F.relu(self.stem(x))
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == 10:
                f16 = x
        cls = torch.cat([_to_anchor_major(self.cls16(f16), 1), _to_anchor_major(self.cls8(x), 1)], 1)
        reg = torch.cat([_to_anchor_major(self.reg16(f16), 16), _to_anchor_major(self.reg8(x), 16)], 1)
        return torch.cat([cls, reg], 2)


class _Residual(nn.Module):
    """Full-range residual bottleneck: relu(x + pw2(dw2(relu(pw1(dw1(x)))))), dw with bias.

    Padding is explicit and symmetric (the TF graph has ``ZeroPadding2D(1)`` + ``VALID``).
    """

    def __init__(self, ch: int, mid: int) -> None:
        super().__init__()
        self.dw1 = nn.Conv2d(ch, ch, 3, padding=1, groups=ch)
        self.pw1 = nn.Conv2d(ch, mid, 1)
        self.dw2 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
        self.pw2 = nn.Conv2d(mid, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw2(self.dw2(F.relu(self.pw1(self.dw1(x)))))
        return F.relu(x + y)


class _Down(nn.Module):
    """Full-range stride-2 stage entry: dw s2 → 1x1 (ReLU) → dw → 1x1 (ReLU), no skip."""

    def __init__(self, cin: int, mid: int, cout: int) -> None:
        super().__init__()
        self.dw1 = nn.Conv2d(cin, cin, 3, stride=2, padding=1, groups=cin)
        self.pw1 = nn.Conv2d(cin, mid, 1)
        self.dw2 = nn.Conv2d(mid, mid, 3, padding=1, groups=mid)
        self.pw2 = nn.Conv2d(mid, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pw2(self.dw2(F.relu(self.pw1(self.dw1(x))))))


def _depth_to_space_tf(x: torch.Tensor, block: int) -> torch.Tensor:
    """TF ``DepthToSpace`` (DCR order: channel = (dy * block + dx) * C + c) on NCHW."""
    n, c, h, w = x.shape
    oc = c // (block * block)
    x = x.view(n, block, block, oc, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n, oc, h * block, w * block)


class _Head(nn.Module):
    """Full-range head: 1x1 conv at 48x48, depthwise 3x3 s2 (bias) to 24x24, DepthToSpace(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 4 * cout, 1)
        self.dw = nn.Conv2d(4 * cout, 4 * cout, 3, stride=2, padding=1, groups=4 * cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _depth_to_space_tf(self.dw(self.conv(x)), 2)


class BlazeFaceFullNet(nn.Module):
    """BlazeFace full-range network: (N, 3, 192, 192) in [-1, 1] → (N, 2304, 17) raw outputs.

    A stride-2 backbone down to 6x6 with an FPN back up to 48x48 (bilinear x2 upsampling with
    half-pixel centres, lateral 1x1 convs), one anchor per 48x48 cell (stride 4). The graph also
    has a "person" head, which MediaPipe's face pipeline ignores; it is not ported.
    """

    input_size = 192

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, stride=2, padding=1)  # 96x96
        self.s96 = nn.Sequential(_Residual(32, 8), _Residual(32, 8))
        self.s48 = nn.Sequential(_Down(32, 16, 64), _Residual(64, 16), _Residual(64, 16))
        self.s24 = nn.Sequential(_Down(64, 32, 128), _Residual(128, 32), _Residual(128, 32))
        self.s12 = nn.Sequential(_Down(128, 48, 192), _Residual(192, 48), _Residual(192, 48))
        self.s6 = nn.Sequential(
            _Down(192, 96, 384), _Residual(384, 96), _Residual(384, 96), _Residual(384, 96)
        )
        self.top12 = nn.Conv2d(384, 96, 1)
        self.lat12 = nn.Conv2d(192, 96, 1)
        self.fpn12 = nn.Sequential(_Residual(96, 48), _Residual(96, 48))
        self.top24 = nn.Conv2d(96, 64, 1)
        self.lat24 = nn.Conv2d(128, 64, 1)
        self.fpn24 = nn.Sequential(_Residual(64, 32), _Residual(64, 32))
        self.top48 = nn.Conv2d(64, 48, 1)
        self.lat48 = nn.Conv2d(64, 48, 1)
        self.fpn48 = nn.Sequential(_Residual(48, 24))
        self.cls = _Head(48, 1)
        self.reg = _Head(48, 16)

    @staticmethod
    def _merge(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(F.relu(top), scale_factor=2, mode="bilinear", align_corners=False)
        return F.relu(lateral) + up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: (N, 3, 192, 192) float RGB in [-1, 1].

        Returns:
            (N, 2304, 17): logit then 16 regressors in input pixels, anchors row-major on 48x48.
        """
        x = self.s96(F.relu(self.stem(x)))
        c48 = self.s48(x)
        c24 = self.s24(c48)
        c12 = self.s12(c24)
        c6 = self.s6(c12)
        p = self.fpn12(self._merge(self.top12(c6), self.lat12(c12)))
        p = self.fpn24(self._merge(self.top24(p), self.lat24(c24)))
        p = self.fpn48(self._merge(self.top48(p), self.lat48(c48)))
        return torch.cat([_to_anchor_major(self.cls(p), 1), _to_anchor_major(self.reg(p), 16)], 2)
