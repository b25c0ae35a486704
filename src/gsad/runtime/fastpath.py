"""Choose how the network runs on this machine: precision, Winograd, memory layout.

``precision="auto"`` (the default of :class:`~gsad.enhance.enhancer.Enhancer`, ``gsad enhance`` and
``gsad evaluate``) picks, per device, the fastest :class:`FastPath` whose output stays within
:data:`TOLERANCE_LEVELS` of fp32:

1. **Hardware** names the candidates (:func:`candidates`). On the CPU: fp32 with NNPACK's
   Winograd convolutions or with oneDNN's direct ones, plus bf16 in channels-last layout
   (oneDNN's preferred one for bf16; faster than NCHW in our measurements) only where the CPU
   has native bf16 instructions (``avx512_bf16`` or ``amx_bf16`` in ``/proc/cpuinfo``;
   elsewhere bf16 is emulated and many times slower). On CUDA: fp32 (cuDNN, TF32 as torch's
   defaults allow), fp16 from capability 7.0, bf16 from 8.0, all channels-last. A single
   candidate is taken as it is.
2. **A probe**, the first time a model shape runs on a machine (:func:`probe`): each lower
   precision runs a :data:`PROBE_STEPS`-step reference sampler on a random dark image of
   :data:`FIDELITY_SIZE` with the model's own weights beside fp32, and is dropped when its
   output's mean difference exceeds :data:`TOLERANCE_LEVELS` levels of 255
   (:func:`fidelity`). Where the hardware settles the rest (:func:`hardware_choice`: bf16 on
   a CPU with native bf16) that path is taken; otherwise the remaining candidates are timed
   by interleaved network forwards (:func:`timing`), and a lower precision must be at least
   :data:`MIN_GAIN` faster than the fastest fp32 one. The fidelity runs use one thread
   (:func:`one_thread`), which keeps them short on a busy machine: 3.4 s for the paper's
   U-Net on a 2-core AMD EPYC shared with a load of about 8 (2 threads took 28 s there),
   0.5 s for the tiny preset; timings on a busy machine are less certain. The probe draws
   its noise from its own generators and leaves the global RNG, the model and every setting
   as they were, so it never changes what an fp32 run computes.
3. **The cache** keeps the result per machine (CPU model and flags, thread count, CUDA device,
   torch version) and model shape (its :class:`~gsad.config.NetworkConfig`) in
   ``fastpath.json`` under :func:`cache_dir` (``$GSAD_CACHE_DIR``, else
   ``$XDG_CACHE_HOME/gsad``, else ``~/.cache/gsad``), like cuDNN's benchmark mode but kept
   across runs. The fidelity check ran on the weights of the first model of that shape.

**Engines** (:mod:`gsad.runtime.engines`): where ``pip install "gsad[fast]"`` installed ONNX
Runtime and OpenVINO, the CPU candidates also include ``onnxruntime fp32``, ``openvino fp32`` and,
on a CPU with native bf16, ``openvino bf16``. Then the hardware settles nothing: every candidate
that passes the fidelity check (each engine path is checked like a lower precision) is timed,
and the choice weighs what one image costs, :data:`RUN_FORWARDS` forwards at
:data:`RUN_PIXELS` pixels (the probe's forward time scaled by pixel count) plus the engine's
set-up (its session or compilation for a new input shape, timed in the probe; the exported
graph is cached on disk, so only the first run ever pays the export). ``engine`` (the
``--engine`` option, default ``$GSAD_ENGINE`` or ``auto``) limits the candidates to one engine;
``torch`` gives exactly what gsad does without the extra.

Explicit ``"fp32"``, ``"bf16"`` or ``"fp16"`` run as asked (fp32 with Winograd on, and
channels-last on CUDA only, unless told otherwise): ``fp32`` is the path for bit-level work
and for reproducing the reference code's outputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from gsad.config import ENGINE_CHOICES, PRECISION_CHOICES, TOLERANCE_LEVELS, NetworkConfig
from gsad.diffusion.denoiser import Denoiser
from gsad.diffusion.samplers import initial_state, sample_reference
from gsad.diffusion.schedules import Schedule
from gsad.errors import ConfigError, DependencyError
from gsad.files import write_text_atomic
from gsad.network.inference_net import PRECISIONS, InferenceNet
from gsad.network.layers import nnpack_available
from gsad.network.unet import UNet
from gsad.runtime.cpu import CPU_FLAGS, cpu_flags, machine, native_bf16
from gsad.runtime.engines import ENGINES, available_engines, engine_net, require
from gsad.runtime.engines import PRECISIONS as ENGINE_PRECISIONS

log = logging.getLogger(__name__)

#: Smallest speed gain over fp32 for which ``auto`` accepts a lower precision (0.1: 10 %).
MIN_GAIN = 0.1
#: The probe: reference sampler steps, image size (H, W) per device type, schedule and seed.
PROBE_STEPS = 3
PROBE_SIZE = {"cpu": (128, 128), "cuda": (256, 256)}
#: Image size (H, W) of the fidelity check's sampler runs (smaller: it runs fp32 in full).
FIDELITY_SIZE = {"cpu": (96, 96), "cuda": (256, 256)}
PROBE_SCHEDULE = (2e-3, 0.9)
PROBE_SEED = 0
#: Name of the cache file inside :func:`cache_dir`.
CACHE_FILE = "fastpath.json"
#: What one image costs in the choice among engines: the default sampler's forwards (3 steps x 3
#: trajectories) on the sample photo's pixels (384 x 256), plus the engine's set-up.
RUN_FORWARDS, RUN_PIXELS = 9, 384 * 256
#: Environment variable giving the default of ``engine``.
ENGINE_ENV = "GSAD_ENGINE"


@dataclasses.dataclass(frozen=True)
class FastPath:
    """One way of running the network (the :class:`~gsad.network.inference_net.InferenceNet` options)."""

    precision: str
    winograd: bool
    channels_last: bool
    engine: str = "torch"

    @property
    def label(self) -> str:
        """Short name, e.g. ``"bf16 channels-last"``, ``"fp32 Winograd NCHW"`` or ``"openvino bf16"``."""
        if self.engine != "torch":
            return f"{self.engine} {self.precision}"
        parts = [self.precision]
        if self.winograd and self.precision == "fp32":
            parts.append("Winograd")
        parts.append("channels-last" if self.channels_last else "NCHW")
        return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class Choice:
    """The path taken and why: ``how`` is requested, hardware, probe or cache."""

    path: FastPath
    how: str
    detail: str = ""
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    levels: dict[str, float] = dataclasses.field(default_factory=dict)
    setup: dict[str, float] = dataclasses.field(default_factory=dict)

    def describe(self) -> str:
        """One line for ``--verbose`` output and benchmarks."""
        text = f"{self.path.label} ({self.how}"
        return text + (f": {self.detail})" if self.detail else ")")


def default_engine() -> str:
    """``$GSAD_ENGINE`` when it names an engine choice, else ``auto``."""
    value = os.environ.get(ENGINE_ENV, "auto")
    return value if value in ENGINE_CHOICES else "auto"


def build_net(model: UNet, path: FastPath):
    """The network as ``path`` runs it: an :class:`InferenceNet`, or an engine's net
    (:func:`gsad.runtime.engines.engine_net`, graphs kept under :func:`cache_dir`)."""
    if path.engine == "torch":
        return InferenceNet(model, path.precision, path.channels_last, path.winograd)
    return engine_net(model, path.engine, path.precision, cache_dir() / "onnx")


# ------------------------------------------------------------------------------------------
# candidates, probe, cache
# ------------------------------------------------------------------------------------------


def candidates(
    device: torch.device,
    winograd: bool | None = None,
    channels_last: bool | None = None,
    flags: frozenset[str] | None = None,
    engines: tuple[str, ...] = (),
) -> list[FastPath]:
    """The paths worth trying on ``device`` (fp32 first); ``winograd`` / ``channels_last``, when
    given, are fixed (to torch paths). ``flags`` defaults to this CPU's. ``engines``: the other
    engines to offer on the CPU (:func:`gsad.runtime.engines.available_engines`)."""
    if device.type == "cpu":
        flags = cpu_flags() if flags is None else flags
        paths = [FastPath("fp32", w, False) for w in ((True, False) if nnpack_available() else (False,))]
        if native_bf16(flags):  # Winograd runs in fp32 only
            paths.append(FastPath("bf16", False, True))
        if winograd is None and channels_last is None:
            for engine in engines:
                paths += [FastPath(p, False, False, engine) for p in ENGINE_PRECISIONS[engine]
                          if p == "fp32" or (p == "bf16" and native_bf16(flags))]
    elif device.type == "cuda":
        major, _ = torch.cuda.get_device_capability(device)
        paths = [FastPath("fp32", False, True)]
        if major >= 7:
            paths.append(FastPath("fp16", False, True))
        if major >= 8 and torch.cuda.is_bf16_supported():
            paths.append(FastPath("bf16", False, True))
    else:
        paths = [FastPath("fp32", False, False)]
    keep = [
        p for p in paths
        if (winograd is None or p.winograd == winograd or p.precision != "fp32")
        and (channels_last is None or p.channels_last == channels_last)
    ]
    if not keep:  # the fixed knobs rule out every candidate: fp32 as told
        keep = [FastPath("fp32", bool(winograd) and device.type == "cpu", bool(channels_last))]
    return keep


def hardware_choice(device: torch.device, paths: list[FastPath]) -> FastPath | None:
    """The path the hardware alone settles (taken when its output passes the fidelity check).

    A CPU with native bf16 (avx512_bf16 / amx_bf16): bf16 channels-last, which measured 2.1x
    (Intel Xeon with AMX) and 2-4x (AMD EPYC Zen 5 with avx512_bf16) faster than fp32 on the
    paper's U-Net. None where only a timing can tell (Winograd against direct fp32
    convolutions on other CPUs; fp32, fp16 and bf16 on CUDA; every path where other engines
    compete).
    """
    if any(p.engine != "torch" for p in paths):
        return None
    if device.type == "cpu":
        return next((p for p in paths if p.precision == "bf16"), None)
    return None


def _probe_input(model: UNet, device: torch.device, sizes: dict[str, tuple[int, int]] = PROBE_SIZE) -> torch.Tensor:
    """A random dark ``1 x 3 x H x W`` condition of ``sizes[device type]`` (rounded up to the stride)."""
    height, width = sizes.get(device.type, sizes["cpu"])
    stride = model.config.stride
    height, width = -(-height // stride) * stride, -(-width // stride) * stride
    generator = torch.Generator().manual_seed(PROBE_SEED)
    return (torch.rand(1, 3, height, width, generator=generator) * 0.5 - 1.0).to(device)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """One CPU thread inside the block (restored after): on a busy machine several threads
    wait on each other many times longer than one thread computes, and the fidelity check
    needs no speed."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fidelity_key(path: FastPath) -> str:
    """The key of ``path`` in :func:`fidelity`'s result: torch paths by precision, others by label."""
    return path.precision if path.engine == "torch" else path.label


def fidelity(model: UNet, cond: torch.Tensor, checks: list[str | FastPath]) -> dict[str, float]:
    """Mean difference (levels of 255) of each check's :data:`PROBE_STEPS`-step reference-sampler
    output from torch fp32's, on ``cond``, same noise (drawn from the probe's own generator).

    A check is a torch precision (``"bf16"``) or a path of another engine; the result is keyed by
    :func:`fidelity_key` (``"bf16"``, ``"onnxruntime fp32"``), with ``"fp32"`` (0) as well."""
    schedule = Schedule.linear(PROBE_STEPS, *PROBE_SCHEDULE)

    def run(net) -> torch.Tensor:
        net.precompute(schedule.sqrt_alpha_bar)
        generator = torch.Generator().manual_seed(PROBE_SEED)
        x = initial_state(tuple(cond.shape), schedule, generator, cond.device)
        return sample_reference(Denoiser(net, cond), x, schedule, generator)

    outputs = {}
    with one_thread():
        for check in ["fp32", *(c for c in checks if c != "fp32")]:
            if isinstance(check, FastPath) and check.engine != "torch":
                try:
                    outputs[fidelity_key(check)] = run(build_net(model, check))
                except DependencyError as exc:  # an engine that cannot run here is not a candidate
                    log.warning("%s; not a candidate", exc)
                    outputs[fidelity_key(check)] = torch.full_like(outputs["fp32"], float("inf"))
            else:
                key = check.precision if isinstance(check, FastPath) else check
                outputs[key] = run(InferenceNet(model, key, channels_last=cond.device.type == "cuda" or key == "bf16"))
    return {p: float((out - outputs["fp32"]).abs().mean()) * 127.5 for p, out in outputs.items()}


def timing(
    model: UNet, cond: torch.Tensor, paths: list[FastPath], budget: float = 2.0, setup: dict[str, float] | None = None
) -> dict[str, float]:
    """Seconds of one network forward per path: the fastest of interleaved rounds (at least 2, at
    most 5, no new round after ``budget`` seconds), after one warm-up forward each.

    ``setup``, when given, receives each other engine's set-up seconds: building its net
    (session or compilation) and the warm-up forward, less one timed forward."""
    x = torch.cat([cond, torch.randn(cond.shape, generator=torch.Generator().manual_seed(PROBE_SEED)).to(cond)], 1)
    level = torch.full((1,), 0.5, device=cond.device)
    nets, built = {}, {}
    for path in paths:
        tick = time.perf_counter()
        nets[path.label] = build_net(model, path)
        nets[path.label].precompute(level)
        nets[path.label](x, level)
        built[path.label] = time.perf_counter() - tick
    seconds = {label: float("inf") for label in nets}
    started = time.perf_counter()
    for round_ in range(5):
        if round_ >= 2 and time.perf_counter() - started > budget:
            break
        for label in nets if round_ % 2 == 0 else reversed(nets):
            tick = time.perf_counter()
            nets[label](x, level)
            if cond.device.type == "cuda":
                torch.cuda.synchronize(cond.device)
            seconds[label] = min(seconds[label], time.perf_counter() - tick)
    if setup is not None:
        setup.update({p.label: max(0.0, built[p.label] - seconds[p.label]) for p in paths if p.engine != "torch"})
    return seconds


def probe(model: UNet, device: torch.device, paths: list[FastPath]) -> Choice:
    """Check each lower precision's output against fp32 and, unless :func:`hardware_choice` settles
    it, time the paths that pass (see the module docstring)."""
    started = time.perf_counter()
    with torch.inference_mode():
        checks = sorted({p.precision for p in paths if p.engine == "torch"} - {"fp32"})
        checks += [p for p in paths if p.engine != "torch"]
        small = _probe_input(model, device, FIDELITY_SIZE)
        levels = fidelity(model, small, checks) if checks else {}
        ok = [p for p in paths
              if (p.engine == "torch" and p.precision == "fp32") or levels[fidelity_key(p)] <= TOLERANCE_LEVELS]
        diffs = ", ".join(f"{k} {v:.2f}" for k, v in levels.items() if k != "fp32")
        checked = (f"mean difference from fp32 on a {PROBE_STEPS}-step reference-sampler run at "
                   f"{small.shape[-1]}x{small.shape[-2]}: {diffs} levels of 255 (tolerance {TOLERANCE_LEVELS:g})"
                   ) if diffs else ""
        preferred = hardware_choice(device, paths)
        if preferred is not None and preferred in ok:
            flags = ", ".join(sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})) if device.type == "cpu" else ""
            detail = f"{flags}; {checked}; {time.perf_counter() - started:.1f} s"
            return Choice(preferred, "hardware", detail, {}, levels)
        cond = _probe_input(model, device)
        setup: dict[str, float] = {}
        seconds = timing(model, cond, ok, setup=setup) if len(ok) > 1 else {}
    scale = RUN_FORWARDS * RUN_PIXELS / (cond.shape[-1] * cond.shape[-2])
    cost = {label: s * scale + setup.get(label, 0.0) for label, s in seconds.items()}  # torch: no set-up
    fp32_best = min((cost[p.label] for p in ok if p.precision == "fp32"), default=float("inf"))
    best = min((p for p in ok if p.precision == "fp32" or cost[p.label] * (1 + MIN_GAIN) <= fp32_best),
               key=lambda p: cost.get(p.label, 0.0))
    size = f"{cond.shape[-1]}x{cond.shape[-2]}"
    timed = f"s/forward at {size} " + ", ".join(f"{k} {v:.3f}" for k, v in seconds.items())
    if setup:
        timed += "; set-up s " + ", ".join(f"{k} {v:.2f}" for k, v in setup.items())
    detail = "; ".join(t for t in (timed if seconds else "", checked) if t)
    return Choice(best, "probe", f"{detail}; {time.perf_counter() - started:.1f} s", seconds, levels, setup)


def cache_dir() -> Path:
    """``$GSAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/gsad``, else ``~/.cache/gsad``."""
    if os.environ.get("GSAD_CACHE_DIR"):
        return Path(os.environ["GSAD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gsad"


def cache_key(device: torch.device, config: NetworkConfig, engines: tuple[str, ...] = ()) -> str:
    """Hash of :func:`machine`, the model shape, the probe's settings (a changed probe probes again)
    and the other ``engines`` offered (none: the key gsad has always used)."""
    settings: list[object] = [PROBE_STEPS, PROBE_SIZE, FIDELITY_SIZE, PROBE_SCHEDULE, TOLERANCE_LEVELS, MIN_GAIN]
    if engines:
        settings.append({"engines": list(engines), "run": [RUN_FORWARDS, RUN_PIXELS]})
    text = json.dumps({"machine": machine(device), "model": dataclasses.asdict(config), "probe": settings},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _read_cache(path: Path, warn: bool = True) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        if warn:
            log.warning("%s: unreadable fast-path cache, probing again (%s)", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _from_entry(entry: object) -> Choice | None:
    try:
        path = FastPath(**entry["path"])
        if path.precision not in PRECISIONS or path.engine not in ENGINES:
            return None
        return Choice(path, "cache", entry.get("detail", ""), entry.get("seconds", {}), entry.get("levels", {}),
                      entry.get("setup", {}))
    except (TypeError, KeyError, AttributeError):
        return None


def cached_probe(model: UNet, device: torch.device, paths: list[FastPath]) -> Choice:
    """:func:`probe`, or its earlier result for this machine, model shape and engines from the cache."""
    file = cache_dir() / CACHE_FILE
    key = cache_key(device, model.config, tuple(sorted({p.engine for p in paths} - {"torch"})))
    data = _read_cache(file)
    hit = _from_entry(data.get(key))
    if hit is not None and hit.path in paths:
        return dataclasses.replace(hit, detail=f"{file}; measured {data[key].get('date', '?')}: {hit.detail}")
    choice = probe(model, device, paths)
    data = _read_cache(file, warn=False)  # another process may have written meanwhile (warned above)
    path = {k: v for k, v in dataclasses.asdict(choice.path).items() if k != "engine" or v != "torch"}
    data[key] = {"path": path, "detail": choice.detail, "seconds": choice.seconds,
                 "levels": choice.levels, "machine": machine(device),
                 **({"setup": choice.setup} if choice.setup else {}),
                 "date": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        write_text_atomic(file, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("%s: cannot write the fast-path cache (%s); the probe will run again next time", file, exc)
    return choice


def choose(
    model: UNet,
    device: torch.device,
    precision: str = "auto",
    winograd: bool | None = None,
    channels_last: bool | None = None,
    engine: str | None = None,
) -> Choice:
    """The path for ``model`` on ``device``: as requested, or for ``"auto"`` by hardware, probe or cache.

    ``winograd`` / ``channels_last`` None: chosen too (``auto``) or the defaults (Winograd on,
    channels-last on CUDA only). ``engine`` (None: :func:`default_engine`): ``auto`` offers every
    installed engine to an ``auto`` precision and runs torch for an explicit one; ``torch``,
    ``onnxruntime`` or ``openvino`` runs that engine only (the others on the CPU only). Raises
    :class:`ConfigError` for an unknown precision or engine, fp16 on the CPU, or a precision the
    engine does not run, and :class:`~gsad.errors.DependencyError` for an engine not installed.
    """
    if precision not in PRECISION_CHOICES:
        raise ConfigError(f"precision: unknown precision {precision!r} (choose from {', '.join(PRECISION_CHOICES)})")
    engine = default_engine() if engine is None else engine
    if engine not in ENGINE_CHOICES:
        raise ConfigError(f"engine: unknown engine {engine!r} (choose from {', '.join(ENGINE_CHOICES)})")
    if engine not in ("auto", "torch"):
        if device.type != "cpu":
            raise ConfigError(f"engine: {engine} runs on the CPU here; on {device.type} gsad runs torch")
        require(engine)
        if precision != "auto":
            if precision not in ENGINE_PRECISIONS[engine]:
                raise ConfigError(f"engine: {engine} runs {', '.join(ENGINE_PRECISIONS[engine])}, not {precision}")
            if precision == "bf16" and not native_bf16(cpu_flags()):
                log.warning("precision bf16: this CPU has no avx512_bf16 or amx_bf16; OpenVINO runs the network in "
                            "f32 here")
            return Choice(FastPath(precision, False, False, engine), "requested")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision: fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        if precision == "bf16" and device.type == "cpu" and not native_bf16(cpu_flags()):
            log.warning("precision bf16: this CPU has no avx512_bf16 or amx_bf16, so bf16 is emulated and slower "
                        "than fp32")
        path = FastPath(precision, device.type == "cpu" if winograd is None else winograd,  # NNPACK: CPU only
                        device.type == "cuda" if channels_last is None else channels_last)
        return Choice(path, "requested")
    offered = available_engines() if engine == "auto" else (engine,) if engine != "torch" else ()
    paths = candidates(device, winograd, channels_last, engines=offered)
    if engine not in ("auto", "torch"):
        paths = [p for p in paths if p.engine == engine]
    if len(paths) == 1:
        flags = ", ".join(sorted(cpu_flags())) or "none of " + ", ".join(CPU_FLAGS)
        detail = f"the only candidate on {device.type}" + (f" (CPU flags: {flags})" if device.type == "cpu" else "")
        return Choice(paths[0], "hardware", detail)
    return cached_probe(model, device, paths)


