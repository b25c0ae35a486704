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


@pytest.fixture(scope="module")
def tiny_unet_pair():
    """A tiny U-Net twice, the same weights: one trainable, one frozen in eval mode."""
    import copy

    import torch

    from gsad.config import preset
    from gsad.network import UNet

    torch.manual_seed(0)
    frozen = UNet(preset("tiny")).eval().requires_grad_(False)
    return copy.deepcopy(frozen).train().requires_grad_(True), frozen


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


# ------------------------------------------------------------------------------------------
# files of the formats gsad[formats] reads, made in the test
# ------------------------------------------------------------------------------------------

#: Display P3 primaries (x, y) of red, green, blue; white D65.
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
#: CIE XYZ (D65) -> linear sRGB: a DNG's ColorMatrix1 that makes the camera's RGB linear sRGB.
_XYZ_TO_SRGB = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                         [0.0556434, -0.2040259, 1.0572252]])


def _icc_xyz(v) -> bytes:
    import struct

    return b"XYZ \0\0\0\0" + struct.pack(">3i", *(round(c * 65536) for c in v))


def rgb_profile(primaries=P3_PRIMARIES, white=(0.3127, 0.3290), transfer="srgb", name="gsad test RGB") -> bytes:
    """A minimal ICC v2 matrix-shaper RGB profile: colorants adapted to D50 by Bradford; ``transfer``
    "srgb" (the sRGB curve, as Display P3 has), "linear", or a gamma (2.2: Adobe RGB's)."""
    import struct

    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    prims = np.array([xyz(*p) for p in primaries]).T
    w = xyz(*white)
    m = prims * np.linalg.solve(prims, w)
    brad = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    d50 = np.array([0.9642, 1.0, 0.8249])
    m = np.linalg.inv(brad) @ np.diag((brad @ d50) / (brad @ w)) @ brad @ m
    if transfer == "srgb":
        params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
        trc = b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + struct.pack(">5i", *(round(v * 65536) for v in params))
    elif transfer == "linear":
        trc = b"curv\0\0\0\0" + struct.pack(">I", 0)
    else:
        trc = b"curv\0\0\0\0" + struct.pack(">IH", 1, round(transfer * 256)) + b"\0\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(name) + 1) + name.encode() + b"\0" * 80
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0no copyright\0"), (b"wtpt", _icc_xyz(d50)),
            (b"rXYZ", _icc_xyz(m[:, 0])), (b"gXYZ", _icc_xyz(m[:, 1])), (b"bXYZ", _icc_xyz(m[:, 2])),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    table, body, start = b"", b"", 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += struct.pack(">4sII", sig, start + len(body), len(data))
        body += data
    header = struct.pack(">I4sI4s4s4s12s4s4sIII12s4s", start + len(body), b"lcms", 0x02100000, b"mntr", b"RGB ",
                         b"XYZ ", bytes(12), b"acsp", b"APPL", 0, 0, 0, bytes(12), b"lcms")
    header = (header + struct.pack(">3i", *(round(v * 65536) for v in d50)) + b"lcms" + bytes(44))[:128]
    return header + struct.pack(">I", len(tags)) + table + body


def write_dng(path, linear: np.ndarray, neutral=(1.0, 1.0, 1.0), white: int = 4095, black: int = 0,
              orientation: int = 1) -> None:
    """A Bayer (RGGB) CFA DNG of ``linear`` (``H x W x 3`` in [0, 1], H and W even) whose camera RGB is
    linear sRGB (ColorMatrix1 = XYZ -> sRGB under D65), as-shot neutral ``neutral``."""
    import tifffile

    h, w, _ = linear.shape
    cfa = np.empty((h, w))
    cfa[0::2, 0::2], cfa[0::2, 1::2] = linear[0::2, 0::2, 0], linear[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = linear[1::2, 0::2, 1], linear[1::2, 1::2, 2]
    data = np.round(black + cfa * (white - black)).astype(np.uint16)

    def rationals(values):
        return [v for x in np.ravel(values) for v in (int(round(x * 10000)), 10000)]

    tags = [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),  # CFARepeatPatternDim, CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),  # DNG(Backward)Version
        (50708, "s", 0, "gsad test camera", True), (271, "s", 0, "gsad", True), (272, "s", 0, "test camera", True),
        (50714, "H", 1, (black,), True), (50717, "H", 1, (white,), True),  # BlackLevel, WhiteLevel
        (50721, "2i", 9, rationals(_XYZ_TO_SRGB), True), (50778, "H", 1, (21,), True),  # ColorMatrix1, D65
        (50728, "2I", 3, rationals(neutral), True), (274, "H", 1, (orientation,), True),  # AsShotNeutral
    ]
    tifffile.imwrite(path, data, photometric=32803, subfiletype=0, extratags=tags, metadata=None)


@pytest.fixture()
def formats():
    """The writers of test files in formats gsad[formats] reads (skips when the extra is missing)."""
    pytest.importorskip("rawpy")
    pytest.importorskip("pillow_heif")
    from types import SimpleNamespace

    return SimpleNamespace(rgb_profile=rgb_profile, write_dng=write_dng, P3=P3_PRIMARIES)


@pytest.fixture()
def make_profile():
    """:func:`rgb_profile`: ICC matrix-shaper profiles (Display P3 by default) made in the test."""
    return rgb_profile


def _make_clip(path: Path, seconds: float = 3.0, fps: int = 10, size: tuple[int, int] = (64, 48),
               rotation: int = 90, audio: bool = True, frames: list | None = None) -> Path:
    """A small H.264 clip made with PyAV: ``seconds`` at ``fps`` of ``size`` (W x H) moving dark frames
    (or the given ``frames``), its display matrix rotated by ``rotation`` degrees, and a mono AAC
    16 kHz tone as its audio track."""
    av = pytest.importorskip("av")
    w, h = size
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=16000) if audio else None
        count = len(frames) if frames is not None else round(seconds * fps)
        for i in range(count):
            if frames is not None:
                pixels = frames[i]
            else:
                y, x = np.mgrid[0:h, 0:w]
                base = ((x + 2 * i) % w * 0.6 + y * 0.3)[..., None] * np.array([1.0, 0.8, 0.6])
                pixels = np.clip(base + rng.normal(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            t = 0
            while t < count / fps * 16000:
                wave = 0.1 * np.sin(2 * np.pi * 440 * np.arange(t, t + 1024) / 16000)
                frame = av.AudioFrame.from_ndarray(wave[None].astype(np.float32), format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 16000, t
                out.mux(sound.encode(frame))
                t += 1024
            out.mux(sound.encode(None))
    return path


@pytest.fixture()
def encoder_frames(monkeypatch):
    """The frames each :func:`gsad.enhance.video.transcode` call of the test hands to the encoder: one
    list per call, in call order. The frames, not the encoded files, are what two runs compare
    exactly: libx264, as PyAV builds it, encoded the same frames into different files when they
    arrived at a different pace (seen on a Zen 4)."""
    from gsad.enhance import video

    kept: list[list] = []
    real_transcode = video.transcode

    def transcode(src, dst, process, **kw):
        kept.append([])
        return real_transcode(src, dst, lambda f: kept[-1].append(process(f)) or kept[-1][-1], **kw)

    monkeypatch.setattr(video, "transcode", transcode)
    return kept


@pytest.fixture()
def make_clip():
    """:func:`_make_clip`: a small H.264 + AAC clip written with PyAV (skips without it)."""
    return _make_clip
