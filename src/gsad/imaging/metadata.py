"""Photo metadata carried from input to output: EXIF (camera, lens, exposure, date, GPS) and XMP.

Pixels are written upright, so the Orientation (EXIF tag and XMP ``tiff:Orientation``) is reset
to 1; the MakerNote (private offsets that break when moved) and the Interop pointer are dropped;
:func:`with_software` names the program that wrote the file.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

#: EXIF IFD0 tags carried to outputs (the rest of IFD0 describes the source file's own layout):
#: ImageDescription, Make, Model, DateTime, Artist, Copyright; the Exif and GPS sub-IFDs follow.
_EXIF_KEPT = (270, 271, 272, 306, 315, 33432)


EXIF_ORIENTATION, EXIF_SOFTWARE, EXIF_IFD, GPS_IFD = 274, 305, 0x8769, 0x8825


#: Exif sub-IFD tags dropped: MakerNote (private offsets that break when moved), Interop pointer.
_EXIF_DROPPED = frozenset({0x927C, 0xA005})


def _xmp_upright(xmp: bytes) -> bytes:
    """``xmp`` with its tiff:Orientation (attribute or element) set to 1."""
    xmp = re.sub(rb'(tiff:Orientation\s*=\s*["\'])\d(["\'])', rb"\g<1>1\g<2>", xmp)
    return re.sub(rb"(<tiff:Orientation>)\s*\d\s*(</tiff:Orientation>)", rb"\g<1>1\g<2>", xmp)


def read_metadata(img: Image.Image) -> tuple[bytes | None, bytes | None]:
    """(EXIF, XMP) of an opened image, as :class:`Picture` holds them."""
    exif_bytes = None
    source = img.getexif()
    kept = Image.Exif()
    for tag in _EXIF_KEPT:
        if tag in source:
            kept[tag] = source[tag]
    for pointer in (EXIF_IFD, GPS_IFD):
        ifd = {k: v for k, v in source.get_ifd(pointer).items() if k not in _EXIF_DROPPED}
        if ifd:
            kept[pointer] = ifd
    if len(kept) or EXIF_ORIENTATION in source:
        kept[EXIF_ORIENTATION] = 1
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
    for pointer in (EXIF_IFD, GPS_IFD):
        ifd = dict(data.get_ifd(pointer))
        if ifd:
            out[pointer] = ifd
    out[EXIF_SOFTWARE] = software
    if EXIF_ORIENTATION in out:
        out[EXIF_ORIENTATION] = 1  # written pixels are upright
    return out.tobytes()


def raw_exif(path: Path) -> bytes | None:
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
    exif[EXIF_ORIENTATION] = 1
    return exif.tobytes()


#: EXIF IFD0 text tags a 16-bit TIFF carries in its own first IFD (tifffile writes no Exif sub-IFD).
TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
