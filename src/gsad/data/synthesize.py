"""Synthetic low-light pairs from normal photos, by a simple camera model (not a gamma curve).

For an 8-bit sRGB photo ``I`` the low-light image is made in the sensor's linear space:

1. linearise with the exact sRGB EOTF: ``L = I/12.92`` for ``I <= 0.04045``, else
   ``((I + 0.055) / 1.055) ** 2.4`` (``I`` in [0, 1]);
2. optional lens blur: a Gaussian of ``sigma_b`` pixels on ``L`` (optics blur before the
   sensor adds noise);
3. colour cast (white-balance error): ``L_c <- g_c * L_c`` with per-channel gains ``g``;
4. exposure: ``s = k * L`` with exposure scale ``k`` (a short exposure or dim light);
5. noise, Poisson-Gaussian in its Gaussian approximation: ``y = s + n`` with
   ``n ~ N(0, s / W + sigma_r^2)``; ``W`` is the full-well capacity in electrons at signal
   1.0 (lower ``W`` = higher ISO = more shot noise, since Poisson(s W) / W has variance
   s / W) and ``sigma_r`` the read noise (standard deviation, as a fraction of the white
   level). Optionally a fraction ``rho`` of the noise variance is spatially correlated, as
   after demosaicing (which interpolates each colour from its neighbours): the unit noise
   is ``sqrt(1 - rho) z1 + sqrt(rho) B z2`` with ``z1, z2`` white and ``B`` the 3 x 3 box
   sum scaled to unit variance, so horizontal neighbours correlate by ``2 rho / 3``. Then
   ``y`` is clipped to [0, 1] (black level and saturation);
6. optional ADC quantisation of the linear signal to ``b`` bits:
   ``y <- round(y (2^b - 1)) / (2^b - 1)`` (gives the banding of dark raw data);
7. tone curve to 8 bits (rounded): the exact sRGB inverse EOTF, a pure gamma
   ``y ** (1 / gamma)``, or a filmic S-curve (the sRGB curve followed by
   ``t <- (1 - a) t + a t^2 (3 - 2 t)``, which crushes the shadows and rolls off the
   highlights by strength ``a``);
8. optional down-and-up resampling by a factor ``d`` (bicubic; a phone's or an editor's
   resize, which softens detail and correlates the noise further);
9. optional JPEG compression at quality ``q`` (Pillow, 4:2:0 chroma subsampling).

The parameters are drawn per image from a :class:`DegradationRanges`: ``k`` and ``W``
log-uniformly, ``sigma_r``, each ``g_c``, ``rho``, ``gamma``, ``a``, ``sigma_b`` and ``d``
uniformly, ``b`` and the tone curve uniformly among the listed choices, ``q`` uniformly
among the integers of its range; blur, resampling and JPEG each happen with their own
probability. Named presets (:data:`RANGES`, the ``--ranges`` choices):

- ``default`` (:data:`DEFAULT_RANGES`): the first default model's training camera: dark
  (exposure 0.01-0.2), moderate noise, mild casts, sRGB curve, no correlation, blur,
  resampling or JPEG (steps 2, 8, 9 off and step 5 white);
- ``holdout`` (:data:`HOLDOUT_RANGES`): a different camera for that model's held-out test;
- ``broad`` (:data:`BROAD_RANGES`): the broad pipeline of the second default model, meant
  to cover real cameras; see its comment for each range and why;
- held-out families (:data:`HOLDOUT_FAMILIES`), each outside ``broad`` in a different
  direction, for testing models trained on ``broad``.

The stages that a preset turns off draw no random numbers, so ``default`` and ``holdout``
give exactly the bytes they gave before the other stages existed.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gsad.errors import ConfigError, DataError, InputError
from gsad.files import OutputPlan, check_folder
from gsad.imaging.exposure import linear_to_srgb, srgb_to_linear
from gsad.imaging.io import list_images, read_image, write_image

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


#: Tone curves of step 7 (module docstring).
TONE_CURVES = ("srgb", "gamma", "filmic")


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
        tone_curves: tone curves to choose from (uniformly): ``srgb``, ``gamma``, ``filmic``.
        gamma: ``(lo, hi)`` of the exponent of the ``gamma`` curve (uniform).
        filmic: ``(lo, hi)`` of the S-curve strength ``a`` of the ``filmic`` curve (uniform).
        noise_correlation: ``(lo, hi)`` of ``rho``, the spatially correlated fraction of the
            noise variance (uniform); ``(0, 0)`` gives white noise.
        blur_probability, blur_sigma: chance of the lens blur and ``(lo, hi)`` of its
            ``sigma_b`` in pixels (uniform).
        downscale_probability, downscale: chance of the down-and-up resampling and
            ``(lo, hi)`` of its factor ``d`` (uniform, >= 1).
        jpeg_probability, jpeg_quality: chance of JPEG compression and ``(lo, hi)`` of its
            quality (an integer, uniform, both ends included).
    """

    exposure: tuple[float, float] = (0.01, 0.2)
    full_well: tuple[float, float] = (1000.0, 20000.0)
    read_noise: tuple[float, float] = (0.0002, 0.003)
    color_cast: tuple[float, float] = (0.9, 1.1)
    bits: tuple[int, ...] = (10, 12, 14)
    tone_curves: tuple[str, ...] = ("srgb",)
    gamma: tuple[float, float] = (2.2, 2.2)
    filmic: tuple[float, float] = (0.5, 0.5)
    noise_correlation: tuple[float, float] = (0.0, 0.0)
    blur_probability: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 0.5)
    downscale_probability: float = 0.0
    downscale: tuple[float, float] = (1.0, 1.0)
    jpeg_probability: float = 0.0
    jpeg_quality: tuple[int, int] = (90, 90)

    def __post_init__(self) -> None:
        for field in ("exposure", "full_well", "read_noise", "color_cast", "gamma", "filmic", "noise_correlation",
                      "blur_sigma", "downscale", "jpeg_quality"):
            lo, hi = getattr(self, field)
            if not (0 <= lo <= hi):
                raise ConfigError(f"DegradationRanges.{field}: need 0 <= lo <= hi, got ({lo}, {hi})")
        if self.exposure[0] <= 0 or self.full_well[0] <= 0:
            raise ConfigError("DegradationRanges: exposure and full_well must be positive")
        if any(not (1 <= b <= 16) for b in self.bits):
            raise ConfigError(f"DegradationRanges.bits: each must be in 1..16, got {self.bits}")
        if not self.tone_curves or any(c not in TONE_CURVES for c in self.tone_curves):
            raise ConfigError(
                f"DegradationRanges.tone_curves: need some of {', '.join(TONE_CURVES)}, got {self.tone_curves}"
            )
        if self.gamma[0] <= 0 or self.noise_correlation[1] > 1 or self.filmic[1] > 1:
            raise ConfigError("DegradationRanges: need gamma > 0, noise_correlation and filmic within [0, 1]")
        if self.downscale[0] < 1 or not (1 <= self.jpeg_quality[0] and self.jpeg_quality[1] <= 100):
            raise ConfigError("DegradationRanges: need downscale >= 1 and jpeg_quality within 1..100")
        for field in ("blur_probability", "downscale_probability", "jpeg_probability"):
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"DegradationRanges.{field}: need a probability in [0, 1], got {value}")


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

#: The broad training pipeline of the second default model: real cameras, not one camera.
#: Each range and why:
#:
#: - exposure 0.005-1.0 (log-uniform): from about 8 stops under (mean level about 3 of 255
#:   on typical photos) to a normal exposure, so that about a quarter of the inputs
#:   (k > 0.3) need little or no correction and the model learns to leave them alone;
#: - full well 300-30000 e- (log-uniform): a phone sensor at high ISO (a few hundred
#:   electrons at white) to a large sensor at base ISO;
#: - read noise 0.0002-0.004 of white (uniform): about 1-5 e- on those sensors;
#: - colour cast 0.8-1.25 per channel: white-balance errors of tungsten, sodium or LED
#:   light that a camera did not fully correct;
#: - ADC 10, 12 or 14 bits (as before);
#: - tone curve sRGB, gamma 1.8-2.6 or a filmic S-curve of strength 0.2-0.6: cameras and
#:   phones do not all encode with the sRGB curve, and their S-curves crush the shadows;
#: - noise correlation 0-0.8: demosaicing and in-camera noise reduction leave blotchy,
#:   not white, noise (neighbour correlation up to about 0.53);
#: - lens blur (30 %, sigma 0.3-1.0 px) and down-and-up resampling (30 %, factor 1-1.5):
#:   soft optics and resized images; the target stays the sharp photo, so the model
#:   learns to keep (restore) fine detail instead of painting over it;
#: - JPEG (50 %, quality 60-95): most photos that users have are JPEGs, and their 8 x 8
#:   block artefacts in the shadows are amplified by any brightening.
BROAD_RANGES = DegradationRanges(
    exposure=(0.005, 1.0),
    full_well=(300.0, 30000.0),
    read_noise=(0.0002, 0.004),
    color_cast=(0.8, 1.25),
    bits=(10, 12, 14),
    tone_curves=TONE_CURVES,
    gamma=(1.8, 2.6),
    filmic=(0.2, 0.6),
    noise_correlation=(0.0, 0.8),
    blur_probability=0.3,
    blur_sigma=(0.3, 1.0),
    downscale_probability=0.3,
    downscale=(1.0, 1.5),
    jpeg_probability=0.5,
    jpeg_quality=(60, 95),
)

#: Held-out degradation families for models trained on :data:`BROAD_RANGES`, each outside
#: it in a different direction (applied to held-out photos only):
#:
#: - ``dark-noisy``: darker than any training draw (exposure 0.003-0.005, about 8 stops
#:   under) and so much noisier: about 2-7 electrons at mid-grey (full well 3000-8000 e-),
#:   with 1-5 e- of read noise (0.0003-0.0006), a quarter of the electrons of the first
#:   model's ``holdout`` camera. (Smaller wells at these exposures leave under one electron
#:   per pixel: no signal for any method to recover.);
#: - ``phone-jpeg``: a phone's pipeline in dim light: small sensor (full well 300-1000 e-)
#:   at exposures of 0.03-0.15 (a phone raises its gain rather than return a black frame; the
#:   darkness direction is ``dark-noisy``'s), strongly correlated noise (0.8-1.0), filmic
#:   curve, always resampled (1.5-2.0) and JPEG-compressed harder (quality 40-60) than in
#:   training;
#: - ``color-cast``: channel gains 0.55-1.7 (training: 0.8-1.25), moderate darkness;
#: - ``near-normal``: exposure 0.5-1.0 with a good sensor: inputs that need little change.
HOLDOUT_FAMILIES: dict[str, DegradationRanges] = {
    "dark-noisy": DegradationRanges(
        exposure=(0.003, 0.005), full_well=(3000.0, 8000.0), read_noise=(0.0003, 0.0006), color_cast=(0.9, 1.1),
        bits=(12,),
    ),
    "phone-jpeg": DegradationRanges(
        exposure=(0.03, 0.15), full_well=(300.0, 1000.0), read_noise=(0.001, 0.003), color_cast=(0.9, 1.1),
        bits=(10,), tone_curves=("filmic",), filmic=(0.4, 0.6), noise_correlation=(0.8, 1.0),
        downscale_probability=1.0, downscale=(1.5, 2.0), jpeg_probability=1.0, jpeg_quality=(40, 60),
    ),
    "color-cast": DegradationRanges(
        exposure=(0.01, 0.1), full_well=(1000.0, 10000.0), read_noise=(0.0005, 0.002), color_cast=(0.55, 1.7),
        bits=(12,),
    ),
    "near-normal": DegradationRanges(
        exposure=(0.5, 1.0), full_well=(5000.0, 30000.0), read_noise=(0.0002, 0.001), color_cast=(0.95, 1.05),
        bits=(12,), jpeg_probability=1.0, jpeg_quality=(85, 95),
    ),
}

#: Presets by name (the ``--ranges`` choices of ``gsad synthesize`` and ``gsad train``).
RANGES: dict[str, DegradationRanges] = {
    "default": DEFAULT_RANGES,
    "holdout": HOLDOUT_RANGES,
    "broad": BROAD_RANGES,
    **HOLDOUT_FAMILIES,
}


def named_ranges(name: str) -> DegradationRanges:
    """The preset ``name`` of :data:`RANGES` (ConfigError listing the names otherwise)."""
    if name not in RANGES:
        raise ConfigError(f"ranges: unknown preset {name!r} (choose from {', '.join(RANGES)})")
    return RANGES[name]


@dataclass(frozen=True)
class DegradationParams:
    """One draw of the camera-model parameters (see the module docstring for symbols).

    The defaults of the later fields turn their stages off (sRGB curve, white noise, no
    blur, resampling or JPEG)."""

    exposure: float
    full_well: float
    read_noise: float
    gains: tuple[float, float, float]
    bits: int | None
    tone_curve: str = "srgb"
    gamma: float = 2.2
    filmic: float = 0.0
    noise_correlation: float = 0.0
    blur_sigma: float = 0.0
    downscale: float = 1.0
    jpeg_quality: int | None = None

    def as_dict(self) -> dict:
        """Plain dict (JSON-ready) of all fields, ``gains`` as a list."""
        d = asdict(self)
        d["gains"] = list(self.gains)
        return d


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else float(lo)


def _maybe(rng: np.random.Generator, probability: float) -> bool:
    """One draw unless the probability is 0 or 1 (so turned-off stages draw nothing)."""
    if probability <= 0.0:
        return False
    return probability >= 1.0 or bool(rng.random() < probability)


def sample_params(rng: np.random.Generator, ranges: DegradationRanges = DEFAULT_RANGES) -> DegradationParams:
    """Draw one :class:`DegradationParams` from ``ranges``.

    The first draws (exposure, full well, read noise, gains, bits) are those of the
    original camera model; each later stage draws only when ``ranges`` can turn it on.
    """
    exposure = _log_uniform(rng, *ranges.exposure)
    full_well = _log_uniform(rng, *ranges.full_well)
    read_noise = float(rng.uniform(*ranges.read_noise))
    gains = tuple(float(g) for g in rng.uniform(*ranges.color_cast, size=3))
    bits = int(ranges.bits[rng.integers(len(ranges.bits))]) if ranges.bits else None
    extra: dict = {}
    curves = ranges.tone_curves
    if curves != ("srgb",):
        extra["tone_curve"] = curve = curves[int(rng.integers(len(curves)))] if len(curves) > 1 else curves[0]
        if curve == "gamma":
            extra["gamma"] = float(rng.uniform(*ranges.gamma))
        elif curve == "filmic":
            extra["filmic"] = float(rng.uniform(*ranges.filmic))
    if ranges.noise_correlation[1] > 0:
        extra["noise_correlation"] = float(rng.uniform(*ranges.noise_correlation))
    if _maybe(rng, ranges.blur_probability):
        extra["blur_sigma"] = float(rng.uniform(*ranges.blur_sigma))
    if _maybe(rng, ranges.downscale_probability):
        extra["downscale"] = float(rng.uniform(*ranges.downscale))
    if _maybe(rng, ranges.jpeg_probability):
        lo, hi = ranges.jpeg_quality
        extra["jpeg_quality"] = int(rng.integers(lo, hi + 1))
    return DegradationParams(exposure, full_well, read_noise, gains, bits, **extra)


def _box3(noise: np.ndarray) -> np.ndarray:
    """3 x 3 box sum of ``H x W x C`` unit white noise per channel, scaled to unit variance."""
    from scipy import ndimage  # imported when used: the CLI's start-up and --help stay light

    return ndimage.uniform_filter(noise, size=(3, 3, 1), mode="reflect") * 3.0


def tone_curve(linear: np.ndarray, params: DegradationParams) -> np.ndarray:
    """Step 7: linear [0, 1] values to display values in [0, 1] by ``params``' tone curve."""
    linear = np.clip(linear, 0.0, 1.0)
    if params.tone_curve == "gamma":
        return linear ** (1.0 / params.gamma)
    encoded = linear_to_srgb(linear)
    if params.tone_curve == "filmic":
        a = params.filmic
        encoded = (1.0 - a) * encoded + a * encoded**2 * (3.0 - 2.0 * encoded)
    return encoded


def _resample(image: np.ndarray, factor: float) -> np.ndarray:
    """Step 8: bicubic down by ``factor``, then back up to the original size (uint8)."""
    height, width = image.shape[:2]
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    picture = Image.fromarray(image).resize(small, Image.BICUBIC).resize((width, height), Image.BICUBIC)
    return np.array(picture, dtype=np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Step 9: encode an ``H x W x 3`` uint8 image as JPEG at ``quality`` and decode it."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    return np.array(Image.open(buffer).convert("RGB"), dtype=np.uint8)


def apply_degradation(image: np.ndarray, params: DegradationParams, rng: np.random.Generator) -> np.ndarray:
    """Darken an ``H x W x 3`` uint8 sRGB image with fixed ``params``; noise from ``rng``.

    Returns an ``H x W x 3`` uint8 image (steps 1-9 of the module docstring).
    """
    linear = srgb_to_linear(image.astype(np.float64) / 255.0)
    if params.blur_sigma > 0:
        from scipy import ndimage

        linear = ndimage.gaussian_filter(linear, sigma=(params.blur_sigma, params.blur_sigma, 0), mode="reflect")
    signal = linear * np.asarray(params.gains, dtype=np.float64) * params.exposure
    variance = signal / params.full_well + params.read_noise**2
    unit = rng.standard_normal(signal.shape)
    if params.noise_correlation > 0:
        rho = params.noise_correlation
        unit = np.sqrt(1.0 - rho) * unit + np.sqrt(rho) * _box3(rng.standard_normal(signal.shape))
    noisy = np.clip(signal + np.sqrt(variance) * unit, 0.0, 1.0)
    if params.bits is not None:
        levels = 2**params.bits - 1
        noisy = np.round(noisy * levels) / levels
    low = np.round(tone_curve(noisy, params) * 255.0).astype(np.uint8)
    if params.downscale > 1:
        low = _resample(low, params.downscale)
    if params.jpeg_quality is not None:
        low = jpeg_roundtrip(low, params.jpeg_quality)
    return low


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


def _photo_list(photos_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], Path]:
    """The photos of a folder (by name) or of a list of files, and how to name their source in errors."""
    if isinstance(photos_dir, (str, os.PathLike)):
        photos_dir = Path(photos_dir)
        if not photos_dir.is_dir():
            raise DataError(f"{photos_dir}: no such photo folder")
        photos = list_images(photos_dir)
        if not photos:
            raise DataError(f"{photos_dir}: no images found")
        return photos, photos_dir
    photos = sorted((Path(p) for p in photos_dir), key=lambda p: (p.name, str(p)))
    if not photos:
        raise DataError("no photos given")
    missing = [p for p in photos if not p.is_file()]
    if missing:
        raise DataError(
            f"{missing[0]}: no such photo file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
        )
    return photos, Path("the photo list")


def _check_unique_stems(photos: Sequence[Path], source: Path) -> None:
    """Two photos with one stem would be written to one ``NAME.png``."""
    stems: dict[str, Path] = {}
    for photo in photos:
        if photo.stem in stems:
            raise DataError(
                f"{source}: {stems[photo.stem].name} and {photo.name} would both be written as {photo.stem}.png"
            )
        stems[photo.stem] = photo


def _check_outputs(photos: Sequence[Path], names: Sequence[str], out_dir: Path, overwrite: bool) -> None:
    """Every ``out_dir/{low,high}/NAME`` checked before anything is written: never a photo (even
    with ``overwrite``), writable folders, and no existing output unless ``overwrite``."""
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


def synthesize_folder(
    photos_dir: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    seed: int = 0,
    count: int | None = None,
    ranges: DegradationRanges = DEFAULT_RANGES,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> list[str]:
    """Write synthetic pairs ``out_dir/low/NAME.png`` and ``out_dir/high/NAME.png``.

    ``photos_dir`` is a folder (its images are used) or a list of photo files (e.g.
    :func:`bundled_photos`). ``NAME`` is each photo's stem; ``high`` is the photo itself (decoded to RGB, saved as
    PNG), ``low`` its :func:`degrade`-d version with a generator from
    :func:`image_rng`\\ (seed, photo file name): the same seed gives the same bytes, and
    adding photos does not change the others. ``count`` keeps the first ``count`` photos
    by name. Existing outputs are refused (all checked before anything is written)
    unless ``overwrite``. Returns the written file names (``NAME.png``), sorted.

    A photo that cannot be read, or a pair that cannot be written, is passed to ``report`` (one
    line naming the file) and skipped, and the other photos are done as ``gsad enhance`` does;
    without ``report`` the first such :class:`InputError` is raised. Either way a pair is whole
    or absent: ``high`` is written first, and when ``low`` then fails both are removed, so
    ``low/`` never holds an image without its ``high/``.
    """
    out_dir = Path(out_dir)
    photos, source = _photo_list(photos_dir)
    _check_unique_stems(photos, source)
    if count is not None:
        if count < 1:
            raise ConfigError(f"count must be at least 1, got {count}")
        photos = photos[:count]
    names = [photo.stem + ".png" for photo in photos]
    _check_outputs(photos, names, out_dir, overwrite)

    written = []
    for photo, name in tqdm(list(zip(photos, names)), desc="synthesize", unit="img", disable=not progress):
        try:
            _write_pair(photo, out_dir, name, seed, ranges, overwrite)
        except InputError as exc:
            if report is None:
                raise
            report(str(exc))
            continue
        written.append(name)
    return sorted(written)


def _write_pair(photo: Path, out_dir: Path, name: str, seed: int, ranges: DegradationRanges, overwrite: bool) -> None:
    """One photo's pair, whole or not at all (see :func:`synthesize_folder`)."""
    high = read_image(photo)
    low, params = degrade(high, image_rng(seed, photo.name), ranges)
    write_image(out_dir / "high" / name, high, overwrite=overwrite)
    try:
        write_image(out_dir / "low" / name, low, overwrite=overwrite)
    except InputError:
        for side in ("high", "low"):  # never half a pair (an older low/ beside the new high/ included)
            (out_dir / side / name).unlink(missing_ok=True)
        raise
    logger.debug("synthesized %s with %s", name, params)
