"""``gsad train``: both GSAD stages and distillation; flags over a YAML config over the defaults."""

from __future__ import annotations

import argparse
import os

from gsad.cli import options
from gsad.config import DISTILL_LOSSES, LAYOUTS, LOSS_WEIGHTINGS, PRESETS, RANGE_NAMES, SamplerConfig

#: Old spellings of ``gsad train``'s sampler flags kept working (scripts use them), hidden from
#: --help: flag -> the SamplerConfig field it sets.
TRAIN_HIDDEN_ALIASES = {"--beta-start": "beta_start", "--beta-end": "beta_end"}


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
  gsad train --stage distill --teacher default --student-steps 1 --data PHOTOS --synthetic --ranges broad

The run directory holds .gsad-run (gsad's marker: a folder holding files without it is never
used), config.yaml, log.csv, 'latest' (the newest EMA checkpoint, so
'gsad enhance --checkpoint RUN_DIR' works), checkpoints/step_NNNNNNN.safetensors (EMA
weights) and .state.pt (for --resume), and for stage gsad the frozen uncertainty model. A distill
run's checkpoints store the student's sampler settings (--student-steps steps, ensemble 1, the
teacher's other settings unless --sampler-* flags set them), so enhance uses them unasked.
Data-parallel: torchrun --nproc_per_node=N -m gsad train ... (batch size is global).
"""


def _checked(name: str) -> object:
    """The argparse type of TrainConfig field ``name``: its checker in TRAIN_CHECKS, the one rule that
    TrainConfig also applies to YAML values."""
    from gsad.training.config import TRAIN_CHECKS

    parse, check = TRAIN_CHECKS[name]
    return options.checked(parse, check, "a whole number" if parse is int else "a number")


def add_arguments(p: argparse.ArgumentParser) -> None:
    import textwrap

    from gsad.training.config import AMP_MODES, MAX_BATCH_SIZE, MAX_WORKERS, STAGES, shipped_configs

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
    g.add_argument("--seed", type=_checked("seed"),
                   help="seed of data order, crops and noise, 0 to 2**32 - 1 (default 0; rank r uses seed + r)")
    g.add_argument("--num-workers", type=_checked("num_workers"),
                   help=f"DataLoader worker processes, 0-{MAX_WORKERS} (default 0)")
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="DIR",
                   help="training pairs (LOL layout or low/ + high/), or photos with --synthetic")
    g.add_argument("--layout", choices=("auto", *LAYOUTS),
                   help="layout of --data (default auto)")
    g.add_argument("--synthetic", action=argparse.BooleanOptionalAction,
                   help="--data is a folder of normal photos, darkened on the fly into training pairs")
    g.add_argument("--crop", type=_checked("crop"), help="side of the random square crops (default 96)")
    g.add_argument("--ranges", choices=RANGE_NAMES,
                   help="degradation preset of --synthetic training: default (the first default model's camera), "
                        "broad (many cameras, tone curves, JPEG, blur; the second's), holdout or a held-out family")
    g.add_argument("--min-scale", type=_checked("min_scale"), metavar="Z",
                   help="multi-scale crops: downscale each image by a random factor in [Z, 1] (log-uniform) "
                        "before cropping, so large photos give detailed and global crops (default 1: off)")
    g.add_argument("--cache", action=argparse.BooleanOptionalAction,
                   help="keep decoded training images in memory (faster for a few large photos; default off)")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random horizontal flips (default on)")
    g = p.add_argument_group("model")
    g.add_argument("--stage", choices=STAGES,
                   help="uncertainty: stage 1, U-Net with uncertainty head (default); gsad: stage 2, from --init; "
                        "distill: a student that samples in --student-steps steps learns --teacher's output")
    g.add_argument("--init", metavar="RUN_OR_CHECKPOINT",
                   help="starting weights ('default': the bundled model): stage gsad needs the stage-1 run "
                        "directory or checkpoint (it also gives the uncertainty map and the architecture); optional "
                        "for stage uncertainty (a stage-2 model gives its U-Net, with a new uncertainty head) and "
                        "for stage distill (default: a copy of the teacher, or a new network of --config's "
                        "network section)")
    g.add_argument("--uncertainty", metavar="RUN_OR_CHECKPOINT",
                   help="stage gsad: the frozen stage-1 model that gives the uncertainty map (default: --init); "
                        "with it, --init may be a stage-2 model of the same architecture, e.g. a weights-only "
                        "snapshot of an earlier stage-2 run, which this run continues")
    g.add_argument("--preset", choices=tuple(PRESETS), help="network preset of stage 1 (default tiny)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=_checked("max_steps"), help="train until this step (default 1000)")
    g.add_argument("--batch-size", type=_checked("batch_size"),
                   help=f"global batch size, split over processes, 1-{MAX_BATCH_SIZE} (default 8)")
    g.add_argument("--lr", type=_checked("lr"), help="Adam learning rate, constant, in (0, 1] (default 1e-4)")
    g.add_argument("--ema-decay", type=_checked("ema_decay"),
                   help="EMA decay of the saved weights, in [0, 1) (default 0.9999)")
    g.add_argument("--ema-start", type=_checked("ema_start"),
                   help="step until which the EMA copies the weights (default 0)")
    g.add_argument("--structure-weight", type=_checked("structure_weight"),
                   help="weight of the structure loss in stage gsad (default 1; 0 turns it off)")
    g.add_argument("--num-clusters", type=_checked("num_clusters"),
                   help="Ward clusters per crop of the structure loss (default 6)")
    g.add_argument("--patch-size", type=_checked("patch_size"), help="patch side of the structure loss (default 8)")
    g.add_argument("--loss-weighting", choices=LOSS_WEIGHTINGS,
                   help="per-sample weight of the noise loss: eps (the paper, default) or truncated-snr "
                        "(max of the noise and the x0 error: high noise levels count more)")
    g.add_argument("--warm-start", type=_checked("warm_start"), metavar="FRACTION",
                   help="fraction (0-1) of the samples at the samplers' start noise levels (alpha_bar <= 0.75) "
                        "noised from the start estimate of the input (that of --sampler-start: exposure or "
                        "soft-exposure; exposure when it is noise) instead of the target, so the model learns to "
                        "clean the warm start's noise (default 0: the paper)")
    g = p.add_argument_group("distillation (stage distill)")
    g.add_argument("--teacher", metavar="RUN_OR_CHECKPOINT",
                   help="the frozen model to distil: a gsad .safetensors file, run folder, reference .pth, or "
                        "default (the bundled model); its target for each crop is its own whole sampler output "
                        "with its stored settings (ensemble included)")
    g.add_argument("--student-steps", type=_checked("student_steps"), metavar="K",
                   help="sampling steps of the student (one trajectory, no ensemble), trained through its own "
                        "sampler run from the teacher's warm start (default 1)")
    g.add_argument("--distill-loss", choices=DISTILL_LOSSES,
                   help="distance between the student's output and the teacher's: l1 (default) or charbonnier "
                        "(L1 with a smooth minimum)")
    g.add_argument("--gt-weight", type=_checked("gt_weight"), metavar="W",
                   help="add W times the L1 distance of the student's output to the ground truth (default 0)")
    g = p.add_argument_group("checkpoints and logs")
    g.add_argument("--checkpoint-every", type=_checked("checkpoint_every"),
                   help="save a checkpoint every N steps (default 1000)")
    g.add_argument("--keep-states", type=_checked("keep_states"), help="resumable .state.pt files kept (default 2)")
    g.add_argument("--log-every", type=_checked("log_every"), help="write a log.csv row every N steps (default 50)")
    g = p.add_argument_group("validation")
    g.add_argument("--val-data", metavar="DIR", help="validation pairs (test split of a LOL layout, or low/ + high/)")
    g.add_argument("--val-every", type=_checked("val_every"), help="validate every N steps (default 1000)")
    g.add_argument("--val-count", type=_checked("val_count"),
                   help="validate on the first N pairs by name (default all)")
    defaults = SamplerConfig()
    options.add_sampler_options(p, prefix="sampler-", title=(
        f"sampler of validation, also stored in the checkpoints as their defaults (default {defaults.sampler}, "
        f"{defaults.steps} steps, beta {defaults.beta_start:g} -> {defaults.beta_end:g}, seed {defaults.seed}, "
        f"start {defaults.start}, ensemble {defaults.ensemble}); the flags of enhance, spelt --sampler-NAME"))
    flags = options.sampler_flags()
    for old, name in TRAIN_HIDDEN_ALIASES.items():
        p.add_argument(old, dest=options.sampler_dest(name, "sampler-"), type=flags[name]["type"],
                       help=argparse.SUPPRESS)


#: TrainConfig fields without a flag of their own: the architecture comes from --preset (or a
#: YAML ``network`` mapping); the sampler settings have their own flags.
_TRAIN_NOT_FLAGS = ("network", "sampler")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from gsad.training import TrainConfig, load_train_config, train

    keys = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in _TRAIN_NOT_FLAGS]
    overrides: dict[str, object] = {k: getattr(args, k) for k in keys}
    sampler = options.sampler_overrides(args, prefix="sampler-")
    overrides["sampler"] = {k: v for k, v in sampler.items() if v is not None} or None
    config = load_train_config(args.config, overrides, resume=args.resume)
    run_dir = train(config, resume=args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"run directory: {run_dir}")
    return 0
