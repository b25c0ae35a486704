"""Score a method on a paired dataset in both protocols; reports as a table, JSON and CSV.

The report is a plain dict::

    {"summary": {"count": N, "psnr": .., "ssim": .., "psnr_gtmean": .., "ssim_gtmean": ..,
                 ["lpips": .., "lpips_gtmean": ..]},
     "images": [{"name": .., "psnr": .., ...}, ...],
     "protocols": {...one-line definitions...}}

Summary values are plain means over the images. ``*_gtmean`` keys are the GT-mean
protocol (the output's mean grey level matched to the reference's, see
:func:`gsad.metrics.gt_mean_adjust`), the only one the paper reports; the others score
the output as it is.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gsad.data.layouts import Pair
from gsad.errors import DataError
from gsad.files import write_output
from gsad.images import MAX_PIXELS, list_images, read_image
from gsad.metrics import LPIPS, score_pair

#: Metric keys in report order (LPIPS keys only when it was scored).
METRICS = ("psnr", "ssim", "lpips", "psnr_gtmean", "ssim_gtmean", "lpips_gtmean")

PROTOCOLS = {
    "plain": "the output as it is, against the reference",
    "gtmean": (
        "output scaled by mean(gray(gt))/mean(gray(out)), gray = 0.299R+0.587G+0.114B, "
        "clipped, truncated to 8 bits, then scored (the paper's protocol)"
    ),
}

_SHOW = 5

Predict = Callable[[str, np.ndarray], np.ndarray]


def _size(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


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
) -> dict:
    """Score predictions for ``pairs`` against their ``high`` images.

    Exactly one source of predictions:

    * ``predict(name, low)``: called with the pair's name and its ``H x W x 3`` uint8
      low-light image, returns the ``H x W x 3`` uint8 output (e.g. an Enhancer);
    * ``predictions_dir``: a folder of another method's outputs, matched by file stem
      (:func:`match_predictions`); all are matched before anything is scored.

    ``lpips``: an :class:`~gsad.metrics.LPIPS` scorer, or None to skip LPIPS. ``max_pixels``:
    image files larger than this are refused (:func:`gsad.images.read_image`).
    Raises :class:`DataError` for missing predictions or size mismatches (naming the
    files). Returns the report described in the module docstring.
    """
    if (predict is None) == (predictions_dir is None):
        raise ValueError("evaluate needs exactly one of predict and predictions_dir")
    pairs = list(pairs)
    if not pairs:
        raise DataError("no image pairs to evaluate")
    files = match_predictions(pairs, predictions_dir) if predictions_dir is not None else {}

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
        images.append({"name": pair.name, **score_pair(out, gt, lpips)})

    keys = [k for k in METRICS if k in images[0]]
    summary: dict = {"count": len(images)}
    summary.update({k: float(np.mean([img[k] for img in images])) for k in keys})
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
