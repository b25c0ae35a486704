"""TrainConfig's ranges: one checker per option (training/config.py's TRAIN_CHECKS), applied alike to
YAML values, flags and configs built in code (issue 24, case 6)."""

from __future__ import annotations

import dataclasses
import re
import typing

import pytest

from gsad.cli import build_parser, main
from gsad.errors import ConfigError
from gsad.training import TrainConfig, load_train_config
from gsad.training.config import TRAIN_CHECKS

#: Out-of-range values of every checked option, as YAML text (the issue's first).
BAD_VALUES = [
    ("lr", ".inf"), ("lr", "5"), ("lr", "0"), ("lr", "-1e-4"), ("lr", ".nan"),
    ("structure_weight", ".nan"), ("structure_weight", "-1"), ("structure_weight", "1.0e9"),
    ("num_workers", "100000"), ("num_workers", "-1"),
    ("batch_size", "1.0e9"), ("batch_size", "0"),
    ("max_steps", "0"), ("max_steps", "4294967296"), ("crop", "0"), ("min_scale", "0"), ("min_scale", "1.5"),
    ("ema_decay", "1"), ("ema_decay", "-0.1"), ("ema_decay", ".inf"), ("ema_start", "-1"),
    ("num_clusters", "0"), ("patch_size", "0"), ("warm_start", "2"), ("warm_start", ".nan"),
    ("student_steps", "0"), ("student_steps", "1001"), ("gt_weight", "-1"), ("gt_weight", ".inf"),
    ("seed", "-1"), ("seed", "4294967296"), ("checkpoint_every", "0"), ("keep_states", "0"), ("log_every", "0"),
    ("val_every", "0"), ("val_count", "0"),
]


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_every_number_of_a_train_config_has_one_checker():
    hints = typing.get_type_hints(TrainConfig)
    numbers = {f.name for f in dataclasses.fields(TrainConfig)
               if hints[f.name] in (int, float, int | None, float | None)}
    assert set(TRAIN_CHECKS) == numbers
    assert {name for name, _ in BAD_VALUES} == numbers  # every checker is tried below


@pytest.mark.parametrize(("name", "text"), BAD_VALUES)
def test_yaml_and_flag_refuse_the_same_values(name, text, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(f"{name}: {text}\n")
    with pytest.raises(ConfigError, match=rf"c\.yaml: {name}: must be a") as raised:
        load_train_config(path)
    reason = str(raised.value).split(f"{name}: ", 1)[1].rsplit(", got", 1)[0]  # "must be a number in (0, 1]"

    flag_text = {".inf": "inf", ".nan": "nan"}.get(text, text)
    if TRAIN_CHECKS[name][0] is int and not flag_text.lstrip("-").isdigit():
        flag_text = str(int(float(flag_text)))  # the flag takes the whole number YAML reads from 1.0e9
    assert main(["train", f"{_flag(name)}={flag_text}"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"argument {_flag(name)}: {reason}" in err, err

    with pytest.raises(ConfigError, match=re.escape(f"{name}: {reason}")):  # and a config built in code
        TrainConfig(**{name: float(flag_text) if TRAIN_CHECKS[name][0] is float else int(flag_text)})


def test_values_in_range_pass_both(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1\nstructure_weight: 0\nnum_workers: 256\nbatch_size: 1.6e1\nema_decay: 0\nmin_scale: 1\n")
    config = load_train_config(path)
    assert (config.lr, config.structure_weight, config.num_workers, config.batch_size) == (1.0, 0.0, 256, 16)
    args = build_parser("train").parse_args(["train", "--lr", "1", "--num-workers", "256", "--min-scale", "1"])
    assert (args.lr, args.num_workers, args.min_scale) == (1.0, 256, 1.0)


def test_a_bad_network_section_is_named_once(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("network:\n  in_channels: 3\n")
    with pytest.raises(ConfigError) as raised:
        load_train_config(path).network_config()
    assert str(raised.value).count("network:") == 1, raised.value
    assert "in_channels must be 6" in str(raised.value)
