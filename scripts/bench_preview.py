"""Time the Map step's canvas-extent preview for a 1000×1000 view with the pixel (DNN) model.

Prints seconds: ``in-process`` (the model kept loaded in this process) and ``worker`` (what the
dock does: the persistent worker process, started with TensorFlow when the plugin loads, so the first
preview includes loading and compiling the model).
Usage: python scripts/bench_preview.py [--raster R --model M] [--size 1000] [--repeats 3]
Without --raster/--model it writes a synthetic 3-band scene and trains a 3-epoch DNN first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _synthetic(work: Path, size: int) -> tuple[str, str]:
    import numpy as np
    import rasterio
    from osgeo import ogr
    from rasterio.transform import from_origin

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.data.labels import POINT, LabelSet
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import train_model
    from geodl_plugin.core.io.raster import raster_info
    from geodl_plugin.core.train.trainer import TrainParams

    rng = np.random.default_rng(0)
    raster = work / "scene.tif"
    left = (np.arange(size) < size // 2)[None, :].repeat(size, axis=0)
    data = np.stack([np.where(left, d, b) + rng.normal(0, 60, (size, size)) for d, b in ((300, 1800), (400, 2200), (200, 2600))])
    with rasterio.open(
        raster,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint16",
        crs="EPSG:32633",
        transform=from_origin(500000, 4100000, 10, 10),
        tiled=True,
    ) as ds:
        ds.write(data.clip(0, 65535).astype("uint16"))
    wkbs, ids = [], []
    for i in range(400):
        cls = i % 2
        col = rng.uniform(5, size / 2 - 5) + cls * size / 2
        g = ogr.Geometry(ogr.wkbPoint)
        g.AddPoint_2D(500000 + col * 10, 4100000 - rng.uniform(5, size - 5) * 10)
        wkbs.append(bytes(g.ExportToWkb()))
        ids.append(cls + 1)
    labels = LabelSet(ClassTable.from_names(["field", "water"]), np.array(ids), wkbs, raster_info(raster).crs_wkt, POINT)
    extract_samples([raster], labels, work / "samples.tfrecord")
    model = work / "model.geodl"
    train_model(TrainParams(samples=[str(work / "samples.tfrecord")], output=str(model), epochs=3, batch_size=64))
    return str(raster), str(model)


def time_preview(
    rasters: list[str], model: str, extent: tuple, width: int, height: int, out_dir: Path, repeats: int = 3, in_worker: bool = False
) -> list[float]:
    """Seconds per preview, exactly as the dock runs it (in-process: the first includes loading the model,
    later ones reuse it; in the worker: the dock's persistent worker)."""
    import time

    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.predict.preview import preview_params
    from geodl_plugin.core.runtime.worker import run_in_worker

    seconds = []
    for n in range(repeats):
        started = time.perf_counter()
        params = preview_params(rasters, model, extent, width, height, out_dir / f"run{n}")
        if in_worker:
            run_in_worker(predict_raster, params, persistent=True)
        else:
            predict_raster(params)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raster")
    parser.add_argument("--model")
    parser.add_argument("--size", type=int, default=1000, help="view width and height in screen pixels")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-worker", action="store_true", help="skip the worker-process timing")
    args = parser.parse_args()

    from geodl_plugin.core.io.raster import raster_info

    with tempfile.TemporaryDirectory(prefix="geodl-bench-") as tmp:
        work = Path(tmp)
        raster, model = (args.raster, args.model) if args.raster and args.model else _synthetic(work, args.size)
        info = raster_info(raster)
        a, _, c, _, e, f = info.transform
        # a view of size×size screen pixels over the raster's top-left corner, one raster pixel per screen pixel
        n = min(args.size, info.width, info.height)
        extent = (c, f + e * n, c + a * n, f)
        seconds = time_preview([raster], model, extent, args.size, args.size, work / "inproc", args.repeats)
        print(f"preview {n}x{n} px, in-process (model kept loaded): first {seconds[0]:.2f} s, then {min(seconds[1:] or seconds):.2f} s")
        if not args.no_worker:
            import time

            from geodl_plugin.core.runtime.dependencies import describe_training_device
            from geodl_plugin.core.runtime.worker import run_in_worker, shutdown_shared_worker

            # What the plugin does when QGIS starts: the device probe starts the worker and TensorFlow.
            started = time.perf_counter()
            run_in_worker(describe_training_device, persistent=True)
            warm_up = time.perf_counter() - started
            worker = time_preview([raster], model, extent, args.size, args.size, work / "worker", args.repeats, in_worker=True)
            shutdown_shared_worker()
            print(
                f"preview {n}x{n} px, the dock's persistent worker (goal < 2 s): first {worker[0]:.2f} s (model "
                f"load and compilation included), then {min(worker[1:] or worker):.2f} s; starting the worker "
                f"and TensorFlow, done once when QGIS starts, takes {warm_up:.2f} s before that"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
