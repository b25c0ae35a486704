"""Detail restoration: the input's own fine detail put back into a model's output, where that
detail stands above the input's noise.

A short diffusion trajectory ends close to the posterior mean, and a mean smooths whatever
texture the model is not sure of (fur, foliage, gravel come out "painterly"). Much of that
texture is still in the input, only darker and noisier. This step takes the input's detail band,
keeps it where it carries signal (a Wiener-style weight against the band's own noise, measured
on the image itself) and puts it into the output at the output's brightness. On a well-exposed
input nearly all detail passes, so a photo that needs no correction keeps its texture; on a
very noisy input nearly none does, and the model's output is left as it was.

For an output ``x`` (channels ``c``) and the input's luminance ``L`` (Rec. 601 weights,
:data:`gsad.imaging.exposure.GRAY_WEIGHTS`, on sRGB values in [0, 1]), with ``B`` a Gaussian blur of
:data:`DETAIL_SIGMA` px::

    h   = L - B(L)                          the input's detail band
    v   = B2(h^2)                           its local energy (Gaussian of LOCAL_SIGMA px)
    n   = noise energy of the band at the brightness B(L): in each of NOISE_BINS brightness
          bins, the NOISE_QUANTILE quantile of v (the flattest part of the image is noise)
    w   = clip(1 - KAPPA n / v, 0, 1)       0 where the band is noise, 1 where it is signal
    g_c = B(x_c) / B(L)                     local gain from input luminance to output channel c
    x'_c = B(x_c) + (1 - w) (x_c - B(x_c)) + w g_c h
    out = x + strength (x' - x)

So where the input's detail is reliable it replaces the model's (at the model's local colour
and brightness); elsewhere the model's own detail stays. Only the input's luminance detail is
used, so chroma noise never comes back. In sRGB a global linear-light gain ``k`` is the
multiplication ``k^(1/2.2)``, so the ratio ``g_c`` maps detail exactly for a pure exposure
change. The constants were chosen on validation photos (the broad degradation pipeline on the
``val6`` set of benchmarks/default_model), never on the held-out sets.

``strength`` is ``SamplerConfig.detail``: 0 (the default, and the paper) turns this step off.

Memory: the luminance planes ``h`` (in ``L``'s storage), ``B(L)`` and ``v`` are kept whole (4 bytes a
pixel each); everything else (``L`` itself, the blurs, the noise and weight maps, the three-channel
``x``, ``B(x)``, ``g``, ``x'``) is computed a band of rows at a time
(:func:`~gsad.imaging.geometry.row_bands`, with the blur's context rows), into one result image.
Values are those of the whole-image formulas, element for element (the quantiles of the noise
estimate are taken from the same sample of whole planes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from gsad.imaging.exposure import GRAY_WEIGHTS
from gsad.imaging.geometry import row_bands

__all__ = ["DETAIL_SIGMA", "KAPPA", "LOCAL_SIGMA", "NOISE_BINS", "NOISE_QUANTILE", "noise_energy", "restore_detail"]

#: Scale of the detail band (Gaussian sigma in pixels): finer structure than this is "detail".
DETAIL_SIGMA = 1.0
#: Window of the local energy of the band (Gaussian sigma in pixels).
LOCAL_SIGMA = 2.0
#: Brightness bins of the noise estimate (noise grows with brightness for shot noise).
NOISE_BINS = 8
#: Quantile of the local energy taken as the noise energy in each bin.
NOISE_QUANTILE = 0.2
#: How many times the noise energy the band must hold before any of it passes.
KAPPA = 4.0
#: Pixels sampled (evenly) for the statistics of the noise estimate.
_SAMPLES = 200_000
#: Floor of the noise energy: 8-bit quantisation (a uniform error of one level).
_QUANTISATION = (1.0 / 255.0) ** 2 / 12.0


def _radius(sigma: float) -> int:
    """Half-width of :func:`_blur`'s kernel: 3 sigma, at least 1."""
    return max(1, math.ceil(3.0 * sigma))


def _with_context(rows: slice, height: int, sigma: float) -> tuple[slice, tuple[bool, bool]]:
    """The rows a band ``rows`` of :func:`_blur` needs (the band and the blur's radius of context rows,
    where the image has them) and its ``edges`` argument (whether each end is the image's)."""
    radius = _radius(sigma)
    top, bottom = max(0, rows.start - radius), min(height, rows.stop + radius)
    return slice(top, bottom), (top == rows.start, bottom == rows.stop)


def _blur(x: torch.Tensor, sigma: float, edges: tuple[bool, bool] = (True, True)) -> torch.Tensor:
    """Separable Gaussian blur of ``N x C x H x W`` with edge-replicating borders.

    ``edges``: whether the first and last rows of ``x`` are the image's (replicated) or context rows
    of a band (the blur's radius of them, not returned): a band of the whole image's blur."""
    radius = _radius(sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    top, bottom = (radius if edge else 0 for edge in edges)
    if top or bottom:
        x = F.pad(x, (0, 0, top, bottom), mode="replicate")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _banded_blur(plane: torch.Tensor, sigma: float, square: bool = False) -> torch.Tensor:
    """``_blur(plane, sigma)`` (of ``plane * plane`` when ``square``), a band of rows at a time, each
    from the band and the blur's radius of context rows: the same values, with temporaries of one
    band (PyTorch's convolution of one channel would hold several copies of the whole image)."""
    height, width = plane.shape[-2:]
    out = torch.empty_like(plane)
    for rows in row_bands(height, width):
        context, edges = _with_context(rows, height, sigma)
        part = plane[..., context, :]
        out[..., rows, :] = _blur(part * part if square else part, sigma, edges)
    return out


def _noise_table(energy: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The brightness bins of :func:`noise_energy`: (bin centres, noise energy per bin), from an
    even sample of the pixels of one image (``1 x 1 x H x W`` each)."""
    e, lv = energy.flatten(), level.flatten()
    stride = max(1, e.numel() // _SAMPLES)
    e_s, lv_s = e[::stride], lv[::stride]
    order = torch.argsort(lv_s)
    bins = [b for b in torch.tensor_split(order, NOISE_BINS) if b.numel()]
    centres = torch.stack([lv_s[b].median() for b in bins])
    noise = torch.stack([torch.quantile(e_s[b], NOISE_QUANTILE) for b in bins])
    return centres, torch.cummax(noise, 0).values


def _noise_map(table: tuple[torch.Tensor, torch.Tensor], level: torch.Tensor) -> torch.Tensor:
    """Per-pixel noise energy at brightness ``level`` (any shape) from a :func:`_noise_table`."""
    centres, noise = table
    if len(centres) == 1:
        return noise.expand_as(level).clamp_min(_QUANTISATION)
    x = level.flatten().clamp(float(centres[0]), float(centres[-1]))
    i = torch.searchsorted(centres.contiguous(), x.contiguous()).clamp(1, len(centres) - 1)
    lo, hi = centres[i - 1], centres[i]
    t = ((x - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
    return (noise[i - 1] * (1 - t) + noise[i] * t).view_as(level).clamp_min(_QUANTISATION)


def noise_energy(energy: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Per-pixel noise energy of a detail band (``1 x 1 x H x W``), from its local ``energy`` and
    the local brightness ``level``: the :data:`NOISE_QUANTILE` quantile of ``energy`` in each of
    :data:`NOISE_BINS` brightness bins (non-decreasing with brightness), interpolated linearly in
    brightness, never below 8-bit quantisation noise."""
    return _noise_map(_noise_table(energy, level), level)


def restore_detail(output: torch.Tensor, low: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``output`` (``N x 3 x H x W`` in [-1, 1], a model's result for the input ``low``, same
    shape and range) with the input's reliable detail put back (module docstring); the result is
    in [-1, 1]. ``strength`` 0 returns ``output`` unchanged, 1 applies the full step."""
    if output.shape != low.shape or output.ndim != 4 or output.shape[1] != 3:
        raise ValueError(f"output and low must both be N x 3 x H x W, got {tuple(output.shape)} and {tuple(low.shape)}")
    if strength == 0.0:
        return output
    height, width = output.shape[-2:]
    luma = torch.empty((len(low), 1, height, width), device=low.device)
    for rows in row_bands(height, width):
        y = (low[..., rows, :].float() + 1.0) / 2.0
        luma[..., rows, :] = sum(w * y[:, c:c + 1] for c, w in enumerate(GRAY_WEIGHTS))
    base_l = _banded_blur(luma, DETAIL_SIGMA)
    band = luma.sub_(base_l)  # L - B(L), in L's storage
    energy = _banded_blur(band, LOCAL_SIGMA, square=True)
    tables = [_noise_table(energy[k:k + 1], base_l[k:k + 1]) for k in range(len(output))]
    result = torch.empty_like(output)
    for rows in row_bands(height, width):
        context, edges = _with_context(rows, height, DETAIL_SIGMA)  # the band's rows of x and the blur's context
        x = (output[..., context, :].float() + 1.0) / 2.0
        base_x = _blur(x, DETAIL_SIGMA, edges)
        x = x[..., rows.start - context.start : rows.stop - context.start, :]
        base_lb, band_b, energy_b = base_l[..., rows, :], band[..., rows, :], energy[..., rows, :]
        noise = torch.cat([_noise_map(tables[k], base_lb[k:k + 1]) for k in range(len(x))])
        weight = (1.0 - KAPPA * noise / energy_b.clamp_min(1e-12)).clamp(0.0, 1.0)
        gain = base_x / base_lb.clamp_min(1.0 / 255.0)
        restored = base_x + (1.0 - weight) * (x - base_x) + weight * gain * band_b
        out = x + strength * (restored - x)
        result[..., rows, :] = (out.clamp(0.0, 1.0) * 2.0 - 1.0).to(output.dtype)
    return result
