import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gsad.cli import main
from gsad.imaging.io import read_image


def _write(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_fixture_reproduced_by_the_cli(reference_dir, tmp_path):
    out = tmp_path / "out.png"
    code = main(["enhance", str(reference_dir / "low.png"), "-o", str(out), "--checkpoint",
                 str(reference_dir / "gen.pth"), "--sampler", "reference", "--steps", "20",
                 "--beta-start", "6e-4", "--beta-end", "0.88", "--seed", "4088"])
    assert code == 0
    diff = np.abs(read_image(out).astype(int) - read_image(reference_dir / "expected.png").astype(int))
    assert diff.mean() <= 1.0


def test_folder_run_skips_broken_files_and_reports(tiny_checkpoint, dark_image, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "a.png", dark_image)
    _write(src / "b.jpg", dark_image)
    (src / "broken.png").write_bytes(b"not really a png")
    (src / "empty.png").write_bytes(b"")
    out = tmp_path / "out"
    code = main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint)])
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    err = capsys.readouterr().err
    assert "broken.png: not an image file" in err and "empty.png: empty file" in err
    assert "Traceback" not in err
    assert read_image(out / "a.png").shape == dark_image.shape


def test_existing_output_needs_overwrite(tiny_checkpoint, dark_image, tmp_path, capsys):
    inp = _write(tmp_path / "in.png", dark_image)
    out = _write(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8))
    assert main(["enhance", str(inp), "-o", str(out), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert "out.png: output exists" in capsys.readouterr().err
    assert read_image(out).shape == (2, 2, 3)  # untouched
    assert main(["enhance", str(inp), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--overwrite"]) == 0
    assert read_image(out).shape == dark_image.shape


def test_checkpoint_default_is_the_bundled_model(dark_image, tmp_path):
    inp = _write(tmp_path / "in.png", dark_image)
    quick = ["--steps", "1", "--ensemble", "1", "--precision", "fp32"]
    assert main(["enhance", str(inp), "-o", str(tmp_path / "a.png"), *quick]) == 0
    assert main(["enhance", str(inp), "-o", str(tmp_path / "b.png"), "--checkpoint", "default", *quick]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.mark.parametrize(
    "args, message",
    [
        (["{missing}", "-o", "{out}"], "no such file or folder"),
        (["{img}", "-o", "{out}", "--checkpoint", "{missing}"], "no such checkpoint"),
        (["{img}", "-o", "{out}", "--checkpoint", "{garbage}"], "not a PyTorch checkpoint"),
        (["{img}", "-o", "{outbad}", "--checkpoint", "{ckpt}"], "unknown output image format"),
    ],
)
def test_bad_inputs_give_one_line(tiny_checkpoint, dark_image, tmp_path, capsys, args, message):
    paths = {
        "missing": tmp_path / "missing.png",
        "out": tmp_path / "o.png",
        "outbad": tmp_path / "o.xyz",
        "img": _write(tmp_path / "i.png", dark_image),
        "garbage": tmp_path / "g.pth",
        "ckpt": tiny_checkpoint,
    }
    paths["garbage"].write_bytes(b"\x00garbage" * 10)
    code = main(["enhance", *[a.format(**paths) for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert any(message in line for line in err) and all("Traceback" not in line for line in err)
    assert not (tmp_path / "o.png").exists()


def test_steps_below_one_is_a_usage_error(tiny_checkpoint, dark_image, tmp_path, capsys):
    inp = _write(tmp_path / "i.png", dark_image)
    assert main(["enhance", str(inp), "-o", str(tmp_path / "o.png"), "--steps", "0"]) == 2
    assert "argument --steps: must be a whole number from 1 to 1000, got 0" in capsys.readouterr().err


def test_grey_rgba_16bit_and_rotated_inputs_keep_size_and_orientation(tiny_checkpoint, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((9, 13), 30, np.uint8), "L").save(src / "grey.png")
    Image.fromarray(np.full((9, 13, 4), 30, np.uint8), "RGBA").save(src / "rgba.png")
    Image.fromarray(np.full((9, 13), 9000, np.uint16)).save(src / "deep.png")
    img = Image.fromarray(np.full((9, 13, 3), 30, np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 8
    img.save(src / "rotated.jpg", exif=exif.tobytes())
    out = tmp_path / "out"
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--sampler", "ddim"]) == 0
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"grey.png": (13, 9), "rgba.png": (13, 9), "deep.png": (13, 9), "rotated.png": (9, 13)}


def test_python_dash_m_subprocess(tiny_checkpoint, dark_image, tmp_path):
    inp = _write(tmp_path / "i.png", dark_image)
    out = tmp_path / "res" / "o.png"
    run = subprocess.run([sys.executable, "-m", "gsad", "enhance", str(inp), "-o", str(out),
                          "--checkpoint", str(tiny_checkpoint)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert read_image(out).shape == dark_image.shape
    bad = subprocess.run([sys.executable, "-m", "gsad", "enhance", str(tmp_path / "nope.png"), "-o",
                          str(tmp_path / "x.png"), "--checkpoint", str(tiny_checkpoint)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and bad.stderr.strip() == f"gsad: error: {tmp_path / 'nope.png'}: no such file or folder"


def test_exposure_and_tile_flags(tiny_checkpoint, dark_image, tmp_path):
    inp = _write(tmp_path / "i.png", dark_image)
    base = ["enhance", str(inp), "--checkpoint", str(tiny_checkpoint), "--sampler", "ddim"]
    assert main([*base, "-o", str(tmp_path / "a.png")]) == 0
    assert main([*base, "-o", str(tmp_path / "b.png"), "--exposure", "1"]) == 0
    assert main([*base, "-o", str(tmp_path / "c.png"), "--tile", "16"]) == 0
    a, b = read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png")
    assert b.astype(int).sum() > a.astype(int).sum()
    assert read_image(tmp_path / "c.png").shape == a.shape
    assert main([*base, "-o", str(tmp_path / "d.png"), "--start", "exposure"]) == 0
    assert main([*base, "-o", str(tmp_path / "e.png"), "--start", "exposure", "--tile", "16"]) == 0
    assert not np.array_equal(read_image(tmp_path / "d.png"), a)
    assert read_image(tmp_path / "e.png").shape == a.shape


def test_fp16_on_cpu_is_a_clear_error(tiny_checkpoint, dark_image, tmp_path, capsys):
    inp = _write(tmp_path / "i.png", dark_image)
    code = main(["enhance", str(inp), "-o", str(tmp_path / "o.png"), "--checkpoint", str(tiny_checkpoint),
                 "--device", "cpu", "--precision", "fp16"])
    assert code == 1 and "fp16 needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_ensemble_flag(tiny_checkpoint, dark_image, tmp_path, capsys):
    from gsad.enhance.enhancer import Enhancer

    inp = _write(tmp_path / "i.png", dark_image)
    base = ["enhance", str(inp), "--checkpoint", str(tiny_checkpoint), "--sampler", "ddim", "--start", "exposure"]
    assert main([*base, "-o", str(tmp_path / "e2.png"), "--ensemble", "2"]) == 0
    expected = Enhancer(tiny_checkpoint, device="cpu").enhance(dark_image, sampler="ddim", start="exposure", ensemble=2)
    assert np.array_equal(read_image(tmp_path / "e2.png"), expected)
    # transposed views go through tiling too (20 x 28 becomes 28 x 20)
    assert main([*base, "-o", str(tmp_path / "t.png"), "--ensemble", "6", "--tile", "16"]) == 0
    assert read_image(tmp_path / "t.png").shape == dark_image.shape
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "bad.png"), "--ensemble", "9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["gsad: error: argument --ensemble: must be a whole number from 1 to 8, got 9 "
                   "(see 'gsad enhance --help')"]
    assert not (tmp_path / "bad.png").exists()


def test_learned_exposure_start_runs_end_to_end(tiny_checkpoint, dark_image, tmp_path):
    from gsad.enhance.enhancer import Enhancer

    inp, out = _write(tmp_path / "i.png", dark_image), tmp_path / "o.png"
    assert main(["enhance", str(inp), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                 "--start", "learned-exposure"]) == 0
    expected = Enhancer(tiny_checkpoint, device="cpu").enhance(dark_image, start="learned-exposure")
    assert np.array_equal(read_image(out), expected)


def test_unusable_exposure_weights_are_one_error_line(tiny_checkpoint, dark_image, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "exposure.safetensors"
    bad.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    inp = _write(tmp_path / "i.png", dark_image)
    argv = ["enhance", str(inp), "-o", str(tmp_path / "o.png"), "--checkpoint", str(tiny_checkpoint),
            "--start", "learned-exposure"]
    for weights in (bad, tmp_path / "missing.safetensors"):
        monkeypatch.setattr("gsad.network.exposure_net.default_weights", lambda weights=weights: weights)
        assert main(argv) == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if "error" in line]  # the rest is the progress bar
        assert len(errors) == 1 and errors[0].startswith(f"gsad: error: {weights}: ") and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()
