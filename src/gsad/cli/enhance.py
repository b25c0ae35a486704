"""``gsad enhance``: image files and folders through the model, each result written atomically; or one
video file, frame by frame (:mod:`gsad.enhance.video`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gsad.cli import options
from gsad.config import MAX_EXPOSURE, OUTPUT_FORMATS, RAW_WB_NAMES
from gsad.errors import InputError, ModelOutputError
from gsad.imaging.video import CODECS, DEFAULT_BLEND, DEFAULT_CRF, MAX_CRF, is_output_video_file, is_video_file

if TYPE_CHECKING:
    from gsad.runtime.distributed import Context


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files and/or folders of images, or one video file (.mp4, .mov, .mkv, ...)")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input image; its suffix picks the format: .png .jpg .jpeg .tif .tiff "
                        ".webp .heic .avif .bmp .ppm) or folder (several inputs, a folder input, an existing "
                        "folder, or a path ending in '/'); folders are created and keep input names, with the "
                        "--format suffix; for a video, an .mp4, .mov or .mkv file")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="gsad .safetensors file, training run folder, reference .pth, or 'default' for the "
                        "bundled model (the default)")
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
    add_video_options(p)


def add_video_options(p: argparse.ArgumentParser) -> None:
    """Options of a video input (needs the ``video`` extra, PyAV)."""
    g = p.add_argument_group("video (a video input; needs PyAV: gsad[video] or gsad[formats]); audio is copied, "
                             "frame timing and rotation kept")
    g.add_argument("--codec", choices=tuple(CODECS), default="h264", help="video encoder (default h264)")
    g.add_argument("--crf", type=options.whole(0, MAX_CRF), default=DEFAULT_CRF, metavar="N",
                   help=f"constant rate factor, 0 (lossless) to {MAX_CRF}; lower is better and larger "
                        f"(default {DEFAULT_CRF})")
    g.add_argument("--start-time", type=options.real(0.0, 1e7), default=0.0, metavar="S",
                   help="start S seconds into the video (to try settings on a few seconds)")
    g.add_argument("--duration", type=options.real(0.0, 1e7, open_low=True), metavar="S",
                   help="enhance only S seconds (default: to the end)")
    g.add_argument("--temporal-blend", type=options.real(0.0, 1.0), default=DEFAULT_BLEND, metavar="B",
                   help=f"average each frame's result with the previous result, weight up to B (0-1), where "
                        f"the input did not change beyond its noise: steadier still parts (default "
                        f"{DEFAULT_BLEND:g}; 0: off, each frame on its own)")


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

    args.checkpoint = options.model(args.checkpoint)
    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        options.print_error(message)

    # Under torchrun each rank enhances its share of the images (gsad.enhance.parallel); else a world of one.
    with process_group(args.device) as ctx:
        if any(is_video_file(text) for text in args.inputs):
            return _run_video(ctx, args)
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


def _run_video(ctx: Context, args: argparse.Namespace) -> int:
    """One video input to one video output. Under torchrun every rank enhances its chunks of the
    frames and rank 0 writes the file (:func:`gsad.enhance.video.enhance_video`); rank 0 checks the
    arguments first, and a problem there stops every rank (:func:`~gsad.runtime.distributed.on_main`)."""
    from gsad.runtime.distributed import on_main

    src, dst, total = on_main(ctx, lambda: _check_video(args))
    _enhance_video(ctx, src, dst, total, args)
    return 0


def _check_video(args: argparse.Namespace) -> tuple[Path, Path, int | None]:
    """The video input and output, checked before the model loads, and the span's expected frame count;
    the temporaries a killed run left for the output are removed."""
    from gsad.checkpoints import resolve_checkpoint
    from gsad.files import OutputPlan, remove_stale_temporaries_of
    from gsad.imaging.video import probe_video

    if len(args.inputs) != 1:
        raise InputError("a video is enhanced on its own: give one video input (gsad enhance CLIP -o OUT.mp4)")
    src, dst = Path(args.inputs[0]), Path(args.output)
    if not src.is_file():
        raise InputError(f"{src}: no such file")
    if not is_output_video_file(dst):
        raise InputError(f"{dst}: a video input needs a video output; name an .mp4, .mov or .mkv file")
    inputs = [src] + ([resolve_checkpoint(args.checkpoint)] if args.checkpoint is not None else [])
    OutputPlan(inputs).check(dst, args.overwrite, source=src)
    for path in remove_stale_temporaries_of([dst]):
        print(f"{path}: removed (a temporary file left by a stopped run)", file=sys.stderr)
    info = probe_video(src)  # a missing extra or an unreadable video is named before the model loads
    if info.duration > 0 and args.start_time >= info.duration:
        raise InputError(f"{src}: --start-time {args.start_time:g} s is past the end of the video "
                         f"({info.duration:g} s)")
    return src, dst, info.frames_between(args.start_time, args.duration)


def _enhance_video(ctx: Context, src: Path, dst: Path, total: int | None, args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from gsad.enhance.parallel import shared_enhancer
    from gsad.enhance.video import enhance_video, video_settings

    enhancer = shared_enhancer(ctx, args.checkpoint, args.precision, args.engine)
    if ctx.is_main:
        options.report_path(enhancer, args)
    settings = video_settings(enhancer, **options.sampler_overrides(args))
    with tqdm(total=total, desc=src.name, unit="frame", dynamic_ncols=True, disable=not ctx.is_main) as bar:
        result = enhance_video(enhancer, src, dst, settings, tile=args.tile, exposure=args.exposure,
                               blend=args.temporal_blend, codec=args.codec, crf=args.crf,
                               start_time=args.start_time, duration=args.duration, overwrite=args.overwrite,
                               on_frame=lambda: bar.update(1), ctx=ctx)
    if result is not None:
        audio = f", audio copied ({result.audio_packets} packets)" if result.audio_packets else ""
        print(f"{src} -> {dst} ({result.frames} frames{audio})", file=sys.stderr)
