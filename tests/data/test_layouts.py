from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gsad.data.layouts import Pair, detect_layout, find_pairs, pair_folders
from gsad.errors import DataError


def _touch_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(folder / name)


def test_lol_v1_train_and_test(tmp_path):
    for split, names in (("our485", ["2.png", "10.png"]), ("eval15", ["1.png"])):
        _touch_images(tmp_path / split / "low", names)
        _touch_images(tmp_path / split / "high", names)
    assert detect_layout(tmp_path) == "lol-v1"
    train = find_pairs(tmp_path, split="train")
    assert [p.name for p in train] == ["10", "2"]
    assert train[0] == Pair("10", tmp_path / "our485/low/10.png", tmp_path / "our485/high/10.png")
    test = find_pairs(tmp_path, layout="lol-v1", split="test")
    assert [(p.low.parent.parent.name, p.name) for p in test] == [("eval15", "1")]


def test_lol_v2_real_pairs_by_number(tmp_path):
    base = tmp_path / "Real_captured" / "Test"
    _touch_images(base / "Low", ["low00690.png", "low00001.png"])
    _touch_images(base / "Normal", ["normal00690.png", "normal00001.png"])
    assert detect_layout(tmp_path) == "lol-v2-real"
    pairs = find_pairs(tmp_path, split="test")
    assert [(p.name, p.low.name, p.high.name) for p in pairs] == [
        ("low00001", "low00001.png", "normal00001.png"),
        ("low00690", "low00690.png", "normal00690.png"),
    ]
    # The subset folder itself is accepted as the root too.
    assert find_pairs(tmp_path / "Real_captured", layout="lol-v2-real", split="test") == pairs


def test_lol_v2_synthetic_same_names_and_case_insensitive_folders(tmp_path):
    base = tmp_path / "synthetic" / "train"
    _touch_images(base / "low", ["r000da54ft.png", "r00f6a7e9t.png"])
    _touch_images(base / "normal", ["r000da54ft.png", "r00f6a7e9t.png"])
    assert detect_layout(tmp_path) == "lol-v2-synthetic"
    pairs = find_pairs(tmp_path, split="train")
    assert [p.name for p in pairs] == ["r000da54ft", "r00f6a7e9t"]
    assert pairs[0].high == base / "normal" / "r000da54ft.png"


def test_both_lol_v2_subsets_need_a_layout(tmp_path):
    for subset in ("Real_captured", "Synthetic"):
        _touch_images(tmp_path / subset / "Train" / "Low", ["1.png"])
        _touch_images(tmp_path / subset / "Train" / "Normal", ["1.png"])
    with pytest.raises(DataError, match="--layout"):
        detect_layout(tmp_path)
    pairs = find_pairs(tmp_path, layout="lol-v2-synthetic")
    assert pairs[0].low == tmp_path / "Synthetic/Train/Low/1.png"


def test_generic_pairs_by_stem_across_formats(tmp_path):
    _touch_images(tmp_path / "low", ["a.png", "b.jpg"])
    _touch_images(tmp_path / "high", ["a.png", "b.png"])
    (tmp_path / "low" / "notes.txt").write_text("not an image")
    assert detect_layout(tmp_path) == "pairs"
    pairs = find_pairs(tmp_path, split="test")
    assert [(p.name, p.low.name, p.high.name) for p in pairs] == [("a", "a.png", "a.png"), ("b", "b.jpg", "b.png")]


def test_unpaired_files_are_named(tmp_path):
    _touch_images(tmp_path / "low", ["a.png", "only_low.png"])
    _touch_images(tmp_path / "high", ["a.png", "only_high.png"])
    with pytest.raises(DataError) as err:
        find_pairs(tmp_path, layout="pairs")
    message = str(err.value)
    assert "only_low.png" in message and "only_high.png" in message
    assert "\n" not in message


def test_unpaired_message_shows_first_few_and_count(tmp_path):
    _touch_images(tmp_path / "low", ["x.png"] + [f"extra{i}.png" for i in range(8)])
    _touch_images(tmp_path / "high", ["x.png"])
    with pytest.raises(DataError, match=r"8 in .*extra0\.png.* and 3 more"):
        pair_folders(tmp_path / "low", tmp_path / "high")


def test_ambiguous_numbers_are_not_guessed(tmp_path):
    # Two low files end in 1: neither is paired with normal1 by number.
    _touch_images(tmp_path / "low", ["low1.png", "dark1.png"])
    _touch_images(tmp_path / "high", ["normal1.png"])
    with pytest.raises(DataError, match="unpaired"):
        pair_folders(tmp_path / "low", tmp_path / "high")


def test_duplicate_stems_rejected(tmp_path):
    _touch_images(tmp_path / "low", ["a.png", "a.jpg"])
    _touch_images(tmp_path / "high", ["a.png"])
    with pytest.raises(DataError, match="a.jpg"):
        pair_folders(tmp_path / "low", tmp_path / "high")


@pytest.mark.parametrize(
    ("layout", "split", "missing"),
    [("lol-v1", "test", "eval15"), ("lol-v2-real", "train", "Real_captured"), ("pairs", "train", "high")],
)
def test_missing_folders(tmp_path, layout, split, missing):
    _touch_images(tmp_path / "our485" / "low", ["1.png"])
    _touch_images(tmp_path / "our485" / "high", ["1.png"])
    _touch_images(tmp_path / "low", ["1.png"])
    with pytest.raises(DataError, match=missing):
        find_pairs(tmp_path, layout=layout, split=split)


def test_missing_root_unknown_layout_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no such dataset folder"):
        find_pairs(tmp_path / "nope")
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout"):
        detect_layout(tmp_path)
    (tmp_path / "low").mkdir()
    _touch_images(tmp_path / "high", ["1.png"])
    with pytest.raises(DataError, match="no images"):
        find_pairs(tmp_path)
    with pytest.raises(ValueError, match="unknown layout"):
        find_pairs(tmp_path, layout="lol-v3")
