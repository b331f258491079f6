"""Watch Earth Engine batch tasks until they end, cancel them when the user cancels, and fetch finished
Cloud Storage exports.

Run :func:`wait_for_tasks` / :func:`wait_and_download` inside a ``GeoDLTask``: they only poll and sleep,
calling ``progress.check()`` between polls, so a cancel in QGIS cancels the Earth Engine tasks too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..io.atomic import atomic_path
from ..runtime.errors import Cancelled, GeoDLError
from ..runtime.progress import Progress, ensure
from .session import ee_errors, is_retryable, require_connected

log = logging.getLogger("geodl")

DONE_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class TaskStatus:
    operation: str
    state: str  # PENDING, RUNNING, CANCELLING, SUCCEEDED, FAILED, CANCELLED
    description: str = ""
    progress: float = 0.0  # 0-1
    error: str = ""
    destination_uris: list[str] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return self.operation.rsplit("/", 1)[-1]

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES


def operation_name(task: str, project: Optional[str] = None) -> str:
    """``projects/P/operations/ID`` for a task id (or an operation name, returned as is)."""
    if task.startswith("projects/"):
        return task
    return f"projects/{project or require_connected()}/operations/{task}"


def task_status(task: str) -> TaskStatus:
    import ee

    name = operation_name(task)
    with ee_errors(f"read the state of Earth Engine task {name.rsplit('/', 1)[-1]}"):
        op = ee.data.getOperation(name)
    meta = op.get("metadata", {})
    error = ""
    if op.get("error"):
        error = op["error"].get("message", "") or str(op["error"])
    return TaskStatus(
        operation=op.get("name", name),
        state=meta.get("state", "UNKNOWN"),
        description=meta.get("description", ""),
        progress=float(meta.get("progress", 1.0 if op.get("done") else 0.0) or 0.0),
        error=error,
        destination_uris=list(meta.get("destinationUris", [])),
    )


def cancel_task(task: str) -> None:
    import ee

    with ee_errors("cancel the Earth Engine task"):
        ee.data.cancelOperation(operation_name(task))


def wait_for_tasks(  # noqa: C901 - the task-state machine reads best whole
    tasks: Sequence[str],
    progress: Optional[Progress] = None,
    poll_seconds: float = 15.0,
    timeout_seconds: Optional[float] = None,
    sleep: Callable[[float], None] = time.sleep,
    raise_on_failure: bool = True,
) -> list[TaskStatus]:
    """Poll until every task has ended. On cancel, cancel the tasks still running on Earth Engine and
    raise Cancelled. A FAILED task raises GeoDLError with Earth Engine's error text (after all have ended)."""
    progress = ensure(progress)
    names = [operation_name(t) for t in tasks]
    if not names:
        raise GeoDLError("No Earth Engine task to watch; start an export first.")
    status: dict[str, TaskStatus] = {}
    started = time.monotonic()
    step = 0.05  # sleep in short steps so a cancel is answered quickly
    while True:
        for name in names:
            if name in status and status[name].done:
                continue
            try:
                status[name] = task_status(name)
            except GeoDLError as exc:
                if not is_retryable(exc.__cause__ or exc):
                    raise
                log.info("Polling %s failed (%s); will retry.", name, exc)
        states = [status.get(n) for n in names]
        fraction = sum((s.progress if not s.done else 1.0) for s in states if s) / len(names)
        running = ", ".join(f"{s.task_id}: {s.state}" for s in states if s)
        progress.update(100.0 * fraction, running)
        if all(s is not None and s.done for s in states):
            break
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise GeoDLError(
                f"The Earth Engine task(s) did not finish within {timeout_seconds:.0f} s ({running}). They keep "
                "running on Earth Engine; watch them at https://code.earthengine.google.com/tasks and download later."
            )
        waited = 0.0
        try:
            while waited < poll_seconds:
                progress.check()
                pause = min(step, poll_seconds - waited) if poll_seconds > step else poll_seconds
                sleep(pause)
                waited += pause
            progress.check()
        except Cancelled:
            for name in names:
                if not (name in status and status[name].done):
                    try:
                        cancel_task(name)
                        log.info("Cancelled Earth Engine task %s.", name)
                    except GeoDLError as exc:
                        log.warning("Could not cancel Earth Engine task %s: %s", name, exc)
            raise
    result = [status[n] for n in names]
    failed = [s for s in result if s.state == "FAILED"]
    if failed and raise_on_failure:
        details = "; ".join(f"task {s.task_id}{f' ({s.description})' if s.description else ''}: {s.error}" for s in failed)
        hint = ""
        if any("memory" in s.error.lower() for s in failed):
            hint = (
                " Export fewer samples per task (they are split automatically), a smaller patch size, or raise "
                "the tile scale, then start the export again."
            )
        raise GeoDLError(f"Earth Engine task failed: {details}.{hint}")
    return result


def export_file_pattern(prefix: str) -> re.Pattern[str]:
    """The object names an export with this file-name prefix writes, and no others: ``PREFIX.tfrecord.gz``,
    ``PREFIX-00000.tfrecord.gz`` (image shards), ``PREFIX-00000-of-00002.tfrecord.gz``, ``PREFIX-mixer.json``,
    ``PREFIX.tif`` / ``PREFIX-0000000000-0000000000.tif``. A bare prefix match would also take
    ``PREFIX_old.tfrecord.gz`` or another export's ``PREFIX-part001…``."""
    return re.compile(re.escape(prefix) + r"(-\d+(-of-\d+)?|-\d+-\d+|-mixer)?\.(tfrecord(\.gz)?|json|tif|tiff|csv)")


def download_gcs_prefix(
    bucket: str,
    prefix: str,
    dest_dir: str | os.PathLike,
    client: Any = None,
    progress: Optional[Progress] = None,
) -> list[Path]:
    """Download the files of the export named ``prefix`` in ``gs://bucket`` into ``dest_dir`` (flat, by base
    name): exactly its files (:func:`export_file_pattern`), not everything that starts with the prefix. Files
    already there with the same size are skipped, so a rerun resumes. ``client`` is a
    ``google.cloud.storage.Client``; by default one signed in with the Earth Engine credentials."""
    progress = ensure(progress)
    if client is None:
        from .session import storage_client

        client = storage_client()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    pattern = export_file_pattern(prefix)
    try:
        blobs = [b for b in client.list_blobs(bucket, prefix=prefix) if pattern.fullmatch(b.name)]
    except Exception as exc:  # noqa: BLE001
        raise GeoDLError(f"Cannot list gs://{bucket}/{prefix} ({exc}). Check the bucket name and your access.") from exc
    if not blobs:
        raise GeoDLError(
            f"The export finished but gs://{bucket} holds no file of the export {prefix} ({prefix}.tfrecord.gz, "
            f"{prefix}-00000.tfrecord.gz …). Check the bucket and prefix."
        )
    paths = []
    for index, blob in enumerate(blobs):
        progress.check()
        target = dest / Path(blob.name).name
        if target.exists() and blob.size is not None and target.stat().st_size == blob.size:
            paths.append(target)
            continue
        with atomic_path(target) as tmp:
            try:
                blob.download_to_filename(str(tmp))
            except Exception as exc:  # noqa: BLE001
                raise GeoDLError(f"Downloading gs://{bucket}/{blob.name} failed ({exc}). Run the download again.") from exc
        paths.append(target)
        progress.update(100.0 * (index + 1) / len(blobs), f"Downloaded {target.name}")
    return paths


def write_sample_sidecars(paths: Sequence[Path], sidecar: dict) -> None:
    """Beside each downloaded training TFRecord, the sample sidecar the export carried (grid, nodata, bands):
    what ``load_samples`` reads and the trainer copies into the model manifest."""
    if not sidecar:
        return
    for path in paths:
        if ".tfrecord" in path.name:
            meta = dict(sidecar, rasters=[f"earth engine export {path.name}"])
            Path(str(path) + ".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def wait_and_download(
    exports: Sequence[Any],  # StartedExport
    dest_dir: str | os.PathLike,
    client: Any = None,
    progress: Optional[Progress] = None,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Path]:
    """Wait for exports, then download the Cloud Storage ones into ``dest_dir``."""
    progress = ensure(progress)
    wait_for_tasks([e.operation or e.task_id for e in exports], progress.sub(0, 70), poll_seconds, sleep=sleep)
    paths: list[Path] = []
    gcs = [e for e in exports if e.destination.kind == "gcs"]
    for index, export in enumerate(gcs):
        span = progress.sub(70 + 30 * index / len(gcs), 70 + 30 * (index + 1) / len(gcs))
        files = download_gcs_prefix(export.destination.bucket, export.prefix, dest_dir, client, span)
        sidecar = getattr(export, "sidecar", {})
        # training tables, and image exports that carry a label band (a series' labelled chips)
        if getattr(export, "kind", "table") == "table" or sidecar.get("label"):
            write_sample_sidecars(files, sidecar)
        paths += files
    if len(gcs) < len(exports):
        progress.message("Exports to Drive finished; download them from Google Drive (geodl reads them from a folder).")
    return paths
