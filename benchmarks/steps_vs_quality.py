#!/usr/bin/env python
"""Validation quality versus sampling steps, per sampler: PSNR / SSIM (both protocols) and time.

For a checkpoint and a folder of (low, high) pairs, enhances every validation image with
each sampler at each step count and prints a markdown table of the mean PSNR and SSIM,
plain and GT-mean (``gsad.evaluation.metrics.score_pair``), and the seconds per image.

Schedules. The checkpoint's sampler settings (or ``--base-steps/--beta-start/--beta-end``)
give a base test schedule of ``T`` levels. ``--schedule respaced`` (default) runs k steps on
k of its noise levels, evenly spaced in log(alpha_bar) from the noisiest (k = 1: a single x0
prediction from pure noise) to the least noisy, interpolated between base levels when k > T;
k = T is the base schedule itself. ``--schedule linear`` instead builds a fresh linear schedule
of k betas between the same two betas, as ``gsad enhance --steps k`` does (at k = 1 that is a
single, almost noise-free level: expect poor results).

Example::

    python benchmarks/steps_vs_quality.py --checkpoint runs/x --data LOLv1 --split test --json steps.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from gsad.checkpoints import load_checkpoint
from gsad.config import SAMPLER_NAMES, START_NAMES
from gsad.data import find_pairs
from gsad.data.layouts import LAYOUTS
from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.samplers import SAMPLERS, initial_state
from gsad.diffusion.schedules import Schedule, linear_betas
from gsad.enhance.starts import start_estimate
from gsad.errors import GsadError
from gsad.evaluation.metrics import score_pair
from gsad.imaging.geometry import pad_to_multiple
from gsad.imaging.io import read_image
from gsad.imaging.tensors import from_model, to_model
from gsad.network.inference_net import PRECISIONS, InferenceNet
from gsad.runtime.devices import resolve_device

METRICS = ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")


def respaced_schedule(base_betas: np.ndarray, steps: int) -> Schedule:
    """``steps`` levels on the base schedule's log(alpha_bar) path (see the module docstring)."""
    log_ab = np.cumsum(np.log1p(-np.asarray(base_betas, dtype=np.float64)))
    if steps == 1:
        picked = log_ab[-1:]
    else:
        pos = np.linspace(0.0, len(log_ab) - 1, steps)
        picked = np.interp(pos, np.arange(len(log_ab)), log_ab)
    ab = np.exp(picked)
    return Schedule.from_betas(1.0 - ab / np.append(1.0, ab[:-1]))


def schedule_for(kind: str, steps: int, base_steps: int, beta_start: float, beta_end: float) -> Schedule:
    if kind == "linear":
        return Schedule.linear(steps, beta_start, beta_end)
    return respaced_schedule(linear_betas(base_steps, beta_start, beta_end), steps)


@torch.inference_mode()
def enhance(net: InferenceNet, low_u8: np.ndarray, sampler: str, schedule: Schedule, seed: int,
            device: torch.device, start: str = "noise") -> np.ndarray:
    """One image through ``sampler`` on ``schedule`` (as ``Enhancer.enhance_tensor``, any schedule)."""
    low = to_model(low_u8)
    padded, (h, w) = pad_to_multiple(low, net.config.stride)
    cond = padded.to(device)
    estimate = start_estimate(low, start, net.config.stride)
    net.precompute(schedule.sqrt_alpha_bar)
    generator = torch.Generator().manual_seed(seed)
    x = initial_state(tuple(cond.shape), schedule, generator, device, estimate)
    out = SAMPLERS[sampler](Denoiser(net, cond), x, schedule, generator)
    return from_model(out[..., :h, :w])


def markdown(rows: list[dict]) -> str:
    lines = ["| sampler | steps | PSNR | SSIM | PSNR (GT-mean) | SSIM (GT-mean) | s/image |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['sampler']} | {r['steps']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                     f"{r['psnr_gtmean']:.2f} | {r['ssim_gtmean']:.4f} | {r['seconds_per_image']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="gsad .safetensors, training run folder or reference .pth")
    p.add_argument("--data", required=True, metavar="DIR", help="paired data (LOL layout or low/ + high/)")
    p.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="layout of --data (default auto)")
    p.add_argument("--split", default="test", choices=("train", "test"), help="split to score (default test)")
    p.add_argument("--count", type=int, help="score only the first N pairs by name")
    p.add_argument("--samplers", nargs="+", choices=SAMPLER_NAMES, default=["ddim", "dpmpp", "reference"])
    p.add_argument("--steps", nargs="+", type=int, default=[1, 2, 4, 8, 10, 20])
    p.add_argument("--schedule", choices=("respaced", "linear"), default="respaced",
                   help="how k-step schedules are made from the base one (default respaced; see above)")
    p.add_argument("--base-steps", type=int, help="base schedule length (default: the checkpoint's steps)")
    p.add_argument("--beta-start", type=float, help="base schedule's first beta (default: the checkpoint's)")
    p.add_argument("--beta-end", type=float, help="base schedule's last beta (default: the checkpoint's)")
    p.add_argument("--seed", type=int, help="sampler seed (default: the checkpoint's)")
    p.add_argument("--start", choices=START_NAMES, help="trajectory start (default: the checkpoint's)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="fp32", choices=tuple(PRECISIONS))
    p.add_argument("--no-winograd", action="store_true", help="turn off NNPACK Winograd convolutions (CPU)")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the rows and settings as JSON")
    args = p.parse_args(argv)

    try:
        model, defaults, _ = load_checkpoint(args.checkpoint)
        pairs = find_pairs(args.data, args.layout, args.split)[: args.count]
        device = resolve_device(args.device)
    except GsadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    base_steps = args.base_steps or defaults.steps
    beta_start = args.beta_start if args.beta_start is not None else defaults.beta_start
    beta_end = args.beta_end if args.beta_end is not None else defaults.beta_end
    start_from = args.start or defaults.start
    seed = args.seed if args.seed is not None else defaults.seed
    model = model.to(device).eval()
    net = InferenceNet(model, args.precision, channels_last=device.type == "cuda", winograd=not args.no_winograd)
    images = [(pair.name, read_image(pair.low), read_image(pair.high)) for pair in pairs]
    print(f"{len(images)} pairs from {args.data} ({args.split}); base schedule {base_steps} steps, "
          f"beta {beta_start:g}->{beta_end:g}, {args.schedule}; start {start_from}; seed {seed}; {device}",
          file=sys.stderr)

    rows = []
    for sampler in args.samplers:
        for steps in args.steps:
            schedule = schedule_for(args.schedule, steps, base_steps, beta_start, beta_end)
            scores, seconds = {m: [] for m in METRICS}, 0.0
            for _, low, high in images:
                start = time.perf_counter()
                out = enhance(net, low, sampler, schedule, seed, device, start_from)
                seconds += time.perf_counter() - start
                for m, v in score_pair(out, high).items():
                    if m in scores:
                        scores[m].append(v)
            row = {"sampler": sampler, "steps": steps, **{m: float(np.mean(v)) for m, v in scores.items()},
                   "seconds_per_image": seconds / len(images),
                   "levels": [round(v, 6) for v in schedule.sqrt_alpha_bar.tolist()]}
            rows.append(row)
            print(f"{sampler} {steps} steps: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.4f} "
                  f"{row['seconds_per_image']:.2f} s/image", file=sys.stderr)
    print(markdown(rows))
    if args.json:
        report = {"checkpoint": str(args.checkpoint), "data": str(args.data), "split": args.split,
                  "pairs": [name for name, _, _ in images], "schedule": args.schedule, "base_steps": base_steps,
                  "beta_start": beta_start, "beta_end": beta_end, "start": start_from, "seed": seed,
                  "device": str(device),
                  "precision": args.precision, "torch": torch.__version__,
                  "date": datetime.datetime.now().isoformat(timespec="seconds"), "rows": rows}
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
