"""Videos: every frame through an :class:`~gsad.enhance.enhancer.Enhancer`, temporally stable.

A diffusion sampler run on each frame with fresh noise flickers: the output's residual noise
and small tone changes differ from frame to frame even where the scene is still. Three things
keep the output steady (:class:`FrameEnhancer`):

1. **The same noise field for every frame** (``noise="same"``, the default): each frame's
   trajectories draw x_T and every step's noise from ``Generator().manual_seed(seed + k)``
   afresh, as a single image does, so two identical frames give identical outputs and similar
   frames similar ones. ``noise="fresh"`` draws on from one generator across frames (the
   reference test script's habit): the naive per-frame baseline the flicker figures compare with.
2. **The warm start**: a trajectory started from the frame's auto-exposure noised to the first
   level (:func:`~gsad.enhance.starts.start_estimate`) only corrects an estimate that follows
   the input; :func:`video_settings` uses ``soft-exposure`` when the checkpoint starts from noise
   and the user did not choose.
3. **Optional temporal blending** (``blend`` > 0): where the input did not change since the last
   frame (its local mean absolute change, a 9 x 9 box, is at the level sensor noise alone gives),
   the output is a recursive average with the previous output (:func:`enhance_video` and
   ``gsad enhance CLIP`` blend with weight up to ``DEFAULT_BLEND`` = 0.5 unless told otherwise):

       d   = box9(|Y_t - Y_{t-1}|)            (luma of the input, 0-255)
       n   = 1.128 sigma_t                    (E|difference of two noisy frames| = 2 sigma / sqrt(pi))
       w   = blend * clip(2 - d / n, 0, 1)    (full weight up to n, none from 2 n on)
       O_t = w O_{t-1} + (1 - w) E_t          (E_t: this frame's enhanced output)

   with sigma_t the input's noise level (Immerkaer's estimate). Moving parts (d well above the
   noise) are never blended, so nothing ghosts.

:func:`enhance_video` streams a file through :func:`gsad.imaging.video.transcode`: one frame in
memory at a time, any length.

**Under torchrun** (``ctx``): the recursion is cheap and the sampling is not, so they are split
(:meth:`FrameEnhancer.enhanced` gives E_t, :meth:`FrameEnhancer.blended` O_t). With
``noise="same"`` E_t depends on frame t alone, so the frames are dealt to the ranks in
round-robin chunks (:class:`~gsad.enhance.parallel.FrameShare`): each rank decodes the whole span
(:func:`~gsad.imaging.video.decode_span`) and computes E_t for its own chunks' frames only; rank 0
takes every E_t in frame order (its own, or the uint8 array another rank sent: the exact bytes),
runs the recursion and encodes. The output is one process's byte for byte, for every ``blend``.
``noise="fresh"`` cannot be split (frame t's noise is what the frames before it left in the one
generator): rank 0 then enhances the whole video alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from gsad.config import SamplerConfig, check_exposure, check_real
from gsad.enhance.enhancer import Enhancer
from gsad.imaging.exposure import adjust_exposure
from gsad.imaging.tensors import from_model, to_model
from gsad.imaging.video import DEFAULT_BLEND, DEFAULT_CRF, TranscodeResult, decode_span, transcode

if TYPE_CHECKING:
    from gsad.runtime.distributed import Context

#: ``noise`` choices of :class:`FrameEnhancer`.
NOISE_MODES = ("same", "fresh")
#: Side of the box over which the input's change is averaged before it is compared with its noise.
CHANGE_WINDOW = 9
#: Warm start taken for videos when the checkpoint's sampler starts from pure noise.
VIDEO_START = "soft-exposure"


def video_settings(enhancer: Enhancer, **overrides: object) -> SamplerConfig:
    """``enhancer.settings(**overrides)``, starting from :data:`VIDEO_START` (a warm start) instead of
    pure noise when neither the checkpoint nor ``overrides`` chose a warm start."""
    settings = enhancer.settings(**overrides)
    if overrides.get("start") is None and settings.start == "noise":
        settings = enhancer.settings(settings, start=VIDEO_START)
    return settings


def luma(frame: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an ``H x W x 3`` uint8 frame, float64 ``H x W`` in 0-255."""
    return frame.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def noise_sigma(gray: np.ndarray) -> float:
    """Standard deviation of white noise in ``gray`` (``H x W``, float): Immerkaer (1996),

        sigma = sqrt(pi / 2) / (6 (W - 2) (H - 2)) * sum |gray * N|,  N = [[1,-2,1],[-2,4,-2],[1,-2,1]]

    (the mask cancels smooth structure, so what is left is the noise); 0 for frames under 3 x 3."""
    h, w = gray.shape
    if h < 3 or w < 3:
        return 0.0
    g = gray
    conv = (g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
            - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
            + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:])
    return float(math.sqrt(math.pi / 2) * np.abs(conv).sum() / (6.0 * (w - 2) * (h - 2)))


def still_weight(previous: np.ndarray, current: np.ndarray, blend: float) -> np.ndarray:
    """The blending weight ``w`` (``H x W x 1``, in [0, blend]) of the previous output where the
    input frames ``previous`` -> ``current`` (uint8 ``H x W x 3``) did not change (module docstring)."""
    from scipy.ndimage import uniform_filter

    y0, y1 = luma(previous), luma(current)
    change = uniform_filter(np.abs(y1 - y0), CHANGE_WINDOW, mode="reflect")
    floor = max(1.128 * 0.5 * (noise_sigma(y0) + noise_sigma(y1)), 0.5)  # at least 8-bit rounding
    return (blend * np.clip(2.0 - change / floor, 0.0, 1.0))[..., None]


class FrameEnhancer:
    """Enhance the frames of one video in order (``H x W x 3`` uint8 in, the same out); see the module
    docstring for ``noise`` and ``blend``. ``tile`` and ``exposure`` as in
    :meth:`~gsad.enhance.enhancer.Enhancer.enhance`; ``callback(step, total)`` for each frame's steps.

    Calling it on a frame is :meth:`blended` of :meth:`enhanced`: the expensive part E_t, which with
    ``noise="same"`` depends on the frame alone (so any process may compute it, in any order), and
    the cheap recursive part O_t, which must see every frame in order."""

    def __init__(self, enhancer: Enhancer, settings: SamplerConfig, *, tile: int | None = None,
                 exposure: float = 0.0, noise: str = "same", blend: float = 0.0,
                 callback: Callable[[int, int], None] | None = None) -> None:
        if noise not in NOISE_MODES:
            raise ValueError(f"noise must be one of {NOISE_MODES}, got {noise!r}")
        self.enhancer, self.settings, self.tile, self.callback = enhancer, settings, tile, callback
        self.exposure = check_exposure(exposure)
        self.blend = check_real(blend, "temporal blend", 0.0, 1.0)
        # "fresh": one stream drawn on across frames; "same": None, so each frame seeds its own.
        self.generator = torch.Generator().manual_seed(settings.seed) if noise == "fresh" else None
        self._previous: tuple[np.ndarray, np.ndarray] | None = None  # (input, float output) of the last frame

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.blended(frame, self.enhanced(frame))

    def enhanced(self, frame: np.ndarray) -> np.ndarray:
        """E_t: ``frame`` through the model (sampling, then ``exposure``), ``H x W x 3`` uint8."""
        low = to_model(np.ascontiguousarray(frame))
        out = self.enhancer.enhance_tensor(low, self.settings, self.callback, self.tile, self.generator)
        return adjust_exposure(from_model(out), self.exposure)

    def blended(self, frame: np.ndarray, enhanced: np.ndarray) -> np.ndarray:
        """O_t = w O_{t-1} + (1 - w) E_t (module docstring), rounded to uint8, from the input ``frame``
        and its :meth:`enhanced` result; called once per frame, in order (it keeps O_t in float64)."""
        result = enhanced.astype(np.float64)
        if self.blend > 0 and self._previous is not None and self._previous[0].shape == frame.shape:
            w = still_weight(self._previous[0], frame, self.blend)
            result = w * self._previous[1] + (1.0 - w) * result
        if self.blend > 0:
            self._previous = (frame.copy(), result)
        return np.clip(np.round(result), 0, 255).astype(np.uint8)


def enhance_video(
    enhancer: Enhancer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    settings: SamplerConfig | None = None,
    *,
    tile: int | None = None,
    exposure: float = 0.0,
    noise: str = "same",
    blend: float = DEFAULT_BLEND,
    codec: str = "h264",
    crf: int = DEFAULT_CRF,
    start_time: float = 0.0,
    duration: float | None = None,
    overwrite: bool = False,
    on_frame: Callable[[], None] | None = None,
    callback: Callable[[int, int], None] | None = None,
    ctx: Context | None = None,
) -> TranscodeResult | None:
    """Enhance every frame of the video ``src`` into ``dst`` (:class:`FrameEnhancer`, then
    :func:`~gsad.imaging.video.transcode`: codec, CRF, the span ``start_time`` + ``duration``,
    audio copied, timestamps and rotation kept, written atomically). ``settings``: default
    :func:`video_settings` (the checkpoint's, with a warm start).

    ``ctx``: a torchrun world (:func:`gsad.runtime.distributed.setup`), which every rank enters
    with the same arguments. The frames' E_t are dealt to the ranks in chunks
    (:class:`~gsad.enhance.parallel.FrameShare`); rank 0 blends them in order, writes ``dst`` and
    returns the result, the other ranks return None. The file is byte for byte one process's
    (each E_t depends on its frame alone; the blend runs in one place, in order), with the same
    network path and threads per process as :mod:`gsad.enhance.parallel` says for images.
    ``noise="fresh"`` draws one noise stream across frames, which cannot be split: rank 0 then
    enhances every frame and the other ranks return None at once. ``on_frame`` (rank 0) runs
    after each frame is written.
    """
    settings = video_settings(enhancer) if settings is None else settings
    frames = FrameEnhancer(enhancer, settings, tile=tile, exposure=exposure, noise=noise, blend=blend,
                           callback=callback)
    if ctx is not None and ctx.distributed and noise == "same":
        from gsad.enhance.parallel import FrameShare

        share = FrameShare(ctx, frames.enhanced)
        if not ctx.is_main:
            decode_span(src, share.offer, start_time=start_time, duration=duration)
            share.flush()
            return None

        def process(frame: np.ndarray) -> np.ndarray:  # rank 0: E_t here or from its rank, blended in order
            return frames.blended(frame, share.result(frame))
    elif ctx is not None and not ctx.is_main:
        return None
    else:
        process = frames
    return transcode(Path(src), Path(dst), process, codec=codec, crf=crf, start_time=start_time, duration=duration,
                     overwrite=overwrite, on_frame=on_frame)
