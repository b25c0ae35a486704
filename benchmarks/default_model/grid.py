"""docs/before_after.png: dark input | auto-exposure | default model | original photo.

Scaled mode (one row per pair of one folder, each cell ``--width`` px wide):

    python benchmarks/default_model/grid.py WORK/holdout docs/before_after.png [--width 256]

Full-size mode (texture visible): ``--crop PX`` takes a PX x PX crop at 1:1 from every pair of
every folder given (centre of the image, or ``--at Y,X`` as fractions of its size), one row each;
``--photos`` keeps only the named pairs, ``--pick`` one named pair per folder, in order:

    python benchmarks/default_model/grid.py WORK/heldout_dark-noisy WORK/heldout_near-normal \
        docs/before_after.png --crop 192 --pick chelsea.png,motorcycle_left.png
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from gsad.data.layouts import find_pairs
from gsad.enhance.enhancer import Enhancer
from gsad.imaging.exposure import auto_exposure
from gsad.imaging.io import read_image, write_image


def _crop(image: np.ndarray, size: int, at: tuple[float, float]) -> np.ndarray:
    h, w = image.shape[:2]
    size_y, size_x = min(size, h), min(size, w)
    top = min(max(0, round(at[0] * h - size_y / 2)), h - size_y)
    left = min(max(0, round(at[1] * w - size_x / 2)), w - size_x)
    return image[top:top + size_y, left:left + size_x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="held-out pair folders (low/ + high/)")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--width", type=int, default=256, help="scaled mode: width of each cell")
    parser.add_argument("--crop", type=int, help="full-size mode: side of the 1:1 crops")
    parser.add_argument("--at", default="0.5,0.5", help="crop centre as fractions Y,X of the image (default centre)")
    parser.add_argument("--photos", help="comma-separated pair names to keep (default all)")
    parser.add_argument("--pick", help="comma-separated pair names, one per folder (instead of --photos)")
    parser.add_argument("--checkpoint", help="model (default: the bundled one)")
    args = parser.parse_args()
    enhancer = Enhancer(args.checkpoint, device="cpu")
    keep = set(args.photos.split(",")) if args.photos else None
    picks = args.pick.split(",") if args.pick else None
    if picks is not None and len(picks) != len(args.data):
        parser.error(f"--pick names {len(picks)} pairs for {len(args.data)} folders")
    at = tuple(float(v) for v in args.at.split(","))
    rows = []
    for i, folder in enumerate(args.data):
        for pair in find_pairs(folder):
            if (keep is not None and pair.low.name not in keep) or (picks is not None and pair.low.name != picks[i]):
                continue
            low, high = read_image(pair.low), read_image(pair.high)
            cells = [low, auto_exposure(low), enhancer.enhance(low), high]
            if args.crop:
                cells = [_crop(x, args.crop, at) for x in cells]
            else:
                h = round(low.shape[0] * args.width / low.shape[1])
                cells = [np.asarray(Image.fromarray(x).resize((args.width, h), Image.LANCZOS)) for x in cells]
            rows.append(np.concatenate([np.pad(c, ((0, 0), (0, 4), (0, 0)), constant_values=255) for c in cells],
                                       axis=1))
            print(f"{pair.low}", flush=True)
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    write_image(args.output, grid, overwrite=True)
    print(f"wrote {args.output}: {len(rows)} rows (dark input | auto-exposure | gsad | original)")


if __name__ == "__main__":
    main()
