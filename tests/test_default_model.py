"""The bundled default model keeps its promises on real photos: dark ones are lifted, well-exposed
ones come back nearly unchanged (issue 15's do-no-harm bounds), in a few seconds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from gsad.enhance.enhancer import Enhancer
from gsad.evaluation.metrics import mean_level, psnr, ssim
from gsad.imaging.exposure import linear_to_srgb, srgb_to_linear


@pytest.fixture(scope="module")
def enhancer() -> Enhancer:
    return Enhancer(device="cpu")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A well-exposed photo (scikit-image's coffee), 192 x 128."""
    return np.asarray(Image.fromarray(data.coffee()).resize((192, 128), Image.LANCZOS))


def test_the_bundled_model_stores_its_tuned_settings(enhancer):
    s = enhancer.sampler
    assert (s.start, s.ensemble, s.detail) == ("soft-exposure", 3, 1.0)
    assert s.steps * s.ensemble <= 12  # the time budget it was tuned within


def test_a_well_exposed_photo_comes_back_nearly_unchanged(enhancer, photo):
    out = enhancer.enhance(photo)
    assert psnr(out, photo) >= 24.0
    assert ssim(out, photo) >= 0.85
    assert 0.85 <= mean_level(out) / mean_level(photo) <= 1.3


def test_a_dark_photo_is_lifted_towards_the_original(enhancer, photo):
    dark = np.round(linear_to_srgb(srgb_to_linear(photo / 255.0) * 0.03) * 255.0).astype(np.uint8)
    out = enhancer.enhance(dark)
    assert mean_level(out) > 2.5 * mean_level(dark)
    assert 0.6 <= mean_level(out) / mean_level(photo) <= 1.4
    assert psnr(out, photo) > psnr(dark, photo) + 8.0
