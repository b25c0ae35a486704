"""``gsad convert``: any checkpoint gsad loads (a reference ``.pth`` above all) -> gsad's ``.safetensors``."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsad.cli import options
from gsad.config import with_overrides
from gsad.errors import InputError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="IN", help="reference .pth state dict (or any checkpoint gsad loads; 'default': the bundled model)")
    p.add_argument("target", metavar="OUT", help="gsad .safetensors file to write")
    options.add_sampler_options(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    from gsad.checkpoints import load_checkpoint, resolve_checkpoint, save_checkpoint
    from gsad.files import OutputPlan
    args.source = options.model(args.source)
    target = Path(args.target)
    if target.suffix != ".safetensors":
        raise InputError(f"{target}: the output must be a .safetensors file")
    OutputPlan([resolve_checkpoint(args.source)]).check(target, args.overwrite)
    model, sampler, _ = load_checkpoint(args.source)
    settings = with_overrides(sampler, **options.sampler_overrides(args))
    save_checkpoint(target, model, settings, {"converted_from": Path(args.source).name}, overwrite=args.overwrite)
    print(f"{args.source} -> {target} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0
