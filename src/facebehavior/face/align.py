"""Face alignment: 5-point similarity transforms to a canonical template, and batched warping.

The canonical template is the ArcFace/InsightFace 112×112 five-point template, defined once here
(``TEMPLATES``) in ``schema.KEYPOINTS_5`` order and scaled to whatever crop size a model needs
(96, 112, 176, 200, 224, …). ``margin`` loosens the crop: ``margin=1.5`` shrinks the template
points towards the crop centre by 1.5, so the crop shows 1.5× more of the head around the face.

Conventions: points are (x, y) in pixels with pixel centres at integer coordinates (OpenCV's
convention); a matrix ``M`` (2, 3) maps frame pixels to crop pixels as ``M @ [x, y, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from facebehavior.schema import KEYPOINTS_5
from facebehavior.types import AlignedFaces, Detections

__all__ = [
    "Template",
    "TEMPLATES",
    "ARCFACE_112",
    "template_points",
    "estimate_similarity",
    "invert_affine",
    "transform_points",
    "crop_matrices",
    "warp_faces",
    "align_faces",
    "points_to_crop",
    "points_to_frame",
    "DegenerateKeypointsError",
]

BorderMode = Literal["constant", "replicate"]

# ArcFace (InsightFace) 112×112 template, in schema.KEYPOINTS_5 order: subject's right eye (image
# left), left eye, nose tip, right mouth corner (image left), left mouth corner.
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


# Fractions of the crop side (pixel-edge convention), schema.KEYPOINTS_5 order: this package's MTCNN
# run on 300 random FER2013 Training faces (upscaled 3x, 48 px replicated border; 273 detected),
# keypoints averaged and mirrored about x = 0.5 (see the default model's card,
# src/facebehavior/weights/fbn_mobile_ferplus.md).
_FER2013_POINTS = np.array(
    [[0.3205, 0.3815], [0.6795, 0.3815], [0.5000, 0.5945], [0.3500, 0.7800], [0.6500, 0.7800]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class Template:
    """A 5-point alignment template.

    Attributes:
        name: registry name (as used in ``InputSpec.template``).
        points: (5, 2) keypoints in ``schema.KEYPOINTS_5`` order, as fractions of the crop side
            measured from the crop's outer edge (pixel-edge coordinates / side).
        margin: default looseness (1.0 = the template as defined).
    """

    name: str
    points: np.ndarray  # (5, 2) fractions of the crop side
    margin: float = 1.0


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("arcface", (ARCFACE_112 + 0.5) / 112.0),
        # The whole head with some background: for models trained on loose face crops.
        Template("arcface_loose", (ARCFACE_112 + 0.5) / 112.0, margin=1.5),
        # FER2013's framing (tight crop, forehead cut): mean MTCNN keypoints of 273 FER2013 training
        # faces, mirrored to be left/right symmetric. Used by models trained on FER2013/FER+ crops so
        # that aligned video faces look like their training data.
        Template("fer2013", _FER2013_POINTS),
    )
}


class DegenerateKeypointsError(ValueError):
    """Keypoints from which no similarity transform can be estimated (coincident or non-finite)."""


def _template(template: str | Template) -> Template:
    """Resolve a template name; ``"name@1.5"`` (as ``AlignedFaces.template`` writes it) sets the margin."""
    if isinstance(template, Template):
        return template
    name, _, margin = str(template).partition("@")
    if name not in TEMPLATES:
        raise KeyError(
            f"unknown alignment template {template!r}; valid: {sorted(TEMPLATES)} (optionally '@<margin>')"
        )
    t = TEMPLATES[name]
    if not margin:
        return t
    try:
        return Template(t.name, t.points, margin=float(margin))
    except ValueError:
        raise KeyError(f"alignment template {template!r}: margin after '@' must be a number") from None


def template_points(
    template: str | Template = "arcface", size: int = 112, margin: float | None = None
) -> np.ndarray:
    """Template keypoints for a crop of ``size``×``size`` pixels.

    Args:
        template: a ``TEMPLATES`` name (``"arcface@1.3"`` also sets the margin) or a ``Template``.
        size: crop side in pixels.
        margin: looseness; ``None`` uses the template's own. Points are shrunk towards the crop
            centre by this factor.

    Returns:
        (5, 2) float64 pixel coordinates in ``schema.KEYPOINTS_5`` order.
    """
    t = _template(template)
    m = t.margin if margin is None else float(margin)
    if not m > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    if size < 8:
        raise ValueError(f"crop size must be at least 8 px, got {size}")
    # ARCFACE_112 is in OpenCV's pixel-centre convention (the crop spans [-0.5, 111.5]); scaling
    # happens on pixel-edge coordinates, so 112 px reproduces ARCFACE_112 exactly.
    centre = (size - 1) / 2.0
    pts = t.points * size - 0.5
    return centre + (pts - centre) / m


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms (rotation, uniform scale, translation) mapping src → dst.

    This is Umeyama's (1991) estimate restricted to proper rotations, which in 2D has a closed
    form: with centred points written as complex numbers, the optimal scale·rotation is
    ``Σ conj(s)·d / Σ |s|²``. Fully vectorised over the batch.

    Args:
        src: (F, K, 2) or (K, 2) source points (e.g. detected keypoints in frame pixels).
        dst: (F, K, 2) or (K, 2) target points (e.g. template points in crop pixels).

    Returns:
        (F, 2, 3) float64 matrices with ``dst ≈ M[:, :, :2] @ src + M[:, :, 2]``.

    Raises:
        DegenerateKeypointsError: a face's source points are non-finite or (nearly) coincident;
            the message lists the offending face indices.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim == 2:
        src = src[None]
    if dst.ndim == 2:
        dst = dst[None]
    src, dst = np.broadcast_arrays(src, dst)
    if src.ndim != 3 or src.shape[-1] != 2 or src.shape[1] < 2:
        raise ValueError(f"points must have shape (F, K, 2) with K >= 2, got {src.shape}")
    bad = ~np.isfinite(src).all(axis=(1, 2))
    mu_s = src.mean(axis=1, keepdims=True)
    mu_d = dst.mean(axis=1, keepdims=True)
    xs = src - mu_s
    xd = dst - mu_d
    var = (xs**2).sum(axis=(1, 2))
    # Spread below 1e-3 px (RMS) cannot define a scale or rotation.
    bad |= ~(var > 1e-6 * src.shape[1])
    if bad.any():
        idx = np.nonzero(bad)[0]
        raise DegenerateKeypointsError(
            f"cannot align face(s) {idx[:10].tolist()}{' …' if len(idx) > 10 else ''}: their keypoints are "
            "non-finite or all (nearly) identical; drop these detections or check the detector's output"
        )
    a = (xs * xd).sum(axis=(1, 2)) / var
    b = (xs[..., 0] * xd[..., 1] - xs[..., 1] * xd[..., 0]).sum(axis=1) / var
    m = np.empty((src.shape[0], 2, 3))
    m[:, 0, 0], m[:, 0, 1] = a, -b
    m[:, 1, 0], m[:, 1, 1] = b, a
    m[:, :, 2] = mu_d[:, 0] - np.einsum("fij,fj->fi", m[:, :, :2], mu_s[:, 0])
    return m


def invert_affine(matrices: np.ndarray) -> np.ndarray:
    """Inverse of (F, 2, 3) affine matrices, (F, 2, 3) float64."""
    m = np.asarray(matrices, dtype=np.float64)
    a = m[..., :2]
    inv_a = np.linalg.inv(a)
    out = np.empty_like(m)
    out[..., :2] = inv_a
    out[..., 2] = -np.einsum("...ij,...j->...i", inv_a, m[..., 2])
    return out


def transform_points(points: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Apply per-face affine matrices to points.

    Args:
        points: (F, P, 2) pixel coordinates.
        matrices: (F, 2, 3).

    Returns:
        (F, P, 2) float64 transformed points.
    """
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrices, dtype=np.float64)
    return np.einsum("fij,fpj->fpi", m[:, :, :2], p) + m[:, None, :, 2]


def crop_matrices(
    keypoints: np.ndarray, size: int = 112, template: str | Template = "arcface", margin: float | None = None
) -> np.ndarray:
    """Frame → crop similarity matrices aligning 5 keypoints to the template.

    Args:
        keypoints: (F, 5, 2) frame pixels in ``schema.KEYPOINTS_5`` order.
        size: crop side in pixels.
        template: template name or ``Template``.
        margin: looseness (``None``: the template's own).

    Returns:
        (F, 2, 3) float64.
    """
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (len(KEYPOINTS_5), 2):
        raise ValueError(f"keypoints must have shape (F, 5, 2) in schema.KEYPOINTS_5 order, got {kp.shape}")
    if kp.shape[0] == 0:
        return np.zeros((0, 2, 3))
    return estimate_similarity(kp, template_points(template, size, margin))


def warp_faces(
    images: np.ndarray | torch.Tensor,
    frame_index: np.ndarray,
    matrices: np.ndarray,
    size: int,
    *,
    border: BorderMode = "constant",
    antialias: bool = True,
) -> np.ndarray:
    """Warp square crops out of frames with bilinear sampling, all faces in one gather.

    Each crop pixel (u, v) takes the frame value at ``M⁻¹ (u, v)``. When a face is shrunk by more
    than 2×, every crop pixel averages a k×k grid of bilinear samples (k = ceil(1/scale), at most
    4) so that downscaling does not alias.

    Args:
        images: (N, H, W, 3) uint8 RGB frames (numpy or torch, any device).
        frame_index: (F,) int frame of each face.
        matrices: (F, 2, 3) frame → crop matrices.
        size: crop side in pixels.
        border: ``"constant"`` (black outside the frame) or ``"replicate"`` (edge pixels).
        antialias: supersample when shrinking (see above).

    Returns:
        (F, size, size, 3) uint8 crops.
    """
    if border not in ("constant", "replicate"):
        raise ValueError(f"border must be 'constant' or 'replicate', got {border!r}")
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = images.copy()  # torch refuses to wrap read-only buffers (e.g. decoded video frames)
    img = torch.as_tensor(images)
    if img.ndim != 4 or img.shape[-1] != 3 or img.dtype != torch.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {tuple(img.shape)} {img.dtype}")
    n, h, w, _ = img.shape
    fi = np.asarray(frame_index, dtype=np.int64)
    f = fi.shape[0]
    if f == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    if fi.min() < 0 or fi.max() >= n:
        raise IndexError(f"frame_index must be in [0, {n}), got values in [{fi.min()}, {fi.max()}]")
    inv = invert_affine(matrices)  # crop -> frame
    k = 1
    if antialias:
        scale = np.sqrt(np.abs(np.linalg.det(np.asarray(matrices, np.float64)[:, :, :2])))
        k = int(min(4, max(1, math.ceil(1.0 / max(scale.min(), 1e-6) - 1e-9))))
    dev = img.device
    # Pack the frames that hold faces as one int32 per RGB pixel, with a 1-pixel border (black or
    # replicated edges), so that each bilinear tap is a single 1-D gather with no bounds checks.
    used, local = np.unique(fi, return_inverse=True)
    sel = img[torch.as_tensor(used, device=dev)].to(torch.int32)
    packed = sel[..., 0] | (sel[..., 1] << 8) | (sel[..., 2] << 16)  # (U, H, W)
    hp, wp = h + 2, w + 2
    pad = torch.zeros((len(used), hp, wp), dtype=torch.int32, device=dev)
    pad[:, 1:-1, 1:-1] = packed
    if border == "replicate":
        pad[:, 0, 1:-1], pad[:, -1, 1:-1] = packed[:, 0], packed[:, -1]
        pad[:, :, 0], pad[:, :, -1] = pad[:, :, 1], pad[:, :, -2]
    flat = pad.reshape(-1)
    # Sub-pixel sample offsets of the k×k grid, centred on the crop pixel.
    sub = (torch.arange(k, dtype=torch.float32, device=dev) + 0.5) / k - 0.5
    base = torch.arange(size, dtype=torch.float32, device=dev)
    v = (base[:, None] + sub[None, :]).reshape(-1)  # (size*k,)
    m = torch.as_tensor(inv, dtype=torch.float32, device=dev)
    x = (
        m[:, 0, 0, None, None] * v[None, None, :]
        + m[:, 0, 1, None, None] * v[None, :, None]
        + m[:, 0, 2, None, None]
    )
    y = (
        m[:, 1, 0, None, None] * v[None, None, :]
        + m[:, 1, 1, None, None] * v[None, :, None]
        + m[:, 1, 2, None, None]
    )
    # Beyond one pixel outside the frame every tap lands in the border, which is what it should read.
    x = x.clamp_(-1.0, w - 1.0 + 0.999)
    y = y.clamp_(-1.0, h - 1.0 + 0.999)
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    wx = x - x0
    wy = y - y0
    fb = torch.as_tensor(local, device=dev)[:, None, None] * (hp * wp)
    i00 = fb + (y0.to(torch.int64) + 1) * wp + (x0.to(torch.int64) + 1)
    taps = (
        (i00, (1 - wx) * (1 - wy)),
        (i00 + 1, wx * (1 - wy)),
        (i00 + wp, (1 - wx) * wy),
        (i00 + wp + 1, wx * wy),
    )
    chans = [torch.zeros(x.shape, dtype=torch.float32, device=dev) for _ in range(3)]
    for idx, wt in taps:
        val = flat[idx]
        for c in range(3):
            chans[c].add_(((val >> (8 * c)) & 255).to(torch.float32).mul_(wt))
    out = torch.stack(chans, dim=1)  # (F, 3, size*k, size*k)
    if k > 1:
        out = torch.nn.functional.avg_pool2d(out, k)
    out = out.permute(0, 2, 3, 1)
    return out.round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def align_faces(
    images: np.ndarray | torch.Tensor,
    detections: Detections,
    *,
    size: int = 112,
    template: str | Template = "arcface",
    margin: float | None = None,
    border: BorderMode = "constant",
    antialias: bool = True,
) -> AlignedFaces:
    """Align every detected face to the template (one batched warp).

    Args:
        images: (N, H, W, 3) uint8 RGB frames the detections refer to.
        detections: faces with 5 keypoints in ``schema.KEYPOINTS_5`` order.
        size: crop side in pixels (e.g. 96, 112, 176, 200, 224).
        template: template name (``TEMPLATES``; ``"arcface@1.3"`` also sets the margin) or ``Template``.
        margin: looseness (``None``: the template's own; 1.5 shows 1.5× more around the face).
        border: what lies outside the frame: ``"constant"`` black or ``"replicate"`` edges.
        antialias: supersample when a face is shrunk more than 2×.

    Returns:
        AlignedFaces with crops (F, size, size, 3) uint8, frame → crop ``matrices`` and their
        ``inverse`` (crop → frame), both (F, 2, 3) float32; ``template`` names the template and,
        when it differs from the template's own, the margin (``"arcface@1.3"``), so the name
        reproduces the alignment.

    Raises:
        DegenerateKeypointsError: a face's keypoints are coincident or non-finite.
    """
    t = _template(template)
    m = t.margin if margin is None else float(margin)
    mats = crop_matrices(detections.keypoints, size, t, m)
    crops = warp_faces(images, detections.frame_index, mats, size, border=border, antialias=antialias)
    name = t.name if m == TEMPLATES.get(t.name, t).margin else f"{t.name}@{m:g}"
    return AlignedFaces(
        crops=crops,
        matrices=mats.astype(np.float32),
        inverse=invert_affine(mats).astype(np.float32),
        template=name,
    )


def points_to_crop(aligned: AlignedFaces, points: np.ndarray) -> np.ndarray:
    """Map per-face frame points (F, P, 2) into crop pixels, (F, P, 2) float64."""
    return transform_points(points, aligned.matrices)


def points_to_frame(aligned: AlignedFaces, points: np.ndarray) -> np.ndarray:
    """Map per-face crop points (F, P, 2) back to frame pixels, (F, P, 2) float64."""
    return transform_points(points, aligned.inverse)
