"""The posterior step shared by the reference sampler and the stage-2 loss."""

from __future__ import annotations

import torch

from gsad.diffusion.posterior import posterior_sample, posterior_step
from gsad.diffusion.schedules import training_schedule

SCHEDULE = training_schedule()


def test_posterior_sample_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(3, 3, 4, 4, generator=g)
    eps_hat = torch.randn(3, 3, 4, 4, generator=g)
    noise = torch.randn(3, 3, 4, 4, generator=g)
    t_index = torch.tensor([0, 10, 499])
    level = SCHEDULE.sqrt_alpha_bar[t_index] * 0.9999  # continuous, a little off the table
    out = posterior_sample(x_t, t_index, level, eps_hat, SCHEDULE, noise)
    for b, i in enumerate(t_index.tolist()):
        a = float(level[b]) ** 2
        x0 = (x_t[b] / a**0.5 - (1 / a - 1) ** 0.5 * eps_hat[b]).clamp(-1, 1)
        mean = SCHEDULE.posterior_mean_coef1[i] * x0 + SCHEDULE.posterior_mean_coef2[i] * x_t[b]
        std = torch.exp(0.5 * SCHEDULE.posterior_log_variance[i]) if i > 0 else 0.0
        torch.testing.assert_close(out[b], mean + std * noise[b], rtol=1e-5, atol=1e-5)
    # no noise at the first step: the output does not depend on it
    again = posterior_sample(x_t, t_index, level, eps_hat, SCHEDULE, noise * 0 + 5.0)
    torch.testing.assert_close(again[0], out[0])
    assert not torch.allclose(again[1], out[1])


def test_posterior_sample_gradient_passes_clamp_inside_only():
    x_t = torch.zeros(1, 1, 1, 2)
    eps_hat = torch.tensor([[[[0.0, -100.0]]]], requires_grad=True)  # second x0_hat far outside [-1, 1]
    t_index = torch.tensor([5])
    level = SCHEDULE.sqrt_alpha_bar[t_index]
    out = posterior_sample(x_t, t_index, level, eps_hat, SCHEDULE, torch.zeros_like(x_t))
    out.sum().backward()
    assert eps_hat.grad[0, 0, 0, 0] != 0
    assert eps_hat.grad[0, 0, 0, 1] == 0


def test_posterior_step_leaves_its_inputs_alone_and_adds_noise_only_when_given():
    g = torch.Generator().manual_seed(1)
    x0, x_t, z = (torch.randn(2, 3, 4, 4, generator=g) for _ in range(3))
    kept = [x0.clone(), x_t.clone(), z.clone()]
    c1, c2, std = torch.tensor(0.3), torch.tensor(0.6), torch.tensor(0.2)
    mean = posterior_step(x0, x_t, c1, c2)
    noisy = posterior_step(x0, x_t, c1, c2, std, z)
    torch.testing.assert_close(mean, 0.3 * x0 + 0.6 * x_t)
    torch.testing.assert_close(noisy, mean + 0.2 * z)
    assert all(torch.equal(a, b) for a, b in zip(kept, (x0, x_t, z)))
