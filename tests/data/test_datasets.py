import numpy as np
import pytest
import torch
from PIL import Image

from gsad.data.datasets import PairedDataset, SyntheticDataset
from gsad.data.layouts import Pair
from gsad.errors import ConfigError, DataError


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def _pairs(tmp_path, n=3, size=(20, 30)):
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(n):
        high = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        pairs.append(
            Pair(
                f"img{i}",
                _save(tmp_path / "low" / f"img{i}.png", high // 4),
                _save(tmp_path / "high" / f"img{i}.png", high),
            )
        )
    return pairs


def test_items_are_aligned_unit_tensors(tmp_path):
    ds = PairedDataset(_pairs(tmp_path), crop=8, seed=1)
    assert len(ds) == 3
    item = ds[1]
    assert item["name"] == "img1"
    for key in ("low", "high"):
        assert item[key].shape == (3, 8, 8) and item[key].dtype == torch.float32
        assert 0.0 <= item[key].min() and item[key].max() <= 1.0
    # The same window (and flip) is cut from both images.
    expected_low = torch.div(torch.round(item["high"] * 255), 4, rounding_mode="floor") / 255
    torch.testing.assert_close(item["low"], expected_low, atol=1e-6, rtol=0)


def test_crop_depends_only_on_seed_epoch_index(tmp_path):
    pairs = _pairs(tmp_path)
    a = PairedDataset(pairs, crop=8, seed=7)
    b = PairedDataset(pairs, crop=8, seed=7, cache=True)
    for i in (2, 0, 1):  # any order
        torch.testing.assert_close(a[i]["high"], b[i]["high"])
    first = a[0]["high"]
    a.set_epoch(1)
    assert not torch.equal(a[0]["high"], first)
    a.set_epoch(0)
    torch.testing.assert_close(a[0]["high"], first)
    assert not torch.equal(PairedDataset(pairs, crop=8, seed=8)[0]["high"], first)


def test_flip_is_horizontal(tmp_path):
    pairs = _pairs(tmp_path, n=1, size=(8, 8))
    whole = PairedDataset(pairs, crop=None, flip=False)[0]["high"]
    flipped = [PairedDataset(pairs, crop=None, seed=s)[0]["high"] for s in range(8)]
    assert any(torch.equal(f, whole.flip(-1)) for f in flipped)
    assert any(torch.equal(f, whole) for f in flipped)
    assert all(torch.equal(f, whole) or torch.equal(f, whole.flip(-1)) for f in flipped)


def test_repeat_and_index_errors(tmp_path):
    ds = PairedDataset(_pairs(tmp_path, n=2), crop=4, repeat=3)
    assert len(ds) == 6 and ds[5]["name"] == "img1"
    with pytest.raises(IndexError):
        ds[6]
    with pytest.raises(ConfigError):
        PairedDataset(_pairs(tmp_path, n=1), crop=0)


def test_small_image_and_size_mismatch_name_files(tmp_path):
    pairs = _pairs(tmp_path, n=1, size=(10, 12))
    with pytest.raises(DataError, match=r"img0\.png: image is 12x10, smaller than the 16x16 crop"):
        PairedDataset(pairs, crop=16)[0]
    _save(pairs[0].high, np.zeros((11, 12, 3), np.uint8))
    with pytest.raises(DataError) as err:
        PairedDataset(pairs, crop=4)[0]
    assert str(pairs[0].low) in str(err.value) and str(pairs[0].high) in str(err.value)


def test_synthetic_dataset_darkens_crops_deterministically(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        _save(tmp_path / "photos" / name, rng.integers(100, 256, (24, 24, 3), dtype=np.uint8))
    ds = SyntheticDataset(tmp_path / "photos", crop=16, seed=3, repeat=2)
    assert len(ds) == 4
    item = ds[3]
    assert item["name"] == "b"
    assert item["low"].shape == item["high"].shape == (3, 16, 16)
    assert item["low"].mean() < item["high"].mean()
    again = SyntheticDataset([tmp_path / "photos" / "a.png", tmp_path / "photos" / "b.png"], crop=16, seed=3, repeat=2)
    torch.testing.assert_close(again[3]["low"], item["low"])
    # Another index of the same photo: another crop and degradation.
    assert not torch.equal(ds[1]["low"], item["low"])
    with pytest.raises(DataError, match="no photos"):
        SyntheticDataset([])


def test_window_side_is_log_uniform_between_crop_and_the_shorter_side():
    from gsad.data.datasets import window_side

    assert window_side((300, 400, 3), 32, 1.0, 0.0) == 32  # off
    assert window_side((300, 400, 3), 32, 0.25, 0.999999) == 32  # scale 1: no resize
    assert window_side((300, 400, 3), 32, 0.25, 0.0) == 128  # scale min_scale: a 4x window
    assert window_side((300, 400, 3), 32, 0.01, 0.0) == 300  # never beyond the shorter side
    assert window_side((300, 400, 3), 32, 0.25, 0.5) == 64  # geometric middle
    with pytest.raises(ConfigError, match="min_scale"):
        PairedDataset([], crop=8, min_scale=0.0)


def test_multiscale_crops_see_detailed_and_global_views(tmp_path):
    # A horizontal ramp: the slope inside a crop is the slope of the photo times the scale-down.
    width = 256
    ramp = np.repeat(np.linspace(0, 255, width)[None, :], 256, axis=0)
    _save(tmp_path / "photos" / "ramp.png", np.stack([ramp] * 3, axis=2).astype(np.uint8))
    ds = SyntheticDataset(tmp_path / "photos", crop=32, seed=0, repeat=64, min_scale=0.125, flip=False)
    slopes = []
    for i in range(len(ds)):
        high = ds[i]["high"][0].numpy() * 255
        assert ds[i]["high"].shape == (3, 32, 32)
        slopes.append(float(np.median(np.diff(high[16, 4:-4]))))
    step = 255 / (width - 1)
    slopes = np.array(slopes) / step
    assert slopes.min() == pytest.approx(1.0, abs=0.1)  # full-detail crops
    assert slopes.max() > 5.0  # crops covering most of the photo (scale near 1/8)
    assert slopes.max() < 8.5
    # The same seed gives the same crops; min_scale 1 keeps the crop of the old datasets.
    again = SyntheticDataset(tmp_path / "photos", crop=32, seed=0, repeat=64, min_scale=0.125, flip=False)
    torch.testing.assert_close(again[5]["low"], ds[5]["low"])
    plain = SyntheticDataset(tmp_path / "photos", crop=32, seed=0, repeat=64, flip=False)
    rng = np.random.default_rng([0, 0, 7])
    top, left = rng.random(), rng.random()
    expected = ramp[int(top * 225) : int(top * 225) + 32, int(left * 225) : int(left * 225) + 32] / 255
    np.testing.assert_allclose(plain[7]["high"][0].numpy(), np.round(expected * 255) / 255, atol=1e-6)
