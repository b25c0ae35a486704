"""``gsad demo``: the local web page (needs gsad[demo])."""

from __future__ import annotations

import argparse

from gsad.cli import options

#: gsad.demo.MAX_VIDEO_FRAMES, repeated so that ``gsad demo --help`` imports no numpy (a test asserts they match).
MAX_VIDEO_FRAMES = 300


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="C",
                   help="gsad .safetensors file, training run folder, reference .pth, or 'default' for the "
                        "bundled model (the default)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=options.port, default=7860, help="port to serve on, 1-65535 (default 7860)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--max-video-frames", type=options.whole(1, 1_000_000), default=MAX_VIDEO_FRAMES, metavar="N",
                   help=f"refuse uploaded videos of more than N frames (default {MAX_VIDEO_FRAMES}; the work "
                        "budget per request counts every frame too); gsad enhance takes any length")
    p.epilog = ("Uploads, Gradio's cache and the results live in one private temporary folder (gsad-demo-*), "
                "capped in files and bytes, and are removed when the server stops, by Ctrl-C or SIGTERM. "
                "Only the example photos, uploads and results are served. The HTTP API is held to the page's "
                "ranges (steps, exposure, ensemble) and to a work budget per request (megapixels x steps x "
                "ensemble); the limits are named in gsad.demo.")


def run(args: argparse.Namespace) -> int:
    from gsad.demo import serve

    serve(options.model(args.checkpoint), host=args.host, port=args.port, device=args.device, max_frames=args.max_video_frames)
    return 0
