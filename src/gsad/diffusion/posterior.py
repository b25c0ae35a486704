"""The posterior step q(x_{t-1} | x_t, x0_hat), shared by the reference sampler and the
stage-2 loss.

    x_{t-1} = c1_t x0_hat + c2_t x_t + sigma_t z        (DDPM, Ho et al. 2020, eq. 6-7)

with c1, c2 and log sigma^2 the schedule's ``posterior_mean_coef1/2`` and
``posterior_log_variance`` tables. :func:`posterior_step` is that one line of arithmetic; the
reference sampler (:func:`gsad.diffusion.samplers.sample_reference`) takes it at one scalar
step (in place, :func:`posterior_step_`; autograd follows the in-place updates, so a distilled
student is trained through the sampler as it is), :func:`posterior_sample` per sample of a training
batch, differentiably.
"""

from __future__ import annotations

import torch

from gsad.diffusion.schedules import Schedule, extract, predict_x0
from gsad.imaging.geometry import row_bands


def posterior_step(
    x0_hat: torch.Tensor,
    x_t: torch.Tensor,
    coef1: torch.Tensor,
    coef2: torch.Tensor,
    std: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """x_{t-1} = coef1 x0_hat + coef2 x_t (+ std z where ``noise`` z is given).

    Coefficients are scalars or ``N x 1 x 1 x 1``; the result is a new tensor (:func:`posterior_step_`
    on a copy of ``x0_hat``, so autograd works through it). The arithmetic, operation for operation,
    is the reference code's: the fp32 path stays bit-compatible with it.
    """
    return posterior_step_(x0_hat.clone(), x_t, coef1, coef2, std, noise)


def posterior_step_(
    x0_hat: torch.Tensor,
    x_t: torch.Tensor,
    coef1: torch.Tensor,
    coef2: torch.Tensor,
    std: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`posterior_step` in ``x0_hat``'s storage (overwritten and returned): coef1 x0_hat, then
    the x_t term, then the noise term added a band of rows at a time
    (:func:`~gsad.imaging.geometry.row_bands`; elementwise, so the values of the whole-image sums),
    so no whole-image temporary is made. For a step's own temporary x0_hat; autograd follows the
    in-place updates (gradients flow to x0_hat and x_t)."""
    x_prev = x0_hat.mul_(coef1)
    for rows in row_bands(*x_prev.shape[-2:]):
        x_prev[..., rows, :] += coef2 * x_t[..., rows, :]
        if noise is not None:
            x_prev[..., rows, :] += std * noise[..., rows, :]
    return x_prev


def posterior_sample(
    x_t: torch.Tensor,
    t_index: torch.Tensor,
    level: torch.Tensor,
    eps_hat: torch.Tensor,
    schedule: Schedule,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Differentiable sample x_{t-1} ~ q(x_{t-1} | x_t, x0_hat), per sample (the stage-2 loss's).

        x0_hat  = clamp(x_t / sqrt(a) - sqrt(1/a - 1) eps_hat, -1, 1)
        x_{t-1} = c1[i] x0_hat + c2[i] x_t + [i > 0] exp(logvar[i] / 2) z     (:func:`posterior_step`)

    with i = t - 1 the 0-based step index, c1, c2, logvar the posterior tables of
    ``schedule`` and z = ``noise``. As in the reference, x0_hat uses the continuous level
    sqrt(a) of x_t while the posterior uses the discrete step i, and no noise is added at
    i = 0. The clamp passes gradients where x0_hat lies inside [-1, 1].

    Args:
        x_t: ``B x 3 x H x W`` noisy images.
        t_index: ``B`` integer step indices i (0-based).
        level: ``B`` continuous levels sqrt(a) used to make x_t.
        eps_hat: the network's noise estimate, like ``x_t`` (gradients flow through it).
        schedule: the training schedule.
        noise: z, standard normal, like ``x_t``.

    Returns:
        x_{t-1}, like ``x_t``.
    """
    x0_hat = predict_x0(x_t, level, eps_hat).clamp(-1.0, 1.0)
    std = torch.exp(0.5 * extract(schedule.posterior_log_variance, t_index))
    std = std * (t_index > 0).reshape(-1, 1, 1, 1).to(std.dtype)
    coef1, coef2 = extract(schedule.posterior_mean_coef1, t_index), extract(schedule.posterior_mean_coef2, t_index)
    return posterior_step(x0_hat, x_t, coef1, coef2, std, noise)
