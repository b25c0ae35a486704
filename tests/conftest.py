"""Shared fixtures: paths of the reference fixture and tiny models/images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "reference-gsad"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE


@pytest.fixture()
def tiny_checkpoint(tmp_path: Path) -> Path:
    """A randomly initialised tiny-preset gsad checkpoint (2 DDIM-able steps by default)."""
    from gsad.checkpoints import save_checkpoint
    from gsad.config import PRESETS, SamplerConfig
    from gsad.network import UNet

    torch.manual_seed(0)
    model = UNet(PRESETS["tiny"])
    path = tmp_path / "tiny.safetensors"
    save_checkpoint(path, model, SamplerConfig(steps=2, beta_start=2e-3, beta_end=0.9, seed=1))
    return path


@pytest.fixture()
def dark_image() -> np.ndarray:
    """A 20 x 28 dark RGB uint8 image with some structure."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:20, 0:28]
    base = (x * 2 + y).astype(np.float64)
    img = np.stack([base, base * 0.8, base * 0.5], axis=2) + rng.normal(0, 2, (20, 28, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def _private_fastpath_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own empty fast-path cache (never the user's ~/.cache/gsad)."""
    monkeypatch.setenv("GSAD_CACHE_DIR", str(tmp_path_factory.mktemp("gsad-cache")))
