#!/usr/bin/env python
"""Time the whole ``gsad enhance`` command (start-up, model load, sampling, writing) per engine choice
and model.

Each variant is an environment setting of ``GSAD_ENGINE`` (``torch``: what gsad does without the
``fast`` extra; ``auto``: the choice among every installed engine), for each model given with
``--checkpoint LABEL=C`` (default: the bundled model alone). Every variant first runs once
untimed (its probe, export and compilation caches fill, in a private cache folder), then the
variants run ``--repeats`` times interleaved, alternating their order, and the script prints the
fastest and median wall time of each, the ratio to the first variant, and the network path each
took (``-v``). Ratios measured in one run are what to compare on a shared machine.

    python benchmarks/bench_command.py --variants torch auto --repeats 5 --threads 2
    python benchmarks/bench_command.py --variants torch auto -- --ensemble 1   # extra enhance options
    python benchmarks/bench_command.py --variants auto --checkpoint today=default --checkpoint new=new.safetensors
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "gsad" / "resources" / "sample_dark.png"


def run(engine: str, cache: Path, out: Path, threads: int | None, extra: list[str]) -> tuple[float, str]:
    """One ``gsad enhance`` of the sample with ``extra`` options: (wall seconds, the ``-v`` network line)."""
    env = {**os.environ, "GSAD_ENGINE": engine, "GSAD_CACHE_DIR": str(cache), "TQDM_DISABLE": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, "-m", "gsad", "enhance", str(SAMPLE), "-o", str(out), "--overwrite", "-v", *extra]
    tick = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - tick
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    line = next((l for l in done.stderr.splitlines() if "network:" in l), "?")  # noqa: E741
    return seconds, line.split("network:", 1)[-1].strip()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--variants", nargs="+", default=["torch", "auto"], help="GSAD_ENGINE values (default torch auto)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per variant (default 3)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the runs (default: unset)")
    p.add_argument("--checkpoint", action="append", metavar="LABEL=C", default=[],
                   help="a model to time, as gsad enhance --checkpoint takes it ('default': the bundled one; "
                        "repeatable; default: the bundled one alone)")
    p.add_argument("extra", nargs="*", help="options passed to gsad enhance (after --)")
    args = p.parse_args(argv)
    models = [spec.partition("=")[::2] if "=" in spec else (spec, spec) for spec in args.checkpoint]
    variants = [(f"{label}/{engine}" if models else engine, engine,
                 [*args.extra, *(["--checkpoint", ckpt] if models else [])])
                for label, ckpt in (models or [("", "")]) for engine in args.variants]

    from gsad.runtime.cpu import cpu_flags, cpu_model

    print(f"CPU: {cpu_model()}; flags: {', '.join(sorted(cpu_flags())) or 'none of note'}; "
          f"threads: {args.threads or 'default'}; gsad enhance {SAMPLE.name} {' '.join(args.extra)}")
    times: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    paths: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, engine, extra in variants:
            seconds, paths[label] = run(engine, work / "cache", work / "out.png", args.threads, extra)
            print(f"  {label}: first run {seconds:.1f} s (probe and caches), network {paths[label]}")
        for r in range(args.repeats):
            for label, engine, extra in variants if r % 2 == 0 else variants[::-1]:
                times[label].append(run(engine, work / "cache", work / "out.png", args.threads, extra)[0])
    base = min(times[variants[0][0]])
    width = max(12, *(len(label) for label in times))
    print(f"{'variant':<{width}} {'best s':>8} {'median s':>9} {'x first':>8}  network path")
    for label in times:
        best = min(times[label])
        print(f"{label:<{width}} {best:>8.2f} {statistics.median(times[label]):>9.2f} {base / best:>8.2f}  "
              f"{paths[label].split(' (')[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
