"""The torch-free onnxruntime path: shipped ONNX exports against the PyTorch reference, numpy
twins of the preprocessing, and an analysis that never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from facebehavior.backends import OnnxNet, resolve_backend  # noqa: E402
from facebehavior.models.weights import packaged_weights_dir, sha256_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NAMES = ("blazeface_short", "blazeface_full", "facemesh", "facemesh_v2", "blendshapes_v2", "fbn_fusion",
         "fbn_mobile_ferplus")  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_shipped_export_matches_torch_and_card(name):
    sys.path.insert(0, str(REPO / "tools"))
    import export_onnx

    e = next(x for x in export_onnx.exports() if x.name == name)
    path = packaged_weights_dir() / f"{name}.onnx"
    card = path.with_suffix(".md").read_text()
    assert f"**onnx sha256**: `{sha256_file(path)}`" in card
    net = OnnxNet(path, threads=1)
    meta = net.session.get_modelmeta().custom_metadata_map
    assert meta["facebehavior.source_sha256"] == sha256_file(path.with_suffix(".safetensors"))
    xs = e.inputs(3)
    with torch.no_grad():
        ref = e.build()(*xs)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = net(*(x.numpy() for x in xs))
    got = got if isinstance(got, tuple) else (got,)
    for g, r in zip(got, ref, strict=True):
        # Tolerance: float32 reassociation in onnxruntime's kernels (measured <= 4e-4 on FaceMesh
        # V2's pixel outputs, <= 4e-6 elsewhere); a wrong weight or op would be off by far more.
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-5, atol=1e-3)


def test_preprocess_numpy_is_bit_identical():
    from facebehavior.models.transforms import preprocess, preprocess_numpy
    from facebehavior.models.weights import InputSpec

    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (20, 48, 48, 3), dtype=np.uint8)
    for ch in (1, 3):
        inp = InputSpec(size=48, channels=ch, mean=(0.5,) * ch, std=(0.25,) * ch, template="arcface")
        assert np.array_equal(preprocess_numpy(crops, inp), preprocess(crops, inp).numpy())
    with pytest.raises(ValueError, match="model size"):
        preprocess_numpy(crops[:, :40, :40], inp)


def test_numpy_crops_and_warps_match_torch():
    from facebehavior.face.align import warp_faces, warp_faces_numpy
    from facebehavior.face.landmarks.facemesh import FaceRoi, crop_rois, crop_rois_numpy

    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    rois = FaceRoi(
        frame_index=np.array([0, 1, 1]),
        center=np.array([[80, 60], [10, 100], [150, 5]], np.float32),
        size=np.array([90, 60, 200], np.float32),
        angle=np.array([0.3, -1.0, 2.0], np.float32),
    )
    exact = crop_rois(img, rois, 64, sampling="mediapipe", border="replicate").numpy()
    assert np.array_equal(crop_rois_numpy(img, rois, 64, sampling="mediapipe", border="replicate"), exact)
    a, b = crop_rois(img, rois, 64).numpy(), crop_rois_numpy(img, rois, 64)
    assert np.abs(a - b).max() <= 1 and (a != b).mean() < 1e-3
    mats = np.array(
        [[[0.5, 0.1, -10], [-0.1, 0.5, 3]], [[2, 0, -5], [0, 2, -7]], [[0.2, 0, 40], [0, 0.2, -3]]]
    )
    for border in ("constant", "replicate"):
        a = warp_faces(img, rois.frame_index, mats, 24, border=border).astype(int)
        b = warp_faces_numpy(img, rois.frame_index, mats, 24, border=border).astype(int)
        # measured: 3.5 % of values 1 grey level apart (float32 vs float64 positions, block means)
        assert np.abs(a - b).max() <= 1 and (a != b).mean() < 0.05


def test_auto_backend_and_env(monkeypatch):
    assert resolve_backend("auto", "cpu") == "onnx"
    assert resolve_backend("auto", "cuda:0") == "torch"
    monkeypatch.setenv("FACEBEHAVIOR_BACKEND", "torch")
    assert resolve_backend("auto", "cpu") == "torch"
    monkeypatch.setenv("FACEBEHAVIOR_BACKEND", "tpu")
    with pytest.raises(ValueError, match="FACEBEHAVIOR_BACKEND"):
        resolve_backend("auto", "cpu")
    with pytest.raises(ValueError, match="valid"):
        resolve_backend("tensorrt", "cpu")


@pytest.mark.slow
def test_analysis_never_imports_torch():
    code = (
        "import sys\nfrom facebehavior import Analyzer\n"
        "df = Analyzer().analyze('samples/video.mp4')\n"
        "assert len(df) > 0 and df['success'].all()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
