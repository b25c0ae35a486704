"""Samplers: small functions from the starting state x_T to x0, conditioned on the low-light image.

Each sampler has the signature ``sampler(denoiser, x, schedule, generator, callback)``, where
``x`` is x_T on the device the sampler runs on, built by the caller with :func:`initial_state`
(pure noise, or a warm start from an estimate of x0), and returns x0 (``N x 3 x H x W`` in
[-1, 1]). Noise is drawn from ``generator`` on its device (a CPU generator unless the caller
chose a CUDA one) and moved to ``x``'s device, so one seed gives one image on any device.
``callback(i, total)`` is called after each step (progress bars).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.posterior import posterior_step_
from gsad.diffusion.schedules import Schedule, q_sample
from gsad.imaging.geometry import row_bands

Callback = Callable[[int, int], None] | None
Generator = torch.Generator | None


def _steps(schedule: Schedule, callback: Callback) -> Iterator[int]:
    """The step indices t = T-1 .. 0 of a trajectory; ``callback(i, T)`` runs after step i is taken."""
    total = schedule.num_steps
    for i, t in enumerate(reversed(range(total))):
        yield t
        if callback is not None:
            callback(i + 1, total)


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` on the generator's own device, then moved
    to ``device``: a CPU generator (the default) gives the same noise on every device; a CUDA
    generator draws on the GPU as the reference code does there (its Philox stream, not the CPU's)."""
    where = generator.device if generator is not None else torch.device("cpu")
    return torch.randn(shape, generator=generator, dtype=torch.float32, device=where).to(device)


def initial_state(
    shape: tuple[int, ...],
    schedule: Schedule,
    generator: torch.Generator | None,
    device: torch.device | str,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """x_T: pure noise z, or with an initial estimate ``start`` of x0, that estimate noised
    to the schedule's first level (a warm start):

        x_T = z                                            (start is None: the paper)
        x_T = sqrt(ab_T) start + sqrt(1 - ab_T) z          (start given)

    The draw of z is the same either way (one normal of ``shape``), so the random-number
    order of every sampler is unchanged. Starting the reverse process from a forward-diffused
    estimate instead of noise is the "come closer, diffuse faster" idea of Chung, Sim and Ye
    (CVPR 2022): the trajectory only has to correct the estimate, so a few steps go further.
    With ``beta_end`` the schedule's first level sqrt(ab_T) sets how much of the estimate is
    kept (``gsad tune-schedule`` chooses it on data). The warm start is computed in z's storage, a
    band of rows at a time (no whole-image temporaries; the values of q_sample on the whole image).
    """
    z = randn(shape, generator, device)
    if start is None:
        return z
    if tuple(start.shape) != tuple(shape):
        raise ValueError(f"start has shape {tuple(start.shape)}, expected {tuple(shape)}")
    level = schedule.sqrt_alpha_bar[-1:].to(z.device)
    for rows in row_bands(*shape[-2:]):
        z[..., rows, :] = q_sample(start[..., rows, :].to(device=z.device, dtype=z.dtype), level, z[..., rows, :])
    return z


def sample_reference(
    denoiser: Denoiser, x: torch.Tensor, schedule: Schedule, generator: Generator = None, callback: Callback = None
) -> torch.Tensor:
    """The reference (SR3/GSAD) ancestral DDPM sampler.

    From x = x_T (:func:`initial_state`), for t = T-1 .. 0:
        x0_hat = clamp(x_t / sqrt(ab_t) - sqrt(1/ab_t - 1) * eps(x_t, sqrt(ab_t)), -1, 1)
        x_{t-1} = c1_t * x0_hat + c2_t * x_t + [t > 0] * exp(logvar_t / 2) * z
    Random draws in the reference's order: one normal of x's shape per step except the last
    (after x_T's own, made by :func:`initial_state`); with the same seed the output matches the
    reference code. The posterior step is :func:`~gsad.diffusion.posterior.posterior_step` (computed
    in place, :func:`~gsad.diffusion.posterior.posterior_step_`). Whole-image buffers alive at once:
    x_T, x_t, and eps_hat then x0_hat then the noise (eps_hat is freed before the noise is drawn).
    """
    device = x.device
    c1, c2 = schedule.posterior_mean_coef1.to(device), schedule.posterior_mean_coef2.to(device)
    recip, recipm1 = schedule.sqrt_recip_alpha_bar.to(device), schedule.sqrt_recipm1_alpha_bar.to(device)
    std = (0.5 * schedule.posterior_log_variance).exp().to(device)
    for t in _steps(schedule, callback):
        eps = denoiser.eps(x, schedule.sqrt_alpha_bar[t])
        # x0_hat = sqrt(1/ab_t) x_t - sqrt(1/ab_t - 1) eps; in-place updates only of temporaries
        # made in this step (the arithmetic is the reference's, operation for operation).
        x0 = recip[t] * x
        x0 -= eps.mul_(recipm1[t])
        del eps
        x0.clamp_(-1.0, 1.0)
        noise = randn(tuple(x.shape), generator, device) if t > 0 else None
        x = posterior_step_(x0, x, c1[t], c2[t], std[t], noise)
        del x0, noise
    return x


def sample_ddim(
    denoiser: Denoiser, x: torch.Tensor, schedule: Schedule, generator: Generator = None, callback: Callback = None
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) over the schedule's steps.

    From x = x_T (no random draws here), for t = T-1 .. 0:
        x0_hat = clamp(x0(x_t), -1, 1);  eps' = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t)
        x_{t-1} = sqrt(ab_{t-1}) x0_hat + sqrt(1 - ab_{t-1}) eps'   (ab_{-1} := 1)
    """
    for t in _steps(schedule, callback):
        level = schedule.sqrt_alpha_bar[t]
        x0, _ = denoiser.x0(x, level, clip=True)
        ab, ab_prev = schedule.alpha_bar[t].item(), schedule.alpha_bar_prev[t].item()
        if t == 0:
            x = x0
        else:
            eps = (x - ab**0.5 * x0) / (1.0 - ab) ** 0.5
            x = ab_prev**0.5 * x0 + (1.0 - ab_prev) ** 0.5 * eps
    return x


def sample_dpmpp_2m(
    denoiser: Denoiser, x: torch.Tensor, schedule: Schedule, generator: Generator = None, callback: Callback = None
) -> torch.Tensor:
    """DPM-Solver++(2M): deterministic second-order multistep solver of the probability-flow ODE.

    Lu et al. 2022, "DPM-Solver++", Algorithm 2 (data prediction, multistep), over the
    schedule's own steps t = T-1 .. 0, in the half log-SNR
        lambda_t = log(alpha_t / sigma_t),  alpha_t = sqrt(ab_t),  sigma_t = sqrt(1 - ab_t).
    From x = x_T (no random draws here), at each t, D_t = clamp(x0(x_t), -1, 1); at t = 0
    the result is D_0; otherwise, with h = lambda_{t-1} - lambda_t,
        D = D_t                                      (first step: DDIM)
        D = (1 + 1/(2r)) D_t - 1/(2r) D_{t+1},  r = h_prev / h   (later steps)
        x_{t-1} = (sigma_{t-1} / sigma_t) x_t - alpha_{t-1} (exp(-h) - 1) D.
    One network call per step, as DDIM; with one step it is DDIM's single x0 prediction.
    """
    ab = schedule.alpha_bar.to(torch.float64)
    alpha, sigma = ab.sqrt().tolist(), (1.0 - ab).sqrt().tolist()
    lam = [math.log(al / si) for al, si in zip(alpha, sigma)]
    d_prev, h_prev = None, None
    for t in _steps(schedule, callback):
        d, _ = denoiser.x0(x, schedule.sqrt_alpha_bar[t], clip=True)
        if t == 0:
            x = d
        else:
            h = lam[t - 1] - lam[t]
            if d_prev is None:
                dd = d
            else:
                k = h / (2.0 * h_prev)  # = 1 / (2r)
                dd = (1.0 + k) * d - k * d_prev
            x = (sigma[t - 1] / sigma[t]) * x - (alpha[t - 1] * math.expm1(-h)) * dd
            d_prev, h_prev = d, h
    return x


#: Sampler functions by the name users give on the command line and in configs.
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "reference": sample_reference,
    "ddim": sample_ddim,
    "dpmpp": sample_dpmpp_2m,
}
