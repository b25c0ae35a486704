"""The run folder's format (training/run_dir.py): whose folder it is (the marker), and states with
non-finite weights (issue 24, cases 5 and 8)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from gsad.errors import CheckpointError, ConfigError
from gsad.training.run_dir import (
    MARKER_FILE,
    STATE_FORMAT,
    check_fresh_run_dir,
    mark_run_dir,
    marker_format,
    newest_intact_state,
)

#: A run made by gsad before the marker existed, kept in the repository: it must stay resumable.
OLD_RUN = Path(__file__).parents[2] / "benchmarks" / "default_model" / "v2-progress" / "v2-s2"


def _write_state(run: Path, step: int, value: float) -> Path:
    path = run / "checkpoints" / f"step_{step:07d}.state.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {"w": torch.full((2, 2), value), "n": torch.zeros(1, dtype=torch.long)}
    torch.save({"format": STATE_FORMAT, "step": step, "model": weights, "ema": {"w": torch.ones(2, 2)}}, path)
    return path


def test_resume_skips_states_with_non_finite_weights(tmp_path, caplog):
    """States an older gsad saved from a diverged run are skipped, as unreadable ones are."""
    good = _write_state(tmp_path, 4, 1.0)
    nan = _write_state(tmp_path, 8, float("nan"))
    _write_state(tmp_path, 12, float("inf"))
    with caplog.at_level(logging.WARNING):
        path, state = newest_intact_state(tmp_path)
    assert path == good and state["step"] == 4
    assert f"{nan}: holds weights that are not finite (the run had diverged)" in caplog.text
    good.unlink()
    with pytest.raises(CheckpointError, match="not finite.*no older state can be read either"):
        newest_intact_state(tmp_path)


def test_fresh_run_dir_rules(tmp_path):
    assert check_fresh_run_dir(tmp_path / "new") is False  # made by the run
    (tmp_path / "empty").mkdir()
    assert check_fresh_run_dir(tmp_path / "empty") is False
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("")
    with pytest.raises(ConfigError, match=f"holds files and is not a gsad run folder \\(no {MARKER_FILE} marker\\)"):
        check_fresh_run_dir(mine)
    ours = tmp_path / "ours"
    mark_run_dir(ours)
    assert marker_format(ours) == 1 and marker_format(mine) is None
    (ours / "config.yaml").write_text("")
    assert check_fresh_run_dir(ours) is True  # a run that stopped before its first checkpoint: taken over
    (ours / MARKER_FILE).write_text("gsad run folder, format 2\n")
    with pytest.raises(ConfigError, match="newer gsad"):
        check_fresh_run_dir(ours)
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        check_fresh_run_dir(tmp_path / "file")


def test_the_committed_run_of_an_older_gsad_stays_resumable():
    assert not (OLD_RUN / MARKER_FILE).exists()  # made before the marker
    path, state = newest_intact_state(OLD_RUN)
    assert path.name == "step_0010500.state.pt" and state["step"] == 10500
    with pytest.raises(ConfigError, match="already holds a training run \\(use --resume"):
        check_fresh_run_dir(OLD_RUN)
