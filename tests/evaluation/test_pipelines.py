"""`gsad evaluate --checkpoint`: the reference and enhance pipelines, the noise stream, --outputs."""

import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

import gsad.diffusion.samplers as samplers
from gsad.cli import main
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError
from gsad.evaluation.evaluate import REFERENCE_BORDERS, default_pipeline, model_predictor
from gsad.imaging.io import read_image
from gsad.imaging.tensors import from_model, to_model


def _lol_v1(root, images):
    """A LOL-v1 test split (eval15/{low,high}) holding ``images`` (name -> low uint8)."""
    for side in ("low", "high"):
        (root / "eval15" / side).mkdir(parents=True)
    for name, low in images.items():
        Image.fromarray(low).save(root / "eval15" / "low" / f"{name}.png")
        high = np.clip(low.astype(int) * 4, 0, 255).astype(np.uint8)
        Image.fromarray(high).save(root / "eval15" / "high" / f"{name}.png")
    return root


def _two_images(dark_image):
    return {"1": dark_image, "2": np.ascontiguousarray(dark_image[::-1, ::-1])}


def test_reference_borders_by_layout():
    assert REFERENCE_BORDERS["lol-v1"] == REFERENCE_BORDERS["lol-v2-real"] == (8, 8, 4, 4)
    assert REFERENCE_BORDERS["lol-v2-synthetic"] is None and REFERENCE_BORDERS["pairs"] is None
    assert [default_pipeline(k) for k in REFERENCE_BORDERS] == ["reference", "reference", "reference", "enhance"]


@pytest.mark.parametrize("layout, pad", [("lol-v1", (16, 8)), ("lol-v2-real", (16, 8)), ("lol-v2-synthetic", (0, 0))])
def test_reference_pipeline_draws_one_stream_in_order(tiny_checkpoint, dark_image, monkeypatch, layout, pad):
    """Each image draws `steps` normals of its padded shape (one for x_T, one per step but the last),
    all from one generator, image after image: the order the reference draws them in. With
    `cuda_noise` the same calls go to a CUDA generator (checked on a GPU by the test below only)."""
    enh = Enhancer(tiny_checkpoint, device="cpu")
    settings = enh.settings(sampler="reference", steps=3, start="noise", ensemble=1, seed=5)
    predict = model_predictor(enh, settings, "reference", layout)
    draws = []
    real = samplers.randn

    def record(shape, generator, device):
        draws.append((tuple(shape), generator, generator.device.type))
        return real(shape, generator, device)

    monkeypatch.setattr(samplers, "randn", record)
    for low in _two_images(dark_image).values():
        predict("x", low)
    h, w = dark_image.shape[:2]
    assert [d[0] for d in draws] == [(1, 3, h + pad[0], w + pad[1])] * 6  # 20 x 28: on the stride already
    assert len({id(d[1]) for d in draws}) == 1 and {d[2] for d in draws} == {"cpu"}


def test_second_image_continues_the_first_ones_noise(tiny_checkpoint, dark_image):
    """Independent check of the stream: the second image's output equals the one made from a fresh
    generator advanced by exactly the first image's draws, and differs from a fresh seed's."""
    enh = Enhancer(tiny_checkpoint, device="cpu")
    settings = enh.settings(sampler="reference", steps=3, start="noise", ensemble=1, seed=5)
    first, second = _two_images(dark_image).values()
    predict = model_predictor(enh, settings, "reference", "lol-v1")
    predict("1", first)
    out2 = predict("2", second)

    h, w = dark_image.shape[:2]
    advanced = torch.Generator().manual_seed(5)
    for _ in range(settings.steps):
        torch.randn((1, 3, h + 16, w + 8), generator=advanced)
    expected = enh.enhance_tensor(to_model(second), settings, generator=advanced, border=(8, 8, 4, 4))
    assert np.array_equal(out2, from_model(expected))
    fresh = model_predictor(enh, settings, "reference", "lol-v1")("2", second)
    assert not np.array_equal(out2, fresh)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_noise_is_the_reference_cuda_stream(tiny_checkpoint, dark_image, monkeypatch):
    """On a GPU: the noise equals what the reference draws after torch.manual_seed(seed):
    torch.randn(shape, device=cuda), then torch.randn_like(x) per step but the last, per image."""
    enh = Enhancer(tiny_checkpoint, device="cuda")
    settings = enh.settings(sampler="reference", steps=3, start="noise", ensemble=1, seed=5)
    predict = model_predictor(enh, settings, "reference", "lol-v1", cuda_noise=True)
    drawn = []
    real = samplers.randn
    monkeypatch.setattr(samplers, "randn", lambda *a: drawn.append(real(*a)) or drawn[-1])
    for low in _two_images(dark_image).values():
        predict("x", low)
    torch.manual_seed(5)
    shape = drawn[0].shape
    expected = [torch.randn(shape, device="cuda") for _ in drawn]
    assert all(torch.equal(a, b) for a, b in zip(drawn, expected))


def test_cuda_noise_needs_cuda_and_the_reference_pipeline(tiny_checkpoint):
    enh = Enhancer(tiny_checkpoint, device="cpu")
    with pytest.raises(ConfigError, match="cuda-noise: needs a CUDA device"):
        model_predictor(enh, enh.settings(), "reference", "lol-v1", cuda_noise=True)
    with pytest.raises(ConfigError, match="only the reference pipeline"):
        model_predictor(enh, enh.settings(), "enhance", "lol-v1", cuda_noise=True)
    with pytest.raises(ConfigError, match="unknown pipeline"):
        model_predictor(enh, enh.settings(), "fast", "lol-v1")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_evaluate_outputs_reference_default_and_no_overwrite(tmp_path, tiny_checkpoint, dark_image, capsys):
    data = _lol_v1(tmp_path / "lol", _two_images(dark_image))
    out = tmp_path / "out"
    base = ["evaluate", "--data", str(data), "--checkpoint", str(tiny_checkpoint), "--device", "cpu",
            "--sampler", "reference", "--steps", "2", "--start", "noise", "--ensemble", "1", "--seed", "9"]
    assert main([*base, "--outputs", str(out)]) == 0
    assert "reference pipeline, lol-v1 layout" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["1.png", "2.png"]  # named as the inputs, no temp files
    enh = Enhancer(tiny_checkpoint, device="cpu")
    settings = enh.settings(sampler="reference", steps=2, start="noise", ensemble=1, seed=9)
    predict = model_predictor(enh, settings, "reference", "lol-v1")
    for name, low in _two_images(dark_image).items():  # raw outputs, before GT-mean scaling
        assert np.array_equal(read_image(out / f"{name}.png"), predict(name, low))

    before = {p.name: _sha(p) for p in out.iterdir()}
    assert main([*base, "--outputs", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("gsad: error: ") and "output exists (use --overwrite" in err
    assert {p.name: _sha(p) for p in out.iterdir()} == before
    assert main([*base, "--outputs", str(out), "--overwrite", "--seed", "10"]) == 0
    assert {p.name: _sha(p) for p in out.iterdir()} != before

    assert main(["evaluate", "--data", str(data), "--predictions", str(out), "--outputs", str(tmp_path / "o")]) == 1
    assert "only with --checkpoint" in capsys.readouterr().err


def test_enhance_pipeline_is_gsad_enhance_per_image(tmp_path, tiny_checkpoint, dark_image):
    """--pipeline enhance: every image as `gsad enhance` makes it alone (per-image seed)."""
    data = _lol_v1(tmp_path / "lol", _two_images(dark_image))
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(data), "--checkpoint", str(tiny_checkpoint), "--device", "cpu",
                 "--pipeline", "enhance", "--outputs", str(out)]) == 0
    enh = Enhancer(tiny_checkpoint, device="cpu")
    for name, low in _two_images(dark_image).items():
        assert np.array_equal(read_image(out / f"{name}.png"), enh.enhance(low))
