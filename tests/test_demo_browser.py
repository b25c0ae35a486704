"""gsad demo in a real browser: headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium against ``gsad demo`` started on a free loopback port with the default model.

Nothing is downloaded: Selenium gets an explicit chromedriver (no Selenium Manager), Chromium runs
with background networking off and every host name but 127.0.0.1 unresolvable, and the server
process runs with a socket guard that refuses (and logs) any connection off this machine; the
last test checks both logs. Skips without chromium locally; fails instead in CI (CI=true).
Set GSAD_DEMO_SCREENSHOT=docs/demo.png to keep the finished page's screenshot.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsad.enhance.enhancer import Enhancer
from gsad.imaging.io import read_image

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "gsad" / "resources" / "sample_dark.png"
CHROME_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--window-size=1400,1050",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)
# Runs in the server process before gsad: refuse and log every name lookup or connection off this machine.
SOCKET_GUARD = r"""
import ipaddress, socket, sys
LOG = sys.argv.pop(1)
def _log(what):
    with open(LOG, "a") as log:
        log.write(what + "\n")
def _local(host):
    if host in (None, "", b"", "localhost", b"localhost"):
        return True
    try:
        return ipaddress.ip_address(host.decode() if isinstance(host, bytes) else host).is_loopback
    except ValueError:
        return False
def _guard_connect(connect):
    def guarded(self, address):
        if isinstance(address, tuple) and not _local(address[0]):  # AF_UNIX addresses are local
            _log(f"blocked connection to {address!r}")
            raise OSError(f"gsad test: no network ({address!r})")
        return connect(self, address)
    return guarded
def _guard_lookup(getaddrinfo):
    def guarded(host, *args, **kwargs):
        if not _local(host):
            _log(f"blocked lookup of {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, f"gsad test: no network ({host!r})")
        return getaddrinfo(host, *args, **kwargs)
    return guarded
socket.socket.connect = _guard_connect(socket.socket.connect)
socket.socket.connect_ex = _guard_connect(socket.socket.connect_ex)
socket.getaddrinfo = _guard_lookup(socket.getaddrinfo)
from gsad.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for module in ("selenium", "gradio"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{module} is not installed (pip install -e \".[test]\")"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) or not shutil.which("chromedriver"):
        return "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    return None


REASON = _missing()
if REASON is not None and os.environ.get("CI") != "true":
    pytest.skip(REASON, allow_module_level=True)  # in CI the fixtures fail instead: never a silent skip
if REASON is None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait


@pytest.fixture(scope="module", autouse=True)
def _runnable():
    if REASON is not None:
        pytest.fail(f"browser tests cannot run in CI: {REASON}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``gsad demo`` (default model) in a subprocess on a free loopback port; yields (url, guard log path)."""
    work = tmp_path_factory.mktemp("demo-server")
    guard_log = work / "network.log"
    guard_log.write_text("")
    port = _free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(work / "gradio"), PYTHONUNBUFFERED="1")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    out = open(work / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([sys.executable, "-c", SOCKET_GUARD, str(guard_log), "demo", "--host", "127.0.0.1",
                             "--port", str(port), "--device", "cpu"], stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 240
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gsad demo exited with {proc.returncode}:\n{(work / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(url + "gradio_api/info", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("gsad demo did not start within 240 s") from None
                time.sleep(0.5)
        yield url, guard_log, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        out.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    profile = tempfile.mkdtemp(prefix="gsad-chromium-")
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.requested = []  # every URL the browser asked for, from the performance log
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _collect_requests(driver) -> None:
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            driver.requested.append(message["params"]["request"]["url"])


def _open_page(driver, url: str) -> None:
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))


def _upload(driver, path: Path) -> None:
    driver.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(path))
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo img"))


def _page_text(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def test_non_image_upload_shows_the_error_on_the_page(server, browser, tmp_path):
    url, _, proc = server
    notes = tmp_path / "notes.png"  # an image's name, not an image's bytes
    notes.write_text("these are not pixels")
    _open_page(browser, url)
    browser.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(notes))
    time.sleep(1.0)  # let the upload finish (the preview stays broken)
    browser.find_element(By.ID, "enhance").click()
    message = "notes.png: not an image file (Pillow cannot identify it)"
    WebDriverWait(browser, 60).until(lambda d: message in _page_text(d))
    text = _page_text(browser)
    assert "Traceback" not in text and "File \"" not in text
    assert proc.poll() is None  # the server keeps serving (the next test uses it)
    _collect_requests(browser)


def test_enhance_sample_photo_in_the_browser(server, browser, tmp_path):
    url, _, proc = server
    _open_page(browser, url)
    stored = Enhancer().sampler  # the page's controls start at the checkpoint's stored settings
    for elem_id, value in (("steps", stored.steps), ("ensemble", stored.ensemble)):
        box = browser.find_element(By.CSS_SELECTOR, f"#{elem_id} input[type=number]")
        assert box.get_attribute("value") == str(value)
    _upload(browser, SAMPLE)
    browser.find_element(By.ID, "enhance").click()
    total = stored.steps * stored.ensemble
    progress_seen = set()
    deadline = time.monotonic() + 240
    link = []
    while not link:  # watch the progress indicator until the download link appears
        assert time.monotonic() < deadline, "no result within 240 s"
        assert proc.poll() is None, "server died"
        text = browser.find_element(By.ID, "compare").text
        progress_seen.update(f"{i}/{total} steps" for i in range(1, total + 1) if f"{i}/{total} steps" in text)
        link = browser.find_elements(By.CSS_SELECTOR, "#result a[download]")
        time.sleep(0.05)
    assert progress_seen, "the progress indicator never showed the sampler's steps"
    href = link[0].get_attribute("href")
    assert href.startswith(url) and href.endswith("sample_dark_gsad.png")
    with urllib.request.urlopen(href, timeout=30) as response:
        result = np.asarray(Image.open(BytesIO(response.read())).convert("RGB"))
    dark = read_image(SAMPLE)
    assert result.shape == dark.shape  # full resolution, same size as the upload
    assert result.mean() > dark.mean() + 40  # much brighter (sample mean 8.7 of 255)
    WebDriverWait(browser, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#compare img")) >= 2)
    time.sleep(0.5)  # let the before/after images paint
    shot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(shot))
    assert Image.open(shot).size[0] >= 1000
    if os.environ.get("GSAD_DEMO_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["GSAD_DEMO_SCREENSHOT"])
    _collect_requests(browser)


def test_an_example_photo_is_one_click_away(server, browser):
    url, _, _ = server
    _open_page(browser, url)
    names = [Path(img.get_attribute("src")).name for img in browser.find_elements(By.CSS_SELECTOR, "#examples img")]
    assert names == ["sample_dark.png", "astronaut_dark.png", "cat_dark.png", "rocket_dark.png"]
    browser.find_elements(By.CSS_SELECTOR, "#examples button")[2].click()
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo img"))
    assert browser.find_element(By.CSS_SELECTOR, "#photo img").get_attribute("src").endswith("/cat_dark.png")
    _collect_requests(browser)


def test_nothing_left_the_machine(server, browser):
    url, guard_log, _ = server
    _collect_requests(browser)
    assert browser.requested, "no requests were logged"
    web = ("http:", "https:", "ws:", "wss:")
    remote = [u for u in browser.requested if u.startswith(web) and not u.startswith(url)]
    assert remote == [], f"the browser fetched from elsewhere: {remote[:5]}"
    assert guard_log.read_text() == "", "the server tried to reach the network"
