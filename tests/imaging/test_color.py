"""Matrix-shaper profiles in float against littleCMS, on profiles made in the test (conftest.rgb_profile)."""

import io

import numpy as np
from PIL import Image, ImageCms

from gsad.imaging import color


def _littlecms_to_srgb(pixels, icc):
    return np.asarray(ImageCms.profileToProfile(
        Image.fromarray(pixels), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")), outputMode="RGB",
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
    ))


def test_p3_agrees_with_littlecms_and_keeps_out_of_gamut_colours(make_profile):
    icc = make_profile()
    shaper = color.matrix_shaper(icc)
    assert shaper is not None
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [128, 64, 200], [255, 255, 255], [10, 20, 30]]], np.uint8)
    ours = color.to_srgb(pixels / 255.0, shaper)
    inside = np.clip(np.round(ours * 255), 0, 255)
    assert np.abs(inside - _littlecms_to_srgb(pixels, icc)).max() <= 1
    red = ours[0, 0]
    assert red[0] > 1.05 and red[1] < -0.1 and red[2] < -0.1  # P3 red lies outside sRGB: more than sRGB's red
    np.testing.assert_allclose(ours[0, 3], 1.0, atol=1e-4)  # same white
    np.testing.assert_allclose(color.from_srgb(ours, shaper) * 255, pixels, atol=1e-3)


def test_linear_and_gamma_profiles(make_profile):
    srgb_primaries = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
    linear = color.matrix_shaper(make_profile(srgb_primaries, transfer="linear"))
    grey = np.full((1, 1, 3), 0.5)
    np.testing.assert_allclose(color.to_srgb(grey, linear)[0, 0], color.srgb_encode(np.full(3, 0.5)), atol=2e-3)
    adobe = make_profile(((0.64, 0.33), (0.21, 0.71), (0.15, 0.06)), transfer=2.2)
    pixels = np.array([[[200, 120, 40], [30, 180, 90]]], np.uint8)
    ours = np.clip(np.round(color.to_srgb(pixels / 255.0, color.matrix_shaper(adobe)) * 255), 0, 255)
    assert np.abs(ours - _littlecms_to_srgb(pixels, adobe)).max() <= 1


def test_lut_and_broken_profiles_are_left_to_littlecms():
    assert color.matrix_shaper(b"garbage") is None
    lab = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    assert color.matrix_shaper(lab) is None
