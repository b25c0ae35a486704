"""gsad demo without a browser: upload reading, enhancement, the app's defaults, queue and CLI.

The browser tests are in test_demo_browser.py. Tests that need Gradio skip without it, except
in CI (CI=true), where a missing test dependency is a failure.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gsad.demo
import gsad.enhance.tiling
from gsad.cli import main
from gsad.config import MAX_ENSEMBLE, SamplerConfig
from gsad.demo import (
    EV_RANGE,
    INSTALL_HINT,
    MAX_NAME_BYTES,
    MAX_PIXELS,
    MAX_STEPS,
    QUEUE_SIZE,
    check_work,
    clean_name,
    enhance_upload,
    example_photos,
    prune_store,
    read_upload,
)
from gsad.enhance.enhancer import Enhancer
from gsad.errors import ConfigError, InputError
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
    return Enhancer(tiny_checkpoint, device="cpu", precision="fp32")  # no fast-path probe: quick


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
    assert parts["format"].value == "png" and ".dng" in parts["file"].file_types and ".mp4" in parts["file"].file_types
    api = app.get_api_info()  # one public endpoint: the page's other events (clearing a box, the player) are private
    assert list(api["named_endpoints"]) == ["/enhance"] and not api["unnamed_endpoints"]
    params = {p["parameter_name"]: p for p in api["named_endpoints"]["/enhance"]["parameters"]}
    assert list(params)[-2:] == ["file", "output_format"]
    assert params["file"]["parameter_default"] is None and params["output_format"]["parameter_default"] == "png"


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


# ----------------------------------------------------------------------------------------
# hostile input: names, sizes, API values, work, the store, served files, SIGTERM
# ----------------------------------------------------------------------------------------


def test_read_upload_reports_the_real_size_of_a_header_only_bomb(png_header_only, tmp_path):
    path = png_header_only(tmp_path / "bomb.png", 40000, 40000)
    with pytest.raises(InputError) as err:
        read_upload({"path": str(path), "orig_name": "bomb.png"})
    assert "bomb.png: too large for the demo (40000 x 40000 pixels" in str(err.value)


@pytest.mark.parametrize("stem", ["a" * 250, "夜" * 90, "x" * 40 + "\u202e\n\t" + "y" * 200])
def test_long_names_are_shortened_before_any_work(enhancer, tmp_path, dark_image, stem):
    payload = _save(tmp_path / "in.png", dark_image)
    payload["orig_name"] = f"{stem}.png"
    _, after, path = enhance_upload(enhancer, payload, tmp_path / "out", steps=1)
    assert len(path.name.encode("utf-8")) <= MAX_NAME_BYTES and path.name.endswith("_gsad.png")
    assert "\n" not in path.name and "\u202e" not in path.name
    np.testing.assert_array_equal(read_image(path), after)


def test_clean_name_keeps_only_a_safe_last_part():
    assert clean_name("../../etc/passwd") == "passwd"
    assert clean_name("C:\\Users\\me\\dark.png") == "dark.png"
    assert clean_name("...") == "photo" and clean_name("") == "photo"
    assert clean_name("a\x00b\x1b.png") == "a b .png"
    short = clean_name("é" * 300 + ".jpeg")
    assert short.endswith("....jpeg") and len(short.encode("utf-8")) <= MAX_NAME_BYTES
    short.encode("utf-8").decode("utf-8")  # never half a character


def test_messages_never_show_server_paths(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    (tmp_path / "out").write_text("a file where the results folder should be")
    with pytest.raises(InputError) as err:
        enhance_upload(enhancer, payload, tmp_path / "out", steps=1)
    assert str(err.value).startswith("my in.png: cannot save the result (") and str(tmp_path) not in str(err.value)
    (tmp_path / "gone.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # truncated: Pillow names the path?
    with pytest.raises(InputError) as err:
        read_upload({"path": str(tmp_path / "gone.png"), "orig_name": "gone.png"})
    assert str(err.value).startswith("gone.png: ") and str(tmp_path) not in str(err.value)


class SpyEnhancer:
    """An Enhancer that records whether enhance() was ever called."""

    def __init__(self, inner: Enhancer) -> None:
        self.inner, self.sampler, self.calls = inner, inner.sampler, 0

    def settings(self, *base, **overrides):
        return self.inner.settings(*base, **overrides)

    def enhance(self, *args, **kwargs):
        self.calls += 1
        return self.inner.enhance(*args, **kwargs)


@pytest.mark.parametrize("option, value, message", [
    ("steps", 100, "steps: must be from 1 to 50 in the demo, got 100"),
    ("steps", 51, "steps: must be from 1 to 50 in the demo, got 51"),
    ("exposure", 9, "exposure: must be from -3 to 3 EV in the demo, got 9"),
    ("exposure", -3.5, "exposure: must be from -3 to 3 EV in the demo, got -3.5"),
])
def test_api_values_beyond_the_pages_controls_are_refused_before_any_work(enhancer, tmp_path, dark_image, option,
                                                                         value, message):
    spy = SpyEnhancer(enhancer)
    with pytest.raises(ConfigError) as err:
        enhance_upload(spy, _save(tmp_path / "in.png", dark_image), tmp_path / "out", **{option: value})
    assert str(err.value).startswith(message)
    assert spy.calls == 0


def test_the_pages_own_extremes_are_accepted(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    for exposure in EV_RANGE:
        enhance_upload(enhancer, payload, tmp_path / "out", steps=1, exposure=exposure)


def test_work_per_request_is_capped_before_any_work(enhancer, tmp_path, dark_image):
    spy = SpyEnhancer(enhancer)
    payload = _save(tmp_path / "in.png", dark_image)  # 28 x 20 = 560 pixels
    work = 560 / 1e6 * 2 * 3
    with pytest.raises(ConfigError, match=r"too much work for the demo: 0\.00 megapixels x 2 steps x 3 trajectories"):
        enhance_upload(spy, payload, tmp_path / "out", steps=2, ensemble=3, max_work=work * 0.99)
    assert spy.calls == 0
    enhance_upload(spy, payload, tmp_path / "out", steps=2, ensemble=3, max_work=work)  # at the cap: accepted
    assert spy.calls == 1
    # the default cap admits the largest photo at the default model's settings (3 steps x 3 trajectories)
    check_work(MAX_PIXELS, 3, 3)
    with pytest.raises(ConfigError):
        check_work(MAX_PIXELS, MAX_STEPS, MAX_ENSEMBLE)


def test_prune_store_removes_the_oldest_files_and_keeps_the_protected(tmp_path):
    keep = tmp_path / "gradio" / "examples" / "cat.png"
    files = [keep, *(tmp_path / "gradio" / f"u{k}" / "up.png" for k in range(5))]
    for age, path in enumerate(reversed(files)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
        os.utime(path, (time.time() - 100 * age, time.time() - 100 * age))  # files[0] oldest
    removed = prune_store(tmp_path, max_files=3, max_bytes=10_000, keep=frozenset({keep}))
    assert removed == files[1:4] and keep.exists() and files[4].exists() and files[5].exists()
    assert not (tmp_path / "gradio" / "u0").exists()  # folders left empty go too
    assert prune_store(tmp_path, max_files=100, max_bytes=250, keep=frozenset({keep})) == [files[4]]


def _launch(app, store=None) -> str:
    from gsad.demo import launch

    port = free_port()
    launch(app, "127.0.0.1", port, store)
    return f"http://127.0.0.1:{port}"


def test_only_the_example_photos_are_served_not_the_package(enhancer, tmp_path):
    need("gradio")
    import httpx

    from gsad.demo import build_app, private_store

    with private_store() as store:
        app = build_app(enhancer, store / "results")
        base = _launch(app, store)
        try:
            resources = example_photos()[0].parent
            for secret in (resources / "default.safetensors", Path(gsad.demo.__file__), resources.parent / "config.py"):
                assert secret.is_file()
                assert httpx.get(f"{base}/gradio_api/file={secret}").status_code != 200, secret
            urls = set(re.findall(r'"url": ?"(http://127\.0\.0\.1:[0-9]+/gradio_api/file=[^"]+)"',
                                  httpx.get(f"{base}/config").text))
            names = {u.rsplit("/", 1)[1] for u in urls}
            assert {p.name for p in example_photos()} <= names
            for url in urls:
                response = httpx.get(url)
                assert response.status_code == 200 and response.content[:4] == b"\x89PNG", url
        finally:
            app.close()


def _settled(look, ok, timeout: float = 10.0):
    """``look()`` once ``ok`` of it holds, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ok(value := look()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_the_upload_store_is_capped(enhancer, tmp_path, monkeypatch):
    need("gradio")
    import httpx

    from gsad.demo import build_app, private_store

    with private_store() as store:
        app = build_app(enhancer, store / "results")
        at_launch = {p for p in store.rglob("*") if p.is_file()}
        monkeypatch.setattr(gsad.demo, "MAX_STORE_FILES", len(at_launch) + 3)
        monkeypatch.setattr(gsad.demo, "MAX_STORE_BYTES", 10**9)
        base = _launch(app, store)
        try:
            for k in range(8):
                payload = os.urandom(20_000)
                response = httpx.post(f"{base}/gradio_api/upload", files={"files": (f"u{k}.png", payload)})
                assert response.status_code == 200, response.text
            # pruned when each upload ends (the server may finish just after the client has its answer)
            files = _settled(lambda: {p for p in store.rglob("*") if p.is_file()},
                             lambda files: len(files) <= len(at_launch) + 3)
            assert len(files) <= len(at_launch) + 3 and at_launch <= files  # the examples' copies stay
            assert any(p.name == "u7.png" for p in files) and not any(p.name == "u0.png" for p in files)
        finally:
            app.close()
        app = build_app(enhancer, store / "results")  # and by size
        at_launch = {p for p in store.rglob("*") if p.is_file()}
        monkeypatch.setattr(gsad.demo, "MAX_STORE_FILES", 10**6)
        monkeypatch.setattr(gsad.demo, "MAX_STORE_BYTES", sum(p.stat().st_size for p in at_launch) + 50_000)
        base = _launch(app, store)
        try:
            for k in range(5):
                httpx.post(f"{base}/gradio_api/upload", files={"files": (f"v{k}.png", os.urandom(20_000))})
            uploads = _settled(lambda: sum(p.stat().st_size for p in store.rglob("*") if p.is_file()
                                           and p not in at_launch), lambda size: size <= 50_000)
            assert 20_000 <= uploads <= 50_000
        finally:
            app.close()


def test_a_refused_request_is_one_line_in_the_server_log(enhancer, tmp_path, capfd, caplog):
    need("gradio")
    from gradio_client import Client, handle_file

    from gsad.demo import build_app

    app = build_app(enhancer, tmp_path / "results")
    base = _launch(app)
    try:
        client = Client(f"{base}/", verbose=False, download_files=str(tmp_path / "downloads"))
        (tmp_path / "notes.txt").write_text("not a photo")
        capfd.readouterr()
        with pytest.raises(Exception, match="notes.txt: not an image file"):
            client.predict(handle_file(str(tmp_path / "notes.txt")), 0.0, 1, "ddim", 1, 0, 0.0, api_name="/enhance")
        with pytest.raises(Exception, match="steps: must be from 1 to 50"):
            client.predict(handle_file(str(tmp_path / "notes.txt")), 0.0, 100, "ddim", 1, 0, 0.0, api_name="/enhance")
    finally:
        app.close()
    server_log = capfd.readouterr()
    assert "Traceback" not in server_log.err + server_log.out
    records = [r for r in caplog.records if r.name == "gsad.demo"]
    assert all(r.exc_info is None and r.stack_info is None for r in records)  # no traceback
    refused = [r.getMessage() for r in records]
    assert refused == ["refused a request: notes.txt: not an image file (Pillow cannot identify it)",
                       "refused a request: steps: must be from 1 to 50 in the demo, got 100 (gsad enhance takes more)"]


def test_sigterm_stops_the_demo_and_removes_every_upload_and_result(tiny_checkpoint, tmp_path, dark_image):
    need("gradio")
    from gradio_client import Client, handle_file

    tmp = tmp_path / "tmp"  # the server's temporary folder: all it keeps goes in there
    tmp.mkdir()
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gsad", "demo", "--checkpoint", str(tiny_checkpoint),
                                 "--port", str(port), "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TMPDIR": str(tmp)})
    try:
        deadline = time.monotonic() + 240
        while "gsad demo: serving" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the demo did not start"
            time.sleep(0.2)
        Image.fromarray(dark_image).save(tmp_path / "dark.png")
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        client.predict(handle_file(str(tmp_path / "dark.png")), 0.0, 1, "ddim", 1, 0, 0.0, api_name="/enhance")
        kept = [p for p in tmp.rglob("*") if p.is_file()]
        assert any(p.name == "dark.png" for p in kept) and any(p.name.endswith("_gsad.png") for p in kept)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [p for p in tmp.rglob("*") if p.is_file()] == [], log.read_text()
    assert list(tmp.glob("gsad-demo-*")) == []
    assert "Traceback" not in log.read_text()


def test_messages_show_the_cleaned_short_name(tmp_path):
    (tmp_path / "notes.txt").write_text("not a photo")
    for sent, shown in [("a" * 250 + ".txt", "a" * (MAX_NAME_BYTES - 7) + "....txt"), ("../../secret/x.txt", "x.txt"),
                        ("bad\nname.txt", "bad name.txt")]:
        with pytest.raises(InputError) as err:
            read_upload({"path": str(tmp_path / "notes.txt"), "orig_name": sent})
        assert str(err.value) == f"{shown}: not an image file (Pillow cannot identify it)"


# ----------------------------------------------------------------------------------------
# the inputs and outputs of gsad enhance: RAW, HEIC, download formats, short videos
# ----------------------------------------------------------------------------------------


def _dark_scene() -> np.ndarray:
    """A dark linear scene for a DNG (even sides, as the Bayer pattern needs)."""
    y, x = np.mgrid[0:24, 0:32]
    return np.stack([0.02 + 0.002 * x, 0.03 + 0.001 * y, np.full(x.shape, 0.02)], axis=2)


def test_a_camera_raw_upload_is_developed_and_enhanced(enhancer, formats, tmp_path):
    from gsad.imaging.pictures import read_picture

    formats.write_dng(tmp_path / "upload.dng", _dark_scene())
    payload = {"path": str(tmp_path / "upload.dng"), "orig_name": "night.DNG"}
    before, after, path = enhance_upload(enhancer, payload, tmp_path / "out", steps=1)
    picture = read_picture(tmp_path / "upload.dng")
    assert picture.pixels.dtype == np.float32  # the RAW's 16-bit development, not an 8-bit copy
    expected = enhancer.enhance(picture.pixels, steps=1)
    np.testing.assert_array_equal(before, np.round(picture.pixels * 255).astype(np.uint8))
    np.testing.assert_array_equal(after, np.round(expected * 255).astype(np.uint8))
    assert path.name == "night_gsad.png"
    with Image.open(path) as img:
        assert (img.format, img.mode, img.size) == ("PNG", "RGB", (32, 24))
    np.testing.assert_array_equal(read_image(path), after)
    assert after.mean() > before.mean() + 20  # brighter


def test_a_raw_upload_too_large_is_refused_from_its_header(formats, tmp_path):
    formats.write_dng(tmp_path / "upload.dng", _dark_scene())
    with pytest.raises(InputError) as err:
        read_upload({"path": str(tmp_path / "upload.dng"), "orig_name": "big.dng"}, max_pixels=500)
    assert str(err.value) == ("big.dng: too large for the demo (32 x 24 pixels, at most 0.0005 megapixels); "
                              "use gsad enhance, which takes any size")


def test_a_heic_upload_is_enhanced_with_its_exif(enhancer, formats, tmp_path, dark_image):
    from gsad.imaging.pictures import read_picture, write_picture

    exif = Image.Exif()
    exif[0x010F] = "gsad test camera"  # Make
    write_picture(tmp_path / "upload.heic", dark_image, exif=exif.tobytes())
    payload = {"path": str(tmp_path / "upload.heic"), "orig_name": "phone.heic"}
    before, after, path = enhance_upload(enhancer, payload, tmp_path / "out", steps=1, output_format="jpeg")
    source = read_picture(tmp_path / "upload.heic").pixels
    np.testing.assert_array_equal(before, source)
    np.testing.assert_array_equal(after, enhancer.enhance(source, steps=1))
    assert path.name == "phone_gsad.jpg"
    with Image.open(path) as img:
        assert img.getexif()[0x010F] == "gsad test camera"
        assert img.getexif()[0x0131].startswith("gsad ")  # Software


@pytest.mark.parametrize("choice", list(gsad.demo.DOWNLOAD_FORMATS))
def test_each_download_format_is_a_file_pillow_reads(enhancer, formats, tmp_path, dark_image, choice):
    from PIL import JpegImagePlugin

    from gsad.imaging.io import register_plugins
    from gsad.imaging.pictures import read_picture

    _, suffix, bits = gsad.demo.DOWNLOAD_FORMATS[choice]
    payload = _save(tmp_path / "in.png", dark_image)
    _, after, path = enhance_upload(enhancer, payload, tmp_path / "out", steps=1, output_format=choice)
    assert path.name == f"my in_gsad{suffix}"
    register_plugins(path)
    expected_format = {".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF", ".webp": "WEBP", ".heic": "HEIF",
                       ".avif": "AVIF"}[suffix]
    with Image.open(path) as img:
        assert (img.format, img.mode, img.size) == (expected_format, "RGB", (28, 20))
        if img.format == "JPEG":
            assert JpegImagePlugin.get_sampling(img) == 0  # 4:4:4
    picture = read_picture(path)
    assert picture.depth == bits
    if choice == "png":
        np.testing.assert_array_equal(picture.pixels, after)
    elif bits == 16:  # the model's unrounded result, in 16 bits; the preview is its 8-bit rounding
        assert np.abs(np.round(picture.pixels * 255) - after).max() <= 1
        assert len(np.unique(np.round(picture.pixels * 65535) % 257)) > 1  # not 8-bit values widened


def test_png_stays_the_default_and_an_unknown_format_is_one_line(enhancer, tmp_path, dark_image):
    payload = _save(tmp_path / "in.png", dark_image)
    for value in (None, "png"):
        path = enhance_upload(enhancer, payload, tmp_path / "out", steps=1, output_format=value)[2]
        assert path.suffix == ".png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    spy = SpyEnhancer(enhancer)
    with pytest.raises(ConfigError) as err:
        enhance_upload(spy, payload, tmp_path / "out", output_format="gif")
    assert str(err.value) == ("output format: unknown format 'gif' (choose from png, jpeg, png16, tiff16, webp, heic, "
                              "avif)")
    assert spy.calls == 0


def _video_frames(path: Path) -> list[np.ndarray]:
    from gsad.imaging.video import iter_frames

    return list(iter_frames(path))


def test_a_short_video_is_enhanced_like_gsad_enhance_does(enhancer, make_clip, tmp_path, encoder_frames):
    from gsad.enhance.video import enhance_video, video_settings

    kept = encoder_frames
    clip = make_clip(tmp_path / "clip.mp4")  # 3 s at 10 fps, 64 x 48, rotated 90 degrees, with audio
    seen = []
    before, after, path = enhance_upload(enhancer, {"path": str(clip), "orig_name": "evening walk.mp4"},
                                         tmp_path / "out", steps=1, ensemble=1, output_format="jpeg",
                                         on_frame=lambda done, total: seen.append((done, total)))
    assert path.name == "evening walk_gsad.mp4"  # a video's result is MP4 whatever the photo format
    frames = _video_frames(path)
    assert len(frames) == len(_video_frames(clip)) == 30 and seen[-1] == (30, 30)
    assert before.shape == after.shape == (64, 48, 3)  # the first frame, upright
    assert after.mean() > before.mean() + 20
    cli = enhance_video(enhancer, clip, tmp_path / "cli.mp4", video_settings(enhancer, steps=1, ensemble=1))
    assert cli.frames == 30
    assert len(kept) == 2 and len(kept[0]) == 30
    for ours, theirs in zip(*kept, strict=True):
        np.testing.assert_array_equal(ours, theirs)  # the same path as the command line
    # the encoded files need not be bit-exact (encoder_frames), so they are compared loosely
    for ours, theirs in zip(frames, _video_frames(tmp_path / "cli.mp4"), strict=True):
        assert np.abs(ours.astype(int) - theirs).mean() < 5  # a wrong or unenhanced frame is tens of levels off


def test_a_video_over_the_frame_limit_is_refused_in_one_line(enhancer, make_clip, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4")
    payload = {"path": str(clip), "orig_name": "clip.mp4"}
    with pytest.raises(InputError) as err:
        enhance_upload(enhancer, payload, tmp_path / "out", steps=1, max_frames=29)
    assert str(err.value) == "clip.mp4: too long for the demo (30 frames, at most 29); use gsad enhance, which takes " \
                             "any length"
    with pytest.raises(InputError) as err:
        enhance_upload(enhancer, payload, tmp_path / "out", steps=1, max_pixels=3000)
    assert str(err.value) == ("clip.mp4: frames too large for the demo (64 x 48 pixels, at most 0.003 megapixels); "
                              "use gsad enhance, which takes any size")
    with pytest.raises(ConfigError) as err:  # every frame counts in the work cap
        enhance_upload(enhancer, payload, tmp_path / "out", steps=2, ensemble=1, max_work=64 * 48 / 1e6 * 2 * 29)
    assert "0.00 megapixels x 2 steps x 1 trajectories x 30 frames" in str(err.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.mp4"))
    assert gsad.demo.MAX_VIDEO_FRAMES == 300


def test_a_video_whose_header_hides_its_length_is_stopped_at_the_limit(enhancer, make_clip, tmp_path, monkeypatch):
    import dataclasses

    import gsad.imaging.video

    clip = make_clip(tmp_path / "clip.mp4")
    probe = gsad.imaging.video.probe_video
    monkeypatch.setattr(gsad.imaging.video, "probe_video",
                        lambda path: dataclasses.replace(probe(path), frames=0, duration=0.0))
    with pytest.raises(InputError, match=r"^clip\.mp4: too long for the demo \(more than 10 frames, at most 10\)"):
        enhance_upload(enhancer, {"path": str(clip), "orig_name": "clip.mp4"}, tmp_path / "out", steps=1,
                       ensemble=1, max_frames=10)
    assert not any((tmp_path / "out").rglob("*.mp4*"))  # nothing left behind, not even a temporary file


def test_an_unreadable_video_names_the_upload(enhancer, tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\0" * 100)
    with pytest.raises(InputError) as err:
        enhance_upload(enhancer, {"path": str(tmp_path / "bad.mp4"), "orig_name": "holiday.mp4"}, tmp_path / "out")
    assert str(err.value).startswith("holiday.mp4: unreadable or corrupt video") and str(tmp_path) not in str(err.value)


def test_the_frame_limit_is_one_number(monkeypatch):
    import gsad.cli.demo

    assert gsad.cli.demo.MAX_VIDEO_FRAMES == gsad.demo.MAX_VIDEO_FRAMES
    calls = []
    monkeypatch.setattr(gsad.demo, "serve", lambda *args, **kwargs: calls.append(kwargs))
    assert main(["demo", "--max-video-frames", "12"]) == 0
    assert calls[0]["max_frames"] == 12


def test_demo_refuses_a_frame_limit_below_one_in_one_line(capsys):
    assert main(["demo", "--max-video-frames", "0"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gsad: error: argument --max-video-frames:")


def test_the_api_keeps_its_old_call_and_takes_files_formats_and_videos(enhancer, formats, make_clip, tmp_path,
                                                                     dark_image):
    need("gradio")
    from gradio_client import Client, handle_file

    from gsad.demo import build_app

    app = build_app(enhancer, tmp_path / "results", max_frames=40)
    base = _launch(app)
    try:
        client = Client(f"{base}/", verbose=False, download_files=str(tmp_path / "downloads"))
        Image.fromarray(dark_image).save(tmp_path / "dark.png")
        formats.write_dng(tmp_path / "raw.dng", _dark_scene())
        clip = make_clip(tmp_path / "clip.mp4", seconds=1.0)
        # an existing client: seven values, a PNG back
        (_, _), png = client.predict(handle_file(str(tmp_path / "dark.png")), 0.0, 1, "ddim", 1, 0, 0.0,
                                     api_name="/enhance")
        assert Path(png).name == "dark_gsad.png" and read_image(png).shape == (20, 28, 3)
        # the page's file box wins over the photo box; a format by name
        (_, _), tif = client.predict(photo=handle_file(str(tmp_path / "dark.png")), steps=1,
                                     file=handle_file(str(tmp_path / "raw.dng")), output_format="tiff16",
                                     api_name="/enhance")
        with Image.open(tif) as img:
            assert Path(tif).name == "raw_gsad.tif" and (img.format, img.size) == ("TIFF", (32, 24))
        (_, after), mp4 = client.predict(photo=handle_file(str(clip)), steps=1, ensemble=1, api_name="/enhance")
        assert Path(mp4).name == "clip_gsad.mp4" and len(_video_frames(Path(mp4))) == 10
        assert read_image(after).shape == (64, 48, 3)
    finally:
        app.close()
