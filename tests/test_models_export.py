"""The models used on the fast inference path export to ONNX and give the same outputs there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebehavior.models import create_model

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _export_and_compare(model: torch.nn.Module, x: torch.Tensor, tmp_path, atol: float = 1e-4) -> None:
    model.eval()
    with torch.no_grad():
        ref = model(x)
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model, (x,), str(path), input_names=["input"], output_names=list(ref), dynamo=False, opset_version=17
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input": x.numpy()})
    for (k, v), o in zip(ref.items(), outs, strict=True):
        np.testing.assert_allclose(o, v.numpy(), atol=atol, rtol=1e-3, err_msg=k)


def test_facebehaviornet_mobile_exports_to_onnx(tmp_path):
    torch.manual_seed(0)
    _export_and_compare(
        create_model("facebehaviornet_mobile", in_channels=1), torch.randn(2, 1, 64, 64), tmp_path
    )


def test_facebehaviornet_tiny_exports_to_onnx(tmp_path):
    torch.manual_seed(0)
    _export_and_compare(create_model("facebehaviornet_tiny"), torch.randn(2, 3, 96, 96), tmp_path)


def test_arl_exports_to_onnx(tmp_path):
    # The tiny variant runs the same code (region layers, grouped AU branches, exact CRF); the
    # full-size export is timed in benchmarks/model_speed.py --onnx.
    torch.manual_seed(0)
    _export_and_compare(create_model("arl_tiny"), torch.randn(2, 3, 48, 48), tmp_path, atol=1e-4)
