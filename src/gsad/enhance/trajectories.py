"""One image through a sampler: stride padding, the warm start, tiling and the self-ensemble.

The glue between :class:`~gsad.enhance.enhancer.Enhancer` (the public surface) and the sampler
functions of :mod:`gsad.diffusion.samplers`: :func:`run_ensemble` averages
``settings.ensemble`` trajectories, each :func:`run_trajectory` on one symmetry of the pixel
grid (:func:`~gsad.imaging.geometry.grid_symmetry`) with its own seed. No files, no argparse.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from gsad.config import SamplerConfig
from gsad.diffusion.samplers import SAMPLERS, initial_state
from gsad.diffusion.schedules import Schedule
from gsad.enhance.tiling import make_denoiser
from gsad.imaging.exposure import start_estimate
from gsad.imaging.geometry import grid_symmetry, pad_symmetric, pad_to_multiple

Progress = Callable[[int, int], None] | None


def run_trajectory(
    net: torch.nn.Module,
    low: torch.Tensor,
    settings: SamplerConfig,
    schedule: Schedule,
    generator: torch.Generator,
    callback: Progress = None,
    tile: int | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """One sampler run on ``low`` (``1 x 3 x H x W`` in [-1, 1]) with noise from ``generator``:
    reflect-padded to the network's stride, x_T from :func:`~gsad.diffusion.samplers.initial_state`
    (warm start: :func:`~gsad.imaging.exposure.start_estimate`), then cropped back to H x W."""
    stride = net.config.stride
    padded, (h, w) = pad_to_multiple(low, stride)
    cond = padded.to(device)
    start = start_estimate(low, settings.start, stride)
    x = initial_state(tuple(cond.shape), schedule, generator, device, start)
    out = SAMPLERS[settings.sampler](make_denoiser(net, cond, tile, stride), x, schedule, generator, callback)
    return out[..., :h, :w]


def _offset_progress(callback: Callable[[int, int], None], done: int, total: int, step: int, _: int) -> None:
    """Report step ``step`` of one ensemble pass as ``done + step`` of ``total`` (all passes)."""
    callback(done + step, total)


def run_ensemble(
    net: torch.nn.Module,
    low: torch.Tensor,
    settings: SamplerConfig,
    callback: Progress = None,
    tile: int | None = None,
    generator: torch.Generator | None = None,
    border: tuple[int, int, int, int] | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """The mean of ``settings.ensemble`` trajectories on ``low`` (``1 x 3 x H x W`` in [-1, 1]).

    Pass k runs on the k-th :func:`~gsad.imaging.geometry.grid_symmetry` view with seed
    ``settings.seed + k`` (or all from ``generator``, whose stream goes on across calls) and is
    mapped back; ``callback(step, total)`` counts steps over all passes. ``border``:
    (top, bottom, left, right) pixels of :func:`~gsad.imaging.geometry.pad_symmetric` padding added
    first and cropped off after. The network's noise terms are precomputed for the schedule.
    """
    schedule = Schedule.linear(settings.steps, settings.beta_start, settings.beta_end)
    net.precompute(schedule.sqrt_alpha_bar)  # same levels for every pass
    h, w = low.shape[-2:]
    if border is not None:
        low = pad_symmetric(low, border)
    total = settings.steps * settings.ensemble
    mean = None
    for k in range(settings.ensemble):
        report = None
        if callback is not None:
            report = functools.partial(_offset_progress, callback, k * settings.steps, total)
        view = grid_symmetry(low, k)
        noise = generator if generator is not None else torch.Generator().manual_seed(settings.seed + k)
        out = run_trajectory(net, view, settings, schedule, noise, report, tile, device)
        out = grid_symmetry(out, k, inverse=True)
        mean = out if mean is None else mean + out
    if border is not None:
        mean = mean[..., border[0] : border[0] + h, border[2] : border[2] + w]
    return mean / settings.ensemble
