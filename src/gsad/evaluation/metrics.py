"""Image quality metrics, the paper's protocol (DESIGN.md section 4); no file walking.

All functions take ``H x W x 3`` uint8 RGB arrays (``out`` = the method's output,
``gt`` = the normal-light reference) and compute in float64.

* :func:`psnr`: ``10 log10(255^2 / MSE)``, MSE over all pixels and channels.
* :func:`ssim`: scikit-image ``structural_similarity`` on the 8-bit colour images, 7x7
  uniform window, data range 255, sample covariance, mean over the three channels.
* :func:`gt_mean_adjust`: the GT-mean protocol, which rescales the output's brightness
  to the reference's before scoring (the paper reports only this; we report both).
* :class:`LPIPS`: AlexNet LPIPS (v0.1) on images scaled to [-1, 1], only where the weights
  already exist on this machine; nothing is ever downloaded.
* :func:`detail_ratio`: fine-detail energy of ``out`` over ``gt`` (Laplacian variance of the
  grey image): below 1 the output is smoother than the reference, above 1 it holds more
  high frequencies (noise, invented grain); ~1 is the target.
* :func:`mean_level`: mean grey level, for the brightness ratios of the do-no-harm check.
* :func:`frame_change`, :func:`flicker`: the mean absolute change between consecutive video
  frames, and the output's over the input's (temporal stability of a video's enhancement).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from gsad.errors import DependencyError, InputError
from gsad.imaging.exposure import GRAY_WEIGHTS

if TYPE_CHECKING:
    from gsad.evaluation.lpips import LPIPS


def _check_pair(img1: np.ndarray, img2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(img1), np.asarray(img2)
    for arr in (a, b):
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise InputError(f"metrics expect H x W x 3 uint8 images, got shape {arr.shape} dtype {arr.dtype}")
    if a.shape != b.shape:
        raise InputError(f"images differ in size: {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}")
    return a, b


#: What to run when scikit-image is missing (a core dependency; the ``eval`` extra also names it).
SKIMAGE_INSTALL = 'pip install "gsad[eval]"'


def require_skimage():
    """scikit-image's ``structural_similarity``, imported on first use so that ``gsad --help`` and
    enhancing never need it; :class:`DependencyError` (one line naming the install command) if missing."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError as exc:
        raise DependencyError(f"SSIM needs scikit-image, which is not importable here ({exc}); "
                              f"install it with: {SKIMAGE_INSTALL}") from None
    return structural_similarity


def psnr(img1: np.ndarray, img2: np.ndarray) -> float:
    """PSNR in dB of two ``H x W x 3`` uint8 images: ``10 log10(255^2 / MSE)``.

    MSE is the float64 mean over all pixels and channels; identical images give ``inf``.
    """
    a, b = _check_pair(img1, img2)
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


#: The smallest side SSIM's 7x7 window fits in: every scored image needs at least this many pixels each way.
SSIM_MIN_SIDE = 7


def ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of two ``H x W x 3`` uint8 images, as scikit-image computes it.

    ``structural_similarity(win_size=7, data_range=255, channel_axis=2,
    gaussian_weights=False, use_sample_covariance=True)``: a 7x7 uniform window, the
    mean of the SSIM map (without a 3-pixel border) per channel, averaged over channels.
    Images need at least 7 pixels on each side.
    """
    a, b = _check_pair(img1, img2)
    if min(a.shape[:2]) < SSIM_MIN_SIDE:
        raise InputError(f"SSIM needs images of at least {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels, "
                         f"got {a.shape[1]}x{a.shape[0]}")
    structural_similarity = require_skimage()
    return float(
        structural_similarity(
            a,
            b,
            win_size=7,
            data_range=255,
            channel_axis=2,
            gaussian_weights=False,
            use_sample_covariance=True,
        )
    )


def gray_mean(img01: np.ndarray) -> np.float32:
    """Mean grey level of an ``H x W x 3`` RGB image in [0, 1], as the reference computes it:
    the image cast to float32, ``gray = 0.114 B + 0.587 G + 0.299 R`` per pixel in float32
    (OpenCV's ``COLOR_BGR2GRAY`` on BGR data, i.e. the ordinary luma), then numpy's float32
    mean of the grey image. Returns a float32 scalar."""
    x = np.asarray(img01).astype(np.float32)
    r_w, g_w, b_w = (np.float32(w) for w in GRAY_WEIGHTS)
    gray = x[..., 2] * b_w + x[..., 1] * g_w + x[..., 0] * r_w
    return gray.mean()


def gt_mean_adjust(out_u8: np.ndarray, gt_u8: np.ndarray) -> np.ndarray:
    """The GT-mean protocol: scale ``out`` so its mean grey level equals the reference's.

    With ``out01 = out / 255``, ``gt01 = gt / 255`` (float64) and grey means from
    :func:`gray_mean` (``gray = 0.299 R + 0.587 G + 0.114 B``, float32 as in the reference):
    ``scale = gray_mean(gt01) / gray_mean(out01)`` (float32), ``adjusted = clip(out01 *
    scale, 0, 1)``, returned as ``floor(adjusted * 255)`` (truncation), ``H x W x 3`` uint8.
    This is the reference test script's arithmetic step for step (its ``tensor2img`` gives
    BGR arrays, so OpenCV's BGR2GRAY weighs R by 0.299 and B by 0.114, as here). An
    all-black ``out`` cannot be rescaled and is returned unchanged.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    out01, gt01 = out / 255.0, gt / 255.0
    mean_out = gray_mean(out01)
    if mean_out == 0.0:
        return out.copy()
    scale = gray_mean(gt01) / mean_out  # float32, as in the reference
    adjusted = np.clip(out01 * np.float64(scale), 0.0, 1.0)
    return (adjusted * 255.0).astype(np.uint8)


def gray(image: np.ndarray) -> np.ndarray:
    """``H x W`` float64 grey levels (0-255) of an ``H x W x 3`` uint8 image (BT.601 weights)."""
    return np.asarray(image, dtype=np.float64) @ np.asarray(GRAY_WEIGHTS, dtype=np.float64)


def mean_level(image: np.ndarray) -> float:
    """Mean grey level (0-255, :data:`GRAY_WEIGHTS`) of an ``H x W x 3`` uint8 image."""
    a, _ = _check_pair(image, image)
    return float(gray(a).mean())


def laplacian_variance(image: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the grey image (0-255 levels), over the
    pixels that have all four neighbours: the energy of fine detail and noise."""
    a, _ = _check_pair(image, image)
    if min(a.shape[:2]) < 3:
        raise InputError(f"the Laplacian needs images of at least 3x3 pixels, got {a.shape[1]}x{a.shape[0]}")
    g = gray(a)
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


def detail_ratio(out_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    """``laplacian_variance(out) / laplacian_variance(gt)``: 1 when the output holds as much
    fine detail as the reference, < 1 smoothed ("painterly"), > 1 added grain or noise.

    A flat reference gives 1.0 for a flat output and ``inf`` otherwise.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    reference = laplacian_variance(gt)
    value = laplacian_variance(out)
    if reference == 0.0:
        return 1.0 if value == 0.0 else math.inf
    return value / reference


def score_pair(out_u8: np.ndarray, gt_u8: np.ndarray, lpips: LPIPS | None = None) -> dict[str, float]:
    """All scores of one output against its reference, in both protocols.

    Returns ``{"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"}`` (plus ``"lpips"`` and
    ``"lpips_gtmean"`` when an :class:`LPIPS` scorer is given); the ``*_gtmean`` scores
    are of :func:`gt_mean_adjust`\\ (out, gt) against ``gt``.
    """
    out, gt = _check_pair(out_u8, gt_u8)
    adjusted = gt_mean_adjust(out, gt)
    scores = {
        "psnr": psnr(out, gt),
        "ssim": ssim(out, gt),
        "psnr_gtmean": psnr(adjusted, gt),
        "ssim_gtmean": ssim(adjusted, gt),
    }
    if lpips is not None:
        scores["lpips"] = lpips(out, gt)
        scores["lpips_gtmean"] = lpips(adjusted, gt)
    return scores


def frame_change(frames: Iterable[np.ndarray]) -> float:
    """Mean absolute change between consecutive frames (``H x W x 3`` uint8, streamed: only the
    previous frame is kept), in levels of 255, float64:

        C = 1/(T-1) sum_{t=1}^{T-1} mean |f_t - f_{t-1}|      (mean over pixels and channels)

    NaN for fewer than two frames; frames must share one shape."""
    previous, total, pairs = None, 0.0, 0
    for frame in frames:
        current = np.asarray(frame, dtype=np.float64)
        if previous is not None:
            if current.shape != previous.shape:
                raise InputError(f"frames differ in shape: {previous.shape} then {current.shape}")
            total += float(np.abs(current - previous).mean())
            pairs += 1
        previous = current
    return total / pairs if pairs else math.nan


def flicker(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """Temporal flicker of a video's enhancement: :func:`frame_change` of ``outputs`` over that of
    ``inputs`` (the same frames before and after; each an iterable of ``H x W x 3`` uint8 frames).
    On a still scene with sensor noise it measures how much the output changes for changes that
    are only noise; a method that adds no temporal noise of its own and amplifies the input's by
    its gain gives about that gain. ``inf`` when the input never changes but the output does."""
    change_in, change_out = frame_change(inputs), frame_change(outputs)
    if change_in == 0.0:
        return 0.0 if change_out == 0.0 else math.inf
    return change_out / change_in
