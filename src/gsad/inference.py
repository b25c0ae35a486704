"""Enhancer: the library entry point for enhancing images with a GSAD model.

Handles device choice, reflect padding to the network's stride, the sampler call and the
conversion between pixels and model tensors. No argparse here (see ``gsad.cli``).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gsad import fastpath
from gsad.checkpoints import load_checkpoint
from gsad.config import MAX_TILE, SamplerConfig, check_exposure, check_int, with_overrides
from gsad.diffusion.denoiser import Denoiser, InferenceNet
from gsad.diffusion.samplers import SAMPLERS, initial_state
from gsad.diffusion.schedules import Schedule
from gsad.errors import ConfigError, ModelOutputError
from gsad.images import adjust_exposure, as_array, auto_exposure, from_model, soft_auto_exposure, to_model
from gsad.network.unet import UNet
from gsad.tiling import TiledDenoiser

log = logging.getLogger(__name__)

#: File name of the bundled default model inside ``gsad/resources``.
DEFAULT_MODEL = "default.safetensors"

#: Images with more pixels than this are enhanced in tiles unless told otherwise.
AUTO_TILE_PIXELS = 1024 * 1024
#: Tile side and overlap used by automatic tiling.
AUTO_TILE, TILE_OVERLAP = 512, 64


def default_checkpoint() -> Path:
    """Path of the bundled default model."""
    return Path(str(resources.files("gsad") / "resources" / DEFAULT_MODEL))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; any other name is checked and returned."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device: unknown device {device!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} requested but CUDA is not available here")
    return dev


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``N x C x H x W`` at the bottom/right to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W). Falls back to edge replication where
    the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def pad_symmetric(x: torch.Tensor, border: tuple[int, int, int, int]) -> torch.Tensor:
    """Mirror-pad ``... x H x W`` by ``border`` = (top, bottom, left, right) pixels, the edge
    pixel repeated: numpy's ``"symmetric"`` mode, OpenCV's ``BORDER_REFLECT``
    (``[c b a | a b c d | d c b]``). The reference test pipeline pads LOL-v1 and LOL-v2-real
    inputs this way by (8, 8, 4, 4). Each border must not exceed the image side it mirrors.
    """
    top, bottom, left, right = border
    h, w = x.shape[-2:]
    if max(top, bottom) > h or max(left, right) > w:
        raise ValueError(f"border {border} is larger than the {w}x{h} image")
    x = torch.cat([x[..., :top, :].flip(-2), x, x[..., h - bottom :, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :left].flip(-1), x, x[..., w - right :].flip(-1)], dim=-1)


def start_estimate(low: torch.Tensor, start: str, stride: int) -> torch.Tensor | None:
    """The samplers' ``start`` for a trajectory start name: None for ``noise``; for ``exposure``
    the global auto-exposure of each whole image in ``low`` (``soft-exposure``: the soft one,
    :func:`~gsad.images.soft_auto_exposure`) (``N x 3 x H x W`` in [-1, 1]),
    reflect-padded to ``stride`` like the condition (computed before any tiling, so every tile
    starts from the same gain)."""
    if start == "noise":
        return None
    expose = soft_auto_exposure if start == "soft-exposure" else auto_exposure
    exposed = torch.cat([to_model(expose(from_model(x))) for x in low])
    return pad_to_multiple(exposed, stride)[0]


def _offset_progress(callback: Callable[[int, int], None], done: int, total: int, step: int, _: int) -> None:
    """Report step ``step`` of one ensemble pass as ``done + step`` of ``total`` (all passes)."""
    callback(done + step, total)


def grid_symmetry(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th (0-7) symmetry of the pixel grid applied to ``... x H x W`` (or its inverse).

    0 is the identity, 1-3 flip left-right, top-bottom and both; 4-7 are 0-3 followed by a
    transpose (swapping H and W). The self-ensemble (``SamplerConfig.ensemble``) runs
    trajectories on the first ``ensemble`` of them.
    """
    flips = ((), (-1,), (-2,), (-2, -1))[k % 4]
    transpose = k >= 4
    if inverse and transpose:
        x = x.transpose(-2, -1)
    if flips:
        x = x.flip(flips)
    if not inverse and transpose:
        x = x.transpose(-2, -1)
    return x


class Enhancer:
    """Enhance low-light images with a GSAD model.

    ``Enhancer()`` loads the bundled default model; ``Enhancer(path)`` or
    ``Enhancer.from_checkpoint(path)`` loads a gsad ``.safetensors`` file, a training run
    directory or a reference ``.pth`` checkpoint. Sampler settings default to the ones stored
    in the checkpoint and can be overridden per call.

    Speed options (see :class:`~gsad.diffusion.denoiser.InferenceNet` and :mod:`gsad.fastpath`):
    ``precision`` "auto" (default) takes the fastest path on this device whose output stays
    within 1 level of 255 (mean) of fp32, chosen from the hardware and, where that is not
    enough, a short probe cached per machine and model shape; "fp32" (exact: reproduces the
    reference code), "bf16" or "fp16" (CUDA only) run as asked. ``winograd`` runs large 3x3
    convolutions through NNPACK on the CPU (outputs equal up to float rounding);
    ``channels_last`` sets the layout; None (default) lets "auto" choose them, and otherwise
    means Winograd on and channels-last on CUDA only. :attr:`fast_path` says what was taken.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        *,
        precision: str = "auto",
        winograd: bool | None = None,
        channels_last: bool | None = None,
    ) -> None:
        path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
        model, sampler, meta = load_checkpoint(path)
        self._setup(model, sampler, device, precision, winograd, channels_last)
        self.checkpoint = path
        self.metadata = meta

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "auto",
        *,
        precision: str = "auto",
        winograd: bool | None = None,
        channels_last: bool | None = None,
    ) -> Enhancer:
        """Load ``path`` (gsad safetensors, run directory or reference ``.pth``); speed options: see the class."""
        return cls(path, device=device, precision=precision, winograd=winograd, channels_last=channels_last)

    @classmethod
    def from_model(
        cls,
        model: UNet,
        sampler: SamplerConfig | None = None,
        device: str | torch.device = "auto",
        *,
        precision: str = "auto",
        winograd: bool | None = None,
        channels_last: bool | None = None,
    ) -> Enhancer:
        """Wrap an in-memory U-Net (e.g. during training or in tests)."""
        self = cls.__new__(cls)
        self._setup(model, sampler or SamplerConfig(), device, precision, winograd, channels_last)
        self.checkpoint = None
        self.metadata = {}
        return self

    def _setup(
        self,
        model: UNet,
        sampler: SamplerConfig,
        device: str | torch.device,
        precision: str = "auto",
        winograd: bool | None = None,
        channels_last: bool | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.sampler = sampler
        #: How the network runs here and why (:class:`gsad.fastpath.Choice`; ``.describe()`` for logs).
        self.fast_path = fastpath.choose(self.model, self.device, precision, winograd, channels_last)
        log.info("network path: %s", self.fast_path.describe())
        path = self.fast_path.path
        #: The network as the samplers run it (same weights as ``self.model``).
        self.net = InferenceNet(self.model, path.precision, path.channels_last, path.winograd)

    def settings(self, base: SamplerConfig | None = None, **overrides: object) -> SamplerConfig:
        """``base`` (default: the checkpoint's sampler defaults) with the non-None ``overrides``
        (:data:`~gsad.config.SAMPLER_FIELDS`) applied, validated."""
        if base is not None and not isinstance(base, SamplerConfig):
            raise TypeError(f"settings must be a SamplerConfig, got {type(base).__name__}")
        return with_overrides(self.sampler if base is None else base, **overrides)

    def _denoiser(self, cond: torch.Tensor, tile: int | None) -> Denoiser:
        """Plain denoiser, or a tiled one for large images (``tile``: None auto, 0 never, N tile side)."""
        h, w = cond.shape[-2:]
        if tile is None:
            tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0
        tile = check_int(tile, "tile", 0, MAX_TILE)
        stride = self.model.config.stride
        if tile == 0 or (tile >= h and tile >= w):
            return Denoiser(self.net, cond)
        tile = max(tile, 4 * stride)
        return TiledDenoiser(self.net, cond, tile, min(TILE_OVERLAP, tile // 4), stride)

    @torch.inference_mode()
    def enhance_tensor(
        self,
        low: torch.Tensor,
        settings: SamplerConfig,
        callback: Callable[[int, int], None] | None = None,
        tile: int | None = None,
        generator: torch.Generator | None = None,
        border: tuple[int, int, int, int] | None = None,
    ) -> torch.Tensor:
        """``1 x 3 x H x W`` in [-1, 1] -> enhanced ``1 x 3 x H x W`` in [-1, 1] (same size).

        ``settings.start`` picks the trajectory's start (:func:`start_estimate`);
        ``settings.ensemble`` trajectories (on :func:`grid_symmetry` views, seeds ``seed + k``)
        are averaged. ``callback(step, total)`` counts steps over all of them.

        ``generator``: draw all the noise from this generator instead (``settings.seed`` is then
        unused; the caller's stream goes on across calls, as in the reference test script).
        ``border``: (top, bottom, left, right) pixels of :func:`pad_symmetric` padding added
        before the stride padding and cropped off after (the reference test pipeline's).
        """
        schedule = Schedule.linear(settings.steps, settings.beta_start, settings.beta_end)
        self.net.precompute(schedule.sqrt_alpha_bar)  # same levels for every pass
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
            out = self._trajectory(view, settings, schedule, noise, report, tile)
            out = grid_symmetry(out, k, inverse=True)
            mean = out if mean is None else mean + out
        if border is not None:
            mean = mean[..., border[0] : border[0] + h, border[2] : border[2] + w]
        mean = mean / settings.ensemble
        if not bool(torch.isfinite(mean).all()):
            raise ModelOutputError(
                f"{self.checkpoint or 'the model'}: the network produced NaN or infinite values "
                f"({settings.sampler} sampler, {settings.steps} steps, beta {settings.beta_start:g} -> "
                f"{settings.beta_end:g}); nothing was written"
            )
        return mean

    def _trajectory(
        self,
        low: torch.Tensor,
        settings: SamplerConfig,
        schedule: Schedule,
        generator: torch.Generator,
        callback: Callable[[int, int], None] | None,
        tile: int | None,
    ) -> torch.Tensor:
        """One sampler run on ``low`` with noise from ``generator`` (padded to the stride, then cropped
        back); the network's noise terms for ``schedule`` are already precomputed."""
        padded, (h, w) = pad_to_multiple(low, self.model.config.stride)
        cond = padded.to(self.device)
        start = start_estimate(low, settings.start, self.model.config.stride)
        x = initial_state(tuple(cond.shape), schedule, generator, self.device, start)
        out = SAMPLERS[settings.sampler](self._denoiser(cond, tile), x, schedule, generator, callback)
        return out[..., :h, :w]

    def enhance(
        self,
        image: np.ndarray | Image.Image,
        settings: SamplerConfig | None = None,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        beta_start: float | None = None,
        beta_end: float | None = None,
        seed: int | None = None,
        start: str | None = None,
        ensemble: int | None = None,
        tile: int | None = None,
        exposure: float = 0.0,
        callback: Callable[[int, int], None] | None = None,
    ) -> np.ndarray | Image.Image:
        """Enhance one image; returns the same kind (uint8 ``H x W x 3`` array or PIL image), same size.

        ``settings``: the sampler options as one :class:`~gsad.config.SamplerConfig` (default: the
        checkpoint's); the keywords ``sampler`` ... ``ensemble`` override single options of it
        (unset ones keep its values). ``tile``: None tiles images over
        ``AUTO_TILE_PIXELS`` automatically, 0 never tiles, N (up to ``MAX_TILE``) forces tiles of
        side N (bounded memory for any size). ``exposure``: stops of brightness added to (or,
        negative, taken from) the model's result, within +-``MAX_EXPOSURE`` (gsad.config).
        ``callback(step, total)`` reports progress. Out-of-range or non-integer options raise
        :class:`~gsad.errors.ConfigError`; a non-finite network output raises
        :class:`~gsad.errors.ModelOutputError` (never a black image).
        """
        settings = self.settings(
            settings, sampler=sampler, steps=steps, beta_start=beta_start, beta_end=beta_end, seed=seed, start=start,
            ensemble=ensemble,
        )
        exposure = check_exposure(exposure)
        if tile is not None:
            tile = check_int(tile, "tile", 0, MAX_TILE)
        pixels = as_array(image)
        out = from_model(self.enhance_tensor(to_model(pixels), settings, callback, tile))
        out = adjust_exposure(out, exposure)
        return Image.fromarray(out) if isinstance(image, Image.Image) else out
