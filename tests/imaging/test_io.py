import numpy as np
import pytest
import torch
from PIL import Image

from gsad.errors import InputError
from gsad.imaging.io import as_array, list_images, read_image, write_image
from gsad.imaging.tensors import from_model, to_model


def test_model_range_round_trip():
    img = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    t = to_model(img)
    assert t.shape == (1, 3, 16, 16) and t.min() == -1 and t.max() == 1
    assert np.array_equal(from_model(t), img)
    assert np.array_equal(from_model(torch.full((1, 3, 2, 2), 5.0)), np.full((2, 2, 3), 255, np.uint8))


def test_modes_grey_rgba_16bit(tmp_path):
    Image.fromarray(np.full((5, 7), 100, np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.full((5, 7, 4), 50, np.uint8), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((5, 7), 65535 // 2, np.uint16)).save(tmp_path / "w.png")
    for name, value in [("g.png", 100), ("a.png", 50), ("w.png", 128)]:
        arr = read_image(tmp_path / name)
        assert arr.shape == (5, 7, 3) and arr.dtype == np.uint8
        assert abs(int(arr[0, 0, 0]) - value) <= 1, name


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(np.zeros((4, 10, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "r.jpg").shape == (10, 4, 3)


@pytest.mark.parametrize("content, message", [(b"", "empty file"), (b"hello", "not an image")])
def test_bad_files(tmp_path, content, message):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(tmp_path / "x.png")


def test_truncated_image(tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="t.png"):
        read_image(tmp_path / "t.png")


def test_missing_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="folder"):
        read_image(tmp_path)


def test_write_is_atomic_and_refuses_overwrite(tmp_path):
    img = np.zeros((3, 3, 3), np.uint8)
    p = write_image(tmp_path / "sub" / "o.png", img)
    assert np.array_equal(read_image(p), img)
    with pytest.raises(InputError, match="exists"):
        write_image(p, img + 1)
    write_image(p, img + 1, overwrite=True)
    assert read_image(p)[0, 0, 0] == 1
    assert [q.name for q in (tmp_path / "sub").iterdir()] == ["o.png"]


def test_as_array_validation():
    assert as_array(np.zeros((2, 2), np.uint8)).shape == (2, 2, 3)
    with pytest.raises(InputError, match="uint8"):
        as_array(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(InputError, match="shape"):
        as_array(np.zeros((2, 2, 5), np.uint8))


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt", ".hidden.png"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]


def test_adjust_exposure_scales_linear_light():
    from gsad.imaging.exposure import adjust_exposure, srgb_to_linear

    img = np.array([[[10, 60, 120]]], np.uint8)
    assert adjust_exposure(img, 0.0) is img
    up = adjust_exposure(img, 1.0)
    ratio = srgb_to_linear(up / 255.0) / srgb_to_linear(img / 255.0)
    assert np.allclose(ratio, 2.0, rtol=0.03)
    assert (adjust_exposure(img, -2.0) < img).all()
    assert adjust_exposure(np.full((1, 1, 3), 250, np.uint8), 3.0).max() == 255  # clipped, no wrap


def test_auto_exposure_brings_mean_luminance_to_target():
    from gsad.imaging.exposure import LUMINANCE, auto_exposure, srgb_to_linear

    rng = np.random.default_rng(0)
    dark = rng.integers(0, 40, (24, 32, 3), dtype=np.uint8)
    out = auto_exposure(dark)
    assert out.shape == dark.shape and out.dtype == np.uint8
    lum = (srgb_to_linear(out / 255.0) @ LUMINANCE).mean()
    assert abs(lum - 0.18) < 0.005  # 8-bit rounding only (nothing clips at these levels)
    ratio = srgb_to_linear(out / 255.0)[dark > 20] / srgb_to_linear(dark / 255.0)[dark > 20]
    assert ratio.std() / ratio.mean() < 0.02  # one global gain
    assert np.array_equal(auto_exposure(np.zeros((2, 2, 3), np.uint8)), np.zeros((2, 2, 3), np.uint8))


def test_outputs_get_the_usual_file_mode(tmp_path):
    import os

    p = write_image(tmp_path / "m.png", np.zeros((2, 2, 3), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~mask


def test_unlistable_folder_is_one_input_error(tmp_path, monkeypatch):
    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("pathlib.Path.iterdir", refuse)
    with pytest.raises(InputError, match=f"^{tmp_path}: cannot list the folder \\(Permission denied\\)$"):
        list_images(tmp_path)


def test_soft_auto_exposure_lifts_dark_images_and_leaves_bright_ones():
    from gsad.imaging.exposure import (
        LUMINANCE,
        SOFT_EXPOSURE_BRIGHT,
        SOFT_EXPOSURE_DARK,
        auto_exposure,
        soft_auto_exposure,
        soft_exposure_gain,
        srgb_to_linear,
    )

    rng = np.random.default_rng(1)
    dark = rng.integers(0, 30, (24, 32, 3), dtype=np.uint8)
    assert (srgb_to_linear(dark / 255.0) @ LUMINANCE).mean() < SOFT_EXPOSURE_DARK
    assert np.array_equal(soft_auto_exposure(dark), auto_exposure(dark))  # full gain when dark
    bright = rng.integers(60, 200, (24, 32, 3), dtype=np.uint8)
    assert (srgb_to_linear(bright / 255.0) @ LUMINANCE).mean() > SOFT_EXPOSURE_BRIGHT
    assert np.array_equal(soft_auto_exposure(bright), bright)  # a well-exposed image is left alone
    # Between: partial gain, never below 1 (no darkening), fading with the luminance.
    gains = [soft_exposure_gain(x) for x in np.geomspace(SOFT_EXPOSURE_DARK, SOFT_EXPOSURE_BRIGHT, 7)]
    assert gains[0] == pytest.approx(0.18 / SOFT_EXPOSURE_DARK) and gains[-1] == pytest.approx(1.0)
    assert all(a > b for a, b in zip(gains, gains[1:]))
    assert soft_exposure_gain(0.5) == 1.0 and soft_exposure_gain(0.0) == 1.0


def test_start_estimate_is_the_padded_auto_exposure_of_each_image():
    from gsad.imaging.exposure import auto_exposure, soft_auto_exposure, start_estimate

    rng = np.random.default_rng(4)
    images = [rng.integers(0, 40, (6, 7, 3), dtype=np.uint8) for _ in range(2)]
    low = torch.cat([to_model(im) for im in images])
    assert start_estimate(low, "noise", 4) is None
    for name, expose in (("exposure", auto_exposure), ("soft-exposure", soft_auto_exposure)):
        est = start_estimate(low, name, 4)
        assert est.shape == (2, 3, 8, 8)  # reflect-padded to the stride, like the condition
        for k, im in enumerate(images):  # each image gets its own gain
            assert torch.equal(est[k : k + 1, :, :6, :7], to_model(expose(im)))
