"""Alignment: template, batched Umeyama, warp pixels, round trips, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facebehavior.face.align import (
    ARCFACE_112,
    TEMPLATES,
    DegenerateKeypointsError,
    align_faces,
    crop_matrices,
    estimate_similarity,
    invert_affine,
    points_to_crop,
    points_to_frame,
    template_points,
    transform_points,
    warp_faces,
)
from facebehavior.types import Detections

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _similarity(scale: float, angle_deg: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    c, s = scale * np.cos(a), scale * np.sin(a)
    return np.array([[c, -s, tx], [s, c, ty]])


def _dets(kp: np.ndarray, frame_index: np.ndarray | None = None) -> Detections:
    f = kp.shape[0]
    return Detections(
        frame_index=np.zeros(f, np.int64) if frame_index is None else frame_index,
        boxes=np.zeros((f, 4), np.float32),
        scores=np.ones(f, np.float32),
        keypoints=kp.astype(np.float32),
    )


def _umeyama_svd(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Textbook Umeyama (1991) with SVD, one face, for reference."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    u, d, vt = np.linalg.svd(cov)
    sgn = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ sgn @ vt
    c = np.trace(np.diag(d) @ sgn) / (xs**2).sum(1).mean()
    return np.concatenate([c * r, (mu_d - c * r @ mu_s)[:, None]], 1)


def test_template_defined_once_and_scales():
    np.testing.assert_allclose(template_points("arcface", 112), ARCFACE_112, atol=1e-12)
    for size in (96, 112, 176, 200, 224):
        p = template_points("arcface", size)
        # pixel-edge coordinates scale linearly with the crop side
        np.testing.assert_allclose((p + 0.5) / size, (ARCFACE_112 + 0.5) / 112, atol=1e-12)
    loose = template_points("arcface", 224, margin=1.5)
    c = (224 - 1) / 2
    np.testing.assert_allclose(loose - c, (template_points("arcface", 224) - c) / 1.5, atol=1e-12)
    np.testing.assert_allclose(template_points("arcface_loose", 224), loose)
    assert "arcface" in TEMPLATES
    with pytest.raises(KeyError, match="valid"):
        template_points("nope")


def test_similarity_recovers_known_transform_batched():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, (6, 5, 2))
    truth = np.stack(
        [_similarity(rng.uniform(0.2, 3), rng.uniform(-170, 170), *rng.uniform(-50, 50, 2)) for _ in range(6)]
    )
    dst = transform_points(src, truth)
    np.testing.assert_allclose(estimate_similarity(src, dst), truth, atol=1e-9)


def test_similarity_matches_svd_umeyama_on_noisy_points():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 300, (4, 5, 2))
    dst = ARCFACE_112 + rng.normal(0, 3, (4, 5, 2))
    got = estimate_similarity(src, dst)
    for i in range(4):
        np.testing.assert_allclose(got[i], _umeyama_svd(src[i], dst[i]), atol=1e-9)


def test_template_keypoints_land_on_template():
    rng = np.random.default_rng(2)
    m = np.stack([_similarity(0.4, 25, 100, 50), _similarity(2.5, -60, -30, 400)])
    kp = transform_points(np.broadcast_to(ARCFACE_112, (2, 5, 2)), invert_affine(m))  # frame keypoints
    images = rng.integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
    for size in (96, 224):
        al = align_faces(images, _dets(kp), size=size)
        assert al.crops.shape == (2, size, size, 3) and al.crops.dtype == np.uint8
        np.testing.assert_allclose(
            points_to_crop(al, kp), np.broadcast_to(template_points("arcface", size), (2, 5, 2)), atol=1e-3
        )
        assert al.template == "arcface"


def test_round_trip_frame_crop_frame():
    rng = np.random.default_rng(3)
    kp = ARCFACE_112 * 2.0 + rng.normal(0, 4, (5, 5, 2)) + rng.uniform(50, 300, (5, 1, 2))
    images = np.zeros((2, 480, 640, 3), np.uint8)
    al = align_faces(images, _dets(kp, np.array([0, 1, 0, 1, 1])), size=112, margin=1.3)
    pts = rng.uniform(0, 640, (5, 20, 2))
    back = points_to_frame(al, points_to_crop(al, pts))
    assert np.abs(back - pts).max() < 0.5
    assert np.abs(back - pts).max() < 1e-2  # float32 matrices: far better than the 0.5 px bound
    np.testing.assert_allclose(
        al.matrices[:, :, :2] @ al.inverse[:, :, :2], np.broadcast_to(np.eye(2), (5, 2, 2)), atol=1e-5
    )
    assert al.template == "arcface@1.3"
    # the recorded name reproduces the same alignment (e.g. stored in a WeightSpec)
    again = align_faces(images, _dets(kp, np.array([0, 1, 0, 1, 1])), size=112, template=al.template)
    np.testing.assert_array_equal(again.matrices, al.matrices)
    assert again.template == "arcface@1.3"
    assert align_faces(images, _dets(kp[:1]), template="arcface_loose").template == "arcface_loose"
    with pytest.raises(KeyError, match="margin"):
        template_points("arcface@wide")


def test_warp_matches_expected_pixels_of_linear_image():
    # On a linear ramp, bilinear interpolation is exact: every crop pixel must equal the ramp at
    # the analytically back-projected position (up to uint8 rounding of image and crop).
    h, w = 300, 400
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = lambda x, y: np.stack([20 + 0.5 * x, 30 + 0.6 * y, 10 + 0.2 * x + 0.3 * y], -1)  # noqa: E731
    img = np.round(ramp(xx, yy)).astype(np.uint8)[None]
    m = _similarity(1.3, 17.0, -120.0, -40.0)  # frame -> crop, a pure enlargement (no antialias)
    crop = warp_faces(img, np.array([0]), m[None], 96)[0]
    inv = invert_affine(m[None])[0]
    v, u = np.mgrid[0:96, 0:96].astype(np.float64)
    x = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    y = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    assert inside.mean() > 0.8
    expected = ramp(x, y)
    assert np.abs(crop[inside].astype(float) - expected[inside]).max() <= 1.0
    # pixels whose source lies wholly outside the frame are black with the constant border
    outside = (x < -1) | (x > w) | (y < -1) | (y > h)
    assert (crop[outside] == 0).all()


def test_integer_translation_is_an_exact_slice_and_border_modes():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    m = np.array([[[1.0, 0, -10], [0, 1.0, -5]], [[1.0, 0, 30], [0, 1.0, 0]]])  # crop = frame[y+5, x+10]
    crops = warp_faces(img, np.array([1, 0]), m, 32)
    np.testing.assert_array_equal(crops[0], img[1, 5:37, 10:42])
    # second face starts 30 px left of the frame: constant border -> black, replicate -> edge column
    np.testing.assert_array_equal(crops[1][:, :30], 0)
    np.testing.assert_array_equal(crops[1][:, 30:], img[0, :32, :2])
    rep = warp_faces(img, np.array([0]), m[1:], 32, border="replicate")[0]
    np.testing.assert_array_equal(rep[:, :30], np.repeat(img[0, :32, :1], 30, axis=1))


def test_antialias_downscale_averages():
    # A 1-px checkerboard shrunk 4x must come out mid-grey, not aliased black/white.
    yy, xx = np.mgrid[0:400, 0:400]
    img = np.repeat((((xx + yy) % 2) * 255).astype(np.uint8)[None, ..., None], 3, -1)
    m = _similarity(0.25, 0, 0, 0)[None]
    crop = warp_faces(img, np.array([0]), m, 64)[0][2:-2, 2:-2]  # away from the black border
    assert np.abs(crop.astype(float) - 127.5).max() < 20
    aliased = warp_faces(img, np.array([0]), m, 64, antialias=False)[0][2:-2, 2:-2]
    assert np.abs(aliased.astype(float) - 127.5).max() > 100


def test_real_photo_alignment_puts_eyes_on_template():
    from facebehavior.face.detect import create_detector

    im = np.asarray(Image.open(FIXTURES / "photos" / "group3.jpg").convert("RGB"))[None]
    dets = create_detector("mtcnn", min_face_size=40)(im)
    assert len(dets) >= 3
    al = align_faces(im, dets, size=112)
    kp_crop = points_to_crop(al, dets.keypoints)
    # 5-point fit residuals on real faces stay within a few pixels of the template
    assert np.abs(kp_crop - ARCFACE_112).max() < 12
    # faces are brighter than the black border in the eye region
    assert al.crops[:, 40:60, 30:80].mean() > 30


def test_degenerate_and_bad_keypoints_raise():
    kp = np.repeat(ARCFACE_112[None], 3, 0).copy()
    kp[1] = 42.0  # all five points identical
    with pytest.raises(DegenerateKeypointsError, match=r"face\(s\) \[1\]"):
        crop_matrices(kp)
    kp[1] = ARCFACE_112
    kp[2, 0, 0] = np.nan
    with pytest.raises(DegenerateKeypointsError, match=r"\[2\]"):
        align_faces(np.zeros((1, 10, 10, 3), np.uint8), _dets(kp))
    with pytest.raises(ValueError, match=r"\(F, 5, 2\)"):
        crop_matrices(np.zeros((2, 68, 2)))
    with pytest.raises(ValueError, match="uint8"):
        warp_faces(np.zeros((1, 10, 10, 3), np.float32), np.array([0]), np.eye(2, 3)[None], 8)
    with pytest.raises(IndexError, match="frame_index"):
        warp_faces(np.zeros((1, 10, 10, 3), np.uint8), np.array([1]), np.eye(2, 3)[None], 8)


def test_empty_detections():
    al = align_faces(np.zeros((1, 10, 10, 3), np.uint8), Detections.empty(), size=96)
    assert al.crops.shape == (0, 96, 96, 3) and al.matrices.shape == (0, 2, 3)


def _reference_warp(img: np.ndarray, m: np.ndarray, size: int, border: str) -> np.ndarray:
    """Textbook float64 bilinear warp of a whole frame with k×k supersampling, one face."""
    h, w = img.shape[:2]
    k = int(min(4, max(1, np.ceil(1.0 / np.sqrt(abs(np.linalg.det(m[:, :2]))) - 1e-9))))
    inv = invert_affine(m[None])[0]
    q = (np.arange(size * k) + 0.5) / k - 0.5
    v, u = np.meshgrid(q, q, indexing="ij")
    x = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    y = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    out = np.zeros((size * k, size * k, 3))
    for dy in (0, 1):
        for dx in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            wt = (1 - np.abs(x - xi)) * (1 - np.abs(y - yi))
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            val = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)].astype(np.float64)
            if border == "constant":
                val[~inside] = 0
            out += wt[..., None] * val
    out = out.reshape(size, k, size, k, 3).mean(axis=(1, 3))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("border", ["constant", "replicate"])
def test_region_warp_matches_whole_frame_reference(border):
    # warp_faces reads only the region around each face; it must equal a plain warp of the whole
    # frame, including faces cut by the frame edge or wholly outside it, and each face must get its
    # own supersampling factor (its crop does not depend on the other faces of the batch).
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (2, 90, 120, 3), dtype=np.uint8)
    mats = np.stack(
        [
            _similarity(0.8, 12.0, -20.0, -15.0),  # inside, mild shrink (k = 2)
            _similarity(0.3, -30.0, 10.0, 5.0),  # strong shrink (k = 4), cut by the edges
            _similarity(1.7, 5.0, -150.0, -60.0),  # enlargement near the right edge (k = 1)
            _similarity(1.0, 0.0, 200.0, 0.0),  # wholly outside the frame
        ]
    )
    fi = np.array([0, 1, 1, 0])
    got = warp_faces(img, fi, mats, 24, border=border)
    for i in range(len(mats)):
        ref = _reference_warp(img[fi[i]], mats[i], 24, border)
        diff = np.abs(got[i].astype(int) - ref.astype(int))
        assert diff.max() <= 1, (i, diff.max())  # float32 vs float64 rounding only
        assert (diff == 0).mean() > 0.97
    alone = warp_faces(img, fi[2:3], mats[2:3], 24, border=border)
    np.testing.assert_array_equal(alone[0], got[2])


@pytest.mark.parametrize("replicate", [False, True])
def test_direct_and_region_bilinear_taps_agree(replicate):
    """The numpy warp gathers taps straight from the frame for small outputs of large regions and
    through a copied region otherwise: both give the same values, padding included."""
    from facebehavior.face.align import _bilinear_taps, _direct_taps

    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    # Every integer position from 2 px outside the frame to 2 px beyond it: dense enough for the
    # region path (4 x samples >= region pixels).
    y0, x0 = np.mgrid[-2:52, -2:72].astype(np.float64)
    region = _bilinear_taps(image, x0, y0, replicate)
    direct = _direct_taps(image, x0.astype(np.intp), y0.astype(np.intp), replicate)
    for a, b in zip(direct, region, strict=True):
        np.testing.assert_array_equal(a, b)
    assert region[0][0, 0].tolist() == (
        [0.0] * 3 if not replicate else image[0, 0].astype(np.float32).tolist()
    )
