"""Camera RAW through rawpy, on Bayer DNGs written in the test (tests/conftest.py write_dng)."""

import importlib

import numpy as np
import pytest

from gsad.errors import InputError
from gsad.imaging import raw
from gsad.imaging.color import srgb_encode
from gsad.imaging.io import read_image
from gsad.imaging.pictures import read_picture


def _scene():
    linear = np.full((32, 48, 3), 0.2)
    linear[:, 24:] = (0.4, 0.05, 0.05)
    return linear


def test_dng_is_developed_to_srgb_with_the_camera_white_balance_and_no_brightening(formats, tmp_path):
    path = tmp_path / "a.dng"
    formats.write_dng(path, _scene())
    out = raw.read_raw(path, None)
    assert out.shape == (32, 48, 3) and out.dtype == np.float32
    # grey stays grey at its own brightness (no auto-brightening), in the sRGB curve
    np.testing.assert_allclose(out[16, 8], srgb_encode(np.full(3, 0.2)), atol=0.01)
    np.testing.assert_allclose(out[16, 40], srgb_encode(np.array([0.4, 0.05, 0.05])), atol=0.01)


def test_white_balance_camera_or_auto(formats, tmp_path):
    path = tmp_path / "warm.dng"
    formats.write_dng(path, _scene(), neutral=(0.5, 1.0, 1.0))  # the camera saw red at half strength
    camera = raw.read_raw(path, None, "camera")
    np.testing.assert_allclose(camera[16, 8], srgb_encode(np.array([0.4, 0.2, 0.2])), atol=0.01)
    auto = raw.read_raw(path, None, "auto")
    assert not np.allclose(auto[16, 8], camera[16, 8], atol=0.02)


def test_orientation_applied_and_sixteen_bit_picture(formats, tmp_path):
    path = tmp_path / "turned.dng"
    formats.write_dng(path, _scene(), orientation=6)
    picture = read_picture(path)
    assert picture.pixels.shape == (48, 32, 3) and picture.depth == 16
    assert read_image(path).dtype == np.uint8 and read_image(path).shape == (48, 32, 3)


def test_size_limit_from_the_header_before_demosaicing(formats, tmp_path):
    path = tmp_path / "big.dng"
    formats.write_dng(path, _scene())
    with pytest.raises(InputError, match="over the limit"):
        raw.read_raw(path, 1000)
    assert raw.raw_size(path) == (48, 32)


def test_not_a_raw_file_is_one_line(formats, tmp_path):
    path = tmp_path / "fake.nef"
    path.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(InputError, match="fake.nef: unreadable camera RAW file"):
        read_image(path)


def test_without_rawpy_the_error_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "a.cr2"
    path.write_bytes(b"x" * 64)
    real = importlib.import_module

    def no_rawpy(name, *args):
        if name == "rawpy":
            raise ImportError("No module named 'rawpy'")
        return real(name, *args)

    monkeypatch.setattr(raw.importlib, "import_module", no_rawpy)
    with pytest.raises(InputError, match=r'a.cr2: reading camera RAW files needs pip install "gsad\[formats\]"'):
        read_image(path)
