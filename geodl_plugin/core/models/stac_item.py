"""A model card other tools read: the model file's manifest as a STAC Item with the Machine Learning Model
(MLM) extension, v1.5.0 (https://github.com/stac-extensions/mlm).

The manifest already uses MLM's words; this turns it into a valid Item: ``mlm:name``, ``mlm:architecture``,
``mlm:tasks``, ``mlm:framework``, ``mlm:input`` (bands, shape, z-score ``value_scaling`` per band),
``mlm:output`` (``classification:classes``), the bands listed in STAC 1.1 core ``bands`` (MLM requires a
band description when inputs name bands), and one asset per artifact with the role ``mlm:model`` and
``mlm:artifact_type``. Geometry: the training grid's footprint is not in the manifest, so it is ``null``
(allowed by STAC for items without a location).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional

from ..io.atomic import atomic_path, check_writable

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.0/schema.json"
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
STAC_VERSION = "1.1.0"
KERAS_ARTIFACT = "keras.Model.save"  # .geodl zip: manifest.json + model.keras (Keras 3 native format)
FOREST_ARTIFACT = "numpy.savez"  # .geodl zip: manifest.json + forest.npz
ONNX_ARTIFACT = "onnx"
_ITEM_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def _framework(manifest: dict[str, Any]) -> tuple[str, str]:
    name = str(manifest.get("mlm:framework") or "")
    # MLM wants a bare semantic version: "3.15.1 (tensorflow)" → "3.15.1"
    match = re.match(r"\d+\.\d+\.\d+", str(manifest.get("mlm:framework_version") or ""))
    version = match.group(0) if match else ""
    # MLM's enumerated spellings
    return {"keras": "Keras", "scikit-learn": "scikit-learn"}.get(name.lower(), name or "Keras"), version


def _input(manifest: dict[str, Any], onnx_tile: Optional[int]) -> dict[str, Any]:
    entry = manifest["mlm:input"][0]
    bands = list(entry["bands"])
    stats = entry.get("statistics") or []
    shape = list(entry["input"]["shape"])
    dims = list(entry["input"]["dim_order"])
    if onnx_tile:  # the ONNX graph's own input: NCHW tiles, raw/255 in (Deepness' scaling, undone inside)
        shape, dims = [-1, len(bands), onnx_tile, onnx_tile], ["batch", "bands", "height", "width"]
    elif len(shape) == 4 and "semantic-segmentation" in (manifest.get("mlm:tasks") or []):
        shape = [-1, -1, -1, len(bands)]  # fully convolutional: any tile size divisible by 2^depth
    item: dict[str, Any] = {
        "name": "image",
        "bands": bands,
        "input": {"shape": shape, "dim_order": dims, "data_type": "float32"},
        "description": "Raw pixel values of the bands, in this order; the network normalises them itself "
        "(z-score with the statistics below)."
        if not onnx_tile
        else "Raw pixel values divided by 255 (as Deepness feeds them); the graph multiplies by 255 and applies the z-score below itself.",
        # Applied inside the network (its first layer), so consumers must NOT apply it again; listed because
        # it documents what the model expects.
        "value_scaling": [{"type": "z-score", "mean": float(s["mean"]), "stddev": float(s["stddev"])} for s in stats] or None,
        "resize_type": None,
        "pre_processing_function": None,
    }
    return item


def _output(manifest: dict[str, Any], onnx_tile: Optional[int]) -> dict[str, Any]:
    out = manifest["mlm:output"][0]
    classes = out["classification:classes"]
    n = len(classes)
    tasks = list(out.get("tasks") or manifest["mlm:tasks"])
    if onnx_tile:
        shape, dims = [-1, n, onnx_tile, onnx_tile], ["batch", "class", "height", "width"]
    elif "semantic-segmentation" in tasks:
        shape, dims = [-1, -1, -1, n], ["batch", "height", "width", "class"]
    else:
        shape, dims = [-1, n], ["batch", "class"]
    return {
        "name": "classes",
        "tasks": tasks,
        "description": "Probability of each class; the map takes the most probable.",
        "result": {"shape": shape, "dim_order": dims, "data_type": "float32"},
        "classification:classes": [
            {
                "value": int(c["value"]),
                "name": _class_name(str(c["name"])),
                "description": str(c["name"]),
                "color_hint": str(c.get("color_hint", "999999")).lstrip("#").upper(),
            }
            for c in classes
        ],
        "post_processing_function": None,
    }


def _class_name(name: str) -> str:
    """The classification extension wants names without spaces or punctuation; the original is kept in the
    description."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")
    return cleaned or "class"


def stac_item(
    manifest: dict[str, Any], model_href: str, onnx_href: Optional[str] = None, onnx_tile: Optional[int] = None
) -> dict[str, Any]:
    """The STAC Item (a plain dict) for a model file at ``model_href`` and, optionally, its ONNX export.

    With an ONNX export the item describes the ONNX graph's input (NCHW tiles); without, the geodl model's."""
    created = (manifest.get("provenance") or {}).get("created") or datetime.now(UTC).isoformat(timespec="seconds")
    name = str(manifest.get("mlm:name") or Path(model_href).stem)
    framework, version = _framework(manifest)
    architecture = str(manifest.get("mlm:architecture"))
    bands = list(manifest["mlm:input"][0]["bands"])
    properties: dict[str, Any] = {
        "title": f"geodl {architecture} model '{name}'",
        "description": "A land-cover classification model trained with the geodl QGIS plugin.",
        "datetime": _utc(created),
        "created": _utc(created),
        "mlm:name": name,
        "mlm:architecture": architecture,
        "mlm:tasks": list(manifest.get("mlm:tasks") or ["classification"]),
        "mlm:framework": framework,
        **({"mlm:framework_version": version} if version else {}),
        "mlm:pretrained": False,
        "mlm:accelerator": None,
        "mlm:input": [_input(manifest, onnx_tile)],
        "mlm:output": [_output(manifest, onnx_tile)],
        "bands": [{"name": b} for b in bands],
    }
    hyper = {k: v for k, v in (manifest.get("training") or {}).items() if isinstance(v, (int, float, str, bool)) and k not in ("samples",)}
    if hyper:
        properties["mlm:hyperparameters"] = hyper
    metrics = manifest.get("metrics") or {}
    for key in ("overall_accuracy", "kappa"):
        if isinstance(metrics.get(key), (int, float)):
            properties[f"geodl:{key}"] = float(metrics[key])
    is_forest = framework == "scikit-learn"
    assets: dict[str, Any] = {
        "model": {
            "href": model_href,
            "title": "geodl model file (zip: manifest.json + the model)",
            "type": "application/zip",
            "roles": ["mlm:model", "mlm:weights"],
            "mlm:artifact_type": FOREST_ARTIFACT if is_forest else KERAS_ARTIFACT,
        },
    }
    if onnx_href:
        assets["onnx"] = {
            "href": onnx_href,
            "title": "ONNX export for Deepness (and any ONNX runtime)",
            "type": "application/octet-stream; application=onnx",
            "roles": ["mlm:model"],
            "mlm:artifact_type": ONNX_ARTIFACT,
        }
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [MLM_SCHEMA, CLASSIFICATION_SCHEMA],
        "id": _ITEM_ID.sub("-", name).strip("-") or "geodl-model",
        "geometry": None,
        "properties": properties,
        "links": [],
        "assets": assets,
    }


def _utc(stamp: str) -> str:
    """RFC 3339 in UTC with a Z, as STAC wants."""
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        when = datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_stac_item(
    path: str | os.PathLike,
    manifest: dict[str, Any],
    onnx_path: Optional[str | os.PathLike] = None,
    model_path: Optional[str | os.PathLike] = None,
    onnx_tile: Optional[int] = None,
) -> Path:
    """Write the item as JSON next to the artifacts; hrefs are relative to the item when they share a folder."""
    target = check_writable(path)

    def href(p: Optional[str | os.PathLike]) -> Optional[str]:
        if p is None:
            return None
        p = Path(p).resolve()
        return p.name if p.parent == target.resolve().parent else p.as_uri()

    model_href = href(model_path) or Path(str(manifest.get("mlm:name") or "model")).with_suffix(".geodl").name
    item = stac_item(manifest, model_href, href(onnx_path), onnx_tile)
    with atomic_path(target) as tmp:
        Path(tmp).write_text(json.dumps(item, indent=2), encoding="utf-8")
    return target
