import numpy as np
import torch

from gsad.diffusion.schedules import (
    Schedule,
    extract,
    linear_betas,
    predict_x0,
    q_sample,
    sample_training_levels,
    training_schedule,
)


def test_linear_betas_endpoints_and_spacing():
    b = linear_betas(20, 6e-4, 0.88)
    assert b[0] == 6e-4 and b[-1] == 0.88 and np.allclose(np.diff(b), (0.88 - 6e-4) / 19)


def test_tables_match_closed_forms():
    s = Schedule.linear(10, 2e-3, 0.84)
    betas = np.linspace(2e-3, 0.84, 10)
    ab = np.cumprod(1 - betas)
    assert np.allclose(s.alpha_bar.numpy(), ab, rtol=1e-6)
    assert np.allclose(s.sqrt_alpha_bar.numpy(), np.sqrt(ab), rtol=1e-6)
    # posterior mean coefficients sum to the DDPM identity at x0 = x_t = 1 ... check formula directly
    ab_prev = np.append(1.0, ab[:-1])
    c1 = betas * np.sqrt(ab_prev) / (1 - ab)
    c2 = (1 - ab_prev) * np.sqrt(1 - betas) / (1 - ab)
    assert np.allclose(s.posterior_mean_coef1.numpy(), c1, rtol=1e-5)
    assert np.allclose(s.posterior_mean_coef2.numpy(), c2, rtol=1e-5)
    # first step: variance 0 -> clipped log variance; mean = x0 exactly
    assert np.isclose(s.posterior_log_variance[0].item(), np.log(1e-20), rtol=1e-6)
    assert np.isclose(c1[0], 1.0) and c2[0] == 0.0
    assert s.num_steps == 10 and s.sqrt_alpha_bar_bounds[0] == 1.0


def test_training_schedule_is_the_papers():
    s = training_schedule()
    assert s.num_steps == 500
    assert np.isclose(s.betas[0].item(), 1e-4) and np.isclose(s.betas[-1].item(), 2e-2)


def test_q_sample_and_predict_x0_invert_each_other():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 3, 8, 8, generator=g) * 2 - 1
    eps = torch.randn(3, 3, 8, 8, generator=g)
    level = torch.tensor([0.1, 0.5, 0.99])
    xt = q_sample(x0, level, eps)
    assert torch.allclose(predict_x0(xt, level, eps), x0, atol=1e-4)
    # variance preservation: a^2 + (1 - a^2) = 1 for unit-variance inputs
    x, n = torch.randn(2, 1, 1, 256, 256, generator=g)
    big = q_sample(x, torch.tensor([0.6]), n)
    assert abs(big.var().item() - 1.0) < 0.05


def test_training_levels_lie_in_their_interval():
    s = training_schedule()
    g = torch.Generator().manual_seed(3)
    t, level = sample_training_levels(s, 4096, g)
    bounds = torch.from_numpy(s.sqrt_alpha_bar_bounds).float()
    assert t.min() >= 0 and t.max() <= 499
    assert (level <= bounds[t] + 1e-6).all() and (level >= bounds[t + 1] - 1e-6).all()
    # roughly uniform over steps
    assert 0.4 < (t < 250).float().mean().item() < 0.6
    t2, level2 = sample_training_levels(s, 4096, torch.Generator().manual_seed(3))
    assert torch.equal(t, t2) and torch.equal(level, level2)


def test_extract_shapes():
    table = torch.arange(5.0)
    out = extract(table, torch.tensor([0, 4, 2]))
    assert out.shape == (3, 1, 1, 1) and out.flatten().tolist() == [0.0, 4.0, 2.0]
