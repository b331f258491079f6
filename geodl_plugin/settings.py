"""User-wide preferences in QgsSettings under ``geodl/``, with typed defaults.

Credentials are never stored here (nor in project files): Earth Engine keeps its own credentials file and
only the Cloud project id is a setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import QgsApplication, QgsSettings

PREFIX = "geodl/"

DEFAULTS: dict[str, Any] = {
    "ee_project": "",
    "ee_service_account_key": "",
    "ee_bucket": "",
    "last_output_dir": "",
    "train_epochs": 50,
    "train_batch_size": 64,  # TrainParams.batch_size: the dock and Processing start alike
    "prediction_batch_pixels": 262144,
    # geodl's own ML runtime for the worker (core/runtime/environment.py); empty = the profile's default folder
    "runtime_dir": "",
    "runtime_backend": "",  # "" = recommended for this machine; "tensorflow" or "torch"
    "runtime_wheel_dir": "",  # offline installs: a folder of wheels
}


def get(key: str) -> Any:
    default = DEFAULTS[key]
    return QgsSettings().value(PREFIX + key, default, type=type(default))


def set_value(key: str, value: Any) -> None:
    if key not in DEFAULTS:
        raise KeyError(f"unknown geodl setting {key!r}")
    QgsSettings().setValue(PREFIX + key, value)


def runtime_dir() -> Path:
    """Where geodl's ML runtime lives: the setting, else ``<QGIS profile>/geodl/runtime`` (outside the plugin's
    code folder, so a plugin update keeps it)."""
    chosen = str(get("runtime_dir") or "").strip()
    return Path(chosen) if chosen else Path(QgsApplication.qgisSettingsDirPath()) / "geodl" / "runtime"
