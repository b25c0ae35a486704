"""Synthetic low-light pairs from normal photos, by a simple camera model (not a gamma curve).

For an 8-bit sRGB photo ``I`` the low-light image is made in the sensor's linear space:

1. linearise with the exact sRGB EOTF: ``L = I/12.92`` for ``I <= 0.04045``, else
   ``((I + 0.055) / 1.055) ** 2.4`` (``I`` in [0, 1]);
2. colour cast (white-balance error): ``L_c <- g_c * L_c`` with per-channel gains ``g``;
3. exposure: ``s = k * L`` with exposure scale ``k`` (a short exposure or dim light);
4. noise, Poisson-Gaussian in its Gaussian approximation: ``y = s + n`` with
   ``n ~ N(0, s / W + sigma_r^2)``; ``W`` is the full-well capacity in electrons at signal
   1.0 (lower ``W`` = higher ISO = more shot noise, since Poisson(s W) / W has variance
   s / W) and ``sigma_r`` the read noise (standard deviation, as a fraction of the white
   level); then ``y`` is clipped to [0, 1] (black level and saturation);
5. optional ADC quantisation of the linear signal to ``b`` bits:
   ``y <- round(y (2^b - 1)) / (2^b - 1)`` (gives the banding of dark raw data);
6. back to sRGB with the exact inverse EOTF and to 8 bits by rounding.

The parameters ``(k, W, sigma_r, g, b)`` are drawn per image from a
:class:`DegradationRanges`: ``k`` and ``W`` log-uniformly, ``sigma_r`` and each ``g_c``
uniformly, ``b`` uniformly among the listed choices. :data:`DEFAULT_RANGES` is used for
training data; :data:`HOLDOUT_RANGES` is a different preset (darker, noisier, stronger
casts) for held-out evaluation, so a model is not scored on the exact distribution it
was trained on.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gsad.errors import ConfigError, DataError, InputError
from gsad.files import OutputPlan, check_folder
from gsad.images import linear_to_srgb, list_images, read_image, srgb_to_linear, write_image

logger = logging.getLogger(__name__)

# Natural colour photos that scikit-image ships in its data folder (no pooch download).
# Left out: grey images, RGBA graphics (logo, horse), test charts (color, chessboard_RGB),
# and images that are dark by nature or not scenes (hubble_deep_field, retina, ihc).
_SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "rocket.jpg",
)

_SHOW = 5


@dataclass(frozen=True)
class DegradationRanges:
    """Ranges the camera-model parameters are drawn from, one draw per image.

    Attributes:
        exposure: ``(lo, hi)`` of the exposure scale ``k`` applied to linear light
            (log-uniform). ``k = 0.05`` maps sRGB mid-grey 128 to about 27.
        full_well: ``(lo, hi)`` electrons at signal 1.0, ``W`` (log-uniform); shot-noise
            variance is ``s / W`` for linear signal ``s``.
        read_noise: ``(lo, hi)`` of the read-noise standard deviation ``sigma_r`` in
            linear units of the white level (uniform).
        color_cast: ``(lo, hi)`` of each channel's gain ``g_c`` (uniform, independent per
            channel); ``(1.0, 1.0)`` turns the cast off.
        bits: ADC bit depths to choose from (uniformly); an empty tuple turns linear
            quantisation off (the output is still 8-bit sRGB).
    """

    exposure: tuple[float, float] = (0.01, 0.2)
    full_well: tuple[float, float] = (1000.0, 20000.0)
    read_noise: tuple[float, float] = (0.0002, 0.003)
    color_cast: tuple[float, float] = (0.9, 1.1)
    bits: tuple[int, ...] = (10, 12, 14)

    def __post_init__(self) -> None:
        for field in ("exposure", "full_well", "read_noise", "color_cast"):
            lo, hi = getattr(self, field)
            if not (0 <= lo <= hi):
                raise ConfigError(f"DegradationRanges.{field}: need 0 <= lo <= hi, got ({lo}, {hi})")
        if self.exposure[0] <= 0 or self.full_well[0] <= 0:
            raise ConfigError("DegradationRanges: exposure and full_well must be positive")
        if any(not (1 <= b <= 16) for b in self.bits):
            raise ConfigError(f"DegradationRanges.bits: each must be in 1..16, got {self.bits}")


#: Training preset: dark (the bundled photos, mean level about 65 of 255, come out with
#: mean levels of about 6-45), moderate noise, mild casts.
DEFAULT_RANGES = DegradationRanges()

#: Held-out preset, for honest tests of models trained on the default one: a different
#: camera. Exposures are concentrated at the dark end (0.01-0.05 instead of 0.01-0.2: mean
#: levels of about 5-15 on the bundled photos), the sensor is small (full well 1500-6000
#: electrons), the read-noise floor is higher (at least 0.001), colour casts are stronger
#: and the ADC is always 12-bit.
HOLDOUT_RANGES = DegradationRanges(
    exposure=(0.01, 0.05),
    full_well=(1500.0, 6000.0),
    read_noise=(0.001, 0.002),
    color_cast=(0.85, 1.15),
    bits=(12,),
)


@dataclass(frozen=True)
class DegradationParams:
    """One draw of the camera-model parameters (see the module docstring for symbols)."""

    exposure: float
    full_well: float
    read_noise: float
    gains: tuple[float, float, float]
    bits: int | None

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready): exposure, full_well, read_noise, gains (list), bits."""
        d = asdict(self)
        d["gains"] = list(self.gains)
        return d


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def sample_params(rng: np.random.Generator, ranges: DegradationRanges = DEFAULT_RANGES) -> DegradationParams:
    """Draw one :class:`DegradationParams` from ``ranges`` (a fixed number of draws)."""
    exposure = _log_uniform(rng, *ranges.exposure)
    full_well = _log_uniform(rng, *ranges.full_well)
    read_noise = float(rng.uniform(*ranges.read_noise))
    gains = tuple(float(g) for g in rng.uniform(*ranges.color_cast, size=3))
    bits = int(ranges.bits[rng.integers(len(ranges.bits))]) if ranges.bits else None
    return DegradationParams(exposure, full_well, read_noise, gains, bits)


def apply_degradation(image: np.ndarray, params: DegradationParams, rng: np.random.Generator) -> np.ndarray:
    """Darken an ``H x W x 3`` uint8 sRGB image with fixed ``params``; noise from ``rng``.

    Returns an ``H x W x 3`` uint8 sRGB image (steps 1-6 of the module docstring).
    """
    linear = srgb_to_linear(image.astype(np.float64) / 255.0)
    signal = linear * np.asarray(params.gains, dtype=np.float64) * params.exposure
    variance = signal / params.full_well + params.read_noise**2
    noisy = np.clip(signal + np.sqrt(variance) * rng.standard_normal(signal.shape), 0.0, 1.0)
    if params.bits is not None:
        levels = 2**params.bits - 1
        noisy = np.round(noisy * levels) / levels
    return np.round(linear_to_srgb(noisy) * 255.0).astype(np.uint8)


def degrade(
    image_uint8: np.ndarray,
    rng: np.random.Generator,
    ranges: DegradationRanges = DEFAULT_RANGES,
) -> tuple[np.ndarray, dict]:
    """Make a low-light version of a normal photo with randomly drawn camera parameters.

    Args:
        image_uint8: ``H x W x 3`` uint8 sRGB image.
        rng: source of the parameter draw and of the noise.
        ranges: parameter ranges (:data:`DEFAULT_RANGES` or :data:`HOLDOUT_RANGES`, ...).

    Returns:
        ``(low, params)``: ``H x W x 3`` uint8 sRGB low-light image and the drawn
        parameters as a plain dict (:meth:`DegradationParams.as_dict`).
    """
    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"degrade expects an H x W x 3 uint8 image, got shape {image.shape} dtype {image.dtype}")
    params = sample_params(rng, ranges)
    return apply_degradation(image, params, rng), params.as_dict()


def image_rng(seed: int, name: str) -> np.random.Generator:
    """Generator for one image, from ``seed`` and its file name (stable across runs and
    independent of which other files exist): seeded by ``[seed, *sha256(name) words]``."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng([int(seed), *words])


def bundled_photos() -> list[Path]:
    """Natural colour photos shipped in scikit-image's data folder that exist on disk.

    No download is attempted; photos that need one (pooch) are simply not listed.
    Returns an empty list when scikit-image is not installed.
    """
    try:
        import skimage.data
    except ImportError:
        return []
    folder = Path(skimage.data.__file__).parent
    return [folder / name for name in _SKIMAGE_PHOTOS if (folder / name).is_file()]


def synthesize_folder(
    photos_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    seed: int = 0,
    count: int | None = None,
    ranges: DegradationRanges = DEFAULT_RANGES,
    overwrite: bool = False,
    progress: bool = False,
) -> list[str]:
    """Write synthetic pairs ``out_dir/low/NAME.png`` and ``out_dir/high/NAME.png``.

    ``photos_dir`` is a folder (its images are used) or a list of photo files (e.g.
    :func:`bundled_photos`). ``NAME`` is each photo's stem; ``high`` is the photo itself (decoded to RGB, saved as
    PNG), ``low`` its :func:`degrade`-d version with a generator from
    :func:`image_rng`\\ (seed, photo file name): the same seed gives the same bytes, and
    adding photos does not change the others. ``count`` keeps the first ``count`` photos
    by name. Existing outputs are refused (all checked before anything is written)
    unless ``overwrite``. Returns the written file names (``NAME.png``), sorted.
    """
    out_dir = Path(out_dir)
    if isinstance(photos_dir, (str, os.PathLike)):
        photos_dir = Path(photos_dir)
        if not photos_dir.is_dir():
            raise DataError(f"{photos_dir}: no such photo folder")
        photos = list_images(photos_dir)
        if not photos:
            raise DataError(f"{photos_dir}: no images found")
    else:
        photos = sorted((Path(p) for p in photos_dir), key=lambda p: (p.name, str(p)))
        if not photos:
            raise DataError("no photos given")
        missing = [p for p in photos if not p.is_file()]
        if missing:
            raise DataError(
                f"{missing[0]}: no such photo file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        photos_dir = Path("the photo list")
    stems: dict[str, Path] = {}
    for photo in photos:
        if photo.stem in stems:
            raise DataError(
                f"{photos_dir}: {stems[photo.stem].name} and {photo.name} would both be written as {photo.stem}.png"
            )
        stems[photo.stem] = photo
    if count is not None:
        if count < 1:
            raise ConfigError(f"count must be at least 1, got {count}")
        photos = photos[:count]

    names = [photo.stem + ".png" for photo in photos]
    outputs = OutputPlan(photos)  # a photo is never replaced, even with overwrite
    for photo, name in zip(photos, names):
        for side in ("low", "high"):
            problem = outputs.problem(out_dir / side / name, photo)
            if problem:
                raise InputError(problem)
    for side in ("low", "high"):
        check_folder(out_dir / side)
    if not overwrite:
        existing = [
            out_dir / side / name for name in names for side in ("low", "high") if (out_dir / side / name).exists()
        ]
        if existing:
            shown = ", ".join(str(p) for p in existing[:_SHOW])
            more = f" and {len(existing) - _SHOW} more" if len(existing) > _SHOW else ""
            raise InputError(f"outputs exist: {shown}{more} (use --overwrite to replace them)")

    for photo, name in tqdm(list(zip(photos, names)), desc="synthesize", unit="img", disable=not progress):
        high = read_image(photo)
        low, params = degrade(high, image_rng(seed, photo.name), ranges)
        write_image(out_dir / "high" / name, high, overwrite=overwrite)
        write_image(out_dir / "low" / name, low, overwrite=overwrite)
        logger.debug("synthesized %s with %s", name, params)
    return sorted(names)
