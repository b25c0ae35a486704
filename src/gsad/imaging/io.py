"""Image files and the one place where pixels become tensors and back.

Conventions (see the README):

* files and metrics: ``uint8`` arrays of shape ``H x W x 3`` (RGB) or float ``[0, 1]``;
* network, samplers, losses: float32 tensors ``N x 3 x H x W`` in ``[-1, 1]``.

``to_model`` / ``from_model`` are the only conversions between the two.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gsad.config import MAX_PIXELS
from gsad.errors import InputError
from gsad.files import write_output

#: Pillow's own bomb check is a process-wide setting; it is lifted (under this lock) while a
#: file is opened, because :func:`read_image` applies its own limit from the header.
_PILLOW_LIMIT_LOCK = threading.Lock()

#: File suffixes treated as images when a folder is walked.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path`` has an image suffix (case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    try:
        return sorted(
            p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")
        )
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> H x W x 3 uint8 (16-bit scaled down, alpha dropped, grey repeated)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        peak = 1.0 if arr.max() <= 1.0 else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def read_image(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an ``H x W x 3`` uint8 RGB array.

    EXIF orientation is applied, grey and palette images become RGB, alpha is dropped and
    16-bit images are scaled to 8 bits. Raises :class:`InputError` naming the file when it
    is missing, empty, truncated or not an image, or when its header claims more than
    ``max_pixels`` pixels (None: no limit); the size is checked before anything is decoded.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        with img:
            width, height = img.size
            if max_pixels is not None and width * height > max_pixels:
                raise InputError(
                    f"{path}: {width} x {height} is {width * height / 1e6:.1f} megapixels, over the limit of "
                    f"{max_pixels / 1e6:g} megapixels (use --max-megapixels to raise it)"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            return _to_rgb8(img)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None


def as_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """A PIL image or an ``H x W x 3`` uint8 array -> ``H x W x 3`` uint8 array (validated)."""
    if isinstance(image, Image.Image):
        return _to_rgb8(ImageOps.exif_transpose(image))
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InputError(f"expected an H x W x 3 image array, got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image array, got dtype {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"empty image array of shape {tuple(image.shape)}")
    return np.ascontiguousarray(image[..., :3])


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write an ``H x W x 3`` uint8 array atomically (temporary file, then ``os.replace``).

    The format follows the suffix. Refuses to replace an existing file unless ``overwrite``;
    every failure is one :class:`InputError` line (:func:`gsad.files.write_output`).
    """
    path = Path(path)
    if not is_image_file(path):
        raise InputError(f"{path}: unknown output image format {path.suffix!r}")
    fmt = Image.registered_extensions().get(path.suffix.lower())
    return write_output(path, lambda tmp: Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=fmt),
                        overwrite)


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) from an image file's header, whatever its size (nothing is decoded; Pillow's
    bomb limit does not apply), or None when Pillow cannot identify the file (:func:`read_image` says why)."""
    try:
        with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                img = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = saved
        with img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
