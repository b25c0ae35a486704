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
