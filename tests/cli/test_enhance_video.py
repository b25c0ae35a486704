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


def test_a_video_goes_alone_and_only_rank_zero_works_on_it(make_clip, dark_image, tmp_path, capsys):
    from types import SimpleNamespace

    from PIL import Image

    from gsad.cli import enhance

    src = make_clip(tmp_path / "clip.mp4", seconds=0.2)
    Image.fromarray(dark_image).save(tmp_path / "a.png")
    assert main(["enhance", str(src), str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), *CPU]) == 1
    assert "a video is enhanced on its own" in capsys.readouterr().err
    # Under torchrun the other ranks return at once, whatever the arguments: rank 0 does the video.
    args = SimpleNamespace(inputs=[str(src)], output=str(tmp_path / "o.mp4"))
    assert enhance._run_video(SimpleNamespace(is_main=False), args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "clip.mp4"]


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
