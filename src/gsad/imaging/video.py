"""Video files through PyAV (the ``video`` extra): frames decoded one at a time, processed, encoded.

:func:`transcode` is the one way gsad writes a video: it streams the input (one decoded frame
in memory at a time, plus what the decoder and the encoder buffer themselves), hands each
frame as an ``H x W x 3`` uint8 RGB array to a ``process`` function, encodes the results as
H.264 or H.265 at a constant rate factor, and copies the first audio stream's packets unchanged
(remuxed, never re-encoded). Each output frame keeps its input frame's timestamp, so the frame
rate (constant or variable) and the audio sync are kept, and the rotation the input's display
matrix states is written to the output's. The output is written to a temporary file beside it
and renamed at the end (:func:`gsad.files.write_output`): an interrupted run leaves no file under
the output's name. :func:`decode_span` hands over the same frames without writing anything (the
other torchrun ranks of a video, :mod:`gsad.enhance.video`). No torch here; numpy and PyAV are
imported when a video is read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from gsad.errors import DependencyError, InputError
from gsad.files import write_output

#: Suffixes gsad treats as video inputs (any container FFmpeg demuxes would do; these are the usual).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv",
                  ".flv", ".3gp")

#: Output suffix -> FFmpeg muxer (the containers that hold H.264/H.265 with copied audio).
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

#: ``--codec`` name -> FFmpeg encoder.
CODECS = {"h264": "libx264", "h265": "libx265"}

#: Default constant rate factor (x264/x265: 0 lossless ... 51 worst; ~18 looks lossless).
DEFAULT_CRF = 18
MAX_CRF = 51

#: Default ``--temporal-blend`` of ``gsad enhance CLIP`` (:mod:`gsad.enhance.video`; kept here, beside
#: the other video defaults, because the CLI's parser may not import torch).
DEFAULT_BLEND = 0.5

#: What the install command names when PyAV is missing.
EXTRA = "video"


def is_video_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix is a video suffix (:data:`VIDEO_SUFFIXES`, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_output_video_file(path: str | os.PathLike) -> bool:
    """True when ``path``'s suffix names a container :func:`transcode` writes (:data:`OUTPUT_FORMATS`)."""
    return Path(path).suffix.lower() in OUTPUT_FORMATS


def require_av() -> Any:
    """The ``av`` module (PyAV), or :class:`DependencyError` naming the extra to install."""
    try:
        import av
    except ImportError as exc:
        raise DependencyError(
            f'video needs PyAV, which is not importable here ({exc}); install it with pip install "gsad[{EXTRA}]"'
        ) from None
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reads from a video's header (nothing decoded but its first frame)."""

    width: int
    height: int
    #: Average frame rate (frames per second), as the container states it.
    rate: Fraction
    #: Frames in the stream as the container counts them (0 when it does not say).
    frames: int
    #: Seconds (0.0 when unknown).
    duration: float
    #: Display rotation in degrees the display matrix states, counter-clockwise as PyAV's
    #: ``VideoFrame.rotation`` reads it (0, 90, 180 or -90 usually); written back unchanged.
    rotation: int
    has_audio: bool

    def frames_between(self, start: float = 0.0, duration: float | None = None) -> int | None:
        """Expected number of frames from ``start`` s for ``duration`` s (None: to the end); None when unknown."""
        if start == 0 and duration is None and self.frames:
            return self.frames
        if self.rate <= 0 or (self.duration <= 0 and duration is None):
            return None
        end = start + duration if duration is not None else self.duration
        if self.duration > 0:
            end = min(end, self.duration)
        return max(0, round((end - start) * float(self.rate)))


def _reason(exc: BaseException) -> str:
    """An FFmpeg error in a few words: its text and the last message FFmpeg logged, without file names."""
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    log = getattr(exc, "log", None)
    if isinstance(log, tuple) and len(log) == 3 and log[2]:
        reason += f": {str(log[2]).strip()}"
    return reason


def _input_error(path: Path, exc: BaseException) -> InputError:
    return InputError(f"{path}: unreadable or corrupt video ({_reason(exc)})")


def _open_input(path: Path) -> Any:
    av = require_av()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _input_error(path, exc) from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path}: holds no video stream")
    return container


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """:class:`VideoInfo` of the video file ``path``; :class:`InputError` when it cannot be read."""
    av = require_av()
    path = Path(path)
    container = _open_input(path)
    with container:
        stream = container.streams.video[0]
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, ValueError) as exc:
            raise _input_error(path, exc) from None
        if first is None:
            raise InputError(f"{path}: the video stream holds no frames")
        rate = stream.average_rate or stream.guessed_rate or Fraction(0)
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            seconds = 0.0
        return VideoInfo(first.width, first.height, Fraction(rate), stream.frames or 0, seconds,
                         int(first.rotation or 0), bool(container.streams.audio))


def iter_frames(path: str | os.PathLike, limit: int | None = None) -> Iterator[Any]:
    """The frames of ``path``'s first video stream as ``H x W x 3`` uint8 RGB arrays, in presentation
    order, one decoded at a time (at most ``limit``); :class:`InputError` when it cannot be read."""
    av = require_av()
    path = Path(path)
    with _open_input(path) as container:
        stream = container.streams.video[0]
        frames = container.decode(stream)
        count = 0
        while limit is None or count < limit:
            try:
                frame = next(frames, None)
            except (av.FFmpegError, ValueError) as exc:
                raise _input_error(path, exc) from None
            if frame is None:
                return
            space = frame.colorspace if frame.colorspace not in (None, 2) else None
            yield frame.reformat(format="rgb24", src_colorspace=space).to_ndarray()
            count += 1


@dataclass
class TranscodeResult:
    """What :func:`transcode` wrote."""

    path: Path
    frames: int
    audio_packets: int


def output_format(path: str | os.PathLike) -> str:
    """The FFmpeg muxer for ``path``'s suffix, or :class:`InputError` naming the suffixes gsad writes."""
    path = Path(path)
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        names = "/".join(OUTPUT_FORMATS)
        raise InputError(f"{path}: unknown output video format {path.suffix or '(no suffix)'!r}; name a {names} file")
    return fmt


def transcode(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    process: Callable[[Any], Any],
    *,
    codec: str = "h264",
    crf: int = DEFAULT_CRF,
    start_time: float = 0.0,
    duration: float | None = None,
    overwrite: bool = False,
    on_frame: Callable[[], None] | None = None,
) -> TranscodeResult:
    """Decode ``src`` frame by frame, write ``process(rgb)`` of each to ``dst``, copy the audio.

    ``process`` maps an ``H x W x 3`` uint8 RGB frame (as stored: the display rotation is not
    applied) to one of the same shape; it is called once per frame in presentation order.
    ``codec``: ``h264`` or ``h265`` (:data:`CODECS`) at constant rate factor ``crf``; frames of odd
    width or height are encoded in 4:4:4, else 4:2:0. ``start_time`` / ``duration`` (seconds)
    keep only that part (audio cut to the same span, both shifted to start at 0). Timestamps,
    frame rate, rotation and the first audio stream's packets are kept; the colour matrix the
    input states is used both ways. ``on_frame()`` runs after each frame is written.

    The output is written atomically (:func:`gsad.files.write_output`; ``overwrite`` as there);
    an input that cannot be demuxed or decoded is one :class:`InputError` line naming it, an
    output that cannot be written one naming the output.
    """
    av = require_av()
    src, dst = Path(src), Path(dst)
    if codec not in CODECS:
        raise InputError(f"unknown video codec {codec!r}; choose one of {', '.join(CODECS)}")
    fmt = output_format(dst)
    _open_input(src).close()  # a missing or unreadable input is named before the output is touched
    result = TranscodeResult(dst, 0, 0)

    def write(tmp: str) -> None:
        try:
            with _open_input(src) as inp, av.open(tmp, "w", format=fmt) as out:
                copier = _Copier(av, src, inp, out, process, CODECS[codec], crf, start_time, duration, on_frame)
                copier.run()
                result.frames, result.audio_packets = copier.frames, copier.audio_packets
        except av.FFmpegError as exc:  # encoding or muxing (input errors are InputErrors already)
            raise InputError(f"{dst}: cannot write the video ({_reason(exc)}); an .mkv output takes the most "
                             "audio codecs") from None

    write_output(dst, write, overwrite)
    return result


def decode_span(src: str | os.PathLike, process: Callable[[Any], Any], *, start_time: float = 0.0,
                duration: float | None = None) -> int:
    """Hand ``process`` the very frames :func:`transcode` with the same ``src``, ``start_time`` and
    ``duration`` hands its ``process`` (same span, size and colour conversion, same order), encoding
    and writing nothing (``process``'s results are dropped): how the other ranks of a video split over
    torchrun ranks (:mod:`gsad.enhance.video`) see the frames rank 0 encodes. Returns the number of
    frames; an input that cannot be decoded is an :class:`InputError` naming it, as in :func:`transcode`.
    """
    av = require_av()
    src = Path(src)
    with _open_input(src) as inp:
        copier = _Copier(av, src, inp, None, process, "", 0, start_time, duration, None)
        copier.run()
        return copier.frames


class _Copier:
    """One pass over the input: video frames decoded, processed and encoded; audio packets remuxed.
    Without an output (``out`` None: :func:`decode_span`) the video frames are only decoded and
    processed, the audio not read."""

    def __init__(self, av: Any, src: Path, inp: Any, out: Any, process: Callable[[Any], Any], encoder: str, crf: int,
                 start: float, duration: float | None, on_frame: Callable[[], None] | None) -> None:
        self.av, self.src, self.inp, self.out = av, src, inp, out
        self.process, self.encoder, self.crf, self.on_frame = process, encoder, crf, on_frame
        self.vin = inp.streams.video[0]
        self.ain = inp.streams.audio[0] if inp.streams.audio and out is not None else None
        self.start, self.end = start, math.inf if duration is None else start + duration
        self.vout = self.aout = None
        self.size: tuple[int, int] | None = None  # (width, height) of every frame, from the first kept one
        self.colorspace: int | None = None
        self.pending: list[Any] = []  # audio packets demuxed before the output streams exist
        self.frames = self.audio_packets = 0
        self.video_done = False
        self.audio_done = self.ain is None

    # --- input ---------------------------------------------------------------------------

    def run(self) -> None:
        if self.start > 0:
            try:  # to the key frame before start; frames before start are decoded and dropped
                self.inp.seek(int(self.start * self.av.time_base), backward=True, any_frame=False)
            except self.av.FFmpegError as exc:
                raise _input_error(self.src, exc) from None
        streams = [self.vin] + ([self.ain] if self.ain is not None else [])
        packets = self.inp.demux(*streams)
        while not (self.video_done and self.audio_done):
            try:
                packet = next(packets, None)
                if packet is None:
                    break
                if packet.stream is self.vin:
                    frames = [] if self.video_done else packet.decode()
                else:
                    frames = None
            except (self.av.FFmpegError, ValueError) as exc:
                raise _input_error(self.src, exc) from None
            if frames is None:
                self._audio(packet)
            else:
                for frame in frames:
                    self._video(frame)
        if self.size is None:
            raise InputError(f"{self.src}: no video frames between {self.start:g} s and "
                             f"{'the end' if self.end == math.inf else f'{self.end:g} s'}")
        if self.out is None:
            return
        self._mux(self.vout.encode(None))  # the encoder's delayed frames
        for packet in self.pending:
            self._mux_audio(packet)

    def _audio(self, packet: Any) -> None:
        if packet.pts is None or packet.size == 0:  # the demuxer's end-of-stream packet
            return
        t = float(packet.pts * packet.time_base)
        if t >= self.end:
            self.audio_done = True
            return
        if self.start > 0:
            if t < self.start:
                return
            shift = round(self.start / packet.time_base)
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        if self.vout is None:
            self.pending.append(packet)
        else:
            self._mux_audio(packet)

    def _video(self, frame: Any) -> None:
        t = frame.time if frame.time is not None else self.start + self.frames / float(self.vin.average_rate or 1)
        if t < self.start - 1e-6:
            return
        if t >= self.end - 1e-6:
            self.video_done = True
            return
        if self.size is None:
            self._first_frame(frame)
        # At the output's size: a stream whose size changes midway is scaled to its first frame's.
        rgb = frame.reformat(*self.size, "rgb24", src_colorspace=self.colorspace).to_ndarray()
        out = self.process(rgb)
        if self.out is None:
            self.frames += 1
            return
        if out.shape != rgb.shape:
            raise ValueError(f"process returned shape {out.shape} for a frame of shape {rgb.shape}")
        enc = self.av.VideoFrame.from_ndarray(out, format="rgb24")
        enc = enc.reformat(format=self.vout.pix_fmt, dst_colorspace=self.colorspace)
        enc.pts = (frame.pts if frame.pts is not None else round(t / self.vin.time_base)) - self.shift
        enc.time_base = self.vin.time_base
        self._mux(self.vout.encode(enc))
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame()

    # --- output --------------------------------------------------------------------------

    def _first_frame(self, frame: Any) -> None:
        """Size and colour matrix of every frame (the first kept frame's), and the output streams."""
        self.size = (frame.width, frame.height)
        # The colour matrix the input states (else unspecified: swscale's BT.601 both ways).
        self.colorspace = frame.colorspace if frame.colorspace not in (None, 2) else None
        if self.out is not None:
            self._open_output(frame)

    def _open_output(self, frame: Any) -> None:
        """The output streams, set up from the first kept frame (its size, colour matrix, rotation)."""
        vin = self.vin
        rate = vin.average_rate or vin.guessed_rate or Fraction(25)
        vout = self.out.add_stream(self.encoder, rate=rate)
        vout.width, vout.height = frame.width, frame.height
        vout.pix_fmt = "yuv420p" if frame.width % 2 == 0 and frame.height % 2 == 0 else "yuv444p"
        vout.time_base = vin.time_base  # each frame keeps its input timestamp exactly
        vout.codec_context.time_base = vin.time_base
        vout.codec_context.framerate = rate
        vout.options = {"crf": str(self.crf)}
        if self.encoder == "libx265":
            vout.options["x265-params"] = "log-level=none"
            if self.out.format.name in ("mp4", "mov"):
                vout.codec_tag = "hvc1"  # the tag Apple players need to play H.265 at all
        if self.colorspace is not None:
            ctx = vout.codec_context
            ctx.colorspace = frame.colorspace
            ctx.color_primaries = frame.color_primaries
            ctx.color_trc = frame.color_trc
        if frame.color_range:
            vout.codec_context.color_range = frame.color_range
        if frame.rotation:
            vout.set_display_rotation(frame.rotation)
        if vin.language:
            vout.metadata["language"] = vin.language
        self.vout = vout
        # Video timestamps shift by start, in the stream's own time base (audio: in _audio).
        self.shift = round(self.start / vin.time_base) if self.start > 0 else 0
        if self.ain is not None:
            self.aout = self.out.add_stream_from_template(self.ain)
        pending, self.pending = self.pending, []
        for packet in pending:
            self._mux_audio(packet)

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self.out.mux(packet)

    def _mux_audio(self, packet: Any) -> None:
        if self.aout is None:
            self.pending.append(packet)
            return
        packet.stream = self.aout
        self.out.mux(packet)
        self.audio_packets += 1
