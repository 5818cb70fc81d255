"""Face alignment: 5-point similarity transforms to a canonical template, and batched warping.

The canonical template is the ArcFace/InsightFace 112×112 five-point template, defined once here
(``TEMPLATES``) in ``schema.KEYPOINTS_5`` order and scaled to whatever crop size a model needs
(96, 112, 176, 200, 224, …). ``margin`` loosens the crop: ``margin=1.5`` shrinks the template
points towards the crop centre by 1.5, so the crop shows 1.5× more of the head around the face.

Conventions: points are (x, y) in pixels with pixel centres at integer coordinates (OpenCV's
convention); a matrix ``M`` (2, 3) maps frame pixels to crop pixels as ``M @ [x, y, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
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
    "warp_faces_numpy",
    "align_faces",
    "points_to_crop",
    "points_to_frame",
    "DegenerateKeypointsError",
    "alignable",
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


def alignable(points: np.ndarray) -> np.ndarray:
    """Which faces' points define a similarity transform (the test ``estimate_similarity`` applies).

    Args:
        points: (F, K, 2) points in pixels (e.g. 5 keypoints per face).

    Returns:
        (F,) bool: False where a face's points are non-finite, (nearly) coincident (RMS spread
        below 1e-3 px) or spread beyond float range.
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"points must have shape (F, K, 2), got {p.shape}")
    finite = np.isfinite(p).all(axis=(1, 2))
    with np.errstate(over="ignore", invalid="ignore"):
        centred = np.where(finite[:, None, None], p - p.mean(axis=1, keepdims=True), 0.0)
        var = (centred**2).sum(axis=(1, 2))
    # An infinite spread (points near the float range's end) cannot define a scale either.
    return finite & np.isfinite(var) & (var > 1e-6 * p.shape[1])


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
    # Non-finite points, or a spread below 1e-3 px (RMS), cannot define a scale or rotation.
    bad = ~alignable(src)
    mu_s = src.mean(axis=1, keepdims=True)
    mu_d = dst.mean(axis=1, keepdims=True)
    xs = src - mu_s
    xd = dst - mu_d
    var = (xs**2).sum(axis=(1, 2))
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


def _sample_positions(size: int, k: int) -> torch.Tensor:
    """Crop coordinates of the k sub-samples of every crop pixel along one axis.

    Returns:
        (size*k,) float32: pixel j's sub-samples at ``j + (i + 0.5) / k - 0.5``, i = 0..k-1.
    """
    import torch

    return ((torch.arange(size * k, dtype=torch.float64) + 0.5) / k - 0.5).to(torch.float32)


def warp_faces(
    images: np.ndarray | torch.Tensor,
    frame_index: np.ndarray,
    matrices: np.ndarray,
    size: int,
    *,
    border: BorderMode = "constant",
    antialias: bool = True,
) -> np.ndarray:
    """Warp square crops out of frames with bilinear sampling.

    Each crop pixel (u, v) takes the frame value at ``M⁻¹ (u, v)``. When a face is shrunk
    (scale < 1), every crop pixel averages a k×k grid of bilinear samples (k = ceil(1/scale), at
    most 4, chosen per face: 2 for a shrink up to 2×, 3 up to 3×, ...) so that downscaling does not
    alias.

    Only the pixels a face's samples can touch are read: for each face the bounding box of its
    sample points (plus the one-pixel bilinear reach), clipped to the frame, is cut out of the
    uint8 frame and converted, and the warp samples that small region. The cost is proportional to
    the face, not to the frame (a 640×480 frame holding one face costs a 250×250 region).

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
    import torch

    if border not in ("constant", "replicate"):
        raise ValueError(f"border must be 'constant' or 'replicate', got {border!r}")
    is_torch = isinstance(images, torch.Tensor)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {tuple(images.shape)} {images.dtype}")
    n, h, w, _ = images.shape
    fi, inv, ks = _warp_plan(frame_index, matrices, n, antialias)
    f = fi.shape[0]
    if f == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    dev = images.device if is_torch else torch.device("cpu")
    pad = "zeros" if border == "constant" else "border"
    axes: dict[int, torch.Tensor] = {}
    out = torch.empty((f, 3, size, size), dtype=torch.float32, device=dev)
    for i in range(f):
        k = int(ks[i])
        if k not in axes:
            axes[k] = _sample_positions(size, k).to(dev)
        q = axes[k]
        # Frame position of the grid's corner samples -> the region the bilinear taps can reach.
        lo, hi = (0.5 / k - 0.5), size - 0.5 - 0.5 / k
        corners = inv[i, :, :2] @ np.array([[lo, hi, lo, hi], [lo, lo, hi, hi]]) + inv[i, :, 2:]
        x0 = int(np.clip(np.floor(corners[0].min()), 0, w - 1))
        y0 = int(np.clip(np.floor(corners[1].min()), 0, h - 1))
        x1 = int(np.clip(np.floor(corners[0].max()) + 2, x0 + 1, w))
        y1 = int(np.clip(np.floor(corners[1].max()) + 2, y0 + 1, h))
        if is_torch:
            region = images[fi[i], y0:y1, x0:x1].to(torch.float32)
        else:
            region = torch.from_numpy(np.array(images[fi[i], y0:y1, x0:x1], dtype=np.float32))
        rw, rh = x1 - x0, y1 - y0
        # grid_sample's normalised coordinates over the region (align_corners=False: pixel j's
        # centre is at (2j + 1) / W - 1), folded into the crop -> frame matrix.
        a = np.array(
            [
                [
                    2.0 / rw * inv[i, 0, 0],
                    2.0 / rw * inv[i, 0, 1],
                    (2.0 * (inv[i, 0, 2] - x0) + 1.0) / rw - 1.0,
                ],
                [
                    2.0 / rh * inv[i, 1, 0],
                    2.0 / rh * inv[i, 1, 1],
                    (2.0 * (inv[i, 1, 2] - y0) + 1.0) / rh - 1.0,
                ],
            ]
        )
        # Normalised sample coordinates as an outer sum of the two axes ((x, y) = A (u, v, 1));
        # float32 is ample: they err by ~1e-7, i.e. ~1e-5 px on a 250 px region.
        a32 = torch.from_numpy(a.T.astype(np.float32)).to(dev)  # rows: d/du, d/dv, offset
        along_u = q[:, None] * a32[0]  # (S*k, 2)
        along_v = q[:, None] * a32[1] + a32[2]
        grid = along_u[None, :, :] + along_v[:, None, :]  # (S*k, S*k, 2) in one pass
        crop = torch.nn.functional.grid_sample(
            region.permute(2, 0, 1)[None],
            grid[None],
            mode="bilinear",
            padding_mode=pad,
            align_corners=False,
        )
        if k > 1:  # mean of each k×k block (strided sums: cheaper than avg_pool2d here)
            acc = crop[0, :, 0::k, 0::k].clone()
            for dy in range(k):
                for dx in range(k):
                    if dy or dx:
                        acc += crop[0, :, dy::k, dx::k]
            out[i] = acc.mul_(1.0 / (k * k))
        else:
            out[i] = crop[0]
    return out.permute(0, 2, 3, 1).round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()


def _warp_plan(
    frame_index: np.ndarray, matrices: np.ndarray, n: int, antialias: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked frame indices, crop→frame maps and supersampling factors of a warp (both paths).

    Returns:
        ``(fi, inv, ks)``: (F,) int64, (F, 2, 3) float64 and (F,) int64 — k x k samples per output
        pixel where the crop shrinks the face (antialiasing, at most 4), else 1.

    Raises:
        ValueError: matrices of the wrong shape or non-finite. IndexError: a frame index outside
            the batch.
    """
    fi = np.asarray(frame_index, dtype=np.int64)
    mats = np.asarray(matrices, dtype=np.float64)
    f = fi.shape[0]
    if f == 0:
        return fi, np.zeros((0, 2, 3)), np.zeros(0, np.int64)
    if mats.shape != (f, 2, 3):
        raise ValueError(f"matrices must be (F, 2, 3) = ({f}, 2, 3), got {mats.shape}")
    if fi.min() < 0 or fi.max() >= n:
        raise IndexError(f"frame_index must be in [0, {n}), got values in [{fi.min()}, {fi.max()}]")
    if not np.isfinite(mats).all():
        raise ValueError("matrices contain NaN or inf")
    if antialias:
        scale = np.sqrt(np.abs(np.linalg.det(mats[:, :, :2])))
        ks = np.clip(np.ceil(1.0 / np.maximum(scale, 1e-6) - 1e-9), 1, 4).astype(np.int64)
    else:
        ks = np.ones(f, np.int64)
    return fi, invert_affine(mats), ks


def warp_faces_numpy(
    images: np.ndarray,
    frame_index: np.ndarray,
    matrices: np.ndarray,
    size: int,
    *,
    border: BorderMode = "constant",
    antialias: bool = True,
) -> np.ndarray:
    """``warp_faces`` in numpy (the onnxruntime path, no torch): same arguments and sampling.

    The sample positions are computed in float64 where ``grid_sample`` uses float32 normalised
    ones, so a crop value within ~1e-4 of .5 may round the other way: measured at most 1 grey level
    on a few pixels per crop (``tests/test_numpy_twins.py``).

    Returns:
        (F, size, size, 3) uint8 crops.
    """
    if border not in ("constant", "replicate"):
        raise ValueError(f"border must be 'constant' or 'replicate', got {border!r}")
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be (N, H, W, 3) uint8, got {tuple(images.shape)} {images.dtype}")
    n, h, w, _ = images.shape
    fi, inv, ks = _warp_plan(frame_index, matrices, n, antialias)
    f = fi.shape[0]
    if f == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    out = np.empty((f, size, size, 3), np.float32)
    for i in range(f):
        k = int(ks[i])
        if border == "constant":
            # Sample j of the k-times finer grid sits at output index (j + 0.5) / k - 0.5: in the
            # centre convention of ``bilinear_warp``, frame = A (j' / k) + t + 0.5 - A·1 / 2.
            a2 = inv[i, :, :2]
            m = np.concatenate([a2 / k, (inv[i, :, 2] + 0.5 - 0.5 * a2.sum(axis=1))[:, None]], axis=1)
            out[i] = bilinear_warp(images[fi[i]], m, size * k, size * k, reduce=k)
            continue
        q = (np.arange(size * k, dtype=np.float64) + 0.5) / k - 0.5
        # Frame pixel-index position of every sample (grid_sample with align_corners=False over
        # the region is the same bilinear interpolation at these positions).
        gx = (inv[i, 0, 0] * q[None, :] + inv[i, 0, 1] * q[:, None]) + inv[i, 0, 2]
        gy = (inv[i, 1, 0] * q[None, :] + inv[i, 1, 1] * q[:, None]) + inv[i, 1, 2]
        x0, y0 = np.floor(gx), np.floor(gy)
        a, b, c, d = _bilinear_taps(images[fi[i]], x0, y0, border == "replicate")
        fx = (gx - x0).astype(np.float32)[..., None]
        fy = (gy - y0).astype(np.float32)[..., None]
        top = a + (b - a) * fx
        crop = top + ((c + (d - c) * fx) - top) * fy
        if k > 1:
            crop = crop.reshape(size, k, size, k, 3).mean(axis=(1, 3), dtype=np.float32)
        out[i] = crop
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _bilinear_taps(
    image: np.ndarray, x0: np.ndarray, y0: np.ndarray, replicate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The four bilinear taps, (..., 3) float32, at integer positions ``(x0, y0)`` and +1.

    Only the frame part the taps reach is read, padded with zeros (or edge pixels) outside the
    frame; pixels are gathered as packed RGBX uint32 words (one 1-D take per tap: 2x faster than
    gathering float rows).
    """
    h, w = image.shape[:2]
    # Taps far outside the frame read padding only; clipping bounds the region.
    ix = np.clip(x0, -2, w + 1).astype(np.intp)
    iy = np.clip(y0, -2, h + 1).astype(np.intp)
    lx, hx, ly, hy = int(ix.min()), int(ix.max()) + 1, int(iy.min()), int(iy.max()) + 1
    rw, rh = hx - lx + 1, hy - ly + 1
    if 4 * ix.size < rw * rh:
        # Few samples over a large region (the tracker's 16-px thumbnails of a whole face): gather
        # the taps straight from the frame instead of copying the region first (~10x cheaper).
        return _direct_taps(image, ix, iy, replicate)
    reg = np.zeros((rh, rw, 4), np.uint8)
    if replicate:
        ys = np.clip(np.arange(ly, hy + 1), 0, h - 1)
        xs = np.clip(np.arange(lx, hx + 1), 0, w - 1)
        reg[..., :3] = image[ys[:, None], xs[None, :]]
    else:
        sx0, sy0, sx1, sy1 = max(lx, 0), max(ly, 0), min(hx + 1, w), min(hy + 1, h)
        if sx1 > sx0 and sy1 > sy0:
            reg[sy0 - ly : sy1 - ly, sx0 - lx : sx1 - lx, :3] = image[sy0:sy1, sx0:sx1]
    flat = reg.view(np.uint32).reshape(-1)
    base = (iy - ly) * rw + (ix - lx)
    shape = (*ix.shape, 4)

    def tap(o: int) -> np.ndarray:
        return flat.take(base + o).view(np.uint8).reshape(shape)[..., :3].astype(np.float32)

    return tap(0), tap(1), tap(rw), tap(rw + 1)


def bilinear_warp(image: np.ndarray, m: np.ndarray, out_w: int, out_h: int, reduce: int = 1) -> np.ndarray:
    """Bilinear resampling of a uint8 frame with zeros outside it, by Pillow (C) in float.

    Args:
        image: (H, W, 3) uint8.
        m: (2, 3) affine map from output coordinates to frame coordinates, both with pixel centres
            at i + 0.5 (Pillow's and ``grid_sample(align_corners=False)``'s convention).
        out_w, out_h: output size.
        reduce: average each ``reduce`` x ``reduce`` block of the output (supersampling for
            antialiasing; Pillow's box reduction in C, float32).

    Returns:
        (out_h // reduce, out_w // reduce, 3) float32 interpolated values, not rounded.

    Why Pillow: the numpy taps cost ~2.5 ms per 192-px crop; Pillow's affine transform of 'F'
    planes samples in C (double precision) and is exact bilinear interpolation. It treats positions
    outside its image as fill and clamps taps at the border, so the frame region the samples reach
    is copied with a 1-pixel margin of zeros first: every tap then reads the zero-padded frame, as
    the numpy and torch paths do (``tests/test_onnx_exports.py`` compares them).
    """
    from PIL import Image

    h, w = image.shape[:2]
    # Pixel-index positions reached: centre-convention corners minus 0.5.
    corners = np.array([[0, 0, 1], [out_w, 0, 1], [0, out_h, 1], [out_w, out_h, 1]], np.float64)
    xy = corners @ np.asarray(m, np.float64).T - 0.5
    x0 = int(np.floor(np.clip(xy[:, 0].min(), -2, w + 1))) - 1
    y0 = int(np.floor(np.clip(xy[:, 1].min(), -2, h + 1))) - 1
    x1 = int(np.ceil(np.clip(xy[:, 0].max(), -2, w + 1))) + 2
    y1 = int(np.ceil(np.clip(xy[:, 1].max(), -2, h + 1))) + 2
    # Planar (3, h, w): each channel is a contiguous 'F' image without a further copy.
    reg = np.zeros((3, y1 - y0, x1 - x0), np.float32)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        reg[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1].transpose(2, 0, 1)
    coeffs = (m[0, 0], m[0, 1], m[0, 2] - x0, m[1, 0], m[1, 1], m[1, 2] - y0)
    out = np.empty((out_h // reduce, out_w // reduce, 3), np.float32)
    for ch in range(3):
        plane = Image.fromarray(reg[ch], "F")
        plane = plane.transform((out_w, out_h), Image.AFFINE, coeffs, Image.BILINEAR)
        out[..., ch] = np.asarray(plane.reduce(reduce) if reduce > 1 else plane)
    return out


def _direct_taps(
    image: np.ndarray, ix: np.ndarray, iy: np.ndarray, replicate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``_bilinear_taps`` by gathering each tap from the frame (same values, other cost profile)."""
    h, w = image.shape[:2]
    pixels = image.reshape(h * w, 3)
    cols = (np.clip(ix, 0, w - 1), np.clip(ix + 1, 0, w - 1))
    rows = (np.clip(iy, 0, h - 1) * w, np.clip(iy + 1, 0, h - 1) * w)
    taps = []
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        v = pixels.take(rows[dy] + cols[dx], axis=0).astype(np.float32)
        if not replicate:
            x, y = ix + dx, iy + dy
            v[(x < 0) | (x >= w) | (y < 0) | (y >= h)] = 0.0
        taps.append(v)
    return taps[0], taps[1], taps[2], taps[3]


def align_faces(
    images: np.ndarray | torch.Tensor,
    detections: Detections,
    *,
    size: int = 112,
    template: str | Template = "arcface",
    margin: float | None = None,
    border: BorderMode = "constant",
    antialias: bool = True,
    numpy: bool = False,
) -> AlignedFaces:
    """Align every detected face to the template (one batched warp).

    Args:
        images: (N, H, W, 3) uint8 RGB frames the detections refer to.
        detections: faces with 5 keypoints in ``schema.KEYPOINTS_5`` order.
        size: crop side in pixels (e.g. 96, 112, 176, 200, 224).
        template: template name (``TEMPLATES``; ``"arcface@1.3"`` also sets the margin) or ``Template``.
        margin: looseness (``None``: the template's own; 1.5 shows 1.5× more around the face).
        border: what lies outside the frame: ``"constant"`` black or ``"replicate"`` edges.
        antialias: supersample when a face is shrunk (see ``warp_faces``).
        numpy: warp with ``warp_faces_numpy`` (no torch; the onnxruntime path) instead of the
            PyTorch reference ``warp_faces``.

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
    warp = warp_faces_numpy if numpy else warp_faces
    crops = warp(images, detections.frame_index, mats, size, border=border, antialias=antialias)
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
