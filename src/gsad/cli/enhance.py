"""``gsad enhance``: image files and folders through the model, each result written atomically."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gsad.cli import options
from gsad.config import MAX_EXPOSURE, OUTPUT_FORMATS, RAW_WB_NAMES
from gsad.errors import InputError, ModelOutputError

if TYPE_CHECKING:
    from gsad.runtime.distributed import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input image; its suffix picks the format: .png .jpg .jpeg .tif .tiff "
                        ".webp .heic .avif .bmp .ppm) or folder (several inputs, a folder input, an existing "
                        "folder, or a path ending in '/'); folders are created and keep input names, with the "
                        "--format suffix")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="gsad .safetensors file, training run folder, or reference .pth (default: bundled model)")
    options.add_sampler_options(p)
    p.add_argument("--tile", type=options.tile_size, metavar="SIZE",
                   help="enhance in overlapping tiles of SIZE px (bounded memory for any image size); "
                        "0 never tiles; default: tiles of 512 for images over 1 megapixel")
    p.add_argument("--exposure", type=options.exposure, default=0.0, metavar="EV",
                   help=f"make the result brighter (+EV) or darker (-EV) than the model's choice, in stops "
                        f"(-{MAX_EXPOSURE:g} to {MAX_EXPOSURE:g})")
    options.add_max_megapixels(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    options.add_speed_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (inputs are never replaced)")
    files = p.add_argument_group("files", "formats, depth, colour and metadata of inputs and outputs")
    files.add_argument("--format", choices=OUTPUT_FORMATS, default="png",
                       help="format of the files a folder output gets (default png); a single output file's "
                            "format follows its suffix")
    files.add_argument("--bit-depth", type=int, choices=(8, 16), metavar="{8,16}",
                       help="bits per sample of the outputs; 16 only for PNG and TIFF (default: 16 where the input "
                            "has more than 8 bits, e.g. a 16-bit PNG or TIFF or a camera RAW, and the format holds "
                            "16, else 8)")
    files.add_argument("--quality", type=_quality, default=95, metavar="Q",
                       help="quality of lossy outputs, 1-100 (JPEG, written with 4:4:4 chroma; WebP, HEIC, AVIF; "
                            "default 95)")
    files.add_argument("--raw-wb", choices=RAW_WB_NAMES, default="camera",
                       help="white balance of camera RAW inputs: the camera's own (default) or estimated from the "
                            "image (grey world)")
    files.add_argument("--keep-profile", action="store_true",
                       help="convert each output back to its input's ICC colour profile (e.g. Display P3, Adobe RGB) "
                            "and embed that profile; default: outputs are sRGB and carry an sRGB profile")
    files.add_argument("--strip-metadata", action="store_true",
                       help="write no EXIF or XMP; default: the input's (camera, lens, exposure, date, GPS) is "
                            "carried where the format holds it, with Orientation 1 and Software naming gsad")


def _quality(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100, got {text!r}") from None
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100, got {value}")
    return value


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
        plan = on_main(ctx, lambda: plan_outputs(args.inputs, args.output, args.overwrite, report, args.checkpoint,
                                                 args.format))
        if not plan:
            return 1
        _check_depth(plan, args.bit_depth)
        if ctx.is_main:  # what a run stopped by SIGKILL or a power cut left beside this run's outputs
            for path in remove_stale_temporaries_of(dst for _, dst in plan):
                print(f"{path}: removed (a temporary file left by a stopped run)", file=sys.stderr)
        _enhance_plan(ctx, plan, args, report)
    return 1 if failures else 0


def _check_depth(plan: list[tuple[Path, Path]], bits: int | None) -> None:
    """``--bit-depth 16`` with an output format of 8 bits refuses the run before any work."""
    from gsad.imaging.pictures import DEEP_FORMATS, output_format

    if bits == 16:
        for _, dst in plan:
            if output_format(dst) not in DEEP_FORMATS:
                raise InputError(
                    f"{dst}: --bit-depth 16 needs a .png or .tif output ({output_format(dst)} holds 8 bits)"
                )


def _enhance_one(enhancer, settings, src: Path, dst: Path, args: argparse.Namespace, bar) -> None:
    """Read ``src`` with its depth, profile and metadata, enhance it, write ``dst``."""
    from gsad import __version__
    from gsad.imaging.metadata import with_software
    from gsad.imaging.pictures import DEEP_FORMATS, output_format, read_picture, write_picture

    picture = read_picture(src, max_pixels=options.max_pixels(args), raw_wb=args.raw_wb)
    bits = args.bit_depth or (16 if picture.depth == 16 and output_format(dst) in DEEP_FORMATS else 8)
    profile = picture.profile if args.keep_profile else None
    # 8-bit sRGB in and out: the model's rounded 8-bit output, as gsad always wrote it; else its floats
    as_float = bits == 16 or profile is not None
    out = enhancer.enhance(picture.pixels, settings, tile=args.tile, exposure=args.exposure,
                           callback=lambda i, n: bar.update(1), as_float=as_float)
    model = Path(enhancer.checkpoint).name if enhancer.checkpoint else "model"
    software = f"gsad {__version__} ({model})"
    exif, xmp = (None, None) if args.strip_metadata else (with_software(picture.exif, software), picture.xmp)
    write_picture(dst, out, bits=bits, quality=args.quality, profile=profile, exif=exif, xmp=xmp,
                  overwrite=args.overwrite)


def _enhance_plan(ctx: Context, plan: list[tuple[Path, Path]], args: argparse.Namespace,
                  report: Callable[[str], None]) -> None:
    """This rank's share of ``plan``: read, enhance, write; each failure reported and skipped."""
    from tqdm import tqdm

    from gsad.enhance.parallel import share, shared_enhancer

    enhancer = shared_enhancer(ctx, args.checkpoint, args.precision, args.engine)
    if ctx.is_main:
        options.report_path(enhancer, args)
    settings = enhancer.settings(**options.sampler_overrides(args))
    images = tqdm(total=len(plan), desc="images", unit="img", disable=len(plan) == 1 or not ctx.is_main,
                  dynamic_ncols=True)
    try:  # closed before gsad's last line when Ctrl-C or SIGTERM stops the run
        for src, dst in share(ctx, plan, images):
            total = settings.steps * settings.ensemble
            try:
                with tqdm(total=total, desc=src.name, unit="step", leave=False, dynamic_ncols=True,
                          disable=not ctx.is_main) as bar:
                    _enhance_one(enhancer, settings, src, dst, args, bar)
            except (InputError, ModelOutputError) as exc:
                report(f"{src}: {exc}" if isinstance(exc, ModelOutputError) else str(exc))
                continue
            tqdm.write(f"{src} -> {dst}", file=sys.stderr)
    finally:
        images.close()
