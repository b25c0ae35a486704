"""Camera RAW files (DNG, CR2/CR3, NEF, ARW, RAF, ORF, RW2, ...) -> sRGB floats, by LibRaw (rawpy).

What is done to a RAW, and why (LibRaw's ``dcraw_process`` through ``rawpy.postprocess``):

* black level subtracted and the sensor's white (saturation) level scaled to 1, as the file states;
* white balance: the camera's own multipliers (``--raw-wb camera``, what the photographer saw on
  the camera) or LibRaw's grey-world estimate (``--raw-wb auto``);
* demosaicing (AHD, LibRaw's default), highlights clipped;
* the camera's colour matrix (the file's, or LibRaw's table for the model) takes the camera's RGB to
  linear sRGB primaries;
* no auto-brightening: a dark photo stays dark, which is what the model was trained to lift
  (LibRaw's default would stretch the histogram first);
* the sRGB tone curve (gamma 2.4 with a linear toe of slope 12.92), 16 bits per sample, so the
  model gets the sRGB pixels it was trained on and 16-bit outputs keep the RAW's depth;
* the camera's orientation is applied (LibRaw's flip), so the pixels are upright.

rawpy is imported only here, and only when a RAW file is read (the ``gsad[formats]`` extra).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import numpy as np

from gsad.config import RAW_WB_NAMES
from gsad.errors import InputError

#: Suffixes read as camera RAW (lower case, with the dot); LibRaw reads many more cameras' files,
#: but these are the names they carry.
RAW_SUFFIXES = frozenset({
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
    ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".erf", ".kdc", ".dcr", ".mos", ".mef", ".mrw", ".raw", ".rwl",
})

FORMATS_HINT = 'pip install "gsad[formats]"'


def is_raw_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix is a camera RAW one (:data:`RAW_SUFFIXES`, case-insensitive)."""
    return Path(path).suffix.lower() in RAW_SUFFIXES


def _rawpy(path: Path):
    try:
        return importlib.import_module("rawpy")
    except ImportError:
        raise InputError(f"{path}: reading camera RAW files needs {FORMATS_HINT}") from None


def raw_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of a RAW file's developed image, from LibRaw's header parse (nothing decoded)."""
    path = Path(path)
    rawpy = _rawpy(path)
    try:
        with rawpy.imread(str(path)) as raw:
            return raw.sizes.width, raw.sizes.height
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable camera RAW file ({type(exc).__name__}: {exc})") from None


def read_raw(path: str | os.PathLike, max_pixels: int | None, wb: str = "camera") -> np.ndarray:
    """A camera RAW file -> ``H x W x 3`` float32 sRGB in [0, 1] (16-bit steps), upright.

    See the module docstring for the processing. The size is checked against ``max_pixels``
    (None: no limit) from LibRaw's header parse, before anything is demosaiced. Raises
    :class:`InputError` naming the file when rawpy is missing, the file is not a RAW LibRaw
    reads, or it is too large.
    """
    path = Path(path)
    if wb not in RAW_WB_NAMES:
        raise ValueError(f"raw white balance must be one of {RAW_WB_NAMES}, got {wb!r}")
    rawpy = _rawpy(path)
    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            width, height = sizes.width, sizes.height
            if max_pixels is not None and width * height > max_pixels:
                raise InputError(
                    f"{path}: {width} x {height} is {width * height / 1e6:.1f} megapixels, over the limit of "
                    f"{max_pixels / 1e6:g} megapixels (use --max-megapixels to raise it)"
                )
            rgb = raw.postprocess(
                use_camera_wb=wb == "camera", use_auto_wb=wb == "auto", no_auto_bright=True, output_bps=16,
                output_color=rawpy.ColorSpace.sRGB, gamma=(2.4, 12.92),
            )
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable camera RAW file ({type(exc).__name__}: {exc})") from None
    return (rgb.astype(np.float32) / np.float32(65535.0))[..., :3]
