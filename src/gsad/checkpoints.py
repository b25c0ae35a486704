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
from pathlib import Path
from typing import Any

import torch

from gsad.config import NetworkConfig, SamplerConfig, from_dict, to_dict
from gsad.errors import CheckpointError, ConfigError
from gsad.files import write_bytes, write_output
from gsad.network.unet import UNet

FORMAT_VERSION = "1"
_REFERENCE_NORM_GROUPS = 32


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


def infer_reference_config(state: dict[str, torch.Tensor], source: str = "checkpoint") -> NetworkConfig:
    """Infer the :class:`NetworkConfig` of a reference U-Net state dict (prefixes stripped)."""
    try:
        stem = state["downs.0.weight"]
        base, in_ch = int(stem.shape[0]), int(stem.shape[1])
        out_ch = int(state["final_conv.block.3.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"{source}: not a GSAD/SR3 U-Net state dict (missing {exc.args[0]})") from None
    indices = sorted({int(m.group(1)) for k in state if (m := re.match(r"downs\.(\d+)\.", k))})
    mults: list[int] = []
    blocks_per_level: list[int] = []
    attn_levels: list[int] = []
    count = 0
    for i in indices[1:]:
        if f"downs.{i}.conv.weight" in state:  # a downsample closes a level
            blocks_per_level.append(count)
            count = 0
            continue
        width = int(state[f"downs.{i}.res_block.block1.block.3.weight"].shape[0])
        if count == 0:
            mults.append(width // base)
            if f"downs.{i}.attn.qkv.weight" in state:
                attn_levels.append(len(mults) - 1)
        count += 1
    blocks_per_level.append(count)
    if not mults or len(set(blocks_per_level)) != 1:
        raise CheckpointError(f"{source}: cannot infer the U-Net layout (blocks per level {blocks_per_level})")
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
    model = UNet(config)
    mapping = _module_map(config)
    ours: dict[str, torch.Tensor] = {}
    for key, value in unet_state.items():
        new = _translate(key, mapping)
        if new is not None:
            ours[new] = value
    _load_strict(model, ours, source)
    return model


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


def _load_strict(model: UNet, state: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    _check_state(state, expected, source)
    model.load_state_dict(state)


def _check_state(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights that do not fit ``expected`` (names, shapes) or hold NaN/inf values."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise CheckpointError(f"{source}: weights do not fit the architecture ({detail})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise CheckpointError(
                f"{source}: tensor {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{source}: tensor {key} holds NaN or infinite values (a diverged or corrupt model); "
                "it would only produce black images"
            )


def _build_checked(config: NetworkConfig, state: dict[str, torch.Tensor], source: str) -> UNet:
    """A U-Net of ``config`` holding ``state``; names and shapes are checked on a weightless copy
    first, so metadata claiming a huge network cannot allocate it."""
    with torch.device("meta"):
        skeleton = UNet(config)
    _check_state(state, skeleton.state_dict(), source)
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

    try:
        with safe_open(str(path), framework="pt") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"{path}: not a safetensors checkpoint ({_first_line(exc)})") from None


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


def _why_not_loadable(path: Path, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in words for the user: torch's own
    message for a file it refuses advises loading it with pickle, which gsad never does."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # torch's zip format, or a bare pickle
        if "Weights only load failed" in str(exc):
            return ("a PyTorch file that holds more than a state dict of tensors; gsad loads only "
                    "tensors (it never runs pickled code)")
        return f"a damaged or unsupported PyTorch file ({_first_line(exc)})"
    return "not a PyTorch checkpoint or a gsad .safetensors file (unrecognised contents)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


#: The file in a training run's folder naming its newest inference checkpoint (the run folder's
#: format: gsad.training.run_dir).
LATEST_FILE = "latest"


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
    try:
        config = from_dict(NetworkConfig, json.loads(meta["gsad.network"]), f"{path}: network")
        sampler = from_dict(SamplerConfig, json.loads(meta.get("gsad.sampler", "{}")), f"{path}: sampler")
    except (json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"{path}: bad gsad metadata ({_first_line(exc)})") from None
    try:
        state = load_file(str(path), device="cpu")
    except Exception as exc:  # corrupt or truncated tensor data
        raise CheckpointError(f"{path}: corrupt safetensors data ({_first_line(exc)})") from None
    return _build_checked(config, state, str(path)).eval(), sampler, meta


def _load_reference(path: Path) -> tuple[UNet, SamplerConfig, dict[str, str]]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and EOF errors of all kinds
        raise CheckpointError(f"{path}: {_why_not_loadable(path, exc)}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    model = from_reference_state_dict(state, str(path))
    return model.eval(), SamplerConfig(), {"gsad.source": "reference"}
