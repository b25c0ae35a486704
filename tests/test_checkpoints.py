import json
import os

import numpy as np
import pytest
import torch

from gsad.checkpoints import (
    MAX_HEADER_BYTES,
    MAX_REFERENCE_BYTES,
    from_reference_state_dict,
    infer_reference_config,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    to_reference_state_dict,
)
from gsad.config import MAX_PARAMETERS, PRESETS, NetworkConfig, SamplerConfig, to_dict
from gsad.errors import CheckpointError
from gsad.network import UNet


def test_reference_checkpoint_loads_with_inferred_architecture(reference_dir):
    meta = json.loads((reference_dir / "meta.json").read_text())["unet"]
    model, sampler, info = load_checkpoint(reference_dir / "gen.pth")
    c = model.config
    assert c.base_channels == meta["inner_channel"]
    assert list(c.channel_mults) == meta["channel_mults"]
    assert c.res_blocks == meta["res_blocks"]
    assert c.attn_levels == (1,)  # 16 px on a 32 px image_size: the second level
    assert c.uncertainty_head and info["gsad.source"] == "reference"
    assert sampler == SamplerConfig()


def test_unet_reproduces_reference_outputs(reference_dir):
    model, _, _ = load_checkpoint(reference_dir / "gen.pth")
    io = torch.load(reference_dir / "unet_io.pt", weights_only=True)
    with torch.no_grad():
        eps, unc = model(io["unet_input"], io["noise_level"])
    assert (eps - io["eps"]).abs().max() < 1e-4
    assert (unc - io["uncertainty"]).abs().max() < 1e-4


def test_module_prefix_and_bare_state_dicts(reference_dir, tmp_path):
    state = torch.load(reference_dir / "gen.pth", weights_only=True)
    wrapped = {f"module.{k}": v for k, v in state.items()}
    torch.save(wrapped, tmp_path / "dp.pth")
    bare = {k[len("denoise_fn."):]: v for k, v in state.items() if k.startswith("denoise_fn.")}
    torch.save(bare, tmp_path / "bare.pth")
    ref, _, _ = load_checkpoint(reference_dir / "gen.pth")
    for name in ("dp.pth", "bare.pth"):
        other, _, _ = load_checkpoint(tmp_path / name)
        for (k, a), (_, b) in zip(ref.state_dict().items(), other.state_dict().items()):
            assert torch.equal(a, b), k


@pytest.mark.parametrize(
    "config",
    [PRESETS["paper"], NetworkConfig(base_channels=32, channel_mults=(1, 2, 2), res_blocks=2, attn_levels=(0, 2))],
    ids=["paper", "three-levels"],
)
def test_reference_export_round_trip(config):
    torch.manual_seed(0)
    model = UNet(config)
    ref = to_reference_state_dict(model)
    assert infer_reference_config({k[len("denoise_fn."):]: v for k, v in ref.items()}) == config
    back = from_reference_state_dict(ref)
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k


def test_safetensors_round_trip_keeps_architecture_and_sampler(tmp_path):
    torch.manual_seed(1)
    model = UNet(PRESETS["tiny"])
    sampler = SamplerConfig(sampler="ddim", steps=7, beta_start=1e-3, beta_end=0.5, seed=11)
    path = save_checkpoint(tmp_path / "m.safetensors", model, sampler, {"trained": "briefly"})
    loaded, s, meta = load_checkpoint(path)
    assert loaded.config == model.config and s == sampler
    assert meta["gsad.trained"] == "briefly"
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, torch.tensor([0.4]))[0], loaded(x, torch.tensor([0.4]))[0])
    assert read_metadata(path)["gsad.format"] == "1"
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_convert_cli_matches_reference_outputs(reference_dir, tmp_path):
    from gsad.cli import main

    out = tmp_path / "gen.safetensors"
    assert main(["convert", str(reference_dir / "gen.pth"), str(out), "--steps", "10"]) == 0
    model, sampler, _ = load_checkpoint(out)
    assert sampler.steps == 10
    io = torch.load(reference_dir / "unet_io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["unet_input"], io["noise_level"])[0] - io["eps"]).abs().max() < 1e-4
    assert main(["convert", str(reference_dir / "gen.pth"), str(out)]) == 1  # exists


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"this is not a checkpoint at all", "not a PyTorch checkpoint"),
        (np.arange(100, dtype=np.uint8).tobytes(), "not a"),
    ],
)
def test_garbage_checkpoints_raise_checkpoint_error(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_pickled_objects_are_refused_without_advice_to_unpickle(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "opt": SamplerConfig()}, path)  # a non-tensor object
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: a PyTorch file that holds more than a state dict of tensors")
    assert "weights_only" not in message and "arbitrary code" not in message


def test_missing_and_foreign_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")
    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no U-Net weights"):
        load_checkpoint(tmp_path / "other.pth")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="without gsad metadata"):
        load_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not a gsad run directory"):
        load_checkpoint(tmp_path)


def test_truncated_safetensors(tmp_path):
    model = UNet(PRESETS["tiny"])
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=str(path.name)):
        load_checkpoint(path)


def test_run_directory_latest_pointer(tmp_path):
    model = UNet(PRESETS["tiny"])
    (tmp_path / "checkpoints").mkdir()
    save_checkpoint(tmp_path / "checkpoints" / "step_0000002.safetensors", model)
    (tmp_path / "latest").write_text("checkpoints/step_0000002.safetensors\n")
    loaded, _, _ = load_checkpoint(tmp_path)
    assert loaded.config == model.config
    (tmp_path / "latest").write_text("checkpoints/step_0000009.safetensors\n")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path)


# --- hostile checkpoints (issue 24): one line `gsad: error: ...`, budgets checked before allocation ------------


def _one_line(argv, capsys):
    """``gsad ARGV`` must exit 1 with exactly one line ``gsad: error: ...`` on stderr, no traceback and no
    warning (torch's warnings included); returns that line."""
    import warnings

    from gsad.cli import main

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([str(a) for a in argv]) == 1
    captured = capsys.readouterr()
    assert not caught, [str(w.message) for w in caught]
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsad: error: "), captured.err
    return lines[0]


def _unchecked_config(**fields):
    """A NetworkConfig that skips validation: what a hostile file may claim."""
    import dataclasses

    config = object.__new__(NetworkConfig)
    for field in dataclasses.fields(NetworkConfig):
        object.__setattr__(config, field.name, fields.get(field.name, field.default))
    return config


def _reference_file(path, config, **changes):
    """A reference ``.pth`` for ``config`` (unvalidated) whose tensors are all ``zeros(1).expand(shape)``:
    a few KB whatever the shapes claim. ``changes``: key (without ``denoise_fn.``) -> tensor, or None to drop."""
    with torch.device("meta"):
        skeleton = UNet(config)
    state = {k: torch.zeros(1).expand(v.shape) for k, v in to_reference_state_dict(skeleton).items()}
    for key, value in changes.items():
        if value is None:
            del state[f"denoise_fn.{key}"]
        else:
            state[f"denoise_fn.{key}"] = value
    torch.save(state, path)
    return path


#: The tiny preset's layout at width 512: 275 M parameters (1.1 GB in float32), over MAX_PARAMETERS.
_WIDE = dict(base_channels=512, channel_mults=(1, 2, 2), res_blocks=1, attn_levels=(2,), norm_groups=8)
_CRC32_1GIB_ZEROS = 0x5B64C2B0  # zlib.crc32(bytes(1 << 30)), written out to save a second per test run


def _deflate_bomb(path):
    """A torch.save zip whose tensor entry is deflated: 1 GiB of zeros in about 5 MB, a valid zip that
    torch.load decompresses in full (torch.save itself never compresses)."""
    import io
    import struct
    import zipfile
    import zlib

    buffer = io.BytesIO()
    torch.save({"denoise_fn.downs.0.weight": torch.zeros(4)}, buffer)
    with zipfile.ZipFile(buffer) as archive:
        entries = [(info.filename, archive.read(info)) for info in archive.infolist()]
    size = 1 << 30
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    mib = comp.compress(bytes(1 << 20)) + comp.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, self-contained
    bomb = mib * (size >> 20) + comp.flush()
    out, central = bytearray(), bytearray()
    for name, data in entries:
        raw = name.encode()
        if name.endswith("/data/0"):
            method, crc, stored, data_size = 8, _CRC32_1GIB_ZEROS, bomb, size
        else:
            method, crc, stored, data_size = 0, zlib.crc32(data), data, len(data)
        fields = struct.pack("<HHHHIIIH", 0, method, 0, 0x21, crc, len(stored), data_size, len(raw))
        central += b"PK\x01\x02" + struct.pack("<HH", 20, 20) + fields[:-2] + struct.pack("<HHHHHII", len(raw), 0, 0, 0,
                                                                                      0, 0, len(out)) + raw
        out += b"PK\x03\x04" + struct.pack("<H", 20) + fields + struct.pack("<H", 0) + raw + stored
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    path.write_bytes(bytes(out + central + end))
    return path


def test_deflate_bomb_helper_is_what_torch_would_decompress(tmp_path):
    import zipfile

    path = _deflate_bomb(tmp_path / "deflate.pth")
    assert path.stat().st_size < 8 << 20
    with zipfile.ZipFile(path) as archive:
        (info,) = [i for i in archive.infolist() if i.filename.endswith("/data/0")]
        assert info.file_size == 1 << 30 and info.compress_type == zipfile.ZIP_DEFLATED
        with archive.open(info) as fh:
            assert fh.read(1 << 20) == bytes(1 << 20)


def test_a_few_kb_claiming_a_huge_network_is_one_line(tmp_path, capsys):
    """Case 1: every tensor is zeros(1).expand(...), so the file is small and self-consistent; the
    inferred network is over the parameter budget and refused from its config."""
    path = _reference_file(tmp_path / "expand.pth", _unchecked_config(**_WIDE))
    assert path.stat().st_size < 200_000
    line = _one_line(["convert", path, tmp_path / "e.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {path}: inferred architecture is invalid (network: this architecture has ")
    assert f"parameters, more than gsad accepts ({MAX_PARAMETERS:,}" in line
    assert not (tmp_path / "e.safetensors").exists()


@pytest.mark.parametrize("claim", ["issue", "small"])
def test_files_that_do_not_fit_build_no_network(tmp_path, capsys, monkeypatch, claim):
    """Case 1 as filed: width 2048 claimed by four expanded tensors (the rest missing); and a tiny layout
    with one tensor missing (within the budget, so only the check on the meta skeleton stands between it
    and an allocation). No U-Net may be built except on the meta device (weightless)."""
    import gsad.checkpoints

    built = []

    class Spy(UNet):
        def __init__(self, config):
            built.append(torch.empty(0).device.type)
            super().__init__(config)

    monkeypatch.setattr(gsad.checkpoints, "UNet", Spy)
    w, z = 2048, torch.zeros(1)
    state = {"denoise_fn.downs.0.weight": z.expand(w, 6, 3, 3),
             "denoise_fn.final_conv.block.3.weight": z.expand(3, w, 3, 3)}
    for i in (1, 2):
        state[f"denoise_fn.downs.{i}.res_block.block1.block.3.weight"] = z.expand(w, w, 3, 3)
    torch.save(state, tmp_path / "expand.pth")
    if claim == "small":
        small = NetworkConfig(base_channels=32, channel_mults=(1, 2), res_blocks=1, attn_levels=(1,))
        _reference_file(tmp_path / "expand.pth", small, **{"ups.0.res_block.block2.block.3.weight": None})
    line = _one_line(["convert", tmp_path / "expand.pth", tmp_path / "e.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {tmp_path / 'expand.pth'}: ")
    if claim == "small":
        assert "weights do not fit the architecture (missing ['decoder.0.blocks.0.conv2.weight'])" in line
    assert set(built) <= {"meta"}


def test_a_deflated_zip_bomb_is_refused_from_the_zip_directory(tmp_path, capsys):
    """Case 1: 1 MB of deflated zeros claiming 1 GiB: refused before torch decompresses anything."""
    path = _deflate_bomb(tmp_path / "deflate.pth")
    line = _one_line(["convert", path, tmp_path / "d.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {path}: its tensors take 1,073,7")  # 1 GiB and the small entries
    assert line.endswith(f"bytes once decompressed, more than any network gsad accepts needs "
                         f"({MAX_REFERENCE_BYTES:,}); refused before decompressing")


def test_bombs_keep_peak_memory_small(tmp_path, reference_dir):
    """Case 1, measured: the peak resident memory (VmHWM, which starts afresh at exec, unlike ru_maxrss, which
    a child inherits from pytest) of a fresh process loading each bomb grows by far less than the 1.1 GB
    (expand) and 1 GiB (deflate) they claim."""
    import subprocess
    import sys
    from pathlib import Path

    import gsad

    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status")
    bombs = [_reference_file(tmp_path / "expand.pth", _unchecked_config(**_WIDE)), _deflate_bomb(tmp_path / "d.pth")]
    script = (
        "import re, sys\n"
        "from gsad.checkpoints import load_checkpoint\n"
        "from gsad.errors import CheckpointError\n"
        "def kb(field):\n"
        "    with open('/proc/self/status') as fh:\n"
        "        return int(re.search(field + r':\\s+(\\d+)', fh.read()).group(1))\n"
        "load_checkpoint(sys.argv[1])  # warm up: a small real reference model\n"
        "for path in sys.argv[2:]:\n"
        "    try:\n"
        "        with open('/proc/self/clear_refs', 'w') as fh:\n"
        "            fh.write('5')  # peak := current\n"
        "    except OSError:\n"
        "        pass\n"
        "    before = kb('VmHWM')\n"
        "    try:\n"
        "        load_checkpoint(path)\n"
        "    except CheckpointError:\n"
        "        pass\n"
        "    print((kb('VmHWM') - before) // 1024)\n"
    )
    src = str(Path(gsad.__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", script, str(reference_dir / "gen.pth"), *map(str, bombs)],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": src}, timeout=300)
    assert result.returncode == 0, result.stderr
    growth_mb = [int(line) for line in result.stdout.split()]
    assert len(growth_mb) == 2 and max(growth_mb) < 200, growth_mb


# --- hostile gsad metadata (case 2) and channels the method cannot use (case 3) -----------------------------


def _with_network_metadata(tmp_path, source, key, text, name="edited.safetensors"):
    """A copy of checkpoint ``source`` with metadata ``key`` set to ``text``."""
    from safetensors.torch import load_file, save_file

    meta = read_metadata(source)
    meta[key] = text
    path = tmp_path / name
    save_file(load_file(str(source)), str(path), metadata=meta)
    return path


_DEEP = "[" * 200_000 + "]" * 200_000


@pytest.mark.parametrize(
    "key, text, message",
    [
        ("gsad.network", '{"base_channels": 1' + "0" * 5000 + "}", "gsad.network is 5,020 characters long"),
        ("gsad.network", _DEEP, "gsad.network is 400,000 characters long"),
        ("gsad.sampler", _DEEP, "gsad.sampler is 400,000 characters long"),
        ("gsad.network", "[" * 2000 + "]" * 2000, "nested too deeply"),
        ("gsad.sampler", '{"steps": ' + "[" * 2000 + "]" * 2000 + "}", "nested too deeply"),
        ("gsad.network", json.dumps({"res_blocks": 512, "channel_mults": [1] * 8, "attn_levels": [],
                                     "base_channels": 16, "norm_groups": 8}),
         "network: res_blocks must be a whole number from 1 to 16, got 512"),
        ("gsad.network", json.dumps({"base_channels": 1024, "channel_mults": [1, 2, 4, 8], "attn_levels": [3]}),
         "parameters, more than gsad accepts"),
        ("gsad.network", json.dumps({**to_dict(PRESETS["tiny"]), "in_channels": 3}),
         "network: in_channels must be 6 (the low-light image and the noisy image, 3 each), got 3"),
        ("gsad.network", json.dumps({**to_dict(PRESETS["tiny"]), "out_channels": 1}),
         "network: out_channels must be 3 (the predicted noise of an RGB image), got 1"),
    ],
    ids=["5000-digits", "deep-network", "deep-sampler", "deep-2000", "deep-in-sampler", "res-blocks-512",
         "over-budget", "in-3", "out-1"],
)
def test_hostile_metadata_is_one_line_before_anything_is_built(
    tiny_checkpoint, tmp_path, capsys, monkeypatch, key, text, message
):
    import gsad.checkpoints

    ckpt = _with_network_metadata(tmp_path, tiny_checkpoint, key, text)
    monkeypatch.setattr(gsad.checkpoints, "UNet", None)  # building any network, even on meta, would fail
    line = _one_line(["convert", ckpt, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {ckpt}: bad gsad metadata (") and message in line
    assert not (tmp_path / "c.safetensors").exists()


def test_oversized_safetensors_header_is_refused_before_parsing(tiny_checkpoint, tmp_path, capsys):
    ckpt = _with_network_metadata(tmp_path, tiny_checkpoint, "gsad.junk", "x" * (MAX_HEADER_BYTES + 1))
    line = _one_line(["convert", ckpt, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {ckpt}: not a safetensors checkpoint (its header claims ")


@pytest.mark.parametrize("field, value", [("in_channels", 3), ("in_channels", 9), ("out_channels", 1)])
def test_self_consistent_checkpoints_with_other_channels_are_one_line(tmp_path, capsys, field, value):
    """Case 3: weights that fit their own (wrong) config: gsad, reference and both commands refuse them."""
    from safetensors.torch import save_file

    from gsad.config import to_dict as plain

    config = _unchecked_config(**{**plain(PRESETS["tiny"]), "channel_mults": (1, 2, 2), "attn_levels": (2,),
                                  field: value})
    model = UNet(config)
    ckpt = tmp_path / "odd.safetensors"
    meta = {"gsad.format": "1", "gsad.network": json.dumps(plain(config)), "gsad.sampler": "{}"}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(ckpt), metadata=meta)
    src = tmp_path / "in.png"
    from PIL import Image

    Image.fromarray(np.full((16, 16, 3), 30, np.uint8)).save(src)
    expected = f"network: {field} must be {dict(in_channels=6, out_channels=3)[field]} ("
    line = _one_line(["enhance", src, "-o", tmp_path / "o.png", "--checkpoint", ckpt], capsys)
    assert line.startswith(f"gsad: error: {ckpt}: bad gsad metadata (") and expected in line and f"got {value})" in line
    line = _one_line(["convert", ckpt, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {ckpt}: bad gsad metadata (") and expected in line
    ref = tmp_path / "odd.pth"
    torch.save(to_reference_state_dict(model), ref)
    line = _one_line(["convert", ref, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {ref}: inferred architecture is invalid (") and expected in line
    assert not (tmp_path / "o.png").exists() and not (tmp_path / "c.safetensors").exists()


# --- reference layouts that cannot be followed (case 4), pickle protocols (case 19) -------------------------


@pytest.mark.parametrize(
    "changes, why",
    [
        ({"downs.0.weight": torch.zeros(16)}, "downs.0.weight has shape (16,), not that of a convolution weight"),
        ({"downs.1.res_block.block1.block.3.weight": None},
         "downs.1 is neither a residual block nor a downsample (no downs.1.res_block.block1.block.3.weight)"),
        ({"downs.0.weight": torch.zeros(0, 6, 3, 3)}, "downs.0.weight has shape (0, 6, 3, 3)"),
        ({"final_conv.block.3.weight": torch.zeros(3)}, "final_conv.block.3.weight has shape (3,)"),
        ({"downs.1.res_block.block1.block.3.weight": torch.zeros(17, 16, 3, 3)},
         "downs.1.res_block.block1.block.3.weight has 17 channels, not a multiple of the 16 of downs.0.weight"),
        ({"downs.2.conv.weight": None, "downs.2.conv.bias": None},
         "blocks per level [2, 1], expected the same number at every level"),
    ],
    ids=["rank-1-stem", "missing-block", "zero-base", "rank-1-output", "odd-width", "uneven-levels"],
)
def test_reference_layouts_that_cannot_be_inferred_are_one_line(tmp_path, capsys, changes, why):
    path = _reference_file(tmp_path / "odd.pth", PRESETS["tiny"], **changes)
    line = _one_line(["convert", path, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {path}: cannot infer the U-Net layout: {why}")


def test_protocol_4_pickle_is_one_line_without_torch_warnings(tmp_path, capsys):
    """Case 19: torch's weights-only loader cannot read protocol 4 (and warns first); gsad says so in one line."""
    path = tmp_path / "p4.pth"
    torch.save(to_reference_state_dict(UNet(PRESETS["tiny"])), path, pickle_protocol=4)
    line = _one_line(["convert", path, tmp_path / "c.safetensors"], capsys)
    assert line.startswith(f"gsad: error: {path}: pickled with protocol 4, which gsad's safe loader cannot read")
    assert "weights_only" not in line
