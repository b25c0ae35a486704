"""Data order and seeds: everything random in training is a function of ``(seed, step)``.

- Data order: item positions form one endless stream, epoch e being the permutation
  ``default_rng([seed, e]).permutation(N)`` of the N training items; the global batch of
  step s (counting from 0) is positions ``s*B .. s*B + B - 1``, and the crop, flip (and
  synthetic degradation) of an item come from ``[seed, epoch, index]``
  (:func:`gsad.data.datasets.item_rng`). The data of a step is thus independent of
  workers, of where a run was resumed and of the number of processes (each rank takes
  its contiguous slice of the global batch).
- Noise: step s of rank r draws its levels and noise from a CPU generator seeded with
  ``SeedSequence([seed + r, s])``; the global torch RNG (model init, dropout) is seeded
  the same way inside a forked RNG scope, so the caller's RNG state is left alone.
- A state file therefore needs no RNG state: model, EMA, optimizer (and fp16 grad
  scaler) and the step counter, which is the data position. Resuming from step s gives
  the same weights as an uninterrupted run (bitwise on the same machine and thread count).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import numpy as np
from torch.utils.data import Dataset, Sampler, default_collate

from gsad.data import PairedDataset, SyntheticDataset
from gsad.errors import ConfigError, GsadError
from gsad.runtime.distributed import Context


def step_seed(seed: int, step: int) -> int:
    """The 64-bit seed of step ``step`` for base seed ``seed`` (a rank passes seed + rank)."""
    return int(np.random.SeedSequence([int(seed), int(step)]).generate_state(1, dtype=np.uint64)[0])


@lru_cache(maxsize=4)
def permutation(seed: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


class StepSampler(Sampler):
    """(epoch, index) keys of this rank's items for steps ``start .. end - 1`` (0-based).

    Global batch s holds stream positions ``s*B .. s*B + B - 1``; position p is item
    ``perm_e[p mod N]`` of epoch ``e = p // N`` (see the module docstring); rank r of w
    takes the r-th of w equal slices.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, end: int, ctx: Context) -> None:
        if batch_size % ctx.world_size:
            raise ConfigError(f"batch_size: {batch_size} is not divisible by the {ctx.world_size} processes")
        self.num_items, self.batch_size, self.seed = num_items, batch_size, seed
        self.start, self.end, self.ctx = start, end, ctx

    def global_batch(self, step: int) -> list[tuple[int, int]]:
        """The (epoch, index) keys of global batch ``step`` (all ranks)."""
        keys = []
        for pos in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, offset = divmod(pos, self.num_items)
            keys.append((epoch, int(permutation(self.seed, epoch, self.num_items)[offset])))
        return keys

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for step in range(self.start, self.end):
            yield from self.ctx.shard(self.global_batch(step))

    def __len__(self) -> int:
        return max(0, self.end - self.start) * (self.batch_size // self.ctx.world_size)


class EpochItems(Dataset):
    """Index a crop dataset by (epoch, index) keys, selecting the epoch for each item."""

    def __init__(self, base: PairedDataset | SyntheticDataset) -> None:
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, index = key
        self.base.set_epoch(epoch)
        try:
            return self.base[index]
        except GsadError as exc:
            # A DataLoader worker's exception reaches the main process rewrapped with the
            # worker's traceback as its message; carry a user error as data instead, so that
            # the loop raises the original one-line error (see collate).
            return {"error": exc}


def collate(items: list[dict]) -> dict:
    """Batch the items, or pass on the first item's error (``{"error": GsadError}``)."""
    for item in items:
        if "error" in item:
            return item
    return default_collate(items)
