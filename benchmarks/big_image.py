"""Peak memory and time of enhancing a large photo (tiled inference), e.g. 3000 x 2000.

    python benchmarks/big_image.py --size 3000x2000 [--checkpoint C] [--steps N] [--tile 512]

Prints wall time and the process's peak resident memory (ru_maxrss) after the run.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="3000x2000", help="W x H of the test photo")
    parser.add_argument("--checkpoint", help="model (default: the bundled one)")
    parser.add_argument("--steps", type=int, help="sampler steps (default: the checkpoint's)")
    parser.add_argument("--tile", type=int, help="tile side (default: automatic)")
    args = parser.parse_args()
    from skimage import data

    from gsad.data.synthesize import HOLDOUT_RANGES, degrade
    from gsad.enhance.enhancer import Enhancer

    w, h = (int(v) for v in args.size.lower().split("x"))
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BICUBIC))
    low, _ = degrade(photo, np.random.default_rng(0), HOLDOUT_RANGES)
    del photo
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    enhancer = Enhancer(args.checkpoint, device="cpu")
    start = time.perf_counter()
    out = enhancer.enhance(low, steps=args.steps, tile=args.tile)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    assert out.shape == low.shape
    print(f"{w}x{h}: {seconds:.1f} s, peak RSS {peak:.2f} GiB (before enhancing {before:.2f} GiB), "
          f"sampler {enhancer.sampler.sampler} {args.steps or enhancer.sampler.steps} steps")


if __name__ == "__main__":
    main()
