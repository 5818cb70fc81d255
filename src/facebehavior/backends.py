"""Inference runtimes and weight loading shared by the ported face networks.

BlazeFace, FaceMesh, Face Mesh V2, Blendshape V2 and MTCNN all ship as converted safetensors
files with a ``WeightSpec`` in their metadata and run either in PyTorch or, exported to ONNX in
memory, in onnxruntime. This module holds that machinery once:

* ``load_converted``: packaged (or given) weight file → network in eval mode, with actionable
  errors for a missing file, another model's file, a corrupt file or mismatched tensors;
* ``make_runner`` / ``TorchNet`` / ``OnnxNet``: the callable that runs a network on a batch;
* ``load_runner``: both at once, as the detector and landmarker constructors need them;
* ``run_batched``: a runner over a large batch in bounded chunks.

Nothing is loaded or exported at import.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "BACKENDS",
    "ConvertedWeights",
    "MissingWeightsError",
    "OnnxNet",
    "Runner",
    "TorchNet",
    "export_onnx",
    "load_converted",
    "load_runner",
    "make_runner",
    "run_batched",
]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")

NetT = TypeVar("NetT", bound=nn.Module)


class MissingWeightsError(FileNotFoundError):
    """A packaged or given weight file does not exist (the message says how to regenerate it).

    A ``FileNotFoundError`` rather than a ``facebehavior.models.weights.CheckpointError``: the
    latter would make importing a face detector import the whole model zoo (and risk an import
    cycle once a model uses a face network), and a missing file is what ``FileNotFoundError``
    means.
    """


@dataclass(frozen=True)
class ConvertedWeights:
    """A converted network's packaged weight file and how errors should name it.

    Attributes:
        file: packaged file name under ``facebehavior/weights``.
        architecture: the ``WeightSpec.architecture`` the file must declare.
        label: the model's name in error messages.
        tool: the script that regenerates the file (named when it is missing).
    """

    file: str
    architecture: str
    label: str
    tool: str


def load_converted(net: NetT, path: str | Path | None, source: ConvertedWeights) -> NetT:
    """Load a converted checkpoint into ``net`` strictly (float32, eval mode).

    Args:
        net: the freshly built network.
        path: the checkpoint; ``None`` for the packaged ``source.file``.
        source: what the file must hold and how to name it in errors.

    Returns:
        ``net`` with the weights loaded, in eval mode.

    Raises:
        MissingWeightsError: the file does not exist (a ``FileNotFoundError``).
        facebehavior.models.weights.CheckpointError: a folder, a corrupt file, another model's
            weights or tensors that do not match ``net``.
    """
    from safetensors.torch import load_file

    from facebehavior.models.weights import CheckpointError, packaged_weights_dir, read_spec

    path = Path(path) if path is not None else packaged_weights_dir() / source.file
    if not path.exists():
        raise MissingWeightsError(
            f"{path}: {source.label} weights not found; reinstall facebehavior or regenerate them "
            f"with {source.tool}"
        )
    spec = read_spec(path)  # folders, unreadable headers and files without a spec raise here
    if spec.architecture != source.architecture:
        raise CheckpointError(f"{path}: holds {spec.architecture!r} weights, not {source.architecture!r}")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises several types on truncated files
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
    own = net.state_dict()
    bad = sorted(set(own) ^ set(state)) + sorted(
        k for k in set(own) & set(state) if own[k].shape != state[k].shape
    )
    if bad:
        raise CheckpointError(f"{path}: tensors do not match the {source.label} network: {bad[:5]}")
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.eval()


def export_onnx(net: nn.Module, input_size: int) -> bytes:
    """Export an image network to an in-memory ONNX model with a dynamic batch axis.

    Args:
        net: module taking (N, 3, input_size, input_size) float32.
        input_size: side of its square input.

    Returns:
        The serialised ONNX model.
    """
    import io
    import warnings

    x = torch.zeros(2, 3, input_size, input_size)
    buf = io.BytesIO()
    try:
        # The TorchScript exporter takes ~1 s; torch.export's (the fallback) ~25 s.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (x,),
                buf,
                input_names=["x"],
                dynamic_axes={"x": {0: "n"}},
                dynamo=False,
                opset_version=17,
            )
        return buf.getvalue()
    except Exception as e:  # the legacy exporter is deprecated and may be gone in a future torch
        logger.info("TorchScript ONNX export unavailable (%s); using torch.export", e)
        program = torch.onnx.export(net, (x,), dynamo=True, dynamic_shapes={"x": {0: torch.export.Dim("n")}})
        return program.model_proto.SerializeToString()


class OnnxNet:
    """Runs a ported network in onnxruntime instead of PyTorch (CPU).

    The network is exported to ONNX in memory when built (no files, no network access); outputs
    match the PyTorch module to float rounding (``tests/test_blazeface.py``). Measured faster on
    CPU for BlazeFace (``benchmarks/face_models_speed.py``); PyTorch stays the reference.
    """

    def __init__(self, net: nn.Module, input_size: int, threads: int | None = None) -> None:
        """Args:
        net: the PyTorch module (eval mode, CPU).
        input_size: side of its square input.
        threads: onnxruntime intra-op threads; ``None`` uses torch's current setting.
        """
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError(
                "backend='onnx' needs onnxruntime; install it with pip install 'facebehavior[onnx]' "
                "or use backend='torch'"
            ) from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            export_onnx(net.eval().cpu(), input_size), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outs = self.session.run(None, {self.input_name: x.detach().cpu().numpy().astype(np.float32)})
        tensors = tuple(torch.from_numpy(o) for o in outs)
        return tensors[0] if len(tensors) == 1 else tensors


class TorchNet:
    """Runs a ported network in PyTorch with channels-last tensors.

    Channels-last lets the CPU use oneDNN for the depthwise convolutions: measured 71 → 31 ms
    for full-range BlazeFace at batch 1 on one thread, same outputs to float rounding.
    """

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        self.net = net.eval().to(device, memory_format=torch.channels_last)
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.net(x.to(self.device).contiguous(memory_format=torch.channels_last))


Runner = TorchNet | OnnxNet


def _check_backend(backend: str, device: torch.device) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {list(BACKENDS)}")
    if backend == "onnx" and device.type != "cpu":
        raise ValueError(f"backend='onnx' runs on the CPU; got device {device}; use backend='torch'")


def make_runner(net: nn.Module, input_size: int, backend: str, device: torch.device) -> Runner:
    """Wrap a network for inference with PyTorch on ``device`` or onnxruntime (``backend``).

    Args:
        net: the PyTorch module (the reference and the ONNX export source).
        input_size: side of its square image input.
        backend: ``"torch"`` or ``"onnx"`` (CPU only).
        device: torch device for the ``"torch"`` backend.
    """
    _check_backend(backend, device)
    if backend == "onnx":
        return OnnxNet(net, input_size)
    return TorchNet(net, device)


def load_runner(
    net: NetT,
    path: str | Path | None,
    source: ConvertedWeights,
    *,
    input_size: int,
    backend: str,
    device: torch.device,
) -> tuple[NetT, Runner]:
    """``load_converted`` then ``make_runner``; the backend is checked before any file is read.

    Args:
        net: the freshly built network.
        path: the checkpoint; ``None`` for the packaged ``source.file``.
        source: what the file must hold and how to name it in errors.
        input_size: side of the network's square input (for the ONNX export).
        backend: ``"torch"`` or ``"onnx"``.
        device: torch device for the ``"torch"`` backend.

    Returns:
        ``(net, runner)``: the loaded PyTorch module (the reference) and its runner.
    """
    _check_backend(backend, device)
    net = load_converted(net, path, source)
    return net, make_runner(net, input_size, backend, device)


def run_batched(
    runner: Runner, x: torch.Tensor, batch_size: int, *, device: torch.device, divisor: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """Run ``runner`` on ``x`` in chunks of ``batch_size`` and concatenate each output on the CPU.

    Args:
        runner: a ``make_runner`` result returning one tensor or a tuple of tensors.
        x: (N, ...) inputs; each chunk is moved to ``device`` as float32 and divided by
            ``divisor`` (e.g. 255 for pixel values) before the call.
        batch_size: most inputs per call (bounds memory on crowded frames).
        device: where the chunks go.
        divisor: input divisor.

    Returns:
        One (N, ...) CPU tensor per network output; empty tuple when ``x`` is empty.
    """
    chunks: list[tuple[torch.Tensor, ...]] = []
    for i in range(0, len(x), batch_size):
        out = runner(x[i : i + batch_size].to(device, torch.float32) / divisor)
        chunks.append(tuple(o.cpu() for o in (out if isinstance(out, tuple) else (out,))))
    return tuple(torch.cat(parts) for parts in zip(*chunks, strict=True))
