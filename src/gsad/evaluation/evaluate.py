"""Score a method on a paired dataset in both protocols; reports as a table, JSON and CSV.

The report is a plain dict::

    {"summary": {"count": N, "psnr": .., "ssim": .., "psnr_gtmean": .., "ssim_gtmean": ..,
                 ["lpips": .., "lpips_gtmean": ..], "detail": ..},
     "images": [{"name": .., "psnr": .., ...}, ...],
     "protocols": {...one-line definitions...}}

Summary values are plain means over the images. ``*_gtmean`` keys are the GT-mean
protocol (the output's mean grey level matched to the reference's, see
:func:`gsad.evaluation.metrics.gt_mean_adjust`), the only one the paper reports; the others score
the output as it is. ``detail`` is the detail ratio
(:func:`gsad.evaluation.metrics.detail_ratio`: the output's fine-detail energy over the
reference's; 1 as much, < 1 smoothed, > 1 grain), of the output as it is; its summary is the
median over the images, since one flat reference can make an image's ratio very large.

A model is run on the pairs by a *pipeline* (:func:`model_predictor`):

* ``reference``: the reference test script's (jinnh/GSAD ``test.py`` with
  ``data/LoL_dataset.py``): LOL-v1 and LOL-v2-real inputs mirror-padded by 8 px top and
  bottom and 4 px left and right (OpenCV ``BORDER_REFLECT``, numpy ``"symmetric"``) whatever
  the network, the output cropped back; LOL-v2-synthetic and plain ``low/`` + ``high/``
  folders not padded (beyond the network's stride); one noise generator seeded once for the
  whole run and drawn from image after image in the order of the pairs (sorted by name; the
  reference lists LOL-v1 in ``os.listdir`` order, which is not defined).
* ``enhance``: each image as ``gsad enhance`` makes it: its own noise seeded with the seed
  (so a result never depends on the other images), padded to the network's stride only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from gsad.config import MAX_PIXELS, PIPELINES, SamplerConfig
from gsad.data.layouts import Pair
from gsad.errors import ConfigError, DataError, InputError
from gsad.evaluation.lpips import LPIPS
from gsad.evaluation.metrics import SSIM_MIN_SIDE, detail_ratio, score_pair
from gsad.files import OutputPlan, check_folder, write_output
from gsad.imaging.io import image_size, list_images, read_image, write_image
from gsad.imaging.tensors import from_model, to_model

if TYPE_CHECKING:
    from gsad.enhance.enhancer import Enhancer

#: Metric keys in report order (LPIPS keys only when it was scored).
METRICS = ("psnr", "ssim", "lpips", "psnr_gtmean", "ssim_gtmean", "lpips_gtmean", "detail")

PROTOCOLS = {
    "plain": "the output as it is, against the reference",
    "gtmean": (
        "output scaled by mean(gray(gt))/mean(gray(out)), gray = 0.299R+0.587G+0.114B, "
        "clipped, truncated to 8 bits, then scored (the paper's protocol)"
    ),
}

_SHOW = 5

Predict = Callable[[str, np.ndarray], np.ndarray]


#: (top, bottom, left, right) mirror padding of the reference test pipeline, per layout.
REFERENCE_BORDERS: dict[str, tuple[int, int, int, int] | None] = {
    "lol-v1": (8, 8, 4, 4),
    "lol-v2-real": (8, 8, 4, 4),
    "lol-v2-synthetic": None,
    "pairs": None,
}


def default_pipeline(layout: str) -> str:
    """``reference`` on the LOL layouts (where the paper's numbers come from), else ``enhance``."""
    return "enhance" if layout == "pairs" else "reference"


def model_predictor(
    enhancer: Enhancer,
    settings: SamplerConfig,
    pipeline: str,
    layout: str,
    cuda_noise: bool = False,
) -> Predict:
    """A ``predict(name, low)`` for :func:`evaluate` that runs ``enhancer`` (an
    :class:`~gsad.enhance.enhancer.Enhancer`) with ``settings`` through ``pipeline`` (module docstring).

    ``reference`` keeps one generator, seeded with ``settings.seed`` here, for every later call:
    call it on the pairs in their order, once each. ``cuda_noise``: that generator lives on the
    enhancer's CUDA device, so the noise is drawn from CUDA's Philox stream as the reference
    code draws it on a GPU (``torch.manual_seed`` seeds both; the CPU and CUDA streams differ);
    the default CPU generator gives the same noise on any device. Raises :class:`ConfigError`
    for an unknown pipeline, or for ``cuda_noise`` without a CUDA device or with ``enhance``.
    """
    if pipeline not in PIPELINES:
        raise ConfigError(f"pipeline: unknown pipeline {pipeline!r} (choose from {', '.join(PIPELINES)})")
    if cuda_noise and pipeline != "reference":
        raise ConfigError("cuda-noise: only the reference pipeline draws one noise stream; use --pipeline reference")
    if cuda_noise and enhancer.device.type != "cuda":
        raise ConfigError(f"cuda-noise: needs a CUDA device, the model runs on {enhancer.device}")
    if pipeline == "enhance":

        def predict_enhance(name: str, low: np.ndarray) -> np.ndarray:
            return enhancer.enhance(low, settings)

        return predict_enhance
    border = REFERENCE_BORDERS.get(layout)
    generator = torch.Generator(device=enhancer.device if cuda_noise else "cpu").manual_seed(settings.seed)

    def predict_reference(name: str, low: np.ndarray) -> np.ndarray:
        if border is not None and (low.shape[0] < max(border[:2]) or low.shape[1] < max(border[2:])):
            raise DataError(f"{name}: {_size(low)} is too small for the reference padding {border}")
        return from_model(enhancer.enhance_tensor(to_model(low), settings, generator=generator, border=border))

    return predict_reference


def output_paths(
    pairs: Sequence[Pair], folder: str | os.PathLike, overwrite: bool = False, plan: OutputPlan | None = None
) -> dict[str, Path]:
    """Where :func:`evaluate` writes each pair's output: ``folder/<low file stem>.png``.

    Checked before any work: raises :class:`InputError` when an output would replace one of
    the dataset's images (never allowed) or an existing file (unless ``overwrite``).
    """
    folder = check_folder(folder)  # a file, or a path that cannot become a writable folder
    if plan is None:
        plan = OutputPlan(p for pair in pairs for p in (pair.low, pair.high))
    paths = {pair.name: folder / f"{pair.low.stem}.png" for pair in pairs}
    for pair in pairs:
        problem = plan.problem(paths[pair.name], pair.low)
        if problem:
            raise InputError(problem)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise InputError(f"{existing[0]}{more}: output exists (use --overwrite to replace it)")
    return paths


def _size(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


def check_scoreable(pairs: Sequence[Pair], low: bool = True, predictions: dict[str, Path] | None = None) -> None:
    """Every image that will be scored is large enough for SSIM (:data:`SSIM_MIN_SIDE` pixels each
    way), from the file headers alone, so that a small image is named before any model runs.

    Checks each pair's ``high`` image, its ``low`` one when ``low`` (a model will enhance it) and
    its prediction in ``predictions``. Raises :class:`DataError` naming the first file too small,
    :class:`InputError` for one that cannot be opened.
    """
    for pair in pairs:
        paths = [pair.high, *([pair.low] if low else []), *([predictions[pair.name]] if predictions else [])]
        for path in paths:
            width, height = image_size(path)
            if min(width, height) < SSIM_MIN_SIDE:
                raise DataError(f"{path}: {width}x{height} is too small to score: SSIM needs at least "
                                f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels")


def match_predictions(pairs: Sequence[Pair], predictions_dir: str | os.PathLike) -> dict[str, Path]:
    """Map each pair's name to its prediction file in ``predictions_dir``.

    A prediction matches by file stem: the pair's name, else the low file's stem, else the
    high file's stem (so outputs named after either side are found). Raises
    :class:`DataError` naming the pairs without a prediction (first few and the count).
    """
    folder = Path(predictions_dir)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such predictions folder")
    by_stem: dict[str, Path] = {}
    for path in list_images(folder):
        if path.stem in by_stem:
            raise DataError(f"{folder}: {by_stem[path.stem].name} and {path.name} share a file stem")
        by_stem[path.stem] = path
    found: dict[str, Path] = {}
    missing: list[str] = []
    for pair in pairs:
        for stem in (pair.name, pair.low.stem, pair.high.stem):
            if stem in by_stem:
                found[pair.name] = by_stem[stem]
                break
        else:
            missing.append(pair.name)
    if missing:
        shown = ", ".join(missing[:_SHOW]) + (f" and {len(missing) - _SHOW} more" if len(missing) > _SHOW else "")
        raise DataError(f"{folder}: no prediction for {len(missing)} of {len(pairs)} images: {shown}")
    return found


def evaluate(
    pairs: Sequence[Pair],
    predict: Predict | None = None,
    predictions_dir: str | os.PathLike | None = None,
    lpips: LPIPS | None = None,
    progress: bool = True,
    max_pixels: int | None = MAX_PIXELS,
    outputs: str | os.PathLike | None = None,
    overwrite: bool = False,
    plan: OutputPlan | None = None,
) -> dict:
    """Score predictions for ``pairs`` against their ``high`` images.

    Exactly one source of predictions:

    * ``predict(name, low)``: called with the pair's name and its ``H x W x 3`` uint8
      low-light image, returns the ``H x W x 3`` uint8 output (e.g. an Enhancer);
    * ``predictions_dir``: a folder of another method's outputs, matched by file stem
      (:func:`match_predictions`); all are matched before anything is scored.

    ``lpips``: an :class:`~gsad.evaluation.lpips.LPIPS` scorer, or None to skip LPIPS. ``max_pixels``:
    image files larger than this are refused (:func:`gsad.imaging.io.read_image`).
    ``outputs``: a folder to write each ``predict`` output to, as it is (before any GT-mean
    scaling), named as :func:`output_paths` says, atomically; existing files are replaced only
    with ``overwrite`` (checked before any work), inputs never (``plan``: the run's
    :class:`~gsad.files.OutputPlan`, to check them against its other inputs and outputs too).
    Raises :class:`DataError` for missing predictions, images too small to score
    (:func:`check_scoreable`, before ``predict`` is first called) or size mismatches (naming
    the files). Returns the report described in the module docstring.
    """
    if (predict is None) == (predictions_dir is None):
        raise ValueError("evaluate needs exactly one of predict and predictions_dir")
    pairs = list(pairs)
    if not pairs:
        raise DataError("no image pairs to evaluate")
    if outputs is not None and predict is None:
        raise ValueError("outputs are written only for predict")
    files = match_predictions(pairs, predictions_dir) if predictions_dir is not None else {}
    check_scoreable(pairs, low=predict is not None, predictions=files)
    destinations = output_paths(pairs, outputs, overwrite, plan) if outputs is not None else {}

    images = []
    for pair in tqdm(pairs, desc="evaluate", unit="img", disable=not progress):
        gt = read_image(pair.high, max_pixels)
        if predict is not None:
            low = read_image(pair.low, max_pixels)
            if low.shape != gt.shape:
                raise DataError(f"{pair.low} is {_size(low)} but {pair.high} is {_size(gt)}: a pair must have one size")
            out = np.asarray(predict(pair.name, low))
            source = f"the prediction for {pair.name}"
        else:
            out = read_image(files[pair.name], max_pixels)
            source = str(files[pair.name])
        if out.shape != gt.shape:
            raise DataError(f"{source} is {_size(out)} but the reference {pair.high} is {_size(gt)}")
        if pair.name in destinations:
            write_image(destinations[pair.name], out, overwrite=overwrite)
        images.append({"name": pair.name, **score_pair(out, gt, lpips), "detail": detail_ratio(out, gt)})

    keys = [k for k in METRICS if k in images[0]]
    summary: dict = {"count": len(images)}
    summary.update({k: float(np.mean([img[k] for img in images])) for k in keys if k != "detail"})
    summary["detail"] = float(np.median([img["detail"] for img in images]))
    return {"summary": summary, "images": images, "protocols": dict(PROTOCOLS)}


def _fmt(value: float, key: str) -> str:
    if value is None or math.isinf(value):
        return "inf"
    return f"{value:.2f}" if key.startswith("psnr") else f"{value:.4f}"


def format_table(report: dict, per_image: bool = False) -> str:
    """The report as a terminal table: one row per protocol (and per image if asked).

    ::

        protocol     PSNR    SSIM   LPIPS
        plain       17.21  0.6010  0.2512
        GT-mean     24.03  0.8125  0.1420
        detail ratio 0.62 (median; fine detail of the output over the reference's: 1 as much,
        < 1 smoothed, > 1 grain)
        15 images; GT-mean: output brightness matched to the reference (paper protocol)
    """
    summary = report["summary"]
    cols = [m for m in ("psnr", "ssim", "lpips") if m in summary]
    header = f"{'':<12}" + "".join(f"{m.upper():>9}" for m in cols)
    lines = []
    if per_image:
        labels = [m.upper() for m in cols] + [f"{m.upper()} GT-mean" for m in cols]
        lines.append(f"{'image':<24}" + "".join(f"{label:>16}" for label in labels))
        for img in report["images"]:
            cells = [_fmt(img[m], m) for m in cols] + [_fmt(img[m + "_gtmean"], m) for m in cols]
            lines.append(f"{img['name'][:23]:<24}" + "".join(f"{c:>16}" for c in cells))
        lines.append("")
    lines.append(header)
    lines.append(f"{'plain':<12}" + "".join(f"{_fmt(summary[m], m):>9}" for m in cols))
    lines.append(f"{'GT-mean':<12}" + "".join(f"{_fmt(summary[m + '_gtmean'], m):>9}" for m in cols))
    if "detail" in summary:
        lines.append(
            f"detail ratio {_fmt(summary['detail'], 'detail')} (median; fine detail of the output over the "
            "reference's: 1 as much, < 1 smoothed, > 1 grain)"
        )
    lines.append(
        f"{summary['count']} images; GT-mean: output brightness matched to the reference (the paper's protocol)"
    )
    return "\n".join(lines)


def _jsonable(value):
    """Non-finite floats -> None (JSON has no inf), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _write_text(path: str | os.PathLike, text: str, overwrite: bool) -> Path:
    return write_output(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), overwrite)


def write_report_json(path: str | os.PathLike, report: dict, overwrite: bool = False) -> Path:
    """Write ``report`` as indented JSON, atomically; an existing file is replaced only with
    ``overwrite`` (:func:`gsad.files.write_output`).

    Infinite scores (PSNR of identical images) are written as ``null``.
    """
    return _write_text(path, json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n", overwrite)


def write_report_csv(path: str | os.PathLike, report: dict, overwrite: bool = False) -> Path:
    """Write one CSV row per image (``name`` then the metric columns), atomically (an existing
    file only with ``overwrite``).

    Infinite scores are written as ``inf``; the summary is in the JSON report and table.
    """
    images = report["images"]
    keys = [k for k in METRICS if images and k in images[0]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", *keys])
    for img in images:
        writer.writerow([img["name"], *(repr(float(img[k])) for k in keys)])
    return _write_text(path, buf.getvalue(), overwrite)


def evaluation_precision(requested: str, checkpoint: str | os.PathLike) -> str:
    """The precision ``gsad evaluate`` runs: ``auto`` means fp32 for a reference ``.pth`` checkpoint
    (so the paper's weights are scored exactly as the reference code computes them), else as given."""
    from gsad.checkpoints import is_reference_checkpoint

    if requested == "auto" and is_reference_checkpoint(checkpoint):
        return "fp32"
    return requested
