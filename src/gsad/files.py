"""Atomic file writes: every output gsad makes appears whole or not at all."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    The temporary file is removed when ``write`` fails, so a crash or a full disk never
    leaves a half-written output (or clobbers an existing one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


#: Temporary names of :func:`atomic_write`: ``.NAME.`` + tempfile's 8 random characters + ``.tmp``.
_TMP_SUFFIX = ".tmp"
_TMP_RANDOM = "[a-z0-9_]{8}"


def remove_stale_temporaries(folder: str | os.PathLike, names: str) -> list[Path]:
    """Delete the temporary files a killed :func:`atomic_write` left in ``folder``.

    Only files named as ``atomic_write`` names them, ``.NAME.XXXXXXXX.tmp``, whose NAME
    matches the regular expression ``names`` (the outputs the caller owns), are removed;
    everything else in the folder is left alone. Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"\.(?:{names})\.{_TMP_RANDOM}{re.escape(_TMP_SUFFIX)}")
    removed = []
    for path in sorted(folder.iterdir()):
        if pattern.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
