"""The eps network as ONNX: dynamic shapes, batches at several levels, self-describing metadata."""

import json

import numpy as np
import pytest
import torch

from gsad.checkpoints import load_checkpoint
from gsad.config import SamplerConfig
from gsad.errors import DependencyError
from gsad.network import onnx_export
from gsad.network.onnx_export import FORMAT, EpsNetwork, export_onnx, metadata, read_props

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
