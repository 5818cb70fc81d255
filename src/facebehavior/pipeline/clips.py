"""Affect-model stage for models that need more than one aligned face: clip models (AffWildNet and
the CNN-RNNs, MT-VGG-GRU, A/V-MT-VGG-GRU), optical-flow models (AUNets' flow variants) and models
taking the 68 landmarks or the audio.

``Clips`` takes the place of ``Predict`` (same ``name``, same columns: ``predict.prediction_values``)
when the checkpoint's model declares such inputs (``needs_clips``, from the model's
``input_names`` and its ``forward(clip, ...)`` signature, never from tensor shapes). Inputs are
built as in training (``train.data.eval_inputs`` turns them into the model's arguments):

- ``image``: each face aligned to the spec's template at its input size (``face.align``);
- ``landmarks``: the tracked FaceMesh points mapped into the crop (the crop's matrix), reduced to
  the 68 iBUG points (``face.landmarks.indices.landmarks68``) and normalised by
  ``models.affwildnet.normalise_landmarks`` — the path of the face-crop cache training reads;
- ``flow``: AUNets' flow image (``temporal.flow``) between consecutive aligned crops of the same
  face track, from the track's previous crop to the current one. The first frame of a track takes
  the motion to its second frame when both are in the same batch (``prepare --flow``'s rule), else
  the still field;
- ``spectrogram``: the spectrogram image of the audio around each frame's timestamp
  (``io.audio``; a video without sound is a one-line ``NoAudioError``).

**Windows** (clip models, sequence length ``T``: the recipe's ``sequence_length`` or
``sequence_length=``). A face track is the analysed frames of one ``face_id``, numbered
p = 0, 1, 2, … Windows of ``T`` frames start every ``S = T // 2`` positions (``stride=``), the grid
``evaluate`` uses. Frame ``p``'s output is taken from the *earliest* window of the grid that holds
it, start ``s(p) = max(0, ((p − T) // S + 1) · S)``, i.e. the window whose recurrent state has seen
most of the frame's past (between ``T − S`` and ``T − 1`` earlier frames once the track is long
enough). Only frames up to ``p`` are used: outputs are **causal, with no latency** — each batch's
rows are final when the batch is done, as a stream needs. For the zoo's clip models (per-frame CNN
→ unidirectional GRU) the output at position ``p − s`` of a window does not depend on the window's
later frames, so it equals the output of the full window ``[s, s + T)`` run offline, and a track
shorter than ``T`` gives what ``evaluate``'s end-padded window gives. ``evaluate`` differs only in
averaging the two windows that hold a frame (it sees the future); the stage keeps the earlier one.
Per batch, the frames of a track that share a window start are run as one window truncated after
the last of them, and all windows of the batch run in one call (padded at the end, which causal
models ignore).

**State** per source (``SourceState.stages["predict"]``), per track: its frame count, the inputs of
the frames from the earliest window start still needed (at most ``T`` frames), the last crop
(flow) and the source frame it came from. A track unseen for more than ``max_gap`` source frames is
forgotten (its id may come back as a new track). ``snapshot``/``restore`` carry all of it, so a
resumed run continues windows exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebehavior.pipeline.base import Batch, SourceState, decode_array, encode_array

__all__ = ["Clips", "needs_clips", "window_start"]

logger = logging.getLogger(__name__)

KNOWN_INPUTS = ("image", "landmarks", "flow", "spectrogram")
# Errors one face's data can cause while it is aligned; that face is dropped (as ``Predict`` does).
_PER_FACE_ERRORS = (ValueError, ArithmeticError, IndexError, RuntimeError)


def window_start(p: int, length: int, stride: int) -> int:
    """Start of the earliest window of the grid (starts 0, stride, 2·stride, …; ``length`` frames)
    that holds position ``p`` (module docstring)."""
    if length < 1 or not 1 <= stride <= length:
        raise ValueError(f"need 1 <= stride <= sequence length, got stride {stride}, length {length}")
    return max(0, ((p - length) // stride + 1) * stride)


def _model_of(model: Any) -> Any | None:
    """The model object behind ``model`` (a ``(model, spec)`` pair or a checkpoint path), built on
    the meta device from the checkpoint's spec when it is a path; ``None`` when it cannot be told
    (bundled names, unreadable files: ``Predict`` reports those)."""
    if isinstance(model, tuple):
        return model[0]
    if not isinstance(model, (str, Path)) or str(model).lower() in ("default", "none"):
        return None
    from facebehavior.models.default import BUNDLED_MODELS

    if str(model) in BUNDLED_MODELS or not Path(model).is_file():
        return None
    try:
        import torch

        from facebehavior.models import create_model
        from facebehavior.models.weights import read_spec

        spec = read_spec(model)
        with torch.device("meta"):
            return create_model(spec.architecture, **dict(spec.arch_kwargs))
    except Exception as e:  # noqa: BLE001 - any failure is reported by the stage that loads it
        logger.debug("cannot inspect %s (%s): left to Predict", model, e)
        return None


def needs_clips(model: Any) -> bool:
    """True if ``model`` (an ``Analyzer(model=...)`` argument) is a clip model or takes inputs
    besides one face crop (flow, landmarks, audio): the ``Clips`` stage runs it."""
    net = _model_of(model)
    if net is None:
        return False
    from facebehavior.train.data import input_names, is_clip_model

    return is_clip_model(net) or tuple(input_names(net)) != ("image",)


@dataclass
class _Track:
    """What one face track carries between batches (see the module docstring)."""

    count: int = 0  # frames seen
    start: int = 0  # track position of the first buffered frame
    last_frame: int = -1  # source frame index of the last frame
    buffers: dict[str, list[np.ndarray]] = field(default_factory=dict)  # input name → per-frame arrays
    last_crop: np.ndarray | None = None  # (S, S, 3) uint8, for the next flow image


class Clips:
    """Expression / AU / VA columns from a clip, flow, landmark or audio model (module docstring).

    Args:
        model: a checkpoint path or a ``(model, WeightSpec)`` pair.
        device: torch device.
        sequence_length: ``T`` for clip models (None: the checkpoint recipe's ``sequence_length``).
        stride: window stride (default ``T // 2``).
        max_gap: source frames after which an unseen track is forgotten (None: ``4 · T``, at least
            100).
        batch_windows: windows per model call.
    """

    name = "predict"

    def __init__(
        self,
        model: str | Path | tuple[Any, Any],
        *,
        device: str = "cpu",
        sequence_length: int | None = None,
        stride: int | None = None,
        max_gap: int | None = None,
        batch_windows: int = 16,
    ) -> None:
        import torch  # noqa: F401  (imported before the first batch so its thread scope applies)

        self.model_arg = model
        self.device = device
        self._T = sequence_length
        self._stride = stride
        self._max_gap = max_gap
        self.batch_windows = int(batch_windows)
        self._model: Any = None
        self._spec: Any = None

    # ------------------------------------------------------------------ model
    @property
    def spec(self) -> Any:
        """The model's ``WeightSpec``; loads the model."""
        self._resolve()
        return self._spec

    def _resolve(self) -> None:
        if self._model is not None:
            return
        import torch

        from facebehavior.train.data import input_names, is_clip_model
        from facebehavior.train.evaluate import recipe_sequence_length

        if isinstance(self.model_arg, tuple):
            model, spec = self.model_arg
        else:
            from facebehavior.models.default import resolve_model
            from facebehavior.models.weights import load_weights

            model, spec = load_weights(resolve_model(self.model_arg))
        names = tuple(input_names(model))
        unknown = [n for n in names if n not in KNOWN_INPUTS]
        if unknown:
            raise ValueError(
                f"model {spec.name!r} takes {unknown}; analyze supplies {', '.join(KNOWN_INPUTS)}"
            )
        self.inputs = names
        self.clip = is_clip_model(model)
        T = 0
        if self.clip:
            T = int(self._T or recipe_sequence_length(spec))
            if T < 1:
                raise ValueError(
                    f"{spec.architecture} is a clip model and its checkpoint names no sequence_length; "
                    "build the stage with Clips(..., sequence_length=T)"
                )
        self.T = T
        self.S = int(self._stride or max(1, T // 2)) if T else 1
        if T:
            window_start(0, T, self.S)  # validates the stride
        self.max_gap = int(self._max_gap or max(100, 4 * T))
        self._model, self._spec = model.to(torch.device(self.device)).eval(), spec
        if "spectrogram" in names:
            from facebehavior.io.audio import AudioConfig

            self.audio = AudioConfig.for_size(tuple(getattr(model, "audio_size", (96, 96))))

    def columns(self) -> list[str]:
        from facebehavior.pipeline.predict import prediction_columns

        return prediction_columns(self.spec)

    # ------------------------------------------------------------------ state
    def tracks(self, state: SourceState) -> dict[int, _Track]:
        """This source's face tracks (created on first use)."""
        return state.stages.setdefault(self.name, {"tracks": {}})["tracks"]

    def snapshot(self, state: SourceState) -> dict:
        """The tracks' buffers, JSON-safe (arrays base64-encoded, bit-exact)."""
        if self.name not in state.stages:
            return {}
        out = {}
        for fid, tr in self.tracks(state).items():
            out[str(fid)] = {
                "count": tr.count,
                "start": tr.start,
                "last_frame": tr.last_frame,
                "buffers": {k: encode_array(np.stack(v)) for k, v in tr.buffers.items() if v},
                "last_crop": None if tr.last_crop is None else encode_array(tr.last_crop),
            }
        return {"clips": out}

    def restore(self, saved: dict, state: SourceState) -> None:
        if "clips" not in saved:
            return
        tracks = self.tracks(state)
        for fid, d in saved["clips"].items():
            crop = d["last_crop"]
            tracks[int(fid)] = _Track(
                d["count"], d["start"], d["last_frame"],
                {k: list(decode_array(v)) for k, v in d["buffers"].items()},
                None if crop is None else decode_array(crop),
            )  # fmt: skip

    # ------------------------------------------------------------------ the stage
    def __call__(self, batch: Batch, state: SourceState) -> Batch:
        """Align the batch's faces, build each model input per track, run the model (module docstring)."""
        from facebehavior.models.outputs import nonfinite_rows
        from facebehavior.pipeline.predict import prediction_values

        spec = self.spec
        tracks = self.tracks(state)
        self._forget(tracks, batch)
        if len(batch.faces) == 0:
            return batch.with_columns({c: np.zeros(0, np.float32) for c in self.columns()})
        crops, matrices, batch = self._align(batch, spec.input)
        if len(batch.faces) == 0:
            return batch.with_columns({c: np.zeros(0, np.float32) for c in self.columns()})
        per_face = self._inputs(batch, crops, matrices, tracks, state)
        values = self._run_clips(batch, per_face, tracks) if self.clip else self._run_frames(per_face)
        bad = nonfinite_rows(values)
        if bad.size and bad.any():
            batch = batch.drop(np.flatnonzero(bad), f"model {spec.name!r} gave non-finite outputs")
            values = {k: v[~bad] for k, v in values.items()}
        return batch.with_columns(prediction_values(spec, values))

    def _forget(self, tracks: dict[int, _Track], batch: Batch) -> None:
        if len(batch.frames) == 0:
            return
        now = int(batch.frames.index[-1])
        for fid in [f for f, tr in tracks.items() if now - tr.last_frame > self.max_gap]:
            del tracks[fid]

    def _align(self, batch: Batch, inp: Any) -> tuple[np.ndarray, np.ndarray, Batch]:
        """Aligned (K, S, S, 3) uint8 crops and (K, 2, 3) frame → crop matrices; faces that cannot be
        aligned are dropped and recorded."""
        from facebehavior.face.align import align_faces

        images, faces = batch.frames.images, batch.faces
        try:
            a = align_faces(images, faces.detections(), size=inp.size, template=inp.template)
            return a.crops, a.matrices, batch
        except _PER_FACE_ERRORS:
            pass
        crops, mats, bad, reasons = [], [], [], []
        for i in range(len(faces)):
            try:
                one = align_faces(images, faces.take([i]).detections(), size=inp.size, template=inp.template)
            except _PER_FACE_ERRORS as e:
                bad.append(i)
                reasons.append(f"alignment failed: {type(e).__name__}: {e}")
                continue
            crops.append(one.crops)
            mats.append(one.matrices)
        s = inp.size
        if not crops:
            return (
                np.zeros((0, s, s, 3), np.uint8),
                np.zeros((0, 2, 3), np.float32),
                batch.drop(np.asarray(bad, np.int64), reasons),
            )
        return np.concatenate(crops), np.concatenate(mats), batch.drop(np.asarray(bad, np.int64), reasons)

    def _inputs(
        self,
        batch: Batch,
        crops: np.ndarray,
        matrices: np.ndarray,
        tracks: dict[int, _Track],
        state: SourceState,
    ) -> dict[str, np.ndarray]:
        """Per-face model inputs, name → (K, ...) arrays, in the batch's face order."""
        faces = batch.faces
        out: dict[str, np.ndarray] = {}
        if "image" in self.inputs:
            out["image"] = crops
        if "landmarks" in self.inputs:
            if faces.landmarks is None:
                raise ValueError(
                    f"model {self._spec.name!r} takes the 68 facial landmarks: analyse with landmarks "
                    "(drop --no-landmarks)"
                )
            from facebehavior.face.align import transform_points
            from facebehavior.face.landmarks.indices import landmarks68
            from facebehavior.models.affwildnet import normalise_landmarks

            mesh = transform_points(faces.landmarks[:, :468, :2], matrices)  # crop pixels, as the cache
            out["landmarks"] = normalise_landmarks(landmarks68(mesh), int(self._spec.input.size))
        if "flow" in self.inputs:
            out["flow"] = self._flow(batch, crops, tracks)
        if "spectrogram" in self.inputs:
            out["spectrogram"] = self._spectrograms(batch, state)
        return out

    def _flow(self, batch: Batch, crops: np.ndarray, tracks: dict[int, _Track]) -> np.ndarray:
        """(K, S, S, 3) uint8 flow image of every face from its track's previous crop."""
        from facebehavior.temporal.flow import track_flow_images

        faces = batch.faces
        out = np.empty(crops.shape, np.uint8)
        for fid, idx in _by_track(faces, batch.frames.index):
            tr = tracks.get(fid)
            prev = None if tr is None or tr.last_crop is None else tr.last_crop
            seq = ([prev] if prev is not None else []) + [crops[i] for i in idx]
            images = track_flow_images(seq)
            out[idx] = images[1:] if prev is not None else images
            tr = tracks.setdefault(fid, _Track())
            tr.last_crop = crops[idx[-1]]
            tr.last_frame = int(batch.frames.index[faces.frame_index[idx[-1]]])
        return out

    def _spectrograms(self, batch: Batch, state: SourceState) -> np.ndarray:
        """(K, 1, H, W) spectrogram image at each face's frame time."""
        from facebehavior.io.audio import AudioStream

        audio = state.stages.setdefault(self.name, {"tracks": {}})
        if "audio" not in audio:
            if not state.video:
                from facebehavior.io import InputError

                raise InputError(batch.frames.source, "a still image has no sound; A/V models need videos")
            audio["audio"] = AudioStream(batch.frames.source, self.audio.sample_rate)
        times = np.asarray(batch.frames.timestamp, np.float64)
        per_frame = audio["audio"].frames(times, self.audio)
        return per_frame[batch.faces.frame_index]

    # ------------------------------------------------------------------ running the model
    def _forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model on a batch of (N, ...) or (N, T, ...) inputs; raw outputs as numpy."""
        import torch

        from facebehavior.train.data import eval_inputs

        batch = {}
        for k, v in inputs.items():
            x = torch.from_numpy(np.ascontiguousarray(v))
            if k in ("image", "flow"):
                x = x.movedim(-1, -3)  # (..., S, S, 3) → (..., 3, S, S), as the data module serves them
            batch[k] = x
        args = [a.to(self.device) for a in eval_inputs(self._model, batch, self._spec)]
        with torch.inference_mode():
            out = self._model(*args)
        if not isinstance(out, dict):
            raise TypeError(
                f"model {self._spec.name!r} must return a dict of task outputs, got {type(out).__name__}"
            )
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def _run_frames(self, per_face: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-frame models (flow, landmarks): one call over the batch's faces."""
        n = len(next(iter(per_face.values())))
        outs = [self._forward({k: v[a : a + 256] for k, v in per_face.items()}) for a in range(0, n, 256)]
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def _run_clips(
        self, batch: Batch, per_face: dict[str, np.ndarray], tracks: dict[int, _Track]
    ) -> dict[str, np.ndarray]:
        """Clip models: append each face to its track, cut the windows, run them (module docstring)."""
        T, S = self.T, self.S
        k = len(batch.faces)
        jobs: list[tuple[list[np.ndarray], dict[str, list[np.ndarray]], int]] = []  # (faces, window, len)
        for fid, idx in _by_track(batch.faces, batch.frames.index):
            tr = tracks.setdefault(fid, _Track())
            groups: dict[int, list[tuple[int, int]]] = {}
            for i in idx:
                p = tr.count
                for name, v in per_face.items():
                    tr.buffers.setdefault(name, []).append(v[i])
                tr.count += 1
                groups.setdefault(window_start(p, T, S), []).append((int(i), p))
            for s, members in groups.items():
                last = members[-1][1]
                window = {n: b[s - tr.start : last - tr.start + 1] for n, b in tr.buffers.items()}
                jobs.append(([(i, p - s) for i, p in members], window, last - s + 1))
            tr.last_frame = int(batch.frames.index[batch.faces.frame_index[idx[-1]]])
            keep = window_start(tr.count, T, S)  # the next frame's window start: nothing before it is needed
            if keep > tr.start:
                tr.buffers = {n: b[keep - tr.start :] for n, b in tr.buffers.items()}
                tr.start = keep
        values: dict[str, np.ndarray] = {}
        for a in range(0, len(jobs), self.batch_windows):
            chunk = jobs[a : a + self.batch_windows]
            L = max(j[2] for j in chunk)
            # End-padding by repeating each window's last frame (what evaluate pads short tracks with).
            inputs = {n: np.stack([np.stack(w[n] + [w[n][-1]] * (L - m)) for _, w, m in chunk])
                      for n in chunk[0][1]}  # fmt: skip
            out = self._forward(inputs)
            for j, (members, _, _) in enumerate(chunk):
                for i, pos in members:
                    for key, y in out.items():
                        if key not in values:
                            values[key] = np.full((k, *y.shape[2:]), np.nan, np.float32)
                        values[key][i] = y[j, pos]
        return values


def _by_track(faces: Any, frame_index: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(face_id, positions of its faces in frame order) for every track of the batch; faces without
    an id (-1) are tracks of their own."""
    order = np.lexsort((frame_index[faces.frame_index], faces.face_id))
    ids = faces.face_id[order]
    out = []
    for a, b in zip(*_runs(ids), strict=True):
        fid = int(ids[a])
        if fid < 0:
            out += [(-1 - int(order[i]) - 1_000_000, order[i : i + 1]) for i in range(a, b)]
        else:
            out.append((fid, order[a:b]))
    return out


def _runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cuts = np.flatnonzero(x[1:] != x[:-1]) + 1
    return np.r_[0, cuts], np.r_[cuts, len(x)]
