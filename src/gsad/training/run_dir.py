"""A training run's folder: the one place its format is stated.

Run directory (``config.out``)::

    RUN/
      config.yaml                 the resolved TrainConfig
      log.csv                     step, losses, lr, steps/s, val_psnr (one row per log step)
      latest                      relative path of the newest inference checkpoint
      uncertainty.safetensors     stage gsad: the frozen stage-1 model that gives P
      checkpoints/
        step_0001000.safetensors  EMA weights, gsad format (``gsad enhance --checkpoint``)
        step_0001000.state.pt     model, EMA, optimizer, step: what ``--resume`` needs

``gsad enhance --checkpoint RUN`` follows ``latest``. Every file is written to a temporary
name and moved into place, so a killed run never leaves a half-written file; the
temporaries a kill leaves behind are removed when the run starts or resumes.

Kills and broken files: a checkpoint is written as state, weights, then ``latest``. On
``--resume`` the newest state that can be read is used (an unreadable newer one is reported
and skipped; it is replaced when the run reaches its step again), and the weights and
``latest`` of that step are written if a kill came before them. A folder without any saved
state (a run that failed or was killed before its first checkpoint) is not a run to
resume: starting again with the same ``--out`` reuses it.
"""

from __future__ import annotations

import csv
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from gsad.errors import CheckpointError

log = logging.getLogger(__name__)


STATE_FORMAT = 1
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "log.csv"
CONFIG_FILE = "config.yaml"
UNCERTAINTY_FILE = "uncertainty.safetensors"


def find_state(run_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoints/step_*.state.pt`` of a run directory, or None."""
    states = sorted(Path(run_dir, CHECKPOINT_DIR).glob("step_*.state.pt"))
    return states[-1] if states else None


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or corrupt files raise many types
        first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__  # torch's is long
        raise CheckpointError(f"{path}: cannot read the training state ({first})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or "step" not in state:
        raise CheckpointError(f"{path}: not a gsad training state")
    return state


def newest_intact_state(run_dir: str | os.PathLike, warn: bool = True) -> tuple[Path, dict[str, Any]] | None:
    """The newest state of a run that can be read, and its contents; None when there is no state.

    Unreadable newer states (truncated, corrupt) are skipped with a warning naming each;
    CheckpointError when none can be read.
    """
    states = sorted(Path(run_dir, CHECKPOINT_DIR).glob("step_*.state.pt"), reverse=True)
    problems = []
    for path in states:
        try:
            state = read_state(path)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        if warn:
            for problem in problems:
                log.warning("%s; resuming from the older %s instead", problem, path.name)
        return path, state
    if problems:
        raise CheckpointError(f"{problems[0]}, and no older state can be read either")
    return None


def read_log(run_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's ``log.csv`` (empty when there is none)."""
    path = Path(run_dir, LOG_FILE)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def default_run_dir(stage: str) -> str:
    return str(Path("runs") / f"{stage}-{datetime.now():%Y%m%d-%H%M%S}")
