"""``gsad demo``: a local web page to enhance a photo or a short video and compare it before and after.

It takes what ``gsad enhance`` reads (camera RAW, HEIC/HEIF, AVIF, 16-bit, wide-gamut photos through
:func:`~gsad.imaging.pictures.read_picture`; videos through :func:`gsad.enhance.video.enhance_video`)
and writes a photo's result in the format chosen (:data:`DOWNLOAD_FORMATS`) with its EXIF, a
video's as MP4.

Built with Gradio (the optional extra ``pip install "gsad[demo]"``), imported only when the
app is built, so ``import gsad`` never needs it. The model is loaded once; requests go
through Gradio's queue one at a time (the Enhancer keeps per-call schedule state, so two
runs must not overlap) with a bounded queue length, and each request writes its result to
a folder of its own. The plain-Python part (:func:`read_upload`, :func:`enhance_upload`)
has no Gradio in it and is what the tests drive directly.

Limits (a public page must not let one request, or a flood of uploads, take the machine):

* photos of at most :data:`MAX_PIXELS` pixels (from the header), uploads of at most
  :data:`MAX_UPLOAD` each; the API's values are checked against the page's controls (steps up to
  :data:`MAX_STEPS`, exposure within :data:`EV_RANGE`, ensemble up to 8) and refused with one line;
* videos of at most :data:`MAX_VIDEO_FRAMES` frames (from the header; one that does not say is
  stopped at the limit), each frame within :data:`MAX_PIXELS`;
* work per request: megapixels x steps x ensemble (x frames) at most :data:`MAX_WORK`;
* everything the demo keeps (Gradio's uploads and cache, the results) lives in one private folder
  (``gsad-demo-*`` in the temporary folder) of at most :data:`MAX_STORE_FILES` files and
  :data:`MAX_STORE_BYTES` bytes (the oldest are removed first; the store can exceed it by the
  uploads in flight), kept at most :data:`RESULT_TTL` seconds, and removed when the server stops:
  after Ctrl-C and after SIGTERM (``kill``, systemd, docker) alike;
* only the example photos (Gradio's copies of them), uploads and results are served: never the
  checkpoint or any other file of the package or the machine;
* file names are shortened and cleaned before any work, and messages never show a server path.

Nothing phones home: Gradio's analytics and version check and the Hugging Face hub's
telemetry are switched off before Gradio is imported, ``share`` is never used (no tunnel
binary), and the default theme's fonts are served by the app itself.
"""

from __future__ import annotations

import atexit
import contextlib
import html
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gsad import __version__
from gsad.config import MAX_ENSEMBLE, SAMPLER_NAMES
from gsad.errors import ConfigError, GsadError, InputError
from gsad.imaging.io import image_size, quantize, readable_suffixes
from gsad.imaging.metadata import with_software
from gsad.imaging.pictures import Picture, read_picture, write_picture
from gsad.imaging.video import VIDEO_SUFFIXES, is_video_file
from gsad.runtime.signals import Terminated, sigterm_raises

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
#: Work one request may ask for: megapixels x steps x ensemble (network evaluations per pixel, in
#: megapixel units). 120 admits a 12-megapixel photo at the default model's 3 steps x 3 trajectories
#: (108; about 70 minutes on a 2-core CPU), or 2.4 megapixels at 50 steps; more is refused.
MAX_WORK = 120.0
#: The demo's store (uploads, Gradio's cache, results): at most this many files and bytes.
MAX_STORE_FILES = 200
MAX_STORE_BYTES = 1 << 30
#: Longest file name (UTF-8 bytes) the demo uses for a result and shows in a message.
MAX_NAME_BYTES = 100
#: Videos of more frames are refused (``gsad demo --max-video-frames``; ``gsad enhance`` takes any
#: length). The work cap counts every frame, so it usually binds first: 300 frames of 320 x 240 at
#: 1 step x 1 trajectory is 23, at the default model's 3 x 3 it is 207.
MAX_VIDEO_FRAMES = 300
#: Download formats: the page's value -> (label, suffix, bits per sample); "png" is the default.
#: Lossy ones at :data:`QUALITY`, JPEG with 4:4:4 chroma, all sRGB with the upload's EXIF and XMP.
DOWNLOAD_FORMATS = {
    "png": ("PNG", ".png", 8),
    "jpeg": ("JPEG (quality 95, 4:4:4)", ".jpg", 8),
    "png16": ("PNG, 16 bits", ".png", 16),
    "tiff16": ("TIFF, 16 bits", ".tif", 16),
    "webp": ("WebP (quality 95)", ".webp", 8),
    "heic": ("HEIC (quality 95)", ".heic", 8),
    "avif": ("AVIF (quality 95)", ".avif", 8),
}
#: Quality of the lossy download formats (``gsad enhance``'s default).
QUALITY = 95


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


def clean_name(name: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """A user's file name made safe to show and to build a file name from: the last path part, no
    control characters, at most ``max_bytes`` UTF-8 bytes (the middle of a long stem becomes "...",
    the suffix is kept); "photo" when nothing is left."""
    name = re.split(r"[\\/]", str(name))[-1]
    name = "".join(" " if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in name).strip()
    name = name.lstrip(".") or "photo"
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 8:
        stem, suffix = name, ""
    suffix = f".{suffix}" if suffix else ""
    room = max_bytes - len(suffix.encode("utf-8")) - len("...")
    head = stem.encode("utf-8")[: max(room, 1)].decode("utf-8", "ignore")
    return f"{head}...{suffix}"


def _without_paths(message: str, *paths: str | os.PathLike) -> str:
    """``message`` with every one of the server's ``paths`` (and its folder) left out."""
    for path in paths:
        for text in (str(path), str(Path(path).parent)):
            if len(text) > 1:
                message = message.replace(f"{text}{os.sep}", "").replace(text, "")
    return message


def _upload(payload: dict | None) -> tuple[Path, str]:
    """(the server's copy, the user's cleaned file name) of an upload; InputError when there is none."""
    if not payload or not payload.get("path"):
        raise InputError("no photo: upload, drop or paste one (or click an example) first")
    path = Path(payload["path"])
    return path, clean_name(payload.get("orig_name") or path.name)


def _named(exc: GsadError, path: Path, name: str) -> GsadError:
    """``exc`` (about the server's copy ``path``) as the same kind of error naming the upload ``name``."""
    text = str(exc)
    prefix = f"{path}: "
    text = text[len(prefix):] if text.startswith(prefix) else text
    return type(exc)(f"{name}: {_without_paths(text, path)}")


def read_upload_picture(payload: dict | None, max_pixels: int = MAX_PIXELS) -> tuple[Picture, str]:
    """An uploaded photo (Gradio's file payload: ``path``, ``orig_name``) -> (:class:`Picture`, name).

    Any photo ``gsad enhance`` reads (:func:`~gsad.imaging.pictures.read_picture`): PNG, JPEG,
    TIFF, WebP, HEIC/HEIF, AVIF, camera RAW, 16-bit, with its EXIF and XMP. Raises
    :class:`InputError` naming the uploaded file (not the server's copy) when there is none, when
    it is not a readable image, or when it has more than ``max_pixels`` pixels (from the header,
    LibRaw's for a RAW, before anything is decoded).
    """
    path, name = _upload(payload)
    try:
        size = image_size(path)
    except InputError:
        size = None  # read_picture below says why, in the uploaded file's name
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputError(
            f"{name}: too large for the demo ({size[0]} x {size[1]} pixels, at most {max_pixels / 1e6:g} megapixels); "
            "use gsad enhance, which takes any size"
        )
    try:
        return read_picture(path, max_pixels), name
    except InputError as exc:
        raise _named(exc, path, name) from None


def read_upload(payload: dict | None, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
    """An uploaded photo -> (``H x W x 3`` uint8 sRGB pixels, name): :func:`read_upload_picture`'s
    pixels in 8 bits (an 8-bit file's exactly as :func:`~gsad.imaging.io.read_image` reads them)."""
    picture, name = read_upload_picture(payload, max_pixels)
    return quantize(picture.pixels, 8), name


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


def _check_range(value: float | int | None, name: str, low: float, high: float, unit: str = "") -> None:
    """Refuse an API value outside the page's control (the page cannot send one)."""
    if value is not None and not low <= value <= high:
        raise ConfigError(f"{name}: must be from {low:g} to {high:g}{unit} in the demo, got {value:g} "
                          "(gsad enhance takes more)")


def check_work(pixels: int, steps: int, ensemble: int, max_work: float = MAX_WORK, frames: int = 1) -> None:
    """Refuse a request whose megapixels x steps x ensemble (x ``frames`` of a video) exceeds
    ``max_work``, before any work."""
    work = pixels / 1e6 * steps * ensemble * frames
    if work > max_work:
        per_frame = f" x {frames} frames" if frames > 1 else ""
        raise ConfigError(
            f"too much work for the demo: {pixels / 1e6:.2f} megapixels x {steps} steps x {ensemble} trajectories"
            f"{per_frame} = {work:.1f}, at most {max_work:g}; lower steps or ensemble, or use gsad enhance"
        )


def prune_store(root: Path, max_files: int = MAX_STORE_FILES, max_bytes: int = MAX_STORE_BYTES,
                keep: frozenset[Path] = frozenset()) -> list[Path]:
    """Remove the oldest files under ``root`` (never those in ``keep``) until at most ``max_files``
    files of at most ``max_bytes`` bytes in all are left; then the folders left empty. Returns what went."""
    files = []
    for path in root.rglob("*") if root.is_dir() else ():
        try:
            if path.is_file() and not path.is_symlink():
                st = path.stat()
                files.append((st.st_mtime, path, st.st_size))
        except OSError:  # removed meanwhile
            continue
    files.sort()
    count, size = len(files), sum(f[2] for f in files)
    removed = []
    for _, path, nbytes in files:
        if count <= max_files and size <= max_bytes:
            break
        if path in keep:
            continue
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
        count, size = count - 1, size - nbytes
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)) if removed else ():
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when empty
    return removed


def _prune(root: Path, max_age: float) -> None:
    """Remove result folders in ``root`` older than ``max_age`` seconds."""
    now = time.time()
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.is_dir() and now - folder.stat().st_mtime > max_age:
            shutil.rmtree(folder, ignore_errors=True)


def _download_format(value: Any) -> tuple[str, int]:
    """The format control's value (:data:`DOWNLOAD_FORMATS`; None: PNG) -> (suffix, bits per sample)."""
    entry = DOWNLOAD_FORMATS.get("png" if value is None else value) if isinstance(value, str | None) else None
    if entry is None:
        raise ConfigError(f"output format: unknown format {value!r} (choose from {', '.join(DOWNLOAD_FORMATS)})")
    return entry[1], entry[2]


def _result_path(out_root: Path, name: str, suffix: str) -> Path:
    """A new folder of its own in ``out_root`` (older ones pruned) and, in it, the upload's cleaned,
    shortened stem + ``_gsad`` + ``suffix``."""
    _prune(out_root, RESULT_TTL)
    stem = clean_name(Path(name).stem, MAX_NAME_BYTES - len("_gsad") - len(suffix))
    return out_root / uuid.uuid4().hex / f"{stem}_gsad{suffix}"


def is_video_upload(payload: dict | None) -> bool:
    """True when the upload's name (or the server's copy's) has a video suffix (:data:`VIDEO_SUFFIXES`)."""
    if not payload or not payload.get("path"):
        return False
    return is_video_file(payload["path"]) or is_video_file(clean_name(payload.get("orig_name") or ""))


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
    max_work: float = MAX_WORK,
    output_format: str | None = "png",
    max_frames: int = MAX_VIDEO_FRAMES,
    on_frame: Callable[[int, int | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Enhance one uploaded photo or short video with ``enhancer`` (a :class:`~gsad.enhance.enhancer.Enhancer`).

    Unset options take the checkpoint's defaults; large photos are tiled as in ``gsad enhance``
    (``tile=None``). Values the page's controls cannot send (steps over :data:`MAX_STEPS`,
    exposure outside :data:`EV_RANGE`, an unknown format) and work over ``max_work`` are refused
    before any work. A photo (:func:`read_upload_picture`) is written in ``output_format``
    (:data:`DOWNLOAD_FORMATS`: PNG by default), sRGB, with its EXIF and XMP; a video
    (:data:`~gsad.imaging.video.VIDEO_SUFFIXES`) as in ``gsad enhance CLIP -o OUT.mp4``, to an
    MP4 (:func:`enhance_video_upload`). The result is named after the cleaned, shortened upload
    name, in a new folder of its own inside ``out_root`` (so concurrent users never share a file).
    ``progress(step, total)``: the sampler's steps; ``on_frame(done, total)``: a video's frames.
    Returns (input pixels, enhanced pixels: 8-bit previews, a video's first frame; result path);
    :class:`GsadError` for anything the user can fix, its message free of server paths.
    """
    steps, exposure = _number(steps, "steps", whole=True), _number(exposure, "exposure") or 0.0
    _check_range(steps, "steps", 1, max(MAX_STEPS, enhancer.sampler.steps))
    _check_range(exposure, "exposure", *EV_RANGE, unit=" EV")
    overrides = {"sampler": sampler, "steps": steps, "ensemble": _number(ensemble, "ensemble", whole=True),
                 "seed": _number(seed, "seed", whole=True), "detail": _number(detail, "detail")}
    settings = enhancer.settings(**overrides)
    suffix, bits = _download_format(output_format)
    if is_video_upload(payload):
        return enhance_video_upload(enhancer, payload, out_root, exposure, overrides, progress=progress,
                                    max_pixels=max_pixels, max_work=max_work, max_frames=max_frames,
                                    on_frame=on_frame)
    picture, name = read_upload_picture(payload, max_pixels)
    pixels = picture.pixels
    check_work(pixels.shape[0] * pixels.shape[1], settings.steps, settings.ensemble, max_work)
    # an 8-bit output of an 8-bit photo: the model's rounded result, as the demo always wrote it
    out = enhancer.enhance(pixels, settings, tile=None, exposure=exposure, callback=progress, as_float=bits == 16)
    target = _result_path(out_root, name, suffix)
    # the upload's own metadata (no server name: not the checkpoint's file name, unlike gsad enhance)
    exif = with_software(picture.exif, f"gsad {__version__}")
    try:
        path = write_picture(target, out, bits=bits, quality=QUALITY, exif=exif, xmp=picture.xmp)
    except InputError as exc:
        raise InputError(f"{name}: cannot save the result ({_without_paths(str(exc), target.parent)})") from None
    return quantize(pixels, 8), quantize(out, 8), path


def _first_frame(path: Path, rotation: int) -> np.ndarray:
    """A video's first frame as stored, turned upright by its display ``rotation`` (counter-clockwise)."""
    from gsad.imaging.video import iter_frames

    frame = next(iter(list(iter_frames(path, limit=1))))
    return np.ascontiguousarray(np.rot90(frame, round(rotation / 90) % 4))


def enhance_video_upload(
    enhancer: Any,
    payload: dict | None,
    out_root: Path,
    exposure: float = 0.0,
    overrides: dict | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
    max_pixels: int = MAX_PIXELS,
    max_work: float = MAX_WORK,
    max_frames: int = MAX_VIDEO_FRAMES,
    on_frame: Callable[[int, int | None], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Enhance an uploaded video as ``gsad enhance CLIP -o OUT.mp4`` does (:func:`gsad.enhance.video.enhance_video`:
    the same noise for every frame, a warm start, temporal blending, H.264, audio copied) into an MP4.

    Refused before any work, in one line naming the upload: more than ``max_frames`` frames (the
    header's count; a video whose header does not say is stopped at the limit), frames of more
    than ``max_pixels`` pixels, and megapixels x steps x ensemble x frames over ``max_work``.
    ``overrides``: the sampler options (:meth:`~gsad.enhance.enhancer.Enhancer.settings`).
    Returns (first frame in, first frame out, MP4 path).
    """
    from gsad.enhance.video import enhance_video, video_settings
    from gsad.imaging.video import probe_video

    settings = video_settings(enhancer, **(overrides or {}))
    path, name = _upload(payload)
    try:
        info = probe_video(path)
    except GsadError as exc:
        raise _named(exc, path, name) from None
    if info.width * info.height > max_pixels:
        raise InputError(
            f"{name}: frames too large for the demo ({info.width} x {info.height} pixels, at most "
            f"{max_pixels / 1e6:g} megapixels); use gsad enhance, which takes any size"
        )
    frames = info.frames_between()

    def too_long(count: str) -> InputError:
        return InputError(f"{name}: too long for the demo ({count} frames, at most {max_frames}); "
                          "use gsad enhance, which takes any length")

    if frames is not None and frames > max_frames:
        raise too_long(str(frames))
    check_work(info.width * info.height, settings.steps, settings.ensemble, max_work,
               max_frames if frames is None else frames)
    target = _result_path(out_root, name, ".mp4")
    done = 0

    def frame_done() -> None:
        nonlocal done
        done += 1
        if done > max_frames:  # a header that does not say (or understates): stopped at the limit
            raise too_long(f"more than {max_frames}")
        if on_frame is not None:
            on_frame(done, frames)

    try:
        enhance_video(enhancer, path, target, settings, exposure=exposure, callback=progress, on_frame=frame_done)
    except GsadError as exc:
        raise type(exc)(_without_paths(str(exc), path, target.parent)) from None
    return _first_frame(path, info.rotation), _first_frame(target, info.rotation), target



_INTRO = """\
# gsad: low-light enhancement
Upload, drop or paste a dark photo (or click an example), or choose a camera RAW, HEIC/HEIF/AVIF
photo or a short video as a file, then press **Enhance**. The model runs on this machine; one
request at a time, the others wait in the queue. Drag the slider to compare before and after (a
video's first frame); the full-resolution result, in the format chosen (a video: MP4), is offered
for download below it.
"""


def _video_preview(path: str | None) -> Any:
    """The video player's update after a run: the enhanced MP4, or hidden for a photo."""
    import gradio as gr

    if path and is_video_file(path):
        return gr.update(value=path, visible=True)
    return gr.update(value=None, visible=False)


def _clear_other(value: Any) -> Any:
    """Empty the other upload box when this one gets a file (the file box wins when both hold one)."""
    import gradio as gr

    return None if value else gr.update()


def build_app(enhancer: Any, out_root: str | os.PathLike | None = None, max_pixels: int = MAX_PIXELS,
              max_work: float = MAX_WORK, stopping: threading.Event | None = None,
              max_frames: int = MAX_VIDEO_FRAMES) -> Any:
    """The Gradio Blocks app around ``enhancer`` (not launched); controls default to its settings.

    Its API (``/gradio_api/info``) has one endpoint, ``/enhance``: (photo file, exposure EV,
    steps, sampler, ensemble, seed, detail, file = None, output_format = "png") -> ((before,
    after) images, enhanced file). ``photo`` takes any photo or video the demo reads; ``file``, the
    page's second upload box, wins when given; ``output_format`` is one of :data:`DOWNLOAD_FORMATS`.
    Refused requests (a :class:`GsadError`) are one line in the server's log; an enhancement
    running when ``stopping`` is set ends at its next step.
    """
    gr = import_gradio()
    if out_root is None:
        root = Path(tempfile.mkdtemp(prefix="gsad-demo-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    else:
        root = Path(out_root)
        root.mkdir(parents=True, exist_ok=True)
    defaults = enhancer.sampler
    upload_types = sorted(readable_suffixes() | set(VIDEO_SUFFIXES))

    def run(photo, exposure, steps, sampler, ensemble, seed, detail, file=None, output_format="png",
            progress=gr.Progress()):  # noqa: B008 (Gradio's idiom)
        payload = file if isinstance(file, dict) and file.get("path") else photo
        video = is_video_upload(payload)

        def report(step: int, total: int) -> None:
            if stopping is not None and stopping.is_set():
                raise InputError("the server is stopping; try again when it is back")
            if not video:  # a video's progress counts frames
                progress((step, total), desc="denoising", unit="steps")

        def frames_done(done: int, total: int | None) -> None:
            progress((done, total), desc="enhancing the video", unit="frames")

        progress(0.0, desc="reading the video" if video else "reading the photo")
        try:
            before, after, path = enhance_upload(
                enhancer, payload, root, exposure=exposure or 0.0, steps=steps, sampler=sampler,
                ensemble=ensemble, seed=seed, progress=report, max_pixels=max_pixels, detail=detail,
                max_work=max_work, output_format=output_format, max_frames=max_frames, on_frame=frames_done,
            )
        except GsadError as exc:
            upload = payload.get("path") if isinstance(payload, dict) and payload.get("path") else root
            message = _without_paths(str(exc), upload, root)
            log.warning("refused a request: %s", message)  # one line: the user's problem, not a bug
            raise gr.Error(html.escape(message, quote=False), duration=None, print_exception=False) from None
        return (before, after), str(path)

    with gr.Blocks(title="gsad demo", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(_INTRO)
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(label="Dark photo", type="filepath", sources=["upload", "clipboard"],
                                 elem_id="photo", height=300)
                upload = gr.File(label=f"Or a file: camera RAW, HEIC/HEIF/AVIF, or a short video (at most "
                                       f"{max_frames} frames)", file_types=upload_types, elem_id="file", height=90)
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
                output_format = gr.Dropdown([(label, value) for value, (label, _, _) in DOWNLOAD_FORMATS.items()],
                                            value="png", label="Download format", elem_id="format",
                                            info="of a photo's result, sRGB with its EXIF; a video's is MP4 (H.264)")
            with gr.Column(scale=1):
                compare = gr.ImageSlider(label="Before | after", type="numpy", format="png",
                                         interactive=False, elem_id="compare", max_height=480)
                result = gr.File(label="Enhanced file (full resolution)", interactive=False, elem_id="result")
                player = gr.Video(label="Enhanced video", interactive=False, visible=False, elem_id="video")
        private = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}
        photo.change(_clear_other, [photo], [upload], preprocess=False, **private)
        upload.change(_clear_other, [upload], [photo], preprocess=False, **private)
        button.click(run, [photo, exposure, steps, sampler, ensemble, seed, detail, upload, output_format],
                     [compare, result], api_name="enhance", preprocess=False, concurrency_limit=1
                     ).success(_video_preview, [result], [player], **private)
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app


@contextlib.contextmanager
def private_store() -> Iterator[Path]:
    """A new ``gsad-demo-*`` folder in the temporary folder for everything the demo keeps: Gradio's
    uploads and cache (``GRADIO_TEMP_DIR`` points into it while the block runs: set it before the app
    is built) and the results; removed, with all it holds, when the block ends, however it ends."""
    work = Path(tempfile.mkdtemp(prefix="gsad-demo-"))
    saved = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(work / "gradio")
    try:
        yield work
    finally:
        if saved is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = saved
        shutil.rmtree(work, ignore_errors=True)


class _PruneOnUpload:
    """ASGI middleware: before and after every upload request, :func:`prune_store` the demo's store."""

    def __init__(self, app: Any, prune: Callable[[], Any]) -> None:
        self.app, self.prune = app, prune

    async def __call__(self, scope, receive, send) -> None:
        upload = scope["type"] == "http" and scope.get("path", "").rstrip("/").endswith("/upload")
        if upload:
            self.prune()
        try:
            await self.app(scope, receive, send)
        finally:
            if upload:
                self.prune()


def launch(app: Any, host: str, port: int, store: Path | None = None, quiet: bool = True) -> None:
    """Serve ``app`` on ``host:port`` without blocking, with the demo's limits: uploads of at most
    :data:`MAX_UPLOAD`; no extra served paths (the examples are served from Gradio's copies in its
    cache, so nothing of the package, the checkpoint included, is reachable); ``store`` (the folder
    of :func:`private_store`) pruned to :data:`MAX_STORE_FILES` / :data:`MAX_STORE_BYTES` around
    every upload, the files present at launch (the examples' copies) always kept."""
    from starlette.middleware import Middleware

    kwargs: dict[str, Any] = {}
    if store is not None:
        keep = frozenset(p for p in store.rglob("*") if p.is_file())
        kwargs["app_kwargs"] = {"middleware": [
            Middleware(_PruneOnUpload, prune=lambda: prune_store(store, MAX_STORE_FILES, MAX_STORE_BYTES, keep))
        ]}
    try:
        app.launch(server_name=host, server_port=port, share=False, inbrowser=False, max_file_size=MAX_UPLOAD,
                   allowed_paths=[], show_error=False, prevent_thread_lock=True, footer_links=["api"],
                   ssr_mode=False, pwa=False, mcp_server=False, quiet=quiet, **kwargs)
    except OSError as exc:
        log.debug("launch failed: %s", exc)
        raise InputError(f"{host}:{port}: cannot serve there (address in use or not available here); "
                         "choose another with --port or --host") from None


def serve(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "auto",
    block: bool = True,
    max_frames: int = MAX_VIDEO_FRAMES,
) -> Any:
    """Load the model once, build the app and serve it on ``host:port`` (blocks unless ``block`` is False).

    Blocking, it serves until Ctrl-C or SIGTERM; either way the server is closed and its store
    (uploads, Gradio's cache, results) removed before it returns. Not blocking, it returns the
    app; the store is then removed at exit. ``max_frames``: the longest video, in frames.
    """
    import_gradio()  # fail fast, before the model is loaded
    from gsad.enhance.enhancer import Enhancer

    enhancer = Enhancer(checkpoint, device=device)
    stopping = threading.Event()
    if not block:
        store = private_store()
        work = store.__enter__()
        atexit.register(store.__exit__, None, None, None)
        app = build_app(enhancer, work / "results", stopping=stopping, max_frames=max_frames)
        launch(app, host, port, work)
        print(f"gsad demo: serving {app.local_url}", flush=True)
        return app
    with sigterm_raises(), private_store() as work:
        app = build_app(enhancer, work / "results", stopping=stopping, max_frames=max_frames)
        launch(app, host, port, work)
        try:
            print(f"gsad demo: serving {app.local_url} (Ctrl-C to stop)", flush=True)
            try:
                app.block_thread()  # returns after Ctrl-C (Gradio catches it and closes the server)
            except Terminated:
                print("gsad demo: stopped by SIGTERM; closing the server", flush=True)
        finally:
            stopping.set()  # a running enhancement ends at its next step
            app.close()
    print("gsad demo: stopped; uploads and results removed", flush=True)
    return app
