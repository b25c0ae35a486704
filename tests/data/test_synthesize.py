import numpy as np
import pytest
from PIL import Image

from gsad.data.synthesize import (
    BROAD_RANGES,
    DEFAULT_RANGES,
    HOLDOUT_FAMILIES,
    HOLDOUT_RANGES,
    TONE_CURVES,
    DegradationParams,
    DegradationRanges,
    apply_degradation,
    bundled_photos,
    degrade,
    jpeg_roundtrip,
    named_ranges,
    sample_params,
    synthesize_folder,
    tone_curve,
)
from gsad.errors import ConfigError, DataError, InputError
from gsad.imaging.exposure import linear_to_srgb, srgb_to_linear
from gsad.imaging.io import read_image


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
    assert {"exposure", "full_well", "read_noise", "gains", "bits"} <= set(params)
    # The default preset leaves the later stages off.
    assert params["tone_curve"] == "srgb" and params["jpeg_quality"] is None and params["noise_correlation"] == 0
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


def _bad_photos(folder):
    """``b.png`` truncated (half its bytes) and ``d.jpg`` not an image, beside good ``a.png`` and ``c.png``."""
    _photo_folder(folder, ["a.png", "b.png", "c.png"])
    data = (folder / "b.png").read_bytes()
    (folder / "b.png").write_bytes(data[: len(data) // 2])
    (folder / "d.jpg").write_bytes(b"not a jpeg")
    return folder


def _pairs_on_disk(out):
    return {side: sorted(p.name for p in (out / side).iterdir()) for side in ("low", "high")}


def test_bad_photos_are_reported_and_skipped(tmp_path):
    """Issue 24, case 23: one line per bad photo, the others done; without ``report`` the first raises."""
    photos = _bad_photos(tmp_path / "photos")
    problems = []
    assert synthesize_folder(photos, tmp_path / "out", report=problems.append) == ["a.png", "c.png"]
    assert len(problems) == 2
    assert problems[0].startswith(f"{photos / 'b.png'}: unreadable or truncated image")
    assert problems[1].startswith(f"{photos / 'd.jpg'}: not an image file")
    assert _pairs_on_disk(tmp_path / "out") == {"low": ["a.png", "c.png"], "high": ["a.png", "c.png"]}
    with pytest.raises(InputError, match="b.png: unreadable or truncated"):
        synthesize_folder(photos, tmp_path / "out2")
    assert _pairs_on_disk(tmp_path / "out2") == {"low": ["a.png"], "high": ["a.png"]}


def test_a_pair_that_cannot_be_written_leaves_no_half(tmp_path, monkeypatch):
    """``low`` fails after ``high`` was written (a full disk): neither stays, not even an older ``low``."""
    import gsad.data.synthesize as synth

    photos = _photo_folder(tmp_path / "photos", ["a.png", "c.png"])
    out = tmp_path / "out"
    synthesize_folder(photos, out)
    write = synth.write_image

    def full_disk(path, image, overwrite=False):
        if path.parent.name == "low" and path.name == "c.png":
            raise InputError(f"{path}: cannot write (No space left on device)")
        return write(path, image, overwrite=overwrite)

    monkeypatch.setattr(synth, "write_image", full_disk)
    problems = []
    assert synthesize_folder(photos, out, seed=1, overwrite=True, report=problems.append) == ["a.png"]
    assert problems == [f"{out / 'low' / 'c.png'}: cannot write (No space left on device)"]
    assert _pairs_on_disk(out) == {"low": ["a.png"], "high": ["a.png"]}


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


# ----------------------------------------------------------------------------------------
# the broad pipeline (issue 15) and the held-out families
# ----------------------------------------------------------------------------------------


def _textured(size: int = 64, seed: int = 0) -> np.ndarray:
    """Mid-grey photo-like image: smooth gradients plus fine random texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = np.stack([90 + 100 * xx, 90 + 100 * yy, 140 - 60 * xx], axis=2)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def _draws(ranges, count: int = 400):
    rng = np.random.default_rng(5)
    return [sample_params(rng, ranges) for _ in range(count)]


def test_broad_draws_respect_every_range():
    draws = _draws(BROAD_RANGES)
    r = BROAD_RANGES
    exposures = np.array([d.exposure for d in draws])
    assert exposures.min() >= r.exposure[0] and exposures.max() <= r.exposure[1]
    # Log-uniform over 0.005-1: both a dark end and near-normal inputs are drawn.
    assert exposures.min() < 0.007 and (exposures > 0.5).mean() > 0.08
    assert all(r.full_well[0] <= d.full_well <= r.full_well[1] for d in draws)
    assert all(r.read_noise[0] <= d.read_noise <= r.read_noise[1] for d in draws)
    assert all(r.color_cast[0] <= g <= r.color_cast[1] for d in draws for g in d.gains)
    assert {d.tone_curve for d in draws} == set(TONE_CURVES)
    assert all(r.gamma[0] <= d.gamma <= r.gamma[1] for d in draws if d.tone_curve == "gamma")
    assert all(r.filmic[0] <= d.filmic <= r.filmic[1] for d in draws if d.tone_curve == "filmic")
    assert all(r.noise_correlation[0] <= d.noise_correlation <= r.noise_correlation[1] for d in draws)
    qualities = [d.jpeg_quality for d in draws if d.jpeg_quality is not None]
    assert 0.4 < len(qualities) / len(draws) < 0.6 and min(qualities) >= 60 and max(qualities) <= 95
    blurs = [d.blur_sigma for d in draws if d.blur_sigma > 0]
    assert 0.2 < len(blurs) / len(draws) < 0.4 and r.blur_sigma[0] <= min(blurs) and max(blurs) <= r.blur_sigma[1]
    scales = [d.downscale for d in draws if d.downscale > 1]
    assert 0.2 < len(scales) / len(draws) < 0.4 and max(scales) <= r.downscale[1]


def test_broad_degrade_shapes_dtype_and_determinism_per_seed():
    img = _textured()
    a, pa = degrade(img, np.random.default_rng(3), BROAD_RANGES)
    b, pb = degrade(img, np.random.default_rng(3), BROAD_RANGES)
    c, _ = degrade(img, np.random.default_rng(4), BROAD_RANGES)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and pa == pb
    assert not np.array_equal(a, c)
    assert {"tone_curve", "noise_correlation", "jpeg_quality", "blur_sigma", "downscale"} <= set(pa)


def test_exposure_range_sets_the_brightness_range():
    # Darkest and near-normal ends of the broad range, noise and cast off: mean levels follow k.
    img = _textured()
    levels = {}
    for k in (0.005, 1.0):
        params = DegradationParams(exposure=k, full_well=1e12, read_noise=0.0, gains=(1, 1, 1), bits=None)
        levels[k] = apply_degradation(img, params, np.random.default_rng(0)).mean()
    assert levels[0.005] < 0.1 * img.mean()
    assert abs(levels[1.0] - img.mean()) < 1.0


def test_shot_noise_variance_scales_with_signal_in_the_broad_regime():
    # A small full well (300 e-, phone at high ISO): variance of the linear signal ~ s / W.
    flat = np.full((128, 128, 3), 200, np.uint8)
    lin = srgb_to_linear(np.array(200 / 255.0))
    variances = []
    for k in (0.05, 0.2):
        params = DegradationParams(exposure=k, full_well=300.0, read_noise=0.0, gains=(1, 1, 1), bits=None,
                                   tone_curve="gamma", gamma=1.0)  # gamma 1: the output is linear
        low = apply_degradation(flat, params, np.random.default_rng(1)) / 255.0
        variances.append(low.var())
        np.testing.assert_allclose(low.var(), k * lin / 300.0, rtol=0.15)
    assert 3.0 < variances[1] / variances[0] < 5.0  # 4x the signal, 4x the variance


def test_correlated_noise_correlates_neighbours():
    flat = np.full((96, 96, 3), 128, np.uint8)

    def neighbour_correlation(rho: float) -> float:
        params = DegradationParams(exposure=0.5, full_well=1e12, read_noise=0.01, gains=(1, 1, 1), bits=None,
                                   tone_curve="gamma", gamma=1.0, noise_correlation=rho)
        noise = apply_degradation(flat, params, np.random.default_rng(2)).astype(float)
        noise -= noise.mean()
        return float((noise[:, 1:] * noise[:, :-1]).mean() / noise.var())

    assert abs(neighbour_correlation(0.0)) < 0.05
    corr = neighbour_correlation(0.75)
    assert corr > 0.3 and abs(corr - 2 * 0.75 / 3) < 0.08  # the box model's 2 rho / 3


def _blockiness(image: np.ndarray) -> float:
    """Mean jump across 8 x 8 block boundaries over the mean jump inside blocks (columns)."""
    jumps = np.abs(np.diff(image.astype(float).mean(axis=2), axis=1)).mean(axis=0)
    boundary = jumps[7::8]
    inside = np.delete(jumps, np.arange(7, jumps.size, 8))
    return float(boundary.mean() / inside.mean())


def test_jpeg_stage_leaves_block_artefacts():
    img = _textured(size=128)
    base = dict(exposure=0.3, full_well=2000.0, read_noise=0.002, gains=(1, 1, 1), bits=None)
    plain = apply_degradation(img, DegradationParams(**base), np.random.default_rng(0))
    jpeg = apply_degradation(img, DegradationParams(**base, jpeg_quality=60), np.random.default_rng(0))
    assert not np.array_equal(plain, jpeg)
    assert _blockiness(plain) < 1.1 < _blockiness(jpeg)
    np.testing.assert_array_equal(jpeg_roundtrip(plain, 60), jpeg)


def test_tone_curves():
    levels = np.linspace(0.0, 1.0, 11)
    gamma = DegradationParams(1, 1, 0, (1, 1, 1), None, tone_curve="gamma", gamma=2.4)
    np.testing.assert_allclose(tone_curve(levels, gamma), levels ** (1 / 2.4))
    srgb = tone_curve(levels, DegradationParams(1, 1, 0, (1, 1, 1), None))
    np.testing.assert_allclose(srgb, linear_to_srgb(levels))
    filmic = tone_curve(levels, DegradationParams(1, 1, 0, (1, 1, 1), None, tone_curve="filmic", filmic=0.5))
    # An S-curve around the sRGB curve: darker shadows, brighter highlights, same end points.
    assert filmic[1] < srgb[1] and filmic[-2] > srgb[-2]
    np.testing.assert_allclose(filmic[[0, -1]], [0.0, 1.0])


def test_blur_and_resampling_remove_fine_detail():
    img = _textured(size=96)
    base = dict(exposure=1.0, full_well=1e12, read_noise=0.0, gains=(1, 1, 1), bits=None)

    def detail(**extra) -> float:
        out = apply_degradation(img, DegradationParams(**base, **extra), np.random.default_rng(0)).astype(float)
        return float(np.var(out[:, 1:] - out[:, :-1]))

    sharp = detail()
    assert detail(blur_sigma=1.0) < 0.5 * sharp
    assert detail(downscale=1.5) < 0.8 * sharp


def test_old_presets_draw_nothing_for_the_new_stages():
    for ranges in (DEFAULT_RANGES, HOLDOUT_RANGES):
        a, b = np.random.default_rng(9), np.random.default_rng(9)
        params = sample_params(a, ranges)
        b.uniform(size=2), b.uniform(), b.uniform(size=3), b.integers(len(ranges.bits))
        assert a.random() == b.random()  # the same number of draws as the original camera model
        assert params.tone_curve == "srgb" and params.jpeg_quality is None and params.downscale == 1.0


def test_named_presets_and_families_lie_outside_broad():
    assert named_ranges("broad") is BROAD_RANGES and named_ranges("default") is DEFAULT_RANGES
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*broad"):
        named_ranges("nope")
    fam, broad = HOLDOUT_FAMILIES, BROAD_RANGES
    assert len(fam) >= 4
    dark = fam["dark-noisy"]
    assert dark.exposure[1] <= broad.exposure[0]  # darker than any training draw
    # ... with fewer electrons at mid-grey than the first model's held-out camera
    def electrons(r):  # geometric-mean exposure x full well: electrons at white
        return np.sqrt(np.prod(r.exposure) * np.prod(r.full_well))

    assert electrons(dark) < 0.3 * electrons(HOLDOUT_RANGES)
    assert fam["phone-jpeg"].jpeg_quality[1] <= broad.jpeg_quality[0] and fam["phone-jpeg"].jpeg_probability == 1
    assert fam["phone-jpeg"].downscale[1] > broad.downscale[1]
    cast = fam["color-cast"].color_cast
    assert cast[0] < broad.color_cast[0] and cast[1] > broad.color_cast[1]
    assert fam["near-normal"].exposure[0] >= 0.5


@pytest.mark.parametrize("field, value, message", [
    ("tone_curves", ("sepia",), "tone_curves"),
    ("jpeg_probability", 1.5, "jpeg_probability"),
    ("downscale", (0.5, 1.0), "downscale"),
    ("noise_correlation", (0.0, 1.5), "noise_correlation"),
])
def test_new_ranges_are_validated(field, value, message):
    with pytest.raises(ConfigError, match=message):
        DegradationRanges(**{field: value})
