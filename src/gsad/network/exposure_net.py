"""A tiny network that estimates a global exposure and colour correction from a thumbnail: the
``learned-exposure`` warm start of the samplers (:func:`gsad.enhance.starts.start_estimate`).

The correction of an sRGB image ``x`` in [0, 1] (per image, the same for every pixel):

1. decode to linear light ``L = srgb_to_linear(x)`` (the exact sRGB EOTF);
2. per-channel gains ``g_c = 2 ** o_c`` in linear light, clipped: ``u_c = min(g_c L_c, 1)``;
3. re-encode, ``v = linear_to_srgb(u)``, then a monotone tone curve ``T``: piecewise linear over
   :data:`CURVE_SEGMENTS` equal segments of [0, 1], knots ``T(k / K) = sum_{i<k} softmax(l)_i`` (so
   ``T(0) = 0``, ``T(1) = 1`` and equal ``l`` give the identity);
4. a do-no-harm guard: ``x + a (T(v) - x)`` with the largest ``a`` in [0, 1] that keeps the
   thumbnail's mean grey level (BT.601, sRGB) within ``LEVEL_FLOOR`` to ``cap(Y)`` times the
   input's, where ``Y`` is the thumbnail's mean linear luminance and ``cap(Y) = LIFT_CAP *
   max(1, DIM_LUMINANCE / Y)``: an image at least as bright as a dim but acceptable photo (a dusk
   scene, a candle-lit room) is lifted at most 1.3 times, darker ones more, in proportion.
   The blend of two monotone curves stays monotone.

The network (:class:`ExposureNet`) sees a ``THUMBNAIL x THUMBNAIL`` area-average of the image
(sRGB and log-linear channels, plus the log mean of each channel and luminance percentiles),
through three strided 3x3 convolutions, average and max pooling and a two-layer MLP, and predicts
``o`` (3) and ``l`` (:data:`CURVE_SEGMENTS`). It averages its outputs over the 8 symmetries of the
thumbnail, so every flipped or transposed view of an image (the samplers' self-ensemble) gets the
same correction. Its weights (``resources/exposure.safetensors``, made by
``benchmarks/default_model/train_exposure.py``) are loaded on first use.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gsad.errors import CheckpointError
from gsad.imaging.exposure import GRAY_WEIGHTS, LUMINANCE, SOFT_EXPOSURE_BRIGHT
from gsad.imaging.geometry import row_bands

#: Side of the square thumbnail the network sees (area average of the whole image).
THUMBNAIL = 64
#: Segments of the tone curve (step 3 of the module docstring).
CURVE_SEGMENTS = 8
#: Guard (step 4): largest mean-level lift of an image at least as bright as a dim photo, the
#: least mean-level ratio of any image, and that dim photo's mean linear luminance (where the
#: soft auto-exposure stops brightening).
LIFT_CAP, LEVEL_FLOOR, DIM_LUMINANCE = 1.3, 0.85, SOFT_EXPOSURE_BRIGHT
#: Range of the per-channel log2 gains ``o`` (1/16x to 1024x).
LOG2_GAIN_RANGE = (-4.0, 10.0)
#: File name of the shipped weights inside ``gsad/resources``.
WEIGHTS = "exposure.safetensors"
#: Largest weights file read (the shipped one is 48 KB).
MAX_WEIGHTS_BYTES = 1 << 20

_LOG2_FLOOR = -12.0  # log2 of the smallest linear value the features resolve (about 1/16 of a level)


def srgb_decode(x: torch.Tensor) -> torch.Tensor:
    """Exact sRGB EOTF on a tensor in [0, 1] (linear light out, same shape)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def srgb_encode(y: torch.Tensor) -> torch.Tensor:
    """Inverse sRGB EOTF on linear light (clipped to [0, 1]). The power is taken of at least the
    linear segment's end, so its gradient stays finite at 0."""
    y = y.clamp(0.0, 1.0)
    return torch.where(y <= 0.0031308, y * 12.92, 1.055 * y.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)


def _weighted(x: torch.Tensor, weights) -> torch.Tensor:
    """``N x 3 x ...`` -> ``N x ...``: the channels' weighted sum."""
    return sum(float(w) * x[:, c] for c, w in enumerate(weights))


def thumbnail(image: torch.Tensor) -> torch.Tensor:
    """``N x 3 x H x W`` (any range) -> ``N x 3 x THUMBNAIL x THUMBNAIL``: area averages of the whole
    image (stretched to a square; pixels repeat where a side is shorter than ``THUMBNAIL``)."""
    return F.adaptive_avg_pool2d(image, THUMBNAIL)


@dataclass(frozen=True)
class Correction:
    """A global correction per image (module docstring): ``log2_gains`` ``N x 3`` (``o``), ``knots``
    ``N x (CURVE_SEGMENTS + 1)`` (``T`` at ``k / K``, from 0 up to 1) and ``blend`` ``N`` (``a``)."""

    log2_gains: torch.Tensor
    knots: torch.Tensor
    blend: torch.Tensor

    def curve(self, x: torch.Tensor) -> torch.Tensor:
        """Steps 1-3 on ``N x 3 x H x W`` sRGB in [0, 1]: ``T(linear_to_srgb(min(g L, 1)))``, the
        piecewise linear ``T`` as ``sum_k (T((k + 1) / K) - T(k / K)) clip(K v - k, 0, 1)``."""
        gains = torch.exp2(self.log2_gains)[:, :, None, None]
        v = srgb_encode(srgb_decode(x) * gains) * CURVE_SEGMENTS
        rises = (self.knots[:, 1:] - self.knots[:, :-1])[:, :, None, None, None]
        return sum(rises[:, k] * (v - k).clamp(0, 1) for k in range(CURVE_SEGMENTS))

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The whole correction (steps 1-4) on ``N x 3 x H x W`` sRGB in [0, 1] -> the same shape and range."""
        blend = self.blend[:, None, None, None]
        return x + blend * (self.curve(x) - x)


def guard_blend(thumb: torch.Tensor, curved: torch.Tensor) -> torch.Tensor:
    """Step 4's ``a`` (``N``) from the thumbnail ``thumb`` and its curve ``curved`` (``N x 3 x h x w``,
    sRGB in [0, 1]): 1 when the mean-level ratio ``r`` is within bounds, else the blend (linear in
    ``a``) that brings it to the bound it passes."""
    level_in = _weighted(thumb, GRAY_WEIGHTS).mean(dim=(1, 2)).clamp(min=1e-6)
    ratio = _weighted(curved, GRAY_WEIGHTS).mean(dim=(1, 2)) / level_in
    luminance = _weighted(srgb_decode(thumb), LUMINANCE).mean(dim=(1, 2)).clamp(min=1e-6)
    cap = LIFT_CAP * (DIM_LUMINANCE / luminance).clamp(min=1.0)
    over = (cap - 1) / (ratio - 1).clamp(min=1e-6)
    under = (1 - LEVEL_FLOOR) / (1 - ratio).clamp(min=1e-6)
    return torch.where(ratio > cap, over, torch.where(ratio < LEVEL_FLOOR, under, torch.ones_like(ratio))).clamp(0, 1)


def _features(thumb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's inputs from a thumbnail (sRGB in [0, 1]): ``N x 6 x h x w`` maps (sRGB and
    log2 linear light scaled to about [0, 1]) and ``N x 8`` global statistics (log2 mean of each
    channel and of luminance, log2 luminance percentiles 10/50/90/99, all scaled alike)."""
    linear = srgb_decode(thumb)
    log_linear = torch.log2(linear + 2.0**_LOG2_FLOOR) / -_LOG2_FLOOR + 1
    luminance = _weighted(linear, LUMINANCE).flatten(1)
    means = torch.cat([linear.mean(dim=(2, 3)), luminance.mean(dim=1, keepdim=True)], dim=1)
    quantiles = torch.quantile(luminance, torch.tensor([0.1, 0.5, 0.9, 0.99], device=thumb.device), dim=1).T
    stats = torch.log2(torch.cat([means, quantiles], dim=1) + 2.0**_LOG2_FLOOR) / -_LOG2_FLOOR + 1
    return torch.cat([thumb, log_linear], dim=1), stats


def _symmetries(x: torch.Tensor) -> torch.Tensor:
    """``N x C x s x s`` -> ``8N x C x s x s``: the 8 flips and transposes of each square map, stacked by symmetry."""
    views = [x, x.flip(-1), x.flip(-2), x.flip(-1, -2)]
    return torch.cat(views + [v.transpose(-1, -2) for v in views])


class ExposureNet(nn.Module):
    """Thumbnail -> :class:`Correction` (module docstring). ``width``: channels of the last convolution."""

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        self.width = width
        self.convs = nn.ModuleList([
            nn.Conv2d(6, width // 2, 3, stride=2, padding=1),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
        ])
        self.hidden = nn.Linear(2 * width + 8, 48)
        self.head = nn.Linear(48, 3 + CURVE_SEGMENTS)
        nn.init.zeros_(self.head.weight)  # starts as the identity: gains 1, a straight curve
        nn.init.zeros_(self.head.bias)

    def forward(self, thumb: torch.Tensor, symmetric: bool = True) -> Correction:
        """``N x 3 x THUMBNAIL x THUMBNAIL`` in [-1, 1] (:func:`thumbnail` of an image in [-1, 1]) ->
        the correction of each image. ``symmetric=False`` skips the average over the 8 views (one
        eighth of the work; training, on randomly flipped and transposed thumbnails)."""
        thumb01 = ((thumb + 1) / 2).clamp(0, 1)
        maps, stats = _features(thumb01)
        views = 8 if symmetric else 1
        # 1. features of the 8 symmetric views (or of the thumbnail alone)
        h = _symmetries(maps) if symmetric else maps
        for conv in self.convs:
            h = F.relu(conv(h))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        # 2. outputs per view, averaged over the views (the statistics are the same for all)
        out = self.head(F.relu(self.hidden(torch.cat([pooled, stats.repeat(views, 1)], dim=1))))
        out = out.view(views, thumb.shape[0], -1).mean(dim=0)
        # 3. gains, the monotone curve's knots and the guard's blend
        log2_gains = out[:, :3].clamp(*LOG2_GAIN_RANGE)
        knots = F.pad(torch.softmax(out[:, 3:], dim=1).cumsum(dim=1), (1, 0))
        unguarded = Correction(log2_gains, knots, torch.ones(thumb.shape[0], device=thumb.device))
        return Correction(log2_gains, knots, guard_blend(thumb01, unguarded.curve(thumb01)))


def default_weights() -> Path:
    """Path of the shipped weights."""
    return Path(str(resources.files("gsad") / "resources" / WEIGHTS))


def load_exposure_net(path: str | os.PathLike | None = None) -> ExposureNet:
    """The network with the weights of ``path`` (default: the shipped ones, :func:`default_weights`),
    in eval mode without gradients, loaded once per path; a missing, unreadable or wrong file is one
    CheckpointError line."""
    return _load(Path(path) if path is not None else default_weights())


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> ExposureNet:
    from safetensors.torch import load

    try:
        if path.stat().st_size > MAX_WEIGHTS_BYTES:
            raise CheckpointError(f"{path}: not exposure-network weights (over {MAX_WEIGHTS_BYTES:,} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read the exposure network's weights ({exc.strerror or exc})") from None
    try:
        tensors = load(data)
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{path}: not a safetensors file ({str(exc).splitlines()[0]})") from None
    width = tensors["convs.2.weight"].shape[0] if "convs.2.weight" in tensors else 0
    net = ExposureNet(width) if width >= 2 else None
    if net is None or set(tensors) != set(net.state_dict()) or any(
            tensors[k].shape != v.shape for k, v in net.state_dict().items()):
        raise CheckpointError(f"{path}: not exposure-network weights (unexpected tensor names or shapes)")
    net.load_state_dict(tensors)
    return net.eval().requires_grad_(False)


@torch.no_grad()
def learned_exposure(low: torch.Tensor, net: ExposureNet | None = None) -> torch.Tensor:
    """The learned global correction of each image of ``low`` (``N x 3 x H x W`` in [-1, 1], any
    device) -> the same shape, range and device, float32. ``net``: default, the shipped one.
    Applied by bands of rows (:func:`~gsad.imaging.geometry.row_bands`), so its temporaries are
    those of one band."""
    net = load_exposure_net() if net is None else net
    x = low.float()
    correction = net(thumbnail(x).cpu())
    correction = Correction(*(t.to(x.device) for t in (correction.log2_gains, correction.knots, correction.blend)))
    out = torch.empty_like(x)
    for rows in row_bands(*x.shape[-2:]):
        out[..., rows, :] = correction.apply((x[..., rows, :] + 1) / 2) * 2 - 1
    return out
