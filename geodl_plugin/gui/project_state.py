"""The dock's per-project state in the QGIS project file (scope ``geodl``).

What is stored: the class palette (STAC classification JSON), the region / labels / raster layer ids, the
training settings and the last model file. Layers are referred to by id; their data lives in their own
files (GeoPackages beside the project), never inside the project.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from qgis.core import QgsProject

from ..core.models.family import ModelFamily
from ..core.train.trainer import TrainParams

_TRAIN_DEFAULTS = TrainParams(samples=[], output="")

SCOPE = "geodl"
KEY = "dock_state"
VERSION = 2  # 2: the model family and its options replace model_type / hidden_units


@dataclass
class DockState:
    classes: list[dict[str, Any]] = field(default_factory=list)  # ClassTable.to_json()
    active_class: int = -1  # palette row
    region_layer_id: str = ""
    labels_layer_id: str = ""
    raster_layer_ids: list[str] = field(default_factory=list)
    family: str = ModelFamily.PIXEL_DNN.value
    options: dict[str, Any] = field(default_factory=dict)  # the family's options (core/models/family.py)
    tiling: dict[str, Any] = field(default_factory=dict)
    epochs: int = _TRAIN_DEFAULTS.epochs
    batch_size: int = _TRAIN_DEFAULTS.batch_size
    model_path: str = ""
    output_dir: str = ""
    predict_area: str = "region"
    version: int = VERSION


def save(state: DockState, project: Optional[QgsProject] = None) -> None:
    project = project or QgsProject.instance()
    project.writeEntry(SCOPE, KEY, json.dumps(asdict(state)))


def load(project: Optional[QgsProject] = None) -> Optional[DockState]:
    """The saved state, or None when the project holds none (or an unreadable one)."""
    project = project or QgsProject.instance()
    text, ok = project.readEntry(SCOPE, KEY, "")
    if not ok or not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    known = DockState.__dataclass_fields__
    return DockState(**{k: v for k, v in data.items() if k in known})
