"""Task monitor: operation states from the real client, cancel, failures, Cloud Storage download, and one
run inside GeoDLTask through QGIS's task manager."""

from __future__ import annotations

import pytest

from geodl_plugin.core.earthengine import monitor
from geodl_plugin.core.earthengine.exports import Destination, StartedExport
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress


def no_sleep(_seconds):
    pass


def started(op_id, prefix="exp"):
    return StartedExport(op_id, f"projects/test-project/operations/{op_id}", op_id, Destination("gcs", "bkt", prefix=prefix), prefix)


def test_running_then_succeeded(ee_session):
    ee_session.set_operation_states("OPA", "PENDING", "RUNNING", "SUCCEEDED")
    seen = []
    result = monitor.wait_for_tasks(["OPA"], Progress(on_message=seen.append), poll_seconds=0, sleep=no_sleep)
    assert [s.state for s in result] == ["SUCCEEDED"]
    gets = ee_session.calls("operations/OPA", "GET")
    assert len(gets) == 3
    assert any("RUNNING" in m for m in seen)


def test_failed_task_surfaces_earth_engine_error(ee_session):
    ee_session.set_operation_states("OPB", "RUNNING", ("FAILED", "User memory limit exceeded."))
    ee_session.set_operation_states("OPC", "SUCCEEDED")
    with pytest.raises(GeoDLError, match="User memory limit exceeded.") as info:
        monitor.wait_for_tasks(["OPB", "OPC"], poll_seconds=0, sleep=no_sleep)
    assert "OPB" in str(info.value) and "tile scale" in str(info.value)
    # the plugin stays usable: the next call works
    assert monitor.task_status("OPC").state == "SUCCEEDED"


def test_cancel_cancels_the_earth_engine_task(ee_session):
    ee_session.set_operation_states("OPD", "RUNNING")
    polls = {"n": 0}

    def cancelled():
        polls["n"] += 1
        return polls["n"] > 3

    with pytest.raises(Cancelled):
        monitor.wait_for_tasks(["OPD"], Progress(is_cancelled=cancelled), poll_seconds=1, sleep=no_sleep)
    ((method, uri, body),) = ee_session.calls("operations/OPD:cancel")
    assert method == "POST"
    assert monitor.task_status("OPD").state == "CANCELLED"


def test_wait_and_download_from_cloud_storage(ee_session, gcs, tmp_path):
    ee_session.set_operation_states("OPE", "RUNNING", "SUCCEEDED")
    gcs.objects[("bkt", "train-part000.tfrecord.gz")] = b"abc"
    gcs.objects[("bkt", "train-part001.tfrecord.gz")] = b"defg"
    gcs.objects[("bkt", "train-part0010.tfrecord.gz")] = b"another export's file, same leading characters"
    gcs.objects[("bkt", "train-part001_old.tfrecord.gz")] = b"an unrelated file"
    gcs.objects[("bkt", "other.csv")] = b"x"
    paths = monitor.wait_and_download(
        [started("OPE", "train-part000"), started("OPE", "train-part001")], tmp_path / "dl", client=gcs, poll_seconds=0, sleep=no_sleep
    )
    assert sorted(p.name for p in paths) == ["train-part000.tfrecord.gz", "train-part001.tfrecord.gz"]
    assert (tmp_path / "dl" / "train-part001.tfrecord.gz").read_bytes() == b"defg"
    assert not (tmp_path / "dl" / "train-part0010.tfrecord.gz").exists()
    assert not (tmp_path / "dl" / "train-part001_old.tfrecord.gz").exists()
    # an image export's shards and mixer are its files; a bare prefix match would also take 'img-old-mixer.json'
    for name in ("img-00000.tfrecord.gz", "img-00001.tfrecord.gz", "img-mixer.json", "img-old-mixer.json"):
        gcs.objects[("bkt", name)] = b"1"
    names = sorted(p.name for p in monitor.download_gcs_prefix("bkt", "img", tmp_path / "img", client=gcs))
    assert names == ["img-00000.tfrecord.gz", "img-00001.tfrecord.gz", "img-mixer.json"]
    with pytest.raises(GeoDLError, match="holds no file"):
        monitor.download_gcs_prefix("bkt", "nothing", tmp_path / "dl", client=gcs)


def test_monitor_runs_in_geodl_task(ee_session, gcs, tmp_path, qtbot):
    from qgis.core import QgsApplication

    from geodl_plugin.tasks import GeoDLTask

    ee_session.set_operation_states("OPF", "PENDING", "RUNNING", "SUCCEEDED")
    gcs.objects[("bkt", "img-00000.tfrecord.gz")] = b"123"
    results, errors = [], []
    task = GeoDLTask(
        "Earth Engine export",
        work=lambda progress: monitor.wait_and_download(
            [started("OPF", "img")], tmp_path / "out", client=gcs, progress=progress, poll_seconds=0.01
        ),
        on_done=results.append,
        on_error=errors.append,
    )
    QgsApplication.taskManager().addTask(task)
    qtbot.waitUntil(lambda: bool(results or errors), timeout=10000)
    assert not errors
    assert [p.name for p in results[0]] == ["img-00000.tfrecord.gz"]


def test_failed_task_in_geodl_task_reports_error(ee_session, qtbot):
    from qgis.core import QgsApplication

    from geodl_plugin.tasks import GeoDLTask

    ee_session.set_operation_states("OPG", ("FAILED", "User memory limit exceeded."))
    results, errors = [], []
    task = GeoDLTask(
        "EE watch",
        work=lambda progress: monitor.wait_for_tasks(["OPG"], progress, poll_seconds=0.01),
        on_done=results.append,
        on_error=errors.append,
    )
    QgsApplication.taskManager().addTask(task)
    qtbot.waitUntil(lambda: bool(results or errors), timeout=10000)
    assert "User memory limit exceeded." in errors[0]
