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
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from gsad.errors import InputError
from gsad.files import write_output
from gsad.geometry import pad_to_multiple

#: Largest image read from a file, in pixels (``--max-megapixels`` raises it). A 3000 x 2000 photo
#: (6 MP) takes minutes on a CPU; a file claiming more than this is refused from its header,
#: before any decoding, so a tiny "decompression bomb" cannot run for hours or fill memory.
MAX_PIXELS = 50_000_000

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


def to_model(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``1 x 3 x H x W`` float32 tensor in [-1, 1] (x / 127.5 - 1)."""
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).unsqueeze(0)
    return t.to(torch.float32) / 127.5 - 1.0


def from_model(x: torch.Tensor) -> np.ndarray:
    """``1 x 3 x H x W`` (or ``3 x H x W``) tensor in [-1, 1] -> ``H x W x 3`` uint8.

    Maps by (x + 1) / 2, clamps to [0, 1], scales by 255 and rounds.
    """
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"from_model takes one image, got a batch of {x.shape[0]}")
        x = x[0]
    x01 = ((x.detach().to("cpu", torch.float32) + 1.0) / 2.0).clamp(0.0, 1.0)
    return (x01 * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def to_unit(image: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8 -> float64 array in [0, 1]."""
    return image.astype(np.float64) / 255.0


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
    linear = _decode(image)
    luminance = _mean_luminance(linear)
    gain = target / luminance if luminance > 0 else 1.0
    return _encode(linear * gain)


def _decode(image: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float64 linear light in [0, 1]."""
    return srgb_to_linear(image.astype(np.float64) / 255.0)


def _encode(linear: np.ndarray) -> np.ndarray:
    """float64 linear light -> uint8 sRGB (clipped, rounded)."""
    return np.round(linear_to_srgb(linear) * 255.0).astype(np.uint8)


def _mean_luminance(linear: np.ndarray) -> float:
    return float((linear @ LUMINANCE).mean())


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
    linear = _decode(image)
    gain = soft_exposure_gain(_mean_luminance(linear), target)
    if gain == 1.0:
        return np.asarray(image, dtype=np.uint8).copy()
    return _encode(linear * gain)


def adjust_exposure(image: np.ndarray, ev: float) -> np.ndarray:
    """Brighten (ev > 0) or darken (ev < 0) an ``H x W x 3`` uint8 image by ``ev`` stops.

    Multiplies linear light by 2**ev (sRGB decoded, scaled, clipped, re-encoded, rounded),
    as a camera's exposure compensation does; ``ev = 0`` returns the image unchanged.
    """
    if ev == 0:
        return image
    return _encode(_decode(image) * 2.0**ev)


def start_estimate(low: torch.Tensor, start: str, stride: int) -> torch.Tensor | None:
    """The samplers' warm-start estimate of x0 for a trajectory start name (``SamplerConfig.start``):
    None for ``noise``; for ``exposure`` the global :func:`auto_exposure` of each whole image in
    ``low`` (``soft-exposure``: :func:`soft_auto_exposure`) (``N x 3 x H x W`` in [-1, 1]),
    reflect-padded to ``stride`` like the condition (computed before any tiling, so every tile
    starts from the same gain). Used by inference and by warm-start training alike."""
    if start == "noise":
        return None
    expose = soft_auto_exposure if start == "soft-exposure" else auto_exposure
    exposed = torch.cat([to_model(expose(from_model(x))) for x in low])
    return pad_to_multiple(exposed, stride)[0]


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
