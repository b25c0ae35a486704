"""Training of both GSAD stages: :func:`train` with a :class:`TrainConfig` (``gsad train``).

``train`` is imported on first use, so that reading configs (and ``gsad --help``) does not
load torch and the data pipeline.
"""

from typing import Any

from gsad.training.config import TrainConfig, load_train_config

__all__ = ["TrainConfig", "load_train_config", "train"]


def __getattr__(name: str) -> Any:
    if name == "train":
        from gsad.training.loop import train

        return train
    raise AttributeError(f"module 'gsad.training' has no attribute {name!r}")
