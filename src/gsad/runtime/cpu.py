"""What the machine reports: CPU model and instruction-set flags, and the facts a network-path
choice depends on (:func:`machine`)."""

from __future__ import annotations

import contextlib
import platform
from pathlib import Path

import torch

#: CPU flags (``/proc/cpuinfo``) that decide the candidates or explain a benchmark's numbers.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")



def _cpuinfo() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    return ""



def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what ``platform`` says)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()



def cpu_flags() -> frozenset[str]:
    """The CPU's flags among :data:`CPU_FLAGS` (``/proc/cpuinfo``; else torch's avx512_bf16 check)."""
    for line in _cpuinfo().splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split()) & frozenset(CPU_FLAGS)
    return frozenset({"avx512_bf16"} if torch.cpu._is_avx512_bf16_supported() else ())



def native_bf16(flags: frozenset[str]) -> bool:
    """Whether the CPU computes bf16 in hardware (AVX-512 BF16 or AMX)."""
    return bool(flags & {"avx512_bf16", "amx_bf16"})



def machine(device: torch.device) -> dict[str, object]:
    """What the choice depends on: CPU model and flags, threads, torch, CUDA device."""
    info: dict[str, object] = {"torch": torch.__version__, "device": device.type}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        info["cuda"] = torch.cuda.get_device_name(index)
        info["capability"] = ".".join(map(str, torch.cuda.get_device_capability(index)))
    else:
        info.update(cpu=cpu_model(), flags=sorted(cpu_flags()), threads=torch.get_num_threads())
    return info
