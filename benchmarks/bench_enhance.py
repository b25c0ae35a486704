#!/usr/bin/env python
"""Time GSAD enhancement per image and per step, optionally against the reference code.

For each device x model x size x precision it runs ``Enhancer.enhance_tensor`` on a random
dark image (precision ``auto``, the default, is ``Enhancer``'s default: the path
:mod:`gsad.runtime.fastpath` chooses for this machine, named in the ``path`` column and on a line of
its own) (after a one-step warm-up) and prints seconds per image and per step, the
achieved GFLOP/s (the network's FLOPs per step as run, counted once on the meta device:
2 FLOPs per multiply-add) the peak memory of the sampling run (CPU: peak resident set above
the level before the run; CUDA: ``max_memory_allocated`` above the level before) and the
process CPU time (on a shared machine a steadier measure than wall time; with several
threads it includes their spin-waiting) and the fastest single network evaluation ("best
net", forward hooks on both networks: on a busy machine the best estimate of the uncontended
speed, as one step often runs undisturbed where a whole trajectory rarely does).

With ``--reference PATH`` (a local clone of jinnh/GSAD) it also builds the reference U-Net
and its ``GaussianDiffusion`` on the same random weights (ours exported with
``to_reference_state_dict``), runs its ``p_sample_loop`` after ``set_new_noise_schedule``
with the same schedule, seeded with ``torch.manual_seed(seed)``, interleaved with ours on
the same input, and prints the speed ratio and the output difference in levels of 255. The
reference's modules are imported from the clone (with stand-ins for its unused imports
cv2, torchvision, sklearn and kmeans_pytorch); nothing of it is copied here.

It first prints the machine: CPU model, the CPU flags that decide the path (avx2, avx512f,
avx512_bf16, amx_bf16, ...), torch version, thread count and CUDA device.

Examples::

    python benchmarks/bench_enhance.py --models paper --sizes 256x384 --steps 5 --threads 2 \
        --precision auto fp32 --reference ~/src/GSAD      # the README's speed table
    python benchmarks/bench_enhance.py --reference ~/src/GSAD --sizes 256x384 --steps 10
    python benchmarks/bench_enhance.py --devices cuda --sizes 600x400 --precision fp32 fp16
    python benchmarks/bench_enhance.py --models default paper --sizes 384x256 --steps 3 --threads 2 \
        --precision fp32 auto:torch fp32:onnxruntime fp32:openvino bf16:openvino auto   # the engines table

A ``--precision`` item is ``PRECISION[:ENGINE]``: ``auto:torch`` is the choice among torch's paths
alone (gsad without the ``fast`` extra), plain ``auto`` the choice among every installed engine,
``fp32:onnxruntime`` / ``bf16:openvino`` that engine as asked; a plain fixed precision runs torch.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import resource
import statistics
import sys
import threading
import time
import types
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # the reference sampler's progress bar

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from gsad.checkpoints import load_checkpoint, to_reference_state_dict  # noqa: E402
from gsad.config import (  # noqa: E402
    ENGINE_CHOICES,
    PRECISION_CHOICES,
    PRESETS,
    SAMPLER_NAMES,
    NetworkConfig,
    SamplerConfig,
)
from gsad.enhance.enhancer import Enhancer, default_checkpoint
from gsad.errors import ConfigError, DependencyError  # noqa: E402
from gsad.imaging.geometry import pad_to_multiple
from gsad.network.unet import UNet  # noqa: E402
from gsad.runtime.cpu import cpu_model, machine

# ------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak memory of a block above the level at its start, in MiB, and how it was measured."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib: float | None = None
        self.method = ""

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
            return self
        self._poller = None
        try:  # Linux: reset the resident-set high-water mark, read it after
            Path("/proc/self/clear_refs").write_text("5")
            self._base = _status_kb("VmRSS")
            if self._base is None:
                raise OSError
            self.method = "VmHWM (reset) - VmRSS before"
            return self
        except OSError:
            pass
        try:
            import psutil

            proc = psutil.Process()
            self._base, self._peak, self._stop = proc.memory_info().rss // 1024, 0, threading.Event()

            def poll() -> None:
                while not self._stop.wait(0.01):
                    self._peak = max(self._peak, proc.memory_info().rss // 1024)

            self._poller = threading.Thread(target=poll, daemon=True)
            self._poller.start()
            self.method = "psutil RSS polled every 10 ms - RSS before"
        except ImportError:
            self._base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.method = "ru_maxrss delta (a lower bound: 0 unless the peak grows)"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        elif self.method.startswith("VmHWM"):
            self.mib = (_status_kb("VmHWM") - self._base) / 1024
        elif self._poller is not None:
            self._stop.set()
            self._poller.join()
            self.mib = max(self._peak - self._base, 0) / 1024
        else:
            self.mib = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self._base, 0) / 1024


def timed(fn, device: torch.device) -> tuple[float, float, float | None, str, object]:
    """(wall seconds, process CPU seconds, peak MiB, memory method, result) of one call."""
    with PeakMemory(device) as mem:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return seconds, cpu, mem.mib, mem.method, out


class ForwardClock:
    """Wall seconds of every forward of ``module`` (forward hooks), e.g. to take the fastest one.

    On a shared machine the fastest single network evaluation is the best estimate of the
    uncontended speed: a whole trajectory rarely runs without interference, one step often does.
    """

    def __init__(self, module: torch.nn.Module, device: torch.device) -> None:
        self.device, self.seconds, self._start = device, [], 0.0
        module.register_forward_pre_hook(self._begin)
        module.register_forward_hook(self._end)

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _begin(self, *_: object) -> None:  # hooks return None: the inputs and output stay as they are
        self._start = self._now()

    def _end(self, *_: object) -> None:
        self.seconds.append(self._now() - self._start)


def network_flops(config: NetworkConfig, height: int, width: int, uncertainty: bool) -> int:
    """FLOPs (2 per multiply-add) of one U-Net forward at ``height x width``, counted on meta."""
    with torch.device("meta"):
        model = UNet(config).eval()
        x, level = torch.zeros(1, config.in_channels, height, width), torch.zeros(1)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, level, uncertainty=uncertainty)
    return counter.get_total_flops()


# ------------------------------------------------------------------------------------------
# the reference code, imported from the user's clone
# ------------------------------------------------------------------------------------------


def load_reference_modules(root: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """Import ``model/ddpm_modules/{unet,diffusion}.py`` of a jinnh/GSAD clone as a package.

    Their training-only imports (cv2, torchvision, sklearn, kmeans_pytorch) are stood in for
    by empty modules, only where the real ones are missing.
    """
    folder = root / "model" / "ddpm_modules"
    if not (folder / "unet.py").is_file() or not (folder / "diffusion.py").is_file():
        sys.exit(f"--reference: {root} does not look like a jinnh/GSAD clone (no {folder}/unet.py)")

    def stand_in(name: str, **attrs: object) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        return module

    transforms = stand_in("torchvision.transforms", Lambda=lambda fn: fn)
    stand_ins = {
        "cv2": stand_in("cv2"),
        "torchvision": stand_in("torchvision", transforms=transforms),
        "torchvision.transforms": transforms,
        "sklearn": stand_in("sklearn"),
        "sklearn.cluster": stand_in("sklearn.cluster", AgglomerativeClustering=None, MeanShift=None, DBSCAN=None,
                                    SpectralClustering=None),
        "kmeans_pytorch": stand_in("kmeans_pytorch", kmeans=None),
    }
    missing = {top for top in ("cv2", "torchvision", "sklearn", "kmeans_pytorch")
               if top not in sys.modules and importlib.util.find_spec(top) is None}
    installed = [name for name in stand_ins if name.split(".")[0] in missing]
    for name in installed:
        sys.modules[name] = stand_ins[name]
    package = types.ModuleType("gsad_reference_clone")
    package.__path__ = [str(folder)]
    sys.modules["gsad_reference_clone"] = package
    try:
        return (importlib.import_module("gsad_reference_clone.unet"),
                importlib.import_module("gsad_reference_clone.diffusion"))
    finally:  # the stand-ins served the import only; other code must not find them
        for name in installed:
            del sys.modules[name]


def build_reference(modules: tuple[types.ModuleType, types.ModuleType], model: UNet, device: torch.device):
    """The reference GaussianDiffusion around a reference U-Net carrying ``model``'s weights."""
    unet_mod, diffusion_mod = modules
    c = model.config
    # The reference places attention by feature-map size on a nominal image_size.
    image_size = max(128, 2 ** (len(c.channel_mults) + 2))
    ref = unet_mod.UNet(
        in_channel=c.in_channels, out_channel=c.out_channels, inner_channel=c.base_channels,
        norm_groups=c.norm_groups, channel_mults=list(c.channel_mults),
        attn_res=[image_size >> level for level in c.attn_levels], res_blocks=c.res_blocks,
        dropout=c.dropout, image_size=image_size,
    )
    state = {k.removeprefix("denoise_fn."): v for k, v in to_reference_state_dict(model).items()}
    missing, unexpected = ref.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("var_conv.") for k in missing):
        raise RuntimeError(f"reference U-Net does not match: missing {missing}, unexpected {unexpected}")
    diffusion = diffusion_mod.GaussianDiffusion(ref, image_size=image_size, channels=3, loss_type="l1",
                                                conditional=True, schedule_opt=None)
    return diffusion.to(device).eval()


def run_reference(
    diffusion, cond: torch.Tensor, settings: SamplerConfig, steps: int | None = None,
    crop: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The reference sampler on ``cond`` (``1 x 3 x H x W``), as its test script runs it.

    ``steps`` overrides the settings' (for warm-up); ``crop`` (H, W) crops the result.
    """
    opt = {"schedule": "linear", "n_timestep": steps or settings.steps,
           "linear_start": settings.beta_start, "linear_end": settings.beta_end}
    diffusion.set_new_noise_schedule(opt, cond.device)
    torch.manual_seed(settings.seed)
    out = diffusion.p_sample_loop(cond).unsqueeze(0)
    return out[..., : crop[0], : crop[1]] if crop else out


# ------------------------------------------------------------------------------------------
# the benchmark
# ------------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` -> (height, width)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected WIDTHxHEIGHT, e.g. 600x400") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size {text!r}: must be positive")
    return h, w


def models(names: list[str]) -> list[tuple[str, UNet | None, str]]:
    """(name, model or None, note) for each requested model; random weights for presets."""
    out = []
    for name in names:
        if name == "default":
            path = default_checkpoint()
            if not path.is_file():
                out.append((name, None, f"skipped: no default model at {path}"))
                continue
            out.append((name, load_checkpoint(path)[0], str(path)))
        elif name in PRESETS:
            torch.manual_seed(0)
            out.append((name, UNet(PRESETS[name]).eval(), "preset, random weights (torch.manual_seed(0))"))
        else:
            out.append((name, load_checkpoint(name)[0], name))
    return out


def low_image(height: int, width: int, seed: int) -> torch.Tensor:
    """A random dark image, ``1 x 3 x H x W`` in [-1, 1] (pixel values in [0, 0.3])."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, height, width, generator=g) * 0.6 - 1.0


def levels_diff(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Mean and max absolute difference of two [-1, 1] images in levels of 255."""
    d = (a.float().cpu() - b.float().cpu()).abs() * 127.5
    return {"mean_levels": d.mean().item(), "max_levels": d.max().item()}


def summarise(times: list[float]) -> dict[str, float]:
    return {"min_s": min(times), "median_s": statistics.median(times), "runs": len(times)}


def parse_path(text: str) -> tuple[str, str | None]:
    """``PRECISION[:ENGINE]`` -> (precision, engine or None for Enhancer's default)."""
    precision, _, engine = text.partition(":")
    if precision not in PRECISION_CHOICES or (engine and engine not in ENGINE_CHOICES):
        raise argparse.ArgumentTypeError(f"expected PRECISION[:ENGINE] with PRECISION in {', '.join(PRECISION_CHOICES)}"
                                         f" and ENGINE in {', '.join(ENGINE_CHOICES)}, got {text!r}")
    return precision, engine or ("auto" if precision == "auto" else "torch")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--models", nargs="+", default=["paper", "default"],
                   help="presets (paper, small, tiny), 'default' (the bundled model) or checkpoint paths "
                        "(default: paper default)")
    p.add_argument("--sizes", nargs="+", type=parse_size, default=[(384, 256), (400, 600)], metavar="WxH",
                   help="image sizes, WIDTHxHEIGHT (default: 256x384 600x400)")
    p.add_argument("--steps", type=int, default=10, help="sampling steps (default 10)")
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="reference", help="our sampler (default reference)")
    p.add_argument("--beta-start", type=float, default=9e-4, help="test schedule (default 9e-4, LOL-v2-real)")
    p.add_argument("--beta-end", type=float, default=0.85, help="test schedule (default 0.85)")
    p.add_argument("--seed", type=int, default=4357, help="sampler seed (default 4357)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per configuration (default 2)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--devices", nargs="+", default=None,
                   help="cpu and/or cuda (default: cpu, plus cuda when available)")
    p.add_argument("--precision", nargs="+", type=parse_path, default=[("auto", "auto")], metavar="PRECISION[:ENGINE]",
                   help="network paths: auto (Enhancer's default: the path chosen for this machine among every "
                        "installed engine), auto:torch (among torch's paths only), fp32, bf16, fp16 (torch), "
                        "fp32:onnxruntime, fp32:openvino, bf16:openvino; differences are reported against fp32 "
                        "(default auto)")
    p.add_argument("--no-winograd", action="store_true",
                   help="turn off NNPACK Winograd convolutions (CPU; default: Enhancer's choice)")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                   help="input layout (default auto: Enhancer's choice)")
    p.add_argument("--reference", type=Path, metavar="PATH",
                   help="a local clone of jinnh/GSAD: also run its U-Net and sampler (CPU only: its noise is "
                        "drawn on the device, so only CPU outputs are comparable) and compare")
    p.add_argument("--reference-devices", nargs="+", default=["cpu"],
                   help="devices on which to run the reference (default cpu)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write all results to this JSON file")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    ref_modules = load_reference_modules(args.reference.expanduser()) if args.reference else None
    settings = SamplerConfig(sampler=args.sampler, steps=args.steps, beta_start=args.beta_start,
                             beta_end=args.beta_end, seed=args.seed)
    warm = SamplerConfig(sampler=args.sampler, steps=1, beta_start=args.beta_start, beta_end=args.beta_end,
                         seed=args.seed)
    report = {
        "meta": {
            "command": [sys.argv[0], *(argv if argv is not None else sys.argv[1:])],
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu_model(),
            "cpu_threads": torch.get_num_threads(), "machine": machine(torch.device("cpu")),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "settings": vars(settings) | {"winograd": "off" if args.no_winograd else "auto",
                                          "channels_last": args.channels_last},
        },
        "results": [],
        "comparisons": [],
        "paths": [],
        "notes": [],
    }
    info = report["meta"]["machine"]
    print(f"CPU: {info['cpu']}; flags: {', '.join(info['flags']) or 'none of note'}; "
          f"CUDA: {report['meta']['cuda'] or 'none'}")
    print(f"torch {torch.__version__}, {report['meta']['cpu']}, {torch.get_num_threads()} threads; "
          f"{settings.sampler} sampler, {settings.steps} steps, beta {settings.beta_start:g}->{settings.beta_end:g}, "
          f"seed {settings.seed}")
    header = (f"{'device':<6} {'model':<8} {'size':>9} {'impl':<22} {'s/image':>8} {'(median)':>8} {'s/step':>7} "
              f"{'GFLOP/step':>10} {'GFLOP/s':>8} {'peak MiB':>9} {'CPU s':>8} {'best net':>8}  path")

    for model_name, model, note in models(args.models):
        if model is None:
            print(f"{model_name}: {note}")
            report["notes"].append(f"{model_name}: {note}")
            continue
        for device_name in devices:
            device = torch.device(device_name)
            if device.type == "cuda" and not torch.cuda.is_available():
                report["notes"].append("cuda: not available, skipped")
                continue
            ref = None
            if ref_modules is not None and device_name in args.reference_devices:
                ref = build_reference(ref_modules, model, device)
            print(f"\n{model_name} ({note}) on {device_name}\n{header}")
            for height, width in args.sizes:
                low = low_image(height, width, args.seed)
                padded, _ = pad_to_multiple(low, model.config.stride)
                ph, pw = padded.shape[-2:]
                flops = {"ours": network_flops(model.config, ph, pw, uncertainty=False),
                         "reference": network_flops(model.config, ph, pw, uncertainty=True)}
                size = f"{width}x{height}"
                runs: dict[str, list[float]] = {}
                outputs: dict[str, torch.Tensor] = {}
                peaks: dict[str, float | None] = {}
                methods: dict[str, str] = {}
                cpu_runs: dict[str, list[float]] = {}
                impls = {}
                paths = {"reference": "fp32 NCHW (reference code)"}
                clocks: dict[str, ForwardClock] = {}
                for precision, engine in args.precision:
                    plain = engine == ("auto" if precision == "auto" else "torch")
                    name = f"ours {precision}" if plain else f"ours {precision}:{engine}"
                    try:
                        enh = Enhancer.from_model(model, settings, device, precision=precision,
                                                  winograd=False if args.no_winograd else None,
                                                  channels_last=channels_last, engine=engine)
                    except (ConfigError, DependencyError) as exc:  # e.g. fp16 on the CPU: note it and go on
                        report["notes"].append(f"{model_name} {device_name} {name}: {exc}")
                        print(f"{device_name:<6} {model_name:<8} {size:>9} {name:<22} skipped: {exc}")
                        continue
                    impls[name] = (functools.partial(enh.enhance_tensor, low, settings),
                                   functools.partial(enh.enhance_tensor, low, warm), flops["ours"])
                    paths[name] = enh.fast_path.path.label
                    clocks[name] = ForwardClock(enh.net, device)
                    print(f"  {name}: network path {enh.fast_path.describe()}")
                    report["paths"].append({"device": device_name, "model": model_name, "size": size,
                                            "impl": name, "path": enh.fast_path.path.label,
                                            "how": enh.fast_path.describe()})
                if ref is not None:
                    cond = padded.to(device)
                    impls["reference"] = (functools.partial(run_reference, ref, cond, settings, crop=(height, width)),
                                          functools.partial(run_reference, ref, cond, settings, steps=1),
                                          flops["reference"])
                    clocks["reference"] = ForwardClock(ref.denoise_fn, device)
                for _, warmup, _ in impls.values():
                    warmup()
                for clock in clocks.values():  # warm-up forwards do not count
                    clock.seconds.clear()
                for r in range(args.repeats):  # interleaved, alternating order: shared noise on a busy machine
                    for name in (list(impls) if r % 2 == 0 else list(reversed(impls))):
                        seconds, cpu, peak, method, out = timed(impls[name][0], device)
                        runs.setdefault(name, []).append(seconds)
                        cpu_runs.setdefault(name, []).append(cpu)
                        peaks[name] = max(peaks.get(name) or 0.0, peak or 0.0)
                        methods[name] = method
                        outputs[name] = out
                for name, times in runs.items():
                    best = min(times)
                    row = {"device": device_name, "model": model_name, "size": size, "padded": f"{pw}x{ph}",
                           "impl": name, "path": paths[name], **summarise(times), "cpu_min_s": min(cpu_runs[name]),
                           "s_per_step": best / settings.steps,
                           "gflop_per_step": impls[name][2] / 1e9,
                           "gflops": impls[name][2] * settings.steps / best / 1e9,
                           "peak_mib": peaks[name], "memory_method": methods[name],
                           "best_forward_s": min(clocks[name].seconds), "forwards": len(clocks[name].seconds)}
                    report["results"].append(row)
                    print(f"{device_name:<6} {model_name:<8} {size:>9} {name:<22} {best:>8.2f} "
                          f"{row['median_s']:>8.2f} {row['s_per_step']:>7.3f} {row['gflop_per_step']:>10.1f} "
                          f"{row['gflops']:>8.1f} {peaks[name]:>9.0f} {row['cpu_min_s']:>8.2f} "
                          f"{row['best_forward_s']:>8.3f}  {paths[name]}")
                base = "ours fp32" if "ours fp32" in outputs else None
                for name in outputs:
                    for other in ("reference", base):
                        if other is None or other == name or other not in outputs or name == "reference":
                            continue
                        diff = levels_diff(outputs[name], outputs[other])
                        speed = min(runs[other]) / min(runs[name])
                        cpu_speed = min(cpu_runs[other]) / min(cpu_runs[name])
                        net_speed = min(clocks[other].seconds) / min(clocks[name].seconds)
                        report["comparisons"].append({"device": device_name, "model": model_name, "size": size,
                                                      "impl": name, "path": paths[name], "against": other,
                                                      "speedup": speed,
                                                      "cpu_time_speedup": cpu_speed,
                                                      "best_forward_speedup": net_speed, **diff})
                        print(f"  {name} [{paths[name]}] vs {other}: {speed:.2f}x faster in wall time, "
                              f"{cpu_speed:.2f}x in CPU time (best of {args.repeats} interleaved runs), "
                              f"{net_speed:.2f}x by the fastest network evaluation; output difference mean "
                              f"{diff['mean_levels']:.3f} / max {diff['max_levels']:.2f} levels of 255")
    if args.json:
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(report, indent=1) + "\n")
        os.replace(tmp, args.json)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
