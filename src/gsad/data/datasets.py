"""Training datasets: random crops and flips of image pairs as [0, 1] tensors.

Each item is a dict ``{"low": 3 x C x C float32 in [0, 1], "high": same, "name": str}``
(``C`` the crop size; the full image, ``3 x H x W``, when ``crop`` is None).

Determinism: the crop position, the flip and (for :class:`SyntheticDataset`) the
degradation of item ``index`` come from a NumPy generator seeded with
``[seed, epoch, index]``, never from a global RNG. So the data of a step depends only on
``(seed, epoch, index)``: a resumed run that calls :meth:`set_epoch` with the same epoch
(and draws the same index order, which is the sampler's job) sees identical data, with
any number of DataLoader workers. Call ``set_epoch(e)`` at the start of each epoch to get
fresh crops; with the default epoch 0 every epoch repeats the same crops.

Multi-scale crops (``min_scale`` < 1): before cropping, the image is (in effect)
downscaled by a random factor ``z`` drawn log-uniformly from ``[max(min_scale, C / S), 1]``
(``S`` the image's shorter side): a window of side ``round(C / z)`` is cut and resized to
``C x C`` (Pillow, Lanczos, antialiased). So a large photo gives both full-detail crops
(``z = 1``) and crops that hold most of the scene (global context) at a coarser scale.
The scale is the item generator's fourth draw, after the crop position and the flip, so
``min_scale = 1`` gives exactly the crops it gave before the option existed.

Images smaller than the crop raise :class:`DataError` naming the file and both sizes
(rather than being padded: a padded border is content that no real image has, and a
dataset of the wrong resolution is better noticed than trained on). A low/high size
mismatch raises :class:`DataError` naming both files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from gsad.data.layouts import Pair
from gsad.data.synthesize import DEFAULT_RANGES, DegradationRanges, degrade
from gsad.errors import ConfigError, DataError
from gsad.imaging.io import list_images, read_image


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of item ``index`` in ``epoch``: ``default_rng([seed, epoch, index])``."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``3 x H x W`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).to(torch.float32) / 255.0


def _check_crop(crop: int | None) -> None:
    if crop is not None and (not isinstance(crop, int) or crop < 1):
        raise ConfigError(f"crop must be a positive integer or None, got {crop!r}")


def _check_scale(min_scale: float) -> None:
    if not 0.0 < min_scale <= 1.0:
        raise ConfigError(f"min_scale must lie in (0, 1], got {min_scale!r}")


def window_side(shape: tuple[int, ...], crop: int, min_scale: float, u: float) -> int:
    """Side of the window cut for a ``crop`` crop at the scale of uniform draw ``u`` in [0, 1):
    ``round(crop / z)`` with ``z`` log-uniform in ``[max(min_scale, crop / shorter side), 1]``
    (``crop`` itself when ``min_scale`` is 1), at most the shorter side."""
    shorter = min(shape[:2])
    lowest = max(min_scale, crop / shorter)
    if lowest >= 1.0:
        return crop
    scale = float(np.exp(np.log(lowest) * (1.0 - u)))
    return min(shorter, max(crop, round(crop / scale)))


class _Base(Dataset):
    def __init__(
        self, crop: int | None, flip: bool, seed: int, cache: bool, repeat: int, min_scale: float = 1.0
    ) -> None:
        _check_crop(crop)
        _check_scale(min_scale)
        if repeat < 1:
            raise ConfigError(f"repeat must be at least 1, got {repeat}")
        self.min_scale = float(min_scale)
        self.crop = crop
        self.flip = flip
        self.seed = int(seed)
        self.cache = cache
        self.repeat = int(repeat)
        self.epoch = 0
        self._cache: dict[Path, np.ndarray] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops, flips (and degradations) items come from."""
        self.epoch = int(epoch)

    def _read(self, path: Path) -> np.ndarray:
        if not self.cache:
            return read_image(path)
        if path not in self._cache:
            self._cache[path] = read_image(path)
        return self._cache[path]

    def _window(self, image: np.ndarray, rng: np.random.Generator, path: Path) -> tuple[slice, slice, bool]:
        """Rows, columns and flip of a random window (draws: top, left, flip, then the scale
        when ``min_scale`` < 1)."""
        height, width = image.shape[:2]
        top, left = rng.random(), rng.random()
        flip = bool(rng.random() < 0.5) and self.flip
        if self.crop is None:
            return slice(None), slice(None), flip
        if height < self.crop or width < self.crop:
            raise DataError(f"{path}: image is {width}x{height}, smaller than the {self.crop}x{self.crop} crop")
        side = self.crop
        if self.min_scale < 1.0:
            side = window_side(image.shape, self.crop, self.min_scale, float(rng.random()))
        top, left = int(top * (height - side + 1)), int(left * (width - side + 1))
        return slice(top, top + side), slice(left, left + side), flip

    def _cut(self, image: np.ndarray, window: tuple[slice, slice, bool]) -> np.ndarray:
        """The window of ``image``, flipped, resized to the crop when it is larger."""
        rows, cols, flip = window
        out = image[rows, cols]
        if self.crop is not None and out.shape[0] != self.crop:
            out = np.array(Image.fromarray(np.ascontiguousarray(out)).resize((self.crop, self.crop), Image.LANCZOS))
        return out[:, ::-1] if flip else out


class PairedDataset(_Base):
    """Pairs of low-light and normal-light files (:class:`~gsad.data.layouts.Pair`).

    Args:
        pairs: the pairs, e.g. from :func:`~gsad.data.layouts.find_pairs`.
        crop: side of the random square crop, or None for whole images.
        flip: random horizontal flips (probability 1/2), the same for both images.
        seed: base seed of the per-item generators (see the module docstring).
        cache: keep decoded images in memory (per worker process).
        repeat: the dataset's length is ``repeat * len(pairs)``; item ``i`` is pair
            ``i % len(pairs)`` with its own crop.
        min_scale: smallest random downscale of the multi-scale crops (module docstring);
            1 turns them off.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        crop: int | None = 96,
        flip: bool = True,
        seed: int = 0,
        cache: bool = False,
        repeat: int = 1,
        min_scale: float = 1.0,
    ) -> None:
        super().__init__(crop, flip, seed, cache, repeat, min_scale)
        self.pairs = list(pairs)
        if not self.pairs:
            raise DataError("no image pairs to train on")

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        pair = self.pairs[index % len(self.pairs)]
        low, high = self._read(pair.low), self._read(pair.high)
        if low.shape != high.shape:
            raise DataError(
                f"{pair.low} is {low.shape[1]}x{low.shape[0]} but {pair.high} is "
                f"{high.shape[1]}x{high.shape[0]}: a pair must have one size"
            )
        window = self._window(low, item_rng(self.seed, self.epoch, index), pair.low)
        return {
            "low": _to_tensor(self._cut(low, window)),
            "high": _to_tensor(self._cut(high, window)),
            "name": pair.name,
        }


class SyntheticDataset(_Base):
    """Normal photos, darkened on the fly: a random crop, then a random degradation.

    Each item crops (and maybe flips) a photo, then makes the low-light input with
    :func:`~gsad.data.synthesize.degrade` (a fresh parameter draw and noise per item),
    all from the item's generator; ``high`` is the clean crop. Training then needs only
    normal photos.

    Args:
        photo_paths: photo files, or one folder whose images are used.
        crop: side of the random square crop, or None for whole photos.
        flip: random horizontal flips.
        seed: base seed of the per-item generators.
        ranges: degradation parameter ranges.
        cache: keep decoded photos in memory (per worker process).
        repeat: the dataset's length is ``repeat * len(photos)`` (few photos, many crops).
        min_scale: smallest random downscale of the multi-scale crops (module docstring);
            1 turns them off. The photo is scaled before it is darkened, so the noise is
            that of the camera at the crop's scale.
    """

    def __init__(
        self,
        photo_paths: Sequence[str | os.PathLike] | str | os.PathLike,
        crop: int | None = 96,
        flip: bool = True,
        seed: int = 0,
        ranges: DegradationRanges = DEFAULT_RANGES,
        cache: bool = False,
        repeat: int = 1,
        min_scale: float = 1.0,
    ) -> None:
        super().__init__(crop, flip, seed, cache, repeat, min_scale)
        if isinstance(photo_paths, (str, os.PathLike)):
            folder = Path(photo_paths)
            if not folder.is_dir():
                raise DataError(f"{folder}: no such photo folder")
            self.photos = list_images(folder)
            where = str(folder)
        else:
            self.photos = [Path(p) for p in photo_paths]
            where = "the photo list"
        if not self.photos:
            raise DataError(f"{where}: no photos to train on")
        self.ranges = ranges

    def __len__(self) -> int:
        return len(self.photos) * self.repeat

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        path = self.photos[index % len(self.photos)]
        photo = self._read(path)
        rng = item_rng(self.seed, self.epoch, index)
        high = np.ascontiguousarray(self._cut(photo, self._window(photo, rng, path)))
        low, _ = degrade(high, rng, self.ranges)
        return {"low": _to_tensor(low), "high": _to_tensor(high), "name": path.stem}
