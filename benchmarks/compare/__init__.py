"""Registry-shipped expression models, ported to PyTorch for side-by-side evaluation only.

None of this is part of the ``facebehavior`` package: the weights stay in the user's
``--models-dir`` (filled by ``benchmarks/compare/fetch.sh``) and are read at benchmark time.

Each entry: ``load(models_dir) -> nn.Module`` (logits), ``prepare(images) -> input`` and
``CLASSES`` (the model's own output order, mapped onto ``facebehavior.schema.EXPRESSIONS_8`` by
:func:`to_expressions8`).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import torch

from facebehavior.schema import EXPRESSIONS_8

from . import faceapi_expression, facex_mobilenetv2, fer_minixception, human_emotion

MODELS: dict[str, ModuleType] = {
    "faceapi_expression": faceapi_expression,
    "human_emotion": human_emotion,
    "fer_minixception": fer_minixception,
    "facex_mobilenetv2": facex_mobilenetv2,
}
RGB_INPUT = {"faceapi_expression"}  # the others take grey


def to_expressions8(probs: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Reorder ``(N, len(classes))`` probabilities to ``(N, 8)`` in ``EXPRESSIONS_8`` order (missing → 0)."""
    out = np.zeros((probs.shape[0], len(EXPRESSIONS_8)), dtype=np.float32)
    out[:, [EXPRESSIONS_8.index(c) for c in classes]] = probs
    return out


@torch.no_grad()
def predict(name: str, net: torch.nn.Module, grey: np.ndarray, batch: int = 256) -> np.ndarray:
    """Probabilities ``(N, 8)`` in ``EXPRESSIONS_8`` order for ``(N, S, S)`` uint8 grey faces."""
    mod = MODELS[name]
    out = []
    for i in range(0, len(grey), batch):
        x = torch.from_numpy(grey[i : i + batch]).float().unsqueeze(1)
        if name in RGB_INPUT:
            x = x.expand(-1, 3, -1, -1)
        out.append(net(mod.prepare(x)).softmax(-1).numpy())
    return to_expressions8(np.concatenate(out), mod.CLASSES)
