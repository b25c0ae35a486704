"""gsad.imaging.video: streamed decode, encode, audio copied, timing and rotation kept, atomic output."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from gsad.errors import DependencyError, InputError
from gsad.imaging.video import decode_span, iter_frames, probe_video, transcode

av = pytest.importorskip("av")


def audio_packets(path: Path) -> list[tuple[float, bytes]]:
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        return [(float(p.pts * p.time_base), bytes(p)) for p in c.demux(stream) if p.size]


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as c:
        return [f.time for f in c.decode(video=0)]


def test_probe(make_clip, tmp_path):
    info = probe_video(make_clip(tmp_path / "a.mp4"))
    assert (info.width, info.height, info.rate, info.frames, info.rotation, info.has_audio) == (
        64, 48, Fraction(10), 30, 90, True)
    assert info.duration == pytest.approx(3.0)
    assert info.frames_between(1.0, 1.0) == 10


def test_transcode_keeps_frames_timing_rotation_and_audio_packets(make_clip, tmp_path):
    src = make_clip(tmp_path / "a.mp4")
    seen = []

    def invert(rgb):
        seen.append(rgb.shape)
        return 255 - rgb

    result = transcode(src, tmp_path / "b.mp4", invert)
    assert result.frames == 30 and seen == [(48, 64, 3)] * 30
    info = probe_video(tmp_path / "b.mp4")
    assert (info.frames, info.rate, info.rotation, info.has_audio) == (30, Fraction(10), 90, True)
    assert info.duration == pytest.approx(3.0)
    assert frame_times(tmp_path / "b.mp4") == pytest.approx(frame_times(src))
    assert audio_packets(tmp_path / "b.mp4") == audio_packets(src)
    first_in, first_out = next(iter_frames(src)), next(iter_frames(tmp_path / "b.mp4"))
    assert np.abs(first_out.astype(int) - (255 - first_in.astype(int))).mean() < 3  # CRF 18: close


def test_span_h265_mkv(make_clip, tmp_path):
    src = make_clip(tmp_path / "a.mp4")
    result = transcode(src, tmp_path / "b.mkv", lambda rgb: rgb, codec="h265", crf=28, start_time=1.0, duration=1.0)
    assert result.frames == 10
    times = frame_times(tmp_path / "b.mkv")
    assert len(times) == 10 and times[0] == pytest.approx(0.0) and times[-1] == pytest.approx(0.9, abs=0.01)
    with av.open(str(tmp_path / "b.mkv")) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
    copied = audio_packets(tmp_path / "b.mkv")
    original = [(t - 1.0, data) for t, data in audio_packets(src) if 1.0 <= t < 2.0]
    assert [data for _, data in copied] == [data for _, data in original]
    assert [t for t, _ in copied] == pytest.approx([t for t, _ in original], abs=1e-3)


@pytest.mark.parametrize(("start", "duration"), [(0.0, None), (1.0, 1.2)])
def test_decode_span_hands_over_the_frames_transcode_does_and_writes_nothing(make_clip, tmp_path, start, duration):
    src = make_clip(tmp_path / "a.mp4")
    encoded, decoded = [], []
    transcode(src, tmp_path / "b.mp4", lambda rgb: encoded.append(rgb) or rgb, start_time=start, duration=duration)
    assert decode_span(src, decoded.append, start_time=start, duration=duration) == len(decoded)
    assert len(decoded) == (30 if duration is None else 12)
    assert len(encoded) == len(decoded) and all(np.array_equal(a, b) for a, b in zip(encoded, decoded))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]
    with pytest.raises(InputError, match="no video frames between 5 s"):
        decode_span(src, decoded.append, start_time=5.0)


def test_clip_without_audio_to_mov(make_clip, tmp_path):
    src = make_clip(tmp_path / "a.mp4", seconds=1.0, rotation=0, audio=False)
    transcode(src, tmp_path / "b.mov", lambda rgb: rgb)
    info = probe_video(tmp_path / "b.mov")
    assert (info.frames, info.rotation, info.has_audio) == (10, 0, False)


@pytest.mark.parametrize("content", [b"", b"not a video at all", "truncated"])
def test_bad_input_is_one_input_error_and_writes_nothing(make_clip, tmp_path, content):
    src = tmp_path / "bad.mp4"
    if content == "truncated":
        good = make_clip(tmp_path / "a.mp4").read_bytes()
        src.write_bytes(good[: len(good) // 3])
    else:
        src.write_bytes(content)
    with pytest.raises(InputError, match="bad.mp4"):
        transcode(src, tmp_path / "out.mp4", lambda rgb: rgb)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".") or p.name == "out.mp4"]


def test_failure_mid_stream_leaves_no_output_and_no_temporary(make_clip, tmp_path):
    src = make_clip(tmp_path / "a.mp4")
    count = 0

    def fail_at_five(rgb):
        nonlocal count
        count += 1
        if count == 5:
            raise KeyboardInterrupt
        return rgb

    with pytest.raises(KeyboardInterrupt):
        transcode(src, tmp_path / "out.mp4", fail_at_five)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_existing_output_needs_overwrite_and_unknown_suffix(make_clip, tmp_path):
    src = make_clip(tmp_path / "a.mp4", seconds=0.5)
    (tmp_path / "out.mp4").write_bytes(b"old")
    with pytest.raises(InputError, match="--overwrite"):
        transcode(src, tmp_path / "out.mp4", lambda rgb: rgb)
    assert (tmp_path / "out.mp4").read_bytes() == b"old"
    transcode(src, tmp_path / "out.mp4", lambda rgb: rgb, overwrite=True)
    assert probe_video(tmp_path / "out.mp4").frames == 5
    with pytest.raises(InputError, match="unknown output video format"):
        transcode(src, tmp_path / "out.avi", lambda rgb: rgb)


def test_without_pyav_one_line_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(DependencyError, match=r"gsad\[video\]"):
        probe_video(tmp_path / "a.mp4")
