"""A representative subset through qgis_process.bin against the packaged plugin: the exit status, the message
printed once and without a traceback, the inputs intact, nothing left on disk, no process left; Ctrl+C, SIGTERM
and SIGKILL in the middle of a run; a full disk (a tiny tmpfs in a private mount namespace)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.core.synthetic import ORIGIN, PIXEL, write_points, write_raster

from .conftest import digest, listing, scene_array, stage

pytestmark = pytest.mark.slow
BIG = 400  # pixels a side of the raster the interrupted runs work on


@pytest.fixture(scope="module")
def big(tmp_path_factory, world):
    """A 400×400 scene (tiled from the small one, band names kept) and 1,500 points on it: extraction of 41×41
    patches takes seconds, long enough to interrupt."""
    from osgeo import gdal

    root = tmp_path_factory.mktemp("big")
    data = np.tile(scene_array(), (1, BIG // 48 + 1, BIG // 48 + 1))[:, :BIG, :BIG]
    write_raster(root / "big.tif", data, nodata=0)
    ds = gdal.Open(str(root / "big.tif"), gdal.GA_Update)
    for i, name in enumerate(("B2", "B3", "B4"), start=1):
        ds.GetRasterBand(i).SetDescription(name)
    ds = None
    rng = np.random.default_rng(1)
    cells = rng.integers(25, BIG - 25, (1500, 2))
    xy = [(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL) for r, c in cells]
    names = [("water", "tree", "crop", "developed")[(r % 48 >= 24) * 2 + (c % 48 >= 24)] for r, c in cells]
    write_points(root / "bigpoints.gpkg", xy, names)
    return root


def _args(alg, params):
    return ["run", f"geodl:{alg}", "--"] + [f"{k}={v}" for k, v in params.items()]


def _tagged_env(qgis_process):
    tag = uuid.uuid4().hex
    return {**qgis_process.env, "GEODL_FAULT_TAG": tag}, tag


def _processes_with(tag: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if f"GEODL_FAULT_TAG={tag}".encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


def _refused(qgis_process, alg, params, message, inputs, folder, prefix=()):
    inputs = [Path(p) for p in inputs]
    before, files = digest(inputs), listing(folder)
    env, tag = _tagged_env(qgis_process)
    done = subprocess.run(
        [*prefix, "/usr/bin/qgis_process.bin", *_args(alg, params)], capture_output=True, text=True, env=env, timeout=300, cwd=folder
    )
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert message in text, text
    lines = [line for line in text.splitlines() if message in line]
    # Once as the error, plus the echo of QGIS's message log on stderr (qgis_process logs every feedback error);
    # before, QGIS printed a failing algorithm's exception text three times.
    assert [line.startswith("ERROR:") for line in lines].count(True) == 1 and len(lines) <= 2, f"the message must be reported once:\n{text}"
    assert "Traceback" not in text, text
    assert digest(inputs) == before
    assert listing(folder) == files, set(listing(folder)) ^ set(files)
    assert not _processes_with(tag)
    return text


def test_qp_predict_over_its_own_input(qgis_process, world, tmp_path):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    _refused(
        qgis_process,
        "predict",
        {"INPUT": "scene.tif", "MODEL": "rf.geodl", "OUTPUT": "scene.tif"},
        "writing it would destroy the input",
        d.values(),
        tmp_path,
    )


def test_qp_extract_over_the_labels(qgis_process, world, tmp_path):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    _refused(
        qgis_process,
        "extractsamples",
        {"INPUT": d["scene.tif"], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": d["points.gpkg"]},
        "writing it would destroy the input",
        d.values(),
        tmp_path,
    )


def test_qp_mistyped_model_path(qgis_process, world, tmp_path):
    d = stage(world, tmp_path, "scene.tif")
    _refused(
        qgis_process,
        "predict",
        {"INPUT": d["scene.tif"], "MODEL": tmp_path / "modle.geodl", "OUTPUT": tmp_path / "c.tif"},
        "modle.geodl' does not exist",
        d.values(),
        tmp_path,
    )


def test_qp_invalid_hidden_units(qgis_process, world, tmp_path):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    _refused(
        qgis_process,
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "PIXEL_DNN_HIDDEN_UNITS": "64,0", "OUTPUT": tmp_path / "m.geodl"},
        "Hidden units '64,0' must be positive whole numbers",
        d.values(),
        tmp_path,
    )


def _start(qgis_process, alg, params, cwd):
    env, tag = _tagged_env(qgis_process)
    proc = subprocess.Popen(
        ["/usr/bin/qgis_process.bin", *_args(alg, params)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd
    )
    return proc, tag


def _wait_for(predicate, timeout=120.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _parts(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".part" in p.name]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_qp_signal_during_extraction_leaves_nothing(qgis_process, big, tmp_path, signum):
    inputs = [big / "big.tif", big / "bigpoints.gpkg"]
    before = digest(inputs)
    proc, tag = _start(
        qgis_process,
        "extractsamples",
        {
            "INPUT": big / "big.tif",
            "LABELS": big / "bigpoints.gpkg",
            "CLASS_FIELD": "name",
            "PATCH_SIZE": 41,
            "OUTPUT": tmp_path / "s.tfrecord.gz",
        },
        tmp_path,
    )
    assert _wait_for(lambda: _parts(tmp_path)), "extraction never started writing"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    assert f"Interrupted ({signal.Signals(signum).name}); nothing was written." in out, out
    assert "Traceback" not in out, out
    assert listing(tmp_path) == [], listing(tmp_path)
    assert digest(inputs) == before
    assert not _processes_with(tag)


def test_qp_sigkill_during_prediction_leaves_nothing(qgis_process, big, world, tmp_path):
    """qgis_process killed outright: its worker sees the pipe close, cancels its job (removing its temporary
    files) and ends."""
    inputs = [big / "big.tif", world / "rf.geodl"]
    before = digest(inputs)
    proc, tag = _start(
        qgis_process,
        "predict",
        {"INPUT": big / "big.tif", "MODEL": world / "rf.geodl", "OUTPUT_PROBABILITIES": tmp_path / "p.tif", "OUTPUT": tmp_path / "c.tif"},
        tmp_path,
    )
    assert _wait_for(lambda: _parts(tmp_path)), "prediction never started writing"
    proc.kill()
    proc.communicate(timeout=60)
    assert _wait_for(lambda: not _processes_with(tag), timeout=60), "the worker outlived qgis_process"
    assert listing(tmp_path) == [], listing(tmp_path)
    assert digest(inputs) == before


def _tmpfs_prefix(mount: Path, size: str):
    """Run inside a private user+mount namespace with a tiny tmpfs on ``mount`` (no root needed)."""
    return ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} none "{mount}" && exec "$0" "$@"']


def test_qp_full_disk_is_refused_up_front_at_extraction(qgis_process, big, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    text = _refused(
        qgis_process,
        "extractsamples",
        {
            "INPUT": big / "big.tif",
            "LABELS": big / "bigpoints.gpkg",
            "CLASS_FIELD": "name",
            "PATCH_SIZE": 41,
            "OUTPUT": full / "s.tfrecord.gz",
        },
        "The disk is full",
        [big / "big.tif"],
        tmp_path,
        prefix=_tmpfs_prefix(full, "256k"),
    )
    assert " MB needed, 0 MB free" in text


def test_qp_disk_filling_up_during_prediction(qgis_process, big, world, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    shutil.copy(world / "rf.geodl", tmp_path / "rf.geodl")
    text = _refused(
        qgis_process,
        "predict",
        {"INPUT": big / "big.tif", "MODEL": tmp_path / "rf.geodl", "OUTPUT_PROBABILITIES": full / "p.tif", "OUTPUT": full / "c.tif"},
        "The disk is full",
        [big / "big.tif", tmp_path / "rf.geodl"],
        tmp_path,
        prefix=_tmpfs_prefix(full, "8k"),
    )
    assert "TIFFAppendToStrip" not in text and "scanline" not in text
