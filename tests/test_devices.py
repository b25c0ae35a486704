"""Device names: auto resolved, others checked."""

import pytest
import torch

from gsad.devices import resolve_device
from gsad.errors import ConfigError


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
