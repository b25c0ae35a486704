"""Shared fixtures: paths of the reference fixture and tiny models/images."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference-gsad"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised tiny-preset gsad checkpoint (2 DDIM-able steps by default)."""
    from gsad.checkpoints import save_checkpoint
    from gsad.config import PRESETS, SamplerConfig
    from gsad.network import UNet

    torch.manual_seed(0)
    model = UNet(PRESETS["tiny"])
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, SamplerConfig(steps=2, beta_start=2e-3, beta_end=0.9, seed=1))
    return path


def _perturbed_tiny_model(seed: int = 0):
    from gsad.config import PRESETS
    from gsad.network import UNet

    torch.manual_seed(seed)
    model = UNet(PRESETS["tiny"]).eval()
    with torch.no_grad():
        for p in model.parameters():  # off the init (zero output convolution): eps depends on every weight
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture()
def busy_tiny_checkpoint(tmp_path: Path) -> Path:
    """A tiny-preset checkpoint whose weights are all moved off their initial values (so its eps is
    not zero), with the default model's sampler settings (reference, 3 steps, soft-exposure start,
    3 trajectories)."""
    from gsad.checkpoints import save_checkpoint
    from gsad.config import SamplerConfig

    path = tmp_path / "busy-tiny.safetensors"
    save_checkpoint(path, _perturbed_tiny_model(), SamplerConfig(
        sampler="reference", steps=3, beta_start=2e-3, beta_end=0.85, seed=3, start="soft-exposure", ensemble=3))
    return path


class _FullDisk(io.FileIO):
    """A raw file on a disk with ``room`` bytes left: writes take what fits, then fail with ENOSPC, as
    write(2) does (under Python's usual buffered file object)."""

    def __init__(self, file, mode: str, room: int) -> None:
        super().__init__(file, mode.replace("b", "").replace("t", ""))
        self.room = room

    def write(self, data) -> int:
        if self.room <= 0 and len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        taken = memoryview(data)[: self.room]
        self.room -= len(taken)
        return super().write(taken)


@pytest.fixture()
def full_disk(monkeypatch):
    """``full_disk(pattern, room=100)``: from now on, files whose name matches the glob ``pattern``
    (a temporary's name, e.g. ``.out.safetensors.*.tmp``), opened for writing with ``open``, sit on a
    disk with ``room`` bytes left: a full disk under gsad's writers (and under torch.save, which
    writes through the Python file object gsad gives it)."""
    import builtins
    import fnmatch

    real_open = builtins.open

    def start(pattern: str, room: int = 100) -> None:
        def fake_open(file, mode="r", *args, **kwargs):
            writing = isinstance(file, (str, Path)) and any(c in mode for c in "wax+")
            if not (writing and fnmatch.fnmatchcase(Path(file).name, pattern)):
                return real_open(file, mode, *args, **kwargs)
            fh = io.BufferedWriter(_FullDisk(file, mode, room))
            return fh if "b" in mode else io.TextIOWrapper(fh, encoding=kwargs.get("encoding"))

        monkeypatch.setattr(builtins, "open", fake_open)

    return start


@pytest.fixture()
def dark_image() -> np.ndarray:
    """A 20 x 28 dark RGB uint8 image with some structure."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:20, 0:28]
    base = (x * 2 + y).astype(np.float64)
    img = np.stack([base, base * 0.8, base * 0.5], axis=2) + rng.normal(0, 2, (20, 28, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _file_hashes(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (files or folders): compare before and after a run
    to prove that nothing was changed, replaced, added or removed."""
    import hashlib

    out = {}
    for root in map(Path, roots):
        for path in [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()):
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape): a
    valid IHDR, one small IDAT of zeros, IEND (about 100 bytes)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture()
def file_hashes():
    """:func:`_file_hashes`: sha256 of every file under some paths."""
    return _file_hashes


@pytest.fixture()
def png_header_only():
    """:func:`_png_header_only`: a tiny PNG claiming a given size."""
    return _png_header_only


@pytest.fixture(autouse=True)
def _private_fastpath_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty fast-path cache (never the user's ~/.cache/gsad)."""
    monkeypatch.setenv("GSAD_CACHE_DIR", str(tmp_path_factory.mktemp("gsad-cache")))
    # torch only unless a test offers the other engines itself (tests/runtime/test_engines.py): an
    # ``auto`` probe that also exports and times ONNX Runtime and OpenVINO would make every run slower
    monkeypatch.setenv("GSAD_ENGINE", "torch")
