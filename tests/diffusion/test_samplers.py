import numpy as np
import pytest
import torch

from gsad.diffusion import SAMPLERS, Denoiser, Schedule, initial_state, sample_ddim, sample_reference


class OracleNet(torch.nn.Module):
    """Predicts the exact noise for a known clean image x0 (ignores the condition)."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.calls = []

    def forward(self, x, level):
        self.calls.append(level.clone())
        xt = x[:, 3:]
        a = level.reshape(-1, 1, 1, 1)
        return (xt - a * self.x0) / (1 - a**2).sqrt(), None


def _run(fn, denoiser, shape, sched, seed, callback=None, start=None):
    """The sampler ``fn`` from x_T = initial_state(...) with generator seed ``seed`` (None: global)."""
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return fn(denoiser, initial_state(tuple(shape), sched, generator, "cpu", start), sched, generator, callback)


class ZeroNet(torch.nn.Module):
    def forward(self, x, level):
        return torch.zeros_like(x[:, 3:]), None


def _x0():
    return torch.linspace(-0.9, 0.9, 3 * 6 * 5).reshape(1, 3, 6, 5)


def test_oracle_denoiser_recovers_x0_with_both_samplers():
    x0 = _x0()
    sched = Schedule.linear(10, 2e-3, 0.9)
    for fn in (sample_reference, sample_ddim):
        out = _run(fn, Denoiser(OracleNet(x0), torch.zeros_like(x0)), x0.shape, sched, 0)
        assert torch.allclose(out, x0, atol=1e-4), fn.__name__


def test_reference_sampler_random_order_and_levels():
    """One normal draw of the image's shape, then one per step except the last."""
    sched = Schedule.linear(5, 1e-3, 0.5)
    net = ZeroNet()
    shape = (1, 3, 4, 4)
    out = _run(sample_reference, Denoiser(net, torch.zeros(shape)), shape, sched, 7)
    # replay by hand with the global RNG, as the reference code does
    torch.manual_seed(7)
    x = torch.randn(shape)
    for t in reversed(range(5)):
        x0 = (sched.sqrt_recip_alpha_bar[t] * x).clamp(-1, 1)
        mean = sched.posterior_mean_coef1[t] * x0 + sched.posterior_mean_coef2[t] * x
        x = mean + torch.randn_like(x) * (0.5 * sched.posterior_log_variance[t]).exp() if t > 0 else mean
    assert torch.equal(out, x)


def test_network_sees_sqrt_alpha_bar_from_last_to_first():
    sched = Schedule.linear(4, 1e-2, 0.6)
    net = OracleNet(_x0())
    _run(sample_reference, Denoiser(net, torch.zeros(1, 3, 6, 5)), (1, 3, 6, 5), sched, 0)
    seen = [c.item() for c in net.calls]
    assert np.allclose(seen, sched.sqrt_alpha_bar.flip(0).numpy())


def test_ddim_is_deterministic_given_seed_and_seed_matters():
    torch.manual_seed(0)
    from gsad.config import PRESETS
    from gsad.network import UNet

    model = UNet(PRESETS["tiny"]).eval()
    cond = torch.rand(1, 3, 8, 8) * 2 - 1
    sched = Schedule.linear(3, 2e-3, 0.9)
    with torch.no_grad():
        a = _run(sample_ddim, Denoiser(model, cond), cond.shape, sched, 1)
        b = _run(sample_ddim, Denoiser(model, cond), cond.shape, sched, 1)
        c = _run(sample_ddim, Denoiser(model, cond), cond.shape, sched, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 1.0


def test_callback_counts_steps_and_registry():
    steps = []
    sched = Schedule.linear(6, 1e-3, 0.5)
    for name, fn in SAMPLERS.items():
        steps.clear()
        _run(fn, Denoiser(ZeroNet(), torch.zeros(1, 3, 2, 2)), (1, 3, 2, 2), sched, None,
             lambda i, n: steps.append((i, n)))
        assert steps == [(i, 6) for i in range(1, 7)], name
    assert set(SAMPLERS) == {"reference", "ddim", "dpmpp"}
    from gsad.config import SAMPLER_NAMES

    assert tuple(SAMPLERS) == SAMPLER_NAMES  # the config's list (no torch) names the same samplers


class RecordingNet(ZeroNet):
    def __init__(self):
        super().__init__()
        self.inputs = []

    def forward(self, x, level):
        self.inputs.append(x[:, 3:].clone())
        return super().forward(x, level)


def test_warm_start_noises_the_estimate_to_the_first_level():
    shape, sched = (1, 3, 6, 5), Schedule.linear(4, 2e-3, 0.5)
    estimate = _x0()
    z = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(initial_state(shape, sched, torch.Generator().manual_seed(3), "cpu"), z)
    level = float(sched.sqrt_alpha_bar[-1])
    assert 0.4 < level < 0.6  # beta_end 0.5 over 4 steps keeps about half of the estimate
    for fn in SAMPLERS.values():
        net = RecordingNet()
        _run(fn, Denoiser(net, torch.zeros(shape)), shape, sched, 3, start=estimate)
        torch.testing.assert_close(net.inputs[0], level * estimate + (1 - level**2) ** 0.5 * z)
    with pytest.raises(ValueError, match="start has shape"):
        initial_state(shape, sched, None, "cpu", start=torch.zeros(1, 3, 4, 4))


def test_oracle_recovers_x0_from_a_warm_start():
    x0 = _x0()
    sched = Schedule.linear(4, 2e-3, 0.7)
    for name, fn in SAMPLERS.items():
        out = _run(fn, Denoiser(OracleNet(x0), torch.zeros_like(x0)), x0.shape, sched, 0, start=torch.zeros_like(x0))
        assert torch.allclose(out, x0, atol=1e-4), name


class ScaleNet(torch.nn.Module):
    """eps = w * x_t: one weight to differentiate."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(0.3))

    def forward(self, x, level):
        return self.w * x[:, 3:], None


def test_reference_sampler_is_differentiable_through_its_in_place_steps():
    """A distilled student is trained through the reference sampler: autograd follows its in-place steps,
    giving the values of inference and the gradient of the same steps written out of place."""
    sched = Schedule.linear(3, 2e-3, 0.85)
    net, shape = ScaleNet(), (2, 3, 8, 8)
    start = torch.linspace(-0.8, 0.8, 2 * 3 * 8 * 8).reshape(shape)
    with torch.no_grad():
        inference = _run(sample_reference, Denoiser(net, torch.zeros(shape)), shape, sched, 3, start=start)
    trained = _run(sample_reference, Denoiser(net, torch.zeros(shape)), shape, sched, 3, start=start)
    assert trained.requires_grad and torch.equal(trained.detach(), inference)
    (grad,) = torch.autograd.grad(trained.square().mean(), net.w)

    generator = torch.Generator().manual_seed(3)  # the same steps out of place, by hand
    x = initial_state(shape, sched, generator, "cpu", start)
    for t in reversed(range(3)):
        x0 = (sched.sqrt_recip_alpha_bar[t] * x - sched.sqrt_recipm1_alpha_bar[t] * net.w * x).clamp(-1, 1)
        x = sched.posterior_mean_coef1[t] * x0 + sched.posterior_mean_coef2[t] * x
        if t > 0:
            x = x + (0.5 * sched.posterior_log_variance[t]).exp() * torch.randn(shape, generator=generator)
    (expected,) = torch.autograd.grad(x.square().mean(), net.w)
    torch.testing.assert_close(x.detach(), inference)
    assert grad != 0
    torch.testing.assert_close(grad, expected)
