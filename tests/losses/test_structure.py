"""Tests of gsad.losses.structure against SciPy's Ward clustering and NumPy's SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.cluster.hierarchy import fcluster, linkage
from skimage import data
from skimage.transform import resize

from gsad.losses.structure import (
    EMPTY_CLUSTER_DISTANCE,
    patch_matrix,
    structure_distance,
    ward_clusters,
)


def scipy_labels(patches: np.ndarray, num_clusters: int) -> np.ndarray:
    """Ward labels of one sample's N x D patches, as the reference computes them."""
    return fcluster(linkage(patches.astype(np.float64), method="ward"), num_clusters, "maxclust")


def assert_same_partition(labels: np.ndarray, expected: np.ndarray) -> None:
    """Equal partitions up to a renaming of the labels."""
    labels, expected = np.asarray(labels), np.asarray(expected)
    pairs = set(zip(labels.tolist(), expected.tolist()))
    assert len(pairs) == len(set(labels.tolist())) == len(set(expected.tolist()))


def reference_distance(target: torch.Tensor, estimate: torch.Tensor, k: int = 6) -> np.ndarray:
    """Independent S_bk: SciPy Ward per sample, NumPy SVD of each cluster's rows."""
    out = np.empty((target.shape[0], k))
    for b in range(target.shape[0]):
        t = target[b].double().mean(0).numpy()
        e = estimate[b].double().mean(0).numpy()
        # Raster-ordered 8 x 8 patches as rows.
        rows_t = t.reshape(12, 8, 12, 8).transpose(0, 2, 1, 3).reshape(144, 64)
        rows_e = e.reshape(12, 8, 12, 8).transpose(0, 2, 1, 3).reshape(144, 64)
        labels = scipy_labels(rows_t, k)
        for c, label in enumerate(np.unique(labels)):
            sel = labels == label
            sv_t = np.linalg.svd(rows_t[sel], compute_uv=False)
            sv_e = np.linalg.svd(rows_e[sel], compute_uv=False)
            out[b, c] = np.abs(sv_t - sv_e).sum()
    return out


def natural_images() -> torch.Tensor:
    """Four 96 x 96 natural images in [-1, 1]: two crops and two downscaled photos."""
    astronaut, coffee = data.astronaut(), data.coffee()
    images = [
        astronaut[40:136, 200:296] / 255.0,
        coffee[150:246, 300:396] / 255.0,
        resize(astronaut, (96, 96), anti_aliasing=True),
        resize(coffee, (96, 96), anti_aliasing=True),
    ]
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return batch * 2 - 1


def random_images(batch: int, seed: int, size: int = 96) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=generator) * 2 - 1


def test_patch_matrix_rows_are_raster_ordered_grey_patches() -> None:
    images = random_images(2, seed=0)
    patches = patch_matrix(images, 8)
    assert patches.shape == (2, 144, 64)
    grey = images.mean(dim=1)
    # Patch 13 is row 1, column 1 of the 12 x 12 patch grid.
    torch.testing.assert_close(patches[1, 13], grey[1, 8:16, 8:16].reshape(64))


@pytest.mark.parametrize("shape", [(1, 3, 95, 96), (1, 3, 96, 100), (3, 96, 96)])
def test_bad_shapes_raise_value_error_naming_the_shape(shape: tuple[int, ...]) -> None:
    images = torch.zeros(shape)
    with pytest.raises(ValueError, match=str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")):
        structure_distance(images, images)


def test_mismatched_shapes_raise_value_error() -> None:
    with pytest.raises(ValueError, match="same shape"):
        structure_distance(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 24))


def test_ward_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="num_clusters"):
        ward_clusters(torch.zeros(1, 4, 2), 0)
    with pytest.raises(ValueError, match="shape"):
        ward_clusters(torch.zeros(4, 2), 2)


@pytest.mark.parametrize("seed", range(4))
def test_ward_matches_scipy_on_random_patches(seed: int) -> None:
    patches = patch_matrix(random_images(3, seed), 8)
    labels = ward_clusters(patches, 6)
    assert labels.dtype == torch.int64 and labels.shape == (3, 144)
    for b in range(3):
        assert sorted(labels[b].unique().tolist()) == list(range(6))
        assert_same_partition(labels[b], scipy_labels(patches[b].numpy(), 6))


@pytest.mark.parametrize("num_clusters", [1, 2, 11])
def test_ward_matches_scipy_for_other_cluster_counts(num_clusters: int) -> None:
    patches = torch.rand(2, 40, 5, generator=torch.Generator().manual_seed(1))
    labels = ward_clusters(patches, num_clusters)
    for b in range(2):
        assert_same_partition(labels[b], scipy_labels(patches[b].numpy(), num_clusters))


def test_ward_matches_scipy_on_natural_images() -> None:
    patches = patch_matrix(natural_images(), 8)
    labels = ward_clusters(patches, 6)
    for b in range(patches.shape[0]):
        assert_same_partition(labels[b], scipy_labels(patches[b].numpy(), 6))


def test_ward_partition_is_unchanged_by_mapping_to_unit_range() -> None:
    patches = patch_matrix(natural_images(), 8)
    torch.testing.assert_close(ward_clusters(patches, 6), ward_clusters((patches + 1) / 2, 6))


def test_ward_breaks_ties_by_first_pair_in_row_major_order() -> None:
    # All costs are zero: the first pair is always (0, next live slot), so cluster 0
    # absorbs the first N - K + 1 rows and the rest stay singletons.
    labels = ward_clusters(torch.zeros(2, 10, 3), 4)
    expected = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1, 2, 3])
    assert torch.equal(labels, expected.expand(2, 10))


def test_distance_matches_numpy_on_random_images() -> None:
    target = random_images(2, seed=3)
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(4))
    estimate = (target + 0.3 * noise).clamp(-1, 1)
    distance = structure_distance(target, estimate)
    assert distance.shape == (2, 6)
    # Labels are numbered by first member in both implementations; compare sorted rows
    # so the test does not depend on that.
    expected = np.sort(reference_distance(target, estimate), axis=1)
    np.testing.assert_allclose(np.sort(distance.numpy(), axis=1), expected, rtol=1e-4, atol=1e-4)


def test_distance_matches_numpy_on_natural_images() -> None:
    target = natural_images()
    estimate = torch.roll(target, shifts=(3, 5), dims=(2, 3)) * 0.8
    distance = structure_distance(target, estimate)
    expected = np.sort(reference_distance(target, estimate), axis=1)
    np.testing.assert_allclose(np.sort(distance.numpy(), axis=1), expected, rtol=1e-4, atol=1e-4)


def test_identical_images_have_zero_distance_and_zero_gradient() -> None:
    target = natural_images()
    estimate = target.clone().requires_grad_(True)
    distance = structure_distance(target, estimate)
    assert torch.equal(distance, torch.zeros(4, 6))
    distance.sum().backward()
    assert torch.equal(estimate.grad, torch.zeros_like(target))


def test_gradient_flows_to_estimate_only() -> None:
    target = random_images(2, seed=5).requires_grad_(True)
    estimate = random_images(2, seed=6).requires_grad_(True)
    structure_distance(target, estimate).mean().backward()
    assert target.grad is None
    assert torch.isfinite(estimate.grad).all()
    assert estimate.grad.abs().sum() > 0


@pytest.mark.parametrize("fill", [0.0, -1.0, 0.5])
def test_gradient_is_finite_for_degenerate_estimates(fill: float) -> None:
    # Constant estimates: every cluster matrix has rank <= 1 (or 0), so singular values
    # repeat at zero.
    target = random_images(1, seed=7)
    estimate = torch.full_like(target, fill, requires_grad=True)
    distance = structure_distance(target, estimate)
    distance.sum().backward()
    assert torch.isfinite(distance).all()
    assert torch.isfinite(estimate.grad).all()


def test_gradient_is_finite_for_constant_target_and_estimate() -> None:
    target = torch.zeros(1, 3, 32, 32)
    estimate = torch.zeros(1, 3, 32, 32, requires_grad=True)
    distance = structure_distance(target, estimate)
    distance.sum().backward()
    assert torch.equal(distance, torch.zeros(1, 6))
    assert torch.isfinite(estimate.grad).all()


def test_each_sample_is_grouped_by_its_own_target() -> None:
    target = torch.cat([natural_images()[:1], random_images(1, seed=8)])
    estimate = torch.cat([natural_images()[2:3], random_images(1, seed=9)])
    together = structure_distance(target, estimate)
    for b in range(2):
        alone = structure_distance(target[b : b + 1], estimate[b : b + 1])
        torch.testing.assert_close(together[b : b + 1], alone, rtol=1e-5, atol=1e-5)


def test_empty_clusters_contribute_the_constant() -> None:
    # A 16 x 24 image has six 8 x 8 patches: with K = 8, clusters 6 and 7 are empty.
    target = random_images(1, seed=10, size=24)[..., :16, :]
    estimate = torch.zeros_like(target)
    labels = ward_clusters(patch_matrix(target, 8), 8)
    assert torch.equal(labels, torch.arange(6)[None])
    distance = structure_distance(target, estimate, num_clusters=8)
    assert distance.shape == (1, 8)
    assert (distance[0, :6] > 1e-3).all()
    torch.testing.assert_close(distance[0, 6:], torch.full((2,), EMPTY_CLUSTER_DISTANCE))


def test_other_patch_sizes() -> None:
    target = random_images(1, seed=11, size=32)
    # -target has the same spectra (sign flips do not change singular values);
    # target / 2 halves every singular value, so S_bk = sum_i sigma_i(T_bk) / 2.
    assert torch.equal(structure_distance(target, -target, 3, 4), torch.zeros(1, 3))
    distance = structure_distance(target, target / 2, num_clusters=3, patch_size=4)
    labels = ward_clusters(patch_matrix(target, 4), 3)[0]
    patches = patch_matrix(target, 4)[0]
    expected = [torch.linalg.svdvals(patches[labels == k]).sum() / 2 for k in range(3)]
    torch.testing.assert_close(distance[0], torch.stack(expected))
