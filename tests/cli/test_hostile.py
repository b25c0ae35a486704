"""Hostile input through the CLI (issue 13): every case gives a result or one line `gsad: error: ...`
with a non-zero exit, and no input or existing file changes (hashed before and after)."""

import json
import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from gsad.checkpoints import read_metadata, save_checkpoint
from gsad.cli import main
from gsad.config import PRESETS, SamplerConfig
from gsad.enhance.enhancer import Enhancer
from gsad.imaging.io import read_image
from gsad.network import UNet


def _save(path, value, size=(20, 28)):
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def _lines(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line[line.index("gsad: error: "):] for line in re.split(r"[\r\n]", err) if "gsad: error: " in line]


def _pairs(tmp_path):
    """A one-pair dataset tmp_path/pairs/{low,high}/a.png."""
    pairs = tmp_path / "pairs"
    for side in ("low", "high"):
        (pairs / side).mkdir(parents=True)
        _save(pairs / side / "a.png", 30)
    return pairs


def _run(argv, capsys, code=1):
    """main(argv) must exit ``code`` with only one-line errors; returns those lines."""
    assert main(argv) == code
    return _lines(capsys)


# --- 1. input protection ----------------------------------------------------------------------


def _replace_input(path):
    return (f"gsad: error: {path}: output would replace an input of this run (refused even with --overwrite); "
            "choose another output")


def _enhance_onto_itself(tmp_path, ckpt):
    src = _save(tmp_path / "in.png", 30)
    return ["enhance", str(src), "-o", str(src), "--overwrite", "--checkpoint", str(ckpt)], [src]


def _enhance_folder_into_itself(tmp_path, ckpt):
    d = tmp_path / "D"
    d.mkdir()
    _save(d / "x.jpg", 20)  # x.jpg -> x.png, which is the other input
    _save(d / "x.png", 40)  # x.png -> x.png, itself
    return ["enhance", str(d), "-o", str(d), "--overwrite", "--checkpoint", str(ckpt)], [d / "x.png"] * 2


def _enhance_onto_a_link(kind):
    def case(tmp_path, ckpt):
        src = _save(tmp_path / "in.png", 30)
        link = tmp_path / f"{kind}.png"
        link.symlink_to(src) if kind == "symlink" else os.link(src, link)
        return ["enhance", str(src), "-o", str(link), "--overwrite", "--checkpoint", str(ckpt)], [link]
    return case


def _synthesize_into_its_photos(tmp_path, ckpt):
    photos = tmp_path / "pairs" / "high"
    photos.mkdir(parents=True)
    for name in ("a.png", "b.png"):
        _save(photos / name, 200)
    return ["synthesize", str(photos), "-o", str(tmp_path / "pairs"), "--overwrite"], [photos / "a.png"]


def _evaluate_csv_over_a_prediction(tmp_path, ckpt):
    pairs = _pairs(tmp_path)
    target = pairs / "low" / "a.png"
    return ["evaluate", "--data", str(pairs), "--predictions", str(pairs / "low"), "--csv", str(target),
            "--overwrite"], [target]


def _evaluate_report_over_the_checkpoint(tmp_path, ckpt):
    pairs = _pairs(tmp_path)
    return ["evaluate", "--data", str(pairs), "--checkpoint", str(ckpt), "--report", str(ckpt), "--overwrite"], [ckpt]


def _evaluate_outputs_into_the_low_folder(tmp_path, ckpt):
    pairs = _pairs(tmp_path)
    return ["evaluate", "--data", str(pairs), "--checkpoint", str(ckpt), "--device", "cpu", "--steps", "2",
            "--outputs", str(pairs / "low"), "--overwrite"], [pairs / "low" / "a.png"]


@pytest.mark.parametrize("case", [
    _enhance_onto_itself,
    _enhance_folder_into_itself,
    _enhance_onto_a_link("symlink"),
    _enhance_onto_a_link("hard-link"),
    _synthesize_into_its_photos,
    _evaluate_csv_over_a_prediction,
    _evaluate_report_over_the_checkpoint,
    _evaluate_outputs_into_the_low_folder,
], ids=["enhance-onto-itself", "enhance-folder-into-itself", "enhance-onto-a-symlink", "enhance-onto-a-hard-link",
        "synthesize-into-its-photos", "evaluate-csv-over-a-prediction", "evaluate-report-over-the-checkpoint",
        "evaluate-outputs-into-the-low-folder"])
def test_no_command_replaces_an_input(case, tiny_checkpoint, tmp_path, capsys, file_hashes):
    """Naming an input (or a link to one) as an output is refused even with --overwrite, in one
    line per clash, and nothing changes: not the inputs, not the checkpoint, no new files."""
    argv, clashes = case(tmp_path, tiny_checkpoint)
    before = file_hashes(tmp_path, tiny_checkpoint)
    assert _run(argv, capsys) == [_replace_input(path) for path in clashes]
    assert file_hashes(tmp_path, tiny_checkpoint) == before


def test_two_inputs_with_one_output_name_are_refused(tiny_checkpoint, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _save(a / "x.png", 20)
    _save(b / "x.jpg", 60)
    _save(b / "y.png", 60)
    out = tmp_path / "out"
    lines = _run(["enhance", str(a), str(b), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                  "--sampler", "ddim"], capsys)
    assert lines == [f"gsad: error: {out / 'x.png'}: would be written twice, for {a / 'x.png'} and for "
                     f"{b / 'x.jpg'}; rename one of them or use separate output folders"]
    assert sorted(p.name for p in out.iterdir()) == ["x.png", "y.png"]
    expected = Enhancer(tiny_checkpoint, device="cpu").enhance(read_image(a / "x.png"), sampler="ddim")
    assert np.array_equal(read_image(out / "x.png"), expected)  # written once, from the first input


# --- 2. non-finite and absurd values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "9999"], "argument --steps: must be a whole number from 1 to 1000, got 9999"),
        (["--steps", "2.5"], "argument --steps: expected a whole number, got '2.5'"),
        (["--exposure", "nan"], "argument --exposure: must be a number in [-10, 10] stops, got nan"),
        (["--exposure", "inf"], "argument --exposure: must be a number in [-10, 10] stops, got inf"),
        (["--exposure", "100"], "argument --exposure: must be a number in [-10, 10] stops, got 100.0"),
        (["--beta-end", "nan"], "argument --beta-end: must be a number in (0, 1), got nan"),
        (["--seed", "18446744073709551615"],
         "argument --seed: must be a whole number from 0 to 4294967295, got 18446744073709551615"),
        (["--seed", "-1"], "argument --seed: must be a whole number from 0 to 4294967295, got -1"),
        (["--tile", "-5"], "argument --tile: must be a whole number from 0 to 65536, got -5"),
        (["--max-megapixels", "0"], "argument --max-megapixels: must be a number in (0, 1e+06], got 0.0"),
    ],
)
def test_absurd_numbers_are_refused_when_parsed(tiny_checkpoint, tmp_path, capsys, flags, message, file_hashes):
    src = _save(tmp_path / "in.png", 30)
    before = file_hashes(tmp_path)
    lines = _run(["enhance", str(src), "-o", str(tmp_path / "o.png"), "--checkpoint", str(tiny_checkpoint), *flags],
                 capsys, code=2)
    assert lines == [f"gsad: error: {message} (see 'gsad enhance --help')"]
    assert file_hashes(tmp_path) == before


@pytest.mark.parametrize("sampler", ["reference", "ddim", "dpmpp"])
def test_schedules_that_underflow_are_refused_with_the_valid_range(
    tiny_checkpoint, tmp_path, capsys, sampler, file_hashes, monkeypatch
):
    src = _save(tmp_path / "in.png", 30)
    betas = ["--beta-start", "2e-3", "--beta-end", "0.7"]
    base = ["enhance", str(src), "--checkpoint", str(tiny_checkpoint), "--sampler", sampler, *betas]
    before = file_hashes(tmp_path)
    for steps in (400, 143):  # far beyond and just beyond the boundary
        lines = _run([*base, "-o", str(tmp_path / "o.png"), "--steps", str(steps)], capsys)
        assert lines == [f"gsad: error: steps: {steps} steps of beta 0.002 -> 0.7 drive alpha_bar below 1e-30, which "
                         "float32 sampling cannot represent; with these betas use 1 to 142 steps (or smaller betas)"]
    assert file_hashes(tmp_path) == before
    # The most steps allowed still give a non-black image: the float32 schedule tables (1/sqrt(alpha_bar)
    # down to ~1e15) stay finite through all 142 steps. What is checked is the sampler's arithmetic, not
    # the network's, so a cheap stand-in predicts eps (the noisy-image half of its input, exact at pure
    # noise) instead of 142 tiny-U-Net forwards (60-100 s on a busy CPU).
    forwards = []

    def stand_in(self, x, noise_level, **kwargs):
        forwards.append(1)
        return x[:, 3:].clone(), None

    monkeypatch.setattr(UNet, "forward", stand_in)
    out = tmp_path / "ok.png"
    assert main([*base, "-o", str(out), "--steps", "142", "--start", "exposure"]) == 0
    assert len(forwards) >= 142  # the whole trajectory ran (plus any fast-path probe)
    assert read_image(out).max() > 0


def test_convert_refuses_settings_that_would_break_later_runs(tiny_checkpoint, tmp_path, capsys):
    target = tmp_path / "c.safetensors"
    lines = _run(["convert", str(tiny_checkpoint), str(target), "--steps", "9999"], capsys, code=2)
    assert lines == ["gsad: error: argument --steps: must be a whole number from 1 to 1000, got 9999 "
                     "(see 'gsad convert --help')"]
    lines = _run(["convert", str(tiny_checkpoint), str(target), "--seed", "99999999999999999999999"], capsys, code=2)
    assert lines == ["gsad: error: argument --seed: must be a whole number from 0 to 4294967295, got "
                     "99999999999999999999999 (see 'gsad convert --help')"]
    lines = _run(["convert", str(tiny_checkpoint), str(target), "--steps", "500", "--beta-end", "0.9"], capsys)
    assert lines[0].startswith("gsad: error: steps: 500 steps of beta 0.002 -> 0.9 drive alpha_bar below 1e-30")
    assert not target.exists()


def test_nan_weights_are_named_and_nothing_is_written(tmp_path, capsys):
    torch.manual_seed(0)
    model = UNet(PRESETS["tiny"])
    with torch.no_grad():
        model.out_conv.weight[0, 0, 0, 0] = float("nan")
    ckpt = save_checkpoint(tmp_path / "nan.safetensors", model, SamplerConfig(steps=2, beta_start=2e-3))
    src = _save(tmp_path / "in.png", 30)
    lines = _run(["enhance", str(src), "-o", str(tmp_path / "o.png"), "--checkpoint", str(ckpt)], capsys)
    assert lines == [f"gsad: error: {ckpt}: tensor out_conv.weight holds NaN or infinite values (a diverged or "
                     "corrupt model); it would only produce black images"]
    assert not (tmp_path / "o.png").exists()


# --- 3. decompression bombs ------------------------------------------------------------------------


def test_images_over_the_pixel_limit_are_skipped_in_a_folder_run(
    tiny_checkpoint, tmp_path, capsys, file_hashes, png_header_only
):
    d = tmp_path / "in"
    d.mkdir()
    _save(d / "a.png", 30)
    png_header_only(d / "b_bomb.png", 12000, 12000)
    png_header_only(d / "c_huge.png", 40000, 40000)
    _save(d / "d.png", 50)
    before = file_hashes(d)
    out = tmp_path / "out"
    lines = _run(["enhance", str(d), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--sampler", "ddim"], capsys)
    assert lines == [
        f"gsad: error: {d / 'b_bomb.png'}: 12000 x 12000 is 144.0 megapixels, over the limit of 50 megapixels "
        "(use --max-megapixels to raise it)",
        f"gsad: error: {d / 'c_huge.png'}: 40000 x 40000 is 1600.0 megapixels, over the limit of 50 megapixels "
        "(use --max-megapixels to raise it)",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "d.png"]  # the good images after them are enhanced
    assert file_hashes(d) == before
    # a lower limit refuses a small image the same way
    lines = _run(["enhance", str(d / "a.png"), "-o", str(tmp_path / "x.png"), "--checkpoint", str(tiny_checkpoint),
                  "--max-megapixels", "0.0001"], capsys)
    assert lines == [f"gsad: error: {d / 'a.png'}: 28 x 20 is 0.0 megapixels, over the limit of 0.0001 megapixels "
                     "(use --max-megapixels to raise it)"]


# --- 4. numbers in checkpoint metadata --------------------------------------------------------------


def _with_metadata(tmp_path, tiny_checkpoint, key, change):
    from safetensors.torch import load_file, save_file

    meta = read_metadata(tiny_checkpoint)
    data = json.loads(meta[key])
    data.update(change)
    meta[key] = json.dumps(data)
    path = tmp_path / "edited.safetensors"
    save_file(load_file(str(tiny_checkpoint)), str(path), metadata=meta)
    return path


@pytest.mark.parametrize(
    "key, change, message",
    [
        ("gsad.sampler", {"seed": 99999999999999999999999},
         "seed: must be a whole number from 0 to 4294967295, got 99999999999999999999999"),
        ("gsad.sampler", {"steps": 9999}, "steps: must be a whole number from 1 to 1000, got 9999"),
        ("gsad.network", {"norm_groups": 0}, "network: norm_groups must be a whole number from 1 to 8192, got 0"),
        ("gsad.network", {"base_channels": 10**6},
         "network: base_channels must be a whole number from 1 to 8192, got 1000000"),
    ],
)
def test_bad_checkpoint_metadata_is_one_line(tiny_checkpoint, tmp_path, capsys, key, change, message):
    ckpt = _with_metadata(tmp_path, tiny_checkpoint, key, change)
    src = _save(tmp_path / "in.png", 30)
    lines = _run(["enhance", str(src), "-o", str(tmp_path / "o.png"), "--checkpoint", str(ckpt)], capsys)
    assert len(lines) == 1 and lines[0].startswith(f"gsad: error: {ckpt}: bad gsad metadata (")
    assert message in lines[0]
    assert not (tmp_path / "o.png").exists()


# --- 5. output paths that cannot be written ------------------------------------------------------------


def test_folder_input_with_an_existing_file_as_output(tiny_checkpoint, tmp_path, capsys, file_hashes):
    d = tmp_path / "in"
    d.mkdir()
    _save(d / "a.png", 30)
    out = tmp_path / "taken.txt"
    out.write_text("keep me")
    before = file_hashes(tmp_path)
    lines = _run(["enhance", str(d), "-o", str(out), "--checkpoint", str(tiny_checkpoint)], capsys)
    assert lines == [f"gsad: error: {out}: exists and is not a folder; several images or a folder input need an "
                     "output folder"]
    assert file_hashes(tmp_path) == before


def _blocked(tmp_path):
    """A path whose parent is a regular file: unwritable for root too."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker


def test_outputs_under_an_unwritable_path_are_one_line(tiny_checkpoint, tmp_path, capsys, file_hashes):
    blocker = _blocked(tmp_path)
    d = tmp_path / "in"
    d.mkdir()
    src = _save(d / "a.png", 30)
    pairs = _pairs(tmp_path)
    before = file_hashes(tmp_path)
    cases = [
        (["enhance", str(d), "-o", str(blocker / "sub" / "out")], blocker / "sub" / "out"),
        (["enhance", str(src), "-o", str(blocker / "sub" / "o.png")], blocker / "sub" / "o.png"),
        (["convert", str(tiny_checkpoint), str(blocker / "c.safetensors")], blocker / "c.safetensors"),
        (["evaluate", "--data", str(pairs), "--predictions", str(pairs / "low"), "--report",
          str(blocker / "r.json")], blocker / "r.json"),
        (["synthesize", str(d), "-o", str(blocker / "syn")], blocker / "syn" / "low"),
        (["evaluate", "--data", str(pairs), "--checkpoint", str(tiny_checkpoint), "--outputs",
          str(blocker / "sub" / "outs")], blocker / "sub" / "outs"),  # refused before any image is enhanced
    ]
    for argv, path in cases:
        if argv[0] == "enhance":
            argv += ["--checkpoint", str(tiny_checkpoint)]
        lines = _run(argv, capsys)
        assert lines == [f"gsad: error: {path}: cannot write ({blocker} is not a folder)"], argv
    assert file_hashes(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the test below covers it")
def test_read_only_folder(tiny_checkpoint, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    src = _save(tmp_path / "a.png", 30)
    ro.chmod(0o555)
    try:
        lines = _run(["enhance", str(src), "-o", str(ro / "sub" / "o.png"), "--checkpoint", str(tiny_checkpoint)],
                     capsys)
        assert lines == [f"gsad: error: {ro / 'sub' / 'o.png'}: cannot write ({ro}: permission denied)"]
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), OSError(28, "No space left on device"),
                                   IsADirectoryError(21, "Is a directory")])
def test_any_os_error_at_the_write_boundary_is_one_line(
    tiny_checkpoint, tmp_path, capsys, monkeypatch, error, file_hashes
):
    """What os.access cannot foresee (root on a read-only mount, a full disk) still gives one line."""
    src = _save(tmp_path / "a.png", 30)
    pairs = _pairs(tmp_path)
    before = file_hashes(tmp_path)

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("gsad.files.os.replace", fail)
    cases = [
        (["enhance", str(src), "-o", str(tmp_path / "o.png"), "--checkpoint", str(tiny_checkpoint)], "o.png"),
        (["convert", str(tiny_checkpoint), str(tmp_path / "c.safetensors")], "c.safetensors"),
        (["evaluate", "--data", str(pairs), "--predictions", str(pairs / "low"), "--report", str(tmp_path / "r.json")],
         "r.json"),
    ]
    for argv, name in cases:
        lines = _run(argv, capsys)
        assert lines == [f"gsad: error: {tmp_path / name}: cannot write ({error.strerror})"]
    assert file_hashes(tmp_path) == before  # the temporary files are gone too


def test_evaluate_report_pointing_at_a_folder(tmp_path, capsys):
    pairs = _pairs(tmp_path)
    folder = tmp_path / "reports"
    folder.mkdir()
    lines = _run(["evaluate", "--data", str(pairs), "--predictions", str(pairs / "low"), "--report", str(folder)],
                 capsys)
    assert lines == [f"gsad: error: {folder}: is a folder; name an output file"]
    assert list(folder.iterdir()) == []


# --- 6. reports never replace files without --overwrite ----------------------------------------------


def test_evaluate_reports_refuse_existing_files(tmp_path, capsys, file_hashes):
    pairs = _pairs(tmp_path)
    preds = tmp_path / "preds"
    preds.mkdir()
    _save(preds / "a.png", 40)
    other = _save(tmp_path / "other.png", 99)
    before = file_hashes(tmp_path)
    base = ["evaluate", "--data", str(pairs), "--predictions", str(preds)]
    for flag in ("--csv", "--report"):
        assert main([*base, flag, str(other)]) == 1
        captured = capsys.readouterr()
        assert captured.err.splitlines()[-1] == f"gsad: error: {other}: output exists (use --overwrite to replace it)"
        assert "PSNR" not in captured.out  # refused before anything was scored
    assert file_hashes(tmp_path) == before
    assert main([*base, "--csv", str(other), "--overwrite"]) == 0
    assert other.read_text().startswith("name,psnr,ssim")


def test_tuned_checkpoint_never_replaces_an_existing_file(tiny_checkpoint, tmp_path, capsys, file_hashes):
    pairs = _pairs(tmp_path)
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"someone's file")
    before = file_hashes(tmp_path)
    lines = _run(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(pairs), "--steps", "1",
                  "--output", str(taken)], capsys)
    assert lines == [f"gsad: error: {taken}: output exists (use --overwrite to replace it)"]
    assert file_hashes(tmp_path) == before


def test_sub_folder_that_cannot_be_made_is_one_line(tiny_checkpoint, tmp_path, capsys, monkeypatch, file_hashes):
    """A read-only parent as root sees it: making the sub-folder fails with PermissionError."""
    d = tmp_path / "in"
    d.mkdir()
    src = _save(d / "a.png", 30)
    before = file_hashes(tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("os.mkdir", refuse)
    for source, out, named in ((src, tmp_path / "sub" / "o.png", tmp_path / "sub" / "o.png"),
                               (d, tmp_path / "sub" / "out", tmp_path / "sub" / "out" / "a.png")):
        lines = _run(["enhance", str(source), "-o", str(out), "--checkpoint", str(tiny_checkpoint)], capsys)
        assert lines == [f"gsad: error: {named}: cannot write (Permission denied)"]
    assert file_hashes(tmp_path) == before and not (tmp_path / "sub").exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--lr", "nan"], "argument --lr: must be a number in (0, 1], got nan"),
        (["train", "--seed", "18446744073709551616"],
         "argument --seed: must be a whole number from 0 to 4294967295, got 18446744073709551616"),
        (["train", "--sampler-steps", "5000"],
         "argument --sampler-steps: must be a whole number from 1 to 1000, got 5000"),
        (["train", "--num-workers", "-2"], "argument --num-workers: must be a whole number from 0 to 256, got -2"),
        (["tune-schedule", "--checkpoint", "c", "--data", "d", "--steps", "5,9999"],
         "argument --steps: must be a whole number from 1 to 1000, got 9999"),
        (["tune-schedule", "--checkpoint", "c", "--data", "d", "--beta-ends", "0.5,inf"],
         "argument --beta-ends: must be a number in (0, 1), got inf"),
        (["synthesize", "--bundled", "-o", "x", "--seed", "1.5"],
         "argument --seed: expected a whole number, got '1.5'"),
    ],
)
def test_other_commands_check_numbers_with_the_same_rules(capsys, argv, message):
    assert _run(argv, capsys, code=2) == [f"gsad: error: {message} (see 'gsad {argv[0]} --help')"]
