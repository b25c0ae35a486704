"""The one conversion between pixels and the network's tensors.

* files, data and metrics: ``uint8`` arrays of shape ``H x W x 3`` (RGB) or float ``[0, 1]``;
* network, samplers, losses: float32 tensors ``N x 3 x H x W`` in ``[-1, 1]``.

``to_model`` / ``from_model`` are the only conversions between the two.
"""

from __future__ import annotations

import numpy as np
import torch

from gsad.imaging.geometry import row_bands


def to_model(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``1 x 3 x H x W`` float32 tensor in [-1, 1] (x / 127.5 - 1).

    A float array (16-bit and RAW sources, :class:`gsad.imaging.pictures.Picture`) is taken as [0, 1],
    values outside clipped: 2 x - 1.
    """
    if np.issubdtype(np.asarray(image).dtype, np.floating):
        unit = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)  # a new array: changed in place below
        return torch.from_numpy(np.ascontiguousarray(unit)).permute(2, 0, 1).unsqueeze(0).mul_(2.0).sub_(1.0)
    pixels = np.ascontiguousarray(image)
    if not pixels.flags.writeable:  # e.g. np.asarray(pil_image): torch would warn about sharing it
        pixels = pixels.copy()
    t = torch.from_numpy(pixels).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32).div_(127.5).sub_(1.0)  # in place: one float image, not three



def _unit_bands(x: torch.Tensor, name: str, dtype: torch.dtype, finish) -> np.ndarray:
    """``finish((x + 1) / 2 clamped to [0, 1])`` as ``H x W x C`` of ``dtype``, for one image
    (``1 x C x H x W`` or ``C x H x W``), a band of rows at a time
    (:func:`~gsad.imaging.geometry.row_bands`), so the float temporaries are one band's."""
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"{name} takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    channels, height, width = x.shape
    out = torch.empty((height, width, channels), dtype=dtype)
    for rows in row_bands(height, width):
        x01 = ((x[:, rows].detach().to("cpu", torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0)
        out[rows] = finish(x01).permute(1, 2, 0)
    return out.numpy()


def from_model(x: torch.Tensor) -> np.ndarray:
    """``1 x 3 x H x W`` (or ``3 x H x W``) tensor in [-1, 1] -> ``H x W x 3`` uint8.

    Maps by (x + 1) / 2, clamps to [0, 1], scales by 255 and rounds, a band of rows at a time.
    """
    return _unit_bands(x, "from_model", torch.uint8, lambda x01: (x01 * 255.0).round().to(torch.uint8))


def from_model_unit(x: torch.Tensor) -> np.ndarray:
    """``1 x 3 x H x W`` (or ``3 x H x W``) tensor in [-1, 1] -> ``H x W x 3`` float32 in [0, 1]
    ((x + 1) / 2, clamped), not rounded: what 16-bit outputs are quantized from."""
    return _unit_bands(x, "from_model_unit", torch.float32, lambda x01: x01)


def to_unit(image: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 -> float64 array in [0, 1]."""
    return image.astype(np.float64) / 255.0
