"""Write-then-rename, so a cancel or crash never leaves a half-written output."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from ..runtime.errors import GeoDLError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any work, when ``path`` cannot be written."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise GeoDLError(f"The output '{target}' is a folder; give a file name instead.")
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GeoDLError(
                f"Cannot create the folder '{parent}' for the output ({exc.strerror}). Choose another location."
            ) from exc
    if not os.access(parent, os.W_OK):
        raise GeoDLError(f"Cannot write to the folder '{parent}'. Choose a folder you can write to.")
    if target.exists() and not os.access(target, os.W_OK):
        raise GeoDLError(f"The file '{target}' exists and is read-only. Choose another name.")
    return target


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only if the block succeeds."""
    target = check_writable(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
