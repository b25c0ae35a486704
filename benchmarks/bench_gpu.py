#!/usr/bin/env python
"""GPU speed matrix: paper U-Net (random weights) and the default model, fp32 / TF32 / bf16 /
fp16 / auto, ``torch.compile`` off and on, 10 and 20 reference-sampler steps at 600x400.

Each configuration builds an ``Enhancer`` on the same model (``precision`` as named; ``fp32``
with TF32 off for convolutions and matmuls, ``tf32`` the same network with TF32 on, ``auto``
whatever :mod:`gsad.runtime.fastpath` chooses, shown in the ``path`` column), warms up (one full run,
which also compiles), then times ``--repeats`` runs with CUDA synchronised, and reports
seconds per image and per step and the mean / max output difference from fp32 in levels of
255 (same seed, same noise). The machine (GPU, capability, torch, CUDA) is printed first.

``--dry-run`` runs the same code on the CPU at toy sizes (tiny preset, 48x32, 1 and 2 steps,
``torch.compile`` with the ``eager`` backend, fp16 skipped as the CPU has no fp16 path) and
checks every row ran: the test suite runs it so the GPU benchmark does not rot on machines
without a GPU.

Examples::

    python benchmarks/bench_gpu.py                       # needs CUDA
    python benchmarks/bench_gpu.py --json gpu.json --repeats 5
    python benchmarks/bench_gpu.py --dry-run             # CPU, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch

from gsad.checkpoints import load_checkpoint
from gsad.config import PRESETS, SamplerConfig
from gsad.enhance.enhancer import Enhancer, default_checkpoint
from gsad.errors import ConfigError
from gsad.network.unet import UNet
from gsad.runtime.cpu import machine

MODES = ("fp32", "tf32", "bf16", "fp16", "auto")


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 for cuDNN convolutions and CUDA matmuls on or off inside the block (restored after)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_config(model: UNet, device: torch.device, mode: str, compiled: bool, backend: str, low: torch.Tensor,
               settings: SamplerConfig, repeats: int) -> tuple[float, torch.Tensor, str]:
    """(best seconds per image, output, network path) of one configuration."""
    # NNPACK's Winograd op (CPU only) cannot be traced by torch.compile: off when compiling
    enhancer = Enhancer.from_model(model, settings, device, precision="fp32" if mode == "tf32" else mode,
                                   winograd=False if compiled else None)
    if compiled:
        enhancer.net = torch.compile(enhancer.net, backend=backend)
    with tf32(mode == "tf32"):
        out = enhancer.enhance_tensor(low, settings)  # warm-up (and compilation)
        best = float("inf")
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            out = enhancer.enhance_tensor(low, settings)
            synchronize(device)
            best = min(best, time.perf_counter() - start)
    label = "tf32" if mode == "tf32" else enhancer.fast_path.path.label
    return best, out.float().cpu(), label


def models(dry_run: bool) -> list[tuple[str, UNet]]:
    torch.manual_seed(0)
    if dry_run:
        return [("tiny", UNet(PRESETS["tiny"]).eval())]
    out = [("paper", UNet(PRESETS["paper"]).eval())]
    if default_checkpoint().is_file():
        out.append(("default", load_checkpoint(default_checkpoint())[0]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: check that every row runs")
    p.add_argument("--size", default=None, metavar="WxH", help="image size (default 600x400; dry run 48x32)")
    p.add_argument("--steps", type=int, nargs="+", default=None, help="step counts (default 10 20; dry run 1 2)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="precisions (default all)")
    p.add_argument("--compile", choices=("off", "on", "both"), default="both", help="torch.compile (default both)")
    p.add_argument("--backend", default=None, help="torch.compile backend (default inductor; dry run eager)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per configuration (default 3)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the results to this JSON file")
    args = p.parse_args(argv)

    device = torch.device("cpu" if args.dry_run else "cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: CUDA is not available here; use --dry-run to check the script on the CPU", file=sys.stderr)
        return 2
    width, height = (int(v) for v in (args.size or ("48x32" if args.dry_run else "600x400")).split("x"))
    steps_list = args.steps or ([1, 2] if args.dry_run else [10, 20])
    backend = args.backend or ("eager" if args.dry_run else "inductor")
    compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    info = machine(device)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(f"{'model':<8} {'steps':>5} {'mode':<5} {'compile':<7} {'s/image':>8} {'s/step':>7} "
          f"{'mean lv':>8} {'max lv':>7}  path")
    rows, skipped = [], []
    low = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)) * 0.6 - 1.0
    for name, model in models(args.dry_run):
        for steps in steps_list:
            settings = SamplerConfig(sampler="reference", steps=steps, beta_start=9e-4, beta_end=0.85, seed=4357)
            baseline = None
            for mode in args.modes:
                for compiled in compiles:
                    try:
                        seconds, out, label = run_config(model, device, mode, compiled, backend, low, settings,
                                                         args.repeats)
                    except ConfigError as exc:  # fp16 on the CPU (dry run)
                        skipped.append(f"{name} {steps} {mode} compile={compiled}: {exc}")
                        continue
                    if baseline is None and mode == "fp32":
                        baseline = out
                    diff = (out - baseline).abs() * 127.5 if baseline is not None else torch.zeros(1)
                    row = {"model": name, "steps": steps, "mode": mode, "compile": compiled, "s_per_image": seconds,
                           "s_per_step": seconds / steps, "mean_levels": diff.mean().item(),
                           "max_levels": diff.max().item(), "path": label, "size": f"{width}x{height}"}
                    rows.append(row)
                    print(f"{name:<8} {steps:>5} {mode:<5} {'on' if compiled else 'off':<7} {seconds:>8.3f} "
                          f"{seconds / steps:>7.4f} {row['mean_levels']:>8.3f} {row['max_levels']:>7.2f}  {label}")
    for line in skipped:
        print(f"skipped: {line}")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps({"machine": info, "rows": rows, "skipped": skipped}, indent=1) + "\n")
        os.replace(tmp, args.json)
    if args.dry_run:
        expected = len(models(True)) * len(steps_list) * len(compiles) * len([m for m in args.modes if m != "fp16"])
        if len(rows) != expected:
            print(f"bench_gpu --dry-run: {len(rows)} of {expected} configurations ran", file=sys.stderr)
            return 1
        print(f"dry run: all {expected} configurations ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
