"""The CLI's option lists come from the config dataclasses: no setting is dropped on the way."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from gsad.cli import build_parser, sampler_overrides
from gsad.config import SAMPLER_FIELDS, SamplerConfig
from gsad.training import TrainConfig

#: A value other than the default for every sampler option, as flag text and as parsed.
SAMPLER_VALUES = {"sampler": ("ddim", "ddim"), "steps": ("7", 7), "beta_start": ("1e-3", 1e-3),
                  "beta_end": ("0.8", 0.8), "seed": ("11", 11), "start": ("exposure", "exposure"),
                  "ensemble": ("3", 3)}


def _subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def test_sampler_fields_are_the_config_fields_and_all_covered_here():
    assert SAMPLER_FIELDS == tuple(f.name for f in dataclasses.fields(SamplerConfig))
    assert set(SAMPLER_VALUES) == set(SAMPLER_FIELDS)  # a new option needs a value here too
    assert all(getattr(SamplerConfig(), k) != v for k, (_, v) in SAMPLER_VALUES.items())


@pytest.mark.parametrize("command, fixed", [
    ("enhance", ["in.png", "-o", "out.png"]),
    ("evaluate", ["--data", "d", "--checkpoint", "c"]),
    ("convert", ["in.pth", "out.safetensors"]),
])
def test_every_sampler_option_reaches_the_settings(command, fixed):
    argv = list(fixed)
    for name, (text, _) in SAMPLER_VALUES.items():
        argv += ["--" + name.replace("_", "-"), text]
    overrides = sampler_overrides(_subparser(command).parse_args(argv))
    assert overrides == {k: v for k, (_, v) in SAMPLER_VALUES.items()}
    assert SamplerConfig(**overrides) == SamplerConfig(*(v for _, v in SAMPLER_VALUES.values()))


def test_every_training_setting_has_a_flag():
    args = _subparser("train").parse_args([])
    missing = [f.name for f in dataclasses.fields(TrainConfig)
               if f.name not in ("network", "sampler") and not hasattr(args, f.name)]
    assert not missing
