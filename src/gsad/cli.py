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
from gsad.config import LOSS_WEIGHTINGS, MAX_ENSEMBLE, START_NAMES
from gsad.config import SAMPLER_NAMES as SAMPLER_CHOICES
from gsad.errors import GsadError, InputError

PROG = "gsad"


def _error(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _unit_number(text: str, closed: bool) -> float:
    """A float in (0, 1), or in [0, 1] when ``closed``; argparse's one-line error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0.0 <= value <= 1.0 if closed else 0.0 < value < 1.0):
        raise argparse.ArgumentTypeError(f"must lie in {'[0, 1]' if closed else '(0, 1)'}, got {value}")
    return value


def _beta(text: str) -> float:
    return _unit_number(text, closed=False)


def _fraction(text: str) -> float:
    return _unit_number(text, closed=True)


def _scale(text: str) -> float:
    """A float in (0, 1]."""
    return 1.0 if text.strip() in ("1", "1.0") else _unit_number(text, closed=False)


#: Names of the degradation presets (gsad.data.synthesize.RANGES; listed here so that the
#: parser does not import the data stack).
RANGE_NAMES = ("default", "holdout", "broad", "dark-noisy", "phone-jpeg", "color-cast", "near-normal")


def add_sampler_options(parser: argparse.ArgumentParser) -> None:
    """Sampler flags shared by enhance, evaluate and convert; unset ones use the checkpoint's defaults."""
    g = parser.add_argument_group("sampler (defaults come from the checkpoint)")
    g.add_argument("--sampler", choices=SAMPLER_CHOICES,
                   help="reference: the paper's ancestral DDPM sampler; ddim: deterministic DDIM (eta 0); "
                        "dpmpp: deterministic DPM-Solver++(2M), fewer steps")
    g.add_argument("--steps", type=_positive_int, help="number of sampling steps (paper: 20 for LOL-v1, 10 for LOL-v2)")
    g.add_argument("--beta-start", type=_beta, help="first beta of the short linear test schedule (paper LOL-v1: 6e-4)")
    g.add_argument("--beta-end", type=_beta, help="last beta of the short linear test schedule (paper LOL-v1: 0.88)")
    g.add_argument("--seed", type=int, help="seed of the sampler's noise; same seed, same output on any device")
    g.add_argument("--start", choices=START_NAMES,
                   help="noise: start the trajectory from pure noise (the paper); exposure: from the input's "
                        "global auto-exposure, noised to the schedule's first level (warm start); soft-exposure: "
                        "from the soft auto-exposure, which leaves well-exposed inputs as they are")
    g.add_argument("--ensemble", type=_positive_int, metavar="N",
                   help=f"average N trajectories run on flipped/transposed copies of the input (1-{MAX_ENSEMBLE}): "
                        "less residual noise, N times the time")


_SAMPLER_KEYS = ("sampler", "steps", "beta_start", "beta_end", "seed", "start", "ensemble")


def sampler_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The sampler flags given on the command line, as Enhancer.settings() keyword arguments."""
    return {k: getattr(args, k) for k in _SAMPLER_KEYS}


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
    p.add_argument("--tile", type=int, metavar="SIZE",
                   help="enhance in overlapping tiles of SIZE px (bounded memory for any image size); "
                        "0 never tiles; default: tiles of 512 for images over 1 megapixel")
    p.add_argument("--exposure", type=float, default=0.0, metavar="EV",
                   help="make the result brighter (+EV) or darker (-EV) than the model's choice, in stops")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="network precision: fp32 (default, exact), bf16 (CPUs with avx512_bf16, GPUs), fp16 (GPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files (inputs are never replaced)")


def plan_outputs(
    inputs: Sequence[str], output: str, overwrite: bool, report: Callable[[str], None]
) -> list[tuple[Path, Path]]:
    """(source, destination) pairs for ``gsad enhance``; problems are reported and skipped."""
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
    if not to_folder and not is_image_file(out):
        report(f"{out}: unknown output image format {out.suffix or '(no suffix)'!r}; name a .png/.jpg file or a folder")
        return []
    plan: list[tuple[Path, Path]] = []
    taken: set[Path] = set()
    for src in sources:
        dst = out / f"{src.stem}.png" if to_folder else out
        if dst.resolve() in taken:
            report(f"{src}: output {dst} is already written by another input of the same name")
            continue
        if dst.exists() and dst.resolve() == src.resolve():
            report(f"{src}: output would replace the input; choose another output")
            continue
        if dst.exists() and not overwrite:
            report(f"{dst}: output exists (use --overwrite to replace it)")
            continue
        taken.add(dst.resolve())
        plan.append((src, dst))
    return plan


def _run_enhance(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from gsad.images import read_image, write_image
    from gsad.inference import Enhancer

    failures = 0

    def report(message: str) -> None:
        nonlocal failures
        failures += 1
        _error(message)

    plan = plan_outputs(args.inputs, args.output, args.overwrite, report)
    if not plan:
        return 1
    enhancer = Enhancer(args.checkpoint, device=args.device, precision=args.precision)
    settings = enhancer.settings(**sampler_overrides(args))
    if len(plan) > 1 or any(Path(p).is_dir() for p in args.inputs):
        Path(args.output).mkdir(parents=True, exist_ok=True)
    images = tqdm(plan, desc="images", unit="img", disable=len(plan) == 1, dynamic_ncols=True)
    for src, dst in images:
        try:
            pixels = read_image(src)
        except InputError as exc:
            report(str(exc))
            continue
        total = settings.steps * settings.ensemble
        with tqdm(total=total, desc=src.name, unit="step", leave=False, dynamic_ncols=True) as bar:
            out = enhancer.enhance(
                pixels, **{k: getattr(settings, k) for k in _SAMPLER_KEYS},
                tile=args.tile, exposure=args.exposure, callback=lambda i, n: bar.update(1),
            )
        try:
            write_image(dst, out, overwrite=args.overwrite)
        except (InputError, OSError) as exc:
            report(str(exc) if isinstance(exc, InputError) else f"{dst}: cannot write ({exc.strerror or exc})")
            continue
        tqdm.write(f"{src} -> {dst}", file=sys.stderr)
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
    from gsad.checkpoints import load_checkpoint, save_checkpoint
    from gsad.inference import Enhancer

    target = Path(args.target)
    if target.suffix != ".safetensors":
        raise InputError(f"{target}: the output must be a .safetensors file")
    if target.exists() and not args.overwrite:
        raise InputError(f"{target}: output exists (use --overwrite to replace it)")
    if target.exists() and target.resolve() == Path(args.source).resolve():
        raise InputError(f"{target}: output would replace the input")
    model, sampler, _ = load_checkpoint(args.source)
    settings = Enhancer.from_model(model, sampler, device="cpu").settings(**sampler_overrides(args))
    save_checkpoint(target, model, settings, {"converted_from": Path(args.source).name})
    print(f"{args.source} -> {target} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


# ----------------------------------------------------------------------------------------
# synthesize
# ----------------------------------------------------------------------------------------


def _add_synthesize(p: argparse.ArgumentParser) -> None:
    p.add_argument("photos", nargs="?", metavar="PHOTOS_DIR",
                   help="folder of normal-light photos (omit with --bundled)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="writes OUT_DIR/low/NAME.png (darkened) and OUT_DIR/high/NAME.png (the photo)")
    p.add_argument("--bundled", action="store_true",
                   help="use the colour photos bundled with scikit-image instead of PHOTOS_DIR")
    p.add_argument("--seed", type=int, default=0, help="seed; the same seed gives the same bytes (default 0)")
    p.add_argument("--count", type=_positive_int, help="use only the first N photos (by name)")
    p.add_argument("--ranges", choices=RANGE_NAMES, default="default",
                   help="degradation preset: 'default' (the first default model's training camera), 'holdout' "
                        "(a different camera, darker and noisier), 'broad' (many cameras, tone curves, JPEG, blur; "
                        "the second default model's training pipeline) or a held-out family outside broad: "
                        "dark-noisy, phone-jpeg, color-cast, near-normal (default: default)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")


def _run_synthesize(args: argparse.Namespace) -> int:
    from gsad.data.synthesize import bundled_photos, named_ranges, synthesize_folder

    if args.bundled == (args.photos is not None):
        raise InputError("give either PHOTOS_DIR or --bundled")
    source = bundled_photos() if args.bundled else args.photos
    ranges = named_ranges(args.ranges)
    names = synthesize_folder(source, args.output, seed=args.seed, count=args.count, ranges=ranges,
                              overwrite=args.overwrite, progress=True)
    print(f"wrote {len(names)} pairs to {args.output}/low and {args.output}/high")
    return 0


# ----------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="DIR", help="paired dataset (LOL-v1, LOL-v2 or low/ + high/)")
    p.add_argument("--layout", default="auto",
                   choices=("auto", "lol-v1", "lol-v2-real", "lol-v2-synthetic", "pairs"),
                   help="dataset layout (default: detected)")
    p.add_argument("--split", default="test", choices=("train", "test"),
                   help="LOL split to score (default test; ignored by the low/ + high/ layout)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="C", help="enhance the low images with this model, then score")
    src.add_argument("--predictions", metavar="DIR",
                     help="score another method's outputs in DIR, matched to the pairs by file stem")
    add_sampler_options(p)
    p.add_argument("--device", default="auto", help="device for --checkpoint: auto, cpu, cuda or cuda:N")
    p.add_argument("--report", metavar="FILE.json", help="write the full report (summary and per image) as JSON")
    p.add_argument("--csv", metavar="FILE.csv", help="write per-image scores as CSV")
    p.add_argument("--per-image", action="store_true", help="also print one table row per image")


def _run_evaluate(args: argparse.Namespace) -> int:
    from gsad.data.layouts import find_pairs
    from gsad.evaluation import evaluate, format_table, write_report_csv, write_report_json
    from gsad.metrics import LPIPS

    pairs = find_pairs(args.data, layout=args.layout, split=args.split)
    reason = LPIPS.unavailable_reason()
    if reason:
        print(f"{PROG}: note: {reason}", file=sys.stderr)
    lpips = None if reason else LPIPS()
    predict = None
    if args.checkpoint:
        from gsad.inference import Enhancer

        enhancer = Enhancer(args.checkpoint, device=args.device)
        settings = enhancer.settings(**sampler_overrides(args))

        def predict(name, low):
            return enhancer.enhance(low, **{k: getattr(settings, k) for k in _SAMPLER_KEYS})

    report = evaluate(pairs, predict=predict, predictions_dir=args.predictions, lpips=lpips, progress=True)
    print(format_table(report, per_image=args.per_image))
    if args.report:
        write_report_json(args.report, report)
    if args.csv:
        write_report_csv(args.csv, report)
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

    from gsad.training.config import shipped_configs

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
    g.add_argument("--amp", choices=("off", "bf16", "fp16"), help="autocast precision of the network (default off)")
    g.add_argument("--seed", type=int, help="seed of data order, crops and noise (default 0; rank r uses seed + r)")
    g.add_argument("--num-workers", type=int, help="DataLoader worker processes (default 0)")
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR",
                   help="training pairs (LOL layout or low/ + high/), or photos with --synthetic")
    g.add_argument("--layout", choices=("auto", "lol-v1", "lol-v2-real", "lol-v2-synthetic", "pairs"),
                   help="layout of --data (default auto)")
    g.add_argument("--synthetic", action=argparse.BooleanOptionalAction,
                   help="--data is a folder of normal photos, darkened on the fly into training pairs")
    g.add_argument("--crop", type=_positive_int, help="side of the random square crops (default 96)")
    g.add_argument("--ranges", choices=RANGE_NAMES,
                   help="degradation preset of --synthetic training: default (the first default model's camera), "
                        "broad (many cameras, tone curves, JPEG, blur; the second's), holdout or a held-out family")
    g.add_argument("--min-scale", type=_scale, metavar="Z",
                   help="multi-scale crops: downscale each image by a random factor in [Z, 1] (log-uniform) "
                        "before cropping, so large photos give detailed and global crops (default 1: off)")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction,
                   help="keep decoded training images in memory (faster for a few large photos; default off)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random horizontal flips (default on)")
    g = p.add_argument_group("model")
    g.add_argument("--stage", choices=("uncertainty", "gsad"),
                   help="uncertainty: stage 1, U-Net with uncertainty head (default); gsad: stage 2, from --init")
    g.add_argument("--init", metavar="RUN_OR_CHECKPOINT",
                   help="starting weights: stage gsad needs the stage-1 run directory or checkpoint (it also "
                        "gives the uncertainty map and the architecture); optional for stage uncertainty (a stage-2 "
                        "model gives its U-Net, with a new uncertainty head)")
    g.add_argument("--preset", choices=("paper", "small", "tiny"), help="network preset of stage 1 (default tiny)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=_positive_int, help="train until this step (default 1000)")
    g.add_argument("--batch-size", type=_positive_int, help="global batch size, split over processes (default 8)")
    g.add_argument("--lr", type=float, help="Adam learning rate, constant (default 1e-4)")
    g.add_argument("--ema-decay", type=float, help="EMA decay of the saved weights (default 0.9999)")
    g.add_argument("--ema-start", type=int, help="step until which the EMA copies the weights (default 0)")
    g.add_argument("--structure-weight", type=float,
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
    g = p.add_argument_group("validation (sampler settings are also stored in the checkpoints)")
    g.add_argument("--val-data", metavar="DIR", help="validation pairs (test split of a LOL layout, or low/ + high/)")
    g.add_argument("--val-every", type=_positive_int, help="validate every N steps (default 1000)")
    g.add_argument("--val-count", type=_positive_int, help="validate on the first N pairs by name (default all)")
    g.add_argument("--sampler", choices=SAMPLER_CHOICES, help="sampler for validation (default reference)")
    g.add_argument("--sampler-steps", type=_positive_int, help="sampling steps (default 20)")
    g.add_argument("--beta-start", type=_beta, help="first beta of the test schedule (default 6e-4)")
    g.add_argument("--beta-end", type=_beta, help="last beta of the test schedule (default 0.88)")
    g.add_argument("--sampler-seed", type=int, help="seed of the sampler's noise (default 4088)")
    g.add_argument("--sampler-start", choices=START_NAMES,
                   help="trajectory start: noise, exposure or soft-exposure (default noise)")


_TRAIN_KEYS = (
    "out", "device", "amp", "seed", "num_workers", "data", "layout", "synthetic", "crop", "ranges", "min_scale",
    "cache", "flip", "stage", "init", "preset", "max_steps", "batch_size", "lr", "ema_decay", "ema_start",
    "structure_weight", "num_clusters", "patch_size", "loss_weighting", "warm_start", "checkpoint_every",
    "keep_states", "log_every", "val_data", "val_every", "val_count",
)


def _run_train(args: argparse.Namespace) -> int:
    from gsad.training import load_train_config, train

    overrides: dict[str, object] = {k: getattr(args, k) for k in _TRAIN_KEYS}
    sampler = {"sampler": args.sampler, "steps": args.sampler_steps, "beta_start": args.beta_start,
               "beta_end": args.beta_end, "seed": args.sampler_seed, "start": args.sampler_start}
    overrides["sampler"] = {k: v for k, v in sampler.items() if v is not None} or None
    config = load_train_config(args.config, overrides, resume=args.resume)
    run_dir = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"run directory: {run_dir}")
    return 0


# ----------------------------------------------------------------------------------------
# tune-schedule
# ----------------------------------------------------------------------------------------


def _number_list(kind: type) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
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
    from gsad.tuning import DEFAULT_BETA_ENDS, DEFAULT_BETA_STARTS, DEFAULT_STEPS, METRICS

    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="gsad .safetensors file or run folder to tune (written in place unless --output)")
    p.add_argument("--data", required=True, metavar="DIR", help="validation pairs (LOL layouts or low/ + high/)")
    p.add_argument("--layout", default="auto",
                   choices=("auto", "lol-v1", "lol-v2-real", "lol-v2-synthetic", "pairs"), help="dataset layout")
    p.add_argument("--split", default="test", choices=("train", "test"), help="LOL split to use (default test)")
    p.add_argument("--sampler", choices=SAMPLER_CHOICES, default="reference",
                   help="sampler to tune (default reference)")
    p.add_argument("--steps", type=_number_list(int), default=DEFAULT_STEPS, metavar="N[,N...]",
                   help=f"step counts to try (default {','.join(map(str, DEFAULT_STEPS))})")
    p.add_argument("--beta-starts", type=_number_list(float), default=DEFAULT_BETA_STARTS, metavar="B[,B...]",
                   help=f"first betas to try (default {','.join(map(str, DEFAULT_BETA_STARTS))})")
    p.add_argument("--beta-ends", type=_number_list(float), default=DEFAULT_BETA_ENDS, metavar="B[,B...]",
                   help=f"last betas to try (default {','.join(map(str, DEFAULT_BETA_ENDS))})")
    p.add_argument("--starts", type=_choice_list(START_NAMES), default=("noise",), metavar="S[,S...]",
                   help="trajectory starts to try: noise (the paper), exposure (warm start from the input's "
                        "auto-exposure); default noise")
    p.add_argument("--metric", choices=METRICS, default="psnr",
                   help="what picks the winner: mean psnr (default; brightness errors weigh most) or mean ssim "
                        "(residual noise and lost detail weigh more); the other breaks ties after fewer "
                        "network evaluations (steps x ensemble)")
    p.add_argument("--ensembles", type=_number_list(int), default=(1,), metavar="N[,N...]",
                   help=f"self-ensemble sizes to try (1-{MAX_ENSEMBLE} trajectories on flipped/transposed copies, "
                        "averaged; default 1)")
    p.add_argument("--max-evaluations", type=_positive_int, metavar="N",
                   help="time budget: skip settings with more than N network evaluations per image "
                        "(steps x ensemble)")
    p.add_argument("--seed", type=int, help="sampler seed (default: the checkpoint's)")
    p.add_argument("--max-images", type=_positive_int, help="use only the first N validation pairs")
    p.add_argument("--crop", type=_positive_int, metavar="PX", help="score a centre crop of PX x PX (faster)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output", metavar="OUT.safetensors", help="write the tuned checkpoint here instead of in place")
    p.add_argument("--dry-run", action="store_true", help="only show the table; write nothing")


def _run_tune_schedule(args: argparse.Namespace) -> int:
    from gsad.checkpoints import resolve_checkpoint, update_sampler_defaults
    from gsad.data.layouts import find_pairs
    from gsad.inference import Enhancer
    from gsad.tuning import format_trials, tune_schedule

    source = resolve_checkpoint(args.checkpoint)
    target = Path(args.output) if args.output else source
    if not args.dry_run and target.suffix != ".safetensors":
        raise InputError(
            f"{target}: tuned settings are stored in a gsad .safetensors file; give --output OUT.safetensors"
        )
    pairs = find_pairs(args.data, layout=args.layout, split=args.split)[: args.max_images]
    enhancer = Enhancer(source, device=args.device)
    trials = tune_schedule(enhancer, pairs, args.sampler, args.steps, args.beta_starts, args.beta_ends,
                           seed=args.seed, crop=args.crop, starts=args.starts, metric=args.metric,
                           ensembles=args.ensembles, max_evaluations=args.max_evaluations)
    print(format_trials(trials))
    best = trials[0]
    print(f"best by {args.metric}: {best.settings} (PSNR {best.psnr:.2f} dB, SSIM {best.ssim:.4f} "
          f"on {len(pairs)} images)")
    if not args.dry_run:
        notes = {"tuned_psnr": f"{best.psnr:.3f}", "tuned_ssim": f"{best.ssim:.4f}", "tuned_metric": args.metric,
                 "tuned_on": f"{args.data} ({len(pairs)} pairs)"}
        update_sampler_defaults(source, best.settings, notes, output=target)
        print(f"wrote sampler defaults to {target}")
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
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
