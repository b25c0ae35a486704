import numpy as np
import pytest
import torch

from gsad.enhance.tiling import blend_window, plan_tiles, tile_starts


@pytest.mark.parametrize(
    "length, tile, overlap", [(100, 32, 8), (64, 64, 8), (65, 32, 16), (1000, 256, 32), (20, 64, 8)]
)
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    for a, b in zip(starts, starts[1:]):
        assert b > a and a + size - b >= overlap


def test_plan_tiles_respects_stride_and_covers():
    tiles = plan_tiles(100, 150, 48, 8, multiple=4)
    covered = np.zeros((100, 150), bool)
    for y, x, th, tw in tiles:
        # each start on the stride grid, except a last tile pushed back to end at the image edge
        assert y % 4 == 0 or y + th == 100
        assert x % 4 == 0 or x + tw == 150
        assert th % 4 == 0 and tw % 4 == 0
        covered[y : y + th, x : x + tw] = True
    assert covered.all()


def test_blend_window_ramps_and_is_positive():
    w = blend_window(16, 20, 4)
    assert w.shape == (16, 20) and (w > 0).all() and w.max() == 1.0
    assert w[8, 10] == 1.0 and w[0, 0] < w[1, 1] < w[4, 4]


def test_tiled_matches_untiled_on_medium_image():
    """The bundled model on a darkened 384 x 512 photo: two overlapping 384 px tiles agree with
    one pass to within 1 % of the range on average, with no seam. (Tiles see less global
    context than the whole image, so smaller tiles drift further: about 5 levels at 256 px.)"""
    from skimage import data

    from gsad.data.synthesize import degrade
    from gsad.enhance.enhancer import Enhancer

    photo = data.astronaut()[64:448, 0:512]
    low, _ = degrade(photo, np.random.default_rng(0))
    enh = Enhancer(device="cpu")
    # tiling acts per trajectory: one trajectory (ensemble=1) keeps the test quick
    full = enh.enhance(low, tile=0, ensemble=1).astype(float)
    tiled = enh.enhance(low, tile=384, ensemble=1).astype(float)
    one_tile = enh.enhance(low, tile=512, ensemble=1).astype(float)
    assert np.array_equal(one_tile, full)  # a tile covering everything is exactly untiled
    assert np.abs(tiled - full).mean() < 2.55  # levels of 255
    # No seams: at each column where a tile starts or ends, the step from the column before
    # stands out from its 14 neighbouring steps no more than it does in the untiled result
    # (measured 0.02 levels; without the feathering ramp, 1.0).
    tiles = plan_tiles(384, 512, 384, 64, multiple=enh.model.config.stride)
    edges = {x for _, x, _, _ in tiles if x > 0} | {x + tw for _, x, _, tw in tiles if x + tw < 512}
    assert edges == {128, 384}
    steps_tiled = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))  # [c - 1]: column c against c - 1
    steps_full = np.abs(np.diff(full, axis=1)).mean(axis=(0, 2))

    def stands_out(steps, c):
        return steps[c - 1] - np.r_[steps[c - 9 : c - 2], steps[c : c + 7]].mean()

    for c in edges:
        assert stands_out(steps_tiled, c) - stands_out(steps_full, c) < 0.3


def test_tiling_same_noise_per_position():
    """The sampler draws full-size noise, so the noise under a pixel never depends on tiles."""
    from gsad.diffusion import SAMPLERS, Schedule, initial_state
    from gsad.enhance.tiling import TiledDenoiser

    class Local(torch.nn.Module):  # a purely local network: tiling must change nothing
        def forward(self, x, level):
            return x[:, 3:] * 0.5 + x[:, :3] * 0.1, None

    cond = torch.rand(1, 3, 40, 56) * 2 - 1
    sched = Schedule.linear(4, 1e-3, 0.7)
    from gsad.diffusion import Denoiser

    runs = []
    for denoiser in (Denoiser(Local(), cond), TiledDenoiser(Local(), cond, 16, 4, 4)):
        generator = torch.Generator().manual_seed(3)
        x = initial_state(tuple(cond.shape), sched, generator, "cpu")
        runs.append(SAMPLERS["reference"](denoiser, x, sched, generator))
    a, b = runs
    assert torch.allclose(a, b, atol=1e-5)
