"""User-wide preferences in QgsSettings under ``geodl/``, with typed defaults.

Credentials are never stored here (nor in project files): Earth Engine keeps its own credentials file and
only the Cloud project id is a setting.
"""

from __future__ import annotations

from typing import Any

from qgis.core import QgsSettings

PREFIX = "geodl/"

DEFAULTS: dict[str, Any] = {
    "ee_project": "",
    "ee_service_account_key": "",
    "ee_bucket": "",
    "last_output_dir": "",
    "train_epochs": 50,
    "train_batch_size": 64,  # TrainParams.batch_size: the dock and Processing start alike
    "prediction_batch_pixels": 262144,
}


def get(key: str) -> Any:
    default = DEFAULTS[key]
    return QgsSettings().value(PREFIX + key, default, type=type(default))


def set_value(key: str, value: Any) -> None:
    if key not in DEFAULTS:
        raise KeyError(f"unknown geodl setting {key!r}")
    QgsSettings().setValue(PREFIX + key, value)
