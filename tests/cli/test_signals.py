"""SIGTERM (timeout, systemd, docker, torchrun) stops gsad like Ctrl-C: exit 143, one line, no
temporary file left; and a run removes the temporaries a killed run left beside its outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsad.cli import main
from gsad.imaging.io import read_image

CPU = ["--device", "cpu", "--precision", "fp32"]  # no fast-path probe: quick

# Runs ``gsad`` with every image save slowed down: the save writes part of the temporary file,
# touches the marker file and sleeps, so the test's SIGTERM lands in the middle of a write.
SLOW_SAVE = r"""
import pathlib, sys, time
from PIL import Image

marker = pathlib.Path(sys.argv[1])
save = Image.Image.save

def slow_save(self, fp, *args, **kwargs):
    if str(fp).endswith(".tmp"):
        pathlib.Path(fp).write_bytes(b"half an image")
        marker.touch()
        time.sleep(300)
    return save(self, fp, *args, **kwargs)

Image.Image.save = slow_save
from gsad.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _folder(path: Path, count: int, rng_seed: int = 0) -> Path:
    path.mkdir()
    rng = np.random.default_rng(rng_seed)
    for k in range(count):
        Image.fromarray(rng.integers(0, 60, (16, 24, 3), dtype=np.uint8)).save(path / f"img{k}.png")
    return path


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.is_dir() else []


def test_sigterm_during_a_folder_run_exits_143_in_one_line_and_leaves_no_temporary(tiny_checkpoint, tmp_path):
    src = _folder(tmp_path / "in", 3)
    out, marker = tmp_path / "out", tmp_path / "writing"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SAVE, str(marker), "enhance", str(src), "-o", str(out),
                             "--checkpoint", str(tiny_checkpoint), *CPU],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the first write never began"
            time.sleep(0.05)
        assert _leftovers(out)  # the temporary file is there while the image is written
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    lines = err.strip().splitlines()
    assert lines[-1] == "gsad: error: terminated (SIGTERM)", err
    assert "Traceback" not in err
    assert _leftovers(out) == [] and list(out.iterdir()) == []  # nothing half-written, nothing left


def test_sigterm_while_enhancing_in_process_keeps_finished_outputs(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    from gsad.enhance.enhancer import Enhancer

    src = _folder(tmp_path / "in", 3)
    enhance, calls = Enhancer.enhance, []

    def enhance_then_stop(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # SIGTERM from outside while the second image is enhanced
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
        return enhance(self, *args, **kwargs)

    monkeypatch.setattr(Enhancer, "enhance", enhance_then_stop)
    caught = []  # the test's own handler (pytest's default would end the test run): gsad's replaces it
    mine = lambda *_: caught.append(1)  # noqa: E731
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        code = main(["enhance", str(src), "-o", str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint), *CPU])
        assert signal.getsignal(signal.SIGTERM) is mine  # gsad's handler only while a command runs
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and caught == []
    assert capsys.readouterr().err.strip().splitlines()[-1] == "gsad: error: terminated (SIGTERM)"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["img0.png"]  # finished, complete
    assert read_image(tmp_path / "out" / "img0.png").shape == (16, 24, 3)


def test_a_run_removes_only_the_stale_temporaries_of_its_own_outputs(tiny_checkpoint, tmp_path, capsys):
    src = _folder(tmp_path / "in", 1)  # img0.png -> out/img0.png
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".img0.png.ab12cd_3.tmp"  # what atomic_write names the temporary of out/img0.png
    keep = [".img0.png.tmp", ".img0.png.ab12cd_3.tmp.bak", "img0.png.ab12cd_3.tmp", ".other.png.ab12cd_3.tmp",
            ".img0.png.ab12cd_34.tmp", "notes.tmp", ".img0.jpg.ab12cd_3.tmp"]
    for name in [stale.name, *keep]:
        (out / name).write_bytes(b"x")
    (out / ".img0.png.zz12cd_3.tmp").mkdir()  # a folder of that name is not gsad's: left alone
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), *CPU]) == 0
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == sorted([*keep, ".img0.png.zz12cd_3.tmp", "img0.png"])
    assert f"{stale}: removed (a temporary file left by a stopped run)" in capsys.readouterr().err


def test_a_refused_run_removes_nothing(tiny_checkpoint, tmp_path):
    src = _folder(tmp_path / "in", 1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.png").write_bytes(b"the user's own file")
    stale = out / ".img0.png.ab12cd_3.tmp"
    stale.write_bytes(b"x")
    # img0.png exists and --overwrite is not given: the output is not this run's, nor its temporary
    assert main(["enhance", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), *CPU]) == 1
    assert stale.exists() and (out / "img0.png").read_bytes() == b"the user's own file"


@pytest.mark.parametrize("code", [0, 1])
def test_the_sigterm_handler_is_restored_after_every_command(tiny_checkpoint, tmp_path, dark_image, code):
    before = signal.getsignal(signal.SIGTERM)
    Image.fromarray(dark_image).save(tmp_path / "i.png")
    target = tmp_path / ("o.png" if code == 0 else "o.xyz")
    assert main(["enhance", str(tmp_path / "i.png"), "-o", str(target), "--checkpoint", str(tiny_checkpoint),
                 *CPU]) == code
    assert signal.getsignal(signal.SIGTERM) == before
