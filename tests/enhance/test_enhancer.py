import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from gsad.config import SamplerConfig
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError
from gsad.imaging.geometry import grid_symmetry
from gsad.imaging.io import read_image


def _reference_run(reference_dir, precision):
    enh = Enhancer.from_checkpoint(reference_dir / "gen.pth", device="cpu", precision=precision)
    out = enh.enhance(read_image(reference_dir / "low.png"), sampler="reference", steps=20,
                      beta_start=6e-4, beta_end=0.88, seed=4088)
    expected = np.load(reference_dir / "expected_rgb01.npy")  # the reference's float output in [0, 1]
    assert out.shape == expected.shape
    return out, expected


def test_reference_sampler_reproduces_reference_output(reference_dir):
    out, expected = _reference_run(reference_dir, "fp32")  # the bit-level path
    # As 8-bit images: at most 1 level apart anywhere, 0.05 levels on average (measured: 2 of
    # the 9,216 values differ, by 1 level, from float rounding on the way).
    diff = np.abs(out.astype(np.float64) - np.round(expected * 255.0))
    assert diff.max() <= 1 and diff.mean() <= 0.05
    # Against the float values: only our rounding to 8 bits (0.5 level) plus float error.
    assert np.abs(out / 255.0 - expected).max() * 255 <= 0.51


def test_default_precision_stays_within_its_tolerance_of_the_reference(reference_dir):
    # precision="auto" (the default) may take bf16 where the CPU has it: its promise is a mean
    # difference of at most 1 level of 255 (gsad.runtime.fastpath), not bit-level agreement.
    out, expected = _reference_run(reference_dir, "auto")
    assert np.abs(out.astype(np.float64) - np.round(expected * 255.0)).mean() <= 1.0


def test_same_kind_and_size_out(tiny_checkpoint, dark_image):
    enh = Enhancer(tiny_checkpoint, device="cpu")
    out = enh.enhance(dark_image)  # 20 x 28: padded to the stride 4 and cropped back
    assert isinstance(out, np.ndarray) and out.shape == dark_image.shape and out.dtype == np.uint8
    pil = enh.enhance(Image.fromarray(dark_image))
    assert isinstance(pil, Image.Image) and pil.size == (28, 20)
    assert np.array_equal(np.asarray(pil), out)  # same seed, same output


def test_seed_and_sampler_overrides(tiny_checkpoint, dark_image):
    enh = Enhancer(tiny_checkpoint, device="cpu")
    a = enh.enhance(dark_image, seed=1)
    b = enh.enhance(dark_image, seed=2)
    c = enh.enhance(dark_image, sampler="ddim", seed=1)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="steps"):
        enh.enhance(dark_image, steps=0)
    with pytest.raises(ConfigError, match="sampler"):
        enh.enhance(dark_image, sampler="euler")


def test_settings_travel_as_one_object_or_as_keywords(tiny_checkpoint, dark_image):
    enh = Enhancer(tiny_checkpoint, device="cpu")
    settings = SamplerConfig(sampler="ddim", steps=3, beta_start=1e-3, beta_end=0.8, seed=5, start="exposure",
                             ensemble=2)
    as_object = enh.enhance(dark_image, settings)
    as_keywords = enh.enhance(dark_image, **dataclasses.asdict(settings))
    assert np.array_equal(as_object, as_keywords)
    assert not np.array_equal(as_object, enh.enhance(dark_image))  # not the checkpoint's defaults
    # keywords override single options of the object; unset ones keep its values
    assert np.array_equal(enh.enhance(dark_image, settings, seed=6),
                          enh.enhance(dark_image, dataclasses.replace(settings, seed=6)))
    assert enh.settings(settings, steps=4) == dataclasses.replace(settings, steps=4)
    with pytest.raises(TypeError, match="SamplerConfig"):
        enh.enhance(dark_image, "ddim")


def test_exposure_start_uses_the_whole_image_auto_exposure(tiny_checkpoint, dark_image, monkeypatch):
    from gsad.enhance import trajectories
    from gsad.imaging.exposure import adjust_exposure, auto_exposure, soft_auto_exposure
    from gsad.imaging.tensors import to_model

    enh = Enhancer(tiny_checkpoint, device="cpu")
    seen = {}
    original = trajectories.initial_state

    def spy(*args, **kwargs):
        seen["start"] = args[4]
        return original(*args, **kwargs)

    monkeypatch.setattr(trajectories, "initial_state", spy)
    warm = enh.enhance(dark_image, sampler="ddim", start="exposure")
    # the estimate is the auto-exposure of the input, reflect-padded like the condition (20 x 28 -> stride 4)
    expected = to_model(auto_exposure(dark_image))
    assert seen["start"].shape == expected.shape and torch.equal(seen["start"], expected)
    cold = enh.enhance(dark_image, sampler="ddim", start="noise")
    assert seen["start"] is None and not np.array_equal(warm, cold)
    dim = adjust_exposure(dark_image, 2.0)  # between the soft start's full and no gain
    enh.enhance(dim, sampler="ddim", start="soft-exposure")
    assert torch.equal(seen["start"], to_model(soft_auto_exposure(dim)))
    assert not torch.equal(seen["start"], to_model(auto_exposure(dim)))
    with pytest.raises(ConfigError, match="start"):
        enh.enhance(dark_image, start="image")


def test_gsad_exports_enhancer_lazily():
    """`import gsad` loads neither torch nor the model code; `gsad.Enhancer` does, on first use."""
    import subprocess
    import sys

    code = (
        "import sys, gsad; print('torch' in sys.modules, 'gsad.enhance.enhancer' in sys.modules); "
        "gsad.Enhancer; print('torch' in sys.modules, 'gsad.enhance.enhancer' in sys.modules, gsad.__version__)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import gsad

    assert run.stdout.split() == ["False", "False", "True", "True", gsad.__version__]
    assert gsad.Enhancer is Enhancer


def test_ensemble_averages_symmetric_trajectories(tiny_checkpoint, dark_image):
    from gsad.imaging.tensors import from_model, to_model

    enh = Enhancer(tiny_checkpoint, device="cpu")
    settings = enh.settings(sampler="ddim", steps=2, seed=7, start="exposure")
    low = to_model(dark_image)  # 20 x 28: views 1 and 2 are flipped, 4 and 5 transposed (28 x 20)
    single = enh.enhance_tensor(low, settings)
    assert torch.equal(enh.enhance_tensor(low, dataclasses.replace(settings, ensemble=1)), single)
    runs = [grid_symmetry(enh.enhance_tensor(grid_symmetry(low, k), dataclasses.replace(settings, seed=7 + k)), k,
                          inverse=True) for k in range(5)]
    steps = []
    five = dataclasses.replace(settings, ensemble=5)
    mean = enh.enhance_tensor(low, five, callback=lambda i, n: steps.append((i, n)))
    assert torch.allclose(mean, sum(runs) / 5, atol=1e-6)
    assert steps == [(i, 10) for i in range(1, 11)]  # progress over all 5 x 2 steps
    # the image API takes the same option and rounds the same mean
    out = enh.enhance(dark_image, sampler="ddim", steps=2, seed=7, start="exposure", ensemble=5)
    assert np.abs(out.astype(int) - from_model(mean).astype(int)).max() == 0
    with pytest.raises(ConfigError, match="ensemble: must be a whole number from 1 to 8, got 9"):
        enh.enhance(dark_image, ensemble=9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"seed": 1.5}, "seed: must be a whole number from 0 to 4294967295, got 1.5"),
        ({"steps": 2.5}, "steps: must be a whole number from 1 to 1000, got 2.5"),
        ({"seed": 2**64 - 1}, "seed: must be a whole number from 0 to 4294967295, got 18446744073709551615"),
        ({"exposure": float("nan")}, r"exposure: must be a number in \[-10, 10\] stops, got nan"),
        ({"exposure": float("inf")}, r"exposure: must be a number in \[-10, 10\] stops, got inf"),
        ({"tile": 2.5}, "tile: must be a whole number from 0 to 65536, got 2.5"),
        ({"beta_end": float("inf")}, r"beta_end: must be a number in \(0, 1\), got inf"),
    ],
)
def test_api_refuses_bad_numbers_with_gsad_errors(tiny_checkpoint, dark_image, kwargs, message):
    enhancer = Enhancer(tiny_checkpoint, device="cpu")
    with pytest.raises(ConfigError, match=message):
        enhancer.enhance(dark_image, **kwargs)


def test_numpy_integers_are_accepted_and_give_the_same_image(tiny_checkpoint, dark_image):
    enhancer = Enhancer(tiny_checkpoint, device="cpu")
    a = enhancer.enhance(dark_image, sampler="ddim", steps=np.int64(2), seed=np.int32(3))
    assert np.array_equal(a, enhancer.enhance(dark_image, sampler="ddim", steps=2, seed=3))


def test_non_finite_network_output_is_an_error_not_a_black_image(tiny_checkpoint, dark_image, monkeypatch):
    from gsad.errors import ModelOutputError

    enhancer = Enhancer(tiny_checkpoint, device="cpu")
    with torch.no_grad():
        enhancer.model.out_conv.bias.fill_(float("nan"))  # after loading: the load check cannot see it
    with pytest.raises(ModelOutputError, match=f"{tiny_checkpoint}: the network produced NaN or infinite values"):
        enhancer.enhance(dark_image, sampler="ddim")


_PEAK_SCRIPT = """
import re, sys
import numpy as np
import torch
from gsad.enhance.enhancer import Enhancer

class Stub(torch.nn.Module):  # a network that costs nothing: only the pipeline's whole-image buffers count
    def __init__(self, stride):
        super().__init__()
        self.config = type("Config", (), {"stride": stride})()
    def precompute(self, levels):
        pass
    def forward(self, x, level):
        return torch.tanh(x[:, 3:] + 0.5 * x[:, :3]), None

def kb():
    with open("/proc/self/status") as fh:
        return int(re.search(r"VmHWM:\\s+(\\d+)", fh.read()).group(1))

enhancer = Enhancer(sys.argv[1], device="cpu", precision="fp32")
enhancer.net = Stub(enhancer.net.config.stride)
settings = dict(steps=2, ensemble=2, start="soft-exposure", detail=1.0, tile=256)
rng = np.random.default_rng(0)
enhancer.enhance(rng.integers(0, 60, (90, 70, 3), dtype=np.uint8), **settings)  # warm up
image = rng.integers(0, 60, (1500, 2002, 3), dtype=np.uint8)  # 3 MP, not a multiple of the stride
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # peak := current
except OSError:
    pass
before = kb()
enhancer.enhance(image, **settings)
print((kb() - before) * 1024 / (image.shape[0] * image.shape[1]))
"""


def test_peak_memory_per_pixel_is_a_few_float_images(tiny_checkpoint):
    """Issue 24, measured: the peak resident memory (VmHWM) of enhancing a 3 MP photo in tiles, over
    that of a small one, with a network that costs nothing, is the pipeline's whole-image buffers:
    for 2 passes of 2 steps, warm start and detail restoration, at most 100 bytes a pixel (measured
    88: seven float32 images of 12 bytes, the tiles' weight sum and the input), where the whole-image
    float passes took 198. Freed images go back to the system at once (glibc's mmap threshold
    lowered), so the peak is what is alive."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import gsad

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status")
    src = str(Path(gsad.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "1048576"}
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(tiny_checkpoint)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    per_pixel = float(result.stdout.split()[-1])
    assert 12 <= per_pixel <= 100, per_pixel
