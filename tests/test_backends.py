"""Runtime helpers shared by the face networks: weight loading errors, runners, batched runs."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from facebehavior.backends import ConvertedWeights, load_converted, make_runner, run_batched
from facebehavior.face.detect.blazeface import BlazeFaceShortNet
from facebehavior.models.weights import CheckpointError, packaged_weights_dir

SHORT = ConvertedWeights(
    "blazeface_short.safetensors", "blazeface_short", "BlazeFace", "tools/convert_mediapipe.py"
)


def test_load_converted_loads_the_packaged_file():
    net = load_converted(BlazeFaceShortNet(), None, SHORT)
    assert not net.training
    assert all(p.dtype == torch.float32 for p in net.parameters())
    stored = load_file(str(packaged_weights_dir() / SHORT.file))
    torch.testing.assert_close(net.stem.weight.detach(), stored["stem.weight"].float(), rtol=0, atol=0)


def test_load_converted_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="BlazeFace weights not found.*tools/convert_mediapipe.py"):
        load_converted(BlazeFaceShortNet(), tmp_path / "missing.safetensors", SHORT)
    with pytest.raises(CheckpointError, match="'facemesh' weights, not 'blazeface_short'"):
        load_converted(BlazeFaceShortNet(), packaged_weights_dir() / "facemesh.safetensors", SHORT)
    with pytest.raises(CheckpointError, match="tensors do not match the BlazeFace network"):
        load_converted(nn.Linear(2, 2), None, SHORT)
    with pytest.raises(CheckpointError, match="folder"):
        load_converted(BlazeFaceShortNet(), tmp_path, SHORT)
    truncated = tmp_path / "truncated.safetensors"
    data = (packaged_weights_dir() / SHORT.file).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.safetensors"):
        load_converted(BlazeFaceShortNet(), truncated, SHORT)


def test_make_runner_rejects_bad_backends():
    net = nn.Conv2d(3, 2, 1)
    with pytest.raises(ValueError, match=r"valid: \['torch', 'onnx'\]"):
        make_runner(net, 8, "tensorrt", torch.device("cpu"))
    with pytest.raises(ValueError, match="CPU"):
        make_runner(net, 8, "onnx", torch.device("cuda"))


class _TwoHeads(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.sum((1, 2, 3)), x.amax((1, 2, 3))


def test_run_batched_equals_one_call():
    x = torch.arange(7 * 3 * 4 * 4, dtype=torch.float32).reshape(7, 3, 4, 4)
    runner = make_runner(_TwoHeads(), 4, "torch", torch.device("cpu"))
    total, peak = run_batched(runner, x, 3, device=torch.device("cpu"), divisor=255.0)
    ref_total, ref_peak = runner(x / 255.0)  # one call with the same runner (same memory format)
    torch.testing.assert_close(total, ref_total, rtol=0, atol=0)
    torch.testing.assert_close(peak, ref_peak, rtol=0, atol=0)
    (single,) = run_batched(
        make_runner(nn.Flatten(), 4, "torch", torch.device("cpu")), x, 2, device=torch.device("cpu")
    )
    assert single.shape == (7, 48)
    assert run_batched(runner, x[:0], 3, device=torch.device("cpu")) == ()
