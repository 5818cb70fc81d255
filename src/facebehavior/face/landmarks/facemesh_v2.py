"""MediaPipe Face Mesh V2 (478 3-D landmarks: the 468-point mesh plus both irises), in PyTorch.

The network of MediaPipe's Face Landmarker (model card "Face Mesh V2", Google, 2022; mesh
topology of Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile
GPUs", 2019; irises as in Ablavatski et al., "Real-time Pupil Tracking from Monocular Video for
Digital Puppetry", 2020). Weights: ``face_landmarks_detector.tflite`` of MediaPipe's
``face_landmarker.task`` bundle (fp16), Apache-2.0; converted by
``tools/convert_face_landmarker.py``. The layers reproduce the TFLite graph op for op; outputs
match LiteRT to float rounding (``tests/test_face_landmarker.py``).

Architecture (read from the TFLite graph): a 3x3 stride-2 stem to 128x128x16, then seven stages
of PReLU bottleneck residual blocks (1x1 reduce → PReLU → depthwise 3x3 → 1x1 expand, added to
the input, PReLU). Each stage after the first opens with a downsampling block whose reduce is a
2x2 stride-2 convolution and whose skip is a 2x2 max-pool, zero-padded in channels when the width
grows: 128² x 16 → 64² x 32 → 32² x 64 → 16² x 128 → 8², 4², 2² x 128. Three 2x2 heads read the
2x2 map: 478 x (x, y, z), a face-presence logit and a second sigmoid score that MediaPipe's graph
never reads (ported so that every weight is accounted for; its meaning is undocumented).

Pipeline, as in MediaPipe's Tasks face landmarker (``face_detector_graph.cc`` and
``face_landmarks_detector_graph.cc``, google-ai-edge/mediapipe):

* ROI from a BlazeFace detection: box centre, 1.5 x the box side, rotated so that the line from
  the right-eye to the left-eye keypoint is horizontal (``ConfigureRectTransformationCalculator``:
  scale_x = scale_y = 1.5, no squaring; BlazeFace boxes are square, so this is
  ``facemesh.roi_from_detections`` with scale 1.5).
* ROI from the previous frame's landmarks (video tracking): bounding box of all 478 points,
  rotation from corner 33 to corner 263, side 1.5 x the longer box side (``square_long``):
  ``facemesh.roi_from_landmarks``.
* Crop: 256x256 with MediaPipe's CPU sampling (``crop_rois(sampling="mediapipe",
  border="replicate")``: OpenCV's fixed-point warp, edge pixels repeated outside the frame), RGB
  scaled to [0, 1]. Landmarks map back through the ROI (``project_landmarks``): x, y in frame
  pixels, z (relative depth) in the same pixel scale, ROI side / 256 per network unit.

Differences from MediaPipe's own output, measured on the fixture photos (the model card next to
the weights has the figures): given MediaPipe's crop and ROI the landmarks agree to 2e-4 px, given
its ROI to 6e-3 px. Detections from this package's BlazeFace give other ROIs than MediaPipe's
(its letterbox is anti-aliased), and image-mode landmarks and blendshapes follow the ROI; see
``refine`` of ``FaceMeshV2Landmarker.__call__``. z: for a
rotated ROI in a non-square frame MediaPipe scales its width-normalised z by the length of the
ROI's x axis in *normalised* image units, i.e. by sqrt(cos² + (W/H)² sin²) x the ROI side / W
(+10 % at 39° in a 5:4 frame); the port keeps z isotropic (ROI side / 256 per unit).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebehavior.backends import ConvertedWeights, load_converted, load_runner, resolve_backend
from facebehavior.face.detect.blazeface import check_images
from facebehavior.face.landmarks import indices as idx
from facebehavior.face.landmarks.facemesh import (
    FaceRoi,
    _run,
    _sigmoid,
    _torch_device,
    crop_rois,
    crop_rois_numpy,
    project_landmarks,
    roi_from_detections,
    roi_from_landmarks,
)
from facebehavior.types import Detections, Landmarks

if TYPE_CHECKING:
    import torch

__all__ = [
    "INPUT_SIZE",
    "ROI_SCALE",
    "WEIGHTS",
    "FaceMeshV2Landmarker",
]

INPUT_SIZE = 256
ROI_SCALE = 1.5
WEIGHTS = "facemesh_v2.safetensors"
_SOURCE = ConvertedWeights(WEIGHTS, "facemesh_v2", "Face Mesh V2", "tools/convert_face_landmarker.py")


def _net() -> Any:
    from facebehavior.face.landmarks._facemesh_v2_net import FaceMeshV2Net

    return FaceMeshV2Net()


# --------------------------------------------------------------------------------------------
# Landmarker
# --------------------------------------------------------------------------------------------
class FaceMeshV2Landmarker:
    """Batched Face Mesh V2 (478 points with irises) over all faces of all frames.

    Same interface as ``facemesh.FaceMeshLandmarker``; the ROI helpers of ``facemesh`` apply
    (``roi_from_landmarks`` accepts the 478 points for tracking).

    Example:
        >>> lm = FaceMeshV2Landmarker()  # doctest: +SKIP
        >>> marks = lm(frames.images, detections)  # (F, 478, 3) frame pixels  # doctest: +SKIP
        >>> scores = blendshapes(marks.points)  # (F, 52), BLENDSHAPE_NAMES  # doctest: +SKIP
        >>> next_rois = roi_from_landmarks(marks.points)  # track without re-detecting
    """

    num_points: int = idx.NUM_POINTS_V2

    def __init__(
        self,
        *,
        device: str | torch.device = "cpu",
        weights: str | Path | None = None,
        batch_size: int = 64,
        backend: str = "torch",
    ) -> None:
        """Args:
        device: torch device for the network.
        weights: override the packaged ``facemesh_v2.safetensors``.
        batch_size: faces per network call (bounds memory on crowded frames).
        backend: ``"torch"`` (reference), ``"onnx"`` (onnxruntime on CPU: the shipped export, or
            one made in memory for ``weights``) or ``"auto"`` (``backends.resolve_backend``).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.backend = resolve_backend(backend, device)
        self.device = device if self.backend == "onnx" else _torch_device(device)
        self.batch_size = batch_size
        self._weights = weights
        self._net, self.runner = load_runner(
            _net, weights, _SOURCE, input_size=INPUT_SIZE, backend=self.backend, device=device
        )

    @property
    def net(self) -> Any:
        """The PyTorch module (the reference; loaded on first access with the ONNX backend)."""
        if self._net is None:
            self._net = load_converted(_net(), self._weights, _SOURCE)
        return self._net

    def raw(self, crops: Any) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on crops.

        Args:
            crops: (F, 3, 256, 256) float pixel values in [0, 255] (tensor or array).

        Returns:
            ``(mesh, presence)``: (F, 478, 3) float32 crop pixels and (F,) float32 in [0, 1].
        """
        if len(crops) == 0:
            return np.zeros((0, idx.NUM_POINTS_V2, 3), np.float32), np.zeros(0, np.float32)
        mesh, logit = _run(self, crops)[:2]
        return mesh.reshape(-1, idx.NUM_POINTS_V2, 3), _sigmoid(logit)

    def crop(self, images: np.ndarray, rois: FaceRoi) -> Any:
        """MediaPipe-style 256x256 crops of ``rois`` ((F, 3, 256, 256) float pixel values; numpy on
        the ONNX backend, a tensor otherwise; the same values either way)."""
        crop = crop_rois_numpy if self.backend == "onnx" else crop_rois
        return crop(check_images(images), rois, INPUT_SIZE, sampling="mediapipe", border="replicate")

    def from_rois(self, images: np.ndarray, rois: FaceRoi) -> Landmarks:
        """Landmarks for given ROIs (e.g. ``roi_from_landmarks`` of the previous frame).

        Args:
            images: (N, H, W, 3) uint8 RGB frames.
            rois: one ROI per face, ``frame_index`` into ``images``.

        Returns:
            ``Landmarks`` with (F, 478, 3) points in frame pixels (``indices.RIGHT_IRIS_CENTER``
            etc. for the irises) and (F,) presence.
        """
        mesh, presence = self.raw(self.crop(images, rois))
        return Landmarks(points=project_landmarks(mesh, rois, INPUT_SIZE), presence=presence)

    def __call__(self, images: np.ndarray, detections: Detections, *, refine: int = 0) -> Landmarks:
        """Landmarks for detected faces (ROI from each box and its eye keypoints, x 1.5).

        Args:
            images: (N, H, W, 3) uint8 RGB frames the detections refer to.
            detections: faces with ``frame_index`` into ``images``.
            refine: extra passes, each on the ROI of the previous pass's landmarks
                (``roi_from_landmarks``, MediaPipe's video-mode ROI). 0 is MediaPipe's image mode.
                The landmarks, and the blendshapes even more, depend on the ROI: on the 13
                fixture faces a second pass moved MediaPipe's own image-mode landmarks by
                0.3-7 px on average and blendshape scores by up to 0.69, and under ROI jitter one
                pass cuts the spread of the landmarks 3x and of the blendshapes 2.5x
                (``benchmarks/face_landmarker_speed.py``); from different start ROIs the passes
                converge. Use 1 for stills when stable features matter more than matching
                MediaPipe's image mode; tracked video gets it for free from the previous frame.
        """
        if refine < 0:
            raise ValueError(f"refine must be >= 0, got {refine}")
        images = check_images(images)
        out = self.from_rois(images, roi_from_detections(detections, ROI_SCALE))
        for _ in range(refine):
            out = self.from_rois(images, roi_from_landmarks(out.points, detections.frame_index))
        return out


# The PyTorch networks live in ``facebehavior.face.landmarks._facemesh_v2_net`` so that this module
# imports without torch (the onnxruntime path); they stay importable from here.
_NETS = ("FaceMeshV2Net", "load_facemesh_v2")


def __getattr__(name: str) -> object:
    if name in _NETS:
        import importlib

        return getattr(importlib.import_module("facebehavior.face.landmarks._facemesh_v2_net"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
