"""DPM-Solver++(2M): exact on an oracle, deterministic, DDIM for one or two steps, registered."""

import numpy as np
import pytest
import torch

from gsad.config import SAMPLER_NAMES, SamplerConfig
from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.samplers import SAMPLERS, initial_state, randn, sample_ddim, sample_dpmpp_2m
from gsad.diffusion.schedules import Schedule


class OracleNet(torch.nn.Module):
    """Predicts the exact noise for a known clean image x0 (ignores the condition)."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0

    def forward(self, x, level):
        a = level.reshape(-1, 1, 1, 1)
        return (x[:, 3:] - a * self.x0) / (1 - a**2).sqrt(), None


class SmoothNet(torch.nn.Module):
    """A fixed, smooth, non-oracle eps predictor (its x0 prediction moves with x_t and the level)."""

    def forward(self, x, level):
        a = level.reshape(-1, 1, 1, 1)
        return torch.tanh(0.8 * x[:, 3:] + 0.3 * x[:, :3] - a), None


def _x_T(shape, sched, seed):
    return initial_state(tuple(shape), sched, torch.Generator().manual_seed(seed), "cpu")


def _x0():
    return torch.linspace(-0.9, 0.9, 3 * 6 * 5).reshape(1, 3, 6, 5)


@pytest.mark.parametrize("steps", [1, 3, 10, 20])
def test_oracle_denoiser_recovers_x0(steps):
    x0 = _x0()
    sched = Schedule.linear(steps, 2e-3, 0.9)
    denoiser = Denoiser(OracleNet(x0), torch.zeros_like(x0))
    out = sample_dpmpp_2m(denoiser, _x_T(x0.shape, sched, 0), sched)
    assert torch.allclose(out, x0, atol=1e-4)


def test_deterministic_and_one_random_draw():
    shape = (1, 3, 6, 5)
    cond = torch.linspace(-1, 1, 90).reshape(shape)
    sched = Schedule.linear(8, 1e-3, 0.8)
    run = lambda seed: sample_dpmpp_2m(Denoiser(SmoothNet(), cond), _x_T(shape, sched, seed), sched)  # noqa: E731
    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the sampler itself draws nothing: the generator is left where initial_state left it
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sample_dpmpp_2m(Denoiser(SmoothNet(), cond), initial_state(shape, sched, g1, "cpu"), sched, g1)
    randn(shape, g2, "cpu")
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    assert a.abs().max() <= 1.0  # the last step returns the clamped x0 prediction


@pytest.mark.parametrize("steps", [1, 2])
def test_first_step_is_ddim(steps):
    """One step: the x0 prediction of x_T; two steps: a DDIM step then the x0 prediction."""
    shape = (1, 3, 6, 5)
    cond = torch.linspace(-1, 1, 90).reshape(shape)
    sched = Schedule.linear(steps, 2e-3, 0.9)
    a = sample_dpmpp_2m(Denoiser(SmoothNet(), cond), _x_T(shape, sched, 1), sched)
    b = sample_ddim(Denoiser(SmoothNet(), cond), _x_T(shape, sched, 1), sched)
    assert torch.allclose(a, b, atol=1e-5)


def _lambda_schedule(steps):
    """``steps`` levels evenly spaced in lambda = log(alpha/sigma) from 2.5 (t = 0) to -2.5."""
    lam = np.linspace(2.5, -2.5, steps)
    ab = 1 / (1 + np.exp(-2 * lam))
    return Schedule.from_betas(1 - ab / np.append(1.0, ab[:-1]))


def test_second_order_convergence():
    """Same ODE, same x_T, finer and finer steps: DDIM's error halves, DPM++(2M)'s quarters."""
    shape = (1, 3, 6, 5)
    cond = torch.linspace(-1, 1, 90).reshape(shape)

    def run(fn, steps):
        sched = _lambda_schedule(steps)
        return fn(Denoiser(SmoothNet(), cond), _x_T(shape, sched, 3), sched)

    exact = run(sample_dpmpp_2m, 800)
    err = {(fn, n): (run(fn, n) - exact).abs().max().item() for fn in (sample_ddim, sample_dpmpp_2m) for n in (16, 32)}
    assert err[sample_dpmpp_2m, 16] < err[sample_ddim, 16] / 3
    assert 1.5 < err[sample_ddim, 16] / err[sample_ddim, 32] < 2.5
    assert err[sample_dpmpp_2m, 16] / err[sample_dpmpp_2m, 32] > 3


def test_registered_everywhere(tiny_checkpoint, dark_image):
    from gsad.enhance.enhancer import Enhancer

    assert SAMPLERS["dpmpp"] is sample_dpmpp_2m and "dpmpp" in SAMPLER_NAMES
    SamplerConfig(sampler="dpmpp")  # valid in configs
    enh = Enhancer(tiny_checkpoint, device="cpu")
    out = enh.enhance(dark_image, sampler="dpmpp", steps=4)
    again = enh.enhance(dark_image, sampler="dpmpp", steps=4, seed=123)  # deterministic given x_T only
    assert out.shape == dark_image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, again)
