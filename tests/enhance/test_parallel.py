"""Inference over torchrun ranks: the split, and 2 CPU processes giving a single process's outputs."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gsad.enhance import parallel
from gsad.runtime.distributed import Context


class Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


@pytest.mark.parametrize(("rank", "world", "expected"), [(0, 1, [0, 1, 2, 3, 4]), (0, 2, [0, 2, 4]), (1, 2, [1, 3]),
                                                         (2, 3, [2])])
def test_share_is_round_robin_in_lockstep(monkeypatch, rank, world, expected):
    rounds = []
    # every rank finished one item per round except where the list ran out: what all_reduce would sum
    monkeypatch.setattr(parallel, "finished",
                        lambda ctx, n: rounds.append(n) or min(world, 5 - len(rounds[:-1]) * world))
    bar = Bar()
    assert list(parallel.share(Context(rank=rank, world_size=world), list(range(5)), bar)) == expected
    assert len(rounds) == -(-5 // world)  # same number of rounds on every rank, idle ones included
    assert bar.n == 5


@pytest.mark.parametrize(("world", "chunk", "owners"), [
    (2, 3, [0, 0, 0, 1, 1, 1, 0, 0, 0, 1]), (3, 2, [0, 0, 1, 1, 2, 2, 0, 0, 1, 1]), (2, 1, [0, 1] * 5),
    (1, 4, [0] * 10)])
def test_chunk_owner_deals_round_robin_chunks(world, chunk, owners):
    assert [parallel.chunk_owner(t, world, chunk) for t in range(10)] == owners


class Wire:
    """torch.distributed's point-to-point calls between in-process ranks: a message per (src, dst, tag)."""

    def __init__(self):
        self.messages, self.sent, self.most_pending = {}, [], 0

    def get_backend(self):
        return "gloo"

    def isend(self, tensor, dst, group=None, tag=0):
        self.messages[(self.rank, dst, tag)] = tensor.clone()
        self.sent.append(tag)
        return self

    def irecv(self, tensor, src, group=None, tag=0):
        tensor.copy_(self.messages.pop((src, self.rank, tag)))
        return self

    def wait(self):
        return True


def test_frame_share_gathers_every_result_on_rank_zero_in_order(monkeypatch):
    """Chunks of 3 over 10 frames, 2 ranks: rank 1 works on frames 3-5 and 9 only and holds at most one
    chunk unsent; rank 0 works on the others and takes rank 1's exact bytes, in frame order."""
    wire = Wire()
    monkeypatch.setattr(parallel, "dist", wire)
    frames = [np.full((2, 3, 3), t, np.uint8) for t in range(10)]
    worked = {0: [], 1: []}

    def share(rank):
        def work(frame):
            worked[rank].append(int(frame[0, 0, 0]))
            return 255 - frame
        return parallel.FrameShare(Context(rank=rank, world_size=2), work, chunk=3)

    wire.rank = 1
    other = share(1)
    for frame in frames:
        other.offer(frame)
        assert len(other.pending) <= 3
    other.flush()
    assert worked[1] == wire.sent == [3, 4, 5, 9] and not other.pending
    wire.rank = 0
    main = share(0)
    results = [main.result(frame) for frame in frames]
    assert worked[0] == [0, 1, 2, 6, 7, 8] and not wire.messages
    assert all(r.dtype == np.uint8 and np.array_equal(r, 255 - f) for r, f in zip(results, frames))


def test_frame_share_names_a_rank_that_stopped(monkeypatch):
    from gsad.errors import PeerError

    wire = Wire()
    wire.rank = 0
    monkeypatch.setattr(parallel, "dist", wire)
    main = parallel.FrameShare(Context(rank=0, world_size=2), lambda f: f, chunk=1)

    def closed(*args, **kwargs):
        raise RuntimeError("[pair.cc:537] Read error: Connection reset by peer")

    wire.irecv = closed
    frame = np.zeros((2, 2, 3), np.uint8)
    assert main.result(frame) is frame
    with pytest.raises(PeerError, match="^rank 0: stopped because rank 1 failed or stopped"):
        main.result(frame)


def test_world_of_one_needs_no_process_group():
    ctx = Context()
    assert parallel.finished(ctx, 3) == 3 and parallel.gather(ctx, {"a": 1}) == [{"a": 1}]


def test_predict_shared_reads_with_the_runs_size_limit(tmp_path):
    from types import SimpleNamespace

    from gsad.errors import InputError

    low = _images(tmp_path / "low", count=2)  # 20 x 28 = 560 pixels each
    pairs = [SimpleNamespace(name=p.stem, low=p) for p in sorted(low.iterdir())]
    means = parallel.predict_shared(Context(), pairs, lambda name, img: float(img.mean()), max_pixels=560)
    assert sorted(means) == ["im0", "im1"] and all(0 < m < 60 for m in means.values())
    with pytest.raises(InputError, match="im0"):  # --max-megapixels holds under torchrun too
        parallel.predict_shared(Context(), pairs, lambda name, img: img, max_pixels=559)


def _images(folder, count=3):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        Image.fromarray(rng.integers(0, 60, (20, 28, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


def _gsad(*args, torchrun=False, code=0):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"] if torchrun else []
    cmd = [sys.executable, *launcher, "-m", "gsad", *args, "--device", "cpu", "--verbose"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert (result.returncode == 0) == (code == 0), result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_torchrun_enhance_matches_one_process(tiny_checkpoint, tmp_path):
    """Default options (precision auto): rank 0's path is every rank's; outputs byte-identical."""
    src = _images(tmp_path / "in")
    _gsad("enhance", str(src), "-o", str(tmp_path / "one"), "--checkpoint", str(tiny_checkpoint))
    two = _gsad("enhance", str(src), "-o", str(tmp_path / "two"), "--checkpoint", str(tiny_checkpoint), torchrun=True)
    one, both = _digests(tmp_path / "one"), _digests(tmp_path / "two")
    assert list(one) == ["im0.png", "im1.png", "im2.png"] and one == both
    assert two.stderr.count("gsad: network:") == 1  # rank 0 reports the path once...
    assert two.stderr.count(" -> ") == 3  # ...and each image is written once, by one rank


def test_torchrun_evaluate_matches_one_process(tiny_checkpoint, tmp_path):
    data = tmp_path / "data"
    _images(data / "low")
    _images(data / "high")
    args = ["evaluate", "--data", str(data), "--checkpoint", str(tiny_checkpoint)]
    single = _gsad(*args, "--report", str(tmp_path / "one.json"))
    double = _gsad(*args, "--report", str(tmp_path / "two.json"), torchrun=True)
    one, two = (json.loads((tmp_path / n).read_text()) for n in ("one.json", "two.json"))
    assert [i["name"] for i in two["images"]] == ["im0", "im1", "im2"]
    assert two["images"] == one["images"] and two["summary"] == one["summary"]
    assert double.stdout.count("PSNR") == single.stdout.count("PSNR") > 0  # one table, printed by rank 0


def test_other_ranks_run_rank_zeros_path(tiny_checkpoint):
    """A rank other than 0 takes the path rank 0 broadcasts, not its own auto choice."""
    from gsad.runtime.fastpath import Choice, FastPath

    sent = Choice(FastPath("fp32", False, True), "probe", "on rank 0")  # never auto's own CPU choice

    class Rank1(Context):
        def broadcast(self, obj):
            assert obj == (True, None)  # rank 1 sends nothing
            return True, sent

        def all_ok(self, ok):
            return ok

    enhancer = parallel.shared_enhancer(Rank1(rank=1, world_size=2), tiny_checkpoint, "auto")
    assert enhancer.fast_path is sent
    assert (enhancer.net.precision, enhancer.net.winograd, enhancer.net.channels_last) == ("fp32", False, True)


def _rank_errors(stderr):
    """gsad's own lines of every rank (torchrun's launcher adds its failure report after them)."""
    return [line for line in stderr.splitlines() if line.startswith("gsad: error:")]


def _collective_failure(stderr):
    return any(word in stderr for word in ("Connection closed", "gloo", "RuntimeError", "Error:\n"))


def test_torchrun_a_bad_checkpoint_ends_every_rank_with_one_line(tiny_checkpoint, tmp_path):
    """Rank 0 fails to load the model: rank 1 must not die in the broadcast with gloo's traceback."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tiny_checkpoint), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = sorted(tensors)[3]
    tensors[name] = torch.zeros(tensors[name].numel() + 1)
    save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=meta)
    run = _gsad("enhance", str(_images(tmp_path / "in")), "-o", str(tmp_path / "out"), "--checkpoint",
                str(tmp_path / "bad.safetensors"), torchrun=True, code=1)
    lines = _rank_errors(run.stderr)
    assert len(lines) == 2 and all(name in line for line in lines), run.stderr
    assert any("rank 1: stopped because rank 0 failed" in line for line in lines)
    assert not _collective_failure(run.stderr), run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_torchrun_evaluate_with_a_junk_image_ends_every_rank_with_one_line(tiny_checkpoint, tmp_path):
    """One rank cannot read its low image: both ranks stop before the gather, each with one line."""
    data = tmp_path / "data"
    _images(data / "low")
    _images(data / "high")
    (data / "low" / "im1.png").write_bytes(b"not a png")  # rank 1's image
    run = _gsad("evaluate", "--data", str(data), "--checkpoint", str(tiny_checkpoint), torchrun=True, code=1)
    lines = _rank_errors(run.stderr)
    assert len(lines) == 2, run.stderr
    # the image is named before any model runs (by each rank) or by the rank that read it, the other
    # rank then saying another process failed
    assert any("im1.png" in line for line in lines)
    assert all("im1.png" in line or "another process failed" in line for line in lines)
    assert not _collective_failure(run.stderr), run.stderr
