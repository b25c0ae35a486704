"""``gsad convert`` on a full disk: one line, nothing half-written, an existing output kept (issue 24, case 7)."""

from __future__ import annotations

import pytest

from gsad.checkpoints import load_checkpoint
from gsad.cli import main


@pytest.mark.parametrize("room", [0, 1000])  # nothing fits; the header and some weights fit
@pytest.mark.parametrize("existing", [False, True])
def test_convert_to_a_full_disk_is_one_line(room, existing, tiny_checkpoint, tmp_path, capsys, full_disk):
    out = tmp_path / "out.safetensors"
    if existing:
        out.write_bytes(b"the user's older file")
    full_disk(".out.safetensors.*.tmp", room)
    argv = ["convert", str(tiny_checkpoint), str(out), *(["--overwrite"] if existing else [])]
    assert main(argv) == 1
    assert capsys.readouterr().err == f"gsad: error: {out}: cannot write (No space left on device)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tiny.safetensors", *(["out.safetensors"] * existing)])
    if existing:
        assert out.read_bytes() == b"the user's older file"


def test_convert_writes_what_safetensors_writes(tiny_checkpoint, tmp_path):
    out = tmp_path / "out.safetensors"
    assert main(["convert", str(tiny_checkpoint), str(out)]) == 0
    a, b = load_checkpoint(tiny_checkpoint)[0].state_dict(), load_checkpoint(out)[0].state_dict()
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


def test_default_names_the_bundled_model(tmp_path):
    from gsad.checkpoints import default_checkpoint

    out = tmp_path / "bundled.safetensors"
    assert main(["convert", "default", str(out)]) == 0
    a, b = load_checkpoint(default_checkpoint()), load_checkpoint(out)
    assert a[1] == b[1]  # the stored sampler settings travel too
    a, b = a[0].state_dict(), b[0].state_dict()
    assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
