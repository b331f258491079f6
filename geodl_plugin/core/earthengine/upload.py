"""Predictions back into Earth Engine as an image asset (the ingestion API, as `earthengine upload image`).

Two sources: a GeoTIFF on any grid (:func:`upload_geotiff`: the dock's class map; Earth Engine reads the CRS
and grid from the file, and the file's nodata is declared as missing data), or, for predictions made on an
Earth Engine image export's grid, the TFRecord written by :func:`..mixer.raster_to_upload_tfrecord` with
the export's mixer JSON (:func:`upload_predictions`). Either is copied to Cloud Storage, then one ingestion
task reads it as a single tileset; class maps are pyramided with MODE (averaging class codes would invent
classes).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .grid import NODATA
from .session import ee_errors, require_connected

PYRAMIDING = ("MEAN", "MODE", "MIN", "MAX", "SAMPLE")


def asset_name(asset_id: str, project: str) -> str:
    """``projects/P/assets/…`` for a full or project-relative asset id."""
    asset_id = asset_id.strip().strip("/")
    if not asset_id:
        raise GeoDLError("Give an asset id for the upload, e.g. geodl/predictions (in your Cloud project's assets).")
    if asset_id.startswith("projects/"):
        name = asset_id
    elif asset_id.startswith("users/"):
        name = f"projects/earthengine-legacy/assets/{asset_id}"
    else:
        name = f"projects/{project}/assets/{asset_id}"
    if not re.fullmatch(r"projects/[^/]+/assets/[A-Za-z0-9_\-/]+", name):
        raise GeoDLError(f"'{asset_id}' is not a valid asset id: use letters, digits, '_', '-' and '/' only.")
    return name


def image_manifest(
    name: str,
    uris: Sequence[str],
    bands: Sequence[str],
    pyramiding: str = "MODE",
    properties: Optional[dict] = None,
    missing_data: Optional[float] = None,
) -> dict[str, Any]:
    if pyramiding not in PYRAMIDING:
        raise GeoDLError(f"Unknown pyramiding policy '{pyramiding}'; choose one of {', '.join(PYRAMIDING)}.")
    if not any(u.endswith("-mixer.json") for u in uris) and any(".tfrecord" in u for u in uris):
        raise GeoDLError("A TFRecord upload needs the export's PREFIX-mixer.json among the files; add it.")
    manifest: dict[str, Any] = {
        "name": name,
        "tilesets": [{"id": "ts", "sources": [{"uris": list(uris)}]}],  # TFRecords + mixer: one source
        "bands": [{"id": b, "tilesetId": "ts", "tilesetBandIndex": i} for i, b in enumerate(bands)],
        "pyramidingPolicy": pyramiding,
    }
    if properties:
        manifest["properties"] = dict(properties)
    if missing_data is not None:
        if not math.isfinite(missing_data):
            # The manifest travels as JSON and NaN is not JSON: the server refuses the request. A NaN-nodata
            # raster is rewritten with a finite sentinel before upload (upload_geotiff).
            raise GeoDLError(f"The missing-data value {missing_data} is not a finite number; Earth Engine needs one.")
        manifest["missingData"] = {"values": [float(missing_data)]}
    return manifest


def start_ingestion(manifest: dict[str, Any], overwrite: bool = False) -> str:
    """Start the ingestion task; return its id."""
    import ee

    require_connected()
    with ee_errors(f"start the upload of {manifest['name']}"):
        result = ee.data.startIngestion(ee.data.newTaskId()[0], manifest, allow_overwrite=overwrite)
    return result["id"]


def copy_to_gcs(
    paths: Sequence[str | os.PathLike],
    bucket: str,
    prefix: str,
    client: Any = None,
    progress: Optional[Progress] = None,
) -> list[str]:
    """Upload local files to ``gs://bucket/prefix/…``; return their gs:// URIs."""
    progress = ensure(progress)
    if client is None:
        from .session import storage_client

        client = storage_client()  # the credentials Earth Engine signed in with
    target = client.bucket(bucket)
    uris = []
    for index, path in enumerate(paths):
        progress.check()
        path = Path(path)
        blob_name = f"{prefix.strip('/')}/{path.name}" if prefix.strip("/") else path.name
        try:
            target.blob(blob_name).upload_from_filename(str(path))
        except Exception as exc:  # noqa: BLE001
            raise GeoDLError(f"Uploading {path.name} to gs://{bucket}/{blob_name} failed ({exc}).") from exc
        uris.append(f"gs://{bucket}/{blob_name}")
        progress.update(100.0 * (index + 1) / len(paths), f"Uploaded {path.name}")
    return uris


def upload_predictions(
    tfrecord_path: str | os.PathLike,
    mixer_path: str | os.PathLike,
    asset_id: str,
    bucket: str,
    band_names: Sequence[str],
    prefix: str = "geodl-upload",
    pyramiding: str = "MODE",
    overwrite: bool = False,
    client: Any = None,
    progress: Optional[Progress] = None,
    missing_data: Optional[float] = None,
) -> str:
    """Copy the predictions TFRecord and its mixer to Cloud Storage and start the ingestion; return the
    task id. The mixer is copied under the TFRecord's own prefix name, as Earth Engine pairs them by name.
    ``missing_data`` (e.g. ``mixer.upload_nodata`` of the predicted raster) stays masked in the asset."""
    progress = ensure(progress)
    project = require_connected()
    tfrecord_path, mixer_path = Path(tfrecord_path), Path(mixer_path)
    for p in (tfrecord_path, mixer_path):
        if not p.exists():
            raise GeoDLError(f"'{p}' does not exist; write the predictions TFRecord first and keep the export's mixer.")
    name = asset_name(asset_id, project)
    uris = copy_to_gcs([tfrecord_path, mixer_path], bucket, prefix, client, progress.sub(0, 80))
    task_id = start_ingestion(image_manifest(name, uris, band_names, pyramiding, missing_data=missing_data), overwrite)
    progress.update(100, f"Started upload task {task_id} → {name}")
    return task_id


def band_ids(descriptions: Sequence[Optional[str]]) -> list[str]:
    """Earth Engine band ids from band descriptions: 'class' stays 'class', 'confidence (highest class
    probability)' becomes 'confidence', 'p(water)' becomes 'p_water'; an empty one becomes b1, b2 …"""
    ids = []
    for i, text in enumerate(descriptions, start=1):
        word = re.sub(r"\W+", "_", (text or "").split(" (")[0]).strip("_")
        ids.append(word if word and not word[0].isdigit() else f"b{i}")
    return ids


def upload_geotiff(
    raster: str | os.PathLike,
    asset_id: str,
    bucket: str,
    prefix: str = "geodl-upload",
    band_names: Optional[Sequence[str]] = None,
    pyramiding: str = "MODE",
    overwrite: bool = False,
    client: Any = None,
    progress: Optional[Progress] = None,
) -> str:
    """Copy a GeoTIFF to ``gs://bucket/prefix/`` and start its ingestion as ``asset_id``; return the task id.
    Band names default to the file's band descriptions; its nodata value becomes the asset's missing data."""
    import rasterio

    progress = ensure(progress)
    project = require_connected()
    path = Path(raster)
    if not bucket.strip():
        raise GeoDLError("Give a Cloud Storage bucket for the upload: Earth Engine ingests files from a bucket.")
    name = asset_name(asset_id, project)  # a bad id fails before anything is copied
    try:
        with rasterio.open(path) as ds:
            driver, count, nodata, descriptions = ds.driver, ds.count, ds.nodata, ds.descriptions
    except rasterio.errors.RasterioIOError as exc:
        raise GeoDLError(f"Cannot read '{path}' ({exc}); choose a GeoTIFF to upload.") from exc
    if driver != "GTiff":
        raise GeoDLError(
            f"'{path.name}' is a {driver} raster; Earth Engine ingests GeoTIFF. Save it as GeoTIFF first (Raster ▸ Conversion ▸ Translate)."
        )
    names = list(band_names) if band_names else band_ids(descriptions)
    if len(names) != count:
        raise GeoDLError(f"{len(names)} band name(s) given for the {count} band(s) of '{path.name}'.")
    with tempfile.TemporaryDirectory(prefix="geodl-upload-") as scratch:
        source = path
        if nodata is not None and not math.isfinite(nodata):
            # NaN nodata cannot be declared (JSON has no NaN): upload a copy whose NaNs are the sentinel.
            source = finite_nodata_copy(path, Path(scratch) / path.name)
            nodata = NODATA
        uris = copy_to_gcs([source], bucket.strip(), prefix, client, progress.sub(0, 90))
    task_id = start_ingestion(image_manifest(name, uris, names, pyramiding, missing_data=nodata), overwrite)
    progress.update(100, f"Started upload task {task_id} → {name}")
    return task_id


def finite_nodata_copy(raster: Path, target: Path) -> Path:
    """A copy of a float raster with nodata NaN whose NaN pixels are ``NODATA`` and whose nodata is ``NODATA``
    (the input is never changed)."""
    import numpy as np
    import rasterio

    with rasterio.open(raster) as src:
        profile = dict(src.profile, nodata=NODATA)
        with rasterio.open(target, "w", **profile) as dst:
            for _, window in src.block_windows(1):
                block = src.read(window=window)
                block[~np.isfinite(block)] = NODATA
                dst.write(block, window=window)
            for i, description in enumerate(src.descriptions, start=1):
                if description:
                    dst.set_band_description(i, description)
    return target
