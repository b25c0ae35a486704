"""The loss of one training step of each GSAD stage (DESIGN.md section 3); no loop here.

Both objectives take a batch of low-light inputs y and ground truths x0 (``B x 3 x H x W``
float in [-1, 1], on the training device) and draw everything random (noise levels, noise)
from an explicit CPU ``generator``; the noise is then moved to the batch's device, so one
seed gives the same draws on any device.

- :func:`stage1_objective`: the uncertainty model; eps-prediction with the Laplace-style
  aleatoric loss :func:`~gsad.losses.uncertainty.stage1_loss`.
- :func:`gsad_objective`: stage 2; the uncertainty-guided pixel loss plus the global
  structure-aware (rank-informed) loss on a differentiable posterior sample x_{t-1}
  (:func:`gsad.diffusion.posterior.posterior_sample`).
- :func:`distill_distance`: the distance of a distillation step
  (:func:`gsad.training.distill.distill_objective`, which runs both samplers and so sits in the
  training layer, above ``enhance``).

Optional, not the paper: ``weighting`` (:func:`loss_weight`) and warm-start training
(``start``, ``warm_start``; :func:`noised_input`), which matches training to the samplers'
``exposure`` start.

The network call runs under whatever autocast the caller set; the losses themselves are
computed in float32 with autocast off (singular values have no half-precision kernels and
the spectra need the precision).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from gsad.config import DISTILL_LOSSES, LOSS_WEIGHTINGS
from gsad.diffusion.posterior import posterior_sample
from gsad.diffusion.schedules import Schedule, q_sample, sample_training_levels
from gsad.losses.structure import structure_distance
from gsad.losses.uncertainty import pixel_loss, stage1_loss, uncertainty_weights

__all__ = [
    "DISTILL_LOSSES", "LOSS_WEIGHTINGS", "WARM_MAX_ALPHA_BAR", "distill_distance",
    "gsad_objective", "loss_weight", "noised_input", "stage1_objective",
]

#: lambda of the stage-2 pixel loss (the reference's value).
PIXEL_LOSS_SCALE = 10.0

#: delta of the Charbonnier distance sqrt(d^2 + delta^2) - delta (:func:`distill_distance`), in [-1, 1] units.
CHARBONNIER_DELTA = 1e-3

#: Warm-start training (:func:`noised_input`) applies at levels with alpha_bar <= 0.75: the
#: first levels of short sampling trajectories, where a warm start is noised to.
WARM_MAX_ALPHA_BAR = 0.75


def loss_weight(level: torch.Tensor, weighting: str = "eps") -> torch.Tensor:
    """Per-sample weight ``w`` of the eps residual |eps_hat - eps|, shaped ``N x 1 x 1 x 1``.

    - ``eps`` (the paper, SR3): w = 1.
    - ``truncated-snr`` (Salimans & Ho 2022, "truncated SNR" weighting, here for an L1
      loss): w = max(1, sqrt((1 - a) / a)). Since x0_hat - x0 = -sqrt((1 - a) / a)
      (eps_hat - eps), w |eps_hat - eps| = max(|eps_hat - eps|, |x0_hat - x0|): at low noise
      the loss is the usual eps loss, at high noise (sqrt(a) < 1/sqrt(2)) it is the x0 error.
      The plain eps loss gives the x0 estimate at high noise (the conditional mean of x0
      given y, which the first steps of a short trajectory rely on) a weight of only
      SNR = a / (1 - a), so it is learnt slowly; this weighting makes it count.

    Args:
        level: ``N`` continuous levels sqrt(a) in (0, 1].
        weighting: one of :data:`LOSS_WEIGHTINGS`.
    """
    if weighting not in LOSS_WEIGHTINGS:
        raise ValueError(f"loss weighting: unknown {weighting!r} (choose from {', '.join(LOSS_WEIGHTINGS)})")
    level = level.float().reshape(-1, 1, 1, 1)
    if weighting == "eps":
        return torch.ones_like(level)
    return ((1.0 - level**2).clamp_min(0.0).sqrt() / level).clamp_min(1.0)


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``like``, drawn on the CPU and moved to its device."""
    return torch.randn(like.shape, generator=generator, dtype=torch.float32).to(like.device)


def noised_input(
    high: torch.Tensor,
    level: torch.Tensor,
    eps: torch.Tensor,
    start: torch.Tensor | None = None,
    warm: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, noise target) of a training batch; with warm starts, the samplers' start state.

    Plain (the paper): x_t = sqrt(a) x0 + sqrt(1 - a) eps and the target is eps.

    Warm-start samples (``warm[b]`` true) are noised from the start estimate s (for the
    ``exposure`` start, the auto-exposed input) instead of x0, as the samplers' first state
    is, and the target is the *effective* noise that explains x_t from the true x0:

        x_t = sqrt(a) s + sqrt(1 - a) eps,    eps_eff = (x_t - sqrt(a) x0) / sqrt(1 - a)
            = eps + sqrt(a / (1 - a)) (s - x0)

    so that predict_x0(x_t, eps_eff) = x0 exactly: the network learns that the signal in a
    warm x_t carries the start's errors (amplified sensor noise, a wrong exposure) and must
    not be kept. Without this, a model trained on clean x0 takes that noise for signal.

    Args:
        high: x0, ``B x 3 x H x W``.
        level: ``B`` levels sqrt(a).
        eps: standard normal noise like ``high``.
        start: s, like ``high``, or None.
        warm: ``B`` booleans, which samples start warm (None: none).
    """
    x_t = q_sample(high, level, eps)
    if start is None or warm is None or not bool(warm.any()):
        return x_t, eps
    g, warm = level.reshape(-1, 1, 1, 1), warm.reshape(-1, 1, 1, 1)
    x_t = torch.where(warm, q_sample(start, level, eps), x_t)
    return x_t, torch.where(warm, (x_t - g * high) / (1.0 - g**2).clamp_min(1e-12).sqrt(), eps)


def _draw(
    high: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None,
    start: torch.Tensor | None = None,
    warm_start: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t index, level sqrt(a), noise target, x_t) for a batch of ground truths x0 = ``high``.

    The noise target is the drawn eps, or for warm-start samples the effective noise eps_eff
    of :func:`noised_input` (so the callers call it ``target``, not ``eps``).

    With ``start`` and ``warm_start`` > 0, each sample whose level has alpha_bar <=
    :data:`WARM_MAX_ALPHA_BAR` is noised from ``start`` with probability ``warm_start``
    (:func:`noised_input`); the extra uniform draws are made only then, so runs without
    warm starts keep their random stream.
    """
    t_index, level = sample_training_levels(schedule, high.shape[0], generator)
    t_index, level = t_index.to(high.device), level.to(high.device)
    eps = _noise(high, generator)
    warm = None
    if start is not None and warm_start > 0:
        u = torch.rand(high.shape[0], generator=generator).to(high.device)
        warm = (u < warm_start) & (level**2 <= WARM_MAX_ALPHA_BAR)
    x_t, target = noised_input(high, level, eps, start, warm)
    return t_index, level, target, x_t


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast off for the loss maths (a no-op where autocast is unavailable)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:
        return contextlib.nullcontext()


def stage1_objective(
    net: nn.Module,
    low: torch.Tensor,
    high: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    weighting: str = "eps",
    start: torch.Tensor | None = None,
    warm_start: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one stage-1 (uncertainty model) step.

    Per sample: t ~ U{1..T} and a continuous level sqrt(a) (SR3), eps ~ N(0, I),
    x_t = sqrt(a) x0 + sqrt(1 - a) eps, (eps_hat, P) = net([y, x_t], sqrt(a)), and

        L = mean( exp(-P) w |eps_hat - eps| + 2 P )    (see stage1_loss for the normalisation)

    with w = 1 (the paper) or the :func:`loss_weight` of ``weighting``.

    Args:
        net: U-Net with an uncertainty head (possibly wrapped, e.g. DistributedDataParallel).
        low: y, ``B x 3 x H x W`` in [-1, 1].
        high: x0, same shape, in [-1, 1].
        schedule: the training schedule (T = 500 linear).
        generator: CPU generator for levels and noise.
        weighting: per-sample residual weighting, see :func:`loss_weight`.
        start: the samplers' start estimate of x0 (e.g. the auto-exposed ``low``) for
            warm-start training, or None.
        warm_start: fraction of samples at start levels noised from ``start`` (0: the
            paper); eps is then the effective noise of :func:`noised_input`.

    Returns:
        (scalar loss, logs ``{"loss"}`` as detached scalars).
    """
    _, level, target, x_t = _draw(high, schedule, generator, start, warm_start)
    eps_hat, log_uncertainty = net(torch.cat([low, x_t], dim=1), level)
    if log_uncertainty is None:
        raise ValueError("stage1_objective needs a network with an uncertainty head")
    with full_precision(high.device):
        w = loss_weight(level, weighting)  # |w a - w b| = w |a - b| with w > 0
        loss = stage1_loss(w * eps_hat.float(), w * target, log_uncertainty.float())
    return loss, {"loss": loss.detach()}


def gsad_objective(
    net: nn.Module,
    frozen_net: nn.Module,
    low: torch.Tensor,
    high: torch.Tensor,
    schedule: Schedule,
    generator: torch.Generator | None = None,
    structure_weight: float = 1.0,
    num_clusters: int = 6,
    patch_size: int = 8,
    weighting: str = "eps",
    start: torch.Tensor | None = None,
    warm_start: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of one stage-2 (GSAD) step.

    1. Levels and noise as in stage 1; eps_hat = net([y, x_t], sqrt(a)).
    2. P from the frozen stage-1 model on the same input (no gradients), mapped per sample
       and channel to weights w in [0.5, 1]; L_pix = 10 mean |w (eps_hat - eps)|, times the
       per-sample :func:`loss_weight` of ``weighting`` (1 in the paper).
    3. x_{t-1} = :func:`~gsad.diffusion.posterior.posterior_sample` from eps_hat (fresh noise z from ``generator``).
    4. L_s = mean over batch b and clusters k of S_bk(x0, x_{t-1}) * sqrt(a_b)^4, with S the
       spectral distance of :func:`~gsad.losses.structure.structure_distance`
       (sqrt(a)^4 = alpha_bar^2: the structure term counts at low noise).
    5. L = L_pix + structure_weight * L_s.

    ``structure_weight == 0`` skips steps 3-4 (the random draws are made all the same, so
    the levels and noise of a step do not depend on the weight); ``loss_structure`` is then
    logged as 0.

    Args:
        net: the U-Net being trained (its uncertainty output, if any, is ignored).
        frozen_net: the stage-1 model with an uncertainty head; not updated.
        low: y, ``B x 3 x H x W`` in [-1, 1].
        high: x0, same shape, in [-1, 1]; H and W multiples of ``patch_size``.
        schedule: the training schedule.
        generator: CPU generator for levels and noise.
        structure_weight: weight of L_s (1 in the paper).
        num_clusters: K Ward clusters per sample (6 in the paper).
        patch_size: side of the non-overlapping patches (8 in the paper).
        weighting: per-sample residual weighting, see :func:`loss_weight`.
        start, warm_start: warm-start training, as in :func:`stage1_objective`.

    Returns:
        (scalar loss, logs ``{"loss", "loss_pix", "loss_structure"}`` as detached scalars).
    """
    t_index, level, target, x_t = _draw(high, schedule, generator, start, warm_start)
    z = _noise(high, generator)
    inputs = torch.cat([low, x_t], dim=1)
    eps_hat, _ = net(inputs, level)
    with torch.no_grad():
        _, log_uncertainty = frozen_net(inputs, level)
    if log_uncertainty is None:
        raise ValueError("gsad_objective needs a frozen network with an uncertainty head")

    with full_precision(high.device):
        eps_hat = eps_hat.float()
        weights = uncertainty_weights(log_uncertainty.float()) * loss_weight(level, weighting)
        loss_pix = pixel_loss(eps_hat, target, weights, PIXEL_LOSS_SCALE)
        if structure_weight == 0:
            loss_structure = torch.zeros((), device=high.device)
            loss = loss_pix
        else:
            x_prev = posterior_sample(x_t, t_index, level, eps_hat, schedule, z)
            distance = structure_distance(high.float(), x_prev, num_clusters, patch_size)  # B x K
            loss_structure = (distance * level.float()[:, None] ** 4).mean()
            loss = loss_pix + structure_weight * loss_structure
    logs = {"loss": loss.detach(), "loss_pix": loss_pix.detach(), "loss_structure": loss_structure.detach()}
    return loss, logs


def distill_distance(output: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """Mean distance between two images (one of :data:`DISTILL_LOSSES`), 0 where they are equal.

        l1:          mean |d|
        charbonnier: mean (sqrt(d^2 + delta^2) - delta),  delta = CHARBONNIER_DELTA

    with d = output - target. Charbonnier is L1 with a smooth minimum (its gradient goes to 0 with d).
    """
    if kind not in DISTILL_LOSSES:
        raise ValueError(f"distill loss: unknown {kind!r} (choose from {', '.join(DISTILL_LOSSES)})")
    d = output - target
    if kind == "l1":
        return d.abs().mean()
    return ((d * d + CHARBONNIER_DELTA**2).sqrt() - CHARBONNIER_DELTA).mean()
