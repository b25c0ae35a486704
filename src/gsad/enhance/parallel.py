"""Inference over several processes: ``torchrun --nproc_per_node=N -m gsad enhance|evaluate ...``.

The process group and each rank's device come from :func:`gsad.runtime.distributed.setup`
(CUDA: rank ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``, NCCL; CPU: gloo); without torchrun it
is a world of one and nothing here communicates. Multi-node torchrun works the same way.

- Rank 0 plans the work and :meth:`~gsad.runtime.distributed.Context.broadcast` s it, so every
  rank sees the same list; :func:`share` hands rank r items r, r + N, r + 2N, ... in
  lockstep rounds and advances rank 0's one progress bar by what all ranks finished.
- Rank 0 chooses the network path (``precision="auto"``, :mod:`gsad.runtime.fastpath`) and every
  rank runs that path (:func:`shared_enhancer`).
- Every image is enhanced with the sampler's own seed, whichever rank takes it. The outputs are
  those of a single process byte for byte when both run the same network path with the same
  number of threads per process (e.g. ``torchrun --nproc_per_node=2`` under ``OMP_NUM_THREADS=1``
  against ``OMP_NUM_THREADS=1 gsad enhance``; tested). Another thread count changes the order of
  the convolutions' float sums, which can move a pixel by one level (seen with bf16, which
  ``precision="auto"`` takes on CPUs with native bf16); ``--precision fp32`` keeps that rare.
- A user error on one rank (a bad checkpoint, an unreadable image under ``gsad evaluate``) stops
  every rank with gsad's one line (:func:`~gsad.runtime.distributed.on_main`,
  :func:`~gsad.runtime.distributed.agree`) instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import torch
import torch.distributed as dist

from gsad.errors import GsadError
from gsad.runtime.distributed import Context, agree, on_main

if TYPE_CHECKING:
    import os

    from gsad.enhance.enhancer import Enhancer

T = TypeVar("T")


def finished(ctx: Context, count: int) -> int:
    """Sum of ``count`` over ranks (a collective: every rank must call it)."""
    if not ctx.distributed:
        return count
    total = torch.tensor([count], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(total)
    return int(total.item())


def share(ctx: Context, items: Sequence[T], progress: Any = None) -> Iterator[T]:
    """This rank's items (``items[rank::world_size]``), one per round; after each round every rank
    reports what it finished and ``progress.update(n)`` (e.g. a tqdm bar; rank 0's) counts them all.

    Every rank runs the same number of rounds (ranks without an item in the last one wait in it).
    """
    for start in range(0, len(items), ctx.world_size):
        index = start + ctx.rank
        mine = index < len(items)
        if mine:
            yield items[index]
        done = finished(ctx, int(mine))
        if progress is not None:
            progress.update(done)


def gather(ctx: Context, obj: T) -> list[T] | None:
    """Every rank's ``obj`` on rank 0 (in rank order), None elsewhere; ``[obj]`` in one process."""
    if not ctx.distributed:
        return [obj]
    box: list[T] | None = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, box, dst=0)
    return box


def shared_enhancer(
    ctx: Context, checkpoint: str | os.PathLike | None, precision: str = "auto", engine: str | None = None
) -> Enhancer:
    """An :class:`~gsad.enhance.enhancer.Enhancer` on this rank's device, running the network path (precision,
    engine) that rank 0 chose (so that an ``auto`` probe on each rank cannot choose differently)."""
    from gsad.enhance.enhancer import Enhancer

    if not ctx.distributed:
        return Enhancer(checkpoint, device=ctx.device, precision=precision, engine=engine)
    main: list[Enhancer] = []

    def load() -> object:
        main.append(Enhancer(checkpoint, device=ctx.device, precision=precision, engine=engine))
        return main[0].fast_path

    choice = on_main(ctx, load)
    error = None
    if not main:
        try:
            path = choice.path
            main.append(Enhancer(checkpoint, device=ctx.device, precision=path.precision, winograd=path.winograd,
                                 channels_last=path.channels_last, engine=path.engine))
            main[0].fast_path = choice
        except GsadError as exc:
            error = exc
    agree(ctx, error)  # every rank, before the first collective of the work that follows
    return main[0]


def predict_shared(
    ctx: Context, pairs: Sequence[Any], predict: Any, max_pixels: int | None = None
) -> dict[str, Any] | None:
    """``predict(pair.name, low image)`` for this rank's share of ``pairs``; every output, by pair
    name, on rank 0 (None elsewhere). Rank 0 shows one progress bar over all pairs. ``max_pixels``:
    the run's image size limit (:func:`gsad.imaging.io.read_image`; None: its default)."""
    from tqdm import tqdm

    from gsad.config import MAX_PIXELS
    from gsad.imaging.io import read_image

    limit = MAX_PIXELS if max_pixels is None else max_pixels

    outputs = {}
    error = None
    with tqdm(total=len(pairs), desc="enhance", unit="img", disable=not ctx.is_main, dynamic_ncols=True) as bar:
        for pair in share(ctx, pairs, bar):
            if error is None:  # after a failure this rank only keeps step with the others' rounds
                try:
                    outputs[pair.name] = predict(pair.name, read_image(pair.low, limit))
                except GsadError as exc:
                    error = exc
    agree(ctx, error)
    gathered = gather(ctx, outputs)
    return None if gathered is None else {k: v for part in gathered for k, v in part.items()}
