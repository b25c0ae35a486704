"""Training speed: steps/s of stage 2 (GSAD) with and without the structure term (and of stage 1).

One step is what ``gsad train`` does per batch minus data loading: the objective
(forward of the trained U-Net, of the frozen stage-1 model for P, the losses), backward,
an Adam step and the EMA update. Inputs are random crops, so no dataset is needed.

    python benchmarks/bench_train.py                      # paper preset, batch 8, crop 96, CPU
    python benchmarks/bench_train.py --preset tiny --steps 10
    python benchmarks/bench_train.py --device cuda --steps 50 --warmup 5

Prints steps/s for each variant and the cost ratio of the structure term.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from gsad.config import PRESETS, preset
from gsad.diffusion.schedules import training_schedule
from gsad.losses.objectives import gsad_objective, stage1_objective
from gsad.losses.structure import structure_distance
from gsad.network import UNet
from gsad.runtime.devices import resolve_device
from gsad.training.ema import EMA


def steps_per_second(
    stage: str, structure_weight: float, args: argparse.Namespace, device: torch.device
) -> float:
    torch.manual_seed(0)
    frozen = UNet(preset(args.preset)).to(device).eval().requires_grad_(False)
    if stage == "uncertainty":
        model = copy.deepcopy(frozen).train().requires_grad_(True)
    else:
        config = frozen.config.__class__(**{**frozen.config.__dict__, "uncertainty_head": False})
        model = UNet(config).to(device)
        model.load_state_dict({k: v for k, v in frozen.state_dict().items() if not k.startswith("uncertainty_head.")})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    ema = EMA(model, 0.9999)
    schedule = training_schedule()
    g = torch.Generator().manual_seed(0)
    high = (torch.rand(args.batch_size, 3, args.crop, args.crop, generator=g) * 2 - 1).to(device)
    low = (high + 1) * 0.1 - 1

    def step(i: int) -> None:
        gen = torch.Generator().manual_seed(i)
        if stage == "uncertainty":
            loss, _ = stage1_objective(model, low, high, schedule, gen)
        else:
            loss, _ = gsad_objective(model, frozen, low, high, schedule, gen, structure_weight=structure_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.update(model, i + 1)

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(args.steps):
        step(args.warmup + i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps / (time.perf_counter() - start)


def structure_seconds(args: argparse.Namespace, device: torch.device) -> float:
    """Seconds per forward + backward of the structure distance alone (batch, crop as given)."""
    g = torch.Generator().manual_seed(0)
    target = (torch.rand(args.batch_size, 3, args.crop, args.crop, generator=g) * 2 - 1).to(device)
    times = []
    for _ in range(args.warmup + args.steps):
        estimate = (target + 0.1 * torch.randn(target.shape, generator=g).to(device)).requires_grad_()
        start = time.perf_counter()
        structure_distance(target, estimate).mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sum(times[args.warmup :]) / args.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=tuple(PRESETS))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--stage1", action="store_true", help="also time stage 1 (uncertainty)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    print(f"preset {args.preset}, batch {args.batch_size}, crop {args.crop}, device {device}, "
          f"threads {torch.get_num_threads()}, {args.warmup} warm-up + {args.steps} timed steps per variant")
    with_s = steps_per_second("gsad", 1.0, args, device)
    print(f"gsad, with structure term:    {with_s:.4f} steps/s ({1 / with_s:.2f} s/step)")
    without = steps_per_second("gsad", 0.0, args, device)
    print(f"gsad, without structure term: {without:.4f} steps/s ({1 / without:.2f} s/step)")
    print(f"ratio (without / with):       {without / with_s:.3f}  (structure term adds "
          f"{100 * (without / with_s - 1):.1f}% to a step)")
    print(f"structure_distance alone:     {structure_seconds(args, device):.3f} s per forward + backward")
    if args.stage1:
        s1 = steps_per_second("uncertainty", 0.0, args, device)
        print(f"uncertainty (stage 1):        {s1:.4f} steps/s ({1 / s1:.2f} s/step)")


if __name__ == "__main__":
    main()
