"""The progress/cancel contract between the core and whoever runs it (a QgsTask or a Processing feedback).

Core functions take an optional :class:`Progress`. They call ``progress.update(percent, message)`` and
``progress.check()`` at natural checkpoints; ``check()`` raises :class:`~geodl_plugin.core.runtime.errors.Cancelled`
once the caller asked to stop, so a cancel takes effect within one chunk or batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from .errors import Cancelled

log = logging.getLogger("geodl")


@dataclass
class Progress:
    """Reports progress (0-100) and answers whether to stop.

    ``on_progress`` receives a percentage, ``on_message`` a short status line, ``is_cancelled`` is polled.
    ``on_metrics`` receives per-epoch training metrics (used by the dock's live plot).
    """

    on_progress: Optional[Callable[[float], None]] = None
    on_message: Optional[Callable[[str], None]] = None
    is_cancelled: Optional[Callable[[], bool]] = None
    on_metrics: Optional[Callable[[dict], None]] = None
    _start: float = field(default=0.0, repr=False)
    _span: float = field(default=100.0, repr=False)

    def update(self, percent: float, message: str = "") -> None:
        if self.on_progress is not None:
            self.on_progress(self._start + self._span * max(0.0, min(100.0, percent)) / 100.0)
        if message:
            self.message(message)

    def message(self, text: str) -> None:
        log.info(text)
        if self.on_message is not None:
            self.on_message(text)

    def metrics(self, values: dict) -> None:
        if self.on_metrics is not None:
            self.on_metrics(values)

    def cancelled(self) -> bool:
        return bool(self.is_cancelled is not None and self.is_cancelled())

    def check(self) -> None:
        """Raise :class:`Cancelled` if the caller asked to stop."""
        if self.cancelled():
            raise Cancelled("Cancelled by the user.")

    def sub(self, start: float, end: float) -> Progress:
        """A view of this progress that maps 0-100 onto [start, end] of the parent's range."""
        return Progress(
            on_progress=self.on_progress,
            on_message=self.on_message,
            is_cancelled=self.is_cancelled,
            on_metrics=self.on_metrics,
            _start=self._start + self._span * start / 100.0,
            _span=self._span * (end - start) / 100.0,
        )


def ensure(progress: Optional[Progress]) -> Progress:
    """Return ``progress`` or a silent one, so core code never tests for None."""
    return progress if progress is not None else Progress()
