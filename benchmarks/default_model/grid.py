"""docs/before_after.png: dark input | default model | original photo, one row per held-out photo.

    python benchmarks/default_model/grid.py WORK/holdout docs/before_after.png [--width 256]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from gsad.data.layouts import find_pairs
from gsad.images import read_image, write_image
from gsad.inference import Enhancer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="held-out pairs (low/ + high/)")
    parser.add_argument("output", help="PNG to write")
    parser.add_argument("--width", type=int, default=256, help="width of each cell")
    parser.add_argument("--checkpoint", help="model (default: the bundled one)")
    args = parser.parse_args()
    enhancer = Enhancer(args.checkpoint, device="cpu")
    rows = []
    for pair in find_pairs(args.data):
        low, high = read_image(pair.low), read_image(pair.high)
        out = enhancer.enhance(low)
        h = round(low.shape[0] * args.width / low.shape[1])
        cells = [np.asarray(Image.fromarray(x).resize((args.width, h), Image.LANCZOS)) for x in (low, out, high)]
        rows.append(np.concatenate(cells, axis=1))
    width = max(r.shape[1] for r in rows)
    grid = np.concatenate([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
    write_image(args.output, grid, overwrite=True)
    print(f"wrote {args.output}: {len(rows)} rows (dark input | gsad default | original)")


if __name__ == "__main__":
    main()
