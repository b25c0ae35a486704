"""``gsad enhance`` with RAW, 16-bit, colour profiles, metadata and output formats (issue 27)."""

import importlib

import numpy as np
from PIL import Image

from gsad.cli import main


def _run(*argv):
    return main(["enhance", *map(str, argv), "--steps", "1", "--ensemble", "1"])


def test_dng_in_gives_a_sixteen_bit_png_with_the_camera_named(formats, tiny_checkpoint, tmp_path):
    linear = np.full((32, 48, 3), 0.05)  # LibRaw refuses RAWs of under about 22 px a side
    formats.write_dng(tmp_path / "dark.dng", linear)
    out = tmp_path / "dark.png"
    assert _run(tmp_path / "dark.dng", "-o", out, "--checkpoint", tiny_checkpoint) == 0
    assert out.read_bytes()[24] == 16  # IHDR bit depth
    with Image.open(out) as img:
        exif = img.getexif()
        assert exif[271] == "gsad" and exif[272] == "test camera" and exif[305].startswith("gsad ")
        assert "tiny.safetensors" in exif[305]


def test_exif_survives_and_can_be_stripped(tiny_checkpoint, dark_image, tmp_path):
    exif = Image.Exif()
    exif[271], exif[274] = "Canon", 8
    exif[0x8769] = {0x829A: (1, 50)}
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 30.0)}
    Image.fromarray(dark_image).save(tmp_path / "in.jpg", exif=exif.tobytes())
    assert _run(tmp_path / "in.jpg", "-o", tmp_path / "out.jpg", "--checkpoint", tiny_checkpoint,
                "--quality", "90") == 0
    with Image.open(tmp_path / "out.jpg") as img:
        got = img.getexif()
        assert got[271] == "Canon" and got[274] == 1 and got.get_ifd(0x8769)[0x829A] == (1, 50)
        assert got.get_ifd(0x8825)[2] == (48.0, 51.0, 30.0)
        assert img.size == (dark_image.shape[0], dark_image.shape[1])  # upright: orientation 8 applied
    assert _run(tmp_path / "in.jpg", "-o", tmp_path / "bare.jpg", "--checkpoint", tiny_checkpoint,
                "--strip-metadata") == 0
    with Image.open(tmp_path / "bare.jpg") as img:
        assert len(img.getexif()) == 0


def test_keep_profile_returns_the_input_profile(make_profile, tiny_checkpoint, dark_image, tmp_path):
    p3 = make_profile()
    Image.fromarray(dark_image).save(tmp_path / "p3.png", icc_profile=p3)
    assert _run(tmp_path / "p3.png", "-o", tmp_path / "kept.png", "--checkpoint", tiny_checkpoint,
                "--keep-profile") == 0
    assert _run(tmp_path / "p3.png", "-o", tmp_path / "srgb.png", "--checkpoint", tiny_checkpoint) == 0
    with Image.open(tmp_path / "kept.png") as kept, Image.open(tmp_path / "srgb.png") as srgb:
        assert kept.info["icc_profile"] == p3 and srgb.info["icc_profile"] != p3


def test_folder_keeps_names_in_the_chosen_format(tiny_checkpoint, dark_image, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(dark_image).save(src / "a.png")
    Image.fromarray(dark_image).save(src / "b.jpg")
    assert _run(src, "-o", tmp_path / "out", "--checkpoint", tiny_checkpoint, "--format", "tif",
                "--bit-depth", "16") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.tif"]
    import tifffile

    assert tifffile.imread(tmp_path / "out" / "a.tif").dtype == np.uint16


def test_sixteen_bits_to_jpeg_is_refused_in_one_line(tiny_checkpoint, dark_image, tmp_path, capsys):
    Image.fromarray(dark_image).save(tmp_path / "a.png")
    assert _run(tmp_path / "a.png", "-o", tmp_path / "a.jpg", "--checkpoint", tiny_checkpoint,
                "--bit-depth", "16") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("gsad: error: ") and "--bit-depth 16 needs a .png or .tif output" in err[-1]
    assert not (tmp_path / "a.jpg").exists()


def test_raw_without_rawpy_names_the_extra(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from gsad.imaging import raw

    (tmp_path / "a.nef").write_bytes(b"x" * 64)
    real = importlib.import_module

    def no_rawpy(name, *args):
        if name == "rawpy":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(raw.importlib, "import_module", no_rawpy)
    assert _run(tmp_path / "a.nef", "-o", tmp_path / "a.png", "--checkpoint", tiny_checkpoint) == 1
    err = capsys.readouterr().err
    assert 'gsad: error: ' in err and 'a.nef: reading camera RAW files needs pip install "gsad[formats]"' in err
    assert "Traceback" not in err
