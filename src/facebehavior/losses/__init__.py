"""Training losses of the five papers: pure, differentiable, batch-first PyTorch functions.

Partial labels are masks (STYLE rule 7), never sentinel values. Shapes are documented per function;
``B`` = batch, ``E`` = expressions, ``A`` = AUs, ``K`` = regression outputs.
"""

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

__all__ = [
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
