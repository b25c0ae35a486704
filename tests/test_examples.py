"""examples/onnx_enhance.py: onnxruntime and numpy alone reproduce ``gsad enhance --detail 0``."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gsad.cli import main
from gsad.enhance.enhancer import Enhancer

pytest.importorskip("onnxruntime")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_enhance.py"


def _example():
    spec = importlib.util.spec_from_file_location("onnx_enhance", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_noise(seed):
    """gsad's noise: view k draws from a CPU generator seeded ``seed + k``, in the sampler's order."""
    def for_view(k):
        generator = torch.Generator().manual_seed(seed + k)
        return lambda shape: torch.randn(shape, generator=generator).numpy()
    return for_view


@pytest.fixture()
def exported(busy_tiny_checkpoint, tmp_path):
    path = tmp_path / "m.onnx"
    assert main(["export", str(busy_tiny_checkpoint), str(path)]) == 0
    return path


@pytest.mark.parametrize("start", ["soft-exposure", "exposure", "noise"])
def test_the_example_reproduces_gsad_with_the_same_noise(busy_tiny_checkpoint, exported, tmp_path, start):
    import onnxruntime

    rng = np.random.default_rng(5)
    image = (rng.random((21, 30, 3)) * 40 + np.linspace(0, 30, 30)[None, :, None]).astype(np.uint8)  # dark, odd size
    if start != "soft-exposure":
        assert main(["export", str(busy_tiny_checkpoint), str(exported), "--start", start, "--overwrite"]) == 0
    enhancer = Enhancer(busy_tiny_checkpoint, precision="fp32", engine="torch")
    expected = enhancer.enhance(image, start=start, detail=0.0).astype(int)
    session = onnxruntime.InferenceSession(str(exported))
    got = _example().enhance(session, image, noise=_torch_noise(enhancer.sampler.seed)).astype(int)
    assert got.shape == expected.shape
    assert np.abs(got - expected).mean() <= 1.0 and np.abs(got - expected).max() <= 2
    assert np.abs(got - image).mean() > 5  # the model changed the image


def test_the_example_runs_as_a_script_on_a_photo(exported, tmp_path, dark_image):
    Image.fromarray(dark_image).save(tmp_path / "dark.png")
    result = subprocess.run([sys.executable, str(EXAMPLE), str(exported), str(tmp_path / "dark.png"),
                             str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (dark_image.shape[1], dark_image.shape[0]) and out.mode == "RGB"
