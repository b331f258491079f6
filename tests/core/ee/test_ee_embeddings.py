"""Satellite Embeddings as an imagery source, end to end through the real earthengine-api client: download
(computePixels, tiled) → samples → a small pixel model → prediction, on a seeded stand-in in the dataset's
layout, with a patch of pixels that have no embedding kept as nodata all the way to the map."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rasterio

from geodl_plugin.core.earthengine import composites, download
from geodl_plugin.core.earthengine.grid import NODATA, region_grid
from geodl_plugin.core.runtime.errors import GeoDLError
from tests.core.ee.embedding_standin import BANDS, CLASSES, EmbeddingStandIn

REGION = (9.0, 45.0, 9.02, 45.012)  # UTM 32N; about 158 × 135 px at 10 m


def embedding(year=2023, **kw):
    return composites.CompositeParams(region=REGION, start="", end="", sensor="embedding", year=year, **kw)


def test_embedding_source_request_and_validation(ee_session):
    params = embedding()
    assert params.output_bands() == BANDS and params.native_scale() == 10.0
    image = composites.build_composite(params)
    url = composites.map_tile_url(image, composites.default_vis(params))
    assert url.endswith("/tiles/{z}/{x}/{y}")
    ((_, _, body),) = ee_session.calls("/maps")
    text = json.dumps(body["expression"])
    assert "GOOGLE/SATELLITE_EMBEDDING/V1/ANNUAL" in text and "2023-01-01" in text and "2024-01-01" in text
    assert {"ImageCollection.mosaic", "Collection.filter"} <= ee_session.function_names(body["expression"])
    with pytest.raises(GeoDLError, match="2017"):
        embedding(year=2012).validate()
    with pytest.raises(GeoDLError, match="Indices"):
        embedding(indices=("NDVI",)).validate()
    with pytest.raises(GeoDLError, match="do not exist"):
        embedding(bands=("B4",)).validate()


@pytest.mark.slow
def test_embeddings_download_train_predict(ee_session, tmp_path, capsys):
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import predict_raster, train_model
    from geodl_plugin.core.io.raster import raster_info
    from geodl_plugin.core.models.model_file import read_manifest
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.train.trainer import TrainParams
    from tests.core.synthetic import write_points

    grid = region_grid(REGION, 10.0)
    assert grid.crs == "EPSG:32632" and grid.x0 % 10 == 0 and grid.y0 % 10 == 0
    # no embedding in a 12 × 8 px patch near the top-left (as over a data gap)
    mask_box = (grid.x0 + 100, grid.y0 - 120, grid.x0 + 220, grid.y0 - 40)
    standin = EmbeddingStandIn(seed=15, mask_box=mask_box)
    standin.install(ee_session)

    started = time.perf_counter()
    params = embedding()
    dl = download.DownloadParams.for_region(params.output_bands(), REGION, 10.0, tile_size=64, workers=4)
    tif = download.download_composite(params, dl, tmp_path / "emb.tif")
    t_download = time.perf_counter() - started
    calls = ee_session.calls(":computePixels")
    assert len(calls) == 9  # 158 × 135 px in 64-px tiles
    for _m, _u, body in calls:
        assert body["bandIds"] == BANDS and body["grid"]["crsCode"] == "EPSG:32632"
        assert ee_session.unmask_values(body["expression"]) == [NODATA]
        assert (
            download.request_bytes(body["grid"]["dimensions"]["width"], body["grid"]["dimensions"]["height"], 64)
            <= download.MAX_REQUEST_BYTES
        )
    with rasterio.open(tif) as src:
        assert (src.count, src.dtypes[0], src.nodata) == (64, "float32", NODATA)
        assert src.crs.to_epsg() == 32632 and (src.transform.c, src.transform.f) == (grid.x0, grid.y0)
        assert list(src.descriptions) == BANDS
        data = src.read()
        xs, ys = rasterio.transform.xy(src.transform, *np.mgrid[0 : src.height, 0 : src.width], offset="center")
    x, y = np.asarray(xs), np.asarray(ys)
    hole = standin.masked_at(x, y)
    assert hole.sum() == 96 and (data[:, hole] == NODATA).all()
    valid = data[:, ~hole]
    np.testing.assert_allclose(np.linalg.norm(valid, axis=0), 1.0, atol=1e-5)  # unit vectors arrive intact
    np.testing.assert_allclose(np.moveaxis(data, 0, -1)[~hole], standin.vectors_at(x, y)[~hole], atol=1e-6)

    # a few labelled points (seeded), some of them in the hole: those are skipped as nodata
    rng = np.random.default_rng(7)
    n = 240
    px = grid.x0 + (rng.integers(0, grid.width, n) + 0.5) * 10
    py = grid.y0 - (rng.integers(0, grid.height, n) + 0.5) * 10
    px[:6] = mask_box[0] + 15 + 10 * np.arange(6)
    py[:6] = mask_box[3] - 15
    names = [CLASSES[c] for c in standin.classes_at(px, py)]
    points = write_points(tmp_path / "points.gpkg", list(zip(px, py)), names, epsg=32632)
    labels = read_labels(points, "name", target_crs_wkt=raster_info(tif).crs_wkt)
    report = extract_samples([tif], labels, tmp_path / "samples.tfrecord.gz")
    assert report.skipped_nodata >= 6

    t0 = time.perf_counter()
    model = tmp_path / "emb.geodl"
    result = train_model(
        TrainParams(samples=[report.path], output=str(model), options={"hidden_units": (32,)}, epochs=20, patience=20, seed=1)
    )
    t_train = time.perf_counter() - t0
    raster_meta = read_manifest(model)["raster"]
    assert rasterio.crs.CRS.from_wkt(raster_meta["crs_wkt"]).to_epsg() == 32632
    assert list(raster_meta["pixel_size"]) == [10.0, 10.0] and raster_meta["nodata"] == NODATA

    t0 = time.perf_counter()
    out = predict_raster(PredictParams(rasters=[str(tif)], model=str(model), output=str(tmp_path / "map.tif")))
    t_predict = time.perf_counter() - t0
    assert not out.warnings, out.warnings  # same grid: no CRS or pixel-size warning
    with rasterio.open(out.output) as src:
        classified = src.read(1)
        map_nodata = src.nodata
    assert (classified[hole] == map_nodata).all(), "no embedding → nodata in the map"
    ids = {c.name: c.id for c in result_classes(model)}
    truth = np.vectorize(lambda c: ids[CLASSES[c]])(standin.classes_at(x, y))
    accuracy = float((classified[~hole] == truth[~hole]).mean())
    with capsys.disabled():
        print(
            f"\n[embeddings stand-in] {grid.width}x{grid.height} px x 64 bands, {len(calls)} computePixels "
            f"requests; download {t_download:.1f}s, {report.count} samples ({report.skipped_nodata} on nodata "
            f"skipped), train {t_train:.1f}s (test accuracy {result.metrics.overall_accuracy if result.metrics else 'n/a'}), "
            f"predict {t_predict:.1f}s; map vs truth on {int((~hole).sum())} valid px: {accuracy:.3f}; "
            f"{int(hole.sum())} masked px all nodata"
        )
    assert accuracy > 0.9

    # checked at prediction: the same pixels labelled with another CRS are off the training grid
    from geodl_plugin.core.models.model_file import load_model_file
    from geodl_plugin.core.predict.raster_prediction import check_raster_against_model

    other = tmp_path / "other_zone.tif"
    with rasterio.open(tif) as src:
        with rasterio.open(other, "w", **dict(src.profile, crs="EPSG:32633")) as dst:
            dst.write(src.read())
    warnings = check_raster_against_model([raster_info(other)], load_model_file(model))
    assert any("CRS is not the one the model's samples were taken in" in w for w in warnings)


def result_classes(model):
    from geodl_plugin.core.models.model_file import load_model_file

    return list(load_model_file(model).classes)
