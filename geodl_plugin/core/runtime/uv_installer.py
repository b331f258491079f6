"""``uv`` as the runtime's installer where the machine has it: which ``uv`` to use, its commands, and its output
read as progress. ``environment.py`` makes the runtime with it, or with ``venv`` and pip where there is none.

uv creates the venv and installs the same pinned requirements, with the same constraints, from the same index,
mirror or offline wheel folder, several times faster than pip (it resolves and downloads in parallel), and it
needs no ``ensurepip`` in QGIS's Python (Debian's ``python3-venv``). Which one is used is chosen in this order:

- ``GEODL_UV`` in the environment: the path of a uv executable, or ``off`` (also ``0``, ``no``, ``pip``) for pip;
- otherwise ``uv`` on ``PATH``;
- otherwise pip.

uv prints one line when each step ends ("Resolved 41 packages", "Prepared 41 packages", "Installed 41
packages", then " + name==version" per package), so its progress moves in steps rather than per package.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import GeoDLError
from .progress import Progress

UV_ENV = "GEODL_UV"
_OFF = ("off", "0", "no", "false", "pip")
MIN_VERSION = (0, 4, 0)  # uv pip's flags used here (--index-strategy, --find-links with --no-index) and venv --python


@dataclass(frozen=True)
class UvTool:
    path: str
    version: str

    def describe(self) -> str:
        return f"uv {self.version} ({self.path})"


def _version(path: str) -> Optional[str]:
    """``uv --version`` → "0.13.9", or None when it does not run."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"uv (\d+\.\d+\.\d+)", done.stdout.strip()) if done.returncode == 0 else None
    return found.group(1) if found else None


def _recent(version: str) -> bool:
    return tuple(int(p) for p in version.split(".")) >= MIN_VERSION


def find_uv(environ: Optional[dict[str, str]] = None) -> Optional[UvTool]:
    """The uv to make the runtime with, or None for pip. A ``GEODL_UV`` that names no working, recent uv is an
    error (it was asked for); a uv on PATH that does not run or is too old is passed over for pip."""
    env = os.environ if environ is None else environ
    configured = env.get(UV_ENV, "").strip()
    if configured.lower() in _OFF:
        return None
    if configured:
        version = _version(configured)
        if version is None or not _recent(version):
            found = f"uv {version}" if version else "nothing that runs"
            raise GeoDLError(
                f"{UV_ENV} names '{configured}', which is {found}; give the path of uv "
                f"{'.'.join(map(str, MIN_VERSION))} or newer, or set {UV_ENV}=off to install with pip."
            )
        return UvTool(configured, version)
    on_path = shutil.which("uv", path=env.get("PATH"))
    version = _version(on_path) if on_path else None
    return UvTool(on_path, version) if on_path and version and _recent(version) else None


def venv_command(uv: UvTool, base_python: str, folder: Path) -> list[str]:
    """Make a venv at ``folder`` (an empty folder) from ``base_python``; uv seeds no pip (it installs itself)."""
    return [uv.path, "venv", "--python", base_python, str(folder)]


def install_command(uv: UvTool, python: Path, requirements: Path, constraints: Optional[Path], index_args: list[str]) -> list[str]:
    """``uv pip install`` into the venv of ``python`` with pip's index arguments. With extra indexes, every
    index is searched for the best version, as pip does (uv's default takes the first index holding a name)."""
    args = [uv.path, "pip", "install", "--python", str(python), "-r", str(requirements)]
    if constraints is not None:
        args += ["-c", str(constraints)]
    if "--extra-index-url" in index_args:
        args += ["--index-strategy", "unsafe-best-match"]
    return args + index_args


def uv_env(base: dict[str, str]) -> dict[str, str]:
    """pip's clean environment, with uv's progress bars off (its output is read line by line) and no Python
    downloads: the runtime is made from the Python QGIS runs, never from one uv would fetch."""
    env = {k: v for k, v in base.items() if k not in ("VIRTUAL_ENV", "UV_PYTHON", "UV_SYSTEM_PYTHON")}
    env["UV_NO_PROGRESS"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    return env


class UvProgress:
    """Reads uv's output lines as progress from ``start`` to ``end``: resolved → a fifth of the way, prepared
    (downloaded and built) → nine tenths, installed → the end; each line also goes to the log."""

    STEPS = (("Resolved ", 0.2), ("Prepared ", 0.9), ("Installed ", 1.0), ("Audited ", 1.0))

    def __init__(self, progress: Progress, start: float, end: float) -> None:
        self.progress, self.start, self.end = progress, start, end
        self.lines: list[str] = []

    def feed(self, line: str) -> None:
        self.lines.append(line.rstrip())
        text = line.strip()
        if not text:
            return
        for prefix, share in self.STEPS:
            if text.startswith(prefix):
                self.progress.update(self.start + (self.end - self.start) * share, text[0].lower() + text[1:])
                return
        self.progress.message(text)
