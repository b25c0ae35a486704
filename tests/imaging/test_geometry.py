"""Stride padding, the reference's mirror padding and the self-ensemble's grid symmetries."""

import numpy as np
import pytest
import torch

from gsad.imaging.geometry import grid_symmetry, pad_symmetric, pad_to_multiple


def test_pad_to_multiple_reflects_and_handles_tiny_images():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y, (h, w) = pad_to_multiple(x, 4)
    assert y.shape == (1, 1, 4, 4) and (h, w) == (3, 4)
    assert torch.equal(y[0, 0, 3], x[0, 0, 1])  # reflected row
    z, _ = pad_to_multiple(torch.ones(1, 1, 1, 1), 16)
    assert z.shape == (1, 1, 16, 16)


def test_pad_symmetric_is_opencv_border_reflect():
    """OpenCV's BORDER_REFLECT repeats the edge pixel: fedcba|abcdefgh|hgfedcb (its documentation);
    numpy calls it "symmetric". torch's "reflect" does not repeat it."""
    row = torch.arange(1.0, 9.0).view(1, 1, 1, 8)  # a..h = 1..8
    padded = pad_symmetric(row.expand(1, 1, 2, 8), (0, 0, 6, 7))[0, 0, 0]
    assert padded.tolist() == [6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2]
    x = torch.randn(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    ours = pad_symmetric(x, (8, 8, 4, 4))
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (8, 8), (4, 4)), mode="symmetric")
    assert ours.shape == (1, 3, 36, 36) and np.array_equal(ours.numpy(), expected)
    assert not torch.equal(ours, torch.nn.functional.pad(x, (4, 4, 8, 8), mode="reflect"))
    with pytest.raises(ValueError):
        pad_symmetric(x, (21, 0, 0, 0))


@pytest.mark.parametrize("k", range(8))
def test_grid_symmetries_invert_and_are_distinct(k):
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    y = grid_symmetry(x, k)
    assert y.shape == ((1, 2, 5, 3) if k >= 4 else x.shape)
    assert torch.equal(grid_symmetry(y, k, inverse=True), x)
    others = [grid_symmetry(x, j) for j in range(8) if j != k]
    assert not any(o.shape == y.shape and torch.equal(o, y) for o in others)
