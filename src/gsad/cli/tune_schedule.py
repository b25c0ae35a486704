"""``gsad tune-schedule``: grid search of the test schedule; the best is stored in the checkpoint."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from gsad.cli import options
from gsad.config import (
    LAYOUTS,
    MAX_ENSEMBLE,
    SAMPLER_NAMES,
    SPLITS,
    START_NAMES,
    TUNING_BETA_ENDS,
    TUNING_BETA_STARTS,
    TUNING_METRICS,
    TUNING_STEPS,
)
from gsad.errors import InputError


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, metavar="C",
                   help="gsad .safetensors file or run folder to tune (written in place unless --output), or "
                        "'default' for the bundled model (only with --output or --dry-run)")
    p.add_argument("--data", required=True, metavar="DIR", help="validation pairs (LOL layouts or low/ + high/)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="dataset layout")
    p.add_argument("--split", default="test", choices=SPLITS, help="LOL split to use (default test)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="reference",
                   help="sampler to tune (default reference)")
    p.add_argument("--steps", type=_number_list(options.steps), default=TUNING_STEPS, metavar="N[,N...]",
                   help=f"step counts to try (default {','.join(map(str, TUNING_STEPS))})")
    p.add_argument("--beta-starts", type=_number_list(options.beta), default=TUNING_BETA_STARTS, metavar="B[,B...]",
                   help=f"first betas to try (default {','.join(map(str, TUNING_BETA_STARTS))})")
    p.add_argument("--beta-ends", type=_number_list(options.beta), default=TUNING_BETA_ENDS, metavar="B[,B...]",
                   help=f"last betas to try (default {','.join(map(str, TUNING_BETA_ENDS))})")
    p.add_argument("--starts", type=_choice_list(START_NAMES), default=("noise",), metavar="S[,S...]",
                   help="trajectory starts to try: noise (the paper), exposure (warm start from the input's "
                        "auto-exposure); default noise")
    p.add_argument("--metric", choices=TUNING_METRICS, default="psnr",
                   help="what picks the winner: mean psnr (default; brightness errors weigh most) or mean ssim "
                        "(residual noise and lost detail weigh more); the other breaks ties after fewer "
                        "network evaluations (steps x ensemble)")
    p.add_argument("--ensembles", type=_number_list(options.ensemble), default=(1,), metavar="N[,N...]",
                   help=f"self-ensemble sizes to try (1-{MAX_ENSEMBLE} trajectories on flipped/transposed copies, "
                        "averaged; default 1)")
    p.add_argument("--max-evaluations", type=options.positive_int, metavar="N",
                   help="time budget: skip settings with more than N network evaluations per image "
                        "(steps x ensemble)")
    p.add_argument("--seed", type=options.seed, help="sampler seed, 0 to 2**32 - 1 (default: the checkpoint's)")
    p.add_argument("--max-images", type=options.positive_int, help="use only the first N validation pairs")
    p.add_argument("--crop", type=options.positive_int, metavar="PX", help="score a centre crop of PX x PX (faster)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--output", metavar="OUT.safetensors", help="write the tuned checkpoint here instead of in place")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    p.add_argument("--dry-run", action="store_true", help="only show the table; write nothing")


def run(args: argparse.Namespace) -> int:
    from gsad.checkpoints import DEFAULT_MODEL_NAME, resolve_checkpoint, update_sampler_defaults
    from gsad.data.layouts import find_pairs
    from gsad.enhance.enhancer import Enhancer
    from gsad.evaluation.evaluate import check_scoreable
    from gsad.evaluation.metrics import require_skimage
    from gsad.evaluation.tuning import SearchSpace, check_crop, format_trials, tune_schedule

    if args.checkpoint == DEFAULT_MODEL_NAME and not (args.output or args.dry_run):
        raise InputError("--checkpoint default: the bundled model is never changed; "
                         "write the tuned model elsewhere with --output OUT.safetensors")
    source = resolve_checkpoint(options.model(args.checkpoint))
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
    check_crop(args.crop)
    check_scoreable(pairs)  # a small image is named before the model is loaded (a crop >= 7 keeps >= 7)
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
