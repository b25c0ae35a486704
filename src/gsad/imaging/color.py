"""Colour management in float: matrix-shaper ICC profiles <-> extended sRGB (numpy, no torch).

littleCMS (Pillow's ``ImageCms``) converts 8-bit pixels and clips to the target gamut, which
loses both the depth of a 16-bit or RAW source and the colours of a wide-gamut one that lie
outside sRGB. Every RGB working space a camera or an editor tags images with (Display P3, Adobe
RGB, ProPhoto, Rec. 2020, linear variants) is a *matrix-shaper* profile: three tone curves
(``rTRC``/``gTRC``/``bTRC``) and three colorants (``rXYZ``/``gXYZ``/``bXYZ``, D50-adapted). For
those the conversion is exact arithmetic, done here in float64:

    linear_src = TRC_src(v);  XYZ = M_src linear_src;  linear_srgb = M_srgb^-1 XYZ;  v' = sRGB(linear_srgb)

which is what littleCMS does for two matrix-shapers with the relative colorimetric intent (their
black is 0, so black point compensation changes nothing). Values outside [0, 1] are kept
("extended sRGB", the sign carried through the curve), so a wide-gamut colour survives a round
trip; they are clipped only where pixels are stored or given to the model. Profiles of any other
kind (LUT-based, grey, CMYK) return None from :func:`matrix_shaper` and are left to littleCMS.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

import numpy as np

#: Samples of a tone curve kept for evaluating and inverting it (16-bit exact to ~1e-5).
_CURVE_SAMPLES = 65536


def srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values -> linear light (float64), extended: odd-symmetric outside [0, 1]."""
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    return np.sign(v) * np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)


def srgb_encode(y: np.ndarray) -> np.ndarray:
    """Linear light -> sRGB-encoded values (float64), extended as :func:`srgb_decode`."""
    y = np.asarray(y, dtype=np.float64)
    a = np.abs(y)
    return np.sign(y) * np.where(a <= 0.0031308, a * 12.92, 1.055 * a ** (1 / 2.4) - 0.055)


@dataclass(frozen=True)
class MatrixShaper:
    """An RGB matrix-shaper profile: ``to_xyz`` (3 x 3, linear RGB -> PCS XYZ D50) and each
    channel's tone curve sampled at :data:`_CURVE_SAMPLES` points of [0, 1] (increasing)."""

    to_xyz: np.ndarray
    curves: tuple[np.ndarray, np.ndarray, np.ndarray]

    def decode(self, v: np.ndarray) -> np.ndarray:
        """Encoded ``... x 3`` values -> linear (extended: odd-symmetric, linear past 1)."""
        out = np.empty(v.shape, dtype=np.float64)
        grid = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
        for c, curve in enumerate(self.curves):
            x = np.asarray(v[..., c], dtype=np.float64)
            a = np.abs(x)
            y = np.interp(np.minimum(a, 1.0), grid, curve)
            slope = (curve[-1] - curve[-2]) * (_CURVE_SAMPLES - 1)
            out[..., c] = np.sign(x) * np.where(a > 1.0, curve[-1] + (a - 1.0) * slope, y)
        return out

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Linear ``... x 3`` values -> encoded (the inverse of :meth:`decode`)."""
        out = np.empty(y.shape, dtype=np.float64)
        grid = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
        for c, curve in enumerate(self.curves):
            x = np.asarray(y[..., c], dtype=np.float64)
            a = np.abs(x)
            v = np.interp(np.minimum(a, curve[-1]), curve, grid)
            slope = (curve[-1] - curve[-2]) * (_CURVE_SAMPLES - 1)
            out[..., c] = np.sign(x) * np.where(a > curve[-1], 1.0 + (a - curve[-1]) / slope, v)
        return out


def _s15(data: bytes, offset: int, n: int) -> list[float]:
    return [v / 65536.0 for v in struct.unpack_from(f">{n}i", data, offset)]


def _curve(data: bytes, offset: int) -> np.ndarray:
    """An ICC ``curv`` or ``para`` tag at ``offset`` sampled on [0, 1]."""
    x = np.linspace(0.0, 1.0, _CURVE_SAMPLES)
    kind = data[offset:offset + 4]
    if kind == b"curv":
        (count,) = struct.unpack_from(">I", data, offset + 8)
        if count == 0:
            return x
        if count == 1:
            return x ** (struct.unpack_from(">H", data, offset + 12)[0] / 256.0)
        table = np.array(struct.unpack_from(f">{count}H", data, offset + 12), dtype=np.float64) / 65535.0
        return np.interp(x, np.linspace(0.0, 1.0, count), table)
    if kind == b"para":
        (function,) = struct.unpack_from(">H", data, offset + 8)
        n = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[function]
        g, a, b, c, d, e, f = (_s15(data, offset + 12, n) + [0.0] * 7)[:7]
        if function == 0:
            return x**g
        if function == 1:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g, 0.0)
        if function == 2:
            return np.where(x >= -b / a, np.maximum(a * x + b, 0) ** g + c, c)
        if function == 3:
            return np.where(x >= d, np.maximum(a * x + b, 0) ** g, c * x)
        return np.where(x >= d, np.maximum(a * x + b, 0) ** g + e, c * x + f)
    raise ValueError(f"tone curve of type {kind!r}")


@functools.lru_cache(maxsize=16)
def matrix_shaper(icc: bytes) -> MatrixShaper | None:
    """The matrix-shaper form of an RGB ICC profile, or None (not RGB, LUT-based, corrupt)."""
    try:
        if len(icc) < 132 or icc[16:20] != b"RGB " or icc[20:24] != b"XYZ ":
            return None
        (count,) = struct.unpack_from(">I", icc, 128)
        tags = {}
        for i in range(count):
            sig, off, size = struct.unpack_from(">4sII", icc, 132 + 12 * i)
            tags[sig] = off
        if b"A2B0" in tags or b"B2A0" in tags:
            return None  # a LUT profile: its tables, not its matrix, define it (littleCMS's rule)
        columns = []
        for sig in (b"rXYZ", b"gXYZ", b"bXYZ"):
            off = tags[sig]
            if icc[off:off + 4] != b"XYZ ":
                return None
            columns.append(_s15(icc, off + 8, 3))
        curves = tuple(_curve(icc, tags[sig]) for sig in (b"rTRC", b"gTRC", b"bTRC"))
    except (KeyError, ValueError, struct.error, ZeroDivisionError):
        return None
    to_xyz = np.array(columns, dtype=np.float64).T
    if not np.isfinite(to_xyz).all() or abs(np.linalg.det(to_xyz)) < 1e-6:
        return None
    if any(not np.isfinite(c).all() or np.any(np.diff(c) < 0) or c[-1] <= 0 for c in curves):
        return None
    return MatrixShaper(to_xyz, curves)  # type: ignore[arg-type]


@functools.cache
def _srgb_to_xyz() -> np.ndarray:
    """sRGB linear RGB -> XYZ D50, as littleCMS's built-in sRGB (the profile outputs carry) states it."""
    from PIL import ImageCms

    return matrix_shaper(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()).to_xyz


def to_srgb(pixels: np.ndarray, profile: MatrixShaper) -> np.ndarray:
    """``H x W x 3`` values encoded in ``profile`` -> extended sRGB float32 (not clipped)."""
    matrix = np.linalg.solve(_srgb_to_xyz(), profile.to_xyz)
    return srgb_encode(profile.decode(pixels) @ matrix.T).astype(np.float32)


def from_srgb(pixels: np.ndarray, profile: MatrixShaper) -> np.ndarray:
    """Extended sRGB ``H x W x 3`` -> values encoded in ``profile`` (float64, not clipped)."""
    matrix = np.linalg.solve(profile.to_xyz, _srgb_to_xyz())
    return profile.encode(srgb_decode(pixels) @ matrix.T)
