"""MTCNN face detector: P-Net → R-Net → O-Net cascade with 5 facial keypoints.

Paper: Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE Signal Processing Letters 23(10), 2016.
Weights: the PyTorch conversion shipped in the PyPI package ``facenet-pytorch`` 2.6.0 (MIT licence),
converted to ``weights/mtcnn.safetensors`` by ``tools/convert_mtcnn.py`` (model card ``mtcnn.md``).

The cascade reproduces ``facenet_pytorch.models.utils.detect_face`` step for step (pyramid sizes,
area resampling, box rounding, NMS conventions) so that the golden test can compare boxes to
1e-3 px; the implementation here is independent and batched: P-Net runs once per pyramid scale on
all frames, and the R-/O-Net crops of all candidate boxes are resampled in one gather from an
integral image instead of one ``interpolate`` call per box.

MTCNN is the fallback detector for small and multiple faces (BlazeFace misses far faces by design).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebehavior.backends import ConvertedWeights, load_converted
from facebehavior.face.boxes import batched_nms
from facebehavior.registry import DETECTORS
from facebehavior.types import Detections

__all__ = [
    "PNet",
    "RNet",
    "ONet",
    "MTCNNNets",
    "MTCNNDetector",
    "mtcnn",
    "detect_faces",
    "load_mtcnn_nets",
    "WEIGHTS_FILE",
]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "mtcnn.safetensors"

# MTCNN's landmark outputs are ordered (eye, eye, nose, mouth corner, mouth corner) with the
# image-left point of each pair first. The image-left eye of a non-mirrored face is the subject's
# RIGHT eye, which is what schema.KEYPOINTS_5 lists first ("right_eye", "left_eye", "nose",
# "mouth_right", "mouth_left"), so the mapping is the identity; it is spelled out because getting
# it backwards silently mirrors every aligned crop (tests/test_mtcnn.py checks it on real photos).
MTCNN_TO_KEYPOINTS_5: tuple[int, ...] = (0, 1, 2, 3, 4)

_MAX_PIXELS_PER_CALL = 8_000_000
_NORM_MEAN = 127.5
_NORM_SCALE = 0.0078125  # 1/128


# ----------------------------------------------------------------------------------------- networks
class PNet(nn.Module):
    """Proposal network: fully convolutional, 12×12 receptive field, stride 2.

    Input (N, 3, H, W) RGB normalised as (x − 127.5) / 128. Returns ``(reg, prob)``:
    reg (N, 4, H', W') box offsets in units of the 12 px cell, prob (N, 2, H', W') softmax
    (background, face), with H' = ceil((H − 2) / 2) − 4.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    """Refinement network on 24×24 crops.

    Input (B, 3, 24, 24) normalised like P-Net. Returns ``(reg, prob)``: (B, 4) box offsets
    relative to the crop side, (B, 2) softmax (background, face).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were converted from Caffe/TF, whose flatten order is (W, H, C): keep the
        # (0, 3, 2, 1) permute or dense4's 576 inputs are scrambled.
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    """Output network on 48×48 crops.

    Input (B, 3, 48, 48) normalised like P-Net. Returns ``(reg, landmarks, prob)``: (B, 4) box
    offsets, (B, 10) landmarks as (x1..x5, y1..y5) fractions of the crop side, (B, 2) softmax.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # (W, H, C) flatten, see RNet
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


class MTCNNNets(nn.Module):
    """The three cascade networks under one state dict (keys ``pnet.*``, ``rnet.*``, ``onet.*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.pnet = PNet()
        self.rnet = RNet()
        self.onet = ONet()


def load_mtcnn_nets(path: str | Path | None = None) -> MTCNNNets:
    """Build the networks and load the shipped (or given) safetensors weights, strictly.

    Raises:
        facebehavior.backends.MissingWeightsError: the file does not exist (a ``FileNotFoundError``).
        facebehavior.models.weights.CheckpointError: corrupt file, another model's weights or
            mismatched tensors.
    """
    source = ConvertedWeights(
        WEIGHTS_FILE, "mtcnn", "MTCNN", "tools/convert_mtcnn.py (see src/facebehavior/weights/mtcnn.md)"
    )
    return load_converted(MTCNNNets(), path, source)


# --------------------------------------------------------------------------------------------- NMS
def _nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    frame: torch.Tensor,
    iou_threshold: float,
    *,
    method: str = "union",
    plus_one: bool = False,
) -> torch.Tensor:
    """``face.boxes.batched_nms`` within each frame, on tensors: (K,) int64 kept indices on
    ``boxes.device``, by decreasing score."""
    keep = batched_nms(boxes, scores, frame, iou_threshold, method=method, plus_one=plus_one)
    return torch.from_numpy(keep).to(boxes.device)


# ------------------------------------------------------------------------------------------ cascade
def _rerec(boxes: torch.Tensor) -> torch.Tensor:
    """Grow boxes (B, ≥4) to squares about their centres (side = the longer side)."""
    out = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _bbreg(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Apply R-/O-Net offsets (B, 4), in units of the (x2 − x1 + 1) side, to boxes (B, ≥4)."""
    out = boxes.clone()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


def _crop_windows(boxes: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """Integer pixel windows [x0, x1) × [y0, y1) that the reference crops for each box, (B, 4).

    The boxes are truncated towards zero and clipped to the image, as facenet-pytorch's ``pad``
    does (it crops the clipped region and stretches it, rather than zero-padding).
    """
    t = boxes[:, :4].trunc().to(torch.int64)
    x0 = t[:, 0].clamp(min=1) - 1
    y0 = t[:, 1].clamp(min=1) - 1
    x1 = t[:, 2].clamp(max=w)
    y1 = t[:, 3].clamp(max=h)
    return torch.stack([x0, y0, x1, y1], dim=1)


def _area_resample(integral: torch.Tensor, windows: torch.Tensor, size: int) -> torch.Tensor:
    """Area-resample pixel windows of one image to size×size, all windows at once.

    Equals ``F.interpolate(img[:, y0:y1, x0:x1], (size, size), mode="area")`` per window (adaptive
    average pooling: output cell i averages input rows floor(i·H/size) … ceil((i+1)·H/size) − 1).

    Args:
        integral: (3, H+1, W+1) float64 integral image (exact sums of uint8 pixels).
        windows: (B, 4) int64 x0, y0, x1, y1 with x1 > x0, y1 > y0.
        size: output side.

    Returns:
        (B, 3, size, size) float32 mean pixel values.
    """
    i = torch.arange(size, device=windows.device)
    hw = windows[:, 3] - windows[:, 1]
    ww = windows[:, 2] - windows[:, 0]
    ys = windows[:, 1, None] + (i[None] * hw[:, None]) // size  # (B, S)
    ye = windows[:, 1, None] + -((-(i[None] + 1) * hw[:, None]) // size)  # ceil division
    xs = windows[:, 0, None] + (i[None] * ww[:, None]) // size
    xe = windows[:, 0, None] + -((-(i[None] + 1) * ww[:, None]) // size)
    W1 = integral.shape[2]
    flat = integral.reshape(3, -1)

    def at(r: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # r (B, S, 1), c (B, 1, S) -> (3, B, S, S)
        return flat[:, (r * W1 + c).reshape(-1)].reshape(3, *torch.broadcast_shapes(r.shape, c.shape))

    s = at(ye[:, :, None], xe[:, None]) - at(ys[:, :, None], xe[:, None])
    s = s - at(ye[:, :, None], xs[:, None]) + at(ys[:, :, None], xs[:, None])
    kh = (ye - ys).to(torch.float32)[:, :, None]
    kw = (xe - xs).to(torch.float32)[:, None, :]
    # Sums are exact integers (< 2^24 for any realistic window); divide like ATen's kernel does.
    return (s.to(torch.float32) / kh / kw).permute(1, 0, 2, 3).contiguous()


def _gather_crops(
    images: torch.Tensor,
    frame: torch.Tensor,
    windows: torch.Tensor,
    size: int,
    integrals: dict[int, torch.Tensor],
) -> torch.Tensor:
    """Area-resampled, normalised crops (B, 3, size, size) of windows in frames ``frame``.

    ``integrals`` caches each frame's integral image between the R-Net and O-Net stages.
    """
    out = torch.empty(windows.shape[0], 3, size, size, dtype=torch.float32, device=images.device)
    for f in torch.unique(frame).tolist():
        sel = torch.nonzero(frame == f).squeeze(1)
        if f not in integrals:
            img = images[f].to(torch.float64)
            integrals[f] = F.pad(img.cumsum(1).cumsum(2), (1, 0, 1, 0))
        out[sel] = _area_resample(integrals[f], windows[sel], size)
    return (out - _NORM_MEAN) * _NORM_SCALE


def pyramid_scales(h: int, w: int, min_face_size: float, factor: float) -> list[float]:
    """Scales of the image pyramid: the smallest face maps to 12 px, then × factor until < 12 px."""
    m = 12.0 / min_face_size
    minl = min(h, w) * m
    scales = []
    scale = m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor
    return scales


@torch.no_grad()
def detect_faces(
    images: torch.Tensor,
    nets: MTCNNNets,
    *,
    min_face_size: float = 20.0,
    thresholds: Sequence[float] = (0.6, 0.7, 0.7),
    factor: float = 0.709,
    return_stages: bool = False,
) -> dict[str, torch.Tensor]:
    """Run the MTCNN cascade on a batch of equally sized frames.

    Args:
        images: (N, 3, H, W) float32 RGB in [0, 255] (not normalised).
        nets: loaded networks.
        min_face_size: smallest face side searched for, in pixels.
        thresholds: face-probability thresholds of P-, R- and O-Net.
        factor: pyramid scale step.
        return_stages: also return the intermediate candidate boxes (for debugging/tests).

    Returns:
        dict with ``frame`` (F,) int64, ``boxes`` (F, 4) float32 x1, y1, x2, y2 pixels, ``scores``
        (F,) float32 O-Net face probability, ``points`` (F, 5, 2) float32 pixels in MTCNN order
        (see ``MTCNN_TO_KEYPOINTS_5``), ordered by frame and then by decreasing score.
    """
    h, w = images.shape[2:]
    empty = {
        "frame": torch.zeros(0, dtype=torch.long),
        "boxes": torch.zeros(0, 4),
        "scores": torch.zeros(0),
        "points": torch.zeros(0, 5, 2),
    }
    stages: dict[str, torch.Tensor] = {}

    # Stage 1: P-Net over the pyramid, all frames of a scale in one call.
    cand, cand_frame = [], []
    for scale in pyramid_scales(h, w, min_face_size, factor):
        im = F.interpolate(images, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
        # channels_last runs P-Net's convolutions and pooling about 1.7x faster on CPU; it is also
        # the layout facenet-pytorch ends up in (it permutes NHWC frames), so sums match bit for bit.
        im = ((im - _NORM_MEAN) * _NORM_SCALE).contiguous(memory_format=torch.channels_last)
        reg, prob = nets.pnet(im)
        mask = prob[:, 1] >= thresholds[0]
        idx = torch.nonzero(mask)  # (K, 3) frame, y, x in row-major order
        if idx.shape[0] == 0:
            continue
        score = prob[:, 1][mask]
        offs = reg.permute(0, 2, 3, 1)[mask]  # (K, 4)
        xy = idx[:, [2, 1]].to(reg.dtype)
        q1 = ((2 * xy + 1) / scale).floor()
        q2 = ((2 * xy + 12) / scale).floor()
        boxes = torch.cat([q1, q2, score[:, None], offs], dim=1)  # (K, 9)
        keep = _nms(boxes[:, :4], boxes[:, 4], idx[:, 0], 0.5)
        cand.append(boxes[keep])
        cand_frame.append(idx[keep, 0])
    if not cand:
        return empty
    boxes = torch.cat(cand)
    frame = torch.cat(cand_frame)
    keep = _nms(boxes[:, :4], boxes[:, 4], frame, 0.7)
    boxes, frame = boxes[keep], frame[keep]
    # P-Net offsets are in units of the box side measured without the +1.
    bw = boxes[:, 2] - boxes[:, 0]
    bh = boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack(
        [
            boxes[:, 0] + boxes[:, 5] * bw,
            boxes[:, 1] + boxes[:, 6] * bh,
            boxes[:, 2] + boxes[:, 7] * bw,
            boxes[:, 3] + boxes[:, 8] * bh,
            boxes[:, 4],
        ],
        dim=1,
    )
    boxes = _rerec(boxes)
    if return_stages:
        stages["pnet_boxes"], stages["pnet_frame"] = boxes.clone(), frame.clone()

    # Stage 2: R-Net on 24×24 crops.
    win = _crop_windows(boxes, w, h)
    ok = (win[:, 2] > win[:, 0]) & (win[:, 3] > win[:, 1])
    boxes, frame, win = boxes[ok], frame[ok], win[ok]
    if boxes.shape[0] == 0:
        return empty | stages
    integrals: dict[int, torch.Tensor] = {}
    reg, prob = nets.rnet(_gather_crops(images, frame, win, 24, integrals))
    ipass = prob[:, 1] > thresholds[1]
    boxes = torch.cat([boxes[ipass, :4], prob[ipass, 1:2]], dim=1)
    frame, reg = frame[ipass], reg[ipass]
    keep = _nms(boxes[:, :4], boxes[:, 4], frame, 0.7)
    boxes, frame, reg = boxes[keep], frame[keep], reg[keep]
    boxes = _rerec(_bbreg(boxes, reg))
    if return_stages:
        stages["rnet_boxes"], stages["rnet_frame"] = boxes.clone(), frame.clone()

    # Stage 3: O-Net on 48×48 crops, landmarks, final regression and "min" NMS.
    win = _crop_windows(boxes, w, h)
    ok = (win[:, 2] > win[:, 0]) & (win[:, 3] > win[:, 1])
    boxes, frame, win = boxes[ok], frame[ok], win[ok]
    if boxes.shape[0] == 0:
        return empty | stages
    reg, lmk, prob = nets.onet(_gather_crops(images, frame, win, 48, integrals))
    ipass = prob[:, 1] > thresholds[2]
    boxes = torch.cat([boxes[ipass, :4], prob[ipass, 1:2]], dim=1)
    frame, reg, lmk = frame[ipass], reg[ipass], lmk[ipass]
    bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    px = bw * lmk[:, :5] + boxes[:, 0:1] - 1
    py = bh * lmk[:, 5:] + boxes[:, 1:2] - 1
    points = torch.stack([px, py], dim=2)  # (F, 5, 2)
    boxes = _bbreg(boxes, reg)
    keep = _nms(boxes[:, :4], boxes[:, 4], frame, 0.7, method="min", plus_one=True)
    boxes, frame, points = boxes[keep], frame[keep], points[keep]
    # Group by frame, best first within a frame (keep is already by decreasing score).
    order = torch.sort(frame, stable=True)[1]
    out = {
        "frame": frame[order].cpu(),
        "boxes": boxes[order, :4].float().cpu(),
        "scores": boxes[order, 4].float().cpu(),
        "points": points[order].float().cpu(),
    }
    return out | stages


# ------------------------------------------------------------------------------------------ detector
class MTCNNDetector:
    """Batched MTCNN face detector implementing ``FaceDetector``.

    Args:
        nets: loaded networks (``load_mtcnn_nets``).
        device: torch device to run on.
        min_face_size: smallest face side searched for, in pixels (smaller is slower).
        thresholds: P-, R-, O-Net face-probability thresholds.
        factor: pyramid scale step.
        batch_size: most frames per cascade call (fewer for large frames: at most 8 Mpx per call).
    """

    name = "mtcnn"

    def __init__(
        self,
        nets: MTCNNNets,
        *,
        device: str | torch.device = "cpu",
        min_face_size: float = 20.0,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        batch_size: int = 16,
    ) -> None:
        if min_face_size < 12:
            raise ValueError(f"min_face_size must be >= 12 px (P-Net's window), got {min_face_size}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if len(thresholds) != 3:
            raise ValueError(f"thresholds must be 3 values (P-, R-, O-Net), got {thresholds!r}")
        self.device = torch.device(device)
        self.nets = nets.to(self.device).eval()
        self.min_face_size = float(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.batch_size = int(batch_size)

    def __call__(self, images: np.ndarray) -> Detections:
        """Detect faces.

        Args:
            images: (N, H, W, 3) uint8 RGB frames of equal size (or one (H, W, 3) frame).

        Returns:
            Detections: boxes (x1, y1, x2, y2 pixels), O-Net scores, 5 keypoints in
            ``schema.KEYPOINTS_5`` order; grouped by frame, best first within a frame.
        """
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"MTCNN expects (N, H, W, 3) RGB frames, got an array of shape {images.shape}")
        if images.dtype != np.uint8:
            raise ValueError(f"MTCNN expects uint8 pixels in [0, 255], got dtype {images.dtype}")
        frames, boxes, scores, points = [], [], [], []
        # P-Net's first layer holds 10 float32 maps of up to 0.36x the frame area per frame; cap the
        # pixels per call so a batch of 1080p frames does not need gigabytes.
        step = max(1, min(self.batch_size, _MAX_PIXELS_PER_CALL // (images.shape[1] * images.shape[2])))
        for start in range(0, images.shape[0], step):
            chunk = torch.tensor(images[start : start + step])  # copy: input may be read-only
            x = chunk.to(self.device).permute(0, 3, 1, 2).float().contiguous()
            r = detect_faces(
                x, self.nets, min_face_size=self.min_face_size, thresholds=self.thresholds, factor=self.factor
            )
            frames.append(r["frame"].numpy() + start)
            boxes.append(r["boxes"].numpy())
            scores.append(r["scores"].numpy())
            points.append(r["points"].numpy()[:, list(MTCNN_TO_KEYPOINTS_5)])
        if not frames:
            return Detections.empty()
        return Detections(
            frame_index=np.concatenate(frames).astype(np.int64),
            boxes=np.concatenate(boxes).astype(np.float32),
            scores=np.concatenate(scores).astype(np.float32),
            keypoints=np.concatenate(points).astype(np.float32),
        )


@DETECTORS.register("mtcnn")
def mtcnn(
    *,
    device: str | torch.device = "cpu",
    min_face_size: float = 20.0,
    score_threshold: float = 0.7,
    thresholds: Sequence[float] | None = None,
    factor: float = 0.709,
    batch_size: int = 16,
    weights: str | Path | None = None,
) -> MTCNNDetector:
    """Build the MTCNN detector with the shipped weights (loaded now, not at import).

    Args:
        device: torch device.
        min_face_size: smallest face side searched for, in pixels.
        score_threshold: O-Net face-probability threshold (the final detection score cut).
        thresholds: all three stage thresholds; overrides ``score_threshold`` when given.
        factor: pyramid scale step.
        batch_size: frames per cascade call.
        weights: alternative safetensors file (default: the packaged ``mtcnn.safetensors``).
    """
    th = tuple(thresholds) if thresholds is not None else (0.6, 0.7, float(score_threshold))
    return MTCNNDetector(
        load_mtcnn_nets(weights),
        device=device,
        min_face_size=min_face_size,
        thresholds=th,
        factor=factor,
        batch_size=batch_size,
    )
