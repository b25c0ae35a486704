"""The training loop: run directory, checkpoints, resume, config precedence, errors (tiny runs)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gsad.checkpoints import load_checkpoint, read_metadata, save_checkpoint
from gsad.cli import main
from gsad.config import SamplerConfig, from_dict, preset
from gsad.errors import ConfigError, ModelOutputError
from gsad.imaging.io import read_image
from gsad.network import UNet
from gsad.runtime.distributed import Context
from gsad.training import TrainConfig, load_train_config, loop, train
from gsad.training.ema import EMA
from gsad.training.order import StepSampler
from gsad.training.run_dir import find_state, mark_run_dir, read_log, read_state

TINY = dict(max_steps=3, batch_size=2, crop=32, checkpoint_every=2, log_every=1, device="cpu")


def _write_pairs(root: Path, count: int = 3, size: tuple[int, int] = (40, 48)) -> Path:
    """``root/low`` and ``root/high`` with smooth random colour images (and darker copies)."""
    rng = np.random.default_rng(0)
    (root / "low").mkdir(parents=True)
    (root / "high").mkdir()
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    for i in range(count):
        a, b, c = rng.random((3, 3))
        high = np.stack([a[k] * yy + b[k] * xx + c[k] * 0.3 for k in range(3)], -1)
        high = (np.clip(high, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(high).save(root / "high" / f"img{i}.png")
        Image.fromarray((high // 5).astype(np.uint8)).save(root / "low" / f"img{i}.png")
    return root



@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return _write_pairs(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def stage1_run(pairs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "stage1"
    config = TrainConfig(
        data=str(pairs), out=str(out), val_data=str(pairs), val_every=2, val_count=1,
        sampler=SamplerConfig(steps=2), **TINY,
    )
    return train(config)


#: The tiny teacher's stored sampler: 2 reference steps, warm start, an ensemble of 2, detail.
TEACHER_SAMPLER = SamplerConfig(steps=2, beta_start=1e-3, beta_end=0.2, seed=0, start="soft-exposure", ensemble=2,
                                detail=0.5)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A tiny stage-2 model (no uncertainty head) to distil."""
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("teacher") / "teacher.safetensors"
    save_checkpoint(path, UNet(dataclasses.replace(preset("tiny"), uncertainty_head=False)), TEACHER_SAMPLER)
    return path


def _state(run: Path) -> dict:
    return torch.load(find_state(run), map_location="cpu", weights_only=True)


def _assert_same_tensors(a, b) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same_tensors(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_tensors(x, y)
    else:
        assert a == b


# ----------------------------------------------------------------------------------------
# run directory
# ----------------------------------------------------------------------------------------


def test_run_directory_layout(stage1_run, pairs):
    files = {p.relative_to(stage1_run).as_posix() for p in stage1_run.rglob("*") if p.is_file()}
    assert files == {
        ".gsad-run", "config.yaml", "log.csv", "latest",
        "checkpoints/step_0000002.safetensors", "checkpoints/step_0000002.state.pt",
        "checkpoints/step_0000003.safetensors", "checkpoints/step_0000003.state.pt",
    }
    assert (stage1_run / "latest").read_text().strip() == "checkpoints/step_0000003.safetensors"
    assert (stage1_run / ".gsad-run").read_text() == "gsad run folder, format 1\n"
    stored = from_dict(TrainConfig, yaml.safe_load((stage1_run / "config.yaml").read_text()))
    assert stored.out == str(stage1_run) and stored.max_steps == 3 and stored.sampler.steps == 2
    rows = read_log(stage1_run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert list(rows[0]) == ["step", "loss", "lr", "steps_per_s", "val_psnr"]
    assert rows[0]["val_psnr"] == "" and float(rows[1]["val_psnr"]) > 0 and float(rows[2]["val_psnr"]) > 0
    assert all(np.isfinite(float(r["loss"])) for r in rows)


def test_latest_checkpoint_holds_ema_weights_and_notes(stage1_run):
    model, sampler, meta = load_checkpoint(stage1_run)
    assert model.uncertainty_head is not None  # stage 1 keeps its head (stage 2 needs it)
    assert sampler.steps == 2
    assert meta["gsad.stage"] == "uncertainty" and meta["gsad.step"] == "3"
    state = _state(stage1_run)
    assert state["step"] == 3
    for key, value in model.state_dict().items():
        assert torch.equal(value, state["ema"][key])
    assert any(not torch.equal(state["ema"][k], state["model"][k]) for k in state["model"])


def test_enhance_with_run_directory(stage1_run, pairs, tmp_path):
    out = tmp_path / "out.png"
    code = main(["enhance", str(pairs / "low" / "img0.png"), "-o", str(out), "--checkpoint", str(stage1_run),
                 "--steps", "2", "--device", "cpu"])
    assert code == 0
    assert read_image(out).shape == (40, 48, 3)


def test_gsad_stage_from_stage1_run(stage1_run, pairs, tmp_path):
    run = train(TrainConfig(data=str(pairs), out=str(tmp_path / "g"), stage="gsad", init=str(stage1_run),
                            **{**TINY, "max_steps": 2}))
    frozen, _, _ = load_checkpoint(run / "uncertainty.safetensors")
    stage1, _, _ = load_checkpoint(stage1_run)
    _assert_same_tensors(frozen.state_dict(), stage1.state_dict())
    model, _, meta = load_checkpoint(run)
    assert model.uncertainty_head is None and meta["gsad.stage"] == "gsad"
    rows = read_log(run)
    assert list(rows[0])[:4] == ["step", "loss", "loss_pix", "loss_structure"]
    assert float(rows[-1]["loss_structure"]) > 0


def test_stage1_from_a_stage2_model_gets_a_fresh_uncertainty_head(stage1_run, pairs, tmp_path):
    stage2 = train(TrainConfig(data=str(pairs), out=str(tmp_path / "g"), stage="gsad", init=str(stage1_run),
                               **{**TINY, "max_steps": 1}))
    model2, _, _ = load_checkpoint(stage2)
    assert model2.uncertainty_head is None
    from gsad.runtime.distributed import Context
    from gsad.training.loop import Trainer

    config = TrainConfig(data=str(pairs), out=str(tmp_path / "s1"), init=str(stage2), seed=3, **TINY)
    trainer = Trainer(config, Context(), resume=False)
    state = trainer.model.state_dict()
    head = {k for k in state if k.startswith("uncertainty_head.")}
    assert head and trainer.model.uncertainty_head is not None
    for key, value in model2.state_dict().items():  # the U-Net is the stage-2 model's
        assert torch.equal(state[key], value), key
    # The head is freshly initialised from the seed: the same seed gives the same head.
    again = Trainer(config, Context(), resume=False).model.state_dict()
    assert all(torch.equal(state[k], again[k]) for k in head)
    run = trainer.run()
    model, _, meta = load_checkpoint(run)
    assert model.uncertainty_head is not None and meta["gsad.stage"] == "uncertainty"


def test_gsad_stage_continues_a_stage2_model_with_a_given_uncertainty_model(stage1_run, pairs, tmp_path, capsys):
    from gsad.errors import CheckpointError
    from gsad.training.loop import Trainer

    stage2 = train(TrainConfig(data=str(pairs), out=str(tmp_path / "g"), stage="gsad", init=str(stage1_run),
                               **{**TINY, "max_steps": 2}))
    model2, _, _ = load_checkpoint(stage2)
    stage1, _, _ = load_checkpoint(stage1_run)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "g2"), stage="gsad", init=str(stage2),
                         uncertainty=str(stage1_run), **{**TINY, "max_steps": 1})
    trainer = Trainer(config, Context(), resume=False)
    _assert_same_tensors(trainer.model.state_dict(), model2.state_dict())  # the network goes on from --init
    _assert_same_tensors(trainer.frozen.state_dict(), stage1.state_dict())  # P from --uncertainty
    assert any(not torch.equal(trainer.model.state_dict()[k], v)  # not the stage-1 weights again
               for k, v in stage1.state_dict().items() if not k.startswith("uncertainty_head."))
    run = trainer.run()
    frozen, _, _ = load_checkpoint(run / "uncertainty.safetensors")
    _assert_same_tensors(frozen.state_dict(), stage1.state_dict())

    # A stage-2 model as --init without --uncertainty, one as --uncertainty, another architecture.
    with pytest.raises(CheckpointError, match="no uncertainty head.*give the stage-1 model as --uncertainty"):
        Trainer(dataclasses.replace(config, uncertainty=None, out=str(tmp_path / "x")), Context(), resume=False)
    with pytest.raises(CheckpointError, match="no uncertainty head.*as --uncertainty$"):
        Trainer(dataclasses.replace(config, uncertainty=str(stage2), out=str(tmp_path / "x")), Context(),
                resume=False)
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, UNet(dataclasses.replace(preset("tiny"), base_channels=8, uncertainty_head=False)),
                    SamplerConfig())
    with pytest.raises(CheckpointError, match="its network differs from the uncertainty model"):
        Trainer(dataclasses.replace(config, init=str(other), out=str(tmp_path / "x")), Context(), resume=False)
    capsys.readouterr()  # the training runs' progress bars
    _one_line_error(capsys, ["train", "--data", str(pairs), "--uncertainty", str(stage1_run)],
                    "uncertainty", "only stage gsad")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--stage", "gsad", "--init", str(stage2),
                             "--uncertainty", str(tmp_path / "nope")], "nope")


def test_broad_synthetic_multiscale_run_resumes_with_bigger_crops(tmp_path):
    photos = tmp_path / "photos"
    _write_pairs(tmp_path / "p", count=2, size=(80, 96))
    (tmp_path / "p" / "high").rename(photos)
    config = TrainConfig(data=str(photos), synthetic=True, ranges="broad", min_scale=0.5, cache=True,
                         out=str(tmp_path / "run"), **{**TINY, "max_steps": 1})
    train(config)
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["ranges"] == "broad" and stored["min_scale"] == 0.5 and stored["cache"] is True
    resumed = load_train_config(overrides={"out": str(tmp_path / "run"), "crop": 64, "max_steps": 2}, resume=True)
    assert resumed.crop == 64 and resumed.ranges == "broad"
    train(resumed, resume=True)
    assert _state(tmp_path / "run")["step"] == 2
    with pytest.raises(ConfigError, match="ranges would change"):
        load_train_config(overrides={"out": str(tmp_path / "run"), "ranges": "default"}, resume=True)
    with pytest.raises(ConfigError, match="unknown preset 'sepia'"):
        TrainConfig(ranges="sepia")
    with pytest.raises(ConfigError, match="min_scale"):
        TrainConfig(min_scale=1.5)


def _is_window_of(crop: np.ndarray, photos: list[np.ndarray]) -> bool:
    """Whether ``crop`` (``H x W x 3`` uint8) is a window of one of ``photos``, maybe flipped."""
    side = crop.shape[0]
    for photo in photos:
        for candidate in (crop, crop[:, ::-1]):
            for top in range(photo.shape[0] - side + 1):
                for left in range(photo.shape[1] - side + 1):
                    if np.array_equal(photo[top : top + side, left : left + side], candidate):
                        return True
    return False


def test_synthetic_data(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    _write_pairs(tmp_path / "p", count=2)
    (tmp_path / "p" / "high").rename(photos)
    shutil.rmtree(tmp_path / "p")  # no paired low images anywhere near: the lows must be made
    seen: list[tuple[torch.Tensor, torch.Tensor, float]] = []
    real_objective = loop.stage1_objective

    def spy(net, low, high, *args, **kwargs):
        loss, logs = real_objective(net, low, high, *args, **kwargs)
        seen.append((low.detach().clone(), high.detach().clone(), loss.item()))
        return loss, logs

    monkeypatch.setattr(loop, "stage1_objective", spy)
    run = train(TrainConfig(data=str(photos), synthetic=True, out=str(tmp_path / "run"), **{**TINY, "max_steps": 2}))

    # The pairs the trainer used: clean crops of the photos as targets, darker made-up inputs.
    assert len(seen) == 2
    sources = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photos.glob("*.png"))]
    for low, high, _ in seen:
        assert low.shape == high.shape == (2, 3, 32, 32)
        assert low.min() >= -1 and low.max() <= 1 and high.min() >= -1 and high.max() <= 1
        assert (low.mean(dim=(1, 2, 3)) < high.mean(dim=(1, 2, 3)) - 0.1).all()  # every pair, clearly darker
        for target in high:
            target_u8 = ((target + 1) / 2 * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            assert _is_window_of(target_u8, sources)
    assert not torch.equal(seen[0][0], seen[1][0])  # fresh crops and degradations each step

    # The log: one row per step, the stage's columns, the losses the steps computed.
    rows = read_log(run)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert list(rows[0]) == ["step", "loss", "lr", "steps_per_s", "val_psnr"]
    losses = [float(r["loss"]) for r in rows]
    assert all(np.isfinite(losses)) and losses == pytest.approx([loss for *_, loss in seen], rel=1e-5)
    assert from_dict(TrainConfig, yaml.safe_load((run / "config.yaml").read_text())).synthetic is True

    # The saved weights: they load, are finite, and are the final step's EMA weights.
    assert (run / "checkpoints" / "step_0000002.safetensors").is_file()
    model, _, meta = load_checkpoint(run)
    assert meta["gsad.stage"] == "uncertainty" and meta["gsad.step"] == "2"
    state = _state(run)
    for key, value in model.state_dict().items():
        assert torch.isfinite(value).all(), key
        assert torch.equal(value, state["ema"][key]), key


def test_workers_do_not_change_the_data_and_bf16_runs(pairs, tmp_path):
    base = dict(data=str(pairs), **{**TINY, "max_steps": 2})
    plain = _state(train(TrainConfig(out=str(tmp_path / "w0"), **base)))
    workers = _state(train(TrainConfig(out=str(tmp_path / "w2"), num_workers=2, **base)))
    _assert_same_tensors(plain["model"], workers["model"])
    bf16 = _state(train(TrainConfig(out=str(tmp_path / "bf16"), amp="bf16", **base)))
    assert all(torch.isfinite(v).all() for v in bf16["model"].values())


# ----------------------------------------------------------------------------------------
# resume
# ----------------------------------------------------------------------------------------


class _Killed(Exception):
    pass


@pytest.mark.parametrize("stage", ["uncertainty", "gsad", "distill"])
def test_killed_run_resumes_identically(stage, stage1_run, teacher, pairs, tmp_path):
    base = dict(data=str(pairs), stage=stage, init=str(stage1_run) if stage == "gsad" else None,
                teacher=str(teacher) if stage == "distill" else None, **{**TINY, "max_steps": 4, "log_every": 1})
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **base))

    def kill_at_3(step, logs):
        if step == 3:
            raise _Killed  # after the step-2 checkpoint and the step-3 log row

    with pytest.raises(_Killed):
        train(TrainConfig(out=str(tmp_path / "split"), **base), callback=kill_at_3)
    assert find_state(tmp_path / "split").name == "step_0000002.state.pt"
    split = train(load_train_config(overrides={"out": str(tmp_path / "split")}, resume=True), resume=True)

    a, b = _state(whole), _state(split)
    assert a["step"] == b["step"] == 4
    for key in ("model", "ema", "optimizer"):
        _assert_same_tensors(a[key], b[key])
    assert [r["step"] for r in read_log(split)] == ["1", "2", "3", "4"]
    assert [r["loss"] for r in read_log(split)] == [r["loss"] for r in read_log(whole)]


def test_resume_may_extend_max_steps(stage1_run, pairs, tmp_path):
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "r"), **{**TINY, "max_steps": 1})
    train(config)
    resumed = load_train_config(overrides={"out": str(tmp_path / "r"), "max_steps": 2}, resume=True)
    assert resumed.max_steps == 2 and resumed.crop == 32
    train(resumed, resume=True)
    assert _state(tmp_path / "r")["step"] == 2


def test_data_order_is_global_and_sharded():
    one = StepSampler(5, 4, seed=3, start=0, end=4, ctx=Context())
    stream = list(one)
    assert len(stream) == len(one) == 16
    for epoch in range(3):  # each epoch a permutation of the 5 items
        items = [i for e, i in stream if e == epoch]
        assert len(set(items)) == len(items)
    assert sorted(i for e, i in stream if e == 0) == list(range(5))
    shards = [list(StepSampler(5, 4, 3, 0, 4, Context(rank=r, world_size=2))) for r in range(2)]
    merged = [key for step in range(4) for r in range(2) for key in shards[r][2 * step : 2 * step + 2]]
    assert merged == stream
    resumed = list(StepSampler(5, 4, 3, 2, 4, Context()))
    assert resumed == stream[8:]
    with pytest.raises(ConfigError, match="divisible"):
        StepSampler(5, 3, 0, 0, 1, Context(world_size=2))


def test_ema_copies_then_averages():
    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9999, start=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, 2)
    assert torch.equal(ema.model.weight, model.weight)
    assert ema.rate(3) == pytest.approx(2 / 11)
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema.update(model, 3)
    torch.testing.assert_close(ema.model.weight, torch.full_like(model.weight, 2 / 11))
    assert ema.rate(10**7) == 0.9999


# ----------------------------------------------------------------------------------------
# configs and CLI
# ----------------------------------------------------------------------------------------


def test_config_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("max_steps: 50\nlr: 2e-4\ncrop: 64\nsampler:\n  steps: 7\n  seed: 1\nnetwork:\n  dropout: 0.1\n")
    config = load_train_config(path, {"max_steps": 5, "crop": None, "sampler": {"seed": 9}})
    assert config.max_steps == 5  # flag over file
    assert config.lr == 2e-4 and config.crop == 64  # file over default (1e-4 read from text)
    assert config.batch_size == 8  # default
    assert (config.sampler.steps, config.sampler.seed, config.sampler.beta_end) == (7, 9, 0.88)
    assert config.network_config().dropout == 0.1 and config.network_config().base_channels == 16


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999999"])
def test_training_seed_in_yaml_is_range_checked(tmp_path, seed):
    path = tmp_path / "c.yaml"
    path.write_text(f"seed: {seed}\n")
    with pytest.raises(ConfigError, match=r"seed: .*0 to 4294967295"):
        load_train_config(path)


def test_shipped_configs_load_with_paper_settings():
    config = load_train_config("lolv1_gsad")
    assert (config.stage, config.preset, config.batch_size, config.crop, config.lr) == ("gsad", "paper", 8, 96, 1e-4)
    assert config.max_steps == 2_000_000 and config.flip and config.init == "runs/lolv1_uncertainty"
    assert config.sampler == SamplerConfig(steps=20, beta_start=6e-4, beta_end=0.88, seed=4088)
    assert load_train_config("lolv1_uncertainty").max_steps == 1_000_000
    assert load_train_config("lolv2_real_uncertainty").sampler.seed == 4357
    assert load_train_config("lolv2_syn_gsad").sampler.beta_start == 2e-3


def test_cli_train_flags_over_yaml(pairs, tmp_path):
    path = tmp_path / "c.yaml"
    out = tmp_path / "run"
    path.write_text(f"data: {pairs}\nmax_steps: 50\ncrop: 32\nbatch_size: 2\nlog_every: 1\ndevice: cpu\n")
    assert main(["train", "--config", str(path), "--max-steps", "1", "--out", str(out), "--no-flip",
                 "--loss-weighting", "truncated-snr", "--warm-start", "0.5"]) == 0
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["max_steps"] == 1 and stored["crop"] == 32 and stored["flip"] is False
    assert stored["loss_weighting"] == "truncated-snr" and stored["warm_start"] == 0.5
    assert (out / "latest").read_text().strip() == "checkpoints/step_0000001.safetensors"
    assert read_metadata(out / "checkpoints" / "step_0000001.safetensors")["gsad.step"] == "1"


def _one_line_error(capsys, argv: list[str], *expected: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err, err


def test_cli_errors(pairs, stage1_run, tmp_path, capsys):
    _one_line_error(capsys, ["train", "--data", str(tmp_path / "missing")], "missing", "no such data folder")
    _one_line_error(capsys, ["train"], "--data")
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_step: 3\n")
    _one_line_error(capsys, ["train", "--config", str(bad), "--data", str(pairs)], "bad.yaml", "unknown key",
                    "max_step")
    bad.write_text("max_steps: many\n")
    _one_line_error(capsys, ["train", "--config", str(bad)], "max_steps", "integer")
    bad.write_text("loss_weighting: snr\n")
    _one_line_error(capsys, ["train", "--config", str(bad)], "loss_weighting", "truncated-snr")
    bad.write_text("warm_start: 2\n")
    _one_line_error(capsys, ["train", "--config", str(bad)], "warm_start", "[0, 1]")
    assert main(["train", "--data", str(pairs), "--warm-start", "-0.1"]) == 2  # argparse's usage error
    assert "--warm-start: must be a number in [0, 1]" in capsys.readouterr().err
    _one_line_error(capsys, ["train", "--config", "no_such_config"], "no_such_config", "lolv1_gsad")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--stage", "gsad"], "--init")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--stage", "gsad", "--init", str(tmp_path / "nope")],
                    "nope")
    _one_line_error(capsys, ["train", "--resume"], "--out")
    _one_line_error(capsys, ["train", "--resume", "--out", str(tmp_path / "none")], "config.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text((stage1_run / "config.yaml").read_text())
    _one_line_error(capsys, ["train", "--resume", "--out", str(empty)], "no saved training state")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--out", str(stage1_run)], "already holds", "--resume")
    _one_line_error(capsys, ["train", "--resume", "--out", str(stage1_run), "--batch-size", "4"], "batch_size")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--crop", "36", "--max-steps", "1",
                              "--out", str(tmp_path / "c")],
                    "crop", "patch_size")
    _one_line_error(capsys, ["train", "--data", str(pairs), "--crop", "64", "--max-steps", "1",
                              "--out", str(tmp_path / "c")],
                    "smaller than the 64x64 crop")


# ----------------------------------------------------------------------------------------
# kills, broken files and bad data (issue 13, defects 5 and 7)
# ----------------------------------------------------------------------------------------


def _weights_and_notes(path: Path) -> tuple[dict, dict]:
    """A checkpoint's tensors and metadata, the run folder (config.out) left out."""
    model, _, meta = load_checkpoint(path)
    meta = dict(meta)
    config = yaml.safe_load(meta.pop("gsad.config"))
    config.pop("out")
    return model.state_dict(), {**meta, "config": config}


def _tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kill_step", [3, 2], ids=["last-step", "first-checkpoint"])
def test_kill_between_state_and_weights_is_repaired_on_resume(kill_step, pairs, tmp_path, monkeypatch, capsys,
                                                              caplog):
    base = dict(data=str(pairs), **TINY)  # 3 steps, checkpoints at steps 2 and 3
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **base))
    split = tmp_path / "split"
    real_save = loop.save_checkpoint

    def killed_at_weights(path, *args, **kwargs):
        if Path(path).name == f"step_{kill_step:07d}.safetensors":
            raise _Killed  # after step_N.state.pt, before step_N.safetensors and latest
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(loop, "save_checkpoint", killed_at_weights)
    with pytest.raises(_Killed):
        train(TrainConfig(out=str(split), **base))
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    ckpt = split / "checkpoints"
    assert find_state(split).name == f"step_{kill_step:07d}.state.pt"
    assert not (ckpt / f"step_{kill_step:07d}.safetensors").exists()
    assert (split / "latest").exists() == (kill_step == 3)

    assert main(["train", "--resume", "--out", str(split)]) == 0
    assert f"step_{kill_step:07d}.safetensors: missing" in caplog.text
    assert (split / "latest").read_text() == "checkpoints/step_0000003.safetensors\n"
    for step in (2, 3):  # the repaired and the later weights are those of the uninterrupted run
        name = f"checkpoints/step_{step:07d}.safetensors"
        a, b = _weights_and_notes(whole / name), _weights_and_notes(split / name)
        _assert_same_tensors(a[0], b[0])
        assert a[1] == b[1]
    _assert_same_tensors(_state(whole)["ema"], _state(split)["ema"])
    assert [r["loss"] for r in read_log(split)] == [r["loss"] for r in read_log(whole)]


def _break_pair(pairs: Path, root: Path) -> Path:
    """A copy of ``pairs`` whose last pair (not the one checked before training) is not an image."""
    shutil.copytree(pairs, root)
    (root / "low" / "img2.png").write_bytes(b"not a png")
    return root / "low" / "img2.png"


@pytest.mark.parametrize("workers", ["0", "2"])
def test_run_that_failed_at_a_bad_pair_can_be_run_again(workers, pairs, tmp_path, capsys, caplog):
    data, run = tmp_path / "data", tmp_path / "run"
    bad = _break_pair(pairs, data)
    argv = ["train", "--data", str(data), "--out", str(run), "--max-steps", "3", "--batch-size", "2", "--crop", "32",
            "--checkpoint-every", "2", "--log-every", "1", "--device", "cpu", "--num-workers", workers]
    assert main(argv) == 1  # the bad pair is met in step 1 or 2, before the first checkpoint
    err = capsys.readouterr().err  # the progress bar, then the error line, also from a worker
    assert err.splitlines()[-1] == f"gsad: error: {bad}: not an image file (Pillow cannot identify it)"
    assert "Traceback" not in err and err.count("gsad: error") == 1
    assert (run / "config.yaml").is_file() and not any((run / "checkpoints").glob("step_*"))

    _one_line_error(capsys, ["train", "--resume", "--out", str(run)], "no saved training state",
                    "without --resume")
    shutil.copy(pairs / "low" / "img2.png", bad)
    assert main(argv) == 0  # the same command again: the folder without a saved state is reused
    assert f"{run}: holds no saved training state yet" in caplog.text
    assert (run / "latest").read_text() == "checkpoints/step_0000003.safetensors\n"
    clean = train(TrainConfig(data=str(pairs), out=str(tmp_path / "clean"), **TINY))
    _assert_same_tensors(_state(clean)["model"], _state(run)["model"])
    assert [r["step"] for r in read_log(run)] == ["1", "2", "3"]


@pytest.mark.parametrize("files", [
    {"config.yaml": "", "log.csv": "my,own\nfirst,2\n"},  # an empty config.yaml and the user's log (issue 24)
    {"config.yaml": "learning: fast\n", "log.csv": "step,loss\n1,2\n"},
    {"config.yaml": "max_steps: 3\n"},  # a valid TrainConfig is still not gsad's marker
    {"log.csv": "my,own\n"},
    {"uncertainty.safetensors": "mine"},
    {"notes.txt": "mine", "checkpoints/notes.txt": "mine"},
])
def test_fresh_run_keeps_folders_that_are_not_its_own(files, pairs, tmp_path, capsys):
    argv = ["train", "--data", str(pairs), "--max-steps", "1", "--crop", "32", "--batch-size", "2", "--device", "cpu"]
    mine = tmp_path / "mine"
    for name, text in files.items():
        (mine / name).parent.mkdir(parents=True, exist_ok=True)
        (mine / name).write_text(text)
    before = _tree_hashes(mine)
    _one_line_error(capsys, [*argv, "--out", str(mine)], f"{mine}: holds files and is not a gsad run folder",
                    ".gsad-run", "--out")
    assert _tree_hashes(mine) == before and sorted(p.name for p in mine.iterdir()) == sorted(
        {name.split("/")[0] for name in files})


def test_stale_temporaries_are_removed_on_start_and_resume(pairs, tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints"
    ckpt.mkdir(parents=True)

    def leave_temporary(folder: Path, name: str) -> Path:
        fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)  # as atomic_write names it
        os.write(fd, b"half")
        os.close(fd)
        return Path(path)

    mark_run_dir(run)  # a run killed before its first checkpoint (stale temporaries are left by gsad's own runs)
    user = {ckpt / ".step_0000009.state.pt.tmp": b"u1", ckpt / ".step_0000009.state.pt.ABCDEFGH.tmp": b"u2",
            run / ".notes.abcdefgh.tmp": b"u3", run / "latest.abcdefgh.tmp": b"u4", ckpt / "keep.tmp": b"u5"}
    for path, data in user.items():
        path.write_bytes(data)
    stale = [leave_temporary(run, "config.yaml"), leave_temporary(run, "log.csv")]
    train(TrainConfig(data=str(pairs), out=str(run), **{**TINY, "max_steps": 2}))
    assert not any(p.exists() for p in stale)

    stale = [leave_temporary(ckpt, "step_0000004.state.pt"), leave_temporary(ckpt, "step_0000004.safetensors"),
             leave_temporary(run, "latest"), leave_temporary(run, "log.csv")]
    assert all(p.exists() for p in stale)
    train(load_train_config(overrides={"out": str(run), "max_steps": 3}, resume=True), resume=True)
    assert not any(p.exists() for p in stale)
    assert {p: p.read_bytes() for p in user} == user  # files named otherwise are not gsad's temporaries
    assert not [p for p in run.rglob("*.tmp") if p not in user]


def test_truncated_newest_state_falls_back_to_an_intact_one(pairs, tmp_path, caplog, capsys):
    base = dict(data=str(pairs), **{**TINY, "max_steps": 4})  # states at steps 2 and 4
    whole = train(TrainConfig(out=str(tmp_path / "whole"), **base))
    run = train(TrainConfig(out=str(tmp_path / "run"), **base))
    newest = run / "checkpoints" / "step_0000004.state.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # as a full disk would leave it

    # Resume with a state every step and only one kept, and stop after step 3: the good step-3 state
    # must not be pruned in favour of the broken step-4 file that sorts after it.
    config = load_train_config(overrides={"out": str(run), "checkpoint_every": 1, "keep_states": 1}, resume=True)
    with pytest.raises(_Killed):
        train(config, resume=True, callback=lambda step, logs: step == 3 and _raise(_Killed()))
    assert f"{newest}: cannot read the training state" in caplog.text
    assert "resuming from the older step_0000002.state.pt instead" in caplog.text
    assert (run / "latest").read_text() == "checkpoints/step_0000003.safetensors\n"
    states = sorted(p.name for p in (run / "checkpoints").glob("step_*.state.pt"))
    assert states == ["step_0000003.state.pt", "step_0000004.state.pt"]

    caplog.clear()
    train(load_train_config(overrides={"out": str(run)}, resume=True), resume=True)
    assert "resuming from the older step_0000003.state.pt instead" in caplog.text
    a, b = _state(whole), _state(run)
    assert b["step"] == 4
    for key in ("model", "ema", "optimizer"):
        _assert_same_tensors(a[key], b[key])
    name = "checkpoints/step_0000004.safetensors"
    _assert_same_tensors(_weights_and_notes(whole / name)[0], _weights_and_notes(run / name)[0])
    assert (run / "latest").read_text() == "checkpoints/step_0000004.safetensors\n"

    # No intact state at all: one line naming the newest file.
    for state in (run / "checkpoints").glob("step_*.state.pt"):
        state.write_bytes(b"")
    before = _tree_hashes(run)
    capsys.readouterr()
    _one_line_error(capsys, ["train", "--resume", "--out", str(run)], f"{newest}: cannot read the training state",
                    "no older state can be read either")
    assert _tree_hashes(run) == before


def _raise(exc: Exception) -> None:
    raise exc


def test_latest_with_bytes_that_are_not_utf8_is_one_line(stage1_run, pairs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(stage1_run, run)
    (run / "latest").write_bytes(b"checkpoints/\xff\xfe\x80.safetensors\n")
    before = _tree_hashes(run)
    expected = f"gsad: error: {run / 'latest'}: not a checkpoint name (its bytes are not UTF-8 text)\n"
    image = pairs / "low" / "img0.png"
    for argv in (["enhance", str(image), "-o", str(tmp_path / "out.png"), "--checkpoint", str(run)],
                 ["train", "--data", str(pairs), "--stage", "gsad", "--init", str(run), "--out", str(tmp_path / "g")],
                 ["train", "--resume", "--out", str(run)]):
        assert main(argv) == 1
        assert capsys.readouterr().err == expected
    assert _tree_hashes(run) == before
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "g").exists()


def test_reused_folder_gets_the_new_init_model(stage1_run, pairs, tmp_path, caplog):
    run = tmp_path / "g"
    mark_run_dir(run)
    (run / "config.yaml").write_text((stage1_run / "config.yaml").read_text())  # a run stopped before step 1
    other, sampler, _ = load_checkpoint(stage1_run)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
    save_checkpoint(run / "uncertainty.safetensors", other, sampler)  # an earlier --init's frozen model
    train(TrainConfig(data=str(pairs), out=str(run), stage="gsad", init=str(stage1_run), **{**TINY, "max_steps": 1}))
    assert "holds no saved training state yet" in caplog.text
    frozen, _, meta = load_checkpoint(run / "uncertainty.safetensors")
    _assert_same_tensors(frozen.state_dict(), load_checkpoint(stage1_run)[0].state_dict())
    assert meta["gsad.source"] == str(stage1_run / "checkpoints" / "step_0000003.safetensors")


# ----------------------------------------------------------------------------------------
# divergence, full disk, whose folder (issue 24)
# ----------------------------------------------------------------------------------------


def _nan_loss_from(monkeypatch, step: int) -> None:
    """The stage-1 loss turns NaN from training step ``step`` on (one objective call per step)."""
    calls = []
    real = loop.stage1_objective

    def objective(*args, **kwargs):
        calls.append(1)
        loss, logs = real(*args, **kwargs)
        return (loss * float("nan"), logs) if len(calls) >= step else (loss, logs)

    monkeypatch.setattr(loop, "stage1_objective", objective)


def _train_argv(pairs: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(pairs), "--out", str(run), "--crop", "32", "--batch-size", "2", "--device", "cpu",
            "--log-every", "1", *extra]


def test_diverging_run_stops_with_one_line_and_keeps_the_last_good_state(pairs, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    _nan_loss_from(monkeypatch, 4)
    argv = _train_argv(pairs, run, "--max-steps", "5", "--checkpoint-every", "3", "--keep-states", "1")
    assert main(argv) == 1
    err = capsys.readouterr().err
    state = run / "checkpoints" / "step_0000003.state.pt"
    assert err.splitlines()[-1] == (
        f"gsad: error: {run}: training diverged at step 4 (the loss is nan); nothing of it was saved; the newest "
        f"good state is {state} (step 3), where --resume continues; a smaller --lr may help")
    assert "Traceback" not in err and err.count("gsad: error") == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000003.safetensors", state.name]
    assert (run / "latest").read_text() == "checkpoints/step_0000003.safetensors\n"
    assert [r["step"] for r in read_log(run)] == ["1", "2", "3"]

    monkeypatch.undo()  # e.g. after the data is fixed: --resume goes on from the good state
    assert main(["train", "--resume", "--out", str(run)]) == 0
    assert _state(run)["step"] == 5 and [r["step"] for r in read_log(run)] == ["1", "2", "3", "4", "5"]


def test_diverging_run_before_any_state_says_so(pairs, tmp_path, monkeypatch):
    _nan_loss_from(monkeypatch, 1)
    with pytest.raises(ModelOutputError, match=r"diverged at step 1 \(the loss is nan\).*no state was saved before"):
        train(TrainConfig(data=str(pairs), out=str(tmp_path / "run"), **TINY))
    assert not any((tmp_path / "run" / "checkpoints").glob("step_*"))


@pytest.mark.parametrize("part", ["model", "ema"])
def test_non_finite_weights_are_never_saved(part, pairs, tmp_path, monkeypatch):
    """Weights that turn non-finite in the update of a checkpoint step (the loss of that step was still
    finite) are neither validated nor saved; the older state stays."""
    real = loop.Trainer._train_step

    def step(self, batch, generator):
        logs = real(self, batch, generator)
        if self.step == 4:
            module = self.model if part == "model" else self.ema.model
            with torch.no_grad():
                next(module.parameters()).view(-1)[0] = float("inf")
        return logs

    monkeypatch.setattr(loop.Trainer, "_train_step", step)
    run = tmp_path / "run"
    config = TrainConfig(data=str(pairs), out=str(run), val_data=str(pairs), val_count=1, val_every=4,
                         sampler=SamplerConfig(steps=2), **{**TINY, "max_steps": 4})
    with pytest.raises(ModelOutputError, match=r"diverged at step 4 \(the weights are not finite\).*"
                                               r"step_0000002\.state\.pt \(step 2\)"):
        train(config)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002.safetensors",
                                                                       "step_0000002.state.pt"]
    assert (run / "latest").read_text() == "checkpoints/step_0000002.safetensors\n"


@pytest.mark.parametrize(("pattern", "path", "room"), [
    (".step_0000002.state.pt.*.tmp", "checkpoints/step_0000002.state.pt", 10),  # torch.save raises the OSError
    (".step_0000002.state.pt.*.tmp", "checkpoints/step_0000002.state.pt", 1000),  # torch.save: a RuntimeError
    (".step_0000002.safetensors.*.tmp", "checkpoints/step_0000002.safetensors", 1000),
    (".latest.*.tmp", "latest", 10),
    ("log.csv", "log.csv", 10),  # the row of step 2, appended
])
def test_full_disk_while_saving_is_one_line(pattern, path, room, pairs, tmp_path, monkeypatch, capsys, full_disk):
    run = tmp_path / "run"
    argv = _train_argv(pairs, run, "--max-steps", "2", "--checkpoint-every", "1")
    real_save = loop.Trainer._save

    def save(self):  # the disk fills up after step 1
        real_save(self)
        full_disk(pattern, room)

    monkeypatch.setattr(loop.Trainer, "_save", save)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"gsad: error: {run / path}: cannot write (No space left on device)"
    assert "Traceback" not in err and err.count("gsad: error") == 1
    assert not list(run.rglob("*.tmp"))
    if path.startswith("checkpoints/"):
        assert not (run / path).exists()
    assert (run / "latest").read_text() == "checkpoints/step_0000001.safetensors\n"
    assert (run / "log.csv").read_text().endswith("\n")  # whole rows only
    assert [r["step"] for r in read_log(run)] == (["1"] if path == "log.csv" else ["1", "2"])
    assert load_checkpoint(run / "checkpoints" / "step_0000001.safetensors")[0] is not None
    assert read_state(run / "checkpoints" / "step_0000001.state.pt")["step"] == 1


def test_run_of_an_older_gsad_without_marker_resumes(stage1_run, pairs, tmp_path, capsys):
    run = tmp_path / "old"
    shutil.copytree(stage1_run, run)
    (run / ".gsad-run").unlink()  # made before the marker existed
    _one_line_error(capsys, _train_argv(pairs, run, "--max-steps", "4"), "already holds a training run", "--resume")
    assert main(["train", "--resume", "--out", str(run), "--max-steps", "4"]) == 0
    assert _state(run)["step"] == 4 and (run / ".gsad-run").is_file()


# ----------------------------------------------------------------------------------------
# distillation
# ----------------------------------------------------------------------------------------


def _fixed_distill_loss(student: UNet, teacher: Path, pairs: Path, sampler: SamplerConfig) -> float:
    """The distill loss of ``student`` on the corners of the pairs, with fixed noise."""
    from gsad.imaging.tensors import to_model
    from gsad.network.inference_net import InferenceNet
    from gsad.training.distill import distill_objective

    low, high = (torch.cat([to_model(read_image(p)[:32, :32]) for p in sorted((pairs / side).glob("*.png"))])
                 for side in ("low", "high"))
    with torch.no_grad():
        loss, _ = distill_objective(student, InferenceNet(load_checkpoint(teacher)[0]), low, high, sampler,
                                    TEACHER_SAMPLER, torch.Generator().manual_seed(0), stride=student.config.stride)
    return loss.item()


def test_distill_run_lowers_the_loss_and_stores_the_students_sampler(teacher, pairs, tmp_path):
    """A fresh student (a network section) learns the teacher's 2-step, 2-trajectory output in one step;
    its checkpoints carry the sampler that enhance then uses: 1 step, ensemble 1, the teacher's first
    noise level, the teacher's other settings but the one a flag set."""
    from gsad.training.loop import Trainer

    network, run = tmp_path / "student.yaml", tmp_path / "run"
    network.write_text("network:\n  base_channels: 8\n  norm_groups: 4\n")
    options = {"stage": "distill", "teacher": str(teacher), "student_steps": 1, "data": str(pairs / "high"),
               "synthetic": True, "ranges": "broad", "out": str(run), "crop": 32, "batch_size": 2, "lr": 3e-3,
               "max_steps": 10, "log_every": 1, "checkpoint_every": 5, "ema_decay": 0.0, "device": "cpu"}
    start = Trainer(load_train_config(network, options), Context(), resume=False).model  # writes nothing
    argv = ["train", "--config", str(network), "--sampler-start", "exposure"]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    assert main(argv) == 0
    rows = read_log(run)
    assert list(rows[0])[:4] == ["step", "loss", "loss_distill", "loss_gt"]
    model, sampler, meta = load_checkpoint(run)
    assert model.config.base_channels == 8 and model.uncertainty_head is None and meta["gsad.stage"] == "distill"
    beta = 1 - (1 - 1e-3) * (1 - 0.2)  # one step to the teacher's alpha_bar_T
    assert sampler.beta_start == sampler.beta_end == pytest.approx(beta, rel=1e-12)
    assert dataclasses.replace(sampler, beta_start=beta, beta_end=beta) == dataclasses.replace(
        TEACHER_SAMPLER, steps=1, ensemble=1, start="exposure", beta_start=beta, beta_end=beta)
    stored = yaml.safe_load((run / "config.yaml").read_text())
    assert stored["teacher"] == str(teacher) and stored["sampler"] == yaml.safe_load(meta["gsad.config"])["sampler"]
    before = _fixed_distill_loss(start, teacher, pairs, sampler)
    after = _fixed_distill_loss(model, teacher, pairs, sampler)
    assert after < 0.9 * before, (before, after)

    steps = []
    enhance = ["enhance", str(pairs / "low" / "img0.png"), "-o", str(tmp_path / "out.png"), "--checkpoint", str(run),
               "--device", "cpu", "--precision", "fp32"]
    real = loop.distill_objective.__globals__["run_ensemble"]  # the enhancer's sampler run

    def counting(net, low, settings, *args, **kwargs):
        steps.append((settings.steps, settings.ensemble))
        return real(net, low, settings, *args, **kwargs)

    import gsad.enhance.enhancer as enhancer
    enhancer.run_ensemble, saved = counting, enhancer.run_ensemble
    try:
        assert main(enhance) == 0
    finally:
        enhancer.run_ensemble = saved
    assert steps == [(1, 1)] and read_image(tmp_path / "out.png").shape == (40, 48, 3)

    assert main(["train", "--resume", "--out", str(run), "--max-steps", "12"]) == 0
    assert _state(run)["step"] == 12 and [int(r["step"]) for r in read_log(run)] == list(range(1, 13))


def test_distill_student_starts_as_a_copy_of_the_teacher_and_runs_under_bf16(teacher, pairs, tmp_path):
    from gsad.training.loop import Trainer

    config = load_train_config(overrides={"stage": "distill", "teacher": str(teacher), "student_steps": 2,
                                          "data": str(pairs), "out": str(tmp_path / "run"), "amp": "bf16",
                                          **{**TINY, "max_steps": 2}})
    assert config.sampler == dataclasses.replace(TEACHER_SAMPLER, ensemble=1)
    trainer = Trainer(config, Context(), resume=False)
    copy, original = trainer.model.state_dict(), load_checkpoint(teacher)[0].state_dict()
    _assert_same_tensors(copy, original)
    assert trainer.teacher.unet is not trainer.model
    assert all(not p.requires_grad for p in trainer.teacher.parameters())
    run = trainer.run()
    rows = read_log(run)
    assert all(np.isfinite(float(r["loss"])) for r in rows) and float(rows[0]["loss_distill"]) > 0
    assert all(torch.isfinite(v).all() for v in _state(run)["model"].values())
    assert load_checkpoint(teacher)[0].state_dict().keys() == copy.keys()  # the teacher's file is untouched


def test_distill_errors(teacher, pairs, tmp_path, capsys, monkeypatch):
    base = ["train", "--stage", "distill", "--data", str(pairs), "--out", str(tmp_path / "r"), "--crop", "32",
            "--batch-size", "2", "--max-steps", "1", "--device", "cpu"]
    _one_line_error(capsys, base, "teacher: stage distill", "--teacher")
    _one_line_error(capsys, [*base, "--teacher", str(tmp_path / "nope.safetensors")], "nope.safetensors",
                    "no such checkpoint")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(teacher.read_bytes()[:300])
    _one_line_error(capsys, [*base, "--teacher", str(broken)], "broken.safetensors")
    _one_line_error(capsys, [*base, "--teacher", str(teacher), "--sampler-steps", "3"], "sampler: steps",
                    "student_steps")
    _one_line_error(capsys, [*base[:2], "uncertainty", *base[3:], "--teacher", str(teacher)],
                    "teacher: only stage distill")
    yaml_file = tmp_path / "net.yaml"
    yaml_file.write_text("network:\n  dropout: 0.1\n")
    _one_line_error(capsys, [*base, "--teacher", str(teacher), "--init", str(teacher), "--config", str(yaml_file)],
                    "either --init or a network section")
    assert main([*base, "--teacher", str(teacher), "--student-steps", "0"]) == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--student-steps: must be a whole number from 1" in err
    assert not (tmp_path / "r").exists()

    real = loop.distill_objective

    def not_finite(*args, **kwargs):
        loss, logs = real(*args, **kwargs)
        return loss * float("nan"), logs

    monkeypatch.setattr(loop, "distill_objective", not_finite)  # stops the run, as in the other stages
    assert main([*base, "--teacher", str(teacher)]) == 1
    err = capsys.readouterr().err  # the progress bar, then the error line
    assert err.count("gsad: error") == 1 and "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"gsad: error: {tmp_path / 'r'}: training diverged at step 1 (the loss is nan)")
