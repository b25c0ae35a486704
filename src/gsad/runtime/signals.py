"""SIGTERM as an exception, so that a stopped command cleans up as after Ctrl-C.

``timeout``, systemd, docker and torchrun stop a process with SIGTERM, whose default action ends
it at once: no ``finally`` block, no ``atexit`` handler, so a temporary file being written (or a
server's uploads) stays on disk. Inside :func:`sigterm_raises` a SIGTERM raises
:class:`Terminated` in the main thread instead: every ``finally`` runs (``files.atomic_write``
removes its temporary file) and :func:`gsad.cli.main` prints one line and exits with
:data:`EXIT_CODE` (128 + 15, the shell's code for a process ended by SIGTERM). Further SIGTERMs
while the first one is being handled are ignored, so the clean-up is not cut short; SIGKILL, which
every supervisor sends after its grace period, still ends the process.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

#: Exit status of a command stopped by SIGTERM (128 + the signal's number, as shells report it).
EXIT_CODE = 128 + signal.SIGTERM


class Terminated(BaseException):  # noqa: N818 (named like KeyboardInterrupt: a stop request, not an error)
    """SIGTERM arrived (a BaseException like KeyboardInterrupt: ``except Exception`` does not stop it)."""


def _raise_terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the first one is enough; let the clean-up finish
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread; the previous handler
    is restored on exit. Outside the main thread (where Python cannot set handlers) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
