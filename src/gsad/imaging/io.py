"""Image files and the one place where pixels become tensors and back.

Conventions (see the README):

* files and metrics: ``uint8`` arrays of shape ``H x W x 3`` (RGB) or float ``[0, 1]``;
* network, samplers, losses: float32 tensors ``N x 3 x H x W`` in ``[-1, 1]``.

``to_model`` / ``from_model`` are the only conversions between the two.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import re
import struct
import sys
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from gsad.config import MAX_PIXELS
from gsad.errors import InputError
from gsad.files import write_output
from gsad.imaging import color
from gsad.imaging.raw import FORMATS_HINT, RAW_SUFFIXES, is_raw_file, raw_size, read_raw

#: Pillow's own bomb check is a process-wide setting; it is lifted (under this lock) while a
#: file is opened, because :func:`read_image` applies its own limit from the header.
_PILLOW_LIMIT_LOCK = threading.Lock()

#: Output suffixes: the formats :func:`write_image` (and ``gsad enhance -o``) writes.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".heic", ".heif", ".avif")

#: Suffixes of HEIF files, read and written through pillow-heif (the ``gsad[formats]`` extra).
HEIF_SUFFIXES = frozenset({".heic", ".heif", ".hif"})

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


def _first(value):
    return value[0] if isinstance(value, tuple) and value else value


def _white_level(img: Image.Image, name: str) -> float:
    """The sample value that means white, for the integer and float modes (see :func:`read_image`)."""
    tags = getattr(img, "tag_v2", None)
    if tags is not None:
        for tag in _WHITE_TAGS:
            try:
                stated = float(_first(tags.get(tag)))
            except (TypeError, ValueError):
                continue
            if math.isfinite(stated) and stated > 0:
                return stated
    if img.mode == "F":
        return 1.0
    if img.mode.startswith("I;16") or img.format in _SIXTEEN_BIT_AS_I:
        return 65535.0
    if tags is not None:  # a TIFF of 16 bits or fewer that Pillow widened to mode "I"
        bits, signed = _first(tags.get(258)), _first(tags.get(339)) == 2
        if isinstance(bits, int) and 0 < bits <= 16:
            return float(2 ** (bits - signed) - 1)
    raise InputError(
        f"{name}: 32-bit integer pixels and no stated white level (TIFF MaxSampleValue or SMaxSampleValue); "
        "save the image with 8 or 16 bits per sample, or as floats in [0, 1]"
    )


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def srgb_icc_bytes() -> bytes:
    """The sRGB ICC profile :func:`write_image` embeds: littleCMS's built-in sRGB ("sRGB
    built-in", IEC 61966-2.1 primaries and curve), with its creation date fixed so that one
    image always gives the same file."""
    data = bytearray(_srgb_profile().tobytes())
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
            img, source, _srgb_profile(), renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
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
    _register_plugins(path)
    try:
        with quiet_native_stderr(), _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(path) as img:
                    return img.size
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (Pillow cannot identify it)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: unreadable image ({exc})") from None


def _check_file(path: str | os.PathLike) -> Path:
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
    path = _check_file(path)
    if is_raw_file(path):
        return quantize(read_raw(path, max_pixels), 8)
    _register_plugins(path)
    try:
        with quiet_native_stderr():
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
                white = _white_level(img, str(path)) if img.mode in ("I", "F") or img.mode.startswith("I;16") else None
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
        white = _white_level(image, "image") if deep else None
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


#: Formats whose files carry the sRGB profile :func:`write_image` embeds (the others cannot).
_PROFILE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF", "HEIF", "AVIF"})


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
    _register_plugins(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    params = {"icc_profile": srgb_icc_bytes()} if fmt in _PROFILE_FORMATS else {}
    return write_output(
        path, lambda tmp: Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=fmt, **params), overwrite
    )


# ------------------------------------------------------------------------------------------
# HEIF, depth, colour and metadata: what ``gsad enhance`` reads and writes
# ------------------------------------------------------------------------------------------


def _register_plugins(path: Path) -> None:
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


def quantize(pixels: np.ndarray, bits: int) -> np.ndarray:
    """Float ``[0, 1]`` (values outside clipped) or uint8 pixels -> uint8 (``bits`` 8) or uint16 (16),
    white to 255 or 65535, rounded to nearest."""
    if pixels.dtype == np.uint8 and bits == 8:
        return pixels
    top = 255.0 if bits == 8 else 65535.0
    unit = pixels / 255.0 if pixels.dtype == np.uint8 else pixels
    return np.round(np.clip(unit, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


@dataclass(frozen=True)
class Picture:
    """An image file as ``gsad enhance`` reads it (:func:`read_picture`).

    ``pixels``: ``H x W x 3`` sRGB, upright: uint8 for 8-bit sources (exactly :func:`read_image`'s
    array), float32 for deeper ones (16-bit PNG/TIFF, float TIFF, camera RAW) and for ``wide``
    reads of tagged files, in [0, 1] with wide-gamut colours outside it ("extended sRGB").
    ``depth``: 8 or 16, the source's sample depth (16 for anything deeper than 8 bits).
    ``profile``: the source's ICC profile when it is not sRGB (None: sRGB or untagged).
    ``exif``: the source's EXIF (camera, lens, exposure, date, GPS; Orientation reset to 1, the
    pixels being upright), serialized; ``xmp``: its XMP packet (orientation reset too); None when absent.
    """

    pixels: np.ndarray
    depth: int = 8
    profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None


#: EXIF IFD0 tags carried to outputs (the rest of IFD0 describes the source file's own layout):
#: ImageDescription, Make, Model, DateTime, Artist, Copyright; the Exif and GPS sub-IFDs follow.
_EXIF_KEPT = (270, 271, 272, 306, 315, 33432)
_EXIF_ORIENTATION, _EXIF_SOFTWARE, _EXIF_IFD, _GPS_IFD = 274, 305, 0x8769, 0x8825
#: Exif sub-IFD tags dropped: MakerNote (private offsets that break when moved), Interop pointer.
_EXIF_DROPPED = frozenset({0x927C, 0xA005})


def _xmp_upright(xmp: bytes) -> bytes:
    """``xmp`` with its tiff:Orientation (attribute or element) set to 1."""
    xmp = re.sub(rb'(tiff:Orientation\s*=\s*["\'])\d(["\'])', rb"\g<1>1\g<2>", xmp)
    return re.sub(rb"(<tiff:Orientation>)\s*\d\s*(</tiff:Orientation>)", rb"\g<1>1\g<2>", xmp)


def _read_metadata(img: Image.Image) -> tuple[bytes | None, bytes | None]:
    """(EXIF, XMP) of an opened image, as :class:`Picture` holds them."""
    exif_bytes = None
    source = img.getexif()
    kept = Image.Exif()
    for tag in _EXIF_KEPT:
        if tag in source:
            kept[tag] = source[tag]
    for pointer in (_EXIF_IFD, _GPS_IFD):
        ifd = {k: v for k, v in source.get_ifd(pointer).items() if k not in _EXIF_DROPPED}
        if ifd:
            kept[pointer] = ifd
    if len(kept) or _EXIF_ORIENTATION in source:
        kept[_EXIF_ORIENTATION] = 1
        exif_bytes = kept.tobytes()
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    tags = getattr(img, "tag_v2", None)
    if xmp is None and tags is not None:
        xmp = tags.get(700)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return exif_bytes, (_xmp_upright(bytes(xmp)) if isinstance(xmp, (bytes, bytearray)) and xmp else None)


def with_software(exif: bytes | None, software: str) -> bytes | None:
    """``exif`` with its Software tag set to ``software`` (and any Orientation to 1); None stays None (an image without
    metadata is written without any)."""
    if exif is None:
        return None
    data = Image.Exif()
    data.load(exif)
    out = Image.Exif()
    for tag, value in data.items():
        out[tag] = value
    for pointer in (_EXIF_IFD, _GPS_IFD):
        ifd = dict(data.get_ifd(pointer))
        if ifd:
            out[pointer] = ifd
    out[_EXIF_SOFTWARE] = software
    if _EXIF_ORIENTATION in out:
        out[_EXIF_ORIENTATION] = 1  # written pixels are upright
    return out.tobytes()


def _sixteen_bit_rgb(img: Image.Image, path: Path, tile: list) -> np.ndarray | None:
    """The 16-bit samples of an RGB(A) PNG or TIFF as ``H x W x 3`` uint16, or None when ``img`` has
    no more than 8 bits per sample. Pillow has no 16-bit RGB mode; it keeps a PNG's high bytes, so
    the PNG is decoded twice, once keeping each sample's high byte and once its low byte (both
    decodes in C); a TIFF is read by tifffile."""
    if img.format == "TIFF":
        bits = _first(img.tag_v2.get(258)) if hasattr(img, "tag_v2") else None
        if bits != 16 or img.mode not in ("RGB", "RGBA", "RGBX"):
            return None
        import tifffile

        with tifffile.TiffFile(path) as tif:
            arr = tif.pages[0].asarray()
        if arr.dtype != np.uint16 or arr.ndim != 3 or arr.shape[-1] < 3:
            return None
        return arr[..., :3]
    if img.format != "PNG" or len(tile) != 1 or tile[0].args not in ("RGB;16B", "RGBA;16B"):
        return None
    tile = tile[0]
    halves = []
    for rawmode in (tile.args, tile.args.replace("16B", "16L")):
        with Image.open(path) as part:
            part.tile = [tile._replace(args=rawmode)]
            part.load()
            halves.append(np.asarray(part.convert("RGB"), dtype=np.uint16))
    return (halves[0] << 8) | halves[1]


#: EXIF orientation -> the numpy operations that make the pixels upright (ImageOps.exif_transpose's).
_ORIENT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 1)[::-1],
    8: lambda a: np.rot90(a, 1),
}


def _deep_pixels(img: Image.Image, path: Path, icc: bytes | None, tile: list) -> np.ndarray | None:
    """A deep (over 8 bits, or float) source as extended-sRGB float32, upright; None when ``img``
    is an 8-bit image or its profile can only be applied by littleCMS in 8 bits."""
    profile = color.matrix_shaper(icc) if icc and icc != srgb_icc_bytes() else None
    if icc and icc != srgb_icc_bytes() and profile is None:
        return None
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        if profile is not None:
            return None  # grey samples under an RGB profile: littleCMS's 8-bit rule applies
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise InputError(f"{path}: NaN or infinite pixel values")
        arr = np.repeat((arr / _white_level(img, str(path)))[..., None], 3, axis=2)
    else:
        deep = _sixteen_bit_rgb(img, path, tile)
        if deep is None:
            return None
        arr = deep.astype(np.float64) / 65535.0
    arr = _ORIENT.get(img.getexif().get(_EXIF_ORIENTATION), lambda a: a)(arr)
    if profile is not None:
        return color.to_srgb(arr, profile)
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0), dtype=np.float32)


def read_picture(path: str | os.PathLike, max_pixels: int | None = MAX_PIXELS, raw_wb: str = "camera",
                 wide: bool = False) -> Picture:
    """Read an image file with its depth, colour profile and metadata (:class:`Picture`).

    8-bit files give :func:`read_image`'s uint8 array (same checks, same errors, same pixels),
    unless ``wide``: then a file tagged with a matrix-shaper profile (Display P3, Adobe RGB, a
    linear profile, ...) gives float32 extended sRGB (:mod:`gsad.imaging.color`), keeping colours
    outside the sRGB gamut. Deeper files give float32 in full precision: 16-bit RGB PNG and TIFF,
    16-bit grey, float TIFF; a profile is applied in float when it is a matrix-shaper one (else by
    littleCMS in 8 bits, as :func:`read_image`). Camera RAW files are developed by
    :func:`gsad.imaging.raw.read_raw` with ``raw_wb`` ("camera" or "auto") white balance.
    """
    path = _check_file(path)
    if is_raw_file(path):
        return Picture(read_raw(path, max_pixels, raw_wb), depth=16, exif=_raw_exif(path))
    pixels = read_image(path, max_pixels)  # every check and error of an ordinary read, and the 8-bit pixels
    _register_plugins(path)
    try:
        with quiet_native_stderr():
            with _PILLOW_LIMIT_LOCK:
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    img = Image.open(path)
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
            with img:
                tile = list(img.tile)  # before anything loads the image (a PNG's getexif() may)
                img.load()
                icc = img.info.get("icc_profile") or None
                exif, xmp = _read_metadata(img)
                deep = _deep_pixels(img, path, icc, tile)
                depth = 16 if deep is not None or img.mode in ("I", "F") or img.mode.startswith("I;16") else 8
                if deep is None and wide and icc and icc != srgb_icc_bytes() and img.mode in ("RGB", "RGBA"):
                    profile = color.matrix_shaper(icc)
                    if profile is not None:
                        rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.float64) / 255.0
                        deep = color.to_srgb(rgb, profile)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or truncated image ({exc})") from None
    profile_bytes = icc if icc and icc != srgb_icc_bytes() else None
    return Picture(pixels if deep is None else deep, depth, profile_bytes, exif, xmp)


def _raw_exif(path: Path) -> bytes | None:
    """Make, Model and DateTime of a TIFF-based RAW (DNG, CR2, NEF, ARW, ...) as EXIF, or None."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            found = {tag: tags[tag].value for tag in _EXIF_KEPT if tag in tags and isinstance(tags[tag].value, str)}
    except Exception:  # noqa: BLE001 (any parse failure: the metadata is optional, the pixels are not)
        return None
    if not found:
        return None
    exif = Image.Exif()
    for tag, value in found.items():
        exif[tag] = value
    exif[_EXIF_ORIENTATION] = 1
    return exif.tobytes()


#: Output formats (Pillow's names) that hold 16 bits per sample; the others are written with 8.
DEEP_FORMATS = frozenset({"PNG", "TIFF"})
#: Output formats whose files carry EXIF and XMP (BMP and PNM hold no metadata).
_METADATA_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF", "HEIF", "AVIF"})
#: Lossy output formats that take ``quality``.
_LOSSY_FORMATS = frozenset({"JPEG", "WEBP", "HEIF", "AVIF"})
#: EXIF IFD0 text tags a 16-bit TIFF carries in its own first IFD (tifffile writes no Exif sub-IFD).
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)


def output_format(path: str | os.PathLike) -> str:
    """Pillow's format name for an output path's suffix (:data:`IMAGE_SUFFIXES`), e.g. "JPEG"."""
    suffix = Path(path).suffix.lower()
    if suffix in HEIF_SUFFIXES:
        return "HEIF"
    Image.init()
    fmt = Image.registered_extensions().get(suffix)
    if not is_output_image_file(path) or fmt is None:
        raise InputError(f"{path}: unknown output image format {Path(path).suffix!r}")
    return fmt


def _encode_profile(pixels: np.ndarray, profile: bytes | None, path: Path) -> tuple[np.ndarray, bytes]:
    """sRGB pixels (uint8, or extended float) -> (pixels in ``profile``, the ICC bytes to embed);
    ``profile`` None keeps sRGB. A matrix-shaper profile is applied in float, any other RGB one by
    littleCMS in 8 bits; a profile of another colour space cannot be kept."""
    if profile is None or profile == srgb_icc_bytes():
        return pixels, srgb_icc_bytes()
    shaper = color.matrix_shaper(profile)
    unit = pixels / 255.0 if pixels.dtype == np.uint8 else pixels
    if shaper is not None:
        return color.from_srgb(unit, shaper).astype(np.float32), profile
    try:
        target = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if target.profile.xcolor_space.strip() != "RGB":
            raise InputError(f"{path}: cannot keep a {target.profile.xcolor_space.strip()} profile in an RGB "
                             "output; leave out --keep-profile")
        img = ImageCms.profileToProfile(
            Image.fromarray(quantize(unit, 8)), _srgb_profile(), target,
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC, outputMode="RGB",
            flags=ImageCms.Flags.BLACKPOINTCOMPENSATION,
        )
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: cannot convert to the input's colour profile ({exc})") from None
    return np.asarray(img, dtype=np.uint8), profile


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png16(target, pixels: np.ndarray, icc: bytes, exif: bytes | None, xmp: bytes | None) -> None:
    """A 16-bit RGB PNG (Pillow writes none): IHDR, iCCP, eXIf, iTXt XMP, IDAT (Up filter), IEND."""
    height, width, _ = pixels.shape
    rows = pixels.astype(">u2").reshape(height, width * 3).view(np.uint8)
    up = rows.copy()
    up[1:] -= rows[:-1]  # the Up filter, wrapping mod 256 as PNG's byte arithmetic does
    raw = np.concatenate([np.full((height, 1), 2, np.uint8), up], axis=1)
    raw[0, 0] = 0  # the first row has no row above: filter None
    raw[0, 1:] = rows[0]
    chunks = [_png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)),
              _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))]
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    if xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
    chunks += [_png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)), _png_chunk(b"IEND", b"")]
    with open(target, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))


def _write_tiff16(target, pixels: np.ndarray, icc: bytes, exif: bytes | None, xmp: bytes | None) -> None:
    """A 16-bit RGB TIFF by tifffile, with the profile, XMP and EXIF's IFD0 text tags."""
    import tifffile

    extratags, software = [], None
    if exif:
        data = Image.Exif()
        data.load(exif)
        software = data.get(_EXIF_SOFTWARE)
        for tag in _TIFF_TEXT_TAGS:
            if tag != _EXIF_SOFTWARE and isinstance(data.get(tag), str):
                extratags.append((tag, "s", 0, data[tag], True))
    if xmp:
        extratags.append((700, "B", len(xmp), xmp, True))
    tifffile.imwrite(target, pixels, photometric="rgb", iccprofile=icc, extratags=extratags, metadata=None,
                     software=software if isinstance(software, str) else None)


def write_picture(
    path: str | os.PathLike,
    pixels: np.ndarray,
    *,
    bits: int = 8,
    quality: int = 95,
    profile: bytes | None = None,
    exif: bytes | None = None,
    xmp: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``H x W x 3`` sRGB pixels (uint8, or float32 extended sRGB) atomically, as ``gsad
    enhance`` does; the format follows the suffix (:func:`output_format`).

    ``bits``: 8, or 16 for PNG and TIFF (:data:`DEEP_FORMATS`; float pixels are rounded once, to
    the output's depth). ``quality`` (1-100): JPEG, WebP, HEIF and AVIF; JPEG is written with 4:4:4
    chroma (no subsampling). ``profile``: an RGB ICC profile to convert the pixels to and embed
    (``--keep-profile``); None: sRGB, embedded. ``exif``/``xmp``: carried where the format holds them
    (not BMP or PNM; a 16-bit TIFF keeps EXIF's camera and date text tags only). 8-bit sRGB pixels
    without metadata to PNG, BMP or PNM give :func:`write_image`'s file, byte for byte.
    """
    path = Path(path)
    fmt = output_format(path)
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    if bits == 16 and fmt not in DEEP_FORMATS:
        raise InputError(f"{path}: {fmt} holds 8 bits per sample; write .png or .tif for 16 bits")
    _register_plugins(path)
    pixels, icc = _encode_profile(pixels, profile, path)
    pixels = quantize(pixels, bits)
    if fmt not in _METADATA_FORMATS:
        exif = xmp = None
    if bits == 16:
        write16 = _write_png16 if fmt == "PNG" else _write_tiff16
        return write_output(path, lambda tmp: write16(tmp, np.ascontiguousarray(pixels), icc, exif, xmp), overwrite)
    params: dict = {"icc_profile": icc} if fmt in _PROFILE_FORMATS else {}
    if fmt in _LOSSY_FORMATS:
        params["quality"] = quality
    if fmt == "JPEG":
        params["subsampling"] = 0
    if exif and fmt == "TIFF":  # Pillow's TIFF writer takes EXIF as the first IFD's tags
        data = Image.Exif()
        data.load(exif)
        params["tiffinfo"] = {**data, **{p: dict(data.get_ifd(p)) for p in (_EXIF_IFD, _GPS_IFD) if p in data}}
    elif exif:
        params["exif"] = exif
    if xmp:
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt("XML:com.adobe.xmp", xmp.decode("utf-8", "replace"))
            params["pnginfo"] = info
        elif fmt == "TIFF":
            params["tiffinfo"] = {**params.get("tiffinfo", {}), 700: xmp}
        else:
            params["xmp"] = xmp
    return write_output(
        path, lambda tmp: Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format=fmt, **params), overwrite
    )
