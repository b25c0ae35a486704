"""Image files as uint8 sRGB arrays: listing them, reading with the size guard, writing atomically.

:func:`read_image` / :func:`write_image` are what evaluation, training, the data tools and the demo
use: ``H x W x 3`` uint8 RGB, upright, in sRGB (a colour profile converted by littleCMS), any size
limit checked from the header before decoding. Files with their depth, profile and metadata
(``gsad enhance``) are :mod:`gsad.imaging.pictures`; the metadata itself :mod:`gsad.imaging.metadata`;
pixels to tensors :mod:`gsad.imaging.tensors`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from gsad.config import MAX_PIXELS
from gsad.errors import InputError
from gsad.files import write_output
from gsad.imaging.raw import FORMATS_HINT, RAW_SUFFIXES, is_raw_file, raw_size, read_raw

#: Pillow's own bomb check is a process-wide setting; it is lifted (under this lock) while a
#: file is opened, because :func:`read_image` applies its own limit from the header.
PILLOW_LIMIT_LOCK = threading.Lock()

#: Output suffixes: the formats :func:`write_image` (and ``gsad enhance -o``) writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".heic", ".heif", ".avif")

#: Suffixes of HEIF files, read and written through pillow-heif (the ``gsad[formats]`` extra).
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".heics", ".heifs"})

#: Formats Pillow registers an opener for but cannot decode: it only identifies MPEG video.
_IDENTIFY_ONLY = frozenset({"MPEG"})


@functools.cache
def readable_suffixes() -> frozenset[str]:
    """Suffixes (lower case, with the dot) of the formats Pillow can decode on this machine.

    Pillow's registered extensions whose format it can open, less the formats it only
    identifies (stub plugins such as HDF5, GRIB, BUFR and WMF, and MPEG) and EPS/PS when
    Ghostscript is missing; ``.mpo`` is read by the JPEG plugin. HEIF (:data:`HEIF_SUFFIXES`)
    and camera RAW (:data:`~gsad.imaging.raw.RAW_SUFFIXES`) files are always taken: without the
    ``gsad[formats]`` extra, reading one says what to install. This is the one rule for input
    files: a folder walk (:func:`list_images`) takes exactly the files with these suffixes.
    """
    from PIL import EpsImagePlugin

    Image.init()
    suffixes = set()
    for suffix, fmt in Image.registered_extensions().items():
        opener = Image.OPEN.get("JPEG" if fmt == "MPO" else fmt)
        if opener is None or fmt in _IDENTIFY_ONLY:
            continue
        if isinstance(opener[0], type) and issubclass(opener[0], ImageFile.StubImageFile):
            continue
        if fmt == "EPS" and not EpsImagePlugin.has_ghostscript():
            continue
        suffixes.add(suffix.lower())
    return frozenset(suffixes | HEIF_SUFFIXES | RAW_SUFFIXES)


def is_image_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix is one Pillow can read here (:func:`readable_suffixes`,
    case-insensitive); the file is not opened."""
    return Path(path).suffix.lower() in readable_suffixes()


def is_output_image_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix names a format :func:`write_image` writes (:data:`IMAGE_SUFFIXES`)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name (hidden files skipped).

    An image file is one with a suffix Pillow reads (:func:`is_image_file`); files are not opened,
    so a broken one is found (and named) when it is read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    try:
        return sorted(
            p for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")
        )
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror or exc})") from None


# ------------------------------------------------------------------------------------------
# C libraries' own messages
# ------------------------------------------------------------------------------------------

_STDERR_LOCK = threading.Lock()
_stderr_users = 0
_stderr_saved: int | None = None


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send file descriptor 2 to ``os.devnull`` while the block runs, then restore it.

    Decoders written in C print to the process's stderr themselves (libtiff: ``Using code not
    yet in table.`` for a corrupt LZW strip) before Pillow raises, which breaks gsad's one-line
    errors; the error itself still arrives as an exception. The redirect is process-wide:
    blocks running at once in several threads share one redirect (counted under a lock; the
    last to leave restores fd 2), and whatever any thread writes to stderr meanwhile is lost.
    gsad decodes on each process's main thread (DataLoader workers are processes, each with its
    own fd 2). Without a usable fd 2 nothing is redirected.
    """
    global _stderr_users, _stderr_saved
    with _STDERR_LOCK:
        if _stderr_users == 0:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            try:
                saved = os.dup(2)
            except OSError:
                saved = None
            if saved is not None:
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, 2)
                    finally:
                        os.close(devnull)
                except OSError:
                    os.close(saved)
                    saved = None
            _stderr_saved = saved
        _stderr_users += 1
    try:
        yield
    finally:
        with _STDERR_LOCK:
            _stderr_users -= 1
            if _stderr_users == 0 and _stderr_saved is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(_stderr_saved, 2)
                os.close(_stderr_saved)
                _stderr_saved = None


# ------------------------------------------------------------------------------------------
# pixel values and colour
# ------------------------------------------------------------------------------------------

#: TIFF tags that state the value of white: SMaxSampleValue (any sample format), MaxSampleValue.
_WHITE_TAGS = (341, 281)

#: Formats whose 9- to 16-bit samples Pillow hands over in mode "I" already on a 0-65535 scale.
_SIXTEEN_BIT_AS_I = frozenset({"PNG", "PPM"})


def first_value(value):
    return value[0] if isinstance(value, tuple) and value else value


def white_level(img: Image.Image, name: str) -> float:
    """The sample value that means white, for the integer and float modes (see :func:`read_image`)."""
    tags = getattr(img, "tag_v2", None)
    if tags is not None:
        for tag in _WHITE_TAGS:
            try:
                stated = float(first_value(tags.get(tag)))
            except (TypeError, ValueError):
                continue
            if math.isfinite(stated) and stated > 0:
                return stated
    if img.mode == "F":
        return 1.0
    if img.mode.startswith("I;16") or img.format in _SIXTEEN_BIT_AS_I:
        return 65535.0
    if tags is not None:  # a TIFF of 16 bits or fewer that Pillow widened to mode "I"
        bits, signed = first_value(tags.get(258)), first_value(tags.get(339)) == 2
        if isinstance(bits, int) and 0 < bits <= 16:
            return float(2 ** (bits - signed) - 1)
    raise InputError(
        f"{name}: 32-bit integer pixels and no stated white level (TIFF MaxSampleValue or SMaxSampleValue); "
        "save the image with 8 or 16 bits per sample, or as floats in [0, 1]"
    )


@functools.cache
def srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_bytes() -> bytes:
    """The sRGB ICC profile :func:`write_image` embeds: littleCMS's built-in sRGB ("sRGB
    built-in", IEC 61966-2.1 primaries and curve), with its creation date fixed so that one
    image always gives the same file."""
    data = bytearray(srgb_profile().tobytes())
    data[24:36] = bytes.fromhex("07e9 0001 0001 0000 0000 0000")  # 2025-01-01 00:00:00
    return bytes(data)


#: Colour space of an ICC profile -> the Pillow mode littleCMS reads it from.
_PROFILE_MODES = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}
#: Pillow mode -> the colour space its pixels are in.
_MODE_SPACES = {"1": "GRAY", "L": "GRAY", "LA": "GRAY", "La": "GRAY", "P": "RGB", "PA": "RGB", "RGB": "RGB",
                "RGBA": "RGB", "RGBa": "RGB", "RGBX": "RGB", "CMYK": "CMYK"}


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    """``img`` converted from its embedded profile ``icc`` to sRGB (mode "RGB") by littleCMS, or
    ``img`` unchanged when the profile cannot be used (corrupt, or not of the image's colours)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = source.profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return img
    if space not in _PROFILE_MODES or _MODE_SPACES.get(img.mode) != space:
        return img
    if img.mode != _PROFILE_MODES[space]:
        img = img.convert(_PROFILE_MODES[space])
    try:
        return ImageCms.profileToProfile(
            img, source, srgb_profile(), renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB", flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return img


def _to_rgb8(img: Image.Image, name: str, white: float | None = None) -> np.ndarray:
    """Any Pillow mode -> H x W x 3 uint8 sRGB (see :func:`read_image` for the rules)."""
    icc = img.info.get("icc_profile")
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: NaN or infinite pixel values")
        arr = np.clip(np.round(arr / white * 255.0), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr, "L")
    if icc and icc != srgb_icc_bytes():
        img = _to_srgb(img, icc)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file's header, nothing decoded (EXIF orientation not applied);
    :class:`InputError` naming the file when it cannot be opened."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if is_raw_file(path):
        return raw_size(path)
    register_plugins(path)
    try:
        with quiet_native_stderr(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with open_unlimited(path) as img:
                return img.size
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def open_unlimited(path: Path) -> Image.Image:
    """``Image.open(path)`` with Pillow's own decompression-bomb limit lifted (under
    :data:`PILLOW_LIMIT_LOCK`; its warning silenced): callers apply gsad's limit from the header."""
    with PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def check_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    return path


def read_image(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an ``H x W x 3`` uint8 sRGB array.

    EXIF orientation is applied, grey and palette images become RGB and alpha is dropped.
    Colour: an embedded ICC profile is honoured: littleCMS converts the pixels to sRGB
    (relative colorimetric with black point compensation: in-gamut colours keep their exact
    values, out-of-gamut ones are clipped, a print profile's black becomes sRGB black); a
    profile littleCMS cannot use (corrupt, or not of the image's colour space) is ignored and
    the pixels taken as sRGB, as web browsers do; no profile means sRGB.
    Deeper samples are scaled by what their mode means, white to 255 (rounded; values below
    black or above white clipped):

    * 16 bits (``I;16*``, and the 16-bit PNG and PNM data Pillow hands over as ``I``): 65535;
    * floats (``F``, e.g. 32-bit float TIFF, PFM): 1.0, the nominal range being [0, 1];
    * 32-bit integers (``I``, e.g. TIFF): only when the file states its white level (TIFF
      ``SMaxSampleValue`` or ``MaxSampleValue``, which also override the defaults above), else
      refused: no convention tells where white lies in 32 bits;
    * NaN or infinite samples are refused.

    Camera RAW files are developed by :func:`gsad.imaging.raw.read_raw` (camera white balance)
    and rounded to 8 bits; HEIF files are read through pillow-heif.

    Raises :class:`InputError` naming the file when it is missing, empty, truncated or not an
    image, when its header claims more than ``max_pixels`` pixels (None: no limit; checked
    before anything is decoded), or for the pixel values refused above. A C decoder's own
    messages (libtiff's) are silenced while the file is decoded (:func:`quiet_native_stderr`):
    the one line is gsad's.
    """
    path = check_file(path)
    if is_raw_file(path):
        return quantize(read_raw(path, max_pixels), 8)
    register_plugins(path)
    try:
        with quiet_native_stderr():
            img = open_unlimited(path)
            with img:
                width, height = img.size
                if max_pixels is not None and width * height > max_pixels:
                    raise InputError(
                        f"{path}: {width} x {height} is {width * height / 1e6:.1f} megapixels, over the limit of "
                        f"{max_pixels / 1e6:g} megapixels (use --max-megapixels to raise it)"
                    )
                img.load()
                white = white_level(img, str(path)) if img.mode in ("I", "F") or img.mode.startswith("I;16") else None
                return _to_rgb8(ImageOps.exif_transpose(img), str(path), white)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None


def as_array(image: np.ndarray | Image.Image) -> np.ndarray:
    """A PIL image or an ``H x W x 3`` uint8 array -> ``H x W x 3`` uint8 array (validated).

    A PIL image is converted as :func:`read_image` converts a file (orientation, profile, depth).
    """
    if isinstance(image, Image.Image):
        deep = image.mode in ("I", "F") or image.mode.startswith("I;16")
        white = white_level(image, "image") if deep else None
        return _to_rgb8(ImageOps.exif_transpose(image), "image", white)
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


def quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Float ``[0, 1]`` (values outside clipped) or uint8 pixels -> uint8 (``bits`` 8) or uint16 (16),
    white to 255 or 65535, rounded to nearest."""
    if pixels.dtype == np.uint8 and bits == 8:
        return pixels
    top = 255.0 if bits == 8 else 65535.0
    unit = pixels / 255.0 if pixels.dtype == np.uint8 else pixels
    return np.round(np.clip(unit, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


#: Formats whose files carry the sRGB profile :func:`write_image` embeds (the others cannot).
PROFILE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF", "HEIF", "AVIF"})


def write_image(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """Write an ``H x W x 3`` uint8 sRGB array atomically (temporary file, then ``os.replace``).

    The format follows the suffix (:data:`IMAGE_SUFFIXES`). PNG, JPEG, WebP, TIFF, HEIF and AVIF files
    carry an sRGB ICC profile (:func:`srgb_icc_bytes`), so the output's colours are stated;
    BMP and PNM cannot hold one (their pixels are sRGB all the same). Refuses to replace an
    existing file unless ``overwrite``; every failure is one :class:`InputError` line
    (:func:`gsad.files.write_output`).
    """
    path = Path(path)
    if not is_output_image_file(path):
        raise InputError(f"{path}: unknown output image format {path.suffix!r}")
    register_plugins(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    params = {"icc_profile": srgb_icc_bytes()} if fmt in PROFILE_FORMATS else {}
    return write_output(
        path, lambda tmp: Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=fmt, **params), overwrite
    )


# ------------------------------------------------------------------------------------------
# HEIF, depth, colour and metadata: what ``gsad enhance`` reads and writes
# ------------------------------------------------------------------------------------------


def register_plugins(path: Path) -> None:
    """Register pillow-heif's HEIF opener and saver when ``path`` is a HEIF file (first use only);
    :class:`InputError` saying what to install when pillow-heif is missing."""
    if path.suffix.lower() in HEIF_SUFFIXES:
        _register_heif(path)


def _register_heif(path: Path) -> None:
    if "HEIF" in Image.OPEN:
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        raise InputError(f"{path}: HEIF images need {FORMATS_HINT}") from None
    register_heif_opener()


