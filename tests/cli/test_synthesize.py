import json

import numpy as np
from PIL import Image

from gsad.cli import main
from gsad.imaging.io import read_image


def _photos(folder, n=2, size=(40, 48)):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(60, 220, (*size, 3), dtype=np.uint8)).save(folder / f"p{i}.jpg")
    return folder


def test_synthesize_then_evaluate_identity_and_checkpoint(tmp_path, tiny_checkpoint, capsys):
    photos = _photos(tmp_path / "photos")
    out = tmp_path / "pairs"
    assert main(["synthesize", str(photos), "-o", str(out), "--seed", "3"]) == 0
    assert sorted(p.name for p in (out / "low").iterdir()) == ["p0.png", "p1.png"]
    low = read_image(out / "low" / "p0.png")
    assert low.mean() < read_image(out / "high" / "p0.png").mean()
    # same seed -> same bytes, in a second folder
    assert main(["synthesize", str(photos), "-o", str(tmp_path / "again"), "--seed", "3"]) == 0
    assert (tmp_path / "again" / "low" / "p1.png").read_bytes() == (out / "low" / "p1.png").read_bytes()
    # refuses to overwrite
    assert main(["synthesize", str(photos), "-o", str(out)]) == 1
    capsys.readouterr()

    report = tmp_path / "r.json"
    assert main(["evaluate", "--data", str(out), "--predictions", str(out / "low"), "--report", str(report),
                 "--csv", str(tmp_path / "r.csv")]) == 0
    table = capsys.readouterr().out
    assert "GT-mean" in table and "plain" in table
    data = json.loads(report.read_text())
    assert data["summary"]["count"] == 2 and {"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"} <= set(data["summary"])
    assert data["summary"]["psnr_gtmean"] > data["summary"]["psnr"]  # brightness matching helps a dark input
    assert (tmp_path / "r.csv").read_text().count("\n") == 3

    assert main(["evaluate", "--data", str(out), "--checkpoint", str(tiny_checkpoint), "--steps", "1"]) == 0
    assert "PSNR" in capsys.readouterr().out


def test_evaluate_errors_are_one_line(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "none"), "--predictions", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "none" in err and "Traceback" not in err
    assert main(["synthesize", "-o", str(tmp_path / "x")]) == 1
    assert "PHOTOS_DIR or --bundled" in capsys.readouterr().err


def test_synthesize_skips_bad_photos_reports_each_and_exits_1(tmp_path, capsys):
    """Issue 24, case 23: as gsad enhance does: one line per bad photo, the good pairs written, exit 1."""
    photos = _photos(tmp_path / "photos", n=3)
    data = (photos / "p1.jpg").read_bytes()
    (photos / "p1.jpg").write_bytes(data[: len(data) // 2])
    (photos / "p2.jpg").write_bytes(b"junk")
    out = tmp_path / "pairs"
    assert main(["synthesize", str(photos), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("gsad:")]
    assert len(errors) == 2 and "Traceback" not in captured.err
    assert errors[0].startswith(f"gsad: error: {photos / 'p1.jpg'}: unreadable or truncated image")
    assert errors[1].startswith(f"gsad: error: {photos / 'p2.jpg'}: not an image file")
    assert "wrote 1 pairs" in captured.out and "2 photos skipped" in captured.out
    assert sorted(p.name for p in (out / "low").iterdir()) == sorted(p.name for p in (out / "high").iterdir()) == [
        "p0.png"]
