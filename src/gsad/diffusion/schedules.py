"""Noise schedules: beta / alpha-bar tables, posterior coefficients and forward noising.

Tables are computed in float64 and stored as float32 tensors (as the reference does), so
that the reference sampler can be reproduced bit for bit. No network here.

Notation (DDPM): alpha_t = 1 - beta_t, alpha_bar_t = prod_{i<=t} alpha_i, t = 0..T-1.
The network is conditioned on the continuous level sqrt(alpha_bar) (SR3), never on t.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def linear_betas(steps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """``steps`` betas spaced linearly from ``beta_start`` to ``beta_end`` (float64)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return np.linspace(beta_start, beta_end, steps, dtype=np.float64)


@dataclass(frozen=True)
class Schedule:
    """Per-step tables of a discrete schedule (all float32 tensors of length T, on the CPU).

    - ``sqrt_alpha_bar[t]``: the network's noise-level input at step t;
    - ``sqrt_recip_alpha_bar``, ``sqrt_recipm1_alpha_bar``: x0 = a * x_t - b * eps;
    - ``posterior_mean_coef1/2``: mean of q(x_{t-1} | x_t, x0) = c1 * x0 + c2 * x_t;
    - ``posterior_log_variance``: log of its variance, clipped below at log(1e-20).
    """

    betas: torch.Tensor
    alpha_bar: torch.Tensor
    alpha_bar_prev: torch.Tensor
    sqrt_alpha_bar: torch.Tensor
    sqrt_recip_alpha_bar: torch.Tensor
    sqrt_recipm1_alpha_bar: torch.Tensor
    posterior_mean_coef1: torch.Tensor
    posterior_mean_coef2: torch.Tensor
    posterior_log_variance: torch.Tensor
    #: float64 sqrt(alpha_bar) with a leading 1: level boundaries for continuous training draws.
    sqrt_alpha_bar_bounds: np.ndarray

    @property
    def num_steps(self) -> int:
        return int(self.betas.shape[0])

    @classmethod
    def from_betas(cls, betas: np.ndarray) -> Schedule:
        betas = np.asarray(betas, dtype=np.float64)
        alphas = 1.0 - betas
        alpha_bar = np.cumprod(alphas)
        alpha_bar_prev = np.append(1.0, alpha_bar[:-1])
        posterior_variance = betas * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
        f32 = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        return cls(
            betas=f32(betas),
            alpha_bar=f32(alpha_bar),
            alpha_bar_prev=f32(alpha_bar_prev),
            sqrt_alpha_bar=f32(np.sqrt(alpha_bar)),
            sqrt_recip_alpha_bar=f32(np.sqrt(1.0 / alpha_bar)),
            sqrt_recipm1_alpha_bar=f32(np.sqrt(1.0 / alpha_bar - 1.0)),
            posterior_mean_coef1=f32(betas * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar)),
            posterior_mean_coef2=f32((1.0 - alpha_bar_prev) * np.sqrt(alphas) / (1.0 - alpha_bar)),
            posterior_log_variance=f32(np.log(np.maximum(posterior_variance, 1e-20))),
            sqrt_alpha_bar_bounds=np.sqrt(np.append(1.0, alpha_bar)),
        )

    @classmethod
    def linear(cls, steps: int, beta_start: float, beta_end: float) -> Schedule:
        """The linear schedule used for training (T=500, 1e-4..2e-2) and for test-time sampling."""
        return cls.from_betas(linear_betas(steps, beta_start, beta_end))


#: The training schedule of the paper: linear, T = 500, beta 1e-4 -> 2e-2.
def training_schedule() -> Schedule:
    return Schedule.linear(500, 1e-4, 2e-2)


def extract(table: torch.Tensor, t: torch.Tensor, ndim: int = 4) -> torch.Tensor:
    """Pick each sample's coefficient ``table[t]`` on ``t``'s device, shaped ``N x 1 x 1 x 1``."""
    return table.to(t.device)[t].reshape(-1, *([1] * (ndim - 1)))


def q_sample(x0: torch.Tensor, sqrt_alpha_bar: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward noising x_t = sqrt(a) * x0 + sqrt(1 - a) * eps, with ``sqrt_alpha_bar`` of shape N."""
    g = sqrt_alpha_bar.reshape(-1, 1, 1, 1)
    return g * x0 + (1.0 - g**2).sqrt() * noise


def predict_x0(x_t: torch.Tensor, sqrt_alpha_bar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x0_hat = x_t / sqrt(a) - sqrt(1/a - 1) * eps_hat for a continuous level (shape N)."""
    g = sqrt_alpha_bar.reshape(-1, 1, 1, 1)
    return x_t / g - (1.0 / g**2 - 1.0).sqrt() * eps


def sample_training_levels(
    schedule: Schedule, batch: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """SR3 continuous noise levels for a training batch (drawn on the CPU).

    Per sample: t ~ U{1..T}, then sqrt(a) ~ U(sqrt(alpha_bar_{t-1}), sqrt(alpha_bar_t)) with
    alpha_bar_0 := 1. Returns (t - 1 as a 0-based step index, level), both of shape N.
    (The reference draws one t per batch; per-sample draws are ours and cover the schedule
    more evenly.)
    """
    t = torch.randint(1, schedule.num_steps + 1, (batch,), generator=generator)
    bounds = torch.from_numpy(schedule.sqrt_alpha_bar_bounds)
    lo, hi = bounds[t - 1], bounds[t]
    u = torch.rand(batch, generator=generator, dtype=torch.float64)
    level = (lo + (hi - lo) * u).to(torch.float32)
    return t - 1, level
