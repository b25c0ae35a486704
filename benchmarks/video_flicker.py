"""Temporal flicker of video enhancement: stable mode against naive per-frame sampling.

    OMP_NUM_THREADS=1 python benchmarks/video_flicker.py [--size 128x96] [--frames 16] [--checkpoint C]
        [--steps N] [--ensemble N] [--blend 0.5 0.8]

Two synthetic dark scenes, each frame with its own sensor noise (signal-dependent Gaussian,
std = sqrt(K * level + R^2) in levels of 255):

* static: one dark photo (``resources/examples/cat_dark.png``, resized) repeated, fresh noise per frame;
* panning: a window of that size moving 2 px per frame across the photo at its full size.

Flicker (:func:`gsad.evaluation.metrics.flicker`) = mean absolute frame-to-frame change of the
output over that of the input, on the frames in memory (before any video encoding). Modes:

* naive: fresh noise for every frame (one generator drawn on), the trajectory from pure noise;
* naive + warm start: fresh noise, the checkpoint's warm start (``soft-exposure`` for the bundled model);
* stable: the same noise field for every frame + the warm start (what ``gsad enhance CLIP`` does);
* stable + blend B: stable with ``--temporal-blend B`` (for each B of ``--blend``); also printed: the
  mean absolute difference from the unblended stable output (on the panning scene, lag or ghosting
  would show as a large value).
"""

from __future__ import annotations

import argparse
import time
from importlib import resources

import numpy as np
from PIL import Image

#: Sensor noise: std = sqrt(K * level + R^2), level and std in 0-255.
K, R = 0.6, 1.5
PAN_PX = 2


def noisy(clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    level = clean.astype(np.float64)
    return np.clip(np.round(level + rng.normal(size=level.shape) * np.sqrt(K * level + R * R)), 0, 255).astype(
        np.uint8)


def scenes(size: tuple[int, int], frames: int) -> dict[str, list[np.ndarray]]:
    w, h = size
    path = resources.files("gsad") / "resources" / "examples" / "cat_dark.png"
    photo = Image.open(str(path)).convert("RGB")
    rng = np.random.default_rng(0)
    still = np.asarray(photo.resize((w, h), Image.BICUBIC))
    big = np.asarray(photo.resize((w + PAN_PX * frames, round((w + PAN_PX * frames) * photo.height / photo.width)),
                                  Image.BICUBIC))
    top = (big.shape[0] - h) // 2
    return {
        "static": [noisy(still, rng) for _ in range(frames)],
        "panning": [noisy(big[top:top + h, PAN_PX * t:PAN_PX * t + w], rng) for t in range(frames)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="128x96", help="W x H of the frames")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--checkpoint", help="model (default: the bundled one)")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the checkpoint's)")
    parser.add_argument("--ensemble", type=int, help="ensemble passes (default: the checkpoint's)")
    parser.add_argument("--blend", type=float, nargs="+", default=[0.5, 0.8],
                        help="--temporal-blend values of the last modes")
    args = parser.parse_args()

    from gsad.enhance.enhancer import Enhancer
    from gsad.enhance.video import FrameEnhancer, video_settings
    from gsad.evaluation.metrics import flicker, frame_change

    size = tuple(int(v) for v in args.size.lower().split("x"))
    enhancer = Enhancer(args.checkpoint, device="cpu", precision="fp32")
    base = video_settings(enhancer, steps=args.steps, ensemble=args.ensemble)
    modes = [  # name, noise, start (None: the video default), temporal blend
        ("naive (fresh noise, start=noise)", "fresh", "noise", 0.0),
        (f"naive + warm start (fresh noise, start={base.start})", "fresh", None, 0.0),
        ("stable (same noise + warm start)", "same", None, 0.0),
    ] + [(f"stable + temporal blend {b:g}", "same", None, b) for b in args.blend]
    print(f"settings: {base}")
    print(f"frames: {args.frames} of {size[0]} x {size[1]}; noise K={K} R={R}; pan {PAN_PX} px/frame")
    for scene, frames in scenes(size, args.frames).items():
        print(f"\n{scene}: input frame change {frame_change(frames):.3f} levels")
        unblended = None
        for name, noise, start, blend in modes:
            settings = base if start is None else enhancer.settings(base, start=start)
            run = FrameEnhancer(enhancer, settings, noise=noise, blend=blend)
            t0 = time.perf_counter()
            outputs = [run(f) for f in frames]
            seconds = time.perf_counter() - t0
            if noise == "same" and not blend:
                unblended = outputs
            departure = ""  # how far blending moved the result from the frame's own (ghosting shows here)
            if blend and unblended is not None:
                gap = np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(outputs, unblended)])
                departure = f", {gap:.2f} levels from unblended"
            print(f"  {name:55s} flicker {flicker(frames, outputs):6.3f}  "
                  f"(output change {frame_change(outputs):6.3f}, mean level {np.mean(outputs):5.1f}{departure}; "
                  f"{seconds / len(frames):.2f} s/frame)")


if __name__ == "__main__":
    main()
