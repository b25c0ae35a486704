"""Detail restoration (gsad.enhance.detail): detail comes back where the input holds it, noise does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from gsad.config import SamplerConfig
from gsad.enhance.detail import _blur, noise_energy, restore_detail
from gsad.evaluation.metrics import detail_ratio, psnr
from gsad.imaging.exposure import linear_to_srgb, srgb_to_linear
from gsad.imaging.tensors import from_model, to_model


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A detailed well-exposed photo with flat parts too (the noise estimate needs some)."""
    return data.astronaut()


def _smoothed(image: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """What a posterior-mean output looks like: the image with its fine detail blurred away."""
    return from_model(_blur(to_model(image), sigma).clamp(-1, 1))


def _restore(out: np.ndarray, low: np.ndarray, strength: float = 1.0) -> np.ndarray:
    return from_model(restore_detail(to_model(out), to_model(low), strength))


def test_clean_input_gets_its_detail_back(photo):
    smooth = _smoothed(photo)
    restored = _restore(smooth, photo)
    assert detail_ratio(smooth, photo) < 0.1
    # conservative on a clean photo: its flattest parts hold texture, read as noise
    assert 0.5 <= detail_ratio(restored, photo) <= 1.2
    assert psnr(restored, photo) > psnr(smooth, photo) + 3.0


def test_detail_of_a_dark_input_comes_back_at_the_output_brightness(photo):
    # a noise-free input 3 stops darker (linear light): the gain g_c maps its detail up
    dark = np.round(linear_to_srgb(srgb_to_linear(photo / 255.0) / 8.0) * 255.0).astype(np.uint8)
    smooth = _smoothed(photo)
    restored = _restore(smooth, dark)
    assert 0.7 <= detail_ratio(restored, photo) <= 1.2
    assert psnr(restored, photo) > psnr(smooth, photo) + 3.0


def test_noise_is_not_brought_back():
    rng = np.random.default_rng(1)
    flat = np.full((96, 96, 3), 120, np.uint8)
    noisy = np.clip(flat + rng.normal(0, 12, flat.shape), 0, 255).astype(np.uint8)
    restored = _restore(flat, noisy)
    # the input's band is all noise: at most a trace of it may pass
    assert np.abs(restored.astype(int) - 120).mean() < 0.15 * np.abs(noisy.astype(int) - 120).mean()


def test_strength_scales_the_step_and_zero_is_the_identity(photo):
    smooth = to_model(_smoothed(photo))
    low = to_model(photo)
    assert restore_detail(smooth, low, 0.0) is smooth
    full = restore_detail(smooth, low, 1.0)
    half = restore_detail(smooth, low, 0.5)
    inside = full.abs() < 1  # away from the clip at the ends of the range the step is linear in strength
    torch.testing.assert_close(half[inside], ((smooth + full) / 2)[inside], atol=1e-5, rtol=0)
    assert full.min() >= -1 and full.max() <= 1


def test_noise_energy_grows_with_brightness_and_has_a_floor():
    rng = np.random.default_rng(2)
    level = torch.linspace(0, 1, 256).repeat(64, 1)[None, None]
    energy = torch.from_numpy(rng.gamma(2.0, 1e-3, (1, 1, 64, 256))).float() * (0.1 + level)
    energy[..., 128:160] *= 0.2  # a textureless band of middle brightness must not lower the curve
    noise = noise_energy(energy, level)
    row = noise[0, 0, 0]
    assert torch.all(row[1:] >= row[:-1] - 1e-9)
    assert row[-1] > 3 * row[0]
    assert float(noise_energy(torch.zeros_like(energy), level).min()) == pytest.approx((1 / 255) ** 2 / 12)


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        restore_detail(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


def test_enhancer_applies_the_checkpoints_detail_setting(tiny_checkpoint, photo):
    from gsad.checkpoints import load_checkpoint, save_checkpoint
    from gsad.enhance.enhancer import Enhancer

    model, sampler, _ = load_checkpoint(tiny_checkpoint)
    path = tiny_checkpoint.with_name("detail.safetensors")
    save_checkpoint(path, model, SamplerConfig(**{**sampler.__dict__, "detail": 0.7}))
    enhancer = Enhancer(path, device="cpu", precision="fp32")
    assert enhancer.sampler.detail == 0.7
    low = photo[:64, :96]
    with_detail = enhancer.enhance(low)
    without = enhancer.enhance(low, detail=0.0)
    expected = from_model(restore_detail(to_model(without), to_model(low), 0.7))
    assert not np.array_equal(with_detail, without)
    assert np.abs(with_detail.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_out_of_range_strength_is_refused(bad):
    from gsad.errors import ConfigError

    with pytest.raises(ConfigError, match="detail"):
        SamplerConfig(detail=bad)


def test_bands_of_rows_give_the_whole_image_result(photo, monkeypatch):
    """Run a band of rows at a time (with the blurs' context rows), the step gives the one-band result."""
    import gsad.enhance.detail as detail
    from gsad.imaging.geometry import row_bands

    low = photo[:96, :128] // 4
    out, dark = to_model(_smoothed(photo[:96, :128])), to_model(low)
    whole = restore_detail(out, dark)
    monkeypatch.setattr(detail, "row_bands", lambda h, w: row_bands(h, w, pixels=10 * w))  # bands of 10 rows
    banded = restore_detail(out, dark)
    assert torch.allclose(banded, whole, rtol=0, atol=1e-5)
