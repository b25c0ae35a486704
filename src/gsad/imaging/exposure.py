"""Exposure maths on sRGB pixels: the sRGB transfer curve, luma weights, the global auto-exposure
and its soft variant and the user's +-EV adjustment (the samplers' warm starts,
:func:`gsad.enhance.starts.start_estimate`, are built on them).

The whole-image passes decode and encode a band of rows at a time
(:func:`~gsad.imaging.geometry.row_bands`): the same float64 values as a whole-image pass, in
memory of one uint8 image plus one float64 luminance plane.
"""

from __future__ import annotations

import numpy as np

from gsad.imaging.geometry import row_bands


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Exact sRGB EOTF on float values in [0, 1] (float64 out, same shape)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)



def linear_to_srgb(y: np.ndarray) -> np.ndarray:
    """Exact inverse sRGB EOTF on linear values (clipped to [0, 1]; float64 out)."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    return np.where(y <= 0.0031308, y * 12.92, 1.055 * y ** (1 / 2.4) - 0.055)



#: Rec. 709 / sRGB luminance weights of linear R, G, B.
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])



def auto_exposure(image: np.ndarray, target: float = 0.18) -> np.ndarray:
    """Global auto-exposure of an ``H x W x 3`` uint8 image: one gain in linear light that
    brings the mean luminance to ``target`` (18 % grey), clipped and re-encoded to uint8.

    The simplest brightening a camera does; a baseline in the held-out table and the warm
    start of the ``exposure`` sampler start. A black image stays black.
    """
    luminance = _mean_luminance(image)
    gain = target / luminance if luminance > 0 else 1.0
    return _apply_gain(image, gain)



def _decode(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float64 linear light in [0, 1]."""
    return srgb_to_linear(image.astype(np.float64) / 255.0)



def _encode(linear: np.ndarray) -> np.ndarray:
    """float64 linear light -> uint8 sRGB (clipped, rounded)."""
    return np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)



def _mean_luminance(image: np.ndarray) -> float:
    """Mean linear luminance of a uint8 sRGB image: the plane ``_decode(image) @ LUMINANCE``,
    decoded by bands of rows, then its mean (the same sum as over the whole decoded image)."""
    height, width = image.shape[:2]
    luminance = np.empty((height, width), dtype=np.float64)
    for rows in row_bands(height, width):
        luminance[rows] = _decode(image[rows]) @ LUMINANCE
    return float(luminance.mean())



def _apply_gain(image: np.ndarray, gain: float) -> np.ndarray:
    """``_encode(_decode(image) * gain)`` by bands of rows: uint8 sRGB scaled by ``gain`` in linear light."""
    out = np.empty(image.shape, dtype=np.uint8)
    for rows in row_bands(*image.shape[:2]):
        out[rows] = _encode(_decode(image[rows]) * gain)
    return out



#: Mean linear luminances between which :func:`soft_auto_exposure` fades from the full
#: auto-exposure gain (at or below ``SOFT_EXPOSURE_DARK``) to no gain (at or above
#: ``SOFT_EXPOSURE_BRIGHT``). 0.02 is about the mean luminance of a typical photo 3 stops
#: under; 0.08 that of a dim but acceptable photo (a dusk scene, a dim forest).
SOFT_EXPOSURE_DARK = 0.02



SOFT_EXPOSURE_BRIGHT = 0.08



def soft_exposure_gain(luminance: float, target: float = 0.18) -> float:
    """The linear gain of :func:`soft_auto_exposure` for an image of mean luminance ``luminance``.

    ``(target / luminance) ** w`` with ``w = 1`` at or below :data:`SOFT_EXPOSURE_DARK`,
    ``w = 0`` at or above :data:`SOFT_EXPOSURE_BRIGHT` and ``w`` linear in
    ``log(luminance)`` between; never below 1 (it never darkens). 1 for a black image.
    """
    if luminance <= 0 or luminance >= target:
        return 1.0
    lo, hi = np.log(SOFT_EXPOSURE_DARK), np.log(SOFT_EXPOSURE_BRIGHT)
    weight = float(np.clip((hi - np.log(luminance)) / (hi - lo), 0.0, 1.0))
    return float((target / luminance) ** weight)



def soft_auto_exposure(image: np.ndarray, target: float = 0.18) -> np.ndarray:
    """Global auto-exposure that leaves well-exposed images alone: like :func:`auto_exposure`
    for dark images, fading to no gain for brighter ones (:func:`soft_exposure_gain`).

    The warm start of the ``soft-exposure`` sampler start: a photo that needs no correction
    starts from itself, not from a brightened copy.
    """
    gain = soft_exposure_gain(_mean_luminance(image), target)
    if gain == 1.0:
        return np.asarray(image, dtype=np.uint8).copy()
    return _apply_gain(image, gain)



def adjust_exposure(image: np.ndarray, ev: float) -> np.ndarray:
    """Brighten (ev > 0) or darken (ev < 0) an ``H x W x 3`` uint8 (or float [0, 1]) image by ``ev`` stops.

    Multiplies linear light by 2**ev (sRGB decoded, scaled, clipped, re-encoded, rounded),
    as a camera's exposure compensation does; ``ev = 0`` returns the image unchanged.
    """
    if ev == 0:
        return image
    if np.issubdtype(image.dtype, np.floating):  # float [0, 1] pixels (16-bit outputs): not rounded
        linear = srgb_to_linear(np.clip(image, 0.0, 1.0))
        return linear_to_srgb(linear * 2.0**ev).astype(np.float32)
    return _apply_gain(image, 2.0**ev)



#: ITU-R BT.601 luma weights of the GT-mean protocol (R, G, B).
GRAY_WEIGHTS = (0.299, 0.587, 0.114)
