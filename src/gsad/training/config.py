"""The training configuration (:class:`TrainConfig`), shipped experiment configs, and how
flags, YAML files and defaults combine.

A config comes from three layers, later ones winning: the dataclass defaults (with the
network ``preset``), a YAML file (``--config``: a path, or the bare name of a config
shipped in ``gsad/resources/configs``), then command-line flags. Loading is strict:
unknown keys and values of the wrong type raise :class:`~gsad.errors.ConfigError`.
No torch here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gsad.config import (
    DISTILL_LOSSES,
    LOSS_WEIGHTINGS,
    MAX_STEPS,
    PRECISION_NAMES,
    NetworkConfig,
    SamplerConfig,
    check_int,
    check_real,
    check_seed,
    from_dict,
    load_yaml,
    preset,
    same_start_betas,
    to_dict,
)
from gsad.errors import ConfigError

__all__ = [
    "AMP_MODES",
    "MAX_BATCH_SIZE",
    "MAX_WORKERS",
    "RESUMABLE_KEYS",
    "TRAIN_CHECKS",
    "STAGES",
    "TrainConfig",
    "changed_keys",
    "load_train_config",
    "shipped_config",
    "shipped_configs",
    "student_sampler",
]

#: Training stages: ``uncertainty`` (stage 1), ``gsad`` (stage 2) and ``distill`` (a faster student of a
#: trained model).
STAGES = ("uncertainty", "gsad", "distill")
#: Mixed-precision modes (autocast dtype of the network's forward pass).
AMP_MODES = ("off", *(p for p in PRECISION_NAMES if p != "fp32"))
#: Keys that ``--resume`` may change; any other difference from the run's config is refused
#: because it would change the model, the data order or the optimisation. ``crop`` may change
#: to train a later phase on bigger crops (global context): the items and the order stay the
#: same, each item is cut at the new size.
RESUMABLE_KEYS = frozenset(
    {"max_steps", "checkpoint_every", "log_every", "val_data", "val_every", "val_count", "num_workers", "cache", "crop",
     "device", "keep_states", "out"}
)

#: Largest global batch (a bigger one only fills the memory) and DataLoader worker count.
MAX_BATCH_SIZE = 65536
MAX_WORKERS = 256
_MAX_COUNT = 2**31 - 1


def _whole(low: int, high: int = _MAX_COUNT) -> tuple[type, Callable[[Any, str], Any]]:
    return int, lambda value, name: check_int(value, name, low, high)


def _real(low: float, high: float, open_low: bool = False, open_high: bool = False) -> tuple[type, Callable]:
    return float, lambda value, name: check_real(value, name, low, high, open_low, open_high)


#: The range of each number of :class:`TrainConfig`: field -> (type a flag's text is parsed as,
#: checker ``check(value, name)``, ConfigError naming ``name`` otherwise). The one rule of each
#: option: ``TrainConfig`` applies it to every value (defaults, YAML, flags, a stored
#: ``config.yaml``), and ``gsad train``'s flag types wrap the same checkers.
TRAIN_CHECKS: dict[str, tuple[type, Callable[[Any, str], Any]]] = {
    "max_steps": _whole(1),
    "batch_size": _whole(1, MAX_BATCH_SIZE),
    "crop": _whole(1),
    "min_scale": _real(0.0, 1.0, open_low=True),
    "lr": _real(0.0, 1.0, open_low=True),
    "ema_decay": _real(0.0, 1.0, open_high=True),
    "ema_start": _whole(0),
    "structure_weight": _real(0.0, 1e6),
    "num_clusters": _whole(1),
    "patch_size": _whole(1),
    "warm_start": _real(0.0, 1.0),
    "student_steps": _whole(1, MAX_STEPS),
    "gt_weight": _real(0.0, 1e6),
    "seed": (int, check_seed),  # each rank draws from seed + rank: the torch seed range, as for sampling
    "num_workers": _whole(0, MAX_WORKERS),
    "checkpoint_every": _whole(1),
    "keep_states": _whole(1),
    "log_every": _whole(1),
    "val_every": _whole(1),
    "val_count": _whole(1),  # or None: all pairs
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; stored as ``config.yaml`` in the run directory.

    Data
      ``data``: training folder (a LOL layout or ``low/`` + ``high/``), or with
      ``synthetic`` a folder of normal photos darkened on the fly; ``layout``: ``auto``,
      ``lol-v1``, ``lol-v2-real``, ``lol-v2-synthetic`` or ``pairs``; ``crop``: side of
      the random square crops; ``flip``: random horizontal flips; ``num_workers``:
      DataLoader worker processes; ``ranges``: the degradation preset of ``synthetic``
      training (a name of :data:`gsad.data.synthesize.RANGES`: ``default``, ``broad``, ...);
      ``min_scale``: smallest random downscale of multi-scale crops (1: off; see
      :mod:`gsad.data.datasets`); ``cache``: keep decoded images in memory (same data,
      faster for a few large photos).
    Model
      ``stage``: ``uncertainty`` (stage 1: U-Net with the uncertainty head) or ``gsad``
      (stage 2, starting from the stage-1 model ``init``: a run directory or checkpoint
      file; stage 1 may also start from ``init``, and from a stage-2 model, which has no
      uncertainty head, takes its U-Net and a freshly initialised head); ``uncertainty``
      (stage 2 only): the frozen stage-1 model that gives the uncertainty map, when it is not
      ``init``: with it, ``init`` may be a stage-2 model of the same architecture (a weights-only
      snapshot of an earlier stage-2 run, or the bundled model) whose weights stage 2 continues
      from; ``preset``: network preset of a stage-1 model, with optional ``network`` field
      overrides (stage 2 takes the architecture of ``init``).
    Optimisation
      ``max_steps``, ``batch_size`` (global, split over processes), ``lr`` (Adam, no
      decay), ``ema_decay`` / ``ema_start`` (EMA of the weights, see the loop),
      ``structure_weight`` / ``num_clusters`` / ``patch_size`` (stage-2 structure loss),
      ``loss_weighting`` (per-sample weight of the noise loss: ``eps``, the paper, or
      ``truncated-snr``; see :func:`gsad.losses.objectives.loss_weight`), ``warm_start``
      (fraction in [0, 1] of the samples at the samplers' start levels that are noised from
      the auto-exposed input instead of the target, to match the ``exposure`` sampler start;
      0, the paper, turns it off; see :func:`gsad.losses.objectives.noised_input`),
      ``amp`` (``off``, ``bf16``, ``fp16`` autocast), ``seed``, ``device``.
    Distillation (stage ``distill``)
      ``teacher``: the model to distil (a checkpoint file, run directory, reference ``.pth``, or
      ``default``, the bundled model), frozen; its target for a crop is its own whole sampler
      output with its stored settings. The student starts from ``init`` (a model, as
      ``teacher``), else from a ``network`` mapping (``preset`` with its overrides; fresh weights),
      else as a copy of the teacher, and samples with ``student_steps`` steps and ensemble 1.
      ``distill_loss`` (``l1`` or ``charbonnier``) between the student's output and the teacher's,
      plus ``gt_weight`` times the L1 distance to the ground truth; see
      :func:`gsad.training.distill.distill_objective`. ``sampler`` is the student's: its
      ``steps`` and ``ensemble`` are always ``student_steps`` and 1, and :func:`load_train_config`
      takes the other settings from the teacher's checkpoint where the config does not set them,
      the betas so that the student starts at the teacher's first noise level.
    Output
      ``out``: run directory (default ``runs/<stage>-<date>-<time>``);
      ``checkpoint_every``, ``keep_states`` (resumable states kept; inference checkpoints
      are all kept), ``log_every``.
    Validation
      ``val_data`` (test split of a layout, or ``low/`` + ``high/``), ``val_every``,
      ``val_count`` (first N pairs by name; all when unset), ``sampler``: sampler settings
      for validation, also stored as the checkpoints' defaults.
    """

    data: str | None = None
    layout: str = "auto"
    synthetic: bool = False
    stage: str = "uncertainty"
    init: str | None = None
    uncertainty: str | None = None
    preset: str = "tiny"
    network: dict[str, Any] | None = None
    max_steps: int = 1000
    batch_size: int = 8
    crop: int = 96
    ranges: str = "default"
    min_scale: float = 1.0
    cache: bool = False
    lr: float = 1e-4
    flip: bool = True
    ema_decay: float = 0.9999
    ema_start: int = 0
    structure_weight: float = 1.0
    num_clusters: int = 6
    patch_size: int = 8
    loss_weighting: str = "eps"
    warm_start: float = 0.0
    teacher: str | None = None
    student_steps: int = 1
    distill_loss: str = "l1"
    gt_weight: float = 0.0
    amp: str = "off"
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    out: str | None = None
    checkpoint_every: int = 1000
    keep_states: int = 2
    log_every: int = 50
    val_data: str | None = None
    val_every: int = 1000
    val_count: int | None = None
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage: unknown stage {self.stage!r} (choose from {', '.join(STAGES)})")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ConfigError(
                f"loss_weighting: unknown {self.loss_weighting!r} (choose from {', '.join(LOSS_WEIGHTINGS)})"
            )
        if self.distill_loss not in DISTILL_LOSSES:
            raise ConfigError(
                f"distill_loss: unknown {self.distill_loss!r} (choose from {', '.join(DISTILL_LOSSES)})"
            )
        if self.uncertainty is not None and self.stage != "gsad":
            raise ConfigError(
                f"uncertainty: only stage gsad uses a frozen uncertainty model (this is stage {self.stage})"
            )
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp: unknown mode {self.amp!r} (choose from {', '.join(AMP_MODES)})")
        preset(self.preset)
        if self.network is not None and not isinstance(self.network, dict):
            raise ConfigError(f"network: expected a mapping of NetworkConfig fields, got {self.network!r}")
        self.network_config()  # validates the overrides
        for name, (_, check) in TRAIN_CHECKS.items():
            if getattr(self, name) is not None:
                check(getattr(self, name), name)
        if self.crop % self.patch_size:
            raise ConfigError(f"crop: {self.crop} is not a multiple of patch_size {self.patch_size}")
        from gsad.data.synthesize import named_ranges

        named_ranges(self.ranges)
        if self.stage == "distill":  # the student's sampler: student_steps steps, one trajectory
            student = dataclasses.replace(self.sampler, steps=self.student_steps, ensemble=1)
            object.__setattr__(self, "sampler", student)

    def network_config(self) -> NetworkConfig:
        """The stage-1 architecture: the preset with the ``network`` overrides applied."""
        base = to_dict(preset(self.preset))
        base.update(self.network or {})
        return from_dict(NetworkConfig, base, "network")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for YAML (``config.yaml``) and checkpoint notes."""
        return to_dict(self)


def shipped_configs() -> list[str]:
    """Names of the experiment configs shipped with gsad (``lolv1_gsad``, ...)."""
    folder = resources.files("gsad") / "resources" / "configs"
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def shipped_config(name: str) -> Path:
    """Path of the shipped config ``name`` (ConfigError listing the names otherwise)."""
    path = Path(str(resources.files("gsad") / "resources" / "configs" / f"{name}.yaml"))
    if not path.is_file():
        raise ConfigError(f"{name}: no such config file or shipped config (shipped: {', '.join(shipped_configs())})")
    return path


def _config_path(value: str | Path) -> Path:
    """A ``--config`` value: an existing file, else the bare name of a shipped config."""
    path = Path(value)
    if path.is_file():
        return path
    text = str(value)
    if path.suffix or "/" in text or "\\" in text:
        raise ConfigError(f"{value}: no such config file")
    return shipped_config(text)


def _merge(merged: dict[str, Any], layer: dict[str, Any], where: str) -> dict[str, Any]:
    """``merged`` updated by ``layer`` (``sampler``/``network`` merged key by key), checked strictly."""
    out = dict(merged)
    for key in ("sampler", "network"):
        if isinstance(layer.get(key), dict) and isinstance(out.get(key), dict):
            layer = {**layer, key: {**out[key], **layer[key]}}
    out.update(layer)
    from_dict(TrainConfig, out, where)  # report errors against the layer that caused them
    return out


def load_train_config(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
) -> TrainConfig:
    """Resolve a :class:`TrainConfig`: defaults < YAML ``config_file`` < ``overrides``.

    ``overrides`` are flag values; entries that are None (flags not given) are ignored.
    ``sampler`` and ``network`` mappings are merged key by key. For a fresh stage-``distill`` run
    the sampler keys not set come from the teacher (:func:`student_sampler`).

    With ``resume`` the run directory (``out``) must hold the ``config.yaml`` of an earlier
    run; it replaces the defaults, and only :data:`RESUMABLE_KEYS` may differ from it
    (ConfigError naming the first other key that does).
    """
    layers: list[tuple[dict[str, Any], str]] = []
    if config_file is not None:
        path = _config_path(config_file)
        layers.append((load_yaml(path), str(path)))
    layers.append(({k: v for k, v in (overrides or {}).items() if v is not None}, "options"))
    merged: dict[str, Any] = {}
    for layer, where in layers:
        merged = _merge(merged, layer, where)
    if not resume:
        if merged.get("stage") == "distill" and merged.get("teacher") is not None:
            steps = merged.get("student_steps", TrainConfig.student_steps)
            merged = {**merged, "sampler": student_sampler(merged["teacher"], steps, merged.get("sampler") or {})}
        return from_dict(TrainConfig, merged, "config")

    out = merged.get("out")
    if not out:
        raise ConfigError("--resume needs the run directory to continue: give --out RUN_DIR")
    stored_path = Path(out) / "config.yaml"
    if not stored_path.is_file():
        raise ConfigError(f"{out}: no config.yaml here, so not a gsad training run that can be resumed")
    stored = from_dict(TrainConfig, load_yaml(stored_path), str(stored_path))
    resumed = stored.to_dict()
    for layer, where in layers:
        resumed = _merge(resumed, layer, where)
    config = from_dict(TrainConfig, resumed, "config")
    for key in changed_keys(stored, config):
        if key not in RESUMABLE_KEYS:
            raise ConfigError(
                f"--resume: {key} would change from {getattr(stored, key)!r} (the run's config.yaml) to "
                f"{getattr(config, key)!r}; only {', '.join(sorted(RESUMABLE_KEYS))} may change when resuming"
            )
    return config


def student_sampler(teacher: str, steps: int, given: dict[str, Any]) -> dict[str, Any]:
    """The sampler settings of a fresh distill run's student of ``steps`` steps: those stored in
    ``teacher`` (a model name, see :func:`gsad.checkpoints.model_path`), with betas that start at the
    teacher's first noise level (:func:`gsad.config.same_start_betas`) unless a beta is ``given``, and
    the keys ``given`` (YAML, flags) over them; TrainConfig sets steps and ensemble (``steps``, 1).
    Loads the teacher (torch), so a missing or broken one is a CheckpointError here, before any
    data is read."""
    for key, instead in (("steps", "student_steps (--student-steps)"), ("ensemble", "1")):
        if key in given:
            raise ConfigError(f"sampler: {key} of stage distill is {instead}; leave sampler {key} unset")
    from gsad.checkpoints import load_checkpoint, model_path

    _, stored, _ = load_checkpoint(model_path(teacher))
    settings = to_dict(stored)
    if "beta_start" not in given and "beta_end" not in given:
        betas = same_start_betas(stored.steps, stored.beta_start, stored.beta_end, steps)
        settings.update(zip(("beta_start", "beta_end"), betas))
    return {**settings, **given}


def changed_keys(old: TrainConfig, new: TrainConfig) -> list[str]:
    """Fields whose values differ between two configs."""
    return [f.name for f in dataclasses.fields(TrainConfig) if getattr(old, f.name) != getattr(new, f.name)]
