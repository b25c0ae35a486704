"""Configuration dataclasses, presets and strict YAML/dict loading (no torch here).

Every config is a frozen dataclass. :func:`from_dict` builds one from plain data (a YAML
file, checkpoint metadata, CLI flags), rejecting unknown keys and values of the wrong type
with a :class:`~gsad.errors.ConfigError` that names the source and the key. Numbers written
like ``1e-4`` (which PyYAML reads as text) are converted.

Precedence everywhere: preset < YAML file < command-line flags.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gsad.errors import ConfigError

T = TypeVar("T")

#: Most sampling steps any schedule may have (the paper uses 10-20; its training schedule has 500).
MAX_STEPS = 1000

#: Largest seed: torch seeds are 64-bit; 2**32 - 1 also suits every numpy generator.
MAX_SEED = 2**32 - 1

#: Smallest last alpha_bar of a test schedule (float32 sampling stays finite above it).
MIN_ALPHA_BAR = 1e-30

#: Largest exposure change in stops (2**10: a thousand times the light either way).
MAX_EXPOSURE = 10.0

#: ``gsad enhance --raw-wb``: a camera RAW's white balance (gsad.imaging.raw).
RAW_WB_NAMES = ("camera", "auto")
#: ``gsad enhance --format``: the formats a folder run writes (suffix without the dot).
OUTPUT_FORMATS = ("png", "jpg", "tif", "webp", "heic", "avif")

#: Largest tile side of tiled inference (``tile`` is 0 for no tiling, or 1 to this).
MAX_TILE = 65536

#: Bounds on architecture numbers read from checkpoints and configs (the paper's widest is 256, its
#: levels 5, its residual blocks per level 2).
MAX_CHANNELS, MAX_LEVELS, MAX_RES_BLOCKS = 8192, 8, 16

#: Most parameters a network may have: about ten times the paper preset's 17,192,902 (with the
#: uncertainty head; a test asserts the ratio). Checked from the config alone (:func:`parameter_count`),
#: before any network is built, so a checkpoint or config claiming a huge network allocates nothing.
MAX_PARAMETERS = 172_000_000

#: The channels the method fixes: the U-Net reads the low-light condition y and the noisy image x_t
#: (3 + 3) and predicts the noise of an RGB image (3).
IN_CHANNELS, OUT_CHANNELS = 6, 3


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _prefix(name: str) -> str:
    """``"name: "``, or nothing where the caller (argparse) names the option itself."""
    return f"{name}: " if name else ""


def check_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an int in ``[low, high]``; ConfigError naming ``name`` and the range otherwise
    (floats, even 2.0, and booleans are refused: a knob that counts takes whole numbers)."""
    if not _is_int(value) or not low <= value <= high:
        raise ConfigError(f"{_prefix(name)}must be a whole number from {low} to {high}, got {value!r}")
    return int(value)


def check_steps(value: Any, name: str = "steps") -> int:
    """Sampling steps: 1 to :data:`MAX_STEPS` (see also :func:`check_schedule`)."""
    return check_int(value, name, 1, MAX_STEPS)


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed: 0 to :data:`MAX_SEED` (the self-ensemble's ``seed + k`` stays a valid torch seed)."""
    return check_int(value, name, 0, MAX_SEED)


def check_ensemble(value: Any, name: str = "ensemble") -> int:
    """Trajectories of the self-ensemble: 1 to :data:`MAX_ENSEMBLE`."""
    return check_int(value, name, 1, MAX_ENSEMBLE)


def check_real(value: Any, name: str, low: float, high: float, open_low: bool = False, open_high: bool = False,
               unit: str = "") -> float:
    """A finite real number in the interval from ``low`` to ``high`` (open ends as flagged)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low < value if open_low else low <= value) and (value < high if open_high else value <= high)
    if not ok:
        interval = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise ConfigError(f"{_prefix(name)}must be a number in {interval}{unit}, got {value!r}")
    return float(value)


def check_beta(value: Any, name: str = "beta") -> float:
    """A beta of the test schedule: a number in (0, 1)."""
    return check_real(value, name, 0.0, 1.0, open_low=True, open_high=True)


def check_exposure(value: Any, name: str = "exposure") -> float:
    """Exposure change in stops: a number in [-:data:`MAX_EXPOSURE`, :data:`MAX_EXPOSURE`]."""
    return check_real(value, name, -MAX_EXPOSURE, MAX_EXPOSURE, unit=" stops")


def check_detail(value: Any, name: str = "detail") -> float:
    """Strength of the detail restoration (:mod:`gsad.enhance.detail`): a number in [0, 1], 0 = off."""
    return check_real(value, name, 0.0, 1.0)


def log10_alpha_bar_end(steps: int, beta_start: float, beta_end: float) -> float:
    """log10 of the last alpha_bar of a linear schedule, prod(1 - beta_i), in float64 logs (no underflow)."""
    if steps == 1:
        return math.log1p(-beta_start) / math.log(10)
    step = (beta_end - beta_start) / (steps - 1)
    return math.fsum(math.log1p(-(beta_start + i * step)) for i in range(steps)) / math.log(10)


def same_start_betas(steps: int, beta_start: float, beta_end: float, new_steps: int) -> tuple[float, float]:
    """(beta_start, beta_end) of a linear schedule of ``new_steps`` steps that starts at the same noise
    level sqrt(alpha_bar_T) as the schedule of ``steps`` betas from ``beta_start`` to ``beta_end``: the
    same betas for the same steps; else the same ``beta_start`` and ``beta_end`` solved for (bisection
    in float64); where one step, or ``new_steps`` of ``beta_start`` alone, already go past that level,
    a constant beta 1 - alpha_bar_T^(1/new_steps). A distilled student that samples in fewer steps
    thus starts where its teacher does (one step of ``beta_start`` = 2e-3 would hardly noise a warm
    start, leaving the student nothing to change)."""
    if new_steps == steps:
        return beta_start, beta_end
    target = log10_alpha_bar_end(steps, beta_start, beta_end)
    if new_steps == 1 or log10_alpha_bar_end(new_steps, beta_start, beta_start) <= target:
        beta = -math.expm1(math.log(10) * target / new_steps)
        return beta, beta
    low, high = beta_start, 1.0 - 1e-12  # log10 alpha_bar_T falls as beta_end grows
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if log10_alpha_bar_end(new_steps, beta_start, middle) > target else (low, middle)
    return beta_start, (low + high) / 2


def check_schedule(steps: int, beta_start: float, beta_end: float) -> None:
    """Refuse a test schedule whose last alpha_bar falls below :data:`MIN_ALPHA_BAR`.

    The samplers divide by sqrt(alpha_bar) in float32; far below 1e-30 the tables overflow
    (inf, NaN: an all-black image or a math domain error) and the extra steps only add noise.
    The message gives the most steps these betas allow.
    """
    if log10_alpha_bar_end(steps, beta_start, beta_end) >= math.log10(MIN_ALPHA_BAR):
        return
    most = 1
    while most < steps and log10_alpha_bar_end(most + 1, beta_start, beta_end) >= math.log10(MIN_ALPHA_BAR):
        most += 1
    raise ConfigError(
        f"steps: {steps} steps of beta {beta_start:g} -> {beta_end:g} drive alpha_bar below {MIN_ALPHA_BAR:g}, "
        f"which float32 sampling cannot represent; with these betas use 1 to {most} steps (or smaller betas)"
    )



@dataclass(frozen=True)
class NetworkConfig:
    """Architecture of the conditional SR3-style U-Net (DESIGN.md section 1).

    ``attn_levels`` are encoder/decoder level indices (0 = full resolution) that carry a
    self-attention layer after each residual block; the middle block always has one.
    The network's stride is ``2 ** (len(channel_mults) - 1)``.
    """

    in_channels: int = 6
    out_channels: int = 3
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 1, 2, 2, 4)
    res_blocks: int = 2
    attn_levels: tuple[int, ...] = (3,)
    norm_groups: int = 32
    dropout: float = 0.0
    uncertainty_head: bool = True

    def __post_init__(self) -> None:
        for name, fixed, why in (("in_channels", IN_CHANNELS, "the low-light image and the noisy image, 3 each"),
                                 ("out_channels", OUT_CHANNELS, "the predicted noise of an RGB image")):
            value = getattr(self, name)
            if not _is_int(value) or value != fixed:
                raise ConfigError(f"network: {name} must be {fixed} ({why}), got {value!r}")
        for name, most in (("base_channels", MAX_CHANNELS), ("res_blocks", MAX_RES_BLOCKS),
                           ("norm_groups", MAX_CHANNELS)):
            value = getattr(self, name)
            if not _is_int(value) or not 1 <= value <= most:
                raise ConfigError(f"network: {name} must be a whole number from 1 to {most}, got {value!r}")
        if not self.channel_mults or len(self.channel_mults) > MAX_LEVELS:
            raise ConfigError(f"network: channel_mults must list 1 to {MAX_LEVELS} levels, got {self.channel_mults!r}")
        for mult in self.channel_mults:
            if not _is_int(mult) or not 1 <= mult * self.base_channels <= MAX_CHANNELS:
                raise ConfigError(f"network: channel multiplier {mult!r} gives widths outside 1..{MAX_CHANNELS}")
        for mult in self.channel_mults:
            if mult < 1 or (self.base_channels * mult) % self.norm_groups:
                raise ConfigError(
                    f"network: channels {self.base_channels}*{mult} not divisible by "
                    f"norm_groups {self.norm_groups}"
                )
        for level in self.attn_levels:
            if not 0 <= level < len(self.channel_mults):
                raise ConfigError(f"network: attention level {level} outside 0..{len(self.channel_mults) - 1}")
        if not isinstance(self.dropout, numbers.Real) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"network: dropout {self.dropout} outside [0, 1)")
        count = parameter_count(self)
        if count > MAX_PARAMETERS:
            raise ConfigError(
                f"network: this architecture has {count:,} parameters, more than gsad accepts "
                f"({MAX_PARAMETERS:,}, about ten times the paper's model)"
            )

    @property
    def stride(self) -> int:
        """Images must be a multiple of this size (one halving per level but the last)."""
        return 2 ** (len(self.channel_mults) - 1)


def parameter_count(config: NetworkConfig) -> int:
    """Parameters of ``UNet(config)`` (gsad.network.unet), counted from the config alone: no torch, no
    allocation (a test asserts it equals the built network's count)."""
    c0, mults = config.base_channels, config.channel_mults

    def conv(cin: int, cout: int, k: int = 3, bias: bool = True) -> int:
        return cin * cout * k * k + (cout if bias else 0)

    def block(cin: int, cout: int, attention: bool) -> int:
        n = 2 * cin + conv(cin, cout) + (c0 * cout + cout) + 2 * cout + conv(cout, cout)
        n += conv(cin, cout, 1) if cin != cout else 0
        return n + (2 * cout + conv(cout, 3 * cout, 1, bias=False) + conv(cout, cout, 1) if attention else 0)

    total = (c0 * 4 * c0 + 4 * c0) + (4 * c0 * c0 + c0) + conv(config.in_channels, c0)
    skips, ch, last = [c0], c0, len(mults) - 1
    for level, mult in enumerate(mults):
        for _ in range(config.res_blocks):
            total += block(ch, c0 * mult, level in config.attn_levels)
            ch = c0 * mult
            skips.append(ch)
        if level != last:
            total += conv(ch, ch)
            skips.append(ch)
    total += block(ch, ch, True) + block(ch, ch, False)
    for level in reversed(range(len(mults))):
        for _ in range(config.res_blocks + 1):
            total += block(ch + skips.pop(), c0 * mults[level], level in config.attn_levels)
            ch = c0 * mults[level]
        if level != 0:
            total += conv(ch, ch)
    total += 2 * ch + conv(ch, config.out_channels)
    if config.uncertainty_head:
        total += 2 * conv(ch, ch) + conv(ch, 3)
    return total


#: Architecture presets.
#: - ``paper``: the published configuration (17.36 M parameters without the uncertainty head).
#: - ``small``: a quarter of the width (32 base channels, 16 norm groups) and four levels, for
#:   CPU training runs of hours rather than days (about 1/10 of the paper's MACs per pixel).
#: - ``tiny``: 16 base channels, three levels, one block per level, attention only at 1/4
#:   resolution: fast enough for tests and for a few seconds per photo on a 2-core CPU.
PRESETS: dict[str, NetworkConfig] = {
    "paper": NetworkConfig(),
    "small": NetworkConfig(
        base_channels=32, channel_mults=(1, 2, 2, 4), res_blocks=1, attn_levels=(3,), norm_groups=16
    ),
    "tiny": NetworkConfig(
        base_channels=16, channel_mults=(1, 2, 2), res_blocks=1, attn_levels=(2,), norm_groups=8
    ),
}


SAMPLER_NAMES = ("reference", "ddim", "dpmpp")

#: Where a trajectory starts: pure noise (the paper), or the noised auto-exposure (full, or soft:
#: no gain for well-exposed inputs) or learned global correction of the input.
START_NAMES = ("noise", "exposure", "soft-exposure", "learned-exposure")

#: Most trajectories a self-ensemble averages: the 8 symmetries of the pixel grid.
MAX_ENSEMBLE = 8

#: Largest image read from a file, in pixels (``--max-megapixels`` raises it). A 3000 x 2000 photo
#: (6 MP) takes minutes on a CPU; a file claiming more than this is refused from its header,
#: before any decoding, so a tiny "decompression bomb" cannot run for hours or fill memory.
MAX_PIXELS = 50_000_000

#: Precisions the network can run in (inference ``precision``; training ``amp`` uses the half
#: ones). gsad.network.inference_net.PRECISIONS maps each to its autocast dtype (kept here, without
#: torch, for the configs and the CLI; a test asserts the two agree).
PRECISION_NAMES = ("fp32", "bf16", "fp16")

#: Values of the inference ``precision`` option: ``auto`` (gsad.runtime.fastpath chooses) plus
#: the fixed precisions.
PRECISION_CHOICES = ("auto", *PRECISION_NAMES)
#: Largest mean difference from fp32 (levels of 255) that ``precision="auto"`` accepts.
TOLERANCE_LEVELS = 1.0
#: Engines the network can run on (gsad.runtime.engines): torch, and with ``gsad[fast]`` ONNX Runtime
#: and OpenVINO.
ENGINE_NAMES = ("torch", "onnxruntime", "openvino")
#: Values of the ``engine`` option: ``auto`` (gsad.runtime.fastpath chooses among the installed ones) plus each.
ENGINE_CHOICES = ("auto", *ENGINE_NAMES)
#: Forms of GroupNorm in an exported ONNX graph (gsad.network.onnx_export): ``standard`` (torch's
#: export) and ``channel-stats`` (per-channel statistics, the activations never reshaped).
GROUP_NORM_NAMES = ("standard", "channel-stats")

#: Per-sample weightings of the training noise loss (see gsad.losses.objectives.loss_weight).
LOSS_WEIGHTINGS = ("eps", "truncated-snr")

#: Distances between a distilled student's output and its teacher's (gsad.losses.objectives.distill_distance).
DISTILL_LOSSES = ("l1", "charbonnier")


@dataclass(frozen=True)
class SamplerConfig:
    """How to run inference: sampler, number of steps, test schedule and seed.

    ``reference`` is the paper's ancestral sampler over a short linear schedule of ``steps``
    betas from ``beta_start`` to ``beta_end``; ``ddim`` is deterministic (eta = 0) over the
    same schedule. Defaults are the paper's LOL-v1 settings.

    ``start``: ``noise`` starts the trajectory from pure noise (the paper); ``exposure``
    starts it from the input's global auto-exposure, noised to the schedule's first level
    (a warm start, see :func:`gsad.diffusion.samplers.initial_state`); ``soft-exposure``
    from the soft auto-exposure (:func:`gsad.imaging.exposure.soft_auto_exposure`), which does not
    brighten inputs that are already well exposed; ``learned-exposure`` from a small network's
    global exposure and colour correction (:func:`gsad.network.exposure_net.learned_exposure`).

    ``ensemble``: number of trajectories averaged per image (1-8, :data:`MAX_ENSEMBLE`). Pass
    ``k`` runs on the ``k``-th symmetry of the pixel grid (identity, flips, then transposes;
    :func:`gsad.imaging.geometry.grid_symmetry`) with seed ``seed + k``, and is mapped back before the
    mean: less residual noise for ``ensemble`` times the network evaluations.

    ``detail``: strength (0-1) of the detail restoration after the trajectory
    (:func:`gsad.enhance.detail.restore_detail`): the input's fine detail put back where it stands above
    the input's noise. 0, the default and the paper, turns it off.
    """

    sampler: str = "reference"
    steps: int = 20
    beta_start: float = 6e-4
    beta_end: float = 0.88
    seed: int = 4088
    start: str = "noise"
    ensemble: int = 1
    detail: float = 0.0

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLER_NAMES:
            raise ConfigError(f"sampler: unknown sampler {self.sampler!r} (choose from {', '.join(SAMPLER_NAMES)})")
        if self.start not in START_NAMES:
            raise ConfigError(f"start: unknown start {self.start!r} (choose from {', '.join(START_NAMES)})")
        # one checker per knob, shared with the CLI's argument types (numpy integers become int)
        for name, check in (("steps", check_steps), ("seed", check_seed), ("ensemble", check_ensemble),
                            ("detail", check_detail),
                            ("beta_start", check_beta), ("beta_end", check_beta)):
            object.__setattr__(self, name, check(getattr(self, name), name))
        check_schedule(self.steps, self.beta_start, self.beta_end)


#: The sampler options, in order: the CLI's sampler flags and the keyword form of
#: ``Enhancer.enhance`` are these, so a new option cannot be dropped on the way.
SAMPLER_FIELDS = tuple(f.name for f in dataclasses.fields(SamplerConfig))


def with_overrides(config: T, **overrides: Any) -> T:
    """``config`` (a frozen dataclass) with the non-None ``overrides`` applied and validated;
    ConfigError for an unknown name or a bad value."""
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return dataclasses.replace(config, **changes)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None


def preset(name: str) -> NetworkConfig:
    """The network preset called ``name`` (ConfigError for an unknown one)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
        return value.lower() in ("true", "yes")
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


def _to_int(value: Any, where: str) -> int:
    """Integers, and floats or texts (``"1e3"``) that are whole numbers; never booleans."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool):
        number = None
    if isinstance(number, int):
        return number
    if isinstance(number, float) and number.is_integer():
        return int(number)
    raise ConfigError(f"{where}: expected an integer, got {value!r}")


def _to_float(value: Any, where: str) -> float:
    """Numbers, and texts such as ``"1e-4"`` (which PyYAML reads as text); never booleans."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: expected a number, got {value!r}")


def _to_str(value: Any, where: str) -> str:
    if isinstance(value, (str, Path)):
        return str(value)
    raise ConfigError(f"{where}: expected text, got {value!r}")


#: How a plain value from YAML, metadata or flags becomes each scalar field type.
_SCALARS: dict[Any, Callable[[Any, str], Any]] = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def _to_union(value: Any, args: tuple, where: str) -> Any:
    """None for an optional field, else the first member type that converts ``value``."""
    if value is None and type(None) in args:
        return None
    last: ConfigError | None = None
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, where)
        except ConfigError as exc:
            last = exc
    raise last or ConfigError(f"{where}: bad value {value!r}")


def _to_tuple(value: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: expected a list, got {value!r}")
    item = args[0] if args else Any
    return tuple(_convert(v, item, where) for v in value)


def _convert(value: Any, hint: Any, where: str) -> Any:
    """``value`` as field type ``hint`` (ConfigError naming ``where`` otherwise); types without a
    converter (``Any``, ``dict``) pass unchanged."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _to_union(value, typing.get_args(hint), where)
    if origin is tuple:
        return _to_tuple(value, typing.get_args(hint), where)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    convert = _SCALARS.get(hint)
    return value if convert is None else convert(value, where)


def from_dict(cls: type[T], data: Any, source: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, strictly.

    Unknown keys and values of the wrong type raise ConfigError naming ``source`` and the
    key; missing keys take the dataclass defaults.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        allowed = ", ".join(sorted(names))
        raise ConfigError(f"{source}: unknown key(s) {', '.join(map(str, unknown))} (allowed: {allowed})")
    kwargs = {k: _convert(v, hints[k], f"{source}: {k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        said = str(exc)  # a section's own checks may already name it ("network: ...")
        raise ConfigError(said if said.startswith(f"{source}: ") else f"{source}: {said}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (tuples become lists), for YAML/JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; ConfigError naming the file when missing or malformed."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


__all__ = [
    "NetworkConfig",
    "SamplerConfig",
    "PRESETS",
    "SAMPLER_FIELDS",
    "SAMPLER_NAMES",
    "preset",
    "with_overrides",
    "from_dict",
    "to_dict",
    "load_yaml",
]


#: Dataset layouts of gsad.data.layouts.find_pairs (plus ``"auto"``) and its split names.
LAYOUTS = ("lol-v1", "lol-v2-real", "lol-v2-synthetic", "pairs")
SPLITS = ("train", "test")

#: Pipelines that run a model on the pairs in gsad.evaluation.evaluate (its module docstring).
PIPELINES = ("reference", "enhance")

#: Default grid of gsad.evaluation.tuning (``gsad tune-schedule``). Steps 10/20 are the paper's;
#: betas bracket its per-dataset choices. TUNING_METRICS: what ranks the trials.
TUNING_STEPS = (10, 20)
TUNING_BETA_STARTS = (1e-4, 6e-4, 2e-3)
TUNING_BETA_ENDS = (0.5, 0.7, 0.85, 0.9)
TUNING_METRICS = ("psnr", "ssim")

#: Names of the degradation presets of ``gsad synthesize`` and ``--synthetic`` training
#: (gsad.data.synthesize.RANGES; kept here, without numpy, for the CLI; a test asserts the two agree).
RANGE_NAMES = ("default", "holdout", "broad", "dark-noisy", "phone-jpeg", "color-cast", "near-normal")
