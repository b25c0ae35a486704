"""Datasets: LOL and generic pair layouts, synthetic low-light pairs, training datasets."""

from gsad.data.datasets import PairedDataset, SyntheticDataset, item_rng
from gsad.data.layouts import LAYOUTS, SPLITS, Pair, detect_layout, find_pairs, pair_folders
from gsad.data.synthesize import (
    DEFAULT_RANGES,
    HOLDOUT_RANGES,
    DegradationParams,
    DegradationRanges,
    apply_degradation,
    bundled_photos,
    degrade,
    sample_params,
    synthesize_folder,
)

__all__ = [
    "DEFAULT_RANGES",
    "HOLDOUT_RANGES",
    "LAYOUTS",
    "SPLITS",
    "DegradationParams",
    "DegradationRanges",
    "Pair",
    "PairedDataset",
    "SyntheticDataset",
    "apply_degradation",
    "bundled_photos",
    "degrade",
    "detect_layout",
    "find_pairs",
    "item_rng",
    "pair_folders",
    "sample_params",
    "synthesize_folder",
]
