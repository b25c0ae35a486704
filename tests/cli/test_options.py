"""The CLI's option lists come from the config dataclasses: no setting is dropped on the way."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from gsad.cli import build_parser
from gsad.cli.options import sampler_overrides
from gsad.config import SAMPLER_FIELDS, SamplerConfig
from gsad.training import TrainConfig

#: A value other than the default for every sampler option, as flag text and as parsed.
SAMPLER_VALUES = {"sampler": ("ddim", "ddim"), "steps": ("7", 7), "beta_start": ("1e-3", 1e-3),
                  "beta_end": ("0.8", 0.8), "seed": ("11", 11), "start": ("exposure", "exposure"),
                  "ensemble": ("3", 3), "detail": ("0.5", 0.5)}


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


def _choices(command: str, flag: str) -> tuple:
    action = next(a for a in _subparser(command)._actions if flag in a.option_strings)
    return tuple(action.choices)


def test_choice_lists_come_from_their_one_source():
    from gsad.config import PRECISION_CHOICES, PRESETS, SAMPLER_NAMES, START_NAMES
    from gsad.data.layouts import LAYOUTS, SPLITS
    from gsad.data.synthesize import RANGES
    from gsad.evaluation.evaluate import PIPELINES
    from gsad.training.config import AMP_MODES, STAGES

    for command in ("evaluate", "train", "tune-schedule"):
        assert _choices(command, "--layout") == ("auto", *LAYOUTS)
    for command in ("evaluate", "tune-schedule"):
        assert _choices(command, "--split") == SPLITS
    for command in ("synthesize", "train"):
        assert _choices(command, "--ranges") == tuple(RANGES)
    for command in ("enhance", "evaluate"):
        assert _choices(command, "--precision") == PRECISION_CHOICES
    for command in ("enhance", "evaluate", "convert", "train", "tune-schedule"):
        assert _choices(command, "--sampler") == SAMPLER_NAMES
    assert _choices("train", "--sampler-start") == _choices("enhance", "--start") == START_NAMES
    assert _choices("evaluate", "--pipeline") == ("auto", *PIPELINES)
    assert _choices("train", "--preset") == tuple(PRESETS)
    assert _choices("train", "--stage") == STAGES
    assert _choices("train", "--amp") == AMP_MODES == ("off", "bf16", "fp16")


def test_precision_names_without_torch_match_the_dtype_table():
    import torch

    from gsad.config import PRECISION_NAMES
    from gsad.network.inference_net import PRECISIONS

    assert tuple(PRECISIONS) == PRECISION_NAMES
    assert PRECISIONS == {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def test_range_names_without_numpy_match_the_degradation_presets():
    from gsad.config import RANGE_NAMES
    from gsad.data.synthesize import RANGES

    assert tuple(RANGES) == RANGE_NAMES


def test_train_sampler_flags_are_the_shared_ones_with_a_prefix_and_old_spellings_still_work():
    argv = []
    for name, (text, _) in SAMPLER_VALUES.items():
        argv += ["--sampler" if name == "sampler" else "--sampler-" + name.replace("_", "-"), text]
    args = _subparser("train").parse_args(argv)
    assert sampler_overrides(args, prefix="sampler-") == {k: v for k, (_, v) in SAMPLER_VALUES.items()}
    # the same checks as the shared flags (one table)
    for flag in ("--sampler-ensemble", "--ensemble"):
        command = "train" if flag.startswith("--sampler") else "enhance"
        fixed = [] if command == "train" else ["in.png", "-o", "out.png"]
        with pytest.raises(SystemExit):
            _subparser(command).parse_args([*fixed, flag, "9"])
    # benchmarks/default_model/train_v2.sh still passes --beta-start/--beta-end to gsad train
    old = _subparser("train").parse_args(["--beta-start", "2e-3", "--beta-end", "0.7", "--sampler-steps", "3"])
    assert sampler_overrides(old, prefix="sampler-") == {**dict.fromkeys(SAMPLER_FIELDS), "beta_start": 2e-3,
                                                          "beta_end": 0.7, "steps": 3}


def test_an_error_line_is_one_write(monkeypatch):
    """Several torchrun ranks share one stderr: a line written in pieces could be split by another's."""
    import io

    from gsad.cli.options import print_error

    writes = []

    class Recorder(io.StringIO):
        def write(self, text):
            writes.append(text)
            return len(text)

    monkeypatch.setattr("sys.stderr", Recorder())
    print_error("x.png: unreadable")
    assert writes == ["gsad: error: x.png: unreadable\n"]


def test_model_names_the_bundled_model_default_and_keeps_paths(tmp_path):
    from gsad.checkpoints import default_checkpoint
    from gsad.cli.options import model

    assert model(None) is None
    assert model("default") == str(default_checkpoint())
    assert model(str(tmp_path / "mine.safetensors")) == str(tmp_path / "mine.safetensors")
    assert model("default.safetensors") == "default.safetensors"  # only the bare name is the bundled model
