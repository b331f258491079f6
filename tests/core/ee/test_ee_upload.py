"""A classified GeoTIFF on any grid back into Earth Engine as an image asset: copied to the bucket (a small
fake), ingested through the real earthengine-api client against the fake transport."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodl_plugin.core.earthengine import upload
from geodl_plugin.core.runtime.errors import GeoDLError


def class_map(path, driver="GTiff"):
    data = np.array([[0, 1, 2, 255]] * 4, np.uint8)
    with rasterio.open(
        path,
        "w",
        driver=driver,
        width=4,
        height=4,
        count=1,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(600000, 5000000, 10, 10),
        nodata=255,
    ) as ds:
        ds.write(data[None])
        ds.set_band_description(1, "class")
    return path


def test_geotiff_upload_copies_the_file_and_ingests_it_with_mode_and_nodata(ee_session, gcs, tmp_path):
    tif = class_map(tmp_path / "classified.tif")
    task_id = upload.upload_geotiff(tif, "geodl/landcover", "my-bucket", "runs/1", client=gcs)
    assert task_id
    assert gcs.objects[("my-bucket", "runs/1/classified.tif")] == tif.read_bytes()
    ((_method, _uri, body),) = ee_session.calls("image:import")
    manifest = body["imageManifest"]
    assert manifest["name"] == "projects/test-project/assets/geodl/landcover"
    assert manifest["tilesets"] == [{"id": "ts", "sources": [{"uris": ["gs://my-bucket/runs/1/classified.tif"]}]}]
    assert manifest["bands"] == [{"id": "class", "tilesetId": "ts", "tilesetBandIndex": 0}]
    assert manifest["pyramidingPolicy"] == "MODE" and manifest["missingData"] == {"values": [255]}


def test_geotiff_upload_bad_input_fails_before_copying(ee_session, gcs, tmp_path):
    tif = class_map(tmp_path / "classified.tif")
    with pytest.raises(GeoDLError, match="not a valid asset id"):
        upload.upload_geotiff(tif, "bad id!", "my-bucket", client=gcs)
    with pytest.raises(GeoDLError, match="bucket"):
        upload.upload_geotiff(tif, "geodl/x", "  ", client=gcs)
    with pytest.raises(GeoDLError, match="2 band name.* for the 1 band"):
        upload.upload_geotiff(tif, "geodl/x", "my-bucket", band_names=["a", "b"], client=gcs)
    img = class_map(tmp_path / "classified.img", driver="HFA")
    with pytest.raises(GeoDLError, match="HFA raster; Earth Engine ingests GeoTIFF"):
        upload.upload_geotiff(img, "geodl/x", "my-bucket", client=gcs)
    assert gcs.objects == {} and not ee_session.calls("image:import")


def test_band_ids_from_descriptions():
    assert upload.band_ids(["class", "confidence (highest class probability)", "p(water)", None, "9x"]) == [
        "class",
        "confidence",
        "p_water",
        "b4",
        "b5",
    ]


def test_upload_algorithm_sends_a_geotiff_without_a_mixer(ee_session, gcs, monkeypatch, tmp_path, qgis_processing):
    import processing
    from google.cloud import storage

    from geodl_plugin.processing.algorithms.ee_upload import EEUploadAlgorithm

    monkeypatch.setattr(storage, "Client", lambda *a, **k: gcs)
    tif = class_map(tmp_path / "classified.tif")
    alg = EEUploadAlgorithm()
    alg.initAlgorithm()
    out = processing.run(
        alg, {"INPUT": str(tif), "PROJECT": "test-project", "ASSET_ID": "geodl/from_processing", "BUCKET": "my-bucket", "PREFIX": "p"}
    )
    assert out["TASK_ID"]
    assert ("my-bucket", "p/classified.tif") in gcs.objects
    ((_m, _u, body),) = ee_session.calls("image:import")
    assert body["imageManifest"]["name"] == "projects/test-project/assets/geodl/from_processing"
