"""Photos with their depth, colour profile and metadata: round trips through read_picture and write_picture."""

import numpy as np
import pytest
from PIL import Image

from gsad.errors import InputError
from gsad.imaging.io import write_image
from gsad.imaging.metadata import with_software
from gsad.imaging.pictures import read_picture, write_picture


def _lab(pixels, icc):
    """CIE Lab (D50) of pixels encoded in the matrix-shaper profile ``icc``."""
    from gsad.imaging.color import matrix_shaper

    shaper = matrix_shaper(icc)
    xyz = shaper.decode(np.asarray(pixels, np.float64)) @ shaper.to_xyz.T / np.array([0.9642, 1.0, 0.8249])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def test_p3_red_survives_a_round_trip_with_its_profile(make_profile, tmp_path):
    p3 = make_profile()
    red = np.zeros((8, 8, 3), np.uint8)
    red[:] = (250, 20, 10)
    Image.fromarray(red).save(tmp_path / "p3.jpg", icc_profile=p3, quality=100, subsampling=0)
    picture = read_picture(tmp_path / "p3.jpg", wide=True)
    assert picture.profile == p3 and picture.pixels.dtype == np.float32
    assert picture.pixels[4, 4, 0] > 1.0 and picture.pixels[4, 4, 1] < 0  # outside sRGB, kept
    assert read_picture(tmp_path / "p3.jpg").pixels[4, 4].tolist() == [255, 0, 0]  # 8-bit: clipped, as before
    write_picture(tmp_path / "back.png", picture.pixels, profile=picture.profile)
    with Image.open(tmp_path / "back.png") as back:
        assert back.info["icc_profile"] == p3
        again = np.asarray(back.convert("RGB"))
    delta_e = np.linalg.norm(_lab(again[4, 4] / 255.0, p3) - _lab(red[4, 4] / 255.0, p3))
    assert delta_e < 1.0


def test_sixteen_bit_png_and_tiff_round_trip_exactly(tmp_path):
    deep = np.random.default_rng(0).integers(0, 65536, (6, 9, 3)).astype(np.uint16)
    for name in ("d.png", "d.tif"):
        write_picture(tmp_path / name, deep / 65535.0, bits=16)
        picture = read_picture(tmp_path / name)
        assert picture.depth == 16 and picture.pixels.dtype == np.float32
        assert np.array_equal(np.round(picture.pixels * 65535).astype(np.uint16), deep)
    with Image.open(tmp_path / "d.png") as img:  # any PNG reader sees the high bytes
        assert np.array_equal(np.asarray(img), (deep >> 8).astype(np.uint8))


def test_heic_and_avif_round_trip(formats, tmp_path):
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[:, :16] = (200, 60, 30)
    pixels[:, 16:] = (40, 90, 160)
    for name in ("a.heic", "a.avif"):
        write_picture(tmp_path / name, pixels, quality=95)
        back = read_picture(tmp_path / name).pixels
        assert back.shape == pixels.shape and np.abs(back.astype(int) - pixels).mean() < 4


def test_exif_and_xmp_carried_with_orientation_reset_and_software(tmp_path):
    exif = Image.Exif()
    exif[271], exif[272], exif[274] = "Canon", "EOS R5", 6
    exif[0x8769] = {0x829A: (1, 100), 0x9003: "2024:01:02 03:04:05", 0xA434: "RF 24-70mm"}
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "in.jpg", exif=exif.tobytes(), xmp=xmp)
    picture = read_picture(tmp_path / "in.jpg")
    assert picture.pixels.shape == (6, 4, 3) and b'tiff:Orientation="1"' in picture.xmp
    for name in ("out.jpg", "out.png", "out.webp", "out.tif"):
        write_picture(tmp_path / name, picture.pixels, exif=with_software(picture.exif, "gsad test"), xmp=picture.xmp)
        with Image.open(tmp_path / name) as img:
            got = img.getexif()
            assert (got[271], got[272], got[274], got[305]) == ("Canon", "EOS R5", 1, "gsad test")
            assert got.get_ifd(0x8769)[0x829A] == (1, 100) and got.get_ifd(0x8769)[0xA434] == "RF 24-70mm"
            assert got.get_ifd(0x8825)[2] == (48.0, 51.0, 30.0)
        assert read_picture(tmp_path / name).xmp == picture.xmp


def test_plain_png_is_written_as_before(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    write_image(tmp_path / "old.png", pixels)
    write_picture(tmp_path / "new.png", pixels)
    assert (tmp_path / "old.png").read_bytes() == (tmp_path / "new.png").read_bytes()


def test_sixteen_bits_refused_for_an_eight_bit_format(tmp_path):
    with pytest.raises(InputError, match="holds 8 bits per sample"):
        write_picture(tmp_path / "x.jpg", np.zeros((2, 2, 3), np.float32), bits=16)


