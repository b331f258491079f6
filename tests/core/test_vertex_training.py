"""The Vertex AI custom-job path, built and checked offline: the package holds the Qt-free core and its entry
point trains a model from sample TFRecords in a fresh process with no QGIS module imported; the job spec has
the fields Vertex AI's CustomJob takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest


def _samples(path):
    from geodl_plugin.core.io.tfrecord import write_examples

    rng = np.random.default_rng(0)
    records = []
    for i in range(120):
        label = i % 2 + 1
        records.append(
            {
                "B1": np.array([rng.normal(label, 0.3)], np.float32),
                "B2": np.array([rng.normal(-label, 0.3)], np.float32),
                "class": np.array([label], np.float32),
                "x": np.array([500000 + 10 * (i % 12)], np.float32),
                "y": np.array([7000000 - 10 * (i // 12)], np.float32),
            }
        )
    write_examples(path, records)
    return path


@pytest.mark.slow
def test_package_trains_in_a_fresh_process_without_qgis(tmp_path):
    from geodl_plugin.core.models.model_file import read_manifest
    from geodl_plugin.core.vertex_training import MODULE, build_package

    package = build_package(tmp_path / "dist")
    with tarfile.open(package) as tar:
        names = tar.getnames()
        tar.extractall(tmp_path / "src")
    assert any(n.endswith("geodl_plugin/core/train/trainer.py") for n in names)
    assert not any("/gui/" in n or "/processing/" in n for n in names)
    src = tmp_path / "src" / package.name.removesuffix(".tar.gz")
    assert (src / "setup.py").exists()
    samples = _samples(tmp_path / "samples.tfrecord.gz")
    script = (
        "import runpy, sys\n"
        f"sys.argv = ['{MODULE}', '--samples={samples}', '--model-type=rf', '--epochs=1']\n"
        "try:\n"
        f"    runpy.run_module('{MODULE}', run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qgis', 'PyQt5', 'PyQt6'))\n"
        "assert not bad, bad\n"
        "assert sys.modules['geodl_plugin'].__file__.startswith(%r)\n" % str(src)
    )
    env = {**os.environ, "PYTHONPATH": str(src), "AIP_MODEL_DIR": str(tmp_path / "model_dir")}
    (tmp_path / "model_dir").mkdir()
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = read_manifest(tmp_path / "model_dir" / "model.geodl")
    assert manifest["mlm:architecture"] == "rf" and manifest["mlm:input"][0]["bands"] == ["B1", "B2"]


def test_job_spec_and_commands(tmp_path):
    from geodl_plugin.core.runtime.errors import GeoDLError
    from geodl_plugin.core.vertex_training import MODULE, gcs_to_fuse, job_spec, submit_commands, write_job

    spec = job_spec(
        "geodl-train",
        "gs://bkt/pkg/geodl-trainer-0.1.0.tar.gz",
        ["gs://bkt/train/train-00000-of-00002.tfrecord.gz", "gs://bkt/train/train-00001-of-00002.tfrecord.gz"],
        "gs://bkt/jobs/run1",
        model_type="unet",
        epochs=30,
    )
    pool = spec["jobSpec"]["workerPoolSpecs"][0]
    assert pool["machineSpec"]["acceleratorCount"] == 1 and pool["replicaCount"] == "1"
    package = pool["pythonPackageSpec"]
    assert package["pythonModule"] == MODULE and package["executorImageUri"].startswith("us-docker.pkg.dev/vertex-ai/training/tf-gpu")
    assert "--model-type=unet" in package["args"] and "--epochs=30" in package["args"]
    assert spec["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"] == "gs://bkt/jobs/run1"
    path = write_job(tmp_path, spec)
    assert json.loads(path.read_text())["workerPoolSpecs"][0]["pythonPackageSpec"]["pythonModule"] == MODULE
    assert "custom-jobs create" in submit_commands("dist/p.tar.gz", path, "gs://bkt/p.tar.gz", "proj", "us-central1")[1]
    assert gcs_to_fuse("gs://bkt/a/b.tfrecord.gz") == "/gcs/bkt/a/b.tfrecord.gz"
    with pytest.raises(GeoDLError, match="gs://"):
        job_spec("x", "gs://bkt/p.tar.gz", ["/home/me/samples.tfrecord.gz"], "gs://bkt/out")
