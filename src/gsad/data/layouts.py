"""Find paired (low-light, normal-light) image files in the dataset layouts gsad knows.

Layouts (``root`` is the folder given by the user):

``lol-v1``
    ``root/our485/{low,high}`` (train) and ``root/eval15/{low,high}`` (test).
``lol-v2-real``
    ``root/Real_captured/{Train,Test}/{Low,Normal}``; the release names low files
    ``lowXXXXX.png`` and normal files ``normalXXXXX.png``.
``lol-v2-synthetic``
    ``root/Synthetic/{Train,Test}/{Low,Normal}``; both sides share file names.
``pairs``
    ``root/low`` and ``root/high`` (the generic layout, also written by ``gsad synthesize``);
    it has no split, so ``split`` is ignored.

For ``lol-v2-*`` the root may also be the ``Real_captured`` or ``Synthetic`` folder itself.
Folder names are matched exactly first, then case-insensitively (copies of the datasets
differ in capitalisation).

Pairing: files are paired by file stem (name without suffix). Files left over are then
paired by the number their stem ends in, when the rest of the stem is a non-numeric prefix
(``low00690`` <-> ``normal00690``); that is how LOL-v2-real is paired. (The reference code
pairs LOL-v2 by position in two sorted listings, which gives the same pairs on the
release but silently mispairs a folder with a missing file.) Anything still unpaired
raises :class:`DataError` naming the files. No image is opened here: sizes are checked
when the images are read (see :mod:`gsad.data.datasets` and :mod:`gsad.evaluation`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from gsad.config import LAYOUTS, SPLITS
from gsad.errors import DataError
from gsad.imaging.io import list_images

# How many offending names an error message lists before "and N more".
_SHOW = 5

_LOL_V1_SPLITS = {"train": "our485", "test": "eval15"}
_LOL_V2_SPLITS = {"train": "Train", "test": "Test"}
_LOL_V2_SUBSETS = {"lol-v2-real": "Real_captured", "lol-v2-synthetic": "Synthetic"}
_NUMBERED = re.compile(r"^(\D*)(\d+)$")


@dataclass(frozen=True)
class Pair:
    """One training or test pair.

    ``name`` is the stem of the low-light file (the input a method sees, so the name its
    output usually carries); ``low`` and ``high`` are the two image paths.
    """

    name: str
    low: Path
    high: Path


def _names(paths: list[Path], total: int | None = None) -> str:
    """'a, b, c and 4 more' for an error message."""
    total = len(paths) if total is None else total
    shown = ", ".join(p.name if isinstance(p, Path) else str(p) for p in paths[:_SHOW])
    return shown + (f" and {total - _SHOW} more" if total > _SHOW else "")


def _child(parent: Path, name: str) -> Path | None:
    """``parent/name`` if it is a folder, else the one folder matching it case-insensitively."""
    exact = parent / name
    if exact.is_dir():
        return exact
    if not parent.is_dir():
        return None
    matches = [p for p in parent.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _require(parent: Path, name: str, layout: str) -> Path:
    folder = _child(parent, name)
    if folder is None:
        raise DataError(f"{parent / name}: no such folder (expected by the {layout} layout)")
    return folder


def detect_layout(root: str | os.PathLike) -> str:
    """Name the layout of the dataset folder ``root`` (one of :data:`LAYOUTS`).

    Raises :class:`DataError` when ``root`` is missing, matches no layout, or holds both
    LOL-v2 subsets (then the layout must be named).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    if _child(root, "our485") is not None or _child(root, "eval15") is not None:
        return "lol-v1"
    real = _child(root, "Real_captured") is not None
    synthetic = _child(root, "Synthetic") is not None
    if real and synthetic:
        raise DataError(
            f"{root}: holds both LOL-v2 subsets (Real_captured and Synthetic); "
            "name one with --layout lol-v2-real or --layout lol-v2-synthetic"
        )
    if real:
        return "lol-v2-real"
    if synthetic:
        return "lol-v2-synthetic"
    if _child(root, "low") is not None and _child(root, "high") is not None:
        return "pairs"
    if _child(root, "Train") is not None or _child(root, "Test") is not None:
        raise DataError(
            f"{root}: looks like one LOL-v2 subset; name it with --layout lol-v2-real or --layout lol-v2-synthetic"
        )
    raise DataError(
        f"{root}: unknown dataset layout (expected our485/ and eval15/ (LOL-v1), "
        "Real_captured/ or Synthetic/ (LOL-v2), or low/ and high/)"
    )


def layout_folders(root: str | os.PathLike, layout: str, split: str = "train") -> tuple[Path, Path]:
    """The (low folder, high folder) of ``split`` in ``layout`` under ``root``.

    ``layout`` is one of :data:`LAYOUTS` or ``"auto"``. Raises :class:`DataError` when a
    folder is missing and ``ValueError`` for an unknown layout or split name.
    """
    root = Path(root)
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected 'auto' or one of {', '.join(LAYOUTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise DataError(f"{root}: no such dataset folder")
    if layout == "pairs":
        return _require(root, "low", layout), _require(root, "high", layout)
    if layout == "lol-v1":
        base = _require(root, _LOL_V1_SPLITS[split], layout)
        return _require(base, "low", layout), _require(base, "high", layout)
    # LOL-v2: root is the folder holding the subset, or the subset folder itself.
    subset = _child(root, _LOL_V2_SUBSETS[layout])
    if subset is None and _child(root, _LOL_V2_SPLITS[split]) is not None:
        subset = root
    if subset is None:
        raise DataError(f"{root / _LOL_V2_SUBSETS[layout]}: no such folder (expected by the {layout} layout)")
    base = _require(subset, _LOL_V2_SPLITS[split], layout)
    return _require(base, "Low", layout), _require(base, "Normal", layout)


def _by_stem(paths: list[Path], folder: Path) -> dict[str, Path]:
    by_stem: dict[str, Path] = {}
    clashes: list[Path] = []
    for path in paths:
        if path.stem in by_stem:
            clashes += [by_stem[path.stem], path]
        by_stem[path.stem] = path
    if clashes:
        raise DataError(f"{folder}: several images share a file stem: {_names(clashes)}")
    return by_stem


def _number_key(stem: str) -> int | None:
    match = _NUMBERED.match(stem)
    return int(match.group(2)) if match else None


def pair_folders(low_dir: str | os.PathLike, high_dir: str | os.PathLike) -> list[Pair]:
    """Pair the images of two folders by stem, then by trailing number; sorted by name.

    Raises :class:`DataError` naming unpaired files (first few and the count), stems used
    twice in one folder, or an empty folder.
    """
    low_dir, high_dir = Path(low_dir), Path(high_dir)
    for folder in (low_dir, high_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder")
    low = _by_stem(list_images(low_dir), low_dir)
    high = _by_stem(list_images(high_dir), high_dir)
    if not low:
        raise DataError(f"{low_dir}: no images in the low-light folder")
    if not high:
        raise DataError(f"{high_dir}: no images in the normal-light folder")

    pairs = [Pair(stem, low[stem], high[stem]) for stem in low.keys() & high.keys()]
    low_left = {s: p for s, p in low.items() if s not in high}
    high_left = {s: p for s, p in high.items() if s not in low}

    # Second pass: differing prefixes, same trailing number (LOL-v2-real). Only numbers
    # that occur once on each side are paired, so nothing is paired by guesswork.
    def numbered(left: dict[str, Path]) -> dict[int, str]:
        keys: dict[int, list[str]] = {}
        for stem in left:
            key = _number_key(stem)
            if key is not None:
                keys.setdefault(key, []).append(stem)
        return {k: v[0] for k, v in keys.items() if len(v) == 1}

    low_num, high_num = numbered(low_left), numbered(high_left)
    for key in low_num.keys() & high_num.keys():
        low_stem, high_stem = low_num[key], high_num[key]
        pairs.append(Pair(low_stem, low_left.pop(low_stem), high_left.pop(high_stem)))

    if low_left or high_left:
        parts = []
        if low_left:
            files = sorted(low_left.values())
            parts.append(f"{len(files)} in {low_dir} ({_names(files)})")
        if high_left:
            files = sorted(high_left.values())
            parts.append(f"{len(files)} in {high_dir} ({_names(files)})")
        raise DataError("unpaired images: " + "; ".join(parts))
    return sorted(pairs, key=lambda pair: pair.name)


def find_pairs(root: str | os.PathLike, layout: str = "auto", split: str = "train") -> list[Pair]:
    """All (low, high) pairs of ``split`` in the dataset at ``root``, sorted by name.

    ``layout``: ``"auto"`` (see :func:`detect_layout`) or one of :data:`LAYOUTS`;
    ``split``: ``"train"`` or ``"test"`` (ignored by the ``pairs`` layout).
    Raises :class:`DataError` for a missing folder, unpaired files (named) or an empty set.
    """
    low_dir, high_dir = layout_folders(root, layout, split)
    return pair_folders(low_dir, high_dir)
