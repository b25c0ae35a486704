"""The README's held-out table: the default model against simple baselines.

Held-out set: scikit-image's colour photos darkened with HOLDOUT_RANGES, a camera model the
default model never saw in training (darker exposures, more shot and read noise, stronger
colour casts); made by benchmarks/default_model/prepare_photos.sh (WORK/holdout).

Methods: the dark input itself, a global auto-exposure (linear-light gain so that the mean
luminance reaches 18 % grey), CLAHE (scikit-image equalize_adapthist, default settings) and
the default model with its stored sampler settings. Every method's outputs are scored with
gsad's evaluation (plain and GT-mean protocols); seconds per image are measured here.

    python benchmarks/default_model/holdout_table.py WORK/holdout [--checkpoint C] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage import exposure

from gsad.data.layouts import find_pairs
from gsad.evaluation import evaluate
from gsad.images import auto_exposure, read_image, write_image


def clahe(low: np.ndarray) -> np.ndarray:
    """scikit-image's CLAHE with its default settings."""
    return np.round(exposure.equalize_adapthist(low) * 255.0).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="held-out pairs (low/ + high/)")
    parser.add_argument("--checkpoint", help="model to score (default: the bundled default model)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from gsad.inference import Enhancer

    enhancer = Enhancer(args.checkpoint, device="cpu")
    pairs = find_pairs(args.data)
    methods = {
        "dark input": lambda x: x,
        "auto-exposure": auto_exposure,
        "CLAHE": clahe,
        (f"gsad default ({enhancer.sampler.sampler}, {enhancer.sampler.steps} steps, "
         f"start {enhancer.sampler.start}, ensemble {enhancer.sampler.ensemble})"): enhancer.enhance,
    }
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, method in methods.items():
            out_dir = Path(tmp) / str(len(rows))
            seconds = []
            for pair in pairs:
                low = read_image(pair.low)
                start = time.perf_counter()
                out = method(low)
                seconds.append(time.perf_counter() - start)
                write_image(out_dir / f"{pair.name}.png", out)
            report = evaluate(pairs, predictions_dir=out_dir, progress=False)
            rows[name] = {**report["summary"], "seconds_per_image": float(np.mean(seconds)),
                          "mean_pixels": float(np.mean([read_image(p.low).shape[0] * read_image(p.low).shape[1]
                                                        for p in pairs]))}
    print("| method | PSNR | SSIM | PSNR GT-mean | SSIM GT-mean | s/image |\n|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['psnr_gtmean']:.2f} | {r['ssim_gtmean']:.3f} "
              f"| {r['seconds_per_image']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
