"""The README's held-out tables: models against simple baselines, per degradation family,
and the do-no-harm check on well-exposed photos.

Held-out sets (made by benchmarks/default_model/prepare_photos.sh in WORK):

- ``holdout``: scikit-image's 6 colour photos darkened with HOLDOUT_RANGES (the first default
  model's held-out camera: darker, noisier, stronger casts than its training camera);
- ``dark-noisy``, ``phone-jpeg``, ``color-cast``, ``near-normal``: the 10 held-out photos
  (WORK/photos/heldout: scikit-image's 6 and 4 from fotoxx-common and tuxmath-data) darkened
  with each held-out family of gsad.data.synthesize.HOLDOUT_FAMILIES, each outside the broad
  training pipeline in a different direction (WORK/heldout_FAMILY).

Methods: the dark input itself, a global auto-exposure (linear-light gain so that the mean
luminance reaches 18 % grey), its soft variant (no gain for well-exposed inputs), the learned
global correction (gsad.network.exposure_net: per-channel gains and a tone curve from a
thumbnail; the learned-exposure warm start on its own), CLAHE (scikit-image equalize_adapthist,
default settings) and each model given (default: the bundled default model) with its stored
sampler settings, or with the warm start ``--start`` names.
Scores per family, in the plain and the GT-mean protocol (gsad.evaluation.metrics.score_pair): PSNR, SSIM
and the detail ratio (gsad.evaluation.metrics.detail_ratio: Laplacian variance of the output over the
reference's; 1 is the target, < 1 smoothed, > 1 grain); "gain" is a model's plain PSNR minus the
best baseline's.

Do no harm: the well-exposed originals (WORK/photos/heldout) run through each method: mean PSNR
and SSIM of the output against its input, and the ratio of mean grey levels (output / input) of
every image (the default model must keep PSNR >= 24 dB, SSIM >= 0.85 and every ratio within 0.85-1.3).

    python benchmarks/default_model/holdout_table.py WORK [--checkpoint [LABEL=]C ...]
        [--families F,F,...] [--start S] [--json out.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

import numpy as np
from skimage import exposure

from gsad.config import START_NAMES
from gsad.data.layouts import find_pairs
from gsad.evaluation.metrics import detail_ratio, gt_mean_adjust, mean_level, psnr, score_pair, ssim
from gsad.imaging.exposure import auto_exposure, soft_auto_exposure
from gsad.imaging.io import list_images, read_image
from gsad.imaging.tensors import from_model, to_model
from gsad.network.exposure_net import learned_exposure

FAMILIES = ("holdout", "dark-noisy", "phone-jpeg", "color-cast", "near-normal")
#: The do-no-harm bounds of issue 15.
NO_HARM_PSNR, NO_HARM_SSIM, NO_HARM_LEVELS = 24.0, 0.85, (0.85, 1.3)


def clahe(low: np.ndarray) -> np.ndarray:
    """scikit-image's CLAHE with its default settings."""
    return np.round(exposure.equalize_adapthist(low) * 255.0).astype(np.uint8)


def learned_global(low: np.ndarray) -> np.ndarray:
    """The learned global correction alone (the learned-exposure warm start, no diffusion)."""
    return from_model(learned_exposure(to_model(low)))


def family_dir(work: Path, family: str) -> Path:
    """The pairs of a family: WORK/holdout, or WORK/heldout_FAMILY."""
    return work / ("holdout" if family == "holdout" else f"heldout_{family}")


def score_family(method, pairs) -> dict:
    """Mean scores of ``method`` (uint8 image -> uint8 image) over ``pairs``, and seconds/image."""
    rows, seconds = [], []
    for pair in pairs:
        low, gt = read_image(pair.low), read_image(pair.high)
        start = time.perf_counter()
        out = method(low)
        seconds.append(time.perf_counter() - start)
        row = score_pair(out, gt)
        row["detail"] = detail_ratio(out, gt)
        row["detail_gtmean"] = detail_ratio(gt_mean_adjust(out, gt), gt)
        rows.append({"name": pair.name, **row})
    keys = [k for k in rows[0] if k != "name"]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {**summary, "seconds_per_image": float(np.mean(seconds)), "count": len(rows), "images": rows}


def no_harm(method, photos: list[Path]) -> dict:
    """Output against input on well-exposed photos: PSNR, SSIM and the mean-level ratio."""
    rows = []
    for path in photos:
        image = read_image(path)
        out = method(image)
        rows.append({"name": path.stem, "psnr": psnr(out, image), "ssim": ssim(out, image),
                     "level_ratio": mean_level(out) / mean_level(image)})
    ratios = [r["level_ratio"] for r in rows]
    lo, hi = NO_HARM_LEVELS
    return {
        "psnr": float(np.mean([r["psnr"] for r in rows])),
        "ssim": float(np.mean([r["ssim"] for r in rows])),
        "level_ratio_mean": float(np.mean(ratios)),
        "level_ratio_min": float(min(ratios)),
        "level_ratio_max": float(max(ratios)),
        "within_levels": int(sum(lo <= r <= hi for r in ratios)),
        "count": len(rows),
        "images": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", help="the work folder of prepare_photos.sh")
    parser.add_argument("--checkpoint", action="append", metavar="[LABEL=]C",
                        help="model to score, repeatable (default: the bundled default model)")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help=f"comma-separated (default {','.join(FAMILIES)})")
    parser.add_argument("--no-baselines", action="store_true", help="score only the models")
    parser.add_argument("--start", choices=START_NAMES,
                        help="run the models from this warm start instead of their stored one")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from gsad.enhance.enhancer import Enhancer

    work = Path(args.work)
    methods = {} if args.no_baselines else {"dark input": lambda x: x, "auto-exposure": auto_exposure,
                                            "soft auto-exposure": soft_auto_exposure,
                                            "learned exposure": learned_global, "CLAHE": clahe}
    baselines = list(methods)
    for spec in args.checkpoint or [None]:
        label, _, path = spec.rpartition("=") if spec else ("", "", None)
        enhancer = Enhancer(path, device="cpu")
        s = enhancer.settings(start=args.start)  # the stored settings when --start is not given
        label = label or ("gsad default" if path is None else Path(path).name)
        detail = f", detail {s.detail:g}" if s.detail else ""
        name = f"{label} ({s.sampler}, {s.steps} steps, start {s.start}, ensemble {s.ensemble}{detail})"
        methods[name] = functools.partial(enhancer.enhance, settings=s)

    results: dict = {"families": {}, "no_harm": {}}
    for family in [f for f in args.families.split(",") if f]:  # --families "": do no harm only
        pairs = find_pairs(family_dir(work, family))
        results["families"][family] = {name: score_family(method, pairs) for name, method in methods.items()}
    photos = list_images(work / "photos" / "heldout")
    results["no_harm"] = {name: no_harm(method, photos) for name, method in methods.items()}

    print("| family | method | PSNR | SSIM | PSNR GT-mean | SSIM GT-mean | detail | detail GT-mean | gain | s/image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family, rows in results["families"].items():
        best = max((rows[b]["psnr"] for b in baselines), default=float("nan"))
        for name, r in rows.items():
            gain = "" if name in baselines or not baselines else f"{r['psnr'] - best:+.2f}"
            print(f"| {family} ({r['count']}) | {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['psnr_gtmean']:.2f} "
                  f"| {r['ssim_gtmean']:.3f} | {r['detail']:.2f} | {r['detail_gtmean']:.2f} | {gain} "
                  f"| {r['seconds_per_image']:.2f} |")
    print()
    print("| do no harm | PSNR vs input | SSIM vs input | mean-level ratio mean (min-max) | within 0.85-1.3 |")
    print("|---|---|---|---|---|")
    for name, r in results["no_harm"].items():
        print(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['level_ratio_mean']:.2f} "
              f"({r['level_ratio_min']:.2f}-{r['level_ratio_max']:.2f}) | {r['within_levels']}/{r['count']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
