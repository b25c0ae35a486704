"""Training objectives: finiteness, gradient routing, the structure switch."""

from __future__ import annotations

import pytest
import torch

from gsad.config import preset
from gsad.diffusion.posterior import posterior_sample
from gsad.diffusion.schedules import q_sample, sample_training_levels, training_schedule
from gsad.losses import distill_distance, gsad_objective, stage1_objective, structure_distance
from gsad.network import UNet

SCHEDULE = training_schedule()



def _batch(seed: int = 0, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    high = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    low = (high + 1) * 0.1 - 1
    return low, high


def test_stage1_objective_finite_with_gradients(tiny_unet_pair):
    net, _ = tiny_unet_pair
    low, high = _batch()
    net.zero_grad()
    loss, logs = stage1_objective(net, low, high, SCHEDULE, torch.Generator().manual_seed(1))
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert set(logs) == {"loss"} and logs["loss"] == loss.detach()
    loss.backward()
    head = net.uncertainty_head[0].weight.grad
    assert head is not None and head.abs().sum() > 0
    assert net.out_conv.weight.grad.abs().sum() > 0


def test_stage1_objective_is_reproducible(tiny_unet_pair):
    net, _ = tiny_unet_pair
    low, high = _batch()
    a, _ = stage1_objective(net, low, high, SCHEDULE, torch.Generator().manual_seed(5))
    b, _ = stage1_objective(net, low, high, SCHEDULE, torch.Generator().manual_seed(5))
    assert a.item() == b.item()


def test_gsad_objective_gradients_reach_net_not_frozen(tiny_unet_pair):
    net, frozen = tiny_unet_pair
    low, high = _batch()
    net.zero_grad()
    loss, logs = gsad_objective(net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(2))
    assert torch.isfinite(loss)
    assert set(logs) == {"loss", "loss_pix", "loss_structure"}
    assert logs["loss"].item() == pytest.approx(logs["loss_pix"].item() + logs["loss_structure"].item(), rel=1e-5)
    loss.backward()
    assert net.stem.weight.grad is not None and net.stem.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in frozen.parameters())


def test_structure_term_has_its_own_gradient(tiny_unet_pair):
    net, frozen = tiny_unet_pair
    low, high = _batch(3)
    grads = []
    for weight in (1.0, 0.0):
        loss, logs = gsad_objective(
            net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(4), structure_weight=weight
        )
        grads.append(torch.autograd.grad(loss, [net.out_conv.weight])[0])
        if weight:
            assert logs["loss_structure"] > 0
    assert not torch.allclose(grads[0], grads[1])


def test_structure_weight_zero_is_pixel_loss_only(tiny_unet_pair):
    net, frozen = tiny_unet_pair
    low, high = _batch(1)
    with_s, logs_s = gsad_objective(net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(7))
    without, logs = gsad_objective(
        net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(7), structure_weight=0.0
    )
    assert logs["loss_structure"].item() == 0.0
    assert without.item() == logs["loss_pix"].item()
    # Same draws whatever the weight: the pixel loss does not change.
    assert logs["loss_pix"].item() == logs_s["loss_pix"].item()
    half, logs_h = gsad_objective(
        net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(7), structure_weight=0.5
    )
    assert half.item() == pytest.approx(logs_s["loss_pix"].item() + 0.5 * logs_s["loss_structure"].item(), rel=1e-6)


def test_gsad_structure_term_by_hand(tiny_unet_pair):
    """Recompute L_s from the same draws: levels, noise, eps_hat, posterior, sqrt(a)^4 weights."""
    net, frozen = tiny_unet_pair
    low, high = _batch(2)
    _, logs = gsad_objective(net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    t_index, level = sample_training_levels(SCHEDULE, 2, g)
    eps = torch.randn(high.shape, generator=g)
    z = torch.randn(high.shape, generator=g)
    x_t = q_sample(high, level, eps)
    with torch.no_grad():
        eps_hat, _ = net(torch.cat([low, x_t], 1), level)
        x_prev = posterior_sample(x_t, t_index, level, eps_hat, SCHEDULE, z)
        expected = (structure_distance(high, x_prev) * level[:, None] ** 4).mean()
    assert logs["loss_structure"].item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.fixture(scope="module")
def distinct_nets() -> tuple[UNet, UNet]:
    """A trained net and a frozen stage-1 model with *different* weights (both with heads), so a
    loss that takes P from the wrong one gives another value."""
    torch.manual_seed(11)
    frozen = UNet(preset("tiny")).eval().requires_grad_(False)
    torch.manual_seed(12)
    net = UNet(preset("tiny")).train()
    return net, frozen


def _hand_draws(seed: int, high: torch.Tensor):
    """The objectives' draws in their order: levels (t, then u), eps, then (stage 2) z."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(1, SCHEDULE.num_steps + 1, (high.shape[0],), generator=g)
    bounds = torch.from_numpy(SCHEDULE.sqrt_alpha_bar_bounds)
    u = torch.rand(high.shape[0], generator=g, dtype=torch.float64)
    level = (bounds[t - 1] + (bounds[t] - bounds[t - 1]) * u).float()
    eps = torch.randn(high.shape, generator=g)
    z = torch.randn(high.shape, generator=g)
    g4 = level.view(-1, 1, 1, 1)
    x_t = g4 * high + (1 - g4**2).sqrt() * eps
    return t - 1, level, eps, z, x_t


def test_stage1_objective_value_by_hand(distinct_nets):
    """L = mean(exp(-P) |eps_hat - eps| + 2 P) over all elements, from the same draws."""
    net, _ = distinct_nets
    low, high = _batch(4)
    loss, _ = stage1_objective(net, low, high, SCHEDULE, torch.Generator().manual_seed(21))
    _, level, eps, _, x_t = _hand_draws(21, high)
    with torch.no_grad():
        eps_hat, p = net(torch.cat([low, x_t], 1), level)
    expected = (torch.exp(-p) * (eps_hat - eps).abs() + 2 * p).double().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gsad_objective_value_by_hand(distinct_nets):
    """L_pix = 10 mean|w (eps_hat - eps)| with eps_hat from `net`, P from `frozen` (min-max per
    sample and channel onto [0.5, 1]); plus the structure term on x_{t-1}. The tiny_unet_pair differ, so
    taking P from `net`, or dropping w, changes the value."""
    net, frozen = distinct_nets
    low, high = _batch(5)
    loss, logs = gsad_objective(net, frozen, low, high, SCHEDULE, torch.Generator().manual_seed(22))
    t_index, level, eps, z, x_t = _hand_draws(22, high)
    inputs = torch.cat([low, x_t], 1)
    with torch.no_grad():
        eps_hat, _ = net(inputs, level)
        _, p = frozen(inputs, level)
        lo, hi = p.amin(dim=(2, 3), keepdim=True), p.amax(dim=(2, 3), keepdim=True)
        w = 0.5 + 0.5 * (p - lo) / (hi - lo + 1e-6)
        pix = 10 * (w * (eps_hat - eps)).abs().double().mean()
        x_prev = posterior_sample(x_t, t_index, level, eps_hat, SCHEDULE, z)  # checked by hand below
        structure = (structure_distance(high, x_prev) * level[:, None] ** 4).mean()
    assert logs["loss_pix"].item() == pytest.approx(pix.item(), rel=1e-5)
    assert loss.item() == pytest.approx(pix.item() + structure.item(), rel=1e-5)
    # The check can tell: the same formula with P from `net`, or without w, is far off.
    with torch.no_grad():
        _, p_net = net(inputs, level)
    w_net = 0.5 + 0.5 * (p_net - p_net.amin(dim=(2, 3), keepdim=True)) / (
        p_net.amax(dim=(2, 3), keepdim=True) - p_net.amin(dim=(2, 3), keepdim=True) + 1e-6)
    for wrong in (10 * (w_net * (eps_hat - eps)).abs().mean(), 10 * (eps_hat - eps).abs().mean()):
        assert abs(wrong.item() - pix.item()) > 1e-3 * pix.item()


def test_objectives_reject_networks_without_head(tiny_unet_pair):
    net, frozen = tiny_unet_pair
    headless = UNet(preset("tiny").__class__(**{**preset("tiny").__dict__, "uncertainty_head": False}))
    low, high = _batch()
    with pytest.raises(ValueError, match="uncertainty head"):
        stage1_objective(headless, low, high, SCHEDULE)
    with pytest.raises(ValueError, match="uncertainty head"):
        gsad_objective(net, headless, low, high, SCHEDULE)


def test_truncated_snr_weight_is_max_of_eps_and_x0_error():
    # w |eps_hat - eps| must equal max(|eps_hat - eps|, |x0_hat - x0|) for every level.
    from gsad.diffusion.schedules import predict_x0
    from gsad.losses import loss_weight

    g = torch.Generator().manual_seed(3)
    level = torch.tensor([0.05, 0.3, 0.7, 0.71, 0.95, 1.0])
    x0 = torch.rand(6, 3, 4, 4, generator=g) * 2 - 1
    eps = torch.randn(6, 3, 4, 4, generator=g)
    eps_hat = eps + 0.1 * torch.randn(6, 3, 4, 4, generator=g)
    x_t = q_sample(x0, level, eps)
    x0_err = (predict_x0(x_t, level, eps_hat) - x0).abs()
    eps_err = (eps_hat - eps).abs()
    w = loss_weight(level, "truncated-snr")
    assert w.shape == (6, 1, 1, 1)
    torch.testing.assert_close(w * eps_err, torch.maximum(eps_err, x0_err), rtol=1e-4, atol=1e-5)
    assert w[0].item() > 19 and w[-1].item() == 1.0  # high noise counts ~20x, no noise 1x
    assert torch.equal(loss_weight(level, "eps"), torch.ones(6, 1, 1, 1))
    with pytest.raises(ValueError, match="unknown 'snr'"):
        loss_weight(level, "snr")


def _loss_and_gradients(objective, args, weighting: str, **kwargs):
    """Loss, flattened gradient over the trained net's parameters, and the gradient with
    respect to the net's eps output and the levels it saw (same draws: seed 7)."""
    net = args[0]
    low, high = _batch()
    seen = {}

    def keep(module, inputs, output):
        seen["level"], seen["eps_hat"] = inputs[1].detach(), output[0]

    handle = net.register_forward_hook(keep)
    try:
        loss, _ = objective(*args, low, high, SCHEDULE, torch.Generator().manual_seed(7), weighting=weighting,
                            **kwargs)
    finally:
        handle.remove()
    params = [p for p in net.parameters() if p.requires_grad]
    eps_grad, *grads = torch.autograd.grad(loss, [seen["eps_hat"], *params], allow_unused=True)
    flat = torch.cat([(torch.zeros_like(p) if g is None else g).flatten() for p, g in zip(params, grads)])
    return loss.detach(), flat, eps_grad, seen["level"]


@pytest.mark.parametrize("stage, kwargs", [
    ("uncertainty", {}),
    ("gsad", {}),
    ("gsad", {"structure_weight": 0.0}),  # the pixel term alone: the one the weighting acts on
], ids=["uncertainty", "gsad", "gsad-pixel-term"])
def test_truncated_snr_weighting_raises_the_loss_and_changes_gradients(tiny_unet_pair, stage, kwargs):
    from gsad.losses import loss_weight

    net, frozen = tiny_unet_pair
    objective, args = (stage1_objective, (net,)) if stage == "uncertainty" else (gsad_objective, (net, frozen))
    plain, plain_grad, plain_eps_grad, level = _loss_and_gradients(objective, args, "eps", **kwargs)
    weighted, weighted_grad, weighted_eps_grad, level_w = _loss_and_gradients(objective, args, "truncated-snr",
                                                                              **kwargs)
    assert torch.equal(level, level_w)  # same draws: the weighting is the only difference
    assert torch.isfinite(plain) and torch.isfinite(weighted) and weighted.item() > plain.item()
    assert torch.isfinite(plain_grad).all() and torch.isfinite(weighted_grad).all()
    assert plain_grad.norm() > 0 and weighted_grad.norm() > 0
    assert not torch.allclose(plain_grad, weighted_grad, rtol=1e-3, atol=0)
    if stage == "gsad" and kwargs.get("structure_weight", 1.0) != 0:
        return  # the structure term also reaches eps_hat, unweighted: no exact ratio to check
    # The weighted residual w |eps_hat - eps| (w > 0 per sample) scales the gradient that
    # reaches eps_hat by exactly w for each sample: the samples are reweighted against
    # each other, not merely the loss rescaled (a batch-mean weight would fail this).
    w = loss_weight(level, "truncated-snr")
    assert w.flatten().unique().numel() > 1  # the draws give samples different weights
    torch.testing.assert_close(weighted_eps_grad, w * plain_eps_grad, rtol=1e-4, atol=1e-9)
    assert plain_eps_grad.abs().flatten(1).amax(1).gt(0).all()


def test_warm_noised_input_has_exact_effective_noise():
    # A warm sample is noised from the start s; its target makes predict_x0 give x0 back exactly.
    from gsad.diffusion.schedules import predict_x0
    from gsad.losses import noised_input

    g = torch.Generator().manual_seed(4)
    level = torch.tensor([0.3, 0.6, 0.8])
    x0, start = (torch.rand(3, 3, 8, 8, generator=g) * 2 - 1 for _ in range(2))
    eps = torch.randn(3, 3, 8, 8, generator=g)
    warm = torch.tensor([True, False, True])
    x_t, target = noised_input(x0, level, eps, start, warm)
    torch.testing.assert_close(x_t[warm], q_sample(start, level, eps)[warm])
    torch.testing.assert_close(x_t[~warm], q_sample(x0, level, eps)[~warm])
    torch.testing.assert_close(predict_x0(x_t, level, target), x0, rtol=1e-4, atol=1e-5)
    assert torch.equal(target[1], eps[1]) and not torch.allclose(target[0], eps[0])
    plain = noised_input(x0, level, eps)
    assert torch.equal(plain[0], q_sample(x0, level, eps)) and torch.equal(plain[1], eps)


def test_warm_start_only_at_start_levels_and_off_keeps_the_random_stream(tiny_unet_pair):
    from gsad.losses import WARM_MAX_ALPHA_BAR
    from gsad.losses.objectives import _draw

    g = torch.Generator().manual_seed(0)
    high = torch.rand(64, 3, 4, 4, generator=g) * 2 - 1
    start = high + 0.5  # far from x0: any warm sample has a target far from standard noise
    t0, level0, eps0, x0_t = _draw(high, SCHEDULE, torch.Generator().manual_seed(9))
    t1, level1, eps1, x1_t = _draw(high, SCHEDULE, torch.Generator().manual_seed(9), start, 0.0)
    assert torch.equal(level0, level1) and torch.equal(eps0, eps1) and torch.equal(x0_t, x1_t)
    _, level, target, x_t = _draw(high, SCHEDULE, torch.Generator().manual_seed(9), start, 1.0)
    moved = (target - eps0).abs().flatten(1).amax(1) > 1e-3
    assert torch.equal(moved, level**2 <= WARM_MAX_ALPHA_BAR)  # every start level, and only those
    assert 0 < moved.sum() < 64
    net, frozen = tiny_unet_pair
    low, high = _batch()
    for objective, args in ((stage1_objective, (net,)), (gsad_objective, (net, frozen))):
        plain, _ = objective(*args, low, high, SCHEDULE, torch.Generator().manual_seed(7))
        warm, _ = objective(*args, low, high, SCHEDULE, torch.Generator().manual_seed(7), start=high * 0 + 0.9,
                            warm_start=1.0)
        assert torch.isfinite(warm) and warm.item() != plain.item()


def test_distill_distance():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full_like(a, 0.5)
    assert distill_distance(a, a, "l1") == 0 and distill_distance(a, a, "charbonnier") == 0
    assert distill_distance(a, b, "l1") == pytest.approx(0.5)
    assert distill_distance(a, b, "charbonnier") == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError, match="l2"):
        distill_distance(a, b, "l2")
