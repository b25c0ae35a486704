"""``gsad enhance``: image files and folders through the model, each result written atomically."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gsad.cli import options
from gsad.config import MAX_EXPOSURE
from gsad.errors import InputError, ModelOutputError

if TYPE_CHECKING:
    from gsad.runtime.distributed import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input image) or folder (several inputs, a folder input, an existing "
                        "folder, or a path ending in '/'); folders are created and keep input names as .png")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="gsad .safetensors file, training run folder, or reference .pth (default: bundled model)")
    options.add_sampler_options(p)
    p.add_argument("--tile", type=options.tile_size, metavar="SIZE",
                   help="enhance in overlapping tiles of SIZE px; 0 never tiles; default: tiles of 512 for images "
                        "over 1 megapixel. Peak memory (CPU, fp32): about 0.3 GB + 2 KB per tile pixel (0.55 GB "
                        "at 512) + 85 bytes per image pixel (45 with --ensemble 1 --steps 1): about 5 GB for 50 MP")
    p.add_argument("--exposure", type=options.exposure, default=0.0, metavar="EV",
                   help=f"make the result brighter (+EV) or darker (-EV) than the model's choice, in stops "
                        f"(-{MAX_EXPOSURE:g} to {MAX_EXPOSURE:g})")
    options.add_max_megapixels(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    options.add_speed_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (inputs are never replaced)")


def run(args: argparse.Namespace) -> int:
    from gsad.enhance.outputs import plan_outputs
    from gsad.files import remove_stale_temporaries_of
    from gsad.runtime.distributed import on_main, process_group

    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        options.print_error(message)

    # Under torchrun each rank enhances its share of the images (gsad.enhance.parallel); else a world of one.
    with process_group(args.device) as ctx:
        plan = on_main(ctx, lambda: plan_outputs(args.inputs, args.output, args.overwrite, report, args.checkpoint))
        if not plan:
            return 1
        if ctx.is_main:  # what a run stopped by SIGKILL or a power cut left beside this run's outputs
            for path in remove_stale_temporaries_of(dst for _, dst in plan):
                print(f"{path}: removed (a temporary file left by a stopped run)", file=sys.stderr)
        _enhance_plan(ctx, plan, args, report)
    return 1 if failures else 0


def _enhance_plan(ctx: Context, plan: list[tuple[Path, Path]], args: argparse.Namespace,
                  report: Callable[[str], None]) -> None:
    """This rank's share of ``plan``: read, enhance, write; each failure reported and skipped."""
    from tqdm import tqdm

    from gsad.enhance.parallel import share, shared_enhancer
    from gsad.imaging.io import read_image, write_image

    enhancer = shared_enhancer(ctx, args.checkpoint, args.precision)
    if ctx.is_main:
        options.report_path(enhancer, args)
    settings = enhancer.settings(**options.sampler_overrides(args))
    images = tqdm(total=len(plan), desc="images", unit="img", disable=len(plan) == 1 or not ctx.is_main,
                  dynamic_ncols=True)
    try:  # closed before gsad's last line when Ctrl-C or SIGTERM stops the run
        for src, dst in share(ctx, plan, images):
            try:
                pixels = read_image(src, max_pixels=options.max_pixels(args))
            except InputError as exc:
                report(str(exc))
                continue
            total = settings.steps * settings.ensemble
            try:
                with tqdm(total=total, desc=src.name, unit="step", leave=False, dynamic_ncols=True,
                          disable=not ctx.is_main) as bar:
                    out = enhancer.enhance(pixels, settings, tile=args.tile, exposure=args.exposure,
                                           callback=lambda i, n: bar.update(1))
                write_image(dst, out, overwrite=args.overwrite)
            except (InputError, ModelOutputError) as exc:
                report(f"{src}: {exc}" if isinstance(exc, ModelOutputError) else str(exc))
                continue
            tqdm.write(f"{src} -> {dst}", file=sys.stderr)
    finally:
        images.close()
