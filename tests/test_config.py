import pytest

from gsad.config import NetworkConfig, SamplerConfig, from_dict, load_yaml, preset, to_dict
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
