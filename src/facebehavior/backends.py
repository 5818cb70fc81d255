"""Inference runtimes and weight loading shared by the face networks and the affect model.

BlazeFace, FaceMesh, Face Mesh V2, Blendshape V2 and MTCNN ship as converted safetensors files with
a ``WeightSpec`` in their metadata; the networks the default analysis runs also ship as ONNX exports
of those files (``tools/export_onnx.py``, same folder, same name with ``.onnx``). They run either in
PyTorch (the reference, any device, training) or in onnxruntime (CPU). This module holds that
machinery once, and is where the runtime is chosen:

* ``resolve_backend``: ``"auto"`` → ``"onnx"`` on the CPU when onnxruntime is installed, else
  ``"torch"``; the one place that decides;
* ``load_converted``: packaged (or given) weight file → PyTorch network in eval mode, with
  actionable errors for a missing file, another model's file, a corrupt file or mismatched tensors;
* ``make_runner`` / ``TorchNet`` / ``OnnxNet``: the callable that runs a network on a batch;
* ``load_runner``: both at once, as the detector and landmarker constructors need them; with
  ``backend="onnx"`` and the packaged weights it opens the shipped ``.onnx`` file and never imports
  torch (the whole CPU analysis then runs without it: ~220 MiB less memory, ~1 s less start-up);
* ``run_batched`` / ``run_batched_numpy``: a runner over a large batch in bounded chunks.

Nothing is loaded or exported at import, and importing this module does not import torch.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    import torch
    import torch.nn as nn

__all__ = [
    "BACKENDS",
    "BACKEND_CHOICES",
    "ConvertedWeights",
    "MissingWeightsError",
    "OnnxNet",
    "Runner",
    "TorchNet",
    "export_onnx",
    "load_converted",
    "load_runner",
    "make_runner",
    "onnx_available",
    "packaged_onnx",
    "resolve_backend",
    "run_batched",
    "run_batched_numpy",
]

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx")
BACKEND_CHOICES = ("auto", *BACKENDS)

NetT = TypeVar("NetT")


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

    @property
    def onnx_file(self) -> str:
        """Name of the packaged ONNX export (``tools/export_onnx.py``) next to ``file``."""
        return str(Path(self.file).with_suffix(".onnx"))


def onnx_available() -> bool:
    """Whether onnxruntime can be imported (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _device_type(device: Any) -> str:
    return str(getattr(device, "type", device)).split(":")[0]


def resolve_backend(backend: str, device: Any = "cpu") -> str:
    """The runtime ``backend`` asks for on ``device``: the one place where ``"auto"`` is decided.

    Args:
        backend: ``"auto"``, ``"torch"`` or ``"onnx"``.
        device: a torch device or its name (``"cpu"``, ``"cuda:0"`` …).

    Returns:
        ``"onnx"`` for ``"auto"`` on the CPU when onnxruntime is installed (measured faster and
        ~220 MiB leaner, see ``docs/pipeline.md``), otherwise ``"torch"``; other values unchanged.
        ``$FACEBEHAVIOR_BACKEND`` (``torch`` or ``onnx``) replaces what ``"auto"`` picks, e.g. to
        run the PyTorch reference from the command line.

    Raises:
        ValueError: an unknown backend, or ``"onnx"`` on a device other than the CPU.
    """
    if backend not in BACKEND_CHOICES:
        raise ValueError(f"unknown backend {backend!r}; valid: {list(BACKEND_CHOICES)}")
    cpu = _device_type(device) == "cpu"
    if backend == "auto":
        env = os.environ.get("FACEBEHAVIOR_BACKEND", "").strip().lower()
        if env not in ("", "auto", *BACKENDS):
            raise ValueError(f"FACEBEHAVIOR_BACKEND={env!r}: expected one of {list(BACKEND_CHOICES)}")
        if env in BACKENDS:
            backend = env
        else:
            return "onnx" if cpu and onnx_available() else "torch"
    if backend == "onnx" and not cpu:
        raise ValueError(f"backend='onnx' runs on the CPU; got device {device}; use backend='torch'")
    return backend


def _weights_dir() -> Path:
    # ``models.weights.packaged_weights_dir`` without importing the model zoo package.
    return Path(__file__).resolve().parent / "weights"


def packaged_onnx(source: ConvertedWeights) -> Path | None:
    """The packaged ONNX export of ``source``, or ``None`` when this installation lacks it."""
    path = _weights_dir() / source.onnx_file
    return path if path.is_file() else None


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


def export_onnx(
    net: nn.Module,
    input_size: int | None = None,
    *,
    inputs: tuple[torch.Tensor, ...] | None = None,
    input_names: tuple[str, ...] = ("x",),
    output_names: tuple[str, ...] | None = None,
) -> bytes:
    """Export a network to an in-memory ONNX model with a dynamic batch axis (opset 17).

    Args:
        net: the module (eval mode, CPU).
        input_size: side of its square image input: the example input is (2, 3, S, S) zeros.
        inputs: example inputs instead (each with the batch first), e.g. crops and blendshapes.
        input_names: names of the graph inputs, in ``forward`` order.
        output_names: names of the graph outputs (a dict output is flattened in its key order).

    Returns:
        The serialised ONNX model. The TorchScript exporter's output is deterministic for a given
        torch version and weights (``tools/export_onnx.py`` relies on it).
    """
    import io
    import warnings

    import torch

    if inputs is None:
        if input_size is None:
            raise ValueError("export_onnx needs input_size or example inputs")
        inputs = (torch.zeros(2, 3, input_size, input_size),)
    axes = {name: {0: "n"} for name in (*input_names, *(output_names or ()))}
    buf = io.BytesIO()
    try:
        # The TorchScript exporter takes ~1 s; torch.export's (the fallback) ~25 s.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                inputs,
                buf,
                input_names=list(input_names),
                output_names=None if output_names is None else list(output_names),
                dynamic_axes=axes,
                dynamo=False,
                opset_version=17,
            )
        return buf.getvalue()
    except Exception as e:  # the legacy exporter is deprecated and may be gone in a future torch
        logger.info("TorchScript ONNX export unavailable (%s); using torch.export", e)
        n = torch.export.Dim("n")
        shapes = {name: {0: n} for name in input_names}
        program = torch.onnx.export(net, inputs, dynamo=True, dynamic_shapes=shapes)
        return program.model_proto.SerializeToString()


def _scoped_threads() -> int:
    """The thread count the library runs with right now (``_runtime.active_threads``)."""
    from facebehavior._runtime import active_threads

    return active_threads()


class OnnxNet:
    """Runs a network in onnxruntime (CPU) on numpy arrays.

    Built from a shipped ``.onnx`` file (no torch involved) or from a PyTorch module exported in
    memory. Outputs match the PyTorch module to float rounding (``tests/test_onnx_exports.py``).
    The session uses ``threads`` intra-op threads (``None``: the count the library runs with at
    call time, ``_runtime.scoped_threads``, default 1) and one inter-op thread; it is rebuilt if a
    later call runs under another count, so ``Analyzer(threads=...)`` applies to it as to torch.
    onnxruntime's own thread pools are per session: nothing process-wide is changed.
    """

    def __init__(
        self, model: nn.Module | bytes | str | Path, input_size: int | None = None, threads: int | None = None
    ) -> None:
        """Args:
        model: an ``.onnx`` path, serialised ONNX bytes, or a PyTorch module to export.
        input_size: side of the module's square input (only to export a module).
        threads: onnxruntime intra-op threads; ``None`` follows the library's scoped count.
        """
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ImportError(
                "backend='onnx' needs onnxruntime; install it with pip install onnxruntime "
                "or use backend='torch'"
            ) from None
        if isinstance(model, (str, Path)):
            self.model: bytes = Path(model).read_bytes()
        elif isinstance(model, bytes):
            self.model = model
        else:
            self.model = export_onnx(model.eval().cpu(), input_size)
        self.fixed_threads = threads
        self._threads = -1
        self.session: Any = None
        self._open()

    def _open(self) -> None:
        import onnxruntime as ort

        threads = self.fixed_threads or _scoped_threads()
        if threads == self._threads and self.session is not None:
            return
        opts = ort.SessionOptions()
        # 0 lets onnxruntime pick (one thread per core), as 0 leaves torch's own setting.
        opts.intra_op_num_threads = max(int(threads), 0)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # No arena: it keeps the largest batch's activations for good (sample video: peak 465 -> 371 MiB).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        self.session = ort.InferenceSession(self.model, opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_name = self.input_names[0]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._threads = threads

    def __call__(self, *xs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Run on (N, ...) float32 inputs (numpy, or anything ``np.asarray`` takes) in graph order.

        Returns:
            One (N, ...) float32 array, or a tuple of them for several graph outputs.
        """
        if self.fixed_threads is None:
            self._open()
        if len(xs) != len(self.input_names):
            raise ValueError(
                f"the network takes {len(self.input_names)} input(s) {self.input_names}, got {len(xs)}"
            )
        feed = {
            n: np.ascontiguousarray(np.asarray(x, np.float32))
            for n, x in zip(self.input_names, xs, strict=True)
        }
        outs = self.session.run(None, feed)
        return outs[0] if len(outs) == 1 else tuple(outs)


class TorchNet:
    """Runs a ported network in PyTorch with channels-last tensors.

    Channels-last lets the CPU use oneDNN for the depthwise convolutions: measured 71 → 31 ms
    for full-range BlazeFace at batch 1 on one thread, same outputs to float rounding.
    """

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        import torch

        self.net = net.eval().to(device, memory_format=torch.channels_last)
        self.device = device

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        import torch

        return self.net(x.to(self.device).contiguous(memory_format=torch.channels_last))


Runner = TorchNet | OnnxNet


def _check_backend(backend: str, device: Any) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid: {list(BACKENDS)}")
    if backend == "onnx" and _device_type(device) != "cpu":
        raise ValueError(f"backend='onnx' runs on the CPU; got device {device}; use backend='torch'")


def make_runner(net: nn.Module, input_size: int, backend: str, device: torch.device) -> Runner:
    """Wrap a network for inference with PyTorch on ``device`` or onnxruntime (``backend``).

    Args:
        net: the PyTorch module (the reference and the ONNX export source).
        input_size: side of its square image input.
        backend: ``"torch"`` or ``"onnx"`` (CPU only; exported in memory).
        device: torch device for the ``"torch"`` backend.
    """
    _check_backend(backend, device)
    if backend == "onnx":
        return OnnxNet(net, input_size)
    return TorchNet(net, device)


def load_runner(
    build: Callable[[], NetT],
    path: str | Path | None,
    source: ConvertedWeights,
    *,
    input_size: int,
    backend: str,
    device: Any,
) -> tuple[NetT | None, Runner]:
    """Load a converted network and wrap it for inference; the backend is checked before any file.

    With ``backend="onnx"`` and the packaged weights (``path`` None) the shipped ``.onnx`` export
    runs and the PyTorch module is not built (``None`` is returned for it; torch is not imported);
    a given checkpoint, or an installation without the export, is exported in memory.

    Args:
        build: makes the fresh PyTorch network (called only when it is needed).
        path: the checkpoint; ``None`` for the packaged ``source.file``.
        source: what the file must hold and how to name it in errors.
        input_size: side of the network's square input (for an in-memory ONNX export).
        backend: ``"torch"`` or ``"onnx"`` (``"auto"`` is resolved with ``resolve_backend``).
        device: torch device (or its name) for the ``"torch"`` backend.

    Returns:
        ``(net, runner)``: the loaded PyTorch module (the reference; ``None`` when not built) and
        its runner.
    """
    backend = resolve_backend(backend, device)
    _check_backend(backend, device)
    if backend == "onnx" and path is None:
        onnx = packaged_onnx(source)
        if onnx is not None:
            if not (_weights_dir() / source.file).exists():
                raise MissingWeightsError(
                    f"{_weights_dir() / source.file}: {source.label} weights not found; reinstall "
                    f"facebehavior or regenerate them with {source.tool}"
                )
            return None, OnnxNet(onnx)
        logger.info("%s: no packaged ONNX export; exporting the PyTorch network in memory", source.label)
    import torch

    net = load_converted(build(), path, source)
    return net, make_runner(net, input_size, backend, torch.device(device))


def run_batched(
    runner: Runner, x: torch.Tensor, batch_size: int, *, device: torch.device, divisor: float = 1.0
) -> tuple[torch.Tensor, ...]:
    """Run ``runner`` on ``x`` in chunks of ``batch_size`` and concatenate each output on the CPU.

    Args:
        runner: a ``make_runner`` result returning one tensor (array) or a tuple of them.
        x: (N, ...) inputs; each chunk is moved to ``device`` as float32 and divided by
            ``divisor`` (e.g. 255 for pixel values) before the call.
        batch_size: most inputs per call (bounds memory on crowded frames).
        device: where the chunks go.
        divisor: input divisor.

    Returns:
        One (N, ...) CPU tensor per network output; empty tuple when ``x`` is empty.
    """
    import torch

    chunks: list[tuple[torch.Tensor, ...]] = []
    for i in range(0, len(x), batch_size):
        xi = x[i : i + batch_size].to(device, torch.float32) / divisor
        out = runner(xi.numpy()) if isinstance(runner, OnnxNet) else runner(xi)
        outs = out if isinstance(out, tuple) else (out,)
        chunks.append(tuple(torch.as_tensor(o).cpu() for o in outs))
    return tuple(torch.cat(parts) for parts in zip(*chunks, strict=True))


def run_batched_numpy(
    runner: Callable[..., Any], x: np.ndarray, batch_size: int, *, divisor: float = 1.0
) -> tuple[np.ndarray, ...]:
    """``run_batched`` for an ``OnnxNet`` on numpy: chunks of ``x / divisor`` in float32.

    Args:
        runner: an ``OnnxNet`` (or any callable on float32 arrays).
        x: (N, ...) inputs (e.g. pixel values).
        batch_size: most inputs per call.
        divisor: divides each chunk (e.g. 255 for pixel values) in float32, like ``run_batched``;
            applied on the chunk only, so a large batch is never converted whole.

    Returns:
        One (N, ...) float32 array per network output; empty tuple when ``x`` is empty.
    """
    chunks: list[tuple[np.ndarray, ...]] = []
    for i in range(0, len(x), batch_size):
        xi = np.asarray(x[i : i + batch_size], np.float32)
        if divisor != 1.0:
            xi = xi / np.float32(divisor)
        out = runner(xi)
        chunks.append(out if isinstance(out, tuple) else (out,))
    return tuple(np.concatenate(parts) for parts in zip(*chunks, strict=True))
