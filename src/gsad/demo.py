"""``gsad demo``: a local web page to enhance a photo and compare it before and after.

Built with Gradio (the optional extra ``pip install "gsad[demo]"``), imported only when the
app is built, so ``import gsad`` never needs it. The model is loaded once; requests go
through Gradio's queue one at a time (the Enhancer keeps per-call schedule state, so two
runs must not overlap) with a bounded queue length, and each request writes its result to
a folder of its own. The plain-Python part (:func:`read_upload`, :func:`enhance_upload`)
has no Gradio in it and is what the tests drive directly.

Nothing phones home: Gradio's analytics and version check and the Hugging Face hub's
telemetry are switched off before Gradio is imported, ``share`` is never used (no tunnel
binary), and the default theme's fonts are served by the app itself.
"""

from __future__ import annotations

import atexit
import html
import logging
import math
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from gsad.config import MAX_ENSEMBLE, SAMPLER_NAMES
from gsad.errors import ConfigError, GsadError, InputError
from gsad.imaging.io import read_image, write_image

log = logging.getLogger(__name__)

#: The one line ``gsad demo`` prints when Gradio is missing.
INSTALL_HINT = 'the demo needs Gradio: pip install "gsad[demo]"'
#: Environment that keeps Gradio and huggingface_hub off the network (set before import).
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",
    "GRADIO_SHARE": "False",
}
#: Photos with more pixels are refused (about 6 minutes per megapixel with the default
#: settings on a 2-core CPU; ``gsad enhance`` has no limit).
MAX_PIXELS = 12_000_000
#: Uploads larger than this are refused by Gradio before they reach the model.
MAX_UPLOAD = "64mb"
#: Requests waiting beyond the one being enhanced; more get Gradio's "queue is full".
QUEUE_SIZE = 8
#: Result folders older than this (seconds) are removed when a new request arrives.
RESULT_TTL = 3600.0
#: Range of the exposure control, in stops.
EV_RANGE = (-3.0, 3.0)
#: Upper end of the steps control (the checkpoint's default is always inside).
MAX_STEPS = 50


class MissingExtraError(GsadError):
    """An optional dependency (here Gradio) is not installed."""


def example_photos() -> list[Path]:
    """The bundled dark photos offered as examples: the sample photo, then ``resources/examples``."""
    root = Path(str(resources.files("gsad") / "resources"))
    return [root / "sample_dark.png", *sorted((root / "examples").glob("*.png"))]


def import_gradio() -> Any:
    """Import Gradio with telemetry off; :class:`MissingExtraError` (one line) when absent."""
    os.environ.update(OFFLINE_ENV)
    try:
        import gradio
    except ImportError:
        raise MissingExtraError(INSTALL_HINT) from None
    return gradio


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None when Pillow cannot tell (read_image says why)."""
    try:
        with Image.open(path) as img:
            return img.size
    except Image.DecompressionBombError:
        return (2**31, 1)  # beyond Pillow's own limit: certainly too large
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def read_upload(payload: dict | None, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """An uploaded file (Gradio's file payload: ``path``, ``orig_name``) -> (uint8 RGB pixels, name).

    Raises :class:`InputError` naming the uploaded file (not the server's copy) when there is
    none, when it is not a readable image, or when it has more than ``max_pixels`` pixels.
    """
    if not payload or not payload.get("path"):
        raise InputError("no photo: upload, drop or paste one (or click an example) first")
    path = Path(payload["path"])
    name = payload.get("orig_name") or path.name
    size = _image_size(path)
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputError(
            f"{name}: too large for the demo ({size[0]} x {size[1]} pixels, at most {max_pixels / 1e6:g} megapixels); "
            "use gsad enhance, which takes any size"
        )
    try:
        return read_image(path), name
    except InputError as exc:
        text = str(exc)
        prefix = f"{path}: "
        raise InputError(f"{name}: {text[len(prefix):]}" if text.startswith(prefix) else text) from None


def _number(value: Any, name: str, whole: bool = False) -> float | int | None:
    """A control's value from the page or the HTTP API (which passes it unprocessed) as a finite
    number (an int where ``whole``), None for unset; ConfigError naming the control otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number) or (whole and not number.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{name}: expected {kind}, got {value!r}")
    return int(number) if whole else number


def _prune(root: Path, max_age: float) -> None:
    """Remove result folders in ``root`` older than ``max_age`` seconds."""
    now = time.time()
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and now - folder.stat().st_mtime > max_age:
            shutil.rmtree(folder, ignore_errors=True)


def enhance_upload(
    enhancer: Any,
    payload: dict | None,
    out_root: Path,
    exposure: float = 0.0,
    steps: int | None = None,
    sampler: str | None = None,
    ensemble: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int = MAX_PIXELS,
    detail: float | None = None,
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Enhance one uploaded photo with ``enhancer`` (a :class:`~gsad.enhance.enhancer.Enhancer`).

    Unset options take the checkpoint's defaults; large photos are tiled as in ``gsad enhance``
    (``tile=None``). The full-resolution result is written as PNG to a new folder of its own
    inside ``out_root`` (so concurrent users never share a file). Returns (input pixels,
    enhanced pixels, PNG path); :class:`GsadError` for anything the user can fix.
    """
    pixels, name = read_upload(payload, max_pixels)
    settings = enhancer.settings(
        sampler=sampler, steps=_number(steps, "steps", whole=True),
        ensemble=_number(ensemble, "ensemble", whole=True), seed=_number(seed, "seed", whole=True),
        detail=_number(detail, "detail"),
    )
    exposure = _number(exposure, "exposure") or 0.0
    out = enhancer.enhance(pixels, settings, tile=None, exposure=exposure, callback=progress)
    _prune(out_root, RESULT_TTL)
    folder = out_root / uuid.uuid4().hex
    path = write_image(folder / f"{Path(name).stem or 'photo'}_gsad.png", out)
    return pixels, out, path


_INTRO = """\
# gsad: low-light enhancement
Upload, drop or paste a dark photo (or click an example), then press **Enhance**. The model runs on
this machine; one photo at a time, the others wait in the queue. Drag the slider to compare before
and after; the full-resolution PNG is offered for download below it.
"""


def build_app(enhancer: Any, out_root: str | os.PathLike | None = None, max_pixels: int = MAX_PIXELS) -> Any:
    """The Gradio Blocks app around ``enhancer`` (not launched); controls default to its settings.

    Its API (``/gradio_api/info``) has one endpoint, ``/enhance``: (photo file, exposure EV,
    steps, sampler, ensemble, seed, detail) -> ((before, after) images, enhanced PNG file).
    """
    gr = import_gradio()
    if out_root is None:
        root = Path(tempfile.mkdtemp(prefix="gsad-demo-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    else:
        root = Path(out_root)
        root.mkdir(parents=True, exist_ok=True)
    defaults = enhancer.sampler

    def run(photo, exposure, steps, sampler, ensemble, seed, detail,
            progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
        def report(step: int, total: int) -> None:
            progress((step, total), desc="denoising", unit="steps")

        progress(0.0, desc="reading the photo")
        try:
            before, after, path = enhance_upload(
                enhancer, photo, root, exposure=exposure or 0.0, steps=steps, sampler=sampler,
                ensemble=ensemble, seed=seed, progress=report, max_pixels=max_pixels, detail=detail,
            )
        except GsadError as exc:
            raise gr.Error(html.escape(str(exc), quote=False), duration=None, print_exception=False) from None
        return (before, after), str(path)

    with gr.Blocks(title="gsad demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(_INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(label="Dark photo", type="filepath", sources=["upload", "clipboard"],
                                 elem_id="photo", height=300)
                gr.Examples([[str(p)] for p in example_photos()], inputs=[photo], label="Examples (click one)",
                            elem_id="examples")
                button = gr.Button("Enhance", variant="primary", elem_id="enhance")
                with gr.Row():
                    exposure = gr.Slider(*EV_RANGE, value=0.0, step=0.1, label="Exposure (EV)", elem_id="exposure",
                                         info="brighter (+) or darker (-) than the model's choice")
                    steps = gr.Slider(1, max(MAX_STEPS, defaults.steps), value=defaults.steps, step=1,
                                      label="Steps", elem_id="steps", info="network evaluations per trajectory")
                with gr.Row():
                    sampler = gr.Dropdown(list(SAMPLER_NAMES), value=defaults.sampler, label="Sampler",
                                          elem_id="sampler")
                    ensemble = gr.Slider(1, MAX_ENSEMBLE, value=defaults.ensemble, step=1, label="Ensemble",
                                         elem_id="ensemble", info="trajectories averaged: less grain, more time")
                    seed = gr.Number(value=defaults.seed, precision=0, label="Seed", elem_id="seed")
                detail = gr.Slider(0.0, 1.0, value=defaults.detail, step=0.05, label="Detail", elem_id="detail",
                                   info="the photo's own fine detail put back where it stands above its noise (0: off)")
            with gr.Column(scale=1):
                compare = gr.ImageSlider(label="Before | after", type="numpy", format="png",
                                         interactive=False, elem_id="compare", max_height=480)
                result = gr.File(label="Enhanced PNG (full resolution)", interactive=False, elem_id="result")
        button.click(run, [photo, exposure, steps, sampler, ensemble, seed, detail], [compare, result],
                     api_name="enhance", preprocess=False, concurrency_limit=1)
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "auto",
    block: bool = True,
) -> Any:
    """Load the model once, build the app and serve it on ``host:port`` (blocks unless ``block`` is False)."""
    import_gradio()  # fail fast, before the model is loaded
    from gsad.enhance.enhancer import Enhancer

    enhancer = Enhancer(checkpoint, device=device)
    app = build_app(enhancer)
    examples = str(example_photos()[0].parent)
    try:
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_UPLOAD,
                   allowed_paths=[examples], show_error=False, prevent_thread_lock=True, footer_links=["api"],
                   ssr_mode=False, pwa=False, mcp_server=False, quiet=True)
    except OSError as exc:
        log.debug("launch failed: %s", exc)
        raise InputError(f"{host}:{port}: cannot serve there (address in use or not available here); "
                         "choose another with --port or --host") from None
    print(f"gsad demo: serving {app.local_url} (Ctrl-C to stop)", flush=True)
    if block:
        app.block_thread()
    return app
