"""``gsad synthesize``: low-light pairs made from normal photos by the camera model."""

from __future__ import annotations

import argparse
import sys

from gsad.cli import options
from gsad.config import RANGE_NAMES
from gsad.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="?", metavar="PHOTOS_DIR",
                   help="folder of normal-light photos (omit with --bundled)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="writes OUT_DIR/low/NAME.png (darkened) and OUT_DIR/high/NAME.png (the photo)")
    p.add_argument("--bundled", action="store_true",
                   help="use the colour photos bundled with scikit-image instead of PHOTOS_DIR")
    p.add_argument("--seed", type=options.seed, default=0,
                   help="seed, 0 to 2**32 - 1; the same seed gives the same bytes (default 0)")
    p.add_argument("--count", type=options.positive_int, help="use only the first N photos (by name)")
    p.add_argument("--ranges", choices=RANGE_NAMES, default="default",
                   help="degradation preset: 'default' (the first default model's training camera), 'holdout' "
                        "(a different camera, darker and noisier), 'broad' (many cameras, tone curves, JPEG, blur; "
                        "the second default model's training pipeline) or a held-out family outside broad: "
                        "dark-noisy, phone-jpeg, color-cast, near-normal (default: default)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def run(args: argparse.Namespace) -> int:
    from gsad.data.synthesize import bundled_photos, named_ranges, synthesize_folder

    if args.bundled == (args.photos is not None):
        raise InputError("give either PHOTOS_DIR or --bundled")
    if args.bundled:
        from gsad.evaluation.metrics import require_skimage

        require_skimage()  # the bundled photos are scikit-image's
    source = bundled_photos() if args.bundled else args.photos
    ranges = named_ranges(args.ranges)
    failures = []

    def report(message: str) -> None:  # as gsad enhance does: one line per bad photo, skip it, go on, exit 1
        from tqdm import tqdm

        failures.append(message)
        tqdm.write(f"{options.PROG}: error: {message}", file=sys.stderr)  # on its own line, above the bar

    names = synthesize_folder(source, args.output, seed=args.seed, count=args.count, ranges=ranges,
                              overwrite=args.overwrite, progress=True, report=report)
    print(f"wrote {len(names)} pairs to {args.output}/low and {args.output}/high"
          + (f" ({len(failures)} photos skipped)" if failures else ""))
    return 1 if failures else 0
