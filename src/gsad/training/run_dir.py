"""A training run's folder: the one place its format is stated.

Run directory (``config.out``)::

    RUN/
      .gsad-run                   marker: this folder is a gsad run (its format version)
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

Whose folder: gsad writes the marker ``.gsad-run`` first, before any other file, when a run
takes a folder. A fresh run uses a new or empty folder, or a marked one without a saved state;
any other folder that holds files is the user's and is refused untouched. Runs made before the
marker existed are recognised by their saved states (``checkpoints/step_*``, ``latest``): they
resume (and get the marker), and a fresh run refuses them as runs.

Divergence: the weights of a state and a checkpoint are finite; the loop stops before saving
non-finite ones, and ``--resume`` skips a state holding them (one saved by an older gsad).
"""

from __future__ import annotations

import csv
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from gsad.checkpoints import LATEST_FILE
from gsad.errors import CheckpointError, ConfigError, InputError
from gsad.files import os_reason, write_output

log = logging.getLogger(__name__)


STATE_FORMAT = 1
#: The marker of a run folder and the version of the folder's format it names.
MARKER_FILE = ".gsad-run"
RUN_FORMAT = 1
CHECKPOINT_DIR = "checkpoints"
LOG_FILE = "log.csv"
CONFIG_FILE = "config.yaml"
UNCERTAINTY_FILE = "uncertainty.safetensors"


def find_state(run_dir: str | os.PathLike) -> Path | None:
    """The newest ``checkpoints/step_*.state.pt`` of a run directory, or None."""
    states = sorted(Path(run_dir, CHECKPOINT_DIR).glob("step_*.state.pt"))
    return states[-1] if states else None


def finite(tensors: dict[str, torch.Tensor]) -> bool:
    """Whether every floating-point tensor of a state dict is finite (no NaN, no infinity)."""
    return all(bool(torch.isfinite(t).all()) for t in tensors.values() if t.is_floating_point())


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state atomically; a write that fails (a full disk) is one InputError line
    naming ``path``, and leaves no file under its name."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            writer = _Writer(fh)
            try:
                torch.save(state, writer)
            except RuntimeError:
                if writer.error is None:
                    raise
                raise writer.error from None  # torch wraps the OSError of a failed write in its own errors

    write_output(path, save, overwrite=True)


class _Writer:
    """A file for ``torch.save`` that keeps the first OSError of its writes."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.fh.flush()


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or corrupt files raise many types
        first = str(exc).split(". ")[0].splitlines()[0] if str(exc) else type(exc).__name__  # torch's is long
        raise CheckpointError(f"{path}: cannot read the training state ({first})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or "step" not in state:
        raise CheckpointError(f"{path}: not a gsad training state")
    if not all(finite(state.get(key) or {}) for key in ("model", "ema")):
        raise CheckpointError(f"{path}: holds weights that are not finite (the run had diverged)")
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


def marker_format(run_dir: str | os.PathLike) -> int | None:
    """The format version named by a run folder's marker; None when the folder has no marker."""
    path = Path(run_dir, MARKER_FILE)
    if not path.is_file():
        return None
    try:
        words = path.read_text(encoding="utf-8", errors="replace").split()
        return int(words[-1]) if words and words[-1].isdigit() else RUN_FORMAT
    except OSError:
        return RUN_FORMAT


def has_saved_step(run_dir: str | os.PathLike) -> bool:
    """Whether a folder holds a saved step of a run (``latest`` or ``checkpoints/step_*``): a run, marked
    or made by an older gsad."""
    return Path(run_dir, LATEST_FILE).exists() or any(Path(run_dir, CHECKPOINT_DIR).glob("step_*"))


def check_fresh_run_dir(run_dir: str | os.PathLike) -> bool:
    """Check that a fresh run may use ``run_dir``; True when it is a marked run folder without a saved
    step (a run that stopped before its first checkpoint), which the new run takes over.

    ConfigError for a file, a folder holding a run (``--resume`` continues it), and a folder
    holding files without gsad's marker (the user's: gsad never writes into it).
    """
    run = Path(run_dir)
    if run.exists() and not run.is_dir():
        raise ConfigError(f"{run}: the run directory is a file")
    if has_saved_step(run):
        raise ConfigError(f"{run}: already holds a training run (use --resume to continue it, or another --out)")
    if not run.is_dir() or not any(run.iterdir()):
        return False
    version = marker_format(run)
    if version is None:
        raise ConfigError(f"{run}: holds files and is not a gsad run folder (no {MARKER_FILE} marker); "
                          "give a new or empty folder as --out")
    if version > RUN_FORMAT:
        raise ConfigError(f"{run}: a run folder of a newer gsad (format {version}); give another --out")
    return True


def mark_run_dir(run_dir: str | os.PathLike) -> None:
    """Make ``run_dir`` (when missing) and write its marker (when missing), before any other file of the run."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    path = run / MARKER_FILE
    if not path.exists():
        try:  # written in place, not through a temporary: the first file in the folder is the marker itself
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(f"gsad run folder, format {RUN_FORMAT}\n")
        except FileExistsError:
            pass
        except OSError as exc:
            raise InputError(f"{path}: cannot write ({os_reason(exc)})") from None


def read_log(run_dir: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a run's ``log.csv`` (empty when there is none)."""
    path = Path(run_dir, LOG_FILE)
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def default_run_dir(stage: str) -> str:
    return str(Path("runs") / f"{stage}-{datetime.now():%Y%m%d-%H%M%S}")
