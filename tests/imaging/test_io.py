import contextlib
import io
import warnings

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


# ----------------------------------------------------------------------------------------
# deep samples (issue 24, case 14)
# ----------------------------------------------------------------------------------------


def _tiff_tags(**tags):
    from PIL import TiffImagePlugin

    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    for key, value in tags.items():
        tag = {"max_sample": 281, "smax_sample": 341}[key]
        ifd[tag] = value
        if isinstance(value, float):
            ifd.tagtype[tag] = 12  # DOUBLE
    return ifd


def test_float_tiff_is_read_on_the_nominal_0_to_1_scale_and_clipped(tmp_path):
    values = np.random.default_rng(0).random((20, 30)).astype(np.float32) * 1.5 - 0.1  # some above 1, some below 0
    Image.fromarray(values, "F").save(tmp_path / "f.tif")
    arr = read_image(tmp_path / "f.tif")
    assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8
    expected = np.round(np.clip(values.astype(np.float64), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(arr[..., 0], expected) and np.array_equal(arr[..., 2], expected)
    assert arr.mean() > 150  # not divided by 255 because one value passed 1.0 (the old mean was 0.6)
    # A stated white level (SMaxSampleValue) overrides the [0, 1] default.
    Image.fromarray(values * 255, "F").save(tmp_path / "f255.tif", tiffinfo=_tiff_tags(smax_sample=255.0))
    assert np.abs(read_image(tmp_path / "f255.tif")[..., 0].astype(int) - expected).max() <= 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_refused(tmp_path, bad):
    values = np.full((8, 8), 0.5, np.float32)
    values[3, 4] = bad
    Image.fromarray(values, "F").save(tmp_path / "n.tif")
    with _no_warnings(), pytest.raises(InputError, match=r"n\.tif: NaN or infinite pixel values$"):
        read_image(tmp_path / "n.tif")  # and no numpy RuntimeWarning on the way
    with pytest.raises(InputError, match="^image: NaN or infinite"):
        as_array(Image.fromarray(values, "F"))


@contextlib.contextmanager
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_integer_samples_are_scaled_by_their_white_level(tmp_path):
    rng = np.random.default_rng(1)
    thousand = (rng.random((20, 30)) * 1000).astype(np.int32)
    # 32-bit integers: no convention for white, so a file that does not state it is refused...
    Image.fromarray(thousand, "I").save(tmp_path / "i32.tif")
    with pytest.raises(InputError, match=r"i32\.tif: 32-bit integer pixels and no stated white level"):
        read_image(tmp_path / "i32.tif")
    # ...and one that does is scaled by it (MaxSampleValue 1000: mean about 127, was 1.9).
    Image.fromarray(thousand, "I").save(tmp_path / "i1000.tif", tiffinfo=_tiff_tags(max_sample=1000))
    expected = np.round(thousand / 1000 * 255)
    assert np.abs(read_image(tmp_path / "i1000.tif")[..., 1] - expected).max() <= 0.5
    # 16 bits: 65535 is white, or the stated MaxSampleValue (12-bit data in 16-bit samples).
    twelve = (rng.random((20, 30)) * 4095).astype(np.uint16)
    Image.fromarray(twelve).save(tmp_path / "w16.tif")
    assert np.abs(read_image(tmp_path / "w16.tif")[..., 0] - np.round(twelve / 65535 * 255)).max() <= 0.5
    Image.fromarray(twelve).save(tmp_path / "w12.tif", tiffinfo=_tiff_tags(max_sample=4095))
    assert np.abs(read_image(tmp_path / "w12.tif")[..., 0] - np.round(twelve / 4095 * 255)).max() <= 0.5
    # PNM with maxval 1000: Pillow hands over mode "I" already on the 0-65535 scale.
    (tmp_path / "m.pgm").write_bytes(b"P5 4 3 1000\n" + np.full((3, 4), 500, ">u2").tobytes())
    assert np.all(read_image(tmp_path / "m.pgm") == 128)


def test_multichannel_float_tiff_is_one_line(tmp_path):
    """An RGB float32 TIFF (which Pillow cannot open) is refused by name, in one line."""
    import struct

    h, w = 4, 5
    data = np.random.default_rng(0).random((h, w, 3)).astype("<f4").tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, "bps"), (259, 3, 1, 1), (262, 3, 1, 2),
               (273, 4, 1, "data"), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 1, len(data)), (339, 3, 3, "fmt")]
    extra = 8 + 2 + 12 * len(entries) + 4
    where = {"bps": extra, "fmt": extra + 6, "data": extra + 12}
    out = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries)))
    for tag, kind, count, value in entries:
        if isinstance(value, str):
            out += struct.pack("<HHII", tag, kind, count, where[value])
        elif kind == 3:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0) + struct.pack("<3H", 32, 32, 32) + struct.pack("<3H", 3, 3, 3) + data
    (tmp_path / "rgbf.tif").write_bytes(bytes(out))
    with pytest.raises(InputError, match=r"^\S*rgbf\.tif: [^\n]*$"):
        read_image(tmp_path / "rgbf.tif")


# ----------------------------------------------------------------------------------------
# colour profiles (issue 24, case 15)
# ----------------------------------------------------------------------------------------

D50 = np.array([0.9642, 1.0, 0.8249])


def _icc_matrix_profile(columns: np.ndarray, curve: float | np.ndarray, description: str = "test RGB",
                        white: np.ndarray = D50) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix/TRC), written by hand: ``columns`` holds the
    D50 XYZ of the red, green and blue primaries (a 3 x 3 matrix, one primary per column);
    ``curve`` is a gamma or a table of 16-bit values (the same for the three channels); ``white``
    the media white point (XYZ; v2 display profiles state the display's own, e.g. D65)."""
    import struct

    def s15(v):
        return struct.pack(">i", round(float(v) * 65536))

    def xyz(v):
        return b"XYZ " + bytes(4) + b"".join(s15(c) for c in v)

    if np.isscalar(curve):
        trc = b"curv" + bytes(4) + struct.pack(">IH", 1, round(curve * 256))
    else:
        table = np.round(np.asarray(curve) * 65535).astype(int)
        trc = b"curv" + bytes(4) + struct.pack(f">I{len(table)}H", len(table), *table)
    text = description.encode() + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"wtpt", xyz(white)), (b"rXYZ", xyz(columns[:, 0])), (b"gXYZ", xyz(columns[:, 1])),
            (b"bXYZ", xyz(columns[:, 2])), (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    size = start + len(body)
    header = (struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ " + bytes(12) + b"acsp"
              + bytes(4 + 4 + 4 + 4 + 8 + 4) + b"".join(s15(c) for c in D50) + bytes(4 + 16 + 28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _srgb_columns() -> np.ndarray:
    """The primaries of littleCMS's sRGB (what read_image converts to), D50 XYZ columns."""
    from PIL import ImageCms

    p = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).profile
    return np.array([p.red_colorant[0], p.green_colorant[0], p.blue_colorant[0]]).T


def _columns_from_primaries(xy, white_xy=(0.3127, 0.3290)) -> np.ndarray:
    """RGB -> XYZ for primaries ``xy`` and a white point, adapted to D50 (Bradford), as ICC wants."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    prim = np.stack([xyz(*p) for p in xy], axis=1)
    white = xyz(*white_xy)
    m = prim * np.linalg.solve(prim, white)  # scale each primary so that R = G = B = 1 is the white
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    adapt = np.linalg.inv(bradford) @ np.diag((bradford @ D50) / (bradford @ white)) @ bradford
    return adapt @ m


def _srgb_encode(linear):
    from gsad.imaging.exposure import linear_to_srgb

    return np.round(np.asarray(linear_to_srgb(np.clip(linear, 0, 1))) * 255)


def _srgb_decode(values):
    from gsad.imaging.exposure import srgb_to_linear

    return np.asarray(srgb_to_linear(values / 255.0))


def test_linear_gamma_profile_is_converted_to_srgb(tmp_path):
    """The issue's case: linear-light pixels tagged with a linear profile read as sRGB values."""
    linear = np.random.default_rng(0).integers(0, 70, (16, 24, 3), dtype=np.uint8)
    icc = _icc_matrix_profile(_srgb_columns(), 1.0, "linear sRGB")
    Image.fromarray(linear).save(tmp_path / "lin.png", icc_profile=icc)
    arr = read_image(tmp_path / "lin.png")
    expected = _srgb_encode(linear / 255.0)
    assert np.abs(arr - expected).max() <= 1
    assert arr.mean() > 2.5 * linear.mean()  # about 100 against 34.5 read as if it were sRGB


def test_wide_gamut_profile_is_converted_to_srgb(tmp_path):
    """Display P3 (P3 primaries, D65, the sRGB curve): colours land where colorimetry says, clipped to sRGB."""
    p3 = _columns_from_primaries([(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)])
    curve = _srgb_decode(np.linspace(0, 255, 4096))
    icc = _icc_matrix_profile(p3, curve, "Display P3 (test)", white=np.array([0.9505, 1.0, 1.0891]))
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p3.png", icc_profile=icc)
    arr = read_image(tmp_path / "p3.png")
    linear_srgb = np.einsum("ij,hwj->hwi", np.linalg.solve(_srgb_columns(), p3), _srgb_decode(pixels))
    assert ((linear_srgb < 0) | (linear_srgb > 1)).any()  # some colours lie outside sRGB: clipped
    expected = _srgb_encode(linear_srgb)
    assert np.abs(arr - expected).max() <= 2
    assert np.abs(arr.astype(int) - pixels).max() >= 10  # so the conversion did something
    # The same pixels in a JPEG, and in one with an EXIF rotation: managed, and managed and rotated.
    Image.fromarray(pixels).save(tmp_path / "p3.jpg", icc_profile=icc, quality=100, subsampling=0)
    plain = read_image(tmp_path / "p3.jpg")
    assert np.abs(plain.astype(int) - expected).mean() < 2  # JPEG's own error only
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(pixels).save(tmp_path / "r.jpg", icc_profile=icc, quality=100, subsampling=0, exif=exif.tobytes())
    assert np.array_equal(read_image(tmp_path / "r.jpg"), np.rot90(plain, -1))


def test_broken_profile_reads_as_srgb_without_warnings(tmp_path):
    pixels = np.random.default_rng(2).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "bad.png", icc_profile=b"not a profile" * 20)
    grey_profile = _icc_matrix_profile(_srgb_columns(), 1.0)[:-4]  # truncated
    Image.fromarray(pixels).save(tmp_path / "cut.png", icc_profile=grey_profile)
    with _no_warnings():
        assert np.array_equal(read_image(tmp_path / "bad.png"), pixels)
        assert np.array_equal(read_image(tmp_path / "cut.png"), pixels)


def test_outputs_state_srgb_and_round_trip_unchanged(tmp_path):
    from PIL import ImageCms

    from gsad.imaging.io import srgb_icc_bytes

    pixels = np.random.default_rng(3).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    for suffix in (".png", ".tif", ".webp", ".jpg"):
        path = write_image(tmp_path / f"o{suffix}", pixels)
        with Image.open(path) as img:
            icc = img.info.get("icc_profile")
        assert icc == srgb_icc_bytes(), suffix
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
        assert "sRGB" in profile.profile_description and profile.xcolor_space.strip() == "RGB"
    assert np.array_equal(read_image(tmp_path / "o.png"), pixels)  # gsad's own output reads back exactly
    assert np.array_equal(read_image(tmp_path / "o.tif"), pixels)
    assert write_image(tmp_path / "p.png", pixels).read_bytes() == (tmp_path / "o.png").read_bytes()  # stable
    # Another writer's sRGB profile (here littleCMS's, with its own date) is a no-op too.
    Image.fromarray(pixels).save(tmp_path / "s.png",
                                 icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert np.array_equal(read_image(tmp_path / "s.png"), pixels)


# ----------------------------------------------------------------------------------------
# C decoders' own messages (issue 24, case 19)
# ----------------------------------------------------------------------------------------


def _corrupt_lzw_tiff(path):
    """An LZW TIFF whose strip is overwritten with noise: libtiff prints "Using code not yet in table."."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, compression="tiff_lzw")
    with Image.open(path) as img:
        offset, length = img.tag_v2[273][0], img.tag_v2[279][0]
    data = bytearray(path.read_bytes())
    for i in range(offset + 50, offset + length - 10, 7):
        data[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    return path


def test_libtiff_messages_never_reach_stderr(tmp_path):
    """In a fresh process (the real fd 2): only gsad's line, and fd 2 works again afterwards."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import gsad

    path = _corrupt_lzw_tiff(tmp_path / "c.tif")
    script = (
        "import os, sys\n"
        "from gsad.errors import InputError\n"
        "from gsad.imaging.io import read_image\n"
        "try:\n"
        "    read_image(sys.argv[1])\n"
        "except InputError as exc:\n"
        "    print(f'gsad: error: {exc}', file=sys.stderr)\n"
        "os.write(2, b'fd 2 restored\\n')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(gsad.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, env=env,
                          timeout=120)
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and lines[1] == "fd 2 restored", done.stderr
    assert lines[0].startswith(f"gsad: error: {path}: unreadable or truncated image"), done.stderr


def test_quiet_native_stderr_overlaps_across_threads_and_restores(capfd):
    """Blocks that overlap in two threads share one redirect; fd 2 comes back when the last one leaves."""
    import os
    import threading

    from gsad.imaging.io import quiet_native_stderr

    entered, leave = threading.Event(), threading.Event()

    def other():
        with quiet_native_stderr():
            entered.set()
            leave.wait(10)

    os.write(2, b"before\n")
    worker = threading.Thread(target=other)
    worker.start()
    entered.wait(10)
    with quiet_native_stderr():
        os.write(2, b"hidden 1\n")
        leave.set()
        worker.join(10)
        os.write(2, b"hidden 2\n")  # the other thread has left; this block still holds the redirect
        with quiet_native_stderr():
            os.write(2, b"hidden 3\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "before\nafter\n"


# ----------------------------------------------------------------------------------------
# one rule for image files (issue 24, case 22)
# ----------------------------------------------------------------------------------------


def test_folder_walk_takes_every_file_pillow_reads_back(tmp_path):
    """A folder holds an image file exactly when Pillow can read its format here (GIF included);
    files of formats Pillow only identifies (MPEG, HDF5) or cannot read are not images."""
    pixels = np.random.default_rng(5).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    written = []
    for suffix, fmt in sorted(Image.registered_extensions().items()):
        if fmt not in Image.SAVE:
            continue
        path = tmp_path / f"x_{suffix[1:]}{suffix}"
        try:
            Image.fromarray(pixels).save(path, format=fmt)
            read_image(path)
        except Exception:  # a mode this format cannot hold, or no decoder here (EPS without Ghostscript)
            path.unlink(missing_ok=True)
            continue
        written.append(path.name)
    assert {"x_gif.gif", "x_png.png", "x_tga.tga", "x_qoi.qoi", "x_tif.tif"} <= set(written)
    for name in ("notes.txt", "data.h5", "clip.mpg", "doc.pdf", "raw.dng.xmp"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == sorted(written)


def test_without_pillow_heif_the_error_names_the_extra(tmp_path, monkeypatch):
    import builtins

    from PIL import Image as PILImage

    path = tmp_path / "a.heic"
    path.write_bytes(b"x" * 64)
    monkeypatch.delitem(PILImage.OPEN, "HEIF", raising=False)
    real_import = builtins.__import__

    def no_heif(name, *args, **kwargs):
        if name.startswith("pillow_heif"):
            raise ImportError("No module named 'pillow_heif'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_heif)
    with pytest.raises(InputError, match=r'a.heic: HEIF images need pip install "gsad\[formats\]"'):
        read_image(path)
