"""gsad.enhance.video: temporally stable frames (same noise, warm start, blending), a file end to end."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gsad.enhance.enhancer import Enhancer
from gsad.enhance.video import FrameEnhancer, enhance_video, noise_sigma, still_weight, video_settings
from gsad.evaluation.metrics import flicker


@pytest.fixture()
def enhancer(tiny_checkpoint):
    return Enhancer(tiny_checkpoint, device="cpu", precision="fp32")


def static_scene(frames: int = 6, size=(24, 32), sigma: float = 2.0) -> list[np.ndarray]:
    """One dark picture, each frame with its own sensor noise."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    clean = (10 + x * 0.8 + y * 0.5)[..., None] * np.array([1.0, 0.8, 0.6])
    rng = np.random.default_rng(0)
    return [np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
            for _ in range(frames)]


def test_video_settings_take_a_warm_start_unless_chosen(enhancer):
    assert enhancer.sampler.start == "noise"
    assert video_settings(enhancer).start == "soft-exposure"
    assert video_settings(enhancer, start="noise").start == "noise"
    assert video_settings(enhancer, start="exposure", steps=1).steps == 1


def test_same_noise_gives_identical_frames_identical_outputs(enhancer):
    frame = static_scene(1)[0]
    run = FrameEnhancer(enhancer, video_settings(enhancer))
    assert np.array_equal(run(frame), run(frame))
    fresh = FrameEnhancer(enhancer, video_settings(enhancer), noise="fresh")
    assert not np.array_equal(fresh(frame), fresh(frame))


def test_enhanced_then_blended_is_the_frame_enhancer_whoever_computes_e_t(enhancer):
    """O_t = w O_{t-1} + (1 - w) E_t, rounded, from E_t alone: E_t computed by other FrameEnhancers, each
    seeing only its own frames (as the torchrun ranks do), gives the very frames one FrameEnhancer gives."""
    frames = static_scene(7)
    frames[4] = frames[4].copy()
    frames[4][:, 20:] = np.clip(frames[4][:, 20:].astype(int) + 40, 0, 255)  # a change: blended only in part
    settings = video_settings(enhancer)
    for blend in (0.0, 0.5):
        one = FrameEnhancer(enhancer, settings, blend=blend)
        expected = [one(f) for f in frames]
        ranks = [FrameEnhancer(enhancer, settings, blend=blend) for _ in range(2)]
        enhanced = {t: ranks[(t // 2) % 2].enhanced(frames[t]) for t in (2, 3, 6, 0, 1, 4, 5)}  # chunks of 2
        assert all(e.dtype == np.uint8 and e.shape == frames[0].shape for e in enhanced.values())
        main = FrameEnhancer(enhancer, settings, blend=blend)
        assert all(np.array_equal(main.blended(f, enhanced[t]), expected[t]) for t, f in enumerate(frames))
        # the recursion written out, in float64, rounded once per frame
        previous = enhanced[0].astype(np.float64)
        for t in range(1, len(frames)):
            w = still_weight(frames[t - 1], frames[t], blend) if blend else 0.0
            previous = w * previous + (1.0 - w) * enhanced[t]
            assert np.array_equal(np.clip(np.round(previous), 0, 255).astype(np.uint8), expected[t])
    assert not np.array_equal(expected, [enhanced[t] for t in range(7)])  # the blend did change frames


def test_stable_mode_flickers_less_than_naive_on_a_static_scene(enhancer):
    frames = static_scene()
    settings = video_settings(enhancer)
    runs = [FrameEnhancer(enhancer, settings, noise="fresh"), FrameEnhancer(enhancer, settings),
            FrameEnhancer(enhancer, settings, blend=0.8)]
    naive, stable, blended = (flicker(frames, [run(f) for f in frames]) for run in runs)
    assert stable < 0.5 * naive
    assert blended < stable


def test_blend_weight_is_zero_where_the_input_moved():
    still = static_scene(2, size=(48, 64))
    w = still_weight(still[0], still[1], 0.8)
    assert w.shape == (48, 64, 1) and w.mean() > 0.6
    moved = still[1].copy()
    moved[:, 32:] = np.clip(moved[:, 32:].astype(int) + 40, 0, 255)  # a bright object entered the right half
    w = still_weight(still[0], moved, 0.8)
    assert w[:, 40:].max() == 0 and w[:, :24].mean() > 0.6


def test_noise_sigma_estimate():
    rng = np.random.default_rng(1)
    flat = np.full((64, 64), 50.0) + rng.normal(0, 3, (64, 64))
    assert noise_sigma(flat) == pytest.approx(3.0, rel=0.1)
    assert noise_sigma(np.zeros((2, 2))) == 0.0


def test_enhance_video_end_to_end(enhancer, make_clip, tmp_path):
    av = pytest.importorskip("av")
    src = make_clip(tmp_path / "a.mp4")
    steps = []
    result = enhance_video(enhancer, src, tmp_path / "out.mp4", video_settings(enhancer, steps=1), blend=0.5,
                           on_frame=lambda: steps.append(1))
    assert result.frames == 30 and len(steps) == 30 and result.audio_packets > 0
    with av.open(str(tmp_path / "out.mp4")) as c:
        v = c.streams.video[0]
        assert (v.frames, v.average_rate, len(c.streams.audio)) == (30, Fraction(10), 1)
