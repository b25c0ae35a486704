import numpy as np
import pytest
import torch

from gsad.errors import CheckpointError
from gsad.evaluation.metrics import mean_level
from gsad.imaging.exposure import LUMINANCE, linear_to_srgb, srgb_to_linear
from gsad.imaging.tensors import from_model, to_model
from gsad.network.exposure_net import (
    CURVE_SEGMENTS,
    LIFT_CAP,
    THUMBNAIL,
    Correction,
    ExposureNet,
    guard_blend,
    learned_exposure,
    load_exposure_net,
)


def _scene(seed: int = 0, shape=(48, 64)) -> np.ndarray:
    """A well-exposed synthetic scene: smooth coloured blobs, mean level about 110 of 255."""
    rng = np.random.default_rng(seed)
    coarse = torch.tensor(rng.uniform(0.1, 0.85, (1, 3, 6, 8)), dtype=torch.float32)
    image = torch.nn.functional.interpolate(coarse, size=shape, mode="bicubic", align_corners=False)
    return np.round(image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).astype(np.uint8)


def _scaled(image: np.ndarray, luminance: float) -> np.ndarray:
    """``image`` scaled in linear light to this mean luminance."""
    linear = srgb_to_linear(image / 255.0)
    gain = luminance / float((linear @ LUMINANCE).mean())
    return np.round(linear_to_srgb(linear * gain) * 255).astype(np.uint8)


def _ratio(image: np.ndarray) -> float:
    return mean_level(from_model(learned_exposure(to_model(image)))) / mean_level(image)


def test_output_shapes_and_range():
    torch.manual_seed(0)
    net = ExposureNet()
    c = net(torch.rand(2, 3, THUMBNAIL, THUMBNAIL) * 2 - 1)
    assert c.log2_gains.shape == (2, 3) and c.knots.shape == (2, CURVE_SEGMENTS + 1) and c.blend.shape == (2,)
    low = torch.rand(2, 3, 37, 53) * 2 - 1  # odd, non-square and smaller than the thumbnail
    out = learned_exposure(low, net)
    assert out.shape == low.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= -1 and out.max() <= 1
    assert torch.allclose(out, low, atol=1e-5)  # the untrained network (zero head) is the identity


def test_shipped_estimate_is_finite_monotone_and_the_same_for_every_view():
    net = load_exposure_net()
    dark = to_model(_scaled(_scene(1), 0.01))
    c = net(torch.nn.functional.adaptive_avg_pool2d(dark, THUMBNAIL))
    assert torch.isfinite(c.log2_gains).all() and torch.isfinite(c.knots).all()
    assert c.knots[0, 0] == 0 and c.knots[0, -1] == pytest.approx(1) and (c.knots.diff() >= 0).all()
    ramp = torch.linspace(0, 1, 1001).expand(1, 3, 1, -1)  # every level of each channel
    assert (c.apply(ramp).diff() >= 0).all()
    est = learned_exposure(dark)
    assert torch.isfinite(est).all()
    flipped = learned_exposure(dark.transpose(-1, -2).flip(-1)).flip(-1).transpose(-1, -2)
    assert torch.allclose(est, flipped, atol=1e-4)  # the network averages the 8 views


def test_shipped_estimate_brightens_dark_images_and_leaves_good_and_dim_ones():
    scene = _scene(2)
    assert 0.85 <= _ratio(scene) <= 1.3  # well exposed: do no harm
    assert _ratio(_scaled(scene, 0.1)) <= LIFT_CAP + 0.02  # dim but meant to be dim (a dusk scene)
    assert _ratio(_scaled(scene, 0.005)) > 3  # 5 stops under: lifted


def test_guard_caps_the_lift_of_bright_images_and_leaves_dark_ones():
    thumb = torch.full((2, 3, 8, 8), 0.5)
    thumb[1] = 0.05  # mean luminance about 0.004: far below a dim photo
    wild = Correction(torch.full((2, 3), 6.0), torch.linspace(0, 1, CURVE_SEGMENTS + 1).expand(2, -1),
                      torch.ones(2))
    curved = wild.curve(thumb)
    blend = guard_blend(thumb, curved)
    guarded = Correction(wild.log2_gains, wild.knots, blend).apply(thumb)
    assert guarded[0].mean() / thumb[0].mean() == pytest.approx(LIFT_CAP, rel=1e-4)
    assert blend[1] == 1  # a dark image keeps the whole correction


@pytest.mark.parametrize("content, match", [
    (None, "cannot read the exposure network's weights"),
    (b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ", "not a safetensors file"),
    ("other", "not exposure-network weights"),
])
def test_bad_weights_are_one_line_errors(tmp_path, content, match):
    from safetensors.torch import save

    path = tmp_path / "w.safetensors"
    if content == "other":
        content = save({"x": torch.zeros(2)})
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_exposure_net(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
