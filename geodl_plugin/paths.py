"""Where the plugin's non-code files live, in the repository and in the installed plugin folder.

In the repository the package is ``geodl_plugin/`` with ``ui/`` and ``resources/`` beside it; ``make
install``/``make package`` copy them *into* the deployable folder ``geodl/``. Code asks here instead of
building paths itself.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (PACKAGE_DIR / name, PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"geodl: the '{name}' folder is missing beside {PACKAGE_DIR}; reinstall the plugin.")


def ui_file(name: str) -> Path:
    return _find("ui") / name


def resource(name: str) -> Path:
    return _find("resources") / name


def metadata_file() -> Path:
    for candidate in (PACKAGE_DIR / "metadata.txt", PACKAGE_DIR.parent / "metadata.txt"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("geodl: metadata.txt is missing; reinstall the plugin.")


def plugin_version() -> str:
    for line in metadata_file().read_text(encoding="utf-8").splitlines():
        if line.startswith("version="):
            return line.split("=", 1)[1].strip()
    return "unknown"
