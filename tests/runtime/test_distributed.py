"""Data-parallel training: ``torchrun --nproc_per_node=2 -m gsad train`` on the CPU (gloo), both stages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsad.checkpoints import load_checkpoint
from gsad.cli import main
from gsad.imaging.io import read_image
from gsad.training.run_dir import find_state, read_log


def _pairs(root: Path) -> Path:
    rng = np.random.default_rng(1)
    for side in ("low", "high"):
        (root / side).mkdir(parents=True)
    for i in range(3):
        high = (rng.random((32, 40, 3)) * 255).astype(np.uint8)
        Image.fromarray(high).save(root / "high" / f"p{i}.png")
        Image.fromarray(high // 4).save(root / "low" / f"p{i}.png")
    return root


def _torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "gsad",
           "train", *args, "--device", "cpu", "--batch-size", "4", "--crop", "32", "--log-every", "1"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("run directory:") == 1  # only rank 0 reports (and writes)


def test_torchrun_two_processes_both_stages(tmp_path):
    data = _pairs(tmp_path / "data")
    stage1, stage2 = tmp_path / "stage1", tmp_path / "stage2"
    _torchrun("--data", str(data), "--out", str(stage1), "--max-steps", "3", "--checkpoint-every", "2",
              "--val-data", str(data), "--val-count", "1", "--sampler-steps", "2")
    assert [r["step"] for r in read_log(stage1)] == ["1", "2", "3"]
    assert read_log(stage1)[-1]["val_psnr"] != ""
    assert find_state(stage1).name == "step_0000003.state.pt"

    _torchrun("--stage", "gsad", "--init", str(stage1), "--data", str(data), "--out", str(stage2), "--max-steps", "2")
    model, _, meta = load_checkpoint(stage2)
    assert meta["gsad.stage"] == "gsad" and meta["gsad.step"] == "2" and model.uncertainty_head is None
    assert float(read_log(stage2)[-1]["loss_structure"]) > 0

    out = tmp_path / "out.png"
    assert main(["enhance", str(data / "low" / "p0.png"), "-o", str(out), "--checkpoint", str(stage2),
                 "--steps", "2", "--device", "cpu"]) == 0
    assert read_image(out).shape == (32, 40, 3)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, monkeypatch):
    """2 processes x 2 samples = 1 process x 4 samples, to float tolerance, after 2 Adam steps.

    Both sides run one intra-op thread (torchrun's processes get ``OMP_NUM_THREADS=1``): another
    thread count changes the order of the convolutions' sums, which Adam's first steps amplify to
    about 6e-6 in the weights.

    Rank r draws its noise from ``seed + r`` (module docstring of gsad.training.loop), so the one
    process draws the first half of each global batch from ``seed`` and the second from ``seed + 1``
    and averages the two halves' losses: exactly what DDP's gradient averaging computes."""
    import torch

    from gsad.training.loop import Trainer
    from gsad.training.order import step_seed

    data = _pairs(tmp_path / "data")
    _torchrun("--data", str(data), "--out", str(tmp_path / "two"), "--max-steps", "2")

    objective = Trainer._objective

    def as_two_ranks(self, low, high, generator):
        half = low.shape[0] // 2
        loss0, logs0 = objective(self, low[:half], high[:half], generator)  # seeded for rank 0
        rank1 = torch.Generator().manual_seed(step_seed(self.config.seed + 1, self.step))
        loss1, logs1 = objective(self, low[half:], high[half:], rank1)
        return (loss0 + loss1) / 2, {k: (logs0[k] + logs1[k]) / 2 for k in logs0}

    monkeypatch.setattr(Trainer, "_objective", as_two_ranks)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["train", "--data", str(data), "--out", str(tmp_path / "one"), "--max-steps", "2",
                     "--device", "cpu", "--batch-size", "4", "--crop", "32", "--log-every", "1"])
    finally:
        torch.set_num_threads(threads)
    assert code == 0

    one = torch.load(find_state(tmp_path / "one"), weights_only=True)["model"]
    two = torch.load(find_state(tmp_path / "two"), weights_only=True)["model"]
    assert one.keys() == two.keys()
    worst = max((one[k].float() - two[k].float()).abs().max().item() for k in one)
    assert worst < 1e-6, f"largest weight difference {worst:.3g}"
    for a, b in zip(read_log(tmp_path / "one"), read_log(tmp_path / "two")):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
