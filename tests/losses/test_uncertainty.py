"""Tests of gsad.losses.uncertainty on hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gsad.losses.uncertainty import pixel_loss, stage1_loss, uncertainty_weights


def test_stage1_loss_hand_value() -> None:
    eps_hat = torch.tensor([1.0, 2.0, -1.0, 0.5]).view(1, 1, 2, 2)
    eps = torch.tensor([0.0, 0.0, 1.0, 0.5]).view(1, 1, 2, 2)
    log_u = torch.tensor([0.0, math.log(2.0), 1.0, -1.0]).view(1, 1, 2, 2)
    # Per pixel exp(-P)|r| + 2P: 1 + 0, 1 + 2 log 2, 2 e^-1 + 2, 0 - 2.
    expected = (1 + (1 + 2 * math.log(2)) + (2 * math.exp(-1) + 2) - 2) / 4
    assert stage1_loss(eps_hat, eps, log_u).item() == pytest.approx(expected, rel=1e-6)


def test_stage1_loss_is_minimised_at_half_the_residual() -> None:
    # d/dP (exp(-P)|r| + 2P) = 0  <=>  P = log(|r| / 2).
    residual = torch.tensor([0.1, 0.5, 1.0, 3.0]).view(1, 1, 2, 2)
    log_u = torch.log(residual / 2).requires_grad_(True)
    stage1_loss(residual, torch.zeros_like(residual), log_u).backward()
    torch.testing.assert_close(log_u.grad, torch.zeros_like(log_u), atol=1e-6, rtol=0)


def test_stage1_loss_gradients() -> None:
    eps_hat = torch.tensor([1.0, -2.0]).view(1, 2, 1, 1).requires_grad_(True)
    eps = torch.zeros(1, 2, 1, 1)
    log_u = torch.tensor([0.0, math.log(4.0)]).view(1, 2, 1, 1).requires_grad_(True)
    stage1_loss(eps_hat, eps, log_u).backward()
    # d/d eps_hat = exp(-P) sign(r) / M;  d/dP = (2 - exp(-P)|r|) / M, M = 2.
    torch.testing.assert_close(eps_hat.grad.flatten(), torch.tensor([0.5, -0.125]))
    torch.testing.assert_close(log_u.grad.flatten(), torch.tensor([0.5, 0.75]))


def test_stage1_loss_is_a_per_pixel_mean() -> None:
    # Repeating the data leaves the loss unchanged: no dependence on B*C*H*W.
    generator = torch.Generator().manual_seed(0)
    eps_hat, eps, log_u = (torch.randn(2, 3, 4, 4, generator=generator) for _ in range(3))
    small = stage1_loss(eps_hat, eps, log_u)
    big = stage1_loss(*(t.repeat(4, 1, 2, 2) for t in (eps_hat, eps, log_u)))
    torch.testing.assert_close(small, big)


def test_losses_reject_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        stage1_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        pixel_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 4, 4), torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(3, 4, 4\)"):
        uncertainty_weights(torch.zeros(3, 4, 4))


def test_uncertainty_weights_hand_values() -> None:
    log_u = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 2, 2)
    weights = uncertainty_weights(log_u)
    expected = 0.5 + 0.5 * torch.tensor([0.0, 0.25, 0.5, 1.0]) * 4 / (4 + 1e-6)
    torch.testing.assert_close(weights, expected.view(1, 1, 2, 2))


def test_uncertainty_weights_span_half_to_one_per_sample_and_channel() -> None:
    generator = torch.Generator().manual_seed(1)
    # Different offsets and scales per sample and channel.
    log_u = torch.randn(3, 3, 8, 8, generator=generator) * torch.tensor([0.1, 1.0, 20.0]).view(
        1, 3, 1, 1
    ) + torch.tensor([-5.0, 0.0, 7.0]).view(3, 1, 1, 1)
    weights = uncertainty_weights(log_u).flatten(2)
    assert (weights >= 0.5).all() and (weights <= 1.0).all()
    assert torch.equal(weights.amin(dim=-1), torch.full((3, 3), 0.5))
    torch.testing.assert_close(weights.amax(dim=-1), torch.ones(3, 3), atol=1e-5, rtol=0)
    # The minimum and maximum sit where P has them.
    flat = log_u.flatten(2)
    assert torch.equal(weights.argmin(dim=-1), flat.argmin(dim=-1))
    assert torch.equal(weights.argmax(dim=-1), flat.argmax(dim=-1))


def test_uncertainty_weights_constant_channel_is_half() -> None:
    log_u = torch.full((1, 2, 3, 3), 4.0)
    assert torch.equal(uncertainty_weights(log_u), torch.full((1, 2, 3, 3), 0.5))


def test_uncertainty_weights_are_detached() -> None:
    log_u = torch.randn(1, 1, 4, 4, requires_grad=True)
    weights = uncertainty_weights(log_u)
    assert not weights.requires_grad


def test_pixel_loss_hand_value_and_gradient() -> None:
    eps_hat = torch.tensor([1.0, -2.0, 0.5, 0.0]).view(1, 1, 2, 2).requires_grad_(True)
    eps = torch.tensor([0.0, 0.0, 1.5, 0.0]).view(1, 1, 2, 2)
    weights = torch.tensor([0.5, 1.0, 0.75, 1.0]).view(1, 1, 2, 2)
    loss = pixel_loss(eps_hat, eps, weights)
    # 10 * mean(0.5 * 1, 1 * 2, 0.75 * 1, 1 * 0) = 10 * 3.25 / 4.
    assert loss.item() == pytest.approx(8.125)
    loss.backward()
    # d/d eps_hat = scale * w * sign(r) / M.
    torch.testing.assert_close(eps_hat.grad.flatten(), torch.tensor([1.25, -2.5, -1.875, 0.0]))
    assert pixel_loss(eps_hat, eps, weights, scale=1.0).item() == pytest.approx(0.8125)
