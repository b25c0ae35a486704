"""Enhancer: the library entry point for enhancing images with a GSAD model.

Only the public surface: loading a model, choosing the device and the network path
(:mod:`gsad.runtime.fastpath`), resolving sampler settings, pixels in and out. Running the sampler on an
image (padding, warm start, tiling, self-ensemble) is :mod:`gsad.enhance.trajectories`. No argparse here
(see ``gsad.cli``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gsad.checkpoints import DEFAULT_MODEL, default_checkpoint, load_checkpoint
from gsad.config import MAX_TILE, SamplerConfig, check_exposure, check_int, with_overrides
from gsad.enhance.detail import restore_detail
from gsad.enhance.trajectories import run_ensemble
from gsad.errors import InputError, ModelOutputError
from gsad.imaging.exposure import adjust_exposure
from gsad.imaging.io import as_array
from gsad.imaging.tensors import from_model, from_model_unit, to_model
from gsad.network.unet import UNet
from gsad.runtime import fastpath
from gsad.runtime.devices import resolve_device

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "Enhancer", "default_checkpoint", "resolve_device"]


class Enhancer:
    """Enhance low-light images with a GSAD model.

    ``Enhancer()`` loads the bundled default model; ``Enhancer(path)`` or
    ``Enhancer.from_checkpoint(path)`` loads a gsad ``.safetensors`` file, a training run
    directory or a reference ``.pth`` checkpoint. Sampler settings default to the ones stored
    in the checkpoint and can be overridden per call.

    Speed options (see :class:`~gsad.network.inference_net.InferenceNet` and :mod:`gsad.runtime.fastpath`):
    ``precision`` "auto" (default) takes the fastest path on this device whose output stays
    within 1 level of 255 (mean) of fp32, chosen from the hardware and, where that is not
    enough, a short probe cached per machine and model shape; "fp32" (exact: reproduces the
    reference code), "bf16" or "fp16" (CUDA only) run as asked. ``winograd`` runs large 3x3
    convolutions through NNPACK on the CPU (outputs equal up to float rounding);
    ``channels_last`` sets the layout; None (default) lets "auto" choose them, and otherwise
    means Winograd on and channels-last on CUDA only. ``engine`` (None: ``$GSAD_ENGINE`` or
    "auto"): "auto" lets an "auto" precision also try ONNX Runtime and OpenVINO where
    ``gsad[fast]`` is installed; "torch", "onnxruntime" or "openvino" runs that engine
    (:mod:`gsad.runtime.engines`). :attr:`fast_path` says what was taken.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        device: str | torch.device = "auto",
        *,
        precision: str = "auto",
        winograd: bool | None = None,
        channels_last: bool | None = None,
        engine: str | None = None,
    ) -> None:
        path = Path(checkpoint) if checkpoint is not None else default_checkpoint()
        model, sampler, meta = load_checkpoint(path)
        self._setup(model, sampler, device, precision, winograd, channels_last, engine)
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
        engine: str | None = None,
    ) -> Enhancer:
        """Load ``path`` (gsad safetensors, run directory or reference ``.pth``); speed options: see the class."""
        return cls(path, device=device, precision=precision, winograd=winograd, channels_last=channels_last,
                   engine=engine)

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
        engine: str | None = None,
    ) -> Enhancer:
        """Wrap an in-memory U-Net (e.g. during training or in tests)."""
        self = cls.__new__(cls)
        self._setup(model, sampler or SamplerConfig(), device, precision, winograd, channels_last, engine)
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
        engine: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.sampler = sampler
        #: How the network runs here and why (:class:`gsad.runtime.fastpath.Choice`; ``.describe()`` for logs).
        self.fast_path = fastpath.choose(self.model, self.device, precision, winograd, channels_last, engine)
        log.info("network path: %s", self.fast_path.describe())
        #: The network as the samplers run it (same weights as ``self.model``): an
        #: :class:`~gsad.network.inference_net.InferenceNet`, or another engine's net.
        self.net = fastpath.build_net(self.model, self.fast_path.path)

    def settings(self, base: SamplerConfig | None = None, **overrides: object) -> SamplerConfig:
        """``base`` (default: the checkpoint's sampler defaults) with the non-None ``overrides``
        (:data:`~gsad.config.SAMPLER_FIELDS`) applied, validated."""
        if base is not None and not isinstance(base, SamplerConfig):
            raise TypeError(f"settings must be a SamplerConfig, got {type(base).__name__}")
        return with_overrides(self.sampler if base is None else base, **overrides)

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

        ``settings.start`` picks the trajectory's start (:func:`~gsad.enhance.starts.start_estimate`);
        ``settings.ensemble`` trajectories (on :func:`~gsad.imaging.geometry.grid_symmetry` views, seeds
        ``seed + k``) are averaged (:func:`~gsad.enhance.trajectories.run_ensemble`). ``callback(step,
        total)`` counts steps over all of them. ``tile``: as in :meth:`enhance`.

        ``generator``: draw all the noise from this generator instead (``settings.seed`` is then
        unused; the caller's stream goes on across calls, as in the reference test script).
        ``border``: (top, bottom, left, right) pixels of :func:`~gsad.imaging.geometry.pad_symmetric` padding added
        before the stride padding and cropped off after (the reference test pipeline's).
        ``settings.detail`` > 0 then puts the input's reliable detail back
        (:func:`~gsad.enhance.detail.restore_detail`).
        """
        mean = run_ensemble(self.net, low, settings, callback, tile, generator, border, self.device)
        if not bool(torch.isfinite(mean).all()):
            raise ModelOutputError(
                f"{self.checkpoint or 'the model'}: the network produced NaN or infinite values "
                f"({settings.sampler} sampler, {settings.steps} steps, beta {settings.beta_start:g} -> "
                f"{settings.beta_end:g}); nothing was written"
            )
        return restore_detail(mean, low, settings.detail)  # the identity when settings.detail is 0

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
        detail: float | None = None,
        tile: int | None = None,
        exposure: float = 0.0,
        callback: Callable[[int, int], None] | None = None,
        as_float: bool = False,
    ) -> np.ndarray | Image.Image:
        """Enhance one image; returns the same kind (uint8 ``H x W x 3`` array or PIL image), same size.

        ``settings``: the sampler options as one :class:`~gsad.config.SamplerConfig` (default: the
        checkpoint's); the keywords ``sampler`` ... ``detail`` override single options of it
        (unset ones keep its values). ``tile``: None tiles images over
        ``gsad.enhance.tiling.AUTO_TILE_PIXELS`` automatically, 0 never tiles, N (up to ``MAX_TILE``) forces tiles of
        side N: the network's memory is bounded by the tile (about 2 KB per tile pixel in fp32 on the CPU),
        the image's buffers take about 85 bytes per pixel (45 with one pass of one step; docs/usage.md).
        ``exposure``: stops of brightness added to (or,
        negative, taken from) the model's result, within +-``MAX_EXPOSURE`` (gsad.config).
        ``callback(step, total)`` reports progress. A float ``H x W x 3`` array is taken as sRGB in
        [0, 1] (a 16-bit or RAW source; values outside clipped) and gives a float32 array in [0, 1];
        ``as_float`` gives that for any input: the model's output unrounded, for 16-bit files.
        Out-of-range or non-integer options raise
        :class:`~gsad.errors.ConfigError`; a non-finite network output raises
        :class:`~gsad.errors.ModelOutputError` (never a black image).
        """
        settings = self.settings(
            settings, sampler=sampler, steps=steps, beta_start=beta_start, beta_end=beta_end, seed=seed, start=start,
            ensemble=ensemble, detail=detail,
        )
        exposure = check_exposure(exposure)
        if tile is not None:
            tile = check_int(tile, "tile", 0, MAX_TILE)
        floats = isinstance(image, np.ndarray) and np.issubdtype(image.dtype, np.floating)
        pixels = image if floats else as_array(image)
        if floats and (image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1):
            raise InputError(f"expected an H x W x 3 image array, got shape {tuple(image.shape)}")
        enhanced = self.enhance_tensor(to_model(pixels), settings, callback, tile)
        if floats or as_float:
            return adjust_exposure(from_model_unit(enhanced), exposure)
        out = adjust_exposure(from_model(enhanced), exposure)
        return Image.fromarray(out) if isinstance(image, Image.Image) else out
