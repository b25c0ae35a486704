"""Samplers: small functions from pure noise to x0, conditioned on the low-light image.

Each sampler has the signature ``sampler(denoiser, shape, schedule, generator, callback)``
and returns x0 (``N x 3 x H x W`` in [-1, 1]). Noise is drawn on the CPU from ``generator``
and moved to the denoiser's device, so one seed gives one image on any device.
``callback(i, total)`` is called after each step (progress bars).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.schedules import Schedule

Callback = Callable[[int, int], None] | None


def randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """Standard normal noise drawn on the CPU (from ``generator``), then moved to ``device``."""
    return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)


def sample_reference(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    schedule: Schedule,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The reference (SR3/GSAD) ancestral DDPM sampler.

    x_T ~ N(0, I); for t = T-1 .. 0:
        x0_hat = clamp(x_t / sqrt(ab_t) - sqrt(1/ab_t - 1) * eps(x_t, sqrt(ab_t)), -1, 1)
        x_{t-1} = c1_t * x0_hat + c2_t * x_t + [t > 0] * exp(logvar_t / 2) * z
    Random draws in the reference's order: one normal of ``shape`` first, then one per step
    except the last; with the same seed the output matches the reference code.
    """
    x = randn(shape, generator, device)
    total = schedule.num_steps
    c1, c2 = schedule.posterior_mean_coef1.to(device), schedule.posterior_mean_coef2.to(device)
    a, b = schedule.sqrt_recip_alpha_bar.to(device), schedule.sqrt_recipm1_alpha_bar.to(device)
    std = (0.5 * schedule.posterior_log_variance).exp().to(device)
    for i, t in enumerate(reversed(range(total))):
        eps = denoiser.eps(x, schedule.sqrt_alpha_bar[t])
        x0 = (a[t] * x - b[t] * eps).clamp_(-1.0, 1.0)
        mean = c1[t] * x0 + c2[t] * x
        x = mean + std[t] * randn(shape, generator, device) if t > 0 else mean
        if callback is not None:
            callback(i + 1, total)
    return x


def sample_ddim(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    schedule: Schedule,
    generator: torch.Generator | None = None,
    callback: Callback = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) over the schedule's steps.

    x_T ~ N(0, I) (the only random draw); for t = T-1 .. 0:
        x0_hat = clamp(x0(x_t), -1, 1);  eps' = (x_t - sqrt(ab_t) x0_hat) / sqrt(1 - ab_t)
        x_{t-1} = sqrt(ab_{t-1}) x0_hat + sqrt(1 - ab_{t-1}) eps'   (ab_{-1} := 1)
    """
    x = randn(shape, generator, device)
    total = schedule.num_steps
    for i, t in enumerate(reversed(range(total))):
        level = schedule.sqrt_alpha_bar[t]
        x0, _ = denoiser.x0(x, level, clip=True)
        ab, ab_prev = schedule.alpha_bar[t].item(), schedule.alpha_bar_prev[t].item()
        if t == 0:
            x = x0
        else:
            eps = (x - ab**0.5 * x0) / (1.0 - ab) ** 0.5
            x = ab_prev**0.5 * x0 + (1.0 - ab_prev) ** 0.5 * eps
        if callback is not None:
            callback(i + 1, total)
    return x


#: Sampler functions by the name users give on the command line and in configs.
SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "reference": sample_reference,
    "ddim": sample_ddim,
}
