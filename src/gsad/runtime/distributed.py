"""Data-parallel training under ``torchrun``: process-group setup and small collectives.

``torchrun --nproc_per_node=N -m gsad train ...`` starts N processes with the environment
variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (and a rendezvous address).
:func:`setup` reads them and joins the process group: ``nccl`` when training on CUDA
(process ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``), ``gloo`` on the CPU. Without these
variables (a plain ``gsad train``) everything here is a no-op on a world of one.

Conventions: only rank 0 writes files (:attr:`Context.is_main`); each rank seeds its own
noise with ``seed + rank``; the data order is global (see ``gsad.training.loop``) and each
rank takes its slice of every global batch (:meth:`Context.shard`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from gsad.errors import ConfigError, GsadError, PeerError
from gsad.runtime.devices import resolve_device

__all__ = ["Context", "setup", "cleanup", "wrap_model", "unwrap_model"]

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank, world size, device, and whether it started the group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        """True on the process that writes files, logs and validates (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, items: list[T]) -> list[T]:
        """This rank's contiguous slice of a global batch (its length a multiple of the world size)."""
        per_rank = len(items) // self.world_size
        return items[self.rank * per_rank : (self.rank + 1) * per_rank]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_ok(self, ok: bool) -> bool:
        """True when ``ok`` holds on every rank (so all ranks fail or go on together)."""
        if not self.distributed:
            return ok
        flag = torch.tensor([1.0 if ok else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0.5)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a tensor over ranks (a copy; the input is unchanged)."""
        if not self.distributed:
            return values.clone()
        out = values.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size


def agree(ctx: Context, error: GsadError | None) -> None:
    """Agree on success before the next collective: when any rank had a user error, every rank
    stops, the failing one with its own ``error`` and the others with a one-line :class:`PeerError`
    (so no rank is left waiting in a collective, and each ends with gsad's one line)."""
    if ctx.all_ok(error is None):
        return
    if error is not None:
        raise error
    raise PeerError(f"rank {ctx.rank}: stopped because another process failed (its message says why)")


def on_main(ctx: Context, work: Callable[[], T]) -> T:
    """``work()`` run on rank 0 and its result on every rank (:meth:`Context.broadcast`). A user
    error there stops every rank: rank 0 raises it, the others a one-line :class:`PeerError`."""
    if not ctx.distributed:
        return work()
    result: Any = None
    error: GsadError | None = None
    if ctx.is_main:
        try:
            result = work()
        except GsadError as exc:
            error = exc
    ok, value = ctx.broadcast((error is None, result if error is None else str(error)))
    if error is not None:
        raise error
    if not ok:
        raise PeerError(f"rank {ctx.rank}: stopped because rank 0 failed: {value}")
    return value


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not a whole number") from None


def setup(device: str = "auto") -> Context:
    """Join the torchrun process group if there is one, and pick this process's device.

    ``device`` is the configured device: ``auto`` (CUDA when available), ``cpu``,
    ``cuda``; under torchrun ``cuda`` means ``cuda:LOCAL_RANK``.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device)
    if world_size > 1 and dev.type == "cuda":
        if dev.index is not None and device not in ("auto", "cuda"):
            raise ConfigError(
                f"device: under torchrun give 'cuda' or 'auto', not {device!r} (each rank uses LOCAL_RANK)"
            )
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} CUDA device(s) here")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if world_size <= 1:
        return Context(device=dev)
    initialized = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
        initialized = True
    return Context(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, initialized=initialized)


def cleanup(ctx: Context) -> None:
    """Leave the process group that :func:`setup` joined."""
    if ctx.initialized and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[Context]:
    """:func:`setup` on entry, :func:`cleanup` on exit, whatever happened in between."""
    ctx = setup(device)
    try:
        yield ctx
    finally:
        cleanup(ctx)


def wrap_model(model: nn.Module, ctx: Context) -> nn.Module:
    """DistributedDataParallel around ``model`` in a multi-process run, else ``model``.

    DDP broadcasts rank 0's weights when it is built and averages gradients over ranks.
    """
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)
