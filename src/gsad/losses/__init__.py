"""Training losses: stage-1 aleatoric loss, stage-2 pixel and structure losses, distillation."""

from gsad.losses.objectives import (
    DISTILL_LOSSES,
    LOSS_WEIGHTINGS,
    WARM_MAX_ALPHA_BAR,
    distill_distance,
    gsad_objective,
    loss_weight,
    noised_input,
    stage1_objective,
)
from gsad.losses.structure import patch_matrix, structure_distance, ward_clusters
from gsad.losses.uncertainty import pixel_loss, stage1_loss, uncertainty_weights

__all__ = [
    "DISTILL_LOSSES",
    "LOSS_WEIGHTINGS",
    "WARM_MAX_ALPHA_BAR",
    "distill_distance",
    "gsad_objective",
    "loss_weight",
    "noised_input",
    "patch_matrix",
    "pixel_loss",
    "stage1_loss",
    "stage1_objective",
    "structure_distance",
    "uncertainty_weights",
    "ward_clusters",
]
