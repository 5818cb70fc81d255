"""Dense optical flow between consecutive face crops, and AUNets' 3-channel flow image.

AUNets (Romero et al., §3.3 and §4.1.5) feed motion to a VGG-16 as an image "in which the first
two dimensions are normalized x and y pixel motion and the third dimension is the optical flow
magnitude", following Gkioxari & Malik and Peng et al.: the x and y components are normalised
independently over the flow field (R, G) and B is the norm of the original vector.

This module computes that image with OpenCV (an optional dependency, ``pip install
"facebehavior[flow]"``, imported only when flow is computed):

- ``dis`` (default): DIS, dense inverse search (Kroeger et al., ECCV 2016; ``cv2.DISOpticalFlow``,
  preset MEDIUM), in every OpenCV build including ``opencv-python-headless``;
- ``tvl1``: TV-L1 (Zach et al. 2007; ``cv2.optflow.DualTVL1OpticalFlow``), only in builds with the
  contrib modules (``opencv-contrib-python``).

Where this differs from the paper (which used Brox & Malik's large-displacement variational flow on
whole frames, on a GPU, then cut the face out with the RGB box):

1. Estimator: DIS or TV-L1 instead of Brox & Malik (LDOF is not in a maintained package);
   ``benchmarks/flow_speed.py`` measures both on a sequence with known motion.
2. Flow runs on the aligned face crops of a track, not on whole frames: the alignment removes most
   rigid head motion, so the field holds mostly facial (non-rigid) motion plus alignment jitter.
3. Encoding details the paper leaves open, fixed here: x and y are each divided by their RMS over
   the field (the field's l2 norm / sqrt(pixels)), floored at ``min_rms`` pixels so a still face's
   sub-pixel noise is not blown up to full contrast, clipped to ±``clip`` and mapped linearly to
   uint8 with zero motion at 128; B is the magnitude in crop pixels, ``255 · |f| / max_magnitude``
   clipped to [0, 255].
4. Frame pairing: the flow image of frame ``t`` of a track is the motion from frame ``t − 1`` to
   ``t`` (causal, so a video can be processed as it streams); the first frame of a track uses the
   motion from frame 0 to frame 1, and a track of one frame gets a still field (128, 128, 0).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = [
    "FLOW_METHODS",
    "FlowMethod",
    "available_methods",
    "endpoint_error",
    "estimate_flow",
    "estimate_flows",
    "flip_flow_image",
    "flow_to_image",
    "track_flow_images",
]

FlowMethod = Literal["dis", "tvl1"]
FLOW_METHODS: tuple[str, ...] = ("dis", "tvl1")
STILL = (128, 128, 0)  # the flow image of a field without motion


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise ImportError(
            'optical flow needs OpenCV: pip install "facebehavior[flow]" (opencv-python-headless)'
        ) from None
    return cv2


def available_methods() -> tuple[str, ...]:
    """The flow methods the installed OpenCV provides (empty without OpenCV)."""
    try:
        cv2 = _cv2()
    except ImportError:
        return ()
    tvl1 = hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")
    return ("dis", "tvl1") if tvl1 else ("dis",)


def _estimator(method: str) -> Any:
    cv2 = _cv2()
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if method == "tvl1":
        if "tvl1" not in available_methods():
            raise ValueError(
                "flow method 'tvl1' needs OpenCV's contrib modules (opencv-contrib-python); "
                "use method='dis' (in every OpenCV build)"
            )
        return cv2.optflow.DualTVL1OpticalFlow_create()
    raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(FLOW_METHODS)}")


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1|3) uint8 → (H, W) uint8 luma (BT.601, as OpenCV's RGB2GRAY)."""
    im = np.asarray(image)
    if im.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 pixels, got {im.dtype}")
    if im.ndim == 3 and im.shape[-1] == 1:
        im = im[..., 0]
    if im.ndim == 3 and im.shape[-1] == 3:
        w = np.array([0.299, 0.587, 0.114], np.float32)
        im = np.clip(np.rint(im.astype(np.float32) @ w), 0, 255).astype(np.uint8)
    if im.ndim != 2:
        raise ValueError(f"frames must be (H, W) or (H, W, 1|3) images, got shape {np.shape(image)}")
    return np.ascontiguousarray(im)


def estimate_flow(prev: np.ndarray, nxt: np.ndarray, *, method: FlowMethod = "dis") -> np.ndarray:
    """Dense forward flow from ``prev`` to ``nxt``.

    Args:
        prev, nxt: (H, W[, 1|3]) uint8 frames of the same size (RGB or grey).
        method: ``"dis"`` or ``"tvl1"`` (see the module docstring).

    Returns:
        (H, W, 2) float32 flow in pixels: ``prev[y, x]`` moved to ``nxt[y + f[..., 1], x + f[..., 0]]``.

    Raises:
        ImportError: OpenCV is not installed (one line naming the extra to install).
        ValueError: frames of different sizes, non-uint8 frames, an unknown method.
    """
    return estimate_flows([prev, nxt], method=method)[0]


def estimate_flows(frames: Any, *, method: FlowMethod = "dis") -> np.ndarray:
    """Flow between each pair of consecutive frames of a sequence.

    Args:
        frames: (T, H, W[, 1|3]) uint8 array or a sequence of T such frames, T >= 2.
        method: ``"dis"`` or ``"tvl1"``.

    Returns:
        (T − 1, H, W, 2) float32 pixels; entry ``t`` is the flow from frame ``t`` to ``t + 1``.
    """
    grey = [_grey(f) for f in frames]
    if len(grey) < 2:
        raise ValueError(f"flow needs at least 2 frames, got {len(grey)}")
    shapes = {g.shape for g in grey}
    if len(shapes) != 1:
        raise ValueError(f"all frames must have the same size for flow, got {sorted(shapes)}")
    est = _estimator(method)
    h, w = grey[0].shape
    out = np.empty((len(grey) - 1, h, w, 2), np.float32)
    for t in range(len(grey) - 1):
        out[t] = est.calc(grey[t], grey[t + 1], None)
    return out


def flow_to_image(
    flow: np.ndarray, *, clip: float = 3.0, min_rms: float = 0.05, max_magnitude: float = 16.0
) -> np.ndarray:
    """AUNets' flow image: (R, G) = x, y normalised over the field, B = magnitude.

    Args:
        flow: (H, W, 2) or (N, H, W, 2) float flow in pixels (x, y).
        clip: normalised components are clipped to ±``clip`` RMS before mapping to [0, 255].
        min_rms: floor (pixels) of the per-field RMS each component is divided by.
        max_magnitude: magnitude (pixels) that maps to 255 in the B channel.

    Returns:
        uint8 (H, W, 3) or (N, H, W, 3); zero motion is (128, 128, 0).
    """
    f = np.asarray(flow, np.float64)
    single = f.ndim == 3
    if single:
        f = f[None]
    if f.ndim != 4 or f.shape[-1] != 2:
        raise ValueError(f"flow must be (H, W, 2) or (N, H, W, 2), got {np.shape(flow)}")
    if not np.isfinite(f).all():
        raise ValueError("flow holds NaN or infinite values")
    rms = np.sqrt((f**2).mean(axis=(1, 2), keepdims=True))  # (N, 1, 1, 2), per field and component
    xy = np.clip(f / np.maximum(rms, min_rms) / clip, -1.0, 1.0)
    mag = np.sqrt((f**2).sum(-1, keepdims=True))
    img = np.concatenate([128.0 + 127.0 * xy, np.clip(mag * (255.0 / max_magnitude), 0, 255)], axis=-1)
    out = np.rint(img).astype(np.uint8)
    return out[0] if single else out


def track_flow_images(frames: Any, *, method: FlowMethod = "dis", **encoding: float) -> np.ndarray:
    """One flow image per frame of a face track (pairing rule 4 of the module docstring).

    Args:
        frames: (T, H, W[, 1|3]) uint8 aligned crops of one track, in time order, T >= 1.
        method: ``"dis"`` or ``"tvl1"``.
        **encoding: ``clip``, ``min_rms``, ``max_magnitude`` of ``flow_to_image``.

    Returns:
        (T, H, W, 3) uint8; image ``t`` encodes the flow from frame ``max(t − 1, 0)`` to ``max(t, 1)``.
    """
    frames = list(frames)
    if not frames:
        raise ValueError("a track needs at least one frame")
    if len(frames) == 1:
        h, w = _grey(frames[0]).shape
        return np.broadcast_to(np.array(STILL, np.uint8), (1, h, w, 3)).copy()
    images = flow_to_image(estimate_flows(frames, method=method), **encoding)  # (T - 1, H, W, 3)
    return np.concatenate([images[:1], images])


def flip_flow_image(image: np.ndarray) -> np.ndarray:
    """The flow image of the horizontally mirrored frames: columns reversed and x motion negated.

    Args:
        image: (..., H, W, 3) uint8 flow image(s) from ``flow_to_image``.

    Returns:
        The same shape; the R channel becomes ``256 − R`` (128 stays 128), clipped to 255.
    """
    im = np.asarray(image)[..., ::-1, :].copy()
    im[..., 0] = np.clip(256 - im[..., 0].astype(np.int16), 0, 255).astype(np.uint8)
    return im


def endpoint_error(flow: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean endpoint error (pixels): mean over pixels of ``‖flow − truth‖₂``.

    Args:
        flow, truth: (..., H, W, 2) flows in pixels.
        mask: optional (..., H, W) bool, the pixels to average over (e.g. away from the borders).
    """
    err = np.sqrt(((np.asarray(flow, np.float64) - np.asarray(truth, np.float64)) ** 2).sum(-1))
    if mask is not None:
        err = err[np.asarray(mask, bool)]
    return float(err.mean())


def synthetic_motion(
    *,
    size: int = 112,
    frames: int = 5,
    shift: tuple[float, float] = (1.5, -0.75),
    rotate_deg: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A textured sequence with known motion, for tests and ``benchmarks/flow_speed.py``.

    Frame ``t`` shows a smooth random texture moved by ``t`` steps of a rigid motion: rotation by
    ``rotate_deg`` about the image centre ``c``, then translation by ``shift`` (x, y pixels), i.e.
    ``A(p) = R (p − c) + c + shift`` applied ``t`` times.

    Returns:
        ``(frames (T, S, S, 3) uint8, truth (T − 1, S, S, 2) float32)``; ``truth[t]`` is the exact
        flow from frame ``t`` to ``t + 1`` in pixels, ``A_{t+1}(A_t⁻¹(x)) − x``.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    pad = size  # texture larger than the frame, so motion never samples outside it
    tex = ndimage.gaussian_filter(rng.random((size + 2 * pad, size + 2 * pad)), 2.0)
    tex = (tex - tex.min()) / (tex.max() - tex.min()) * 255.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2.0
    d = np.asarray(shift, np.float64)
    out = np.empty((frames, size, size, 3), np.uint8)
    truth = np.empty((max(frames - 1, 0), size, size, 2), np.float32)
    for t in range(frames):
        a = np.deg2rad(-t * rotate_deg)  # A_t⁻¹: undo t translations, then t rotations
        px, py = xx - c - t * d[0], yy - c - t * d[1]
        sx = np.cos(a) * px - np.sin(a) * py + c
        sy = np.sin(a) * px + np.cos(a) * py + c
        val = ndimage.map_coordinates(tex, [sy + pad, sx + pad], order=3, mode="reflect")
        out[t] = np.clip(np.rint(val), 0, 255).astype(np.uint8)[..., None]
        if t + 1 < frames:
            b = np.deg2rad(rotate_deg)
            qx, qy = xx - c - t * d[0], yy - c - t * d[1]
            truth[t, ..., 0] = np.cos(b) * qx - np.sin(b) * qy + c + (t + 1) * d[0] - xx
            truth[t, ..., 1] = np.sin(b) * qx + np.cos(b) * qy + c + (t + 1) * d[1] - yy
    return out, truth
