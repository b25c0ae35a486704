"""Configuration dataclasses, presets and strict YAML/dict loading (no torch here).

Every config is a frozen dataclass. :func:`from_dict` builds one from plain data (a YAML
file, checkpoint metadata, CLI flags), rejecting unknown keys and values of the wrong type
with a :class:`~gsad.errors.ConfigError` that names the source and the key. Numbers written
like ``1e-4`` (which PyYAML reads as text) are converted.

Precedence everywhere: preset < YAML file < command-line flags.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gsad.errors import ConfigError

T = TypeVar("T")


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
        if self.base_channels < 1 or self.res_blocks < 1 or not self.channel_mults:
            raise ConfigError("network: base_channels, res_blocks and channel_mults must be positive")
        for mult in self.channel_mults:
            if mult < 1 or (self.base_channels * mult) % self.norm_groups:
                raise ConfigError(
                    f"network: channels {self.base_channels}*{mult} not divisible by "
                    f"norm_groups {self.norm_groups}"
                )
        for level in self.attn_levels:
            if not 0 <= level < len(self.channel_mults):
                raise ConfigError(f"network: attention level {level} outside 0..{len(self.channel_mults) - 1}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"network: dropout {self.dropout} outside [0, 1)")

    @property
    def stride(self) -> int:
        """Images must be a multiple of this size (one halving per level but the last)."""
        return 2 ** (len(self.channel_mults) - 1)


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
#: no gain for well-exposed inputs) of the input.
START_NAMES = ("noise", "exposure", "soft-exposure")

#: Most trajectories a self-ensemble averages: the 8 symmetries of the pixel grid.
MAX_ENSEMBLE = 8

#: Per-sample weightings of the training noise loss (see gsad.losses.objectives.loss_weight).
LOSS_WEIGHTINGS = ("eps", "truncated-snr")


@dataclass(frozen=True)
class SamplerConfig:
    """How to run inference: sampler, number of steps, test schedule and seed.

    ``reference`` is the paper's ancestral sampler over a short linear schedule of ``steps``
    betas from ``beta_start`` to ``beta_end``; ``ddim`` is deterministic (eta = 0) over the
    same schedule. Defaults are the paper's LOL-v1 settings.

    ``start``: ``noise`` starts the trajectory from pure noise (the paper); ``exposure``
    starts it from the input's global auto-exposure, noised to the schedule's first level
    (a warm start, see :func:`gsad.diffusion.samplers.initial_state`); ``soft-exposure``
    from the soft auto-exposure (:func:`gsad.images.soft_auto_exposure`), which does not
    brighten inputs that are already well exposed.

    ``ensemble``: number of trajectories averaged per image (1-8, :data:`MAX_ENSEMBLE`). Pass
    ``k`` runs on the ``k``-th symmetry of the pixel grid (identity, flips, then transposes;
    :func:`gsad.inference.grid_symmetry`) with seed ``seed + k``, and is mapped back before the
    mean: less residual noise for ``ensemble`` times the network evaluations.
    """

    sampler: str = "reference"
    steps: int = 20
    beta_start: float = 6e-4
    beta_end: float = 0.88
    seed: int = 4088
    start: str = "noise"
    ensemble: int = 1

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLER_NAMES:
            raise ConfigError(f"sampler: unknown sampler {self.sampler!r} (choose from {', '.join(SAMPLER_NAMES)})")
        if self.start not in START_NAMES:
            raise ConfigError(f"start: unknown start {self.start!r} (choose from {', '.join(START_NAMES)})")
        if self.steps < 1:
            raise ConfigError(f"steps: must be at least 1, got {self.steps}")
        if not 1 <= self.ensemble <= MAX_ENSEMBLE:
            raise ConfigError(f"ensemble: must be 1 to {MAX_ENSEMBLE}, got {self.ensemble}")
        if not 0.0 < self.beta_start < 1.0 or not 0.0 < self.beta_end < 1.0:
            raise ConfigError(f"beta_start/beta_end: must lie in (0, 1), got {self.beta_start}, {self.beta_end}")


def preset(name: str) -> NetworkConfig:
    """The network preset called ``name`` (ConfigError for an unknown one)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
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
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        return tuple(_convert(v, item, where) for v in value)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            return value.lower() in ("true", "yes")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
            if number.is_integer():
                return int(number)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, Path)):
            return str(value)
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


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
        raise ConfigError(f"{source}: {exc}") from None
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
    "SAMPLER_NAMES",
    "preset",
    "from_dict",
    "to_dict",
    "load_yaml",
]
