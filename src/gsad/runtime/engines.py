"""Engines other than torch for the eps network: ONNX Runtime and OpenVINO.

Optional (``pip install "gsad[fast]"``: onnx, onnxruntime, openvino); without them
:func:`available_engines` is empty and nothing here is imported. An engine net has the call
of :class:`~gsad.network.inference_net.InferenceNet`, ``net(x, level) -> (eps, None)`` with
``eps`` float32 NCHW, plus ``config`` and ``precompute`` (a no-op: the graph computes the noise
terms), so the samplers, tiling and the self-ensemble run it unchanged.

- **The graph** is :func:`gsad.network.onnx_export.export_onnx`'s, exported once per model and
  kept in ``onnx/<key>.onnx`` under :func:`gsad.runtime.fastpath.cache_dir`, where ``<key>``
  hashes the network config and the eps network's weights (:func:`model_key`): exporting
  takes seconds, loading the file a fraction of one. OpenVINO's f32 graph holds its GroupNorms in
  the ``channel-stats`` form (:func:`group_norm_form`), which the CPU plugin runs without layout
  changes around each norm (1.17x faster on a Zen 4, same output); under the bf16 hint that form
  drifts past the fidelity tolerance (1.3 levels of 255 against 0.55), and ONNX Runtime runs both
  forms equally fast, so they keep the standard form.
- **ONNX Runtime** (CPU execution provider, fp32) runs one session for every input shape, with
  torch's thread count.
- **OpenVINO** (CPU plugin, ``f32`` or ``bf16`` inference precision hint) compiles the graph
  for each input shape it meets and keeps the compiled models (tiles and the self-ensemble
  repeat shapes); its own model cache (``openvino/`` under the cache folder) keeps compiled
  blobs across processes, so a later run's compilation is a load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from gsad.config import ENGINE_NAMES, SamplerConfig
from gsad.errors import DependencyError
from gsad.files import atomic_write
from gsad.network.onnx_export import DEFAULT_OPSET, FORMAT, export_onnx, metadata
from gsad.network.unet import UNet

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Every engine name (``torch`` is always there).
ENGINES = ENGINE_NAMES
#: The pip extra that installs the other engines.
EXTRA = "fast"
#: Python module each engine needs (both also need onnx, to export the graph).
_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}
#: Engine and precision whose graph holds GroupNorm in a form other than ``standard``
#: (:data:`gsad.network.onnx_export.GROUP_NORMS`; see the module).
GROUP_NORM_FORMS = {("openvino", "fp32"): "channel-stats"}
#: Precisions each engine runs (names of :data:`gsad.config.PRECISION_NAMES`).
PRECISIONS = {"torch": ("fp32", "bf16", "fp16"), "onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a broken install, or an import hook that refuses it
        return False


def available_engines() -> tuple[str, ...]:
    """The engines besides torch whose packages are installed (with onnx for the export), in :data:`ENGINES` order."""
    if not installed("onnx"):
        return ()
    return tuple(e for e in ENGINES[1:] if installed(_MODULES[e]))


def require(engine: str) -> None:
    """Raise :class:`~gsad.errors.DependencyError` (one line naming the extra) unless ``engine`` can run."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    if engine != "torch" and engine not in available_engines():
        raise DependencyError(f'the {engine} engine needs its packages: pip install "gsad[{EXTRA}]"')


def group_norm_form(engine: str, precision: str) -> str:
    """The form of GroupNorm in ``engine``'s graph at ``precision`` (:data:`GROUP_NORM_FORMS`)."""
    return GROUP_NORM_FORMS.get((engine, precision), "standard")


def model_key(model: UNet, group_norm: str = "standard") -> str:
    """Hash of ``model``'s network config and eps weights (the uncertainty head is not exported), the
    export's format, opset and GroupNorm form and torch's version (a graph is exported again when any
    changes)."""
    what = {"config": dataclasses.asdict(model.config), "format": FORMAT, "opset": DEFAULT_OPSET,
            "torch": torch.__version__}
    if group_norm != "standard":  # the standard form keeps the keys of the graphs already cached
        what["group_norm"] = group_norm
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("uncertainty_head."):
            continue
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def onnx_file(model: UNet, folder: Path, group_norm: str = "standard") -> Path:
    """The ONNX graph of ``model`` with GroupNorm in form ``group_norm`` in ``folder``
    (``<model_key>.onnx``), exported on first use."""
    path = folder / f"{model_key(model, group_norm)}.onnx"
    if not path.exists():
        log.info("exporting the network to %s (once per model)", path)
        atomic_write(path, lambda tmp: export_onnx(model, tmp, metadata(model.config, SamplerConfig()),
                                                   group_norm=group_norm))
    return path


def reason(exc: BaseException) -> str:
    """An engine's error in one line: its last non-empty line (OpenVINO puts the cause last, under
    lines naming its source files), else the exception's type."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def load_graph(model: UNet, folder: Path, engine: str, load: Callable[[Path], T], group_norm: str = "standard") -> T:
    """``load(path)`` of ``model``'s cached graph (:func:`onnx_file`). A cached file the engine cannot
    read (damaged on disk) is exported again, once; a second failure is one
    :class:`~gsad.errors.DependencyError` line naming the engine and the way around it."""
    for attempt in range(2):
        path = onnx_file(model, folder, group_norm)
        try:
            return load(path)
        except Exception as exc:  # noqa: BLE001 (each engine raises its own types)
            if attempt == 0:
                log.warning("%s: %s cannot read the cached network (%s); exporting it again", path, engine,
                            reason(exc))
                path.unlink(missing_ok=True)
                continue
            raise DependencyError(f"the {engine} engine cannot run the network ({reason(exc)}); --engine torch runs "
                                  "without it") from None
    raise AssertionError("unreachable")


class EngineNet(nn.Module):
    """The call of :class:`~gsad.network.inference_net.InferenceNet` on another engine (see the module).

    A module without parameters (the engine holds the weights), so forward hooks (benchmarks'
    clocks) see its calls as they see InferenceNet's."""

    engine = "torch"

    def __init__(self, model: UNet, precision: str) -> None:
        super().__init__()
        if precision not in PRECISIONS[self.engine]:
            raise ValueError(f"the {self.engine} engine runs {', '.join(PRECISIONS[self.engine])}, not {precision}")
        self.config = model.config
        self.precision = precision

    def precompute(self, levels: torch.Tensor) -> None:
        """Nothing to do: the graph computes the noise terms from ``level``."""

    def run(self, x: np.ndarray, level: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, None]:
        device = x.device
        inputs = x.detach().to("cpu", torch.float32).contiguous().numpy()
        levels = level.detach().to("cpu", torch.float32).reshape(-1).expand(x.shape[0]).contiguous().numpy()
        try:
            eps = self.run(inputs, levels)
        except Exception as exc:  # noqa: BLE001 (each engine raises its own types)
            raise DependencyError(f"the {self.engine} engine failed on a {'x'.join(map(str, inputs.shape))} input "
                                  f"({reason(exc)}); --engine torch runs without it") from None
        return torch.from_numpy(np.ascontiguousarray(eps, dtype=np.float32)).to(device), None


class OnnxRuntimeNet(EngineNet):
    """The eps network in an ONNX Runtime session (CPU execution provider, fp32)."""

    engine = "onnxruntime"

    def __init__(self, model: UNet, precision: str, folder: Path) -> None:
        super().__init__(model, precision)
        require(self.engine)
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings and below (e.g. unused initialisers) are not the user's business
        self.session = load_graph(model, folder, self.engine, lambda path: onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]))

    def run(self, x: np.ndarray, level: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"x": x, "level": level})[0]


class OpenVinoNet(EngineNet):
    """The eps network compiled by OpenVINO for the CPU, one compiled model per input shape."""

    engine = "openvino"

    def __init__(self, model: UNet, precision: str, folder: Path) -> None:
        super().__init__(model, precision)
        require(self.engine)
        import openvino

        self.core = openvino.Core()
        self.cache = folder.parent / "openvino"
        self.graph = load_graph(model, folder, self.engine, lambda path: self.core.read_model(str(path)),
                                group_norm_form(self.engine, precision))
        self.compiled: dict[tuple[int, ...], object] = {}

    def _compiled(self, shape: tuple[int, ...]):
        if shape not in self.compiled:
            model = self.graph.clone()
            model.reshape({"x": list(shape), "level": [shape[0]]})
            config = {
                "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bf16" else "f32",
                "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                "PERFORMANCE_HINT": "LATENCY",
                "CACHE_DIR": str(self.cache),
            }
            self.compiled[shape] = self.core.compile_model(model, "CPU", config)
        return self.compiled[shape]

    def run(self, x: np.ndarray, level: np.ndarray) -> np.ndarray:
        return self._compiled(tuple(x.shape))({"x": x, "level": level})[0]


def engine_net(model: UNet, engine: str, precision: str, folder: Path) -> EngineNet:
    """An :class:`EngineNet` of ``model`` on ``engine`` (not torch) at ``precision``; graphs kept in ``folder``."""
    require(engine)
    kinds = {"onnxruntime": OnnxRuntimeNet, "openvino": OpenVinoNet}
    if engine not in kinds:
        raise ValueError(f"engine_net builds onnxruntime or openvino nets, not {engine!r}")
    return kinds[engine](model, precision, folder)
