"""Ctrl+C and SIGTERM stop a step the way Cancel does: through the write-then-rename clean-up.

Under ``qgis_process`` an algorithm runs on the main thread of a C++ program whose default reaction to SIGINT
or SIGTERM is to die at once, leaving temporary files behind. Inside :func:`signals_cancel` those signals
raise :class:`Interrupted` (a :class:`Cancelled`) in the running Python code instead; the exception unwinds
through ``atomic_path`` (which removes the temporary file) and through the worker client (which cancels the
worker's job). Elsewhere than the main thread (a QGIS desktop task) it does nothing: signals only reach the
main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from .errors import Cancelled

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Cancelled):
    """The process received SIGINT or SIGTERM during a step."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"Interrupted ({signal.Signals(signum).name}); nothing was written.")


@contextlib.contextmanager
def signals_cancel() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        if received:
            return  # a second Ctrl+C must not interrupt the clean-up the first one started
        received.append(signum)
        raise Interrupted(signum)

    previous = {}
    try:
        for s in SIGNALS:
            previous[s] = signal.signal(s, handler)
    except (ValueError, OSError):  # not allowed here (an embedded interpreter without signal support)
        for s, old in previous.items():
            signal.signal(s, old)
        yield
        return
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old if old is not None else signal.SIG_DFL)
