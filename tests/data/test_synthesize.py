import numpy as np
import pytest
from PIL import Image

from gsad.data.synthesize import (
    DEFAULT_RANGES,
    HOLDOUT_RANGES,
    DegradationParams,
    DegradationRanges,
    apply_degradation,
    bundled_photos,
    degrade,
    synthesize_folder,
)
from gsad.errors import ConfigError, DataError, InputError
from gsad.images import linear_to_srgb, read_image, srgb_to_linear


def _photo(seed: int = 0, size: int = 48) -> np.ndarray:
    """A smooth colour image with mid-range values (gradients plus a few blocks)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([60 + 150 * xx, 60 + 150 * yy, 120 + 60 * xx * yy], axis=2)
    img[: size // 3, : size // 3] = rng.integers(40, 220, 3)
    return img.astype(np.uint8)


def test_srgb_transfer_is_exact_and_invertible():
    x = np.array([0.0, 0.04045, 0.5, 1.0])
    expected = [0.0, 0.04045 / 12.92, ((0.5 + 0.055) / 1.055) ** 2.4, 1.0]
    np.testing.assert_allclose(srgb_to_linear(x), expected, rtol=1e-12)
    levels = np.arange(256) / 255.0
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(levels)), levels, atol=1e-12)


def test_degrade_is_darker_and_reports_params():
    img = _photo()
    low, params = degrade(img, np.random.default_rng(0))
    assert low.shape == img.shape and low.dtype == np.uint8
    assert low.mean() < 0.8 * img.mean()
    assert set(params) == {"exposure", "full_well", "read_noise", "gains", "bits"}
    lo, hi = DEFAULT_RANGES.exposure
    assert lo <= params["exposure"] <= hi
    assert params["bits"] in DEFAULT_RANGES.bits and len(params["gains"]) == 3


def test_exposure_without_noise_matches_the_formula():
    # No noise, no cast, no ADC: out = round(255 * srgb(k * linear(in))).
    img = _photo()
    params = DegradationParams(exposure=0.1, full_well=1e12, read_noise=0.0, gains=(1.0, 1.0, 1.0), bits=None)
    low = apply_degradation(img, params, np.random.default_rng(0))
    lin = img / 255.0
    lin = np.where(lin <= 0.04045, lin / 12.92, ((lin + 0.055) / 1.055) ** 2.4) * 0.1
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    np.testing.assert_array_equal(low, np.round(srgb * 255).astype(np.uint8))


def test_shot_noise_variance_grows_with_signal():
    flat = np.zeros((128, 128, 3), np.uint8)
    flat[:, :64] = 60
    flat[:, 64:] = 230
    params = DegradationParams(exposure=0.5, full_well=300.0, read_noise=0.0, gains=(1.0, 1.0, 1.0), bits=None)
    low = apply_degradation(flat, params, np.random.default_rng(1))
    lin = srgb_to_linear(low / 255.0)
    dark_var, bright_var = lin[:, :64].var(), lin[:, 64:].var()
    assert bright_var > 3 * dark_var
    # Shot-noise variance is signal / full_well (8-bit output quantisation aside).
    signal = 0.5 * srgb_to_linear(np.array(230 / 255.0))
    assert bright_var == pytest.approx(signal / 300.0, rel=0.2)


def test_read_noise_alone_is_signal_independent():
    flat = np.zeros((128, 128, 3), np.uint8)
    flat[:, :64] = 150
    flat[:, 64:] = 230
    params = DegradationParams(exposure=0.5, full_well=1e12, read_noise=0.01, gains=(1.0, 1.0, 1.0), bits=None)
    lin = srgb_to_linear(apply_degradation(flat, params, np.random.default_rng(2)) / 255.0)
    assert lin[:, :64].var() == pytest.approx(1e-4, rel=0.2)
    assert lin[:, 64:].var() == pytest.approx(1e-4, rel=0.2)


def test_quantisation_limits_levels():
    img = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (4, 1, 3))
    params = DegradationParams(exposure=1.0, full_well=1e12, read_noise=0.0, gains=(1.0, 1.0, 1.0), bits=3)
    low = apply_degradation(img, params, np.random.default_rng(0))
    expected = np.round(linear_to_srgb(np.arange(8) / 7) * 255).astype(np.uint8)
    assert set(np.unique(low)) == set(expected)


def test_colour_cast_gains_per_channel():
    img = np.full((16, 16, 3), 200, np.uint8)
    params = DegradationParams(exposure=0.5, full_well=1e12, read_noise=0.0, gains=(1.2, 1.0, 0.8), bits=None)
    low = apply_degradation(img, params, np.random.default_rng(0))
    assert low[..., 0].mean() > low[..., 1].mean() > low[..., 2].mean()


def test_same_rng_same_result_and_presets_differ():
    img = _photo()
    a, pa = degrade(img, np.random.default_rng(5))
    b, pb = degrade(img, np.random.default_rng(5))
    assert pa == pb and np.array_equal(a, b)
    c, _ = degrade(img, np.random.default_rng(6))
    assert not np.array_equal(a, c)
    assert HOLDOUT_RANGES != DEFAULT_RANGES
    assert HOLDOUT_RANGES.full_well[1] < DEFAULT_RANGES.full_well[1]


def test_ranges_are_validated():
    with pytest.raises(ConfigError, match="exposure"):
        DegradationRanges(exposure=(0.5, 0.1))
    with pytest.raises(ConfigError, match="bits"):
        DegradationRanges(bits=(0,))
    with pytest.raises(InputError):
        degrade(np.zeros((4, 4), np.uint8), np.random.default_rng(0))


def _photo_folder(path, names):
    path.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(_photo(i, 24)).save(path / name)
    return path


def test_synthesize_folder_is_deterministic_per_file(tmp_path):
    photos = _photo_folder(tmp_path / "photos", ["b.png", "a.jpg"])
    names = synthesize_folder(photos, tmp_path / "out1", seed=3)
    assert names == ["a.png", "b.png"]
    out1 = {side: {n: (tmp_path / "out1" / side / n).read_bytes() for n in names} for side in ("low", "high")}
    # High is the photo itself (decoded, saved as PNG).
    np.testing.assert_array_equal(read_image(tmp_path / "out1/high/a.png"), read_image(photos / "a.jpg"))
    assert read_image(tmp_path / "out1/low/b.png").mean() < read_image(photos / "b.png").mean()

    # Same seed, same bytes, even with another photo added.
    _photo_folder(tmp_path / "photos", ["c.png"])
    synthesize_folder(photos, tmp_path / "out2", seed=3)
    for name in names:
        assert (tmp_path / "out2/low" / name).read_bytes() == out1["low"][name]
        assert (tmp_path / "out2/high" / name).read_bytes() == out1["high"][name]

    # Another seed, other bytes.
    synthesize_folder(photos, tmp_path / "out3", seed=4, count=1)
    assert sorted(p.name for p in (tmp_path / "out3/low").iterdir()) == ["a.png"]
    assert (tmp_path / "out3/low/a.png").read_bytes() != out1["low"]["a.png"]


def test_synthesize_folder_refuses_existing_outputs(tmp_path):
    photos = _photo_folder(tmp_path / "photos", ["a.png"])
    synthesize_folder(photos, tmp_path / "out")
    with pytest.raises(InputError, match="overwrite"):
        synthesize_folder(photos, tmp_path / "out")
    assert synthesize_folder(photos, tmp_path / "out", seed=1, overwrite=True) == ["a.png"]


def test_synthesize_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such photo folder"):
        synthesize_folder(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        synthesize_folder(tmp_path / "empty", tmp_path / "out")
    photos = _photo_folder(tmp_path / "dup", ["a.png", "a.jpg"])
    with pytest.raises(DataError, match="a.jpg"):
        synthesize_folder(photos, tmp_path / "out")
    with pytest.raises(ConfigError):
        synthesize_folder(_photo_folder(tmp_path / "one", ["a.png"]), tmp_path / "out", count=0)


def test_bundled_photos_are_offline_colour_photos():
    photos = bundled_photos()
    assert len(photos) >= 3
    for path in photos:
        assert path.is_file()
        with Image.open(path) as img:
            assert img.mode == "RGB" and min(img.size) >= 256


def test_synthesize_from_bundled_photo_list(tmp_path):
    photos = bundled_photos()[:1]
    names = synthesize_folder(photos, tmp_path / "out", seed=0)
    assert names == [photos[0].stem + ".png"]
    assert read_image(tmp_path / "out" / "low" / names[0]).mean() < read_image(photos[0]).mean()
    with pytest.raises(DataError, match="nope.png: no such photo file"):
        synthesize_folder([tmp_path / "nope.png"], tmp_path / "out2")
