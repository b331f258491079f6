"""Predictions back into Earth Engine as an image asset (the ingestion API, as `earthengine upload image`).

The TFRecord written by :func:`..mixer.write_upload_tfrecord` and the export's mixer JSON are copied to
Cloud Storage, then one ingestion task reads them as a single tileset; class maps are pyramided with MODE
(averaging class codes would invent classes).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence

from ..errors import GeoDLError
from ..progress import Progress, ensure
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
    name: str, uris: Sequence[str], bands: Sequence[str], pyramiding: str = "MODE", properties: Optional[dict] = None
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
        try:
            from google.cloud import storage

            client = storage.Client()
        except Exception as exc:  # noqa: BLE001
            raise GeoDLError(
                f"Cannot open Cloud Storage ({exc}). Install google-cloud-storage and run `gcloud auth "
                "application-default login`, or copy the files to the bucket yourself and give their gs:// URIs."
            ) from exc
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
) -> str:
    """Copy the predictions TFRecord and its mixer to Cloud Storage and start the ingestion; return the
    task id. The mixer is copied under the TFRecord's own prefix name, as Earth Engine pairs them by name."""
    progress = ensure(progress)
    project = require_connected()
    tfrecord_path, mixer_path = Path(tfrecord_path), Path(mixer_path)
    for p in (tfrecord_path, mixer_path):
        if not p.exists():
            raise GeoDLError(f"'{p}' does not exist; write the predictions TFRecord first and keep the export's mixer.")
    name = asset_name(asset_id, project)
    uris = copy_to_gcs([tfrecord_path, mixer_path], bucket, prefix, client, progress.sub(0, 80))
    task_id = start_ingestion(image_manifest(name, uris, band_names, pyramiding), overwrite)
    progress.update(100, f"Started upload task {task_id} → {name}")
    return task_id
