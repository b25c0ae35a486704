"""``gsad demo``: the local web page (needs gsad[demo])."""

from __future__ import annotations

import argparse

from gsad.cli import options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", metavar="C",
                   help="gsad .safetensors file, training run folder, or reference .pth (default: bundled model)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=options.port, default=7860, help="port to serve on, 1-65535 (default 7860)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")


def run(args: argparse.Namespace) -> int:
    from gsad.demo import serve

    serve(args.checkpoint, host=args.host, port=args.port, device=args.device)
    return 0
