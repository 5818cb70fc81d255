"""Training losses of the five papers: pure, differentiable, batch-first PyTorch functions.

Partial labels are masks (STYLE rule 7), never sentinel values. Shapes are documented per function;
``B`` = batch, ``E`` = expressions, ``A`` = AUs, ``K`` = regression outputs.
"""

from facebehavior.losses.arl import (
    arl_loss,
    cosine_similarity_loss,
    crf_energy_loss,
    iarl_loss,
    intensity_loss,
)
from facebehavior.losses.ccc import ccc, ccc_loss
from facebehavior.losses.classification import (
    arl_au_weights,
    arl_detection_loss,
    expression_ce,
    masked_bce,
    occurrence_rates,
)
from facebehavior.losses.coupling import (
    au_mixture,
    coannotate_aus,
    coannotate_expressions,
    coannotation_loss,
    distribution_matching_loss,
    soft_coannotation_loss,
    soft_coannotation_targets,
)
from facebehavior.losses.fatauva import (
    VA_CLASS_VALUES,
    CenterLoss,
    center_loss,
    smooth_l1_turning,
    va_class_decode,
    va_to_class,
)

__all__ = [
    "VA_CLASS_VALUES",
    "CenterLoss",
    "arl_loss",
    "center_loss",
    "cosine_similarity_loss",
    "crf_energy_loss",
    "iarl_loss",
    "intensity_loss",
    "smooth_l1_turning",
    "va_class_decode",
    "va_to_class",
    "arl_au_weights",
    "arl_detection_loss",
    "au_mixture",
    "ccc",
    "ccc_loss",
    "coannotate_aus",
    "coannotate_expressions",
    "coannotation_loss",
    "distribution_matching_loss",
    "expression_ce",
    "masked_bce",
    "occurrence_rates",
    "soft_coannotation_loss",
    "soft_coannotation_targets",
]
