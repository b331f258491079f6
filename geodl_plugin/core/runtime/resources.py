"""How much memory a step may use, so a step that cannot fit is refused before it starts, not after minutes."""

from __future__ import annotations

import os
from typing import Optional

from .errors import GeoDLError

MB = 1024 * 1024


def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (Linux MemAvailable; else physical pages free)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed: int, what: str, fix: str) -> None:
    """Refuse when ``needed`` bytes exceed the memory available now."""
    available = available_memory()
    if available is not None and needed > available:
        raise GeoDLError(f"{what} needs about {needed / MB:,.0f} MB of memory but only {available / MB:,.0f} MB is available. {fix}")
