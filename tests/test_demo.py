"""gsad demo without a browser: upload reading, enhancement, the app's defaults, queue and CLI.

The browser tests are in test_demo_browser.py. Tests that need Gradio skip without it, except
in CI (CI=true), where a missing test dependency is a failure.
"""

from __future__ import annotations

import importlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gsad.enhance.tiling
from gsad.cli import main
from gsad.config import SamplerConfig
from gsad.demo import INSTALL_HINT, QUEUE_SIZE, enhance_upload, example_photos, read_upload
from gsad.enhance.enhancer import Enhancer
from gsad.errors import InputError
from gsad.imaging.io import read_image


def need(module: str):
    """Import ``module``; skip when absent, but fail in CI (CI=true: the test extra must provide it)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed (pip install -e \".[test]\")"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _save(path: Path, pixels: np.ndarray) -> dict:
    Image.fromarray(pixels).save(path)
    return {"path": str(path), "orig_name": f"my {path.name}"}


@pytest.fixture()
def enhancer(tiny_checkpoint) -> Enhancer:
    return Enhancer(tiny_checkpoint, device="cpu")


# ----------------------------------------------------------------------------------------
# reading uploads
# ----------------------------------------------------------------------------------------


def test_read_upload_returns_pixels_and_the_users_file_name(tmp_path, dark_image):
    pixels, name = read_upload(_save(tmp_path / "a.png", dark_image))
    assert name == "my a.png"
    np.testing.assert_array_equal(pixels, dark_image)


def test_read_upload_names_the_uploaded_file_not_the_server_copy(tmp_path):
    server_copy = tmp_path / "cache" / "notes.txt"
    server_copy.parent.mkdir()
    server_copy.write_text("not a photo")
    with pytest.raises(InputError) as err:
        read_upload({"path": str(server_copy), "orig_name": "notes.txt"})
    assert str(err.value) == "notes.txt: not an image file (Pillow cannot identify it)"
    assert str(tmp_path) not in str(err.value)


def test_read_upload_refuses_too_many_pixels_before_decoding(tmp_path):
    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    payload = {"path": str(tmp_path / "big.png"), "orig_name": "big.png"}
    with pytest.raises(InputError, match=r"big\.png: too large for the demo \(40 x 30 pixels, at most 0\.001 megap"):
        read_upload(payload, max_pixels=1000)
    assert read_upload(payload, max_pixels=1200)[0].shape == (30, 40, 3)  # exactly at the limit: accepted


def test_read_upload_without_a_photo_says_what_to_do():
    for payload in (None, {}, {"path": None}):
        with pytest.raises(InputError, match="no photo: upload"):
            read_upload(payload)


def test_example_photos_are_bundled_small_and_dark():
    photos = example_photos()
    assert photos[0].name == "sample_dark.png" and len(photos) >= 3
    for path in photos:
        pixels = read_image(path)
        assert max(pixels.shape[:2]) <= 400, path
        assert pixels.mean() < 40, path  # dark enough to be worth enhancing


# ----------------------------------------------------------------------------------------
# enhancing
# ----------------------------------------------------------------------------------------


def test_enhance_upload_matches_the_library_and_writes_a_full_size_png(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    steps_seen = []
    before, after, path = enhance_upload(enhancer, payload, tmp_path / "out", exposure=0.5, steps=3, sampler="ddim",
                                         ensemble=2, seed=7, progress=lambda i, n: steps_seen.append((i, n)),
                                         detail=0.5)
    expected = enhancer.enhance(dark_image, sampler="ddim", steps=3, seed=7, ensemble=2, exposure=0.5, detail=0.5)
    np.testing.assert_array_equal(before, dark_image)
    np.testing.assert_array_equal(after, expected)
    np.testing.assert_array_equal(read_image(path), expected)
    assert path.name == "my in_gsad.png" and path.parent.parent == tmp_path / "out"
    assert steps_seen == [(i, 6) for i in range(1, 7)]  # the sampler's own callback: 3 steps x 2 trajectories


def test_enhance_upload_defaults_to_the_checkpoints_settings(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    _, after, _ = enhance_upload(enhancer, payload, tmp_path / "out")
    stored = enhancer.sampler
    assert stored == SamplerConfig(steps=2, beta_start=2e-3, beta_end=0.9, seed=1)
    np.testing.assert_array_equal(after, enhancer.enhance(dark_image))
    assert not np.array_equal(after, enhancer.enhance(dark_image, seed=stored.seed + 1))  # the seed matters


def test_enhance_upload_gives_each_request_its_own_file(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    first = enhance_upload(enhancer, payload, tmp_path / "out", steps=1)[2]
    digest = first.read_bytes()
    second = enhance_upload(enhancer, payload, tmp_path / "out", steps=2)[2]
    assert first != second and first.name == second.name
    assert first.read_bytes() == digest  # the earlier user's result is untouched


def test_enhance_upload_tiles_large_photos_like_the_cli(enhancer, tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 60, (48, 72, 3), dtype=np.uint8)
    monkeypatch.setattr(gsad.enhance.tiling, "AUTO_TILE_PIXELS", 1000)
    monkeypatch.setattr(gsad.enhance.tiling, "AUTO_TILE", 32)
    _, after, _ = enhance_upload(enhancer, _save(tmp_path / "big.png", photo), tmp_path / "out", sampler="ddim")
    np.testing.assert_array_equal(after, enhancer.enhance(photo, sampler="ddim", tile=None))
    assert not np.array_equal(after, enhancer.enhance(photo, sampler="ddim", tile=0))  # tiling was in effect


def test_enhance_upload_rejects_bad_options_as_user_errors(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    with pytest.raises(InputError):
        enhance_upload(enhancer, {"path": str(tmp_path / "gone.png")}, tmp_path / "out")
    from gsad.errors import ConfigError

    with pytest.raises(ConfigError, match="ensemble"):
        enhance_upload(enhancer, payload, tmp_path / "out", ensemble=99)
    # the HTTP API hands the controls' values over unprocessed: junk is a one-line error, not a traceback
    for option, value in [("steps", "abc"), ("steps", 2.5), ("seed", float("nan")), ("exposure", "bright"),
                          ("detail", 1.5)]:
        with pytest.raises(ConfigError, match=option):
            enhance_upload(enhancer, payload, tmp_path / "out", **{option: value})
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------


def test_demo_without_gradio_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    assert main(["demo", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err == f"gsad: error: {INSTALL_HINT}\n"
    assert 'pip install "gsad[demo]"' in err


def test_demo_without_gradio_in_a_subprocess_is_one_line():
    code = "import sys; sys.modules['gradio'] = None; from gsad.cli import main; sys.exit(main(['demo']))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.splitlines() == ['gsad: error: the demo needs Gradio: pip install "gsad[demo]"']


@pytest.mark.parametrize("port", ["99999", "0", "http"])
def test_demo_refuses_a_port_that_cannot_exist_in_one_line(capsys, port):
    assert main(["demo", "--port", port]) == 2  # checked by the parser, before Gradio or the model
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsad: error: argument --port:")


# ----------------------------------------------------------------------------------------
# the Gradio app (no browser)
# ----------------------------------------------------------------------------------------


def _components(app) -> dict[str, object]:
    return {b.elem_id: b for b in app.blocks.values() if getattr(b, "elem_id", None)}


def test_app_controls_default_to_the_checkpoints_settings(tiny_checkpoint, tmp_path):
    need("gradio")
    from gsad.checkpoints import load_checkpoint
    from gsad.demo import build_app

    model, _, _ = load_checkpoint(tiny_checkpoint)
    stored = SamplerConfig(sampler="dpmpp", steps=4, seed=123, ensemble=2, detail=0.6)
    app = build_app(Enhancer.from_model(model, stored, device="cpu"), tmp_path)
    parts = _components(app)
    assert parts["steps"].value == 4 and parts["sampler"].value == "dpmpp"
    assert parts["seed"].value == 123 and parts["ensemble"].value == 2 and parts["exposure"].value == 0.0
    assert parts["detail"].value == 0.6
    assert app._queue.max_size == QUEUE_SIZE


class GatedEnhancer:
    """An Enhancer whose first enhance() waits for ``gate``; records the most calls ever running at once."""

    def __init__(self, inner: Enhancer) -> None:
        self.inner, self.sampler = inner, inner.sampler
        self.gate, self.entered = threading.Event(), threading.Event()
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    def settings(self, *base, **overrides):
        return self.inner.settings(*base, **overrides)

    def enhance(self, image, *settings, **kwargs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            self.entered.set()
            assert self.gate.wait(60), "test gate never opened"
            return self.inner.enhance(image, *settings, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def test_queue_is_bounded_serial_and_keeps_each_users_result(enhancer, tmp_path):
    need("gradio")
    from gradio_client import Client, handle_file

    from gsad.demo import build_app

    gated = GatedEnhancer(enhancer)
    app = build_app(gated, tmp_path / "results")
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        photos = []
        for k in range(QUEUE_SIZE + 3):  # one running, QUEUE_SIZE waiting, the rest turned away
            pixels = np.full((12, 20, 3), 4 + 12 * k, np.uint8)
            pixels[:, : 2 + k] = 0  # a different picture for every user
            Image.fromarray(pixels).save(tmp_path / f"p{k}.png")
            photos.append(pixels)
        jobs = [client.submit(handle_file(str(tmp_path / "p0.png")), 0.0, 1, "ddim", 1, 5, 0.0, api_name="/enhance")]
        assert gated.entered.wait(60)
        jobs += [client.submit(handle_file(str(tmp_path / f"p{k}.png")), 0.0, 1, "ddim", 1, 5, 0.0, api_name="/enhance")
                 for k in range(1, len(photos))]
        settled = ("IN_QUEUE", "QUEUE_FULL", "PROCESSING")
        deadline = time.monotonic() + 60
        for job in jobs[1:]:  # every later request is queued or refused before the first one finishes
            while job.status().code.name not in settled and not job.done() and time.monotonic() < deadline:
                time.sleep(0.05)
        gated.gate.set()
        served, refused = 0, 0
        for k, job in enumerate(jobs):
            try:
                (_, _), png = job.result(timeout=120)
            except Exception as exc:  # gradio_client raises its own error types
                assert "queue is full" in str(exc).lower(), exc
                refused += 1
                continue
            expected = enhancer.enhance(photos[k], sampler="ddim", steps=1, ensemble=1, seed=5)
            assert np.abs(read_image(png).astype(int) - expected).max() <= 1, f"user {k} got another result"
            served += 1
        assert served == QUEUE_SIZE + 1 and refused == 2
        assert gated.most == 1  # never two enhancements at once
    finally:
        gated.gate.set()
        app.close()


def test_errors_reach_the_user_and_the_server_keeps_serving(enhancer, tmp_path, dark_image):
    need("gradio")
    from gradio_client import Client, handle_file

    from gsad.demo import build_app

    app = build_app(enhancer, tmp_path / "results", max_pixels=500)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        (tmp_path / "notes.txt").write_text("not a photo")
        Image.fromarray(np.zeros((30, 20, 3), np.uint8)).save(tmp_path / "big.png")
        Image.fromarray(dark_image[:20, :20]).save(tmp_path / "ok.png")
        expected = {"notes.txt": "notes.txt: not an image file (Pillow cannot identify it)",
                    "big.png": "big.png: too large for the demo (20 x 30 pixels, at most 0.0005 megapixels)"}
        for name, message in expected.items():
            with pytest.raises(Exception) as err:  # gradio_client's AppError carries the page's message
                client.predict(handle_file(str(tmp_path / name)), 0.0, 1, "ddim", 1, 0, 0.0, api_name="/enhance")
            assert message in str(err.value) and "Traceback" not in str(err.value)
        with pytest.raises(Exception) as err:
            client.predict(handle_file(str(tmp_path / "ok.png")), 0.0, 1, "nope", 1, 0, 0.0, api_name="/enhance")
        assert "sampler: unknown sampler 'nope' (choose from reference, ddim, dpmpp)" in str(err.value)
        (_, _), png = client.predict(handle_file(str(tmp_path / "ok.png")), 0.0, 1, "ddim", 1, 0, 0.0,
                                     api_name="/enhance")
        assert read_image(png).shape == (20, 20, 3)  # still serving after the errors
    finally:
        app.close()


def test_demo_on_a_busy_port_is_one_line(tiny_checkpoint, capsys):
    need("gradio")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["demo", "--checkpoint", str(tiny_checkpoint), "--port", str(port), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err == (f"gsad: error: 127.0.0.1:{port}: cannot serve there (address in use or not available here); "
                   "choose another with --port or --host\n")
