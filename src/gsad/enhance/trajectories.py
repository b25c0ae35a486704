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
from gsad.enhance.starts import start_estimate
from gsad.enhance.tiling import make_denoiser
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
    symmetry: int = 0,
    stride: int | None = None,
) -> torch.Tensor:
    """One sampler run on the ``symmetry``-th :func:`~gsad.imaging.geometry.grid_symmetry` view of
    ``low`` (``1 x 3 x H x W`` in [-1, 1]) with noise from ``generator``: reflect-padded to the
    network's stride, x_T from :func:`~gsad.diffusion.samplers.initial_state` (warm start:
    :func:`~gsad.enhance.starts.start_estimate`), then cropped back and mapped back to ``low``'s grid.

    Whole-image buffers during the sampler: the padded view (the condition; ``low`` itself when no
    flip or padding is needed), x_T and the sampler's own (:func:`~gsad.diffusion.samplers.sample_reference`);
    the view and the warm start are temporaries of the set-up. ``stride``: the network's (default
    ``net.config.stride``; given for a wrapped network, e.g. a student in DistributedDataParallel).

    Differentiable in ``net``'s weights when autograd is on (a distilled student's output)."""
    stride = stride or net.config.stride
    padded, (h, w) = pad_to_multiple(grid_symmetry(low, symmetry), stride)
    cond = padded.to(device)
    # the warm start of the view (padded's top-left corner), passed on without holding it
    x = initial_state(tuple(cond.shape), schedule, generator, device,
                      start_estimate(padded[..., :h, :w], settings.start, stride))
    out = SAMPLERS[settings.sampler](make_denoiser(net, cond, tile, stride), x, schedule, generator, callback)
    return grid_symmetry(out[..., :h, :w], symmetry, inverse=True)


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
        noise = generator if generator is not None else torch.Generator().manual_seed(settings.seed + k)
        out = run_trajectory(net, low, settings, schedule, noise, report, tile, device, k)
        if mean is None:
            mean = out
        else:
            mean += out  # in place: mean is pass 0's own result
        del out  # not held through the next pass
    if border is not None:
        mean = mean[..., border[0] : border[0] + h, border[2] : border[2] + w]
    return mean / settings.ensemble
