import csv
import json
import math

import numpy as np
import pytest
from PIL import Image

from gsad.data.layouts import find_pairs
from gsad.errors import DataError, InputError
from gsad.evaluation.evaluate import evaluate, format_table, write_report_csv, write_report_json
from gsad.evaluation.metrics import detail_ratio, score_pair


def _dataset(tmp_path, names=("a", "b")):
    rng = np.random.default_rng(0)
    for name in names:
        high = rng.integers(30, 256, (16, 20, 3), dtype=np.uint8)
        for side, img in (("high", high), ("low", high // 5)):
            (tmp_path / "data" / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(tmp_path / "data" / side / f"{name}.png")
    return find_pairs(tmp_path / "data")


def _read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def test_evaluate_with_predict_callable(tmp_path):
    pairs = _dataset(tmp_path)
    seen = []

    def predict(name, low):
        seen.append(name)
        return np.clip(low.astype(int) * 4, 0, 255).astype(np.uint8)

    report = evaluate(pairs, predict=predict, progress=False)
    assert seen == ["a", "b"]
    assert [img["name"] for img in report["images"]] == ["a", "b"]
    expected = score_pair(predict("a", _read(pairs[0].low)), _read(pairs[0].high))
    for key, value in expected.items():
        assert report["images"][0][key] == pytest.approx(value)
    summary = report["summary"]
    assert summary["count"] == 2
    for key in ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean"):
        assert summary[key] == pytest.approx(np.mean([img[key] for img in report["images"]]))
    assert "lpips" not in summary


def test_detail_ratio_per_image_and_its_median(tmp_path):
    pairs = _dataset(tmp_path, names=("a", "b", "c"))
    gains = {"a": 1.0, "b": 0.5, "c": 0.25}  # a uniform gain g scales the Laplacian variance by g**2

    def predict(name, high):
        return np.clip(high.astype(float) * gains[name], 0, 255).round().astype(np.uint8)

    # predictions from the references themselves, so the ratios are known: 1 for "a"
    report = evaluate(pairs, predict=lambda name, low: predict(name, _read(pairs[ord(name) - 97].high)), progress=False)
    ratios = [img["detail"] for img in report["images"]]
    assert ratios[0] == pytest.approx(1.0)
    assert ratios == [pytest.approx(detail_ratio(predict(p.name, _read(p.high)), _read(p.high))) for p in pairs]
    assert ratios[1] == pytest.approx(0.25, rel=0.05) and ratios[2] == pytest.approx(0.0625, rel=0.1)
    assert report["summary"]["detail"] == pytest.approx(ratios[1])  # the median, not the mean
    assert report["summary"]["detail"] < np.mean(ratios)
    assert f"detail ratio {ratios[1]:.4f} (median;" in format_table(report)


def test_evaluate_predictions_dir_and_identity(tmp_path):
    pairs = _dataset(tmp_path)
    # The identity (the dark input itself) given as another method's prediction files.
    report = evaluate(pairs, predictions_dir=tmp_path / "data" / "low", progress=False)
    identity = evaluate(pairs, predict=lambda name, low: low, progress=False)
    assert report["images"] == identity["images"]
    assert report["summary"]["psnr_gtmean"] > report["summary"]["psnr"]


def test_predictions_matched_by_high_stem_too(tmp_path):
    pairs = _dataset(tmp_path)
    preds = tmp_path / "preds"
    preds.mkdir()
    for pair in pairs:
        Image.open(pair.high).save(preds / f"{pair.name}.png")
    report = evaluate(pairs, predictions_dir=preds, progress=False)
    assert all(math.isinf(img["psnr"]) for img in report["images"])


def test_missing_and_misshapen_predictions_are_named(tmp_path):
    pairs = _dataset(tmp_path, names=("a", "b", "c"))
    preds = tmp_path / "preds"
    preds.mkdir()
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(preds / "a.png")
    with pytest.raises(DataError, match=r"no prediction for 2 of 3 images: b, c"):
        evaluate(pairs, predictions_dir=preds, progress=False)
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(preds / "b.png")
    Image.fromarray(np.zeros((8, 20, 3), np.uint8)).save(preds / "c.png")
    with pytest.raises(DataError) as err:
        evaluate(pairs, predictions_dir=preds, progress=False)
    assert "c.png is 20x8" in str(err.value) and str(pairs[2].high) in str(err.value)
    with pytest.raises(DataError, match="the prediction for a is 10x16"):
        evaluate(pairs, predict=lambda name, low: low[:, :10], progress=False)
    with pytest.raises(ValueError):
        evaluate(pairs, progress=False)


def test_table_and_reports(tmp_path):
    pairs = _dataset(tmp_path)
    report = evaluate(pairs, predictions_dir=tmp_path / "data" / "high", progress=False)  # inf PSNR
    report_b = evaluate(pairs, predict=lambda name, low: low, progress=False)
    table = format_table(report_b)
    assert "plain" in table and "GT-mean" in table and f"{report_b['summary']['psnr']:.2f}" in table
    assert "a" in format_table(report_b, per_image=True).splitlines()[1]
    assert "inf" in format_table(report)

    json_path = write_report_json(tmp_path / "out" / "report.json", report_b)
    loaded = json.loads(json_path.read_text())
    assert loaded["summary"]["psnr"] == pytest.approx(report_b["summary"]["psnr"])
    assert loaded["images"][1]["name"] == "b"
    assert json.loads(write_report_json(tmp_path / "inf.json", report).read_text())["summary"]["psnr"] is None

    csv_path = write_report_csv(tmp_path / "out" / "report.csv", report_b)
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["name"] for r in rows] == ["a", "b"]
    assert float(rows[0]["ssim_gtmean"]) == pytest.approx(report_b["images"][0]["ssim_gtmean"])
    assert list(rows[0]) == ["name", "psnr", "ssim", "psnr_gtmean", "ssim_gtmean", "detail"]
    assert not list((tmp_path / "out").glob(".*tmp"))
    # reports replace a file only when told to (the library default is the CLI's: no)
    before = csv_path.read_bytes()
    with pytest.raises(InputError, match=f"^{csv_path}: output exists \\(use --overwrite to replace it\\)$"):
        write_report_csv(csv_path, report)
    with pytest.raises(InputError, match=f"^{json_path}: output exists"):
        write_report_json(json_path, report)
    assert csv_path.read_bytes() == before
    assert write_report_csv(csv_path, report, overwrite=True).read_bytes() != before


def _small_pair_dataset(tmp_path):
    """Pairs a (16x20) and b (4x4: too small for SSIM's 7x7 window)."""
    rng = np.random.default_rng(0)
    for name, shape in (("a", (16, 20, 3)), ("b", (4, 4, 3))):
        high = rng.integers(30, 256, shape, dtype=np.uint8)
        for side, img in (("high", high), ("low", high // 5)):
            (tmp_path / "data" / side).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(tmp_path / "data" / side / f"{name}.png")
    return tmp_path / "data"


def test_images_too_small_to_score_are_named_before_anything_runs(tmp_path):
    """Issue 24, case 21: the small file is named, and predict never runs (not even on the good pair)."""
    pairs = find_pairs(_small_pair_dataset(tmp_path))
    seen = []
    with pytest.raises(DataError, match=r"high/b\.png: 4x4 is too small to score: SSIM needs at least 7x7 pixels$"):
        evaluate(pairs, predict=lambda name, low: seen.append(name) or low, progress=False)
    assert seen == []
    with pytest.raises(DataError, match=r"high/b\.png: 4x4 is too small"):
        evaluate(pairs, predictions_dir=tmp_path / "data" / "high", progress=False)


def test_cli_evaluate_names_a_small_image_before_loading_the_model(tmp_path, tiny_checkpoint, capsys, monkeypatch):
    from gsad.cli import main

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("gsad.enhance.parallel.shared_enhancer", no_model)
    data = _small_pair_dataset(tmp_path)
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(tiny_checkpoint), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gsad: error: {data / 'high' / 'b.png'}: 4x4 is too small to score: SSIM needs at least 7x7 "
                   "pixels"]
