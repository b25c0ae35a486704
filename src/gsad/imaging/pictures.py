"""Photos as ``gsad enhance`` reads and writes them: depth, colour profile and metadata kept.

:func:`read_picture` gives a :class:`Picture` (8-bit files exactly as :func:`gsad.imaging.io.read_image`
reads them; 16-bit, float and camera RAW files in float; a wide-gamut profile converted in float);
:func:`write_picture` writes by the suffix (PNG and TIFF in 8 or 16 bits, JPEG at 4:4:4, WebP, HEIC,
AVIF, BMP, PNM) with a profile and the metadata (:mod:`gsad.imaging.metadata`), atomically.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from gsad.config import MAX_PIXELS
from gsad.errors import InputError
from gsad.files import write_output
from gsad.imaging import color
from gsad.imaging.io import (
    HEIF_SUFFIXES,
    PROFILE_FORMATS,
    check_file,
    first_value,
    is_output_image_file,
    open_unlimited,
    quantize,
    quiet_native_stderr,
    read_image,
    register_plugins,
    srgb_icc_bytes,
    srgb_profile,
    white_level,
)
from gsad.imaging.metadata import (
    EXIF_IFD,
    EXIF_ORIENTATION,
    EXIF_SOFTWARE,
    GPS_IFD,
    TIFF_TEXT_TAGS,
    raw_exif,
    read_metadata,
)
from gsad.imaging.raw import is_raw_file, read_raw


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


def _sixteen_bit_rgb(img: Image.Image, path: Path, tile: list) -> np.ndarray | None:
    """The 16-bit samples of an RGB(A) PNG or TIFF as ``H x W x 3`` uint16, or None when ``img`` has
    no more than 8 bits per sample. Pillow has no 16-bit RGB mode; it keeps a PNG's high bytes, so
    the PNG is decoded twice, once keeping each sample's high byte and once its low byte (both
    decodes in C); a TIFF is read by tifffile."""
    if img.format == "TIFF":
        bits = first_value(img.tag_v2.get(258)) if hasattr(img, "tag_v2") else None
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
        arr = np.repeat((arr / white_level(img, str(path)))[..., None], 3, axis=2)
    else:
        deep = _sixteen_bit_rgb(img, path, tile)
        if deep is None:
            return None
        arr = deep.astype(np.float64) / 65535.0
    arr = _ORIENT.get(img.getexif().get(EXIF_ORIENTATION), lambda a: a)(arr)
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
    path = check_file(path)
    if is_raw_file(path):
        return Picture(read_raw(path, max_pixels, raw_wb), depth=16, exif=raw_exif(path))
    pixels = read_image(path, max_pixels)  # every check and error of an ordinary read, and the 8-bit pixels
    register_plugins(path)
    try:
        with quiet_native_stderr():
            img = open_unlimited(path)
            with img:
                tile = list(img.tile)  # before anything loads the image (a PNG's getexif() may)
                img.load()
                icc = img.info.get("icc_profile") or None
                exif, xmp = read_metadata(img)
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


#: Output formats (Pillow's names) that hold 16 bits per sample; the others are written with 8.
DEEP_FORMATS = frozenset({"PNG", "TIFF"})


#: Output formats whose files carry EXIF and XMP (BMP and PNM hold no metadata).
_METADATA_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "TIFF", "HEIF", "AVIF"})


#: Lossy output formats that take ``quality``.
_LOSSY_FORMATS = frozenset({"JPEG", "WEBP", "HEIF", "AVIF"})


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
            Image.fromarray(quantize(unit, 8)), srgb_profile(), target,
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
        software = data.get(EXIF_SOFTWARE)
        for tag in TIFF_TEXT_TAGS:
            if tag != EXIF_SOFTWARE and isinstance(data.get(tag), str):
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
    register_plugins(path)
    pixels, icc = _encode_profile(pixels, profile, path)
    pixels = quantize(pixels, bits)
    if fmt not in _METADATA_FORMATS:
        exif = xmp = None
    if bits == 16:
        write16 = _write_png16 if fmt == "PNG" else _write_tiff16
        return write_output(path, lambda tmp: write16(tmp, np.ascontiguousarray(pixels), icc, exif, xmp), overwrite)
    params: dict = {"icc_profile": icc} if fmt in PROFILE_FORMATS else {}
    if fmt in _LOSSY_FORMATS:
        params["quality"] = quality
    if fmt == "JPEG":
        params["subsampling"] = 0
    if exif and fmt == "TIFF":  # Pillow's TIFF writer takes EXIF as the first IFD's tags
        data = Image.Exif()
        data.load(exif)
        params["tiffinfo"] = {**data, **{p: dict(data.get_ifd(p)) for p in (EXIF_IFD, GPS_IFD) if p in data}}
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
