"""The same trainer as a Vertex AI custom job, for users who want a cloud GPU.

:func:`build_package` writes a source distribution of ``geodl_plugin`` holding only ``core/`` (plus the
package's ``__init__`` and ``paths``: no Qt, no QGIS) with ``python -m geodl_plugin.core.vertex_training``
as the entry point; :func:`job_spec` writes the ``CustomJob`` body (a prebuilt TensorFlow training image runs
the package) and :func:`submit_commands` the ``gcloud`` lines that upload and start it. On the worker,
``gs://bucket/path`` is read and written through Vertex AI's Cloud Storage FUSE mount, ``/gcs/bucket/path``,
so the trainer's ordinary file paths work unchanged, and the model file lands in ``AIP_MODEL_DIR``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tarfile
from pathlib import Path
from typing import Any, Optional, Sequence

from .io.atomic import atomic_path
from .runtime.errors import GeoDLError

PACKAGE = "geodl-trainer"
MODULE = "geodl_plugin.core.vertex_training"
# Prebuilt Vertex AI training images (Python 3.10, TensorFlow 2.17 with Keras 3).
GPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-gpu.2-17.py310:latest"
CPU_IMAGE = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"


def gcs_to_fuse(uri: str) -> str:
    """gs://bucket/path → /gcs/bucket/path (Vertex AI mounts Cloud Storage there); other paths unchanged."""
    return "/gcs/" + uri[len("gs://") :] if uri.startswith("gs://") else uri


def build_package(output_dir: str | os.PathLike, version: str = "0.1.0") -> Path:
    """``geodl-trainer-<version>.tar.gz`` with setup.py and the Qt-free core; written atomically."""
    root = Path(__file__).resolve().parents[1]  # geodl_plugin/
    name = f"{PACKAGE}-{version}"
    setup = (
        "from setuptools import setup, find_packages\n"
        f"setup(name={PACKAGE!r}, version={version!r}, packages=find_packages(),\n"
        "      install_requires=['numpy<2', 'scikit-learn', 'google-crc32c'])\n"
    )
    files: list[tuple[str, bytes]] = [
        (f"{name}/setup.py", setup.encode()),
        (f"{name}/PKG-INFO", f"Metadata-Version: 1.0\nName: {PACKAGE}\nVersion: {version}\n".encode()),
    ]
    for path in [root / "__init__.py", root / "paths.py", *sorted((root / "core").rglob("*.py"))]:
        if "__pycache__" not in path.parts:
            files.append((f"{name}/geodl_plugin/{path.relative_to(root).as_posix()}", path.read_bytes()))
    from ..paths import metadata_file

    # The plugin's version goes into every manifest the job writes.
    files.append((f"{name}/geodl_plugin/metadata.txt", metadata_file().read_bytes()))
    out = Path(output_dir) / f"{name}.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz") as tar:
        for arcname, data in files:
            info = tarfile.TarInfo(arcname)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out


def job_spec(
    display_name: str,
    package_uri: str,
    samples: Sequence[str],
    output_dir: str,
    model_type: str = "dnn",
    epochs: int = 50,
    gpu: bool = True,
    machine: str = "n1-standard-8",
    accelerator: str = "NVIDIA_TESLA_T4",
) -> dict[str, Any]:
    """The ``CustomJob`` body (REST ``projects.locations.customJobs.create``; also what ``gcloud ai
    custom-jobs create --config`` takes as its ``jobSpec``)."""
    if not package_uri.startswith("gs://") or not output_dir.startswith("gs://"):
        raise GeoDLError("The package and the output folder must be in Cloud Storage (gs://…) for Vertex AI.")
    if not samples or not all(s.startswith("gs://") for s in samples):
        raise GeoDLError("Give the sample TFRecords as gs:// URIs (the Beam pipeline or an Earth Engine export writes them there).")
    machine_spec: dict[str, Any] = {"machineType": machine}
    if gpu:
        machine_spec.update({"acceleratorType": accelerator, "acceleratorCount": 1})
    args = [f"--samples={','.join(samples)}", f"--model-type={model_type}", f"--epochs={int(epochs)}"]
    return {
        "displayName": display_name,
        "jobSpec": {
            "workerPoolSpecs": [
                {
                    "machineSpec": machine_spec,
                    "replicaCount": "1",
                    "pythonPackageSpec": {
                        "executorImageUri": GPU_IMAGE if gpu else CPU_IMAGE,
                        "packageUris": [package_uri],
                        "pythonModule": MODULE,
                        "args": args,
                    },
                }
            ],
            "baseOutputDirectory": {"outputUriPrefix": output_dir},
        },
    }


def submit_commands(package: str | os.PathLike, spec_path: str | os.PathLike, package_uri: str, project: str, region: str) -> list[str]:
    return [
        f"gcloud storage cp {package} {package_uri}",
        f"gcloud ai custom-jobs create --project={project} --region={region} --config={spec_path}",
        f"gcloud ai custom-jobs stream-logs JOB_ID --project={project} --region={region}",
    ]


def write_job(output_dir: str | os.PathLike, spec: dict[str, Any]) -> Path:
    """The spec as the YAML-compatible JSON ``gcloud --config`` reads (its ``jobSpec`` part)."""
    out = Path(output_dir) / "vertex_job.json"
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(spec["jobSpec"], indent=2), encoding="utf-8")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The job's entry point on the Vertex AI worker."""
    parser = argparse.ArgumentParser(prog=MODULE, description="Train a geodl model on Vertex AI.")
    parser.add_argument("--samples", required=True, help="comma-separated TFRecord files (gs:// or local)")
    parser.add_argument("--model-type", default="dnn")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--output", default="", help="model file; default AIP_MODEL_DIR/model.geodl")
    args = parser.parse_args(argv)
    from .families import train_model
    from .train.trainer import TrainParams

    model_dir = os.environ.get("AIP_MODEL_DIR", "")
    output = args.output or (model_dir.rstrip("/") + "/model.geodl" if model_dir else "model.geodl")
    params = TrainParams(
        samples=[gcs_to_fuse(s) for s in args.samples.split(",") if s],
        output=gcs_to_fuse(output),
        family=args.model_type,
        epochs=args.epochs,
    )
    logging.basicConfig(level=logging.INFO)  # the job's log in Vertex AI / Cloud Logging
    result = train_model(params)
    logging.getLogger("geodl").info(
        "geodl model written: %s", json.dumps({"model": output, "metrics": getattr(result, "metrics", {})}, default=str)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
