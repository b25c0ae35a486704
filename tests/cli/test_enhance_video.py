"""``gsad enhance CLIP -o OUT.mp4``: frames, timing, rotation and audio kept; errors in one line;
an interrupted run leaves nothing under the output's name."""

from __future__ import annotations

import os
import signal
import sys
from fractions import Fraction

import pytest

from gsad.cli import main

av = pytest.importorskip("av")

CPU = ["--device", "cpu", "--precision", "fp32", "--steps", "1"]


def audio_packets(path):
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def test_enhance_a_clip(tiny_checkpoint, make_clip, tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), *CPU,
                 "--crf", "23", "--temporal-blend", "0.5"]) == 0
    assert "30 frames" in capsys.readouterr().err
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.frames, v.average_rate, v.codec_context.name) == (30, Fraction(10), "h264")
        assert float(v.duration * v.time_base) == pytest.approx(3.0)
        assert next(c.decode(v)).rotation == 90
    with av.open(str(src)) as c:
        in_tb = c.streams.audio[0].time_base
    with av.open(str(out)) as c:
        assert c.streams.audio[0].time_base == in_tb
    assert audio_packets(out) == audio_packets(src)


def test_span_and_h265(tiny_checkpoint, make_clip, tmp_path):
    src = make_clip(tmp_path / "clip.mp4")
    out = tmp_path / "out.mkv"
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), *CPU,
                 "--codec", "h265", "--start-time", "0.5", "--duration", "1"]) == 0
    with av.open(str(out)) as c:
        frames = list(c.decode(video=0))
        assert len(frames) == 10 and c.streams.video[0].codec_context.name == "hevc"


def test_input_never_replaced_and_bad_videos_give_one_line(tiny_checkpoint, make_clip, tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4", seconds=0.5)
    before = src.read_bytes()
    assert main(["enhance", str(src), "-o", str(src), "--overwrite", "--checkpoint", str(tiny_checkpoint), *CPU]) == 1
    assert "would replace an input" in capsys.readouterr().err
    assert src.read_bytes() == before
    bad = tmp_path / "bad.mov"
    bad.write_bytes(b"\0" * 500)
    assert main(["enhance", str(bad), "-o", str(tmp_path / "o.mp4"), "--checkpoint", str(tiny_checkpoint), *CPU]) == 1
    err = capsys.readouterr().err
    assert err.startswith("gsad: error: ") and "bad.mov" in err and err.count("\n") == 1
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.png"), *CPU]) == 1
    assert "video output" in capsys.readouterr().err
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), "--start-time", "9", *CPU]) == 1
    assert "past the end of the video (0.5 s)" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_sigterm_mid_stream_leaves_no_output(tiny_checkpoint, make_clip, tmp_path, monkeypatch, capsys):
    from gsad.enhance import video

    src = make_clip(tmp_path / "clip.mp4")
    real_call = video.FrameEnhancer.__call__
    count = 0

    def call(self, frame):
        nonlocal count
        count += 1
        if count == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # gsad.cli.main turns it into Terminated here
        return real_call(self, frame)

    monkeypatch.setattr(video.FrameEnhancer, "__call__", call)
    out = tmp_path / "out.mp4"
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), *CPU]) == 143
    assert "terminated" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tiny.safetensors"]


def test_without_pyav_one_line_names_the_extra(make_clip, tmp_path, monkeypatch, capsys):
    src = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    monkeypatch.setitem(sys.modules, "av", None)
    assert main(["enhance", str(src), "-o", str(tmp_path / "o.mp4"), *CPU]) == 1
    assert 'pip install "gsad[video]"' in capsys.readouterr().err


def test_a_video_goes_alone(make_clip, dark_image, tmp_path, capsys):
    from PIL import Image

    src = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    Image.fromarray(dark_image).save(tmp_path / "a.png")
    assert main(["enhance", str(src), str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), *CPU]) == 1
    assert "a video is enhanced on its own" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "clip.mp4"]


# Under torchrun: `gsad enhance` with the frames rank 0 hands the encoder saved beside each output
# (OUT.npy), chunks of 3 frames, and optionally a failure on rank 1's second frame (then one run, which
# sets up its process group itself). Else the launcher joins the process group for both runs to share
# (joining a second one in the same processes can race).
LAUNCHER = """
import os, signal, sys
import numpy as np
import torch.distributed as dist
from gsad.cli import main
from gsad.enhance import parallel, video
from gsad.errors import ModelOutputError

parallel.FRAME_CHUNK = 3
real_transcode, real_enhanced = video.transcode, video.FrameEnhancer.enhanced

def transcode(src, dst, process, **kw):
    kept = []
    result = real_transcode(src, dst, lambda f: kept.append(process(f)) or kept[-1], **kw)
    np.save(dst.with_suffix(".npy"), np.stack(kept))
    return result

def enhanced(self, frame, count=[0]):
    count[0] += 1
    if count[0] == 2 and os.environ["RANK"] == "1":
        if fail == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        raise ModelOutputError("rank 1: the network produced NaN")
    return real_enhanced(self, frame)

video.transcode = transcode
fail, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
if fail != "none":
    video.FrameEnhancer.enhanced = enhanced
else:
    dist.init_process_group("gloo")
for b in ("0", "0.5"):
    code = main(["enhance", *args, "-o", f"{out}{b}.mp4", "--temporal-blend", b])
    if code:
        sys.exit(code)
"""


def partly_still_frames(count: int = 10, size=(48, 64)) -> list:
    """A dark still scene with its own noise in each frame, and a bright square moving over its left part."""
    import numpy as np

    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    clean = (12 + x * 0.5 + y * 0.3)[..., None] * np.array([1.0, 0.8, 0.6])
    rng = np.random.default_rng(3)
    frames = []
    for i in range(count):
        pixels = clean + rng.normal(0, 2, clean.shape)
        pixels[10:22, 3 * i : 3 * i + 12] += 50
        frames.append(np.clip(np.round(pixels), 0, 255).astype(np.uint8))
    return frames


def _torchrun_enhance(tmp_path, fail, *args):
    import subprocess

    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script), fail,
           str(tmp_path / "two"), *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)


def test_torchrun_splits_the_frames_and_writes_one_process_video(tiny_checkpoint, make_clip, tmp_path, capsys,
                                                                 encoder_frames):
    """2 ranks, chunks of 3 over 10 frames (rank 0: 0-2 and 6-8, rank 1: 3-5 and 9): the frames handed to the
    encoder, and the decoded files, are one process's, without and with the temporal blend."""
    import numpy as np
    import torch

    from gsad.imaging.video import iter_frames

    src = make_clip(tmp_path / "clip.mp4", frames=partly_still_frames(), audio=False)
    args = [str(src), "--checkpoint", str(tiny_checkpoint), *CPU]
    run = _torchrun_enhance(tmp_path, "none", *args, "--verbose")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.stderr.count(f"{src} -> ") == 2 and run.stderr.count("gsad: network:") == 2  # rank 0 alone reports

    kept = encoder_frames  # the frames handed to the encoder, as the launcher keeps them
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each torchrun process (OMP_NUM_THREADS=1): the same float sums
    try:
        for blend in ("0", "0.5"):
            assert main(["enhance", *args, "-o", str(tmp_path / f"one{blend}.mp4"), "--temporal-blend", blend]) == 0
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    for blend, one in zip(("0", "0.5"), kept):
        two = np.load(tmp_path / f"two{blend}.npy")
        assert two.shape == (10, 48, 64, 3) and np.array_equal(np.stack(one), two), blend
        decoded = [list(iter_frames(tmp_path / f"{name}{blend}.mp4")) for name in ("one", "two")]
        # the encoded files need not be bit-exact (encoder_frames), so they are compared loosely
        assert all(np.abs(a.astype(int) - b).mean() < 5 for a, b in zip(*decoded)) and len(decoded[1]) == 10
    assert not np.array_equal(kept[0], kept[1])  # the blend changed the still parts


@pytest.mark.parametrize("fail", ["error", "sigterm"])
def test_torchrun_a_failing_rank_ends_the_run_without_an_output(tiny_checkpoint, make_clip, tmp_path, fail):
    """Rank 1 fails (a user error, or SIGTERM) at its second frame: rank 0, waiting for that frame, stops
    instead of waiting on, and nothing is left under the output's name."""
    src = make_clip(tmp_path / "clip.mp4", frames=partly_still_frames(), audio=False)
    run = _torchrun_enhance(tmp_path, fail, str(src), "--checkpoint", str(tiny_checkpoint), *CPU)
    assert run.returncode != 0
    # each rank's own one line (rank 1's may follow rank 0's progress bar on its line), no rank's traceback
    assert ("gsad: error: rank 1: the network produced NaN\n" if fail == "error"
            else "gsad: error: terminated (SIGTERM)\n") in run.stderr, run.stderr
    assert "gsad: error: rank 0: stopped because rank 1 failed or stopped" in run.stderr or (
        fail == "sigterm" and run.stderr.count("gsad: error: terminated (SIGTERM)") == 2), run.stderr
    assert "]: Traceback" not in run.stderr, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "launch.py", "tiny.safetensors"]


def test_sigterm_to_a_running_gsad_process_leaves_no_output(tiny_checkpoint, make_clip, tmp_path):
    import subprocess
    import time

    src = make_clip(tmp_path / "clip.mp4", seconds=30.0, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "gsad", "enhance", str(src), "-o", str(out),
                             "--checkpoint", str(tiny_checkpoint), *CPU],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.mp4.*.tmp")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # some frames into the temporary file
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "gsad: error: terminated (SIGTERM)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tiny.safetensors"]


def test_a_killed_runs_temporary_is_removed(tiny_checkpoint, make_clip, tmp_path, capsys):
    src = make_clip(tmp_path / "clip.mp4", seconds=0.3)
    stale = tmp_path / ".out.mp4.abcd1234.tmp"
    stale.write_bytes(b"half a video")
    assert main(["enhance", str(src), "-o", str(tmp_path / "out.mp4"), "--checkpoint", str(tiny_checkpoint), *CPU]) == 0
    assert "removed" in capsys.readouterr().err and not stale.exists()
