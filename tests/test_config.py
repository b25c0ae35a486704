import pytest
import yaml

from gsad.config import (
    MAX_PARAMETERS,
    PRESETS,
    NetworkConfig,
    SamplerConfig,
    from_dict,
    load_yaml,
    parameter_count,
    preset,
    same_start_betas,
    to_dict,
)
from gsad.errors import ConfigError


def test_from_dict_converts_yaml_text_numbers_and_lists():
    s = from_dict(SamplerConfig, {"beta_start": "1e-4", "steps": "10", "sampler": "ddim"}, "x.yaml")
    assert s.beta_start == 1e-4 and s.steps == 10 and s.sampler == "ddim"
    assert s.ensemble == 1  # files written before the key existed keep one trajectory
    n = from_dict(NetworkConfig, {"channel_mults": [1, 2], "attn_levels": [1], "base_channels": 32})
    assert n.channel_mults == (1, 2) and n.stride == 2
    assert from_dict(NetworkConfig, to_dict(n)) == n


@pytest.mark.parametrize(
    "data, message",
    [
        ({"stpes": 3}, "unknown key"),
        ({"steps": "many"}, "steps: expected an integer"),
        ({"steps": 2.5}, "expected an integer"),
        ({"steps": True}, "expected an integer"),
        ({"steps": 0}, "steps: must be a whole number from 1 to 1000, got 0"),
        ({"steps": 9999}, "steps: must be a whole number from 1 to 1000, got 9999"),
        ({"sampler": "euler"}, "unknown sampler"),
        ({"beta_end": 1.5}, r"beta_end: must be a number in \(0, 1\), got 1.5"),
        ({"beta_start": "nan"}, r"beta_start: must be a number in \(0, 1\), got nan"),
        ({"seed": 99999999999999999999999}, "seed: must be a whole number from 0 to 4294967295, got 9999"),
        ({"seed": -1}, "seed: must be a whole number from 0 to 4294967295, got -1"),
        ({"steps": 400, "beta_start": 2e-3, "beta_end": 0.7},
         r"400 steps of beta 0.002 -> 0.7 drive alpha_bar below 1e-30.*use 1 to 142 steps"),
        ({"ensemble": 0}, "ensemble: must be a whole number from 1 to 8, got 0"),
        ({"ensemble": 9}, "ensemble: must be a whole number from 1 to 8, got 9"),
    ],
)
def test_bad_sampler_values_name_source_and_key(data, message):
    with pytest.raises(ConfigError, match=message) as info:
        from_dict(SamplerConfig, data, "run.yaml")
    assert "run.yaml" in str(info.value)


def test_network_validation_and_presets():
    with pytest.raises(ConfigError, match="norm_groups"):
        NetworkConfig(base_channels=20, norm_groups=32)
    with pytest.raises(ConfigError, match="attention level"):
        NetworkConfig(attn_levels=(7,))
    assert preset("paper").base_channels == 64
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("huge")


def test_load_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such config"):
        load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(bad)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_yaml(top)


@pytest.mark.parametrize(
    "config",
    [
        *PRESETS.values(),
        NetworkConfig(base_channels=32, channel_mults=(1, 2, 2), res_blocks=2, attn_levels=(0, 2),
                      uncertainty_head=False),
        NetworkConfig(base_channels=8, channel_mults=(1, 3, 1, 2), res_blocks=3, attn_levels=(), norm_groups=4),
    ],
)
def test_parameter_count_is_that_of_the_built_network(config):
    import torch

    from gsad.network.unet import UNet, count_parameters

    with torch.device("meta"):
        assert parameter_count(config) == count_parameters(UNet(config))


def test_parameter_budget_is_about_ten_times_the_paper_model():
    assert 10 <= MAX_PARAMETERS / parameter_count(PRESETS["paper"]) < 10.1


_IN = "network: in_channels must be 6 (the low-light image and the noisy image, 3 each),"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"in_channels": 3}, f"{_IN} got 3"),
        ({"in_channels": 12}, f"{_IN} got 12"),
        ({"out_channels": 1}, "network: out_channels must be 3 (the predicted noise of an RGB image), got 1"),
        ({"res_blocks": 512, "channel_mults": [1] * 8, "attn_levels": []},
         "network: res_blocks must be a whole number from 1 to 16, got 512"),
        ({"base_channels": 1024, "channel_mults": [1, 2, 4, 8], "attn_levels": [3]},
         "network: this architecture has "),
        ({"base_channels": 256, "res_blocks": 16}, f"parameters, more than gsad accepts ({MAX_PARAMETERS:,},"),
    ],
    ids=["in-3", "in-12", "out-1", "res-blocks", "wide", "deep"],
)
def test_networks_the_method_cannot_use_are_refused_where_the_config_is_built(tmp_path, fields, message):
    """One rule for YAML, checkpoint metadata and presets: NetworkConfig's own checks, naming the file."""
    with pytest.raises(ConfigError) as info:
        from_dict(NetworkConfig, fields, "net.yaml")
    assert str(info.value).startswith("net.yaml: ") and message in str(info.value)
    from gsad.training.config import load_train_config

    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"network": fields}))
    with pytest.raises(ConfigError) as info:
        load_train_config(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_same_start_betas_start_at_the_first_noise_level(steps):
    """A distilled student's schedule: its own step count, the teacher's first level sqrt(alpha_bar_T)."""
    from gsad.diffusion.schedules import Schedule

    teacher = Schedule.linear(3, 2e-3, 0.85)
    beta_start, beta_end = same_start_betas(3, 2e-3, 0.85, steps)
    assert beta_start == pytest.approx(1 - (1 - 2e-3) * (1 - 0.426) * (1 - 0.85) if steps == 1 else 2e-3)
    student = Schedule.linear(steps, beta_start, beta_end)
    assert student.num_steps == steps
    assert float(student.alpha_bar[-1]) == pytest.approx(float(teacher.alpha_bar[-1]), rel=1e-6)
    assert same_start_betas(3, 2e-3, 0.85, 3) == (2e-3, 0.85)
    assert same_start_betas(2, 0.3, 0.5, 6)[0] == same_start_betas(2, 0.3, 0.5, 6)[1]  # 6 steps of 0.3 go too far
