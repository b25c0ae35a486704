"""Checkpoints: gsad's safetensors format, and import of the reference code's ``.pth`` files.

**gsad format** (``.safetensors``): the U-Net's tensors under our module names, and in the
metadata ``gsad.format`` (= "1"), ``gsad.network`` (the :class:`NetworkConfig` as JSON) and
``gsad.sampler`` (the :class:`SamplerConfig` defaults as JSON), plus free-form ``gsad.*``
notes (how it was trained). The file is all a user needs.

**Reference format** (``.pth``, jinnh/GSAD): ``torch.save(state_dict)`` of its
GaussianDiffusion wrapper: U-Net tensors under ``denoise_fn.``, optionally behind
``module.`` (DataParallel), plus training-schedule buffers (``betas``, ...) that we ignore.
The architecture is inferred from tensor shapes and key names (norm groups: 32). The
reference's ResnetBlocks carry an ``mlp`` Linear layer that its forward never uses; we drop
it on import and fill it with zeros on export (that dead layer is why the paper counts
17.36 M parameters where our module has 17.12 M).

**Run directories** (made by ``gsad train``): a file ``latest`` names the newest inference
checkpoint (EMA weights, gsad format) inside the run directory.
"""

from __future__ import annotations

import json
import os
import re
import warnings
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from gsad.config import MAX_PARAMETERS, NetworkConfig, SamplerConfig, from_dict, to_dict
from gsad.errors import CheckpointError, ConfigError
from gsad.files import write_bytes, write_output
from gsad.network.unet import UNet

FORMAT_VERSION = "1"
_REFERENCE_NORM_GROUPS = 32

# Budgets on untrusted checkpoint files, each checked before the data it bounds is read or allocated
# (the network's own budget, gsad.config.MAX_PARAMETERS, is checked from its config before any network
# is built, on the meta device first).

#: Largest safetensors header (the JSON of tensor names, shapes and metadata) read; the paper
#: model's is 20 KB.
MAX_HEADER_BYTES = 8 << 20

#: Longest ``gsad.network`` or ``gsad.sampler`` metadata value parsed; gsad writes under 200 characters.
MAX_CONFIG_CHARS = 4096

#: Most bytes the tensors of a reference ``.pth`` (a zip, as torch.save writes it) may take once
#: decompressed, read from the zip's directory before torch decompresses anything: the parameter
#: budget in float32, plus a quarter for the reference's dead ``mlp`` layers and schedule buffers.
#: (torch.save stores entries uncompressed; a deflated entry of zeros is a "zip bomb".)
MAX_REFERENCE_BYTES = 5 * MAX_PARAMETERS


# ----------------------------------------------------------------------------------------
# Key mapping between our module tree and the reference's flat `downs` / `mid` / `ups` lists
# ----------------------------------------------------------------------------------------

_BLOCK_KEYS = {
    "res_block.block1.block.0": "norm1",
    "res_block.block1.block.3": "conv1",
    "res_block.noise_func.noise_func.0": "noise_proj",
    "res_block.block2.block.0": "norm2",
    "res_block.block2.block.3": "conv2",
    "res_block.res_conv": "skip",
    "attn.norm": "attn.norm",
    "attn.qkv": "attn.qkv",
    "attn.out": "attn.proj",
}
_FIXED_KEYS = {
    "noise_level_mlp.1": "noise_embed.linear1",
    "noise_level_mlp.3": "noise_embed.linear2",
    "downs.0": "stem",
    "final_conv.block.0": "out_norm",
    "final_conv.block.3": "out_conv",
    "var_conv.0": "uncertainty_head.0",
    "var_conv.2": "uncertainty_head.2",
    "var_conv.4": "uncertainty_head.4",
}


def _module_map(config: NetworkConfig) -> dict[str, str]:
    """Reference module prefix -> our module prefix, for every module of ``config``."""
    mapping = dict(_FIXED_KEYS)
    levels = len(config.channel_mults)
    index = 1
    for level in range(levels):
        for b in range(config.res_blocks):
            mapping[f"downs.{index}"] = f"encoder.{level}.blocks.{b}"
            index += 1
        if level != levels - 1:
            mapping[f"downs.{index}"] = f"encoder.{level}.down"
            index += 1
    mapping["mid.0"] = "middle.0"
    mapping["mid.1"] = "middle.1"
    index = 0
    for pos, level in enumerate(reversed(range(levels))):
        for b in range(config.res_blocks + 1):
            mapping[f"ups.{index}"] = f"decoder.{pos}.blocks.{b}"
            index += 1
        if level != 0:
            mapping[f"ups.{index}"] = f"decoder.{pos}.up"
            index += 1
    return mapping


def _translate(key: str, mapping: dict[str, str]) -> str | None:
    """Reference key (without ``denoise_fn.``) -> our key; None for dead/unknown keys."""
    module, _, param = key.rpartition(".")
    for ref_prefix in sorted(mapping, key=len, reverse=True):
        if module == ref_prefix:
            return f"{mapping[ref_prefix]}.{param}"
        if module.startswith(ref_prefix + "."):
            inner = module[len(ref_prefix) + 1 :]
            if inner.startswith("res_block.mlp"):
                return None
            if inner == "conv":  # Downsample / Upsample
                return f"{mapping[ref_prefix]}.conv.{param}"
            if inner in _BLOCK_KEYS:
                return f"{mapping[ref_prefix]}.{_BLOCK_KEYS[inner]}.{param}"
    return None


def _strip_reference_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        if key.startswith("module."):
            key = key[len("module.") :]
        if key.startswith("denoise_fn."):
            out[key[len("denoise_fn.") :]] = value
        elif key.startswith(("downs.", "ups.", "mid.", "noise_level_mlp.", "final_conv.", "var_conv.")):
            out[key] = value  # a bare U-Net state dict
    return out


def _layout_error(source: str, why: str) -> CheckpointError:
    return CheckpointError(f"{source}: cannot infer the U-Net layout: {why}")


def _conv_weight(state: dict[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    """``state[key]``, which must be a convolution weight (out, in, kh, kw) with channels."""
    weight = state[key]
    if weight.dim() != 4 or min(weight.shape[:2]) < 1:
        raise _layout_error(source, f"{key} has shape {tuple(weight.shape)}, not that of a convolution weight "
                                    "(out channels, in channels, height, width)")
    return weight


def infer_reference_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> NetworkConfig:
    """Infer the :class:`NetworkConfig` of a reference U-Net state dict (prefixes stripped).

    Reads only names and shapes; a layout it cannot follow, or a config gsad refuses (wrong
    channels, over the parameter budget: :class:`NetworkConfig`'s checks), is a CheckpointError."""
    for key in ("downs.0.weight", "final_conv.block.3.weight"):
        if key not in state:
            raise CheckpointError(f"{source}: not a GSAD/SR3 U-Net state dict (missing {key!r})")
    stem = _conv_weight(state, "downs.0.weight", source)
    base, in_ch = int(stem.shape[0]), int(stem.shape[1])
    out_ch = int(_conv_weight(state, "final_conv.block.3.weight", source).shape[0])
    # at most 6 digits: a longer index is not a layer of any network gsad accepts (and int() of
    # thousands of digits is refused by Python)
    indices = sorted({int(m.group(1)) for k in state if (m := re.match(r"downs\.(\d{1,6})\.", k))})
    mults: list[int] = []
    blocks_per_level: list[int] = []
    attn_levels: list[int] = []
    count = 0
    for i in indices[1:]:
        if f"downs.{i}.conv.weight" in state:  # a downsample closes a level
            blocks_per_level.append(count)
            count = 0
            continue
        key = f"downs.{i}.res_block.block1.block.3.weight"
        if key not in state:
            raise _layout_error(source, f"downs.{i} is neither a residual block nor a downsample (no {key})")
        width = int(_conv_weight(state, key, source).shape[0])
        if count == 0:
            if width % base:
                raise _layout_error(source, f"{key} has {width} channels, not a multiple of the {base} of "
                                            "downs.0.weight")
            mults.append(width // base)
            if f"downs.{i}.attn.qkv.weight" in state:
                attn_levels.append(len(mults) - 1)
        count += 1
    blocks_per_level.append(count)
    if not mults or len(set(blocks_per_level)) != 1:
        raise _layout_error(source, f"blocks per level {blocks_per_level}, expected the same number at every level")
    try:
        return NetworkConfig(
            in_channels=in_ch,
            out_channels=out_ch,
            base_channels=base,
            channel_mults=tuple(mults),
            res_blocks=blocks_per_level[0],
            attn_levels=tuple(attn_levels),
            norm_groups=_REFERENCE_NORM_GROUPS,
            uncertainty_head="var_conv.0.weight" in state,
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: inferred architecture is invalid ({exc})") from None


def from_reference_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> UNet:
    """Build our U-Net from a reference state dict (``denoise_fn.`` / ``module.`` handled)."""
    unet_state = _strip_reference_prefixes(state)
    if not unet_state:
        raise CheckpointError(f"{source}: no U-Net weights (no 'denoise_fn.' keys)")
    config = infer_reference_config(unet_state, source)
    mapping = _module_map(config)
    ours: dict[str, torch.Tensor] = {}
    for key, value in unet_state.items():
        new = _translate(key, mapping)
        if new is not None:
            ours[new] = value
    return _build_checked(config, ours, source)


def to_reference_state_dict(model: UNet, prefix: str = "denoise_fn.") -> dict[str, torch.Tensor]:
    """Our U-Net as a reference-code state dict (dead ``mlp`` layers included, as zeros)."""
    mapping = _module_map(model.config)
    ours = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    block_inv = {v: k for k, v in _BLOCK_KEYS.items()}
    for key, value in ours.items():
        ref_prefix = max((p for p in mapping if key.startswith(mapping[p] + ".")), key=lambda p: len(mapping[p]))
        rest = key[len(mapping[ref_prefix]) + 1 :]
        module, _, param = rest.rpartition(".")
        if module in block_inv:
            out[f"{prefix}{ref_prefix}.{block_inv[module]}.{param}"] = value
        else:
            out[f"{prefix}{ref_prefix}.{rest}"] = value
        if module == "noise_proj":  # the reference's unused per-block mlp
            out[f"{prefix}{ref_prefix}.res_block.mlp.1.{param}"] = torch.zeros_like(value)
    return out


def _check_layout(shapes: dict[str, tuple[int, ...]], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights whose names or shapes do not fit ``expected`` (read before any data is)."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{source}: weights do not fit the architecture ({detail})")
    for key, shape in shapes.items():
        if tuple(shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: tensor {key} has shape {tuple(shape)}, expected {tuple(expected[key].shape)}"
            )


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights that do not fit ``expected`` (names, shapes) or hold NaN/inf values."""
    _check_layout({k: tuple(v.shape) for k, v in state.items()}, expected, source)
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{source}: tensor {key} holds NaN or infinite values (a diverged or corrupt model); "
                "it would only produce black images"
            )


def _skeleton(config: NetworkConfig) -> dict[str, torch.Tensor]:
    """The state dict of ``UNet(config)`` on the meta device: names and shapes, no memory."""
    with torch.device("meta"):
        return UNet(config).state_dict()


def _build_checked(config: NetworkConfig, state: dict[str, torch.Tensor], source: str) -> UNet:
    """A U-Net of ``config`` holding ``state``; names and shapes are checked on a weightless copy
    first, so a file claiming a network other than its tensors (or a huge one) cannot allocate it
    (``config`` itself is within gsad.config.MAX_PARAMETERS: NetworkConfig checks that)."""
    _check_state(state, _skeleton(config), source)
    model = UNet(config)
    model.load_state_dict(state)
    return model


# ----------------------------------------------------------------------------------------
# gsad format
# ----------------------------------------------------------------------------------------


def save_checkpoint(
    path: str | os.PathLike,
    model: UNet,
    sampler: SamplerConfig | None = None,
    notes: dict[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``model`` (+ sampler defaults and notes) as a gsad safetensors file, atomically.

    An existing file is replaced only with ``overwrite`` (training replaces its own files; the
    CLI passes the user's ``--overwrite``); write failures are one InputError line."""
    from safetensors.torch import save

    path = Path(path)
    metadata = {
        "gsad.format": FORMAT_VERSION,
        "gsad.network": json.dumps(to_dict(model.config)),
        "gsad.sampler": json.dumps(to_dict(sampler or SamplerConfig())),
    }
    for key, value in (notes or {}).items():
        metadata[f"gsad.{key}"] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    # Serialised here and written by Python, so that a failed write (a full disk) is an OSError, which
    # write_output reports in one line (safetensors' own writer raises its SafetensorError).
    data = save(tensors, metadata=metadata)
    return write_output(path, lambda tmp: write_bytes(tmp, data), overwrite)


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The raw ``gsad.*`` metadata of a gsad checkpoint."""
    from safetensors import safe_open

    _check_header_size(Path(path))
    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_first_line(exc)})") from None


def _check_header_size(path: Path) -> None:
    """Refuse a safetensors header over :data:`MAX_HEADER_BYTES` before safetensors parses it."""
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{path}: not a safetensors checkpoint (its header claims {size:,} bytes; gsad "
                              f"checkpoints have at most {MAX_HEADER_BYTES:,})")


def update_sampler_defaults(
    path: str | os.PathLike,
    sampler: SamplerConfig,
    notes: dict[str, Any] | None = None,
    output: str | os.PathLike | None = None,
    overwrite: bool = True,
) -> Path:
    """Store new sampler defaults (and extra notes) in a gsad checkpoint, keeping its other notes.

    Writes ``output`` when given (an existing one only with ``overwrite``), else rewrites
    ``path`` in place (atomically).
    """
    model, _, meta = load_checkpoint(path)
    reserved = ("gsad.format", "gsad.network", "gsad.sampler")
    kept = {k[len("gsad.") :]: v for k, v in meta.items() if k.startswith("gsad.") and k not in reserved}
    kept.update(notes or {})
    return save_checkpoint(output or resolve_checkpoint(path), model, sampler, kept,
                           overwrite=overwrite or output is None)


def _why_not_loadable(path: Path, exc: BaseException, caught: list[warnings.WarningMessage] = ()) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in words for the user: torch's own
    message for a file it refuses advises loading it with pickle, which gsad never does.
    ``caught``: the warnings torch gave while loading (one names the file's pickle protocol)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch's zip format, or a bare pickle
        protocol = next((m.group(1) for w in caught if (m := re.search(r"pickle protocol (\d+)", str(w.message)))),
                        None)
        if protocol is not None and "Unsupported operand" in str(exc):
            return (f"pickled with protocol {protocol}, which gsad's safe loader cannot read (it never runs "
                    "pickled code); save the state dict again with torch.save's default protocol")
        if "Weights only load failed" in str(exc):
            return ("a PyTorch file that holds more than a state dict of tensors; gsad loads only "
                    "tensors (it never runs pickled code)")
        return f"a damaged or unsupported PyTorch file ({_first_line(exc)})"
    return "not a PyTorch checkpoint or a gsad .safetensors file (unrecognised contents)"


#: Deepest nesting of brackets accepted in gsad's JSON metadata (its real fields nest 2 deep).
MAX_METADATA_NESTING = 32


def _nesting(text: str) -> int:
    """Deepest nesting of JSON brackets in ``text`` (brackets inside strings counted too: an upper bound)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: The file in a training run's folder naming its newest inference checkpoint (the run folder's
#: format: gsad.training.run_dir).
LATEST_FILE = "latest"


#: File name of the bundled default model inside ``gsad/resources``.
DEFAULT_MODEL = "default.safetensors"


def default_checkpoint() -> Path:
    """Path of the bundled default model."""
    return Path(str(resources.files("gsad") / "resources" / DEFAULT_MODEL))


#: The name that stands for the bundled default model where a model is asked for (``gsad export``'s
#: source, ``gsad train``'s ``--teacher`` and ``--init``).
DEFAULT_MODEL_NAME = "default"


def model_path(name: str | os.PathLike) -> Path:
    """A model named on the command line or in a config: :data:`DEFAULT_MODEL_NAME` is the bundled
    model's file, anything else the path it says (a checkpoint file or run directory)."""
    if str(name) == DEFAULT_MODEL_NAME:
        return default_checkpoint()
    return Path(name)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run directory's latest inference checkpoint."""
    path = Path(path)
    if path.is_dir():
        pointer = path / LATEST_FILE
        if not pointer.is_file():
            raise CheckpointError(f"{path}: a folder without a 'latest' file is not a gsad run directory")
        try:
            target = path / pointer.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise CheckpointError(f"{pointer}: not a checkpoint name (its bytes are not UTF-8 text)") from None
        except OSError as exc:
            raise CheckpointError(f"{pointer}: cannot read ({exc.strerror or exc})") from None
        if not target.is_file():
            raise CheckpointError(f"{pointer}: names {target.name}, which does not exist")
        return target
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[UNet, SamplerConfig, dict[str, str]]:
    """Load a gsad ``.safetensors`` file, a run directory, or a reference ``.pth`` state dict.

    Returns (model on the CPU in eval mode, sampler defaults, metadata). Reference files get
    the paper's LOL-v1 sampler defaults. Raises CheckpointError naming the file otherwise.
    """
    path = resolve_checkpoint(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file")
    if path.suffix == ".safetensors" or _looks_like_safetensors(path):
        return _load_gsad(path)
    return _load_reference(path)


def is_reference_checkpoint(path: str | os.PathLike) -> bool:
    """Whether ``path`` (file or run directory) is loaded as a reference ``.pth`` state dict."""
    path = resolve_checkpoint(path)
    return not (path.suffix == ".safetensors" or _looks_like_safetensors(path))


def _looks_like_safetensors(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length and a JSON header."""
    try:
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            return fh.read(1) == b"{" and n > 0
    except OSError:
        return False


def _load_gsad(path: Path) -> tuple[UNet, SamplerConfig, dict[str, str]]:
    from safetensors.torch import load_file

    meta = read_metadata(path)
    if meta.get("gsad.format") != FORMAT_VERSION or "gsad.network" not in meta:
        raise CheckpointError(f"{path}: safetensors file without gsad metadata (not a gsad checkpoint)")
    config = _metadata_config(path, meta, "network", NetworkConfig)
    sampler = _metadata_config(path, meta, "sampler", SamplerConfig)
    _check_layout(_header_shapes(path), _skeleton(config), str(path))  # before any tensor data is read
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # corrupt or truncated tensor data
        raise CheckpointError(f"{path}: corrupt safetensors data ({_first_line(exc)})") from None
    return _build_checked(config, state, str(path)).eval(), sampler, meta


def _metadata_config(path: Path, meta: dict[str, str], name: str, cls: type) -> Any:
    """The config ``cls`` stored as JSON in ``meta["gsad." + name]`` (defaults when absent); any
    oversized, malformed, too deeply nested or out-of-range value is one CheckpointError."""
    text = meta.get(f"gsad.{name}", "{}")
    if len(text) > MAX_CONFIG_CHARS:
        raise CheckpointError(f"{path}: bad gsad metadata (gsad.{name} is {len(text):,} characters long; gsad "
                              f"writes at most {MAX_CONFIG_CHARS:,})")
    try:
        if _nesting(text) > MAX_METADATA_NESTING:
            raise RecursionError
        return from_dict(cls, json.loads(text), f"{path}: {name}")
    except (ValueError, RecursionError, ConfigError) as exc:  # ValueError: bad JSON, ints of >4300 digits
        why = "nested too deeply" if isinstance(exc, RecursionError) else _first_line(exc)
        raise CheckpointError(f"{path}: bad gsad metadata ({why})") from None


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, from a safetensors header (no tensor data read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return {key: tuple(fh.get_slice(key).get_shape()) for key in fh.keys()}
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_first_line(exc)})") from None


def _check_decompressed_size(path: Path) -> None:
    """Refuse a zip (torch.save's format) whose entries decompress to more than :data:`MAX_REFERENCE_BYTES`,
    from its directory alone. torch allocates each entry's size as the directory states it, so this
    bounds what loading can allocate. Files zipfile cannot read are left to torch.load's errors."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    if total > MAX_REFERENCE_BYTES:
        raise CheckpointError(
            f"{path}: its tensors take {total:,} bytes once decompressed, more than any network gsad accepts "
            f"needs ({MAX_REFERENCE_BYTES:,}); refused before decompressing"
        )


def _load_reference(path: Path) -> tuple[UNet, SamplerConfig, dict[str, str]]:
    _check_decompressed_size(path)
    # torch warns about what it meets in an untrusted file (a pickle protocol other than 2, ...);
    # gsad reports the outcome in one line instead
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle, zip and EOF errors of all kinds
            raise CheckpointError(f"{path}: {_why_not_loadable(path, exc, caught)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    model = from_reference_state_dict(state, str(path))
    return model.eval(), SamplerConfig(), {"gsad.source": "reference"}
