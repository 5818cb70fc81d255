"""The models used on the fast inference path export to ONNX (dynamic batch) and give the same
outputs in onnxruntime as in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebehavior.models import create_model

ort = pytest.importorskip("onnxruntime")
# Input-validation branches are constant under tracing (fixed face size), hence TracerWarnings.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::torch.jit.TracerWarning")


def _export_and_compare(model: torch.nn.Module, x: torch.Tensor, tmp_path, atol: float = 1e-4) -> None:
    model.eval()
    with torch.no_grad():
        ref = model(x)
    path = tmp_path / "model.onnx"
    torch.onnx.export(
        model,
        (x,),
        str(path),
        input_names=["input"],
        output_names=list(ref),
        dynamo=False,
        opset_version=17,
        dynamic_axes={"input": {0: "batch"}, **{k: {0: "batch"} for k in ref}},
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # Run at another batch size than the one traced: the batch axis must really be dynamic.
    x2 = torch.randn(x.shape[0] + 1, *x.shape[1:])
    with torch.no_grad():
        ref2 = model(x2)
    outs = sess.run(None, {"input": x2.numpy()})
    assert len(outs) == len(ref2)
    for (k, v), o in zip(ref2.items(), outs, strict=True):
        np.testing.assert_allclose(o, v.numpy(), atol=atol, rtol=1e-3, err_msg=k)


def test_facebehaviornet_mobile_exports_to_onnx(tmp_path):
    torch.manual_seed(0)
    _export_and_compare(
        create_model("facebehaviornet_mobile", in_channels=1), torch.randn(2, 1, 64, 64), tmp_path
    )


def test_mobilenetv2_backbone_exports_to_onnx(tmp_path):
    torch.manual_seed(0)
    _export_and_compare(create_model("mobilenetv2_tiny"), torch.randn(2, 3, 64, 64), tmp_path)


def test_facebehaviornet_tiny_exports_to_onnx(tmp_path):
    torch.manual_seed(0)
    _export_and_compare(create_model("facebehaviornet_tiny"), torch.randn(2, 3, 96, 96), tmp_path)


def test_arl_exports_to_onnx(tmp_path):
    # The tiny variant runs the same code (region layers, grouped AU branches, exact CRF); the
    # full-size export is exercised by benchmarks/model_speed.py --onnx.
    torch.manual_seed(0)
    _export_and_compare(create_model("arl_tiny"), torch.randn(2, 3, 48, 48), tmp_path, atol=1e-4)
