"""Errors a user can fix.

Every problem caused by the user's input (files, checkpoints, configs, data folders,
option values) raises a subclass of :class:`GsadError` whose message names the file or
option and the problem in one line. ``gsad.cli.main`` prints that line and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class GsadError(Exception):
    """Base class of all user-fixable gsad errors."""


class InputError(GsadError):
    """An input image or path cannot be used (missing, not an image, truncated, ...)."""


class CheckpointError(GsadError):
    """A checkpoint file is missing, corrupt or of an unknown architecture."""


class ConfigError(GsadError):
    """A configuration value or option is invalid."""


class DataError(GsadError):
    """A dataset folder is missing, unpaired or inconsistent."""


class ModelOutputError(GsadError):
    """A model produced NaN or infinite values (a diverged model or an unusable schedule)."""


class DependencyError(GsadError):
    """An optional package a command needs is not installed (the message names the pip command)."""


class PeerError(GsadError):
    """Another process of a torchrun world failed (its own message names the problem)."""
