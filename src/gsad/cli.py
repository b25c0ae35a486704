"""The ``gsad`` command line: flags -> config -> library call; user errors -> one line.

Every subcommand is a pair of functions, ``_add_<name>(parser)`` and ``_run_<name>(args)``,
listed in ``COMMANDS``. ``main(argv)`` returns the exit code: 0 success, 1 when something
failed (a :class:`GsadError`, printed as one line naming the file and the problem), 2 for
usage errors (argparse).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from gsad import __version__
from gsad.config import (
    LOSS_WEIGHTINGS,
    MAX_ENSEMBLE,
    MAX_EXPOSURE,
    MAX_STEPS,
    MAX_TILE,
    PRESETS,
    SAMPLER_FIELDS,
    SAMPLER_NAMES,
    START_NAMES,
    SamplerConfig,
    check_beta,
    check_detail,
    check_ensemble,
    check_exposure,
    check_int,
    check_real,
    check_seed,
    check_steps,
    with_overrides,
)
from gsad.errors import ConfigError, GsadError, InputError

PROG = "gsad"


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with gsad's one-line errors: ``gsad: error: argument --steps: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(2)


def _checked(parse: Callable[[str], object], check: Callable[[object, str], object], what: str) -> Callable:
    """An argparse type: ``parse`` the text, then apply gsad.config's checker (the same one the
    library and checkpoint loading use), so a flag, an API call and a stored value share one rule."""

    def convert(text: str) -> object:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        try:
            return check(value, "")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _whole(low: int, high: int) -> Callable[[str], int]:
    return _checked(int, lambda v, name: check_int(v, name, low, high), "a whole number")


def _real(low: float, high: float, open_low: bool = False, open_high: bool = False) -> Callable[[str], float]:
    return _checked(float, lambda v, name: check_real(v, name, low, high, open_low, open_high), "a number")


_positive_int = _whole(1, 2**31 - 1)
_count = _whole(0, 2**31 - 1)
_tile = _whole(0, MAX_TILE)
_workers = _whole(0, 256)
_port = _whole(1, 65535)
_steps = _checked(int, check_steps, "a whole number")
_seed = _checked(int, check_seed, "a whole number")
_ensemble = _checked(int, check_ensemble, "a whole number")
_detail = _checked(float, check_detail, "a number")
_beta = _checked(float, check_beta, "a number")
_exposure = _checked(float, check_exposure, "a number")
_megapixels = _real(0.0, 1e6, open_low=True)
_learning_rate = _real(0.0, 1.0, open_low=True)
_ema_decay = _real(0.0, 1.0, open_high=True)
_weight = _real(0.0, 1e6)


def _unit_number(text: str, closed: bool) -> float:
    """A float in (0, 1), or in [0, 1] when ``closed``; argparse's one-line error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"must lie in {'[0, 1]' if closed else '(0, 1)'}, got {value}")
    return value


def _fraction(text: str) -> float:
    return _unit_number(text, closed=True)


def add_max_megapixels(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels``: the size limit of image files read (gsad.images.MAX_PIXELS)."""
    from gsad.images import MAX_PIXELS

    parser.add_argument("--max-megapixels", type=_megapixels, default=MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse image files larger than MP megapixels, from their header, before decoding "
                             f"(default {MAX_PIXELS / 1e6:g}; protects against decompression bombs)")


def max_pixels(args: argparse.Namespace) -> int:
    return int(args.max_megapixels * 1e6)


def _scale(text: str) -> float:
    """A float in (0, 1]."""
    return 1.0 if text.strip() in ("1", "1.0") else _unit_number(text, closed=False)


def _sampler_flags() -> dict[str, dict[str, object]]:
    """argparse keywords of the flag of each SamplerConfig field (the one table behind every
    command's sampler flags)."""
    return {
        "sampler": {"choices": SAMPLER_NAMES,
                    "help": "reference: the paper's ancestral DDPM sampler; ddim: deterministic DDIM (eta 0); "
                            "dpmpp: deterministic DPM-Solver++(2M), fewer steps"},
        "steps": {"type": _steps,
                  "help": f"number of sampling steps, 1-{MAX_STEPS}, fewer where the betas would drive alpha_bar "
                          "below 1e-30 (paper: 20 for LOL-v1, 10 for LOL-v2)"},
        "beta_start": {"type": _beta, "help": "first beta of the short linear test schedule (paper LOL-v1: 6e-4)"},
        "beta_end": {"type": _beta, "help": "last beta of the short linear test schedule (paper LOL-v1: 0.88)"},
        "seed": {"type": _seed,
                 "help": "seed of the sampler's noise, 0 to 2**32 - 1; same seed, same output on any device"},
        "start": {"choices": START_NAMES,
                  "help": "noise: start the trajectory from pure noise (the paper); exposure: from the input's "
                          "global auto-exposure, noised to the schedule's first level (warm start); "
                          "soft-exposure: from the soft auto-exposure (no gain for well-exposed inputs)"},
        "ensemble": {"type": _ensemble, "metavar": "N",
                     "help": f"average N trajectories run on flipped/transposed copies of the input "
                             f"(1-{MAX_ENSEMBLE}): less residual noise, N times the time"},
        "detail": {"type": _detail, "metavar": "S",
                   "help": "strength 0-1 of the detail restoration after sampling: the input's fine detail "
                           "put back where it stands above the input's noise (0: off, the paper)"},
    }


def sampler_flag(name: str, prefix: str = "") -> str:
    """The flag of SamplerConfig field ``name``: ``--sampler``, else ``--PREFIXname`` with dashes."""
    return "--sampler" if name == "sampler" else f"--{prefix}{name.replace('_', '-')}"


def _sampler_dest(name: str, prefix: str) -> str:
    return sampler_flag(name, prefix)[2:].replace("-", "_")


def add_sampler_options(
    parser: argparse.ArgumentParser, prefix: str = "", title: str = "sampler (defaults come from the checkpoint)"
) -> None:
    """One flag per SamplerConfig field (:data:`~gsad.config.SAMPLER_FIELDS`), unset (None) by
    default: ``--sampler``, ``--steps`` ... ``--ensemble`` for enhance, evaluate and convert;
    ``gsad train`` spells them ``--sampler-steps`` ... (``prefix="sampler-"``), since its own
    ``--seed`` is the training seed."""
    flags = _sampler_flags()
    g = parser.add_argument_group(title)
    for name in SAMPLER_FIELDS:  # a field without an entry in the table is a KeyError, not a lost option
        g.add_argument(sampler_flag(name, prefix), dest=_sampler_dest(name, prefix), **flags[name])


def add_speed_options(parser: argparse.ArgumentParser, evaluate: bool = False) -> None:
    """--precision and --verbose, shared by enhance and evaluate (see gsad.fastpath)."""
    from gsad.fastpath import PRECISION_CHOICES, TOLERANCE_LEVELS

    exact = (" (auto means fp32 for a reference .pth checkpoint; give fp32 to score any model exactly as "
             "fp32 computes it)") if evaluate else ""
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                        help=f"network precision: auto (default): the fastest of fp32/bf16/fp16 on this device "
                             f"whose output stays within {TOLERANCE_LEVELS:g} level of 255 (mean) of fp32, from the "
                             f"hardware and a short probe cached per machine{exact}; fp32 (exact, reproduces the "
                             "reference code), bf16 (CPUs with avx512_bf16/amx_bf16, GPUs), fp16 (GPUs)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="say which network path (precision, Winograd, layout) was taken and why")


def report_path(enhancer: object, args: argparse.Namespace) -> None:
    """With --verbose, one stderr line naming the enhancer's network path."""
    if args.verbose:
        print(f"{PROG}: network: {enhancer.fast_path.describe()}", file=sys.stderr)


def sampler_overrides(args: argparse.Namespace, prefix: str = "") -> dict[str, object]:
    """The sampler flags given on the command line (None where unset), keyed by SamplerConfig field."""
    return {k: getattr(args, _sampler_dest(k, prefix)) for k in SAMPLER_FIELDS}


#: Old spellings of ``gsad train``'s sampler flags kept working (scripts use them), hidden from
#: --help: flag -> the SamplerConfig field it sets.
TRAIN_HIDDEN_ALIASES = {"--beta-start": "beta_start", "--beta-end": "beta_end"}


# ----------------------------------------------------------------------------------------
# enhance
# ----------------------------------------------------------------------------------------


def _add_enhance(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders of images")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="output file (one input image) or folder (several inputs, a folder input, an existing "
                        "folder, or a path ending in '/'); folders are created and keep input names as .png")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="gsad .safetensors file, training run folder, or reference .pth (default: bundled model)")
    add_sampler_options(p)
    p.add_argument("--tile", type=_tile, metavar="SIZE",
                   help="enhance in overlapping tiles of SIZE px (bounded memory for any image size); "
                        "0 never tiles; default: tiles of 512 for images over 1 megapixel")
    p.add_argument("--exposure", type=_exposure, default=0.0, metavar="EV",
                   help=f"make the result brighter (+EV) or darker (-EV) than the model's choice, in stops "
                        f"(-{MAX_EXPOSURE:g} to {MAX_EXPOSURE:g})")
    add_max_megapixels(p)
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    add_speed_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (inputs are never replaced)")


def plan_outputs(
    inputs: Sequence[str],
    output: str,
    overwrite: bool,
    report: Callable[[str], None],
    checkpoint: str | None = None,
) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for ``gsad enhance``, every destination checked before any work.

    Problems are reported and the image skipped: a destination that is one of the run's inputs
    (any input image, or the checkpoint; after resolving links and case) is refused even with
    ``overwrite``, as is a destination two inputs map to; an existing one needs ``overwrite``;
    an output folder that cannot be made or written refuses the whole run.
    """
    from gsad.files import OutputPlan, check_folder
    from gsad.images import is_image_file, list_images

    sources: list[Path] = []
    folder_input = False
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            folder_input = True
            found = list_images(path)
            if not found:
                report(f"{path}: folder holds no image files")
            sources.extend(found)
        elif path.exists():
            sources.append(path)
        else:
            report(f"{path}: no such file or folder")
    out = Path(output)
    to_folder = folder_input or len(inputs) > 1 or out.is_dir() or output.endswith(("/", os.sep))
    if to_folder and out.exists() and not out.is_dir():
        report(f"{out}: exists and is not a folder; several images or a folder input need an output folder")
        return []
    if not to_folder and not is_image_file(out):
        report(f"{out}: unknown output image format {out.suffix or '(no suffix)'!r}; name a .png/.jpg file or a folder")
        return []
    if to_folder and sources:
        try:
            check_folder(out)
        except InputError as exc:
            report(str(exc))
            return []
    run_inputs = list(sources)
    if checkpoint is not None:
        from gsad.checkpoints import resolve_checkpoint

        run_inputs.append(resolve_checkpoint(checkpoint))
    outputs = OutputPlan(run_inputs)
    plan: list[tuple[Path, Path]] = []
    for src in sources:
        dst = out / f"{src.stem}.png" if to_folder else out
        try:
            plan.append((src, outputs.check(dst, overwrite, source=src)))
        except InputError as exc:
            report(str(exc))
    return plan


def _run_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gsad.errors import ModelOutputError
    from gsad.images import read_image, write_image
    from gsad.parallel import share, shared_enhancer
    from gsad.training.distributed import cleanup, setup

    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        _error(message)

    # Under torchrun each rank enhances its share of the images (gsad.parallel); else a world of one.
    ctx = setup(args.device)
    plan = ctx.broadcast(
        plan_outputs(args.inputs, args.output, args.overwrite, report, args.checkpoint) if ctx.is_main else None
    )
    if not plan:
        cleanup(ctx)
        return 1
    enhancer = shared_enhancer(ctx, args.checkpoint, args.precision)
    if ctx.is_main:
        report_path(enhancer, args)
    settings = enhancer.settings(**sampler_overrides(args))
    images = tqdm(total=len(plan), desc="images", unit="img", disable=len(plan) == 1 or not ctx.is_main,
                  dynamic_ncols=True)
    for src, dst in share(ctx, plan, images):
        try:
            pixels = read_image(src, max_pixels=max_pixels(args))
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
    images.close()
    cleanup(ctx)
    return 1 if failures else 0


# ----------------------------------------------------------------------------------------
# convert
# ----------------------------------------------------------------------------------------


def _add_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="IN", help="reference .pth state dict (or any checkpoint gsad loads)")
    p.add_argument("target", metavar="OUT", help="gsad .safetensors file to write")
    add_sampler_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _run_convert(args: argparse.Namespace) -> int:
    from gsad.checkpoints import load_checkpoint, resolve_checkpoint, save_checkpoint
    from gsad.files import OutputPlan
    target = Path(args.target)
    if target.suffix != ".safetensors":
        raise InputError(f"{target}: the output must be a .safetensors file")
    OutputPlan([resolve_checkpoint(args.source)]).check(target, args.overwrite)
    model, sampler, _ = load_checkpoint(args.source)
    settings = with_overrides(sampler, **sampler_overrides(args))
    save_checkpoint(target, model, settings, {"converted_from": Path(args.source).name}, overwrite=args.overwrite)
    print(f"{args.source} -> {target} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


# ----------------------------------------------------------------------------------------
# synthesize
# ----------------------------------------------------------------------------------------


def _add_synthesize(p: argparse.ArgumentParser) -> None:
    from gsad.data.synthesize import RANGES

    p.add_argument("photos", nargs="?", metavar="PHOTOS_DIR",
                   help="folder of normal-light photos (omit with --bundled)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="writes OUT_DIR/low/NAME.png (darkened) and OUT_DIR/high/NAME.png (the photo)")
    p.add_argument("--bundled", action="store_true",
                   help="use the colour photos bundled with scikit-image instead of PHOTOS_DIR")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed, 0 to 2**32 - 1; the same seed gives the same bytes (default 0)")
    p.add_argument("--count", type=_positive_int, help="use only the first N photos (by name)")
    p.add_argument("--ranges", choices=tuple(RANGES), default="default",
                   help="degradation preset: 'default' (the first default model's training camera), 'holdout' "
                        "(a different camera, darker and noisier), 'broad' (many cameras, tone curves, JPEG, blur; "
                        "the second default model's training pipeline) or a held-out family outside broad: "
                        "dark-noisy, phone-jpeg, color-cast, near-normal (default: default)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _run_synthesize(args: argparse.Namespace) -> int:
    from gsad.data.synthesize import bundled_photos, named_ranges, synthesize_folder

    if args.bundled == (args.photos is not None):
        raise InputError("give either PHOTOS_DIR or --bundled")
    if args.bundled:
        from gsad.metrics import require_skimage

        require_skimage()  # the bundled photos are scikit-image's
    source = bundled_photos() if args.bundled else args.photos
    ranges = named_ranges(args.ranges)
    names = synthesize_folder(source, args.output, seed=args.seed, count=args.count, ranges=ranges,
                              overwrite=args.overwrite, progress=True)
    print(f"wrote {len(names)} pairs to {args.output}/low and {args.output}/high")
    return 0


# ----------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------


_EVALUATE_EPILOG = """\
pipelines (--checkpoint):
  reference  the reference test script's (default on LOL layouts): LOL-v1 and LOL-v2-real
             inputs mirror-padded 8 px top/bottom and 4 px left/right (OpenCV BORDER_REFLECT)
             whatever the network and cropped back, LOL-v2-synthetic unpadded; ONE noise
             stream seeded once (--seed) for the whole run, images in sorted name order, so an
             image's result depends on the images before it, as in the reference.
  enhance    each image exactly as 'gsad enhance' makes it (default on low/ + high/ folders):
             its own noise seeded with --seed, padded only to the network's stride.
Scores use the reference's arithmetic: GT-mean grey = 0.299 R + 0.587 G + 0.114 B (float32
means), clip, truncate to 8 bits; PSNR on 8-bit images; SSIM scikit-image 7x7 per channel.
e.g. the paper's LOL-v2-real settings with its released weights:
  gsad evaluate --data LOLv2 --layout lol-v2-real --checkpoint lolv2_real_gen.pth \\
      --sampler reference --steps 10 --beta-start 9e-4 --beta-end 0.85 --seed 4357 \\
      --start noise --ensemble 1 --outputs out/
"""


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    from gsad.data.layouts import LAYOUTS, SPLITS
    from gsad.evaluation import PIPELINES

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = _EVALUATE_EPILOG
    p.add_argument("--data", required=True, metavar="DIR", help="paired dataset (LOL-v1, LOL-v2 or low/ + high/)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="dataset layout (default: detected)")
    p.add_argument("--split", default="test", choices=SPLITS,
                   help="LOL split to score (default test; ignored by the low/ + high/ layout)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="C", help="enhance the low images with this model, then score")
    src.add_argument("--predictions", metavar="DIR",
                     help="score another method's outputs in DIR, matched to the pairs by file stem")
    add_sampler_options(p)
    p.add_argument("--pipeline", default="auto", choices=("auto", *PIPELINES),
                   help="how --checkpoint runs on the pairs (see below); auto: reference on LOL layouts, "
                        "enhance on low/ + high/ folders")
    p.add_argument("--cuda-noise", action="store_true",
                   help="draw the reference pipeline's noise stream on the CUDA device, as the reference code "
                        "does on a GPU (needs --device cuda; the default CPU stream gives the same noise anywhere)")
    p.add_argument("--device", default="auto", help="device for --checkpoint: auto, cpu, cuda or cuda:N")
    p.add_argument("--outputs", metavar="DIR",
                   help="with --checkpoint: also write each enhanced image (before GT-mean scaling) to "
                        "DIR/<low image name>.png")
    add_speed_options(p, evaluate=True)
    p.add_argument("--report", metavar="FILE.json", help="write the full report (summary and per image) as JSON")
    p.add_argument("--csv", metavar="FILE.csv", help="write per-image scores as CSV")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing --outputs images and --report/--csv files (inputs are never replaced)")
    add_max_megapixels(p)
    p.add_argument("--per-image", action="store_true", help="also print one table row per image")


def _run_evaluate(args: argparse.Namespace) -> int:
    from gsad.data.layouts import detect_layout, find_pairs
    from gsad.evaluation import (
        default_pipeline,
        evaluate,
        format_table,
        match_predictions,
        model_predictor,
        write_report_csv,
        write_report_json,
    )
    from gsad.files import OutputPlan
    from gsad.metrics import LPIPS, require_skimage

    require_skimage()
    if args.outputs and not args.checkpoint:
        raise InputError("--outputs: only with --checkpoint (--predictions are already files)")
    layout = detect_layout(args.data) if args.layout == "auto" else args.layout
    pairs = find_pairs(args.data, layout=layout, split=args.split)
    inputs = [p for pair in pairs for p in (pair.low, pair.high)]
    if args.predictions:
        inputs += match_predictions(pairs, args.predictions).values()
    if args.checkpoint:
        from gsad.checkpoints import resolve_checkpoint

        inputs.append(resolve_checkpoint(args.checkpoint))
    plan = OutputPlan(inputs)  # reports (and --outputs images) checked before anything is scored
    for path in (args.report, args.csv):
        if path:
            plan.check(path, args.overwrite)
    reason = LPIPS.unavailable_reason()
    if reason:
        print(f"{PROG}: note: {reason}", file=sys.stderr)
    lpips = None if reason else LPIPS()
    predict = None
    if args.checkpoint:
        from gsad.fastpath import evaluation_precision
        from gsad.parallel import predict_shared, shared_enhancer
        from gsad.training.distributed import cleanup, setup

        ctx = setup(args.device)  # under torchrun: ranks enhance their shares, rank 0 scores (gsad.parallel)
        enhancer = shared_enhancer(ctx, args.checkpoint, evaluation_precision(args.precision, args.checkpoint))
        if ctx.is_main:
            report_path(enhancer, args)
        settings = enhancer.settings(**sampler_overrides(args))
        pipeline = default_pipeline(layout) if args.pipeline == "auto" else args.pipeline
        predict = model_predictor(enhancer, settings, pipeline, layout, cuda_noise=args.cuda_noise)
        if ctx.is_main:
            print(f"{PROG}: {pipeline} pipeline, {layout} layout, {settings}", file=sys.stderr)

        if ctx.distributed:
            if pipeline == "reference":  # one noise stream over the images in order: rank 0 runs them all
                cleanup(ctx)
                if not ctx.is_main:
                    return 0
            else:
                outputs = predict_shared(ctx, pairs, predict, max_pixels(args))
                cleanup(ctx)
                if not ctx.is_main:
                    return 0

                def predict(name, low):
                    return outputs[name]

    report = evaluate(pairs, predict=predict, predictions_dir=args.predictions, lpips=lpips, progress=True,
                      max_pixels=max_pixels(args), outputs=args.outputs, overwrite=args.overwrite, plan=plan)
    print(format_table(report, per_image=args.per_image))
    if args.report:
        write_report_json(args.report, report, overwrite=args.overwrite)
    if args.csv:
        write_report_csv(args.csv, report, overwrite=args.overwrite)
    return 0


# ----------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------

_TRAIN_EPILOG = """\
Every option can also be set in the YAML file given to --config, under the option's name with
underscores (max_steps: 1000000); flags win over the file, the file over the defaults. The
YAML file may also hold 'network:' (overrides of the preset's NetworkConfig fields, stage 1)
and 'sampler:' (sampler, steps, beta_start, beta_end, seed). Shipped configs with the paper's
settings, usable by name:
%(shipped)s
e.g.
  gsad train --config lolv1_uncertainty --data LOLv1 --val-data LOLv1
  gsad train --config lolv1_gsad --data LOLv1 --val-data LOLv1

The run directory holds config.yaml, log.csv, 'latest' (the newest EMA checkpoint, so
'gsad enhance --checkpoint RUN_DIR' works), checkpoints/step_NNNNNNN.safetensors (EMA
weights) and .state.pt (for --resume), and for stage gsad the frozen uncertainty model.
Data-parallel: torchrun --nproc_per_node=N -m gsad train ... (batch size is global).
"""


def _add_train(p: argparse.ArgumentParser) -> None:
    import textwrap

    from gsad.data.layouts import LAYOUTS
    from gsad.data.synthesize import RANGES
    from gsad.training.config import AMP_MODES, STAGES, shipped_configs

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    shipped = textwrap.fill(", ".join(shipped_configs()) or "none", width=92, initial_indent="  ",
                            subsequent_indent="  ")
    p.epilog = _TRAIN_EPILOG % {"shipped": shipped}
    g = p.add_argument_group("run")
    g.add_argument("--config", metavar="FILE.yaml", help="YAML config file, or the name of a shipped config")
    g.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/STAGE-DATE-TIME)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last saved state (same optimizer, EMA, step, data "
                        "order); only steps, logging, validation, workers and device may change")
    g.add_argument("--device", help="auto (CUDA when available; default), cpu or cuda")
    g.add_argument("--amp", choices=AMP_MODES, help="autocast precision of the network (default off)")
    g.add_argument("--seed", type=_seed,
                   help="seed of data order, crops and noise, 0 to 2**32 - 1 (default 0; rank r uses seed + r)")
    g.add_argument("--num-workers", type=_workers, help="DataLoader worker processes, 0-256 (default 0)")
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR",
                   help="training pairs (LOL layout or low/ + high/), or photos with --synthetic")
    g.add_argument("--layout", choices=("auto", *LAYOUTS),
                   help="layout of --data (default auto)")
    g.add_argument("--synthetic", action=argparse.BooleanOptionalAction,
                   help="--data is a folder of normal photos, darkened on the fly into training pairs")
    g.add_argument("--crop", type=_positive_int, help="side of the random square crops (default 96)")
    g.add_argument("--ranges", choices=tuple(RANGES),
                   help="degradation preset of --synthetic training: default (the first default model's camera), "
                        "broad (many cameras, tone curves, JPEG, blur; the second's), holdout or a held-out family")
    g.add_argument("--min-scale", type=_scale, metavar="Z",
                   help="multi-scale crops: downscale each image by a random factor in [Z, 1] (log-uniform) "
                        "before cropping, so large photos give detailed and global crops (default 1: off)")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction,
                   help="keep decoded training images in memory (faster for a few large photos; default off)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random horizontal flips (default on)")
    g = p.add_argument_group("model")
    g.add_argument("--stage", choices=STAGES,
                   help="uncertainty: stage 1, U-Net with uncertainty head (default); gsad: stage 2, from --init")
    g.add_argument("--init", metavar="RUN_OR_CHECKPOINT",
                   help="starting weights: stage gsad needs the stage-1 run directory or checkpoint (it also "
                        "gives the uncertainty map and the architecture); optional for stage uncertainty (a stage-2 "
                        "model gives its U-Net, with a new uncertainty head)")
    g.add_argument("--preset", choices=tuple(PRESETS), help="network preset of stage 1 (default tiny)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=_positive_int, help="train until this step (default 1000)")
    g.add_argument("--batch-size", type=_positive_int, help="global batch size, split over processes (default 8)")
    g.add_argument("--lr", type=_learning_rate, help="Adam learning rate, constant, in (0, 1] (default 1e-4)")
    g.add_argument("--ema-decay", type=_ema_decay, help="EMA decay of the saved weights, in [0, 1) (default 0.9999)")
    g.add_argument("--ema-start", type=_count, help="step until which the EMA copies the weights (default 0)")
    g.add_argument("--structure-weight", type=_weight,
                   help="weight of the structure loss in stage gsad (default 1; 0 turns it off)")
    g.add_argument("--num-clusters", type=_positive_int,
                   help="Ward clusters per crop of the structure loss (default 6)")
    g.add_argument("--patch-size", type=_positive_int, help="patch side of the structure loss (default 8)")
    g.add_argument("--loss-weighting", choices=LOSS_WEIGHTINGS,
                   help="per-sample weight of the noise loss: eps (the paper, default) or truncated-snr "
                        "(max of the noise and the x0 error: high noise levels count more)")
    g.add_argument("--warm-start", type=_fraction, metavar="FRACTION",
                   help="fraction (0-1) of the samples at the samplers' start noise levels (alpha_bar <= 0.75) "
                        "noised from the start estimate of the input (that of --sampler-start: exposure or "
                        "soft-exposure; exposure when it is noise) instead of the target, so the model learns to "
                        "clean the warm start's noise (default 0: the paper)")
    g = p.add_argument_group("checkpoints and logs")
    g.add_argument("--checkpoint-every", type=_positive_int, help="save a checkpoint every N steps (default 1000)")
    g.add_argument("--keep-states", type=_positive_int, help="resumable .state.pt files kept (default 2)")
    g.add_argument("--log-every", type=_positive_int, help="write a log.csv row every N steps (default 50)")
    g = p.add_argument_group("validation")
    g.add_argument("--val-data", metavar="DIR", help="validation pairs (test split of a LOL layout, or low/ + high/)")
    g.add_argument("--val-every", type=_positive_int, help="validate every N steps (default 1000)")
    g.add_argument("--val-count", type=_positive_int, help="validate on the first N pairs by name (default all)")
    defaults = SamplerConfig()
    add_sampler_options(p, prefix="sampler-", title=(
        f"sampler of validation, also stored in the checkpoints as their defaults (default {defaults.sampler}, "
        f"{defaults.steps} steps, beta {defaults.beta_start:g} -> {defaults.beta_end:g}, seed {defaults.seed}, "
        f"start {defaults.start}, ensemble {defaults.ensemble}); the flags of enhance, spelt --sampler-NAME"))
    flags = _sampler_flags()
    for old, name in TRAIN_HIDDEN_ALIASES.items():
        p.add_argument(old, dest=_sampler_dest(name, "sampler-"), type=flags[name]["type"], help=argparse.SUPPRESS)


#: TrainConfig fields without a flag of their own: the architecture comes from --preset (or a
#: YAML ``network`` mapping); the sampler settings have their own flags.
_TRAIN_NOT_FLAGS = ("network", "sampler")


def _run_train(args: argparse.Namespace) -> int:
    import dataclasses

    from gsad.training import TrainConfig, load_train_config, train

    keys = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _TRAIN_NOT_FLAGS]
    overrides: dict[str, object] = {k: getattr(args, k) for k in keys}
    sampler = sampler_overrides(args, prefix="sampler-")
    overrides["sampler"] = {k: v for k, v in sampler.items() if v is not None} or None
    config = load_train_config(args.config, overrides, resume=args.resume)
    run_dir = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"run directory: {run_dir}")
    return 0


# ----------------------------------------------------------------------------------------
# tune-schedule
# ----------------------------------------------------------------------------------------


def _number_list(one: Callable[[str], object]) -> Callable[[str], tuple]:
    """Comma-separated values, each parsed and checked by the single-value type ``one``."""

    def parse(text: str) -> tuple:
        values = tuple(one(v.strip()) for v in text.split(",") if v.strip())
        if not values:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
        return values

    return parse


def _choice_list(choices: Sequence[str]) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        bad = [v for v in values if v not in choices]
        if not values or bad:
            raise argparse.ArgumentTypeError(f"expected some of {','.join(choices)}, got {text!r}")
        return values

    return parse


def _add_tune_schedule(p: argparse.ArgumentParser) -> None:
    from gsad.data.layouts import LAYOUTS, SPLITS
    from gsad.tuning import DEFAULT_BETA_ENDS, DEFAULT_BETA_STARTS, DEFAULT_STEPS, METRICS

    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="gsad .safetensors file or run folder to tune (written in place unless --output)")
    p.add_argument("--data", required=True, metavar="DIR", help="validation pairs (LOL layouts or low/ + high/)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="dataset layout")
    p.add_argument("--split", default="test", choices=SPLITS, help="LOL split to use (default test)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="reference",
                   help="sampler to tune (default reference)")
    p.add_argument("--steps", type=_number_list(_steps), default=DEFAULT_STEPS, metavar="N[,N...]",
                   help=f"step counts to try (default {','.join(map(str, DEFAULT_STEPS))})")
    p.add_argument("--beta-starts", type=_number_list(_beta), default=DEFAULT_BETA_STARTS, metavar="B[,B...]",
                   help=f"first betas to try (default {','.join(map(str, DEFAULT_BETA_STARTS))})")
    p.add_argument("--beta-ends", type=_number_list(_beta), default=DEFAULT_BETA_ENDS, metavar="B[,B...]",
                   help=f"last betas to try (default {','.join(map(str, DEFAULT_BETA_ENDS))})")
    p.add_argument("--starts", type=_choice_list(START_NAMES), default=("noise",), metavar="S[,S...]",
                   help="trajectory starts to try: noise (the paper), exposure (warm start from the input's "
                        "auto-exposure); default noise")
    p.add_argument("--metric", choices=METRICS, default="psnr",
                   help="what picks the winner: mean psnr (default; brightness errors weigh most) or mean ssim "
                        "(residual noise and lost detail weigh more); the other breaks ties after fewer "
                        "network evaluations (steps x ensemble)")
    p.add_argument("--ensembles", type=_number_list(_ensemble), default=(1,), metavar="N[,N...]",
                   help=f"self-ensemble sizes to try (1-{MAX_ENSEMBLE} trajectories on flipped/transposed copies, "
                        "averaged; default 1)")
    p.add_argument("--max-evaluations", type=_positive_int, metavar="N",
                   help="time budget: skip settings with more than N network evaluations per image "
                        "(steps x ensemble)")
    p.add_argument("--seed", type=_seed, help="sampler seed, 0 to 2**32 - 1 (default: the checkpoint's)")
    p.add_argument("--max-images", type=_positive_int, help="use only the first N validation pairs")
    p.add_argument("--crop", type=_positive_int, metavar="PX", help="score a centre crop of PX x PX (faster)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output", metavar="OUT.safetensors", help="write the tuned checkpoint here instead of in place")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--dry-run", action="store_true", help="only show the table; write nothing")


def _run_tune_schedule(args: argparse.Namespace) -> int:
    from gsad.checkpoints import resolve_checkpoint, update_sampler_defaults
    from gsad.data.layouts import find_pairs
    from gsad.inference import Enhancer
    from gsad.metrics import require_skimage
    from gsad.tuning import SearchSpace, format_trials, tune_schedule

    source = resolve_checkpoint(args.checkpoint)
    target = Path(args.output) if args.output else source
    if not args.dry_run and target.suffix != ".safetensors":
        raise InputError(
            f"{target}: tuned settings are stored in a gsad .safetensors file; give --output OUT.safetensors"
        )
    pairs = find_pairs(args.data, layout=args.layout, split=args.split)[: args.max_images]
    if not args.dry_run and args.output:
        from gsad.files import OutputPlan

        OutputPlan([p for pair in pairs for p in (pair.low, pair.high)]).check(target, args.overwrite)
    require_skimage()
    enhancer = Enhancer(source, device=args.device)
    space = SearchSpace(sampler=args.sampler, steps=args.steps, beta_starts=args.beta_starts,
                        beta_ends=args.beta_ends, starts=args.starts, ensembles=args.ensembles,
                        max_evaluations=args.max_evaluations, seed=args.seed, metric=args.metric)
    trials = tune_schedule(enhancer, pairs, space, crop=args.crop)
    print(format_trials(trials))
    best = trials[0]
    print(f"best by {args.metric}: {best.settings} (PSNR {best.psnr:.2f} dB, SSIM {best.ssim:.4f} "
          f"on {len(pairs)} images)")
    if not args.dry_run:
        notes = {"tuned_psnr": f"{best.psnr:.3f}", "tuned_ssim": f"{best.ssim:.4f}", "tuned_metric": args.metric,
                 "tuned_on": f"{args.data} ({len(pairs)} pairs)"}
        update_sampler_defaults(source, best.settings, notes, output=target,
                                overwrite=args.overwrite or not args.output)
        print(f"wrote sampler defaults to {target}")
    return 0


# ----------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------


def _add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="C",
                   help="gsad .safetensors file, training run folder, or reference .pth (default: bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=7860, help="port to serve on, 1-65535 (default 7860)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")


def _run_demo(args: argparse.Namespace) -> int:
    from gsad.demo import serve

    serve(args.checkpoint, host=args.host, port=args.port, device=args.device)
    return 0


# ----------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "enhance": ("enhance low-light images", _add_enhance, _run_enhance),
    "convert": ("convert a reference .pth checkpoint to gsad's .safetensors", _add_convert, _run_convert),
    "synthesize": ("make synthetic low-light pairs from normal photos (camera model)", _add_synthesize,
                   _run_synthesize),
    "tune-schedule": ("search the test schedule for the best validation PSNR (or SSIM); store it in the checkpoint",
                      _add_tune_schedule, _run_tune_schedule),
    "evaluate": ("score a model or another method's outputs on paired data (plain and GT-mean)", _add_evaluate,
                 _run_evaluate),
    "train": ("train a GSAD model: stage 1 (uncertainty) or stage 2 (gsad)", _add_train, _run_train),
    "demo": ("serve a local web page to enhance photos and compare before and after (needs gsad[demo])",
             _add_demo, _run_demo),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Low-light image enhancement with a global structure-aware diffusion process (GSAD).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add, _) in COMMANDS.items():
        add(sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + "."))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return COMMANDS[args.command][2](args)
    except GsadError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
