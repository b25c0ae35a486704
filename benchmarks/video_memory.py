"""Peak memory of ``gsad enhance CLIP.mp4`` against the clip's length (frames are streamed).

    OMP_NUM_THREADS=1 python benchmarks/video_memory.py [--size 160x120] [--fps 10] [--seconds 5 20]
        [--no-model] [-- extra gsad enhance flags, default: --steps 1 --ensemble 1]

For each length, writes a clip (moving dark gradient with noise, AAC audio) with PyAV, runs
``python -m gsad enhance`` on it in a child process and prints the child's wall time and peak
resident memory (ru_maxrss of that child alone). ``--no-model`` runs only the video path
(decode, encode, audio copy: :func:`gsad.imaging.video.transcode` passing frames through), which
is what could grow with the length; the model's memory is that of one frame.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_clip(path: Path, seconds: float, fps: int, size: tuple[int, int]) -> None:
    import av

    w, h = size
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = out.add_stream("aac", rate=16000)
        for i in range(round(seconds * fps)):
            base = ((x + 2 * i) % w * 40 / w + y * 20 / h)[..., None] * np.array([1.0, 0.8, 0.6])
            pixels = np.clip(base + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        for t in range(0, round(seconds * 16000), 1024):
            wave = 0.1 * np.sin(2 * np.pi * 440 * np.arange(t, t + 1024) / 16000)
            frame = av.AudioFrame.from_ndarray(wave[None].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, t
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="160x120")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--no-model", action="store_true",
                        help="measure the video path alone: gsad.imaging.video.transcode with frames passed through")
    parser.add_argument("flags", nargs="*", default=["--steps", "1", "--ensemble", "1"])
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            clip, out = Path(tmp) / f"clip{seconds:g}.mp4", Path(tmp) / f"out{seconds:g}.mp4"
            make_clip(clip, seconds, args.fps, size)
            start = time.perf_counter()
            if args.no_model:
                command = [sys.executable, "-c", "import sys; from gsad.imaging.video import transcode; "
                           "transcode(sys.argv[1], sys.argv[2], lambda rgb: rgb)", str(clip), str(out)]
            else:
                command = [sys.executable, "-m", "gsad", "enhance", str(clip), "-o", str(out), "--device", "cpu",
                           *args.flags]
            child = subprocess.Popen(command, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the clip writer's
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds_taken = time.perf_counter() - start
            frames = round(seconds * args.fps)
            print(f"{seconds:g} s clip ({frames} frames of {size[0]} x {size[1]}): exit {child.returncode}, "
                  f"{seconds_taken:.0f} s wall, peak RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
