import dataclasses

import numpy as np
import pytest
from PIL import Image

from gsad.checkpoints import load_checkpoint, read_metadata
from gsad.cli import main
from gsad.data.layouts import find_pairs
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError, DataError
from gsad.evaluation.tuning import SearchSpace, format_trials, tune_schedule


def _pairs(root):
    for sub in ("low", "high"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(2):
        high = rng.integers(50, 200, (16, 20, 3), dtype=np.uint8)
        Image.fromarray(high).save(root / "high" / f"{i}.png")
        Image.fromarray((high // 6).astype(np.uint8)).save(root / "low" / f"{i}.png")
    return root


def test_tune_schedule_tries_the_grid_and_sorts(tmp_path, tiny_checkpoint):
    pairs = find_pairs(_pairs(tmp_path / "d"))
    enh = Enhancer(tiny_checkpoint, device="cpu")
    space = SearchSpace("ddim", steps=(1, 2), beta_starts=(1e-3,), beta_ends=(0.5, 0.9))
    trials = tune_schedule(enh, pairs, space, progress=False)
    assert len(trials) == 4
    assert [t.psnr for t in trials] == sorted((t.psnr for t in trials), reverse=True)
    assert {(t.settings.steps, t.settings.beta_end) for t in trials} == {(1, 0.5), (1, 0.9), (2, 0.5), (2, 0.9)}
    assert "beta_start" in format_trials(trials)
    both = tune_schedule(enh, pairs, SearchSpace("ddim", steps=(2,), beta_starts=(1e-3,), beta_ends=(0.5,),
                                                 starts=("noise", "exposure")), progress=False)
    assert sorted(t.settings.start for t in both) == ["exposure", "noise"] and "exposure" in format_trials(both)
    by_ssim = tune_schedule(enh, pairs, dataclasses.replace(space, metric="ssim"), progress=False)
    assert [t.ssim for t in by_ssim] == sorted((t.ssim for t in trials), reverse=True)
    with pytest.raises(ConfigError, match="nothing to try"):
        tune_schedule(enh, pairs, SearchSpace("ddim", steps=(1,), beta_starts=(0.9,), beta_ends=(0.5,)), progress=False)
    with pytest.raises(ConfigError, match="unknown metric 'lpips'"):
        tune_schedule(enh, pairs, SearchSpace("ddim", steps=(1,), metric="lpips"), progress=False)


def test_tune_schedule_cli_writes_winner_into_checkpoint(tmp_path, tiny_checkpoint, capsys):
    data = _pairs(tmp_path / "d")
    out = tmp_path / "tuned.safetensors"
    code = main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--sampler", "ddim",
                 "--steps", "1,2", "--beta-starts", "1e-3", "--beta-ends", "0.6", "--output", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert table.count("ddim") >= 2
    _, sampler, meta = load_checkpoint(out)
    assert sampler.sampler == "ddim" and sampler.steps in (1, 2) and sampler.beta_end == 0.6
    assert "tuned_psnr" in " ".join(meta)
    _, original, _ = load_checkpoint(tiny_checkpoint)
    assert original.steps == 2 and original.sampler == "reference"  # untouched without in-place writing
    assert main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--steps", "x"]) == 2
    assert main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--starts", "x"]) == 2
    code = main(["tune-schedule", "--checkpoint", str(out), "--data", str(data), "--sampler", "ddim",
                 "--steps", "2", "--beta-starts", "1e-3", "--beta-ends", "0.6", "--starts", "exposure"])
    assert code == 0 and load_checkpoint(out)[1].start == "exposure"  # stored in the checkpoint (in place)
    code = main(["tune-schedule", "--checkpoint", str(out), "--data", str(data), "--sampler", "ddim",
                 "--steps", "1,2", "--beta-starts", "1e-3", "--beta-ends", "0.6", "--metric", "ssim"])
    assert code == 0 and "best by ssim" in capsys.readouterr().out
    assert read_metadata(out)["gsad.tuned_metric"] == "ssim"


def test_tune_schedule_ensembles_within_an_evaluation_budget(tmp_path, tiny_checkpoint):
    pairs = find_pairs(_pairs(tmp_path / "d"))
    enh = Enhancer(tiny_checkpoint, device="cpu")
    space = SearchSpace("ddim", steps=(1, 2, 3), beta_starts=(1e-3,), beta_ends=(0.5,), ensembles=(1, 2),
                        max_evaluations=4)
    trials = tune_schedule(enh, pairs, space, progress=False)
    # 3 x 2 = 6 evaluations is over the budget; the other five points are tried
    assert sorted((t.settings.steps, t.settings.ensemble) for t in trials) == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]
    assert all(t.evaluations == t.settings.steps * t.settings.ensemble <= 4 for t in trials)
    header, *rows = format_trials(trials).splitlines()
    assert "ens" in header and len(rows) == 5
    # ties in the metric go to the cheaper setting
    keys = [(-round(t.psnr, 3), t.evaluations) for t in trials]
    assert keys == sorted(keys)
    with pytest.raises(ConfigError, match="evaluation budget"):
        tune_schedule(enh, pairs, SearchSpace("ddim", steps=(2,), beta_ends=(0.5,), ensembles=(2,), max_evaluations=3),
                      progress=False)
    with pytest.raises(ConfigError, match="ensemble: must be a whole number from 1 to 8"):
        tune_schedule(enh, pairs, SearchSpace("ddim", steps=(1,), beta_ends=(0.5,), ensembles=(9,)), progress=False)


def test_tune_schedule_cli_stores_the_ensemble(tmp_path, tiny_checkpoint, capsys):
    data = _pairs(tmp_path / "d")
    out = tmp_path / "tuned.safetensors"
    code = main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--sampler", "ddim",
                 "--steps", "1", "--beta-starts", "1e-3", "--beta-ends", "0.6", "--ensembles", "2",
                 "--max-evaluations", "2", "--output", str(out)])
    assert code == 0 and load_checkpoint(out)[1].ensemble == 2
    assert main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--max-evaluations",
                 "0"]) == 2
    assert "--max-evaluations" in capsys.readouterr().err


class _NoModel:
    """An enhancer that must never be asked to enhance."""

    def settings(self, **overrides):
        from gsad.config import SamplerConfig

        return SamplerConfig()

    def enhance(self, *args, **kwargs):
        raise AssertionError("the model ran")


def test_small_images_and_crops_are_refused_before_the_model_runs(tmp_path):
    """Issue 24, case 21: named (file, or --crop) before any grid point runs."""
    data = _pairs(tmp_path / "d")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(data / "high" / "1.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(data / "low" / "1.png")
    pairs = find_pairs(data)
    with pytest.raises(DataError, match=r"low/1\.png: 4x4 is too small to score: SSIM needs at least 7x7 pixels$"):
        tune_schedule(_NoModel(), pairs, progress=False)
    with pytest.raises(ConfigError, match="crop: SSIM needs at least 7x7 pixels, got 4"):
        tune_schedule(_NoModel(), pairs[:1], crop=4, progress=False)


def test_tune_schedule_cli_names_a_small_image_before_loading_the_model(tmp_path, tiny_checkpoint, capsys,
                                                                        monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("gsad.enhance.enhancer.Enhancer", no_model)
    data = _pairs(tmp_path / "d")
    Image.fromarray(np.zeros((5, 30, 3), np.uint8)).save(data / "high" / "0.png")
    assert main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--dry-run"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"gsad: error: {data / 'high' / '0.png'}: 30x5 is too small to score: SSIM needs at least 7x7 pixels"]
    assert main(["tune-schedule", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--dry-run",
                 "--crop", "6"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "gsad: error: crop: SSIM needs at least 7x7 pixels, got 6"]
