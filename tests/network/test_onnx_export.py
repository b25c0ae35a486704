"""The eps network as ONNX: dynamic shapes, batches at several levels, self-describing metadata."""

import json

import numpy as np
import pytest
import torch

from gsad.checkpoints import load_checkpoint
from gsad.config import SamplerConfig
from gsad.errors import DependencyError
from gsad.network import onnx_export
from gsad.network.onnx_export import (
    FORMAT,
    GROUP_NORMS,
    EpsNetwork,
    export_onnx,
    group_norm_from_channel_stats,
    metadata,
    read_props,
)

ort = pytest.importorskip("onnxruntime")


@pytest.fixture()
def exported(busy_tiny_checkpoint, tmp_path):
    model, sampler, _ = load_checkpoint(busy_tiny_checkpoint)
    path = export_onnx(model, tmp_path / "m.onnx", metadata(model.config, sampler, {"extra": "yes"}))
    return model, sampler, path


@pytest.mark.parametrize(("batch", "height", "width"), [(1, 16, 16), (2, 24, 40), (3, 40, 24)])
def test_onnx_runtime_reproduces_torch_for_any_size_and_batch(exported, batch, height, width):
    model, _, path = exported
    x = torch.rand(batch, 6, height, width, generator=torch.Generator().manual_seed(batch)) * 2 - 1
    level = torch.linspace(0.2, 0.95, batch)
    with torch.no_grad():
        expected = EpsNetwork(model)(x, level).numpy()
    got = ort.InferenceSession(str(path)).run(None, {"x": x.numpy(), "level": level.numpy()})[0]
    assert got.shape == (batch, 3, height, width)
    assert np.abs(expected).mean() > 1e-2  # a network that does something
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize(("groups", "channels", "offset"), [(1, 4, 0.0), (2, 8, 3.0), (4, 8, -20.0)])
def test_group_norm_from_channel_stats_is_torch_s_group_norm(groups, channels, offset):
    generator = torch.Generator().manual_seed(groups)
    # channels of different means and spreads, so that a group's statistics are not any one channel's
    x = torch.randn(2, channels, 5, 7, generator=generator) * torch.linspace(0.5, 3, channels).reshape(1, -1, 1, 1)
    x = x + offset + torch.arange(channels, dtype=torch.float32).reshape(1, -1, 1, 1)
    weight, bias = torch.randn(channels, generator=generator), torch.randn(channels, generator=generator)
    expected = torch.nn.functional.group_norm(x, groups, weight, bias, 1e-5)
    assert (group_norm_from_channel_stats(x, groups, weight, bias, 1e-5) - expected).abs().max() < 1e-4
    plain = torch.nn.functional.group_norm(x, groups)
    assert (group_norm_from_channel_stats(x, groups) - plain).abs().max() < 1e-4


def test_the_channel_stats_graph_reshapes_no_activations_and_matches_torch(busy_tiny_checkpoint, tmp_path):
    onnx = pytest.importorskip("onnx")
    model, sampler, _ = load_checkpoint(busy_tiny_checkpoint)
    paths = {form: export_onnx(model, tmp_path / f"{form}.onnx", group_norm=form) for form in GROUP_NORMS}
    ops = {form: [node.op_type for node in onnx.load(str(path)).graph.node] for form, path in paths.items()}
    assert "InstanceNormalization" in ops["standard"] and "InstanceNormalization" not in ops["channel-stats"]
    x = torch.rand(2, 6, 24, 40, generator=torch.Generator().manual_seed(5)) * 2 - 1
    level = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        expected = EpsNetwork(model)(x, level).numpy()
    got = ort.InferenceSession(str(paths["channel-stats"])).run(None, {"x": x.numpy(), "level": level.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
    # the export swaps GroupNorm only while it traces
    assert torch.nn.functional.group_norm is not group_norm_from_channel_stats
    with pytest.raises(ValueError, match="group_norm is one of standard, channel-stats, not 'fused'"):
        export_onnx(model, tmp_path / "bad.onnx", group_norm="fused")


def test_metadata_describes_the_network_and_the_sampler(exported):
    model, sampler, path = exported
    props = read_props(path)
    assert props["gsad.format"] == FORMAT and props["extra"] == "yes"
    assert json.loads(props["gsad.network"])["base_channels"] == model.config.base_channels
    assert SamplerConfig(**json.loads(props["gsad.sampler"])) == sampler
    assert int(props["gsad.stride"]) == model.config.stride
    meta = ort.InferenceSession(str(path)).get_modelmeta().custom_metadata_map
    assert meta["gsad.stride"] == props["gsad.stride"]


def test_without_onnx_one_line_names_the_extra(monkeypatch, busy_tiny_checkpoint, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx":
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    model, _, _ = load_checkpoint(busy_tiny_checkpoint)
    with pytest.raises(DependencyError, match=r'pip install "gsad\[export\]"'):
        onnx_export.export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
