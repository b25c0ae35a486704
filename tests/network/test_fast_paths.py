"""Inference fast paths give the plain forward's outputs; training stays differentiable."""

import pytest
import torch

from gsad.config import PRESETS, NetworkConfig
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError
from gsad.network import UNet
from gsad.network.inference_net import InferenceNet
from gsad.network.layers import WINOGRAD_MIN_PIXELS, nnpack_available

# attention at two levels, channel changes, 1x1 skips: every block variant
CONFIGS = {
    "tiny": PRESETS["tiny"],
    "two-levels-attn": NetworkConfig(base_channels=16, channel_mults=(1, 2), res_blocks=2, attn_levels=(0, 1),
                                     norm_groups=8),
}
TOL = 1e-4


def _model(name):
    torch.manual_seed(0)
    model = UNet(CONFIGS[name]).eval()
    for p in model.parameters():  # away from the zero-ish init so every term matters
        p.data.add_(torch.randn_like(p) * 0.02)
    return model


def _plain(model, x, level):
    """The differentiable training path (gradients on: no in-place, no folding, no Winograd)."""
    with torch.enable_grad():
        eps, unc = model(x, level)
    return eps.detach(), unc.detach()


@pytest.fixture(params=list(CONFIGS))
def case(request):
    model = _model(request.param)
    x = torch.randn(2, 6, 32, 48)  # 1536 px at full resolution: large enough for Winograd
    return model, x


def test_no_grad_fused_ops_match_plain(case):
    model, x = case
    level = torch.tensor([0.3, 0.3])
    ref_eps, ref_unc = _plain(model, x, level)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx():
            eps, unc = model(x, level)
        assert (eps - ref_eps).abs().max() < TOL and (unc - ref_unc).abs().max() < TOL
    with torch.no_grad():  # different levels per sample: the bias cannot be folded
        lv = torch.tensor([0.2, 0.9])
        assert (model(x, lv)[0] - _plain(model, x, lv)[0]).abs().max() < TOL


def test_precomputed_noise_biases_match(case):
    model, x = case
    levels = torch.tensor([0.05, 0.3, 0.7, 0.99])
    with torch.inference_mode():
        rows = model.noise_biases(levels)  # all levels in one batch, one row picked per call
        for i, lvl in enumerate(levels):
            cached = [r[i : i + 1] for r in rows]
            level = lvl.reshape(1).expand(2)
            eps, unc = model(x, level, noise_biases=cached, uncertainty=False)
            assert unc is None
            assert (eps - _plain(model, x, level)[0]).abs().max() < TOL


def test_channels_last_matches(case):
    model, x = case
    level = torch.tensor([0.5, 0.5])
    with torch.inference_mode():
        eps = model(x.contiguous(memory_format=torch.channels_last), level)[0]
    assert (eps - _plain(model, x, level)[0]).abs().max() < TOL


@pytest.mark.skipif(not nnpack_available(), reason="this torch build has no NNPACK")
def test_winograd_matches(case, monkeypatch):
    model, x = case
    level = torch.tensor([0.5, 0.5])
    calls = []
    real = torch._nnpack_spatial_convolution
    monkeypatch.setattr(torch, "_nnpack_spatial_convolution", lambda *a: calls.append(1) or real(*a))
    with torch.inference_mode():
        eps = model(x, level, winograd=True)[0]
    assert calls  # the fast kernel really ran (on the maps of >= WINOGRAD_MIN_PIXELS)
    assert x.shape[-1] * x.shape[-2] >= WINOGRAD_MIN_PIXELS
    assert (eps - _plain(model, x, level)[0]).abs().max() < TOL
    calls.clear()
    with torch.enable_grad():  # never with gradients on
        model(x, level, winograd=True)
    assert not calls


@pytest.mark.parametrize("channels_last", [False, True])
def test_inference_net_fp32_all_paths_match(case, channels_last):
    model, x = case
    net = InferenceNet(model, "fp32", channels_last=channels_last, winograd=True)
    levels = torch.tensor([0.1, 0.6])
    with torch.inference_mode():
        net.precompute(levels)
        for lvl in (0.1, 0.6, 0.33):  # 0.33 is not cached: computed on the fly
            level = torch.full((2,), lvl)
            eps, unc = net(x, level)
            assert unc is None and eps.dtype == torch.float32 and eps.is_contiguous()
            assert (eps - _plain(model, x, level)[0]).abs().max() < TOL


def test_inference_net_bf16_is_close(case):
    model, x = case
    level = torch.tensor([0.5, 0.5])
    with torch.inference_mode():
        eps = InferenceNet(model, "bf16")(x, level)[0]
    assert eps.dtype == torch.float32
    assert (eps - _plain(model, x, level)[0]).abs().mean() < 0.05


def test_training_mode_stays_differentiable(case):
    model, x = case
    model.train()
    x = x.clone().requires_grad_(True)
    level = torch.tensor([0.4, 0.4])
    eps, unc = model(x, level, winograd=True)  # winograd is ignored with gradients on
    (eps.square().mean() + unc.mean()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())
    # the training graph is built from out-of-place ops only: a second backward through a
    # retained graph would fail if a saved tensor had been modified in place
    eps, unc = model(x, level)
    loss = eps.square().mean() + unc.mean()
    loss.backward(retain_graph=True)
    loss.backward()


def test_enhancer_rejects_bad_precision():
    model = UNet(PRESETS["tiny"])
    with pytest.raises(ConfigError, match="precision"):
        Enhancer.from_model(model, device="cpu", precision="fp8")
    with pytest.raises(ConfigError, match="fp16"):
        Enhancer.from_model(model, device="cpu", precision="fp16")
