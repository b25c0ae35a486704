"""Choose sampler settings on data: a grid search of the test schedule for the best PSNR.

The paper's authors tune the short test schedule (steps, beta_start, beta_end) by hand per
dataset (always from noise); :func:`tune_schedule` measures every combination of a grid
(optionally also of the trajectory start) on validation pairs and returns the one with the
highest mean PSNR (plain protocol: brightness errors count), ties going to fewer network
evaluations (steps x ensemble). With ``metric="ssim"`` the mean SSIM ranks instead (it weighs
residual noise and lost detail more than PSNR does; PSNR breaks ties). Self-ensembles
(``ensembles``) can join the grid; ``max_evaluations`` keeps the search inside a time budget,
since averaging more trajectories only ever costs more. ``gsad tune-schedule`` writes the
winner into the checkpoint.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from gsad.config import TUNING_BETA_ENDS, TUNING_BETA_STARTS, TUNING_METRICS, TUNING_STEPS, SamplerConfig
from gsad.data.layouts import Pair
from gsad.errors import ConfigError, DataError
from gsad.evaluation.metrics import SSIM_MIN_SIDE, psnr, ssim
from gsad.imaging.io import read_image


@dataclass(frozen=True)
class Trial:
    """One grid point and its scores (means over the validation images)."""

    settings: SamplerConfig
    psnr: float
    ssim: float
    seconds_per_image: float

    @property
    def evaluations(self) -> int:
        """Network evaluations per image: steps x ensemble."""
        return self.settings.steps * self.settings.ensemble


def check_crop(crop: int | None) -> None:
    """A centre crop must leave room for SSIM's window (:data:`SSIM_MIN_SIDE` pixels each way)."""
    if crop is not None and crop < SSIM_MIN_SIDE:
        raise ConfigError(f"crop: SSIM needs at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels, got {crop}")


def _read_scoreable(path, crop: int | None) -> np.ndarray:
    """``path`` read and centre-cropped; :class:`DataError` naming it when SSIM cannot score it."""
    image = _center_crop(read_image(path), crop)
    if min(image.shape[:2]) < SSIM_MIN_SIDE:
        raise DataError(f"{path}: {image.shape[1]}x{image.shape[0]} is too small to score: SSIM needs at least "
                        f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels")
    return image


def _center_crop(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return image
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top : top + size, left : left + size]


@dataclass(frozen=True)
class SearchSpace:
    """What :func:`tune_schedule` tries and how it ranks the trials.

    Every (start, steps, beta_start, beta_end, ensemble) of the lists with beta_start < beta_end
    and, under ``max_evaluations``, at most that many network evaluations per image (steps x
    ensemble) is one grid point, run with ``sampler`` and ``seed`` (None: the checkpoint's).
    ``starts``: trajectory starts (``noise``, ``exposure``, ``soft-exposure``; see SamplerConfig);
    ``ensembles``: self-ensemble sizes. ``metric`` (:data:`TUNING_METRICS`) ranks: mean PSNR (to 0.001
    dB), then fewer evaluations, then SSIM; or mean SSIM (to 0.0001), then fewer evaluations,
    then PSNR.
    """

    sampler: str = "reference"
    steps: Sequence[int] = TUNING_STEPS
    beta_starts: Sequence[float] = TUNING_BETA_STARTS
    beta_ends: Sequence[float] = TUNING_BETA_ENDS
    starts: Sequence[str] = ("noise",)
    ensembles: Sequence[int] = (1,)
    max_evaluations: int | None = None
    seed: int | None = None
    metric: str = "psnr"

    def __post_init__(self) -> None:
        if self.metric not in TUNING_METRICS:
            raise ConfigError(
                f"tune-schedule: unknown metric {self.metric!r} (choose from {', '.join(TUNING_METRICS)})"
            )

    def grid(self) -> list[tuple[str, int, float, float, int]]:
        """The grid points (start, steps, beta_start, beta_end, ensemble), in search order."""
        points = itertools.product(self.starts, self.steps, self.beta_starts, self.beta_ends, self.ensembles)
        grid = [(first, n, b0, b1, k) for first, n, b0, b1, k in points
                if b0 < b1 and (self.max_evaluations is None or n * k <= self.max_evaluations)]
        if not grid:
            raise ConfigError("tune-schedule: nothing to try (every beta_start >= every beta_end, or every "
                              "steps x ensemble over the evaluation budget)")
        return grid

    def rank(self, trials: list[Trial]) -> list[Trial]:
        """``trials`` best first by :attr:`metric`."""
        if self.metric == "ssim":
            return sorted(trials, key=lambda t: (-round(t.ssim, 4), t.evaluations, -t.psnr))
        return sorted(trials, key=lambda t: (-round(t.psnr, 3), t.evaluations, -t.ssim))


def tune_schedule(
    enhancer,
    pairs: Sequence[Pair],
    space: SearchSpace = SearchSpace(),
    crop: int | None = None,
    progress: bool = True,
) -> list[Trial]:
    """Score every grid point of ``space`` on ``pairs``; best first (:meth:`SearchSpace.rank`).

    ``crop`` scores a centre crop of each image (faster searches on large photos). Every image
    is read and checked (large enough for SSIM, :class:`DataError` naming it) before any runs.
    """
    if not pairs:
        raise ConfigError("tune-schedule: no validation pairs")
    check_crop(crop)
    images = [(_read_scoreable(p.low, crop), _read_scoreable(p.high, crop)) for p in pairs]
    grid = space.grid()
    base = enhancer.settings(sampler=space.sampler, seed=space.seed)
    trials = []
    for first, n, b0, b1, k in tqdm(grid, desc="schedules", unit="try", disable=not progress, dynamic_ncols=True):
        settings = dataclasses.replace(base, start=first, steps=n, beta_start=b0, beta_end=b1, ensemble=k)
        scores_p, scores_s = [], []
        start = time.perf_counter()
        for low, high in images:
            out = enhancer.enhance(low, settings)
            scores_p.append(psnr(out, high))
            scores_s.append(ssim(out, high))
        elapsed = (time.perf_counter() - start) / len(images)
        trials.append(Trial(settings, float(np.mean(scores_p)), float(np.mean(scores_s)), elapsed))
    return space.rank(trials)


def format_trials(trials: Sequence[Trial]) -> str:
    """A plain-text table of trials (best first)."""
    lines = [f"{'sampler':<10}{'start':<9}{'steps':>6}{'beta_start':>12}{'beta_end':>10}{'ens':>5}{'PSNR':>9}"
             f"{'SSIM':>8}{'s/img':>8}"]
    for t in trials:
        s = t.settings
        lines.append(
            f"{s.sampler:<10}{s.start:<9}{s.steps:>6}{s.beta_start:>12.3g}{s.beta_end:>10.3g}{s.ensemble:>5}"
            f"{t.psnr:>9.2f}{t.ssim:>8.4f}{t.seconds_per_image:>8.2f}"
        )
    return "\n".join(lines)
