"""MediaPipe Blendshape V2: 52 ARKit-style expression scores from Face Mesh V2 landmarks, in PyTorch.

The blendshape model of MediaPipe's Face Landmarker (model card "Blendshape V2", Google, 2022),
an MLP-Mixer (Tolstikhin et al., "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021)
over 146 of the 478 landmarks. Weights: ``face_blendshapes.tflite`` of MediaPipe's
``face_landmarker.task`` bundle (fp16), Apache-2.0; converted by
``tools/convert_face_landmarker.py``. Outputs match LiteRT to float rounding
(``tests/test_face_landmarker.py``).

Input preparation, as in MediaPipe's ``face_blendshapes_graph.cc``: the landmarks of
``LANDMARK_SUBSET`` (in that order), x and y only, in image pixels (MediaPipe multiplies its
normalised x by the image width and y by the height, i.e. plain pixel coordinates; z is not
used). The model normalises them itself, so any translation or uniform scale of the input gives
the same scores; rotation and anisotropic scaling do not:

* centre on the mean of the 146 points, divide by their mean distance to that centre, x 0.5;
* a linear map mixes the 146 points into 96 tokens (per coordinate), each embedded to 64
  channels; a learned extra token is prepended (97 x 64);
* four Mixer blocks (LayerNorm without bias, eps = fp16(1e-6); token MLP 97 → 384 → 97, channel
  MLP 64 → 256 → 64, ReLU, residual);
* the extra token → linear 64 → 52 → sigmoid, in ``schema.BLENDSHAPE_NAMES`` order.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebehavior.backends import ConvertedWeights, load_converted, load_runner, resolve_backend
from facebehavior.face.landmarks import indices as idx
from facebehavior.schema import BLENDSHAPE_NAMES

if TYPE_CHECKING:
    import torch

__all__ = [
    "LANDMARK_SUBSET",
    "BLENDSHAPE_NAMES",
    "WEIGHTS",
    "FaceBlendshapes",
    "blendshapes",
]

WEIGHTS = "blendshapes_v2.safetensors"
_SOURCE = ConvertedWeights(WEIGHTS, "blendshapes_v2", "Blendshape V2", "tools/convert_face_landmarker.py")

# The 146 landmarks the model reads, in input order (kLandmarksSubsetIdxs of MediaPipe's
# face_blendshapes_graph.cc, Apache-2.0): brows, eyes and lids, nose, lips, jaw line and all ten
# iris points.
LANDMARK_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477,
)  # fmt: skip

# The graph's LayerNorm epsilon is stored as float16: 1e-6 rounds to 17 x 2**-24.
LN_EPS = float(np.float16(1e-6))


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
def _subset_xy(landmarks_px: Any) -> np.ndarray:
    """(N, 146, 2) float32 x, y of the model's landmark subset (numpy or tensor input)."""
    pts = np.asarray(landmarks_px)
    if pts.ndim != 3 or pts.shape[1] != idx.NUM_POINTS_V2 or pts.shape[2] not in (2, 3):
        raise ValueError(
            f"landmarks must be (N, {idx.NUM_POINTS_V2}, 2|3) Face Mesh V2 points in pixels, got "
            f"{tuple(pts.shape)}; FaceMesh-468 has no irises, run FaceMeshV2Landmarker"
        )
    return np.ascontiguousarray(pts[:, list(LANDMARK_SUBSET), :2], dtype=np.float32)


class FaceBlendshapes:
    """Blendshape V2 scorer holding its network (explicit device, batch size and runtime).

    Example:
        >>> scorer = FaceBlendshapes()  # doctest: +SKIP
        >>> scores = scorer(marks.points)  # (F, 52)  # doctest: +SKIP
    """

    names: tuple[str, ...] = BLENDSHAPE_NAMES

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        weights: str | Path | None = None,
        batch_size: int = 1024,
        backend: str = "torch",
    ) -> None:
        """Args:
        device: torch device for the network.
        weights: override the packaged ``blendshapes_v2.safetensors``.
        batch_size: faces per network call.
        backend: ``"torch"`` (reference), ``"onnx"`` (onnxruntime on CPU) or ``"auto"``
            (``backends.resolve_backend``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = resolve_backend(backend, device)
        self.batch_size = batch_size
        self._weights = weights
        if self.backend == "onnx":
            self.device = device
            self._net, self.runner = load_runner(
                _net, weights, _SOURCE, input_size=0, backend="onnx", device=device
            )
            if self._net is not None:  # a given checkpoint: export it with its point input
                import torch

                from facebehavior.backends import OnnxNet, export_onnx

                x = torch.zeros(2, len(LANDMARK_SUBSET), 2)
                self.runner = OnnxNet(export_onnx(self._net, inputs=(x,), input_names=("points",)))
        else:
            import torch

            self.device = torch.device(device)
            self._net = load_converted(_net(), weights, _SOURCE).to(self.device)
            self.runner = None

    @property
    def net(self) -> Any:
        """The PyTorch module (the reference; loaded on first access with the ONNX backend)."""
        if self._net is None:
            self._net = load_converted(_net(), self._weights, _SOURCE)
        return self._net

    def __call__(self, landmarks_px: Any) -> np.ndarray:
        """Scores for a batch of faces.

        Args:
            landmarks_px: (N, 478, 2 or 3) Face Mesh V2 landmarks in image pixels (e.g.
                ``FaceMeshV2Landmarker(...).points``; z is ignored).

        Returns:
            (N, 52) float32 scores in [0, 1], ``BLENDSHAPE_NAMES`` order.
        """
        xy = _subset_xy(landmarks_px)
        if len(xy) == 0:
            return np.zeros((0, len(BLENDSHAPE_NAMES)), np.float32)
        if self.backend == "onnx":
            from facebehavior.backends import run_batched_numpy

            return run_batched_numpy(self.runner, xy, self.batch_size)[0]
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(xy)
            out = [
                self.net(t[i : i + self.batch_size].to(self.device)).cpu()
                for i in range(0, len(t), self.batch_size)
            ]
        return torch.cat(out).numpy()


def _net() -> Any:
    from facebehavior.face.landmarks._blendshapes_net import BlendshapeNet

    return BlendshapeNet()


_DEFAULT: FaceBlendshapes | None = None
_DEFAULT_LOCK = threading.Lock()


def blendshapes(landmarks_px: Any) -> np.ndarray:
    """52 blendshape scores per face from Face Mesh V2 landmarks (CPU; weights load on first call).

    Args:
        landmarks_px: (N, 478, 2 or 3) landmarks in image pixels.

    Returns:
        (N, 52) float32 scores in [0, 1], ``BLENDSHAPE_NAMES`` order.
    """
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = FaceBlendshapes()
    return _DEFAULT(landmarks_px)


# The PyTorch networks live in ``facebehavior.face.landmarks._blendshapes_net`` so that this module
# imports without torch (the onnxruntime path); they stay importable from here.
_NETS = ("BlendshapeNet", "load_blendshape_net")


def __getattr__(name: str) -> object:
    if name in _NETS:
        import importlib

        return getattr(importlib.import_module("facebehavior.face.landmarks._blendshapes_net"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
