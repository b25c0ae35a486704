"""The eps network as an ONNX graph: what other runtimes (ONNX Runtime, OpenVINO, TensorRT) run.

The graph is the part the samplers call, :meth:`gsad.network.unet.UNet.forward` without the
uncertainty head::

    eps = f(x, level)    x: N x 6 x H x W float32 (the low-light image and x_t, both in [-1, 1])
                         level: N float32 (the noise level sqrt(alpha_bar))
                         eps: N x 3 x H x W float32

with N, H and W dynamic (H and W multiples of the network's stride). The file describes itself:
its metadata (``metadata_props``) holds :data:`FORMAT`, the network's
:class:`~gsad.config.NetworkConfig` and the sampler defaults (:class:`~gsad.config.SamplerConfig`)
as JSON, and the stride, so a program with onnxruntime and numpy alone can run the sampler
(``examples/onnx_enhance.py``).

How the graph normalises groups is a choice (:data:`GROUP_NORMS`): ``"standard"`` is torch's
export of GroupNorm (the activations reshaped to N x groups x rest, an InstanceNormalization, reshaped
back), which every runtime reads; ``"channel-stats"`` (:func:`group_norm_from_channel_stats`) never
reshapes the large tensor, which spares OpenVINO's CPU plugin a change of memory layout around every
norm (docs/results.md#engines).

Needs the ``onnx`` package (``pip install "gsad[export]"``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gsad.config import GROUP_NORM_NAMES, NetworkConfig, SamplerConfig
from gsad.errors import DependencyError
from gsad.network.unet import UNet

#: ``gsad.format`` of the files this module writes (a reader checks it before trusting the rest).
FORMAT = "gsad-eps-onnx/1"
#: Default ONNX opset: 18 is what ONNX Runtime (1.14+), OpenVINO (2023.0+) and TensorRT (8.6+) all read.
DEFAULT_OPSET = 18
#: Names of the graph's inputs and output.
INPUTS, OUTPUT = ("x", "level"), "eps"
#: The graph's forms of GroupNorm (see the module).
GROUP_NORMS = GROUP_NORM_NAMES


def group_norm_from_channel_stats(
    x: torch.Tensor,
    num_groups: int,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """:func:`torch.nn.functional.group_norm` of an ``N x C x H x W`` tensor from per-channel statistics.

    The means of ``x`` and ``x * x`` over each channel (N x C x 1 x 1) are averaged per group on those
    small tensors, and the norm is one per-channel ``x * scale + shift``: the large tensor is only
    reduced and scaled, never reshaped. The variance is ``E[x^2] - E[x]^2`` (clamped at 0), which
    loses precision only where a group's mean is thousands of times its spread; the engines' fidelity
    check (``--precision auto``) would refuse a graph that drifts.
    """
    n, c = x.shape[:2]
    per_group = c // num_groups
    mean = x.mean(dim=(2, 3), keepdim=True).reshape(n, num_groups, per_group).mean(-1, keepdim=True)
    square = (x * x).mean(dim=(2, 3), keepdim=True).reshape(n, num_groups, per_group).mean(-1, keepdim=True)
    inv_std = torch.rsqrt((square - mean * mean).clamp_min(0) + eps)
    scale = inv_std.expand(n, num_groups, per_group).reshape(n, c, 1, 1)
    shift = -(mean.expand(n, num_groups, per_group).reshape(n, c, 1, 1) * scale)
    if weight is not None:
        scale = scale * weight.reshape(1, c, 1, 1)
        shift = shift * weight.reshape(1, c, 1, 1)
    if bias is not None:
        shift = shift + bias.reshape(1, c, 1, 1)
    return x * scale + shift


@contextlib.contextmanager
def _group_norm_as(form: str) -> Iterator[None]:
    """Trace GroupNorm (the layers call ``F.group_norm``) in ``form``, one of :data:`GROUP_NORMS`."""
    if form not in GROUP_NORMS:
        raise ValueError(f"group_norm is one of {', '.join(GROUP_NORMS)}, not {form!r}")
    if form == "standard":
        yield
        return
    standard = F.group_norm
    F.group_norm = group_norm_from_channel_stats
    try:
        yield
    finally:
        F.group_norm = standard


class EpsNetwork(nn.Module):
    """``(x, level) -> eps``: the U-Net's eps head alone (one tensor out), the graph that is exported."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.unet(x, level, uncertainty=False)[0]


def metadata(config: NetworkConfig, sampler: SamplerConfig, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The ``metadata_props`` of an exported file: format, network, sampler defaults, stride, and ``extra``."""
    props = {
        "gsad.format": FORMAT,
        "gsad.network": json.dumps(dataclasses.asdict(config)),
        "gsad.sampler": json.dumps(dataclasses.asdict(sampler)),
        "gsad.stride": str(config.stride),
        "gsad.inputs": "x: N x 6 x H x W float32, cat(low-light image, x_t) in [-1, 1]; level: N float32, "
                       "sqrt(alpha_bar); H, W multiples of gsad.stride",
    }
    props.update(extra or {})
    return props


def _onnx():
    try:
        import onnx
    except ImportError:
        raise DependencyError('exporting to ONNX needs the onnx package: pip install "gsad[export]"') from None
    return onnx


def export_onnx(
    model: UNet,
    path: str | os.PathLike,
    props: dict[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
    example: tuple[int, int] | None = None,
    group_norm: str = "standard",
) -> Path:
    """Write ``model``'s eps network to ``path`` (ONNX, float32, dynamic N/H/W) with metadata ``props``.

    The graph is traced on a random batch of two at two noise levels, ``example`` = (H, W) pixels
    (default: 4 strides square; any multiple of the stride gives the same graph), with autograd on:
    the layers' inference shortcuts (a noise term folded into a convolution's bias when the
    batch has one level, in-place activations) are Python-side choices a trace would freeze, and
    the plain path computes the same numbers for every batch. ``group_norm`` is the graph's form of
    GroupNorm (:data:`GROUP_NORMS`, see the module). The trace runs in eval mode and
    leaves ``model``'s mode as it was. ``path`` is written as is (callers
    write through :func:`gsad.files.write_output`). Raises
    :class:`~gsad.errors.DependencyError` without the onnx package.
    """
    onnx = _onnx()
    stride = model.config.stride
    height, width = example or (4 * stride, 4 * stride)
    was_training = model.training
    net = EpsNetwork(model).eval()
    x = torch.randn(2, model.config.in_channels, height, width, generator=torch.Generator().manual_seed(0))
    level = torch.tensor([0.4, 0.8])
    dims = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings(), torch.enable_grad(), _group_norm_as(group_norm):
            # the tracer warns about Python-side checks (the stride test in UNet.features): they hold
            # for every size the graph is meant for, which the file's metadata states
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net, (x, level), str(path), input_names=list(INPUTS), output_names=[OUTPUT], opset_version=opset,
                dynamic_axes={"x": dims, "level": {0: "batch"}, OUTPUT: dims}, dynamo=False,
            )
    finally:
        model.train(was_training)  # traced in eval mode; the caller's model is left as it was
    graph = onnx.load(str(path))
    del graph.metadata_props[:]
    for key, value in (props or {}).items():
        graph.metadata_props.add(key=key, value=value)
    graph.producer_name = "gsad"
    onnx.save(graph, str(path))
    return Path(path)


def read_props(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict (needs the onnx package)."""
    graph = _onnx().load(str(path), load_external_data=False)
    return {p.key: p.value for p in graph.metadata_props}
