import json

import numpy as np
import pytest
import torch

from gsad.checkpoints import (
    from_reference_state_dict,
    infer_reference_config,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    to_reference_state_dict,
)
from gsad.config import PRESETS, NetworkConfig, SamplerConfig
from gsad.errors import CheckpointError
from gsad.network import UNet


def test_reference_checkpoint_loads_with_inferred_architecture(reference_dir):
    meta = json.loads((reference_dir / "meta.json").read_text())["unet"]
    model, sampler, info = load_checkpoint(reference_dir / "gen.pth")
    c = model.config
    assert c.base_channels == meta["inner_channel"]
    assert list(c.channel_mults) == meta["channel_mults"]
    assert c.res_blocks == meta["res_blocks"]
    assert c.attn_levels == (1,)  # 16 px on a 32 px image_size: the second level
    assert c.uncertainty_head and info["gsad.source"] == "reference"
    assert sampler == SamplerConfig()


def test_unet_reproduces_reference_outputs(reference_dir):
    model, _, _ = load_checkpoint(reference_dir / "gen.pth")
    io = torch.load(reference_dir / "unet_io.pt", weights_only=True)
    with torch.no_grad():
        eps, unc = model(io["unet_input"], io["noise_level"])
    assert (eps - io["eps"]).abs().max() < 1e-4
    assert (unc - io["uncertainty"]).abs().max() < 1e-4


def test_module_prefix_and_bare_state_dicts(reference_dir, tmp_path):
    state = torch.load(reference_dir / "gen.pth", weights_only=True)
    wrapped = {f"module.{k}": v for k, v in state.items()}
    torch.save(wrapped, tmp_path / "dp.pth")
    bare = {k[len("denoise_fn."):]: v for k, v in state.items() if k.startswith("denoise_fn.")}
    torch.save(bare, tmp_path / "bare.pth")
    ref, _, _ = load_checkpoint(reference_dir / "gen.pth")
    for name in ("dp.pth", "bare.pth"):
        other, _, _ = load_checkpoint(tmp_path / name)
        for (k, a), (_, b) in zip(ref.state_dict().items(), other.state_dict().items()):
            assert torch.equal(a, b), k


@pytest.mark.parametrize(
    "config",
    [PRESETS["paper"], NetworkConfig(base_channels=32, channel_mults=(1, 2, 2), res_blocks=2, attn_levels=(0, 2))],
    ids=["paper", "three-levels"],
)
def test_reference_export_round_trip(config):
    torch.manual_seed(0)
    model = UNet(config)
    ref = to_reference_state_dict(model)
    assert infer_reference_config({k[len("denoise_fn."):]: v for k, v in ref.items()}) == config
    back = from_reference_state_dict(ref)
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k


def test_safetensors_round_trip_keeps_architecture_and_sampler(tmp_path):
    torch.manual_seed(1)
    model = UNet(PRESETS["tiny"])
    sampler = SamplerConfig(sampler="ddim", steps=7, beta_start=1e-3, beta_end=0.5, seed=11)
    path = save_checkpoint(tmp_path / "m.safetensors", model, sampler, {"trained": "briefly"})
    loaded, s, meta = load_checkpoint(path)
    assert loaded.config == model.config and s == sampler
    assert meta["gsad.trained"] == "briefly"
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, torch.tensor([0.4]))[0], loaded(x, torch.tensor([0.4]))[0])
    assert read_metadata(path)["gsad.format"] == "1"
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_convert_cli_matches_reference_outputs(reference_dir, tmp_path):
    from gsad.cli import main

    out = tmp_path / "gen.safetensors"
    assert main(["convert", str(reference_dir / "gen.pth"), str(out), "--steps", "10"]) == 0
    model, sampler, _ = load_checkpoint(out)
    assert sampler.steps == 10
    io = torch.load(reference_dir / "unet_io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["unet_input"], io["noise_level"])[0] - io["eps"]).abs().max() < 1e-4
    assert main(["convert", str(reference_dir / "gen.pth"), str(out)]) == 1  # exists


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"this is not a checkpoint at all", "not a PyTorch checkpoint"),
        (np.arange(100, dtype=np.uint8).tobytes(), "not a"),
    ],
)
def test_garbage_checkpoints_raise_checkpoint_error(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickled_objects_are_refused_without_advice_to_unpickle(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "opt": SamplerConfig()}, path)  # a non-tensor object
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: a PyTorch file that holds more than a state dict of tensors")
    assert "weights_only" not in message and "arbitrary code" not in message


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no U-Net weights"):
        load_checkpoint(tmp_path / "other.pth")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without gsad metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not a gsad run directory"):
        load_checkpoint(tmp_path)


def test_truncated_safetensors(tmp_path):
    model = UNet(PRESETS["tiny"])
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_run_directory_latest_pointer(tmp_path):
    model = UNet(PRESETS["tiny"])
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(tmp_path / "checkpoints" / "step_0000002.safetensors", model)
    (tmp_path / "latest").write_text("checkpoints/step_0000002.safetensors\n")
    loaded, _, _ = load_checkpoint(tmp_path)
    assert loaded.config == model.config
    (tmp_path / "latest").write_text("checkpoints/step_0000009.safetensors\n")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path)
