"""The samplers' warm starts: the estimate of x0 that a trajectory starts from, by start name
(:data:`gsad.config.START_NAMES`, ``SamplerConfig.start``)."""

from __future__ import annotations

import torch

from gsad.imaging.exposure import auto_exposure, soft_auto_exposure
from gsad.imaging.geometry import pad_to_multiple
from gsad.imaging.tensors import from_model, to_model
from gsad.network.exposure_net import learned_exposure


def start_estimate(low: torch.Tensor, start: str, stride: int) -> torch.Tensor | None:
    """The warm-start estimate of x0 for the images ``low`` (``N x 3 x H x W`` in [-1, 1]) and a
    start name: None for ``noise``; for ``exposure`` the global
    :func:`~gsad.imaging.exposure.auto_exposure` of each whole image (``soft-exposure``:
    :func:`~gsad.imaging.exposure.soft_auto_exposure`, ``learned-exposure``: the learned global
    correction, :func:`~gsad.network.exposure_net.learned_exposure`, on ``low``'s device), the
    same shape and range, reflect-padded to ``stride`` like the condition (computed before any
    tiling, so every tile starts from the same gain). Used by inference and by warm-start
    training alike."""
    if start == "noise":
        return None
    if start == "learned-exposure":
        exposed = learned_exposure(low)
    else:
        expose = soft_auto_exposure if start == "soft-exposure" else auto_exposure
        exposed = [to_model(expose(from_model(x))) for x in low]
        exposed = exposed[0] if len(exposed) == 1 else torch.cat(exposed)
    return pad_to_multiple(exposed, stride)[0]
