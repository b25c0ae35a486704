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
- A video's frames (:class:`FrameShare`) are dealt in round-robin chunks of :data:`FRAME_CHUNK`
  (:func:`chunk_owner`): each rank decodes every frame but works only on its own chunks' and sends
  each result to rank 0 (point to point, over gloo), which takes them in frame order and alone
  writes the file (:func:`gsad.enhance.video.enhance_video`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

from gsad.errors import GsadError, PeerError
from gsad.runtime.distributed import Context, agree, on_main

if TYPE_CHECKING:
    import os

    from gsad.enhance.enhancer import Enhancer

T = TypeVar("T")

#: Frames per chunk when a video's frames are dealt to ranks (:class:`FrameShare`). A rank runs
#: ahead of rank 0 by at most a chunk (slack for a frame that takes longer, and for rank 0's own
#: blending and encoding) and holds at most a chunk of results not yet taken (4 frames of 1080p:
#: 25 MB, against the H.264 encoder's look-ahead of about 40); the last round leaves ranks idle
#: for at most a chunk, and a clip of a few seconds still spreads over several ranks.
FRAME_CHUNK = 4


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


def chunk_owner(index: int, world_size: int, chunk: int = FRAME_CHUNK) -> int:
    """The rank that works on frame ``index`` (from 0) when frames are dealt in chunks of ``chunk``:
    chunk ``j = index // chunk`` (frames ``j chunk`` to ``j chunk + chunk - 1``) goes to rank
    ``j % world_size``."""
    return (index // chunk) % world_size


class FrameShare:
    """One stream of frames, the same on every rank, whose per-frame ``work`` (``H x W x 3`` uint8 ->
    uint8 of the same shape, depending on that frame alone) is dealt to ranks by :func:`chunk_owner`
    in chunks of ``chunk`` frames (default :data:`FRAME_CHUNK`).

    Every rank hands every frame, in order, to :meth:`result` (rank 0) or :meth:`offer` (the others),
    and the others call :meth:`flush` after the last one. Rank 0 gets each frame's result in order:
    its own chunks' computed, the others' received from their rank (exact bytes: uint8 in, uint8
    out). A rank waits for its last chunk's results to reach rank 0 before it starts on its next
    chunk, so it holds at most one chunk of them. The transfers use gloo on CPU tensors (a gloo group
    of their own under NCCL). A rank that stopped (an error, SIGTERM) closes its connections, so the
    rank waiting on it stops with a one-line :class:`~gsad.errors.PeerError` instead of waiting on."""

    def __init__(self, ctx: Context, work: Callable[[np.ndarray], np.ndarray], chunk: int | None = None) -> None:
        chunk = FRAME_CHUNK if chunk is None else chunk
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1, got {chunk}")
        self.ctx, self.work, self.chunk = ctx, work, chunk
        self.index = 0  # of the next frame
        self.pending: list[tuple[torch.Tensor, Any]] = []  # results sent and not yet known to be received
        self.group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")

    def _owner(self) -> int:
        owner = chunk_owner(self.index, self.ctx.world_size, self.chunk)
        self.index += 1
        return owner

    def result(self, frame: np.ndarray) -> np.ndarray:
        """Rank 0: ``work(frame)`` for the next frame, computed here or received from its rank."""
        index, owner = self.index, self._owner()
        if owner == self.ctx.rank:
            return self.work(frame)
        out = torch.empty(frame.shape, dtype=torch.uint8)
        self._talk(owner, lambda: dist.irecv(out, src=owner, group=self.group, tag=index).wait())
        return out.numpy()

    def offer(self, frame: np.ndarray) -> None:
        """Other ranks: the next frame; worked on and sent to rank 0 when it is in this rank's chunks."""
        index, owner = self.index, self._owner()
        if owner != self.ctx.rank:
            return
        if index % self.chunk == 0:
            self.flush()  # the previous chunk reached rank 0: at most one chunk held here
        out = self.work(frame)
        if out.dtype != np.uint8 or out.shape != frame.shape:
            raise ValueError(f"work returned {out.dtype} {out.shape} for a frame of shape {frame.shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(out))
        self.pending.append((tensor, self._talk(0, lambda: dist.isend(tensor, dst=0, group=self.group, tag=index))))

    def flush(self) -> None:
        """Wait until rank 0 received every result sent so far."""
        for _, handle in self.pending:
            self._talk(0, handle.wait)
        self.pending.clear()

    def _talk(self, peer: int, call: Callable[[], T]) -> T:
        """``call()``, a transfer with rank ``peer``; a :class:`~gsad.errors.PeerError` when ``peer`` is gone."""
        try:
            return call()
        except RuntimeError as exc:  # gloo: the peer's connection closed (it stopped), or the group's timeout
            if "timed out" in str(exc).lower():
                raise PeerError(f"rank {self.ctx.rank}: stopped: no word from rank {peer} within the process "
                                "group's timeout") from None
            raise PeerError(f"rank {self.ctx.rank}: stopped because rank {peer} failed or stopped (its message "
                            "says why)") from None
