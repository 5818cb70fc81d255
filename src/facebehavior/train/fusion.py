"""Decision-level fusion weights from validation: each member network's CCC, set after validation.

The Aff-Wild decision-level fusion (``models.affwildnet.DecisionLevelFusion``, paper eq. 3) averages
its networks' valence/arousal with weights proportional to each network's *validation* CCC. Training
the fusion from a recipe therefore measures, after every validation epoch, each member network's CCC
on the first validation set and calls the model's ``set_ccc``; the weights are a buffer of the model,
so the checkpoint selected by ``ModelCheckpoint`` (saved after this hook) and the exported
``.safetensors`` carry the weights that belong to its networks, and ``evaluate`` / ``analyze`` use them.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch

__all__ = ["DecisionFusionCCC", "fusion_ccc", "member_ccc"]

logger = logging.getLogger(__name__)

VA_NAMES = ("valence", "arousal")


def member_ccc(truth: np.ndarray, preds: np.ndarray) -> np.ndarray:
    """CCC of each network for valence and arousal.

    Args:
        truth: ``(M, 2)`` annotated valence, arousal of the M validation frames.
        preds: ``(N, M, 2)`` each of the N networks' predictions for those frames.

    Returns:
        ``(N, 2)`` CCCs in [-1, 1] (0 where undefined, e.g. constant annotations).
    """
    from facebehavior import metrics

    ccc = np.stack([np.asarray(metrics.ccc(truth, p), np.float64) for p in preds])
    return np.nan_to_num(ccc, nan=0.0)


def fusion_ccc(ccc: np.ndarray) -> np.ndarray:
    """The CCCs handed to ``set_ccc``: a dimension where no network has a positive CCC gets equal
    weights (all ones) — no network is better than another there, and ``set_ccc`` needs one."""
    out = np.array(ccc, np.float64)
    out[:, ~(out > 0).any(0)] = 1.0
    return out


class DecisionFusionCCC(L.Callback):
    """Sets a decision-level fusion model's weights from its networks' validation CCCs (module docstring).

    A no-op for models without ``set_ccc``. Only the first validation set (``val``) is used; the
    validation loaders are not sharded (``use_distributed_sampler=False``), so every DDP rank computes
    the same weights.
    """

    def __init__(self) -> None:
        self._records: list[tuple[torch.Tensor, torch.Tensor]] = []  # (N, F, 2) predictions, (F, 2) truth

    @staticmethod
    def _applies(pl_module: L.LightningModule) -> bool:
        return hasattr(getattr(pl_module, "model", None), "set_ccc")

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._records = []

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != 0 or not self._applies(pl_module) or "va" not in batch:
            return
        from facebehavior.train.data import model_inputs

        m = batch["va_mask"] > 0  # (B,) or (B, T): frames with a VA label
        if not m.any():
            return
        args = model_inputs(pl_module, batch, train=False)
        with torch.no_grad():
            preds = torch.stack([n(*args)["va"][m] for n in pl_module.model.networks])  # (N, F, 2)
        self._records.append((preds.float().cpu(), batch["va"][m].float().cpu()))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._records or not self._applies(pl_module):
            return
        preds = torch.cat([p for p, _ in self._records], dim=1).numpy()
        truth = torch.cat([t for _, t in self._records]).numpy()
        self._records = []
        if len(truth) < 2:
            return
        ccc = member_ccc(truth, preds)
        pl_module.model.set_ccc(fusion_ccc(ccc))
        for i, row in enumerate(ccc):
            for name, value in zip(VA_NAMES, row, strict=True):
                pl_module.log(f"val/fusion{i}/ccc_{name}", float(value))
        logger.info("decision fusion: validation CCC per network %s → weights %s", ccc.round(4).tolist(),
                    pl_module.model.weights.round(decimals=4).tolist())  # fmt: skip
