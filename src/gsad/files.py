"""Writing files: every output gsad makes appears whole or not at all, never over an input.

* :func:`atomic_write` writes through a temporary file and ``os.replace``;
* :func:`write_output` is the one way a user-facing output (image, report, checkpoint) is
  written: it refuses folders, existing files without ``overwrite``, and turns any ``OSError``
  (read-only folder, a file where a folder should be, full disk) into one
  :class:`~gsad.errors.InputError` line naming the file;
* :func:`check_destinations` checks every planned output against every input of a run
  before any work starts (same file after resolving links, hard links and case).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from gsad.errors import InputError


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


def remove_stale_temporaries_of(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """:func:`remove_stale_temporaries` for a run's planned ``outputs``: in each output's folder, the
    temporaries of exactly those file names (``.a.png.XXXXXXXX.tmp`` for ``a.png``), nothing else."""
    by_folder: dict[Path, set[str]] = {}
    for path in map(Path, outputs):
        by_folder.setdefault(path.parent, set()).add(path.name)
    removed = []
    for folder, names in sorted(by_folder.items()):
        removed += remove_stale_temporaries(folder, "|".join(re.escape(n) for n in sorted(names)))
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (a temporary of :func:`atomic_write`) with Python's file object, so
    that a failed write (a full disk) is an ``OSError`` with its reason."""
    with open(path, "wb") as fh:
        fh.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (replacing it); OSError when that fails."""
    return atomic_write(path, lambda tmp: write_bytes(tmp, text.encode("utf-8")))


def write_text_output(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, replacing it (a run folder's own files); a failed
    write is one InputError line, ``PATH: cannot write (reason)``."""
    return write_output(path, lambda tmp: write_bytes(tmp, text.encode("utf-8")), overwrite=True)


def os_reason(exc: OSError) -> str:
    """A short reason for an OSError: its strerror (``Permission denied``), else its text."""
    return exc.strerror or str(exc) or type(exc).__name__


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an output ``path`` that cannot be written, before any work is done.

    A folder is never replaced; an existing file only with ``overwrite``; the nearest existing
    parent must be a folder this process may write into (``os.access``; root passes and the
    write boundary, :func:`write_output`, catches what is left).
    """
    path = Path(path)
    resolved = _resolve(path)  # what the write will reach, e.g. through 'new_folder/..'
    if path.is_dir() or resolved.is_dir():
        raise InputError(f"{path}: is a folder; name an output file")
    if (path.exists() or path.is_symlink() or resolved.exists()) and not overwrite:
        raise InputError(f"{path}: output exists (use --overwrite to replace it)")
    _check_parent(path, path.absolute().parent)
    return path


def check_folder(folder: str | os.PathLike) -> Path:
    """Refuse an output folder that exists as a file or cannot be made or written (see :func:`check_writable`)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; name an output folder")
    _check_parent(folder, folder.absolute())
    return folder


def _check_parent(path: Path, parent: Path) -> None:
    """The nearest existing ``parent`` of ``path`` must be a folder this process can write into."""
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot write ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write ({parent}: permission denied)")


def write_output(path: str | os.PathLike, write: Callable[[str], None], overwrite: bool) -> Path:
    """Write a user-facing output file atomically: the write boundary of every gsad command.

    Checks ``path`` with :func:`check_writable`, creates missing parent folders, writes
    through :func:`atomic_write`, and reports any ``OSError`` on the way as one
    :class:`InputError` line (``PATH: cannot write (reason)``).
    """
    path = check_writable(path, overwrite)
    try:
        return atomic_write(path, write)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({os_reason(exc)})") from None


def _resolve(path: Path) -> Path:
    """``path.resolve()``, or the absolute path where links loop (the write then fails, in one line)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _identity(path: Path) -> tuple:
    """(device, inode) of an existing file, else its resolved, case-folded path. The path is resolved
    first (symlinks, ``..`` after a folder that does not exist yet), as the write will see it."""
    resolved = _resolve(path)
    try:
        st = resolved.stat()
        return ("inode", st.st_dev, st.st_ino)
    except OSError:
        return ("path", os.path.normcase(str(resolved)).casefold())


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are one file: the same inode (links, symlinks, a case-insensitive
    file system) or, for paths that do not exist yet, the same resolved path ignoring case."""
    return _identity(Path(a)) == _identity(Path(b))


class OutputPlan:
    """Checks a run's planned outputs against its inputs and each other, before any work.

    ``problem(dst)`` refuses (with or without ``--overwrite``) a destination that is one of the
    run's ``inputs`` (by :func:`same_file`: symlinks, hard links, case) and one already planned for
    an earlier output (compared ignoring case, so a plan is safe on every file system); it
    returns the one-line reason, or None and records ``dst`` as planned.
    """

    def __init__(self, inputs: Iterable[str | os.PathLike]) -> None:
        self._inputs = {_identity(Path(p)) for p in inputs}
        self._planned: dict[str, str] = {}

    def problem(self, dst: str | os.PathLike, source: str | os.PathLike | None = None) -> str | None:
        """Why ``dst`` (the output of ``source``, if named) cannot be written, or None (then it is planned)."""
        dst = Path(dst)
        if _identity(dst) in self._inputs:
            return f"{dst}: output would replace an input of this run (refused even with --overwrite); " \
                   "choose another output"
        key = os.path.normcase(str(_resolve(dst))).casefold()
        if key in self._planned:
            first = self._planned[key]
            return f"{dst}: would be written twice, for {first} and for {source or 'another output'}; " \
                   "rename one of them or use separate output folders"
        self._planned[key] = str(source or dst)
        return None

    def check(self, dst: str | os.PathLike, overwrite: bool, source: str | os.PathLike | None = None) -> Path:
        """Raise the first problem of ``dst`` (this plan's, then :func:`check_writable`'s) as an InputError."""
        problem = self.problem(dst, source)
        if problem:
            raise InputError(problem)
        return check_writable(dst, overwrite)
