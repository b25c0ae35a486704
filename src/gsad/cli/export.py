"""``gsad export``: a checkpoint's eps network -> a self-describing ONNX file (:mod:`gsad.network.onnx_export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gsad.cli import options
from gsad.config import GROUP_NORM_NAMES
from gsad.errors import InputError

#: Largest difference from torch's eps that the check after export accepts.
CHECK_TOLERANCE = 1e-4
#: Input size (H, W) of that check, rounded up to the network's stride: not square, so that a
#: graph which mixed up height and width fails it.
CHECK_SIZE = (48, 80)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Write the network the samplers call (x, level -> eps; the uncertainty head is left out) as an ONNX "
        "file with dynamic batch, height and width, the network config and the sampler defaults in its "
        "metadata. ONNX Runtime, OpenVINO and TensorRT read it; examples/onnx_enhance.py enhances a photo "
        "with onnxruntime and numpy alone. Needs pip install \"gsad[export]\"."
    )
    p.add_argument("source", metavar="CHECKPOINT",
                   help="gsad .safetensors, training run folder or reference .pth; 'default' for the bundled model")
    p.add_argument("target", metavar="OUT", help="ONNX file to write (.onnx)")
    p.add_argument("--opset", type=options.whole(14, 23), default=None, metavar="N",
                   help="ONNX opset version, 14-23 (default 18: read by ONNX Runtime 1.14+, OpenVINO 2023.0+, "
                        "TensorRT 8.6+)")
    p.add_argument("--group-norm", choices=GROUP_NORM_NAMES, default="standard",
                   help="how the graph computes GroupNorm: 'standard' (torch's export: the activations reshaped to "
                        "groups; default) or 'channel-stats' (per-channel statistics, the activations never "
                        "reshaped: about 1.17x faster on OpenVINO's CPU plugin in f32, the form gsad's own "
                        "OpenVINO f32 engine uses; under OpenVINO's bf16 hint it strays further from torch than "
                        "'standard')")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the check that ONNX Runtime reproduces torch's eps within "
                        f"{CHECK_TOLERANCE:g} on a random input (it runs whenever onnxruntime is installed)")
    options.add_sampler_options(p, title="sampler defaults stored in the file (default: the checkpoint's)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def check_export(model, path: Path, name: Path | None = None) -> float:
    """Largest difference between ONNX Runtime's eps from ``path`` and torch's on a random input
    (a batch of two at different noise levels). Raises :class:`~gsad.errors.ModelOutputError`
    naming ``name`` (default ``path``) beyond :data:`CHECK_TOLERANCE`."""
    import onnxruntime
    import torch

    from gsad.errors import ModelOutputError
    from gsad.network.onnx_export import EpsNetwork

    stride = model.config.stride
    h, w = (-(-side // stride) * stride for side in CHECK_SIZE)
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, model.config.in_channels, h, w, generator=generator) * 2 - 1
    level = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        expected = EpsNetwork(model).eval()(x, level).numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy(), "level": level.numpy()})[0]
    worst = float(abs(got - expected).max()) if got.shape == expected.shape else float("inf")
    if not worst <= CHECK_TOLERANCE:
        raise ModelOutputError(f"{name or path}: ONNX Runtime's eps differs from torch's by {worst:.3g} "
                               f"(tolerance {CHECK_TOLERANCE:g}); nothing was written")
    return worst


def run(args: argparse.Namespace) -> int:
    from gsad import __version__
    from gsad.checkpoints import load_checkpoint, model_path, resolve_checkpoint
    from gsad.config import with_overrides
    from gsad.files import OutputPlan, write_output
    from gsad.network.onnx_export import DEFAULT_OPSET, export_onnx, metadata
    from gsad.runtime.engines import installed

    source = model_path(args.source)
    target = Path(args.target)
    if target.suffix.lower() != ".onnx":
        raise InputError(f"{target}: the output must be an .onnx file")
    OutputPlan([resolve_checkpoint(source)]).check(target, args.overwrite)
    model, sampler, _ = load_checkpoint(source)
    settings = with_overrides(sampler, **options.sampler_overrides(args))
    props = metadata(model.config, settings, {"gsad.version": __version__, "gsad.source": source.name})
    check = args.check and installed("onnxruntime")
    worst: list[float] = []

    def write(tmp: str) -> None:
        export_onnx(model, tmp, props, opset=args.opset or DEFAULT_OPSET, group_norm=args.group_norm)
        if check:
            worst.append(check_export(model, Path(tmp), target))

    write_output(target, write, overwrite=args.overwrite)
    size = target.stat().st_size / 1e6
    if check:
        verdict = f"ONNX Runtime matches torch within {worst[0]:.1e}"
    elif args.check:
        verdict = 'not checked: pip install onnxruntime (or "gsad[export]") to check it'
    else:
        verdict = "not checked (--no-check)"
    print(f"{source} -> {target} ({size:.1f} MB, opset {args.opset or DEFAULT_OPSET}; {verdict})")
    return 0
