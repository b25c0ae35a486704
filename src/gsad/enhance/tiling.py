"""Tiled inference: the network's memory bounded by the tile, for images of any size.

The U-Net runs on overlapping tiles, but the diffusion trajectory stays one image: at every
sampler step each tile predicts eps for its window of the *full* x_t, the predictions are
blended with feathered weights, and the sampler updates the full image with noise drawn for
the full image. So every pixel position gets the same noise whatever the tiling, tiles agree
at every step, and with one tile covering the image the result equals untiled inference.
The full-image tensors (x_t, the condition, the blended eps) still grow with the image: a few
float32 images, 12 bytes a pixel each (docs/usage.md gives the measured peak).

``plan_tiles`` and ``blend_window`` are pure functions; ``TiledDenoiser`` plugs them into
the samplers through the :class:`~gsad.diffusion.denoiser.Denoiser` interface, and
:func:`make_denoiser` decides whether an image is tiled at all.
"""

from __future__ import annotations

import math

import torch

from gsad.config import MAX_TILE, check_int
from gsad.diffusion.denoiser import Denoiser

#: Images with more pixels than this are enhanced in tiles unless told otherwise.
AUTO_TILE_PIXELS = 1024 * 1024
#: Tile side and overlap used by automatic tiling.
AUTO_TILE, TILE_OVERLAP = 512, 64


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``0..length`` with at least ``overlap``.

    The first tile starts at 0 and the last ends at ``length``; starts are spread evenly.
    A ``length`` not larger than ``tile`` gives one tile.
    """
    if tile >= length:
        return [0]
    if overlap >= tile:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    count = math.ceil((length - overlap) / (tile - overlap))
    span = length - tile
    return [round(i * span / (count - 1)) for i in range(count)]


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int, int, int]]:
    """Tiles ``(top, left, tile_h, tile_w)`` covering an ``height x width`` image.

    ``tile`` is rounded down to a multiple of ``multiple`` (the network stride) and starts are
    rounded to it too, so every tile is a valid network input when the image is.
    """
    tile = max(multiple, tile - tile % multiple)
    th, tw = min(tile, height), min(tile, width)

    def starts(length: int, size: int) -> list[int]:
        raw = tile_starts(length, size, overlap)
        snapped = sorted({min(length - size, multiple * round(s / multiple)) for s in raw})
        return snapped

    return [(y, x, th, tw) for y in starts(height, th) for x in starts(width, tw)]


def blend_window(tile_h: int, tile_w: int, overlap: int) -> torch.Tensor:
    """Feathering weights (``tile_h x tile_w``): a raised-cosine ramp over ``overlap`` pixels
    at each edge, 1 inside. Never zero, so a pixel covered by one tile keeps its value."""

    def ramp(n: int) -> torch.Tensor:
        w = torch.ones(n, dtype=torch.float64)
        k = min(overlap, n // 2)
        if k > 0:
            r = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(k, dtype=torch.float64) + 1) / (k + 1))
            w[:k] = r
            w[n - k :] = r.flip(0)
        return w

    return (ramp(tile_h)[:, None] * ramp(tile_w)[None, :]).to(torch.float32)


class TiledDenoiser(Denoiser):
    """A Denoiser whose eps prediction is computed tile by tile and blended.

    Memory for the network is bounded by the tile size; the full-size tensors are the
    condition, x_t, the blended result (normalised in place) and the weight sum ``norm``.
    """

    def __init__(self, net: torch.nn.Module, cond: torch.Tensor, tile: int, overlap: int, multiple: int) -> None:
        super().__init__(net, cond)
        h, w = cond.shape[-2:]
        self.tiles = plan_tiles(h, w, tile, overlap, multiple)
        norm = torch.zeros(h, w)
        self.windows = {}
        for y, x, th, tw in self.tiles:
            win = self.windows.setdefault((th, tw), blend_window(th, tw, overlap))
            norm[y : y + th, x : x + tw] += win
        self.norm = norm.to(cond.device)
        self.windows = {k: v.to(cond.device) for k, v in self.windows.items()}

    def eps(self, x_t: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x_t)
        for y, x, th, tw in self.tiles:
            part = Denoiser(self.net, self.cond[..., y : y + th, x : x + tw])
            eps = part.eps(x_t[..., y : y + th, x : x + tw], level)
            out[..., y : y + th, x : x + tw] += eps * self.windows[(th, tw)]
        return out.div_(self.norm)


def make_denoiser(net: torch.nn.Module, cond: torch.Tensor, tile: int | None, stride: int) -> Denoiser:
    """A plain :class:`Denoiser` of ``cond``, or a :class:`TiledDenoiser` for large images.

    ``tile``: None tiles images over :data:`AUTO_TILE_PIXELS` in tiles of :data:`AUTO_TILE`;
    0 never tiles; N (up to ``MAX_TILE``) uses tiles of side N, at least 4 strides, overlapping
    by :data:`TILE_OVERLAP` (at most a quarter of the tile). One tile covering the image is no tiling.
    """
    h, w = cond.shape[-2:]
    if tile is None:
        tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0
    tile = check_int(tile, "tile", 0, MAX_TILE)
    if tile == 0 or (tile >= h and tile >= w):
        return Denoiser(net, cond)
    tile = max(tile, 4 * stride)
    return TiledDenoiser(net, cond, tile, min(TILE_OVERLAP, tile // 4), stride)
