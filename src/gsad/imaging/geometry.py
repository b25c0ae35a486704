"""The pixel grid of model tensors: padding to the network's stride, the reference's mirror
padding, and the eight symmetries the self-ensemble runs on. Pure functions of ``... x H x W``
tensors; no model, no files. :func:`row_bands` splits a grid into bands of rows, for whole-image
passes that run a band at a time in bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

#: Pixels per band of :func:`row_bands`: the temporaries of a whole-image pass run by bands are
#: a few of this many values (a few MB), whatever the image size.
BAND_PIXELS = 1 << 18


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad ``N x C x H x W`` at the bottom/right to multiples of ``multiple``.

    Returns the padded tensor and the original (H, W). Falls back to edge replication where
    the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def pad_symmetric(x: torch.Tensor, border: tuple[int, int, int, int]) -> torch.Tensor:
    """Mirror-pad ``... x H x W`` by ``border`` = (top, bottom, left, right) pixels, the edge
    pixel repeated: numpy's ``"symmetric"`` mode, OpenCV's ``BORDER_REFLECT``
    (``[c b a | a b c d | d c b]``). The reference test pipeline pads LOL-v1 and LOL-v2-real
    inputs this way by (8, 8, 4, 4). Each border must not exceed the image side it mirrors.
    """
    top, bottom, left, right = border
    h, w = x.shape[-2:]
    if max(top, bottom) > h or max(left, right) > w:
        raise ValueError(f"border {border} is larger than the {w}x{h} image")
    x = torch.cat([x[..., :top, :].flip(-2), x, x[..., h - bottom :, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :left].flip(-1), x, x[..., w - right :].flip(-1)], dim=-1)


def grid_symmetry(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The ``k``-th (0-7) symmetry of the pixel grid applied to ``... x H x W`` (or its inverse).

    0 is the identity, 1-3 flip left-right, top-bottom and both; 4-7 are 0-3 followed by a
    transpose (swapping H and W). The self-ensemble (``SamplerConfig.ensemble``) runs
    trajectories on the first ``ensemble`` of them.
    """
    flips = ((), (-1,), (-2,), (-2, -1))[k % 4]
    transpose = k >= 4
    if inverse and transpose:
        x = x.transpose(-2, -1)
    if flips:
        x = x.flip(flips)
    if not inverse and transpose:
        x = x.transpose(-2, -1)
    return x


def row_bands(height: int, width: int, pixels: int = BAND_PIXELS) -> Iterator[slice]:
    """Slices of consecutive rows covering ``0..height``: bands of ``pixels // width`` rows (at least
    one), the last one taking the remainder, so no band is smaller than that unless the image is.
    An elementwise pass run band by band gives the same values as on the whole image, with
    temporaries the size of one band. (Bands are never small: PyTorch picks its convolution
    algorithm by input size, and a band must get the whole image's.)"""
    rows = max(1, pixels // max(1, width))
    tops = list(range(0, height, rows))
    if len(tops) > 1 and height - tops[-1] < rows:
        tops.pop()  # the short remainder joins the band before it
    for top, bottom in zip(tops, tops[1:] + [height]):
        yield slice(top, bottom)
