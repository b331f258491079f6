"""What the uncertainty outputs cost a prediction: ratios of wall time with entropy and/or margin to without.

A 1000×1000 4-band uint16 raster of noise (the hardest case for compression), a pixel DNN (64 units, 5
classes) loaded once, overviews off, best of ``--repeats`` runs each, in this process.

Usage: ``python scripts/bench_uncertainty.py [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    import rasterio
    from rasterio.transform import from_origin

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.models.model_file import load_model_file, make_manifest, save_model_file
    from geodl_plugin.core.models.networks import build_pixel_dnn
    from geodl_plugin.core.predict.raster_prediction import PredictParams

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = np.random.default_rng(0).integers(500, 3000, (4, 1000, 1000)).astype(np.uint16)
        with rasterio.open(
            d / "r.tif",
            "w",
            driver="GTiff",
            width=1000,
            height=1000,
            count=4,
            dtype="uint16",
            crs="EPSG:32633",
            transform=from_origin(0, 0, 10, 10),
        ) as ds:
            ds.write(data)
        mean, std = np.full(4, 1750.0), np.full(4, 700.0)
        model = build_pixel_dnn(4, 5, mean, std**2, (64,))
        manifest = make_manifest(
            name="bench",
            architecture="dnn",
            model=model,
            bands=list("abcd"),
            classes=ClassTable.from_names(list("vwxyz")),
            mean=mean,
            std=std,
            source_dtype="uint16",
            nodata=None,
            pixel_size=[10, 10],
            crs_wkt="",
            crs_units="metre",
        )
        save_model_file(d / "m.geodl", model, manifest)
        bundle = load_model_file(d / "m.geodl")
        cases = {"none": (), "margin": ("margin",), "entropy+margin": ("entropy", "margin")}

        def run(measures: tuple[str, ...], i: int) -> float:
            params = PredictParams(
                rasters=[str(d / "r.tif")],
                model=str(d / "m.geodl"),
                output=str(d / f"c{i}.tif"),
                overviews=False,
                entropy_output=str(d / f"e{i}.tif") if "entropy" in measures else None,
                margin_output=str(d / f"g{i}.tif") if "margin" in measures else None,
            )
            started = time.perf_counter()
            predict_raster(params, bundle=bundle)
            return time.perf_counter() - started

        for measures in cases.values():  # warm-up: compile the heads
            run(measures, -1)
        best = {name: min(run(m, i) for i in range(args.repeats)) for name, m in cases.items()}
    for name in ("margin", "entropy+margin"):
        sys.stdout.write(f"uncertainty outputs '{name}': {best[name] / best['none']:.2f}x the time of a prediction without them\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
