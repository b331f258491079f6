"""Composites and batch exports: the real client's requests, recorded by the fake transport."""

from __future__ import annotations

import json

import pytest

from geodl_plugin.core.earthengine import composites, exports
from geodl_plugin.core.earthengine.exports import Destination, LabelledPoint, TrainingExportParams
from geodl_plugin.core.runtime.errors import GeoDLError

REGION = (10.0, 45.0, 10.1, 45.1)


def s2(**kw):
    return composites.CompositeParams(region=REGION, start="2023-06-01", end="2023-09-01", **kw)


def points(n):
    return [LabelledPoint(10.01 + i * 1e-4, 45.05, i % 3) for i in range(n)]


def exports_of(fake, kind):
    return [r for r in fake.requests if r[1].split("?")[0].endswith(f"{kind}:export")]


def test_pixel_training_export_request(ee_session):
    image = composites.build_composite(s2(cloud_mask="scl", indices=("NDVI",)))
    params = TrainingExportParams(bands=["B4", "B8", "NDVI"], scale=10, destination=Destination("gcs", "my-bucket", prefix="geodl/train"))
    started = exports.export_training_samples(image, points(10), params)
    assert len(started) == 1 and started[0].task_id
    ((method, uri, body),) = exports_of(ee_session, "table")
    assert method == "POST"
    opts = body["fileExportOptions"]
    assert opts["fileFormat"] == "TF_RECORD_TABLE"
    assert opts["cloudStorageDestination"] == {"bucket": "my-bucket", "filenamePrefix": "geodl/train"}
    assert body["selectors"] == ["B4", "B8", "NDVI", "class"]
    names = ee_session.function_names(body["expression"])
    assert {
        "Image.sampleRegions",
        "Image.toFloat",
        "Image.remap",
        "Image.updateMask",
        "Image.normalizedDifference",
    } <= names
    assert "Image.neighborhoodToArray" not in names


def test_patch_training_export_uses_neighborhood_to_array(ee_session):
    image = composites.build_composite(s2())  # Cloud Score+
    params = TrainingExportParams(
        bands=["B2", "B3", "B4"],
        scale=10,
        patch_size=5,
        destination=Destination("drive", folder="geodl", prefix="patches"),
    )
    exports.export_training_samples(image, points(4), params)
    ((_, _, body),) = exports_of(ee_session, "table")
    assert body["fileExportOptions"]["fileFormat"] == "TF_RECORD_TABLE"
    assert body["fileExportOptions"]["driveDestination"]["folder"] == "geodl"
    names = ee_session.function_names(body["expression"])
    assert {
        "Image.neighborhoodToArray",
        "Kernel.square",
        "Image.sampleRegions",
        "Image.linkCollection",
        "Image.gte",
    } <= names


def test_large_sample_set_is_split_under_limits(ee_session):
    image = composites.build_composite(s2())
    params = TrainingExportParams(
        bands=["B2", "B3"],
        scale=10,
        patch_size=3,
        max_values_per_export=18 * 40,
        destination=Destination("gcs", "bkt", prefix="big"),
    )
    assert params.points_per_export() == 40
    started = exports.export_training_samples(image, points(100), params)
    assert [s.prefix for s in started] == ["big-part000", "big-part001", "big-part002"]
    bodies = [b for _, _, b in exports_of(ee_session, "table")]
    assert len(bodies) == 3
    counts = [str(b["expression"]).count("GeometryConstructors.Point") for b in bodies]
    assert counts == [40, 40, 20]
    assert len({s.task_id for s in started}) == 3


def test_empty_sample_set_is_refused(ee_session):
    image = composites.build_composite(s2())
    params = TrainingExportParams(bands=["B2"], scale=10, destination=Destination("gcs", "bkt"))
    with pytest.raises(GeoDLError, match="no labelled points"):
        exports.export_training_samples(image, [], params)
    assert not exports_of(ee_session, "table")


def test_image_export_request(ee_session):
    image = composites.build_composite(composites.CompositeParams(REGION, "2022-01-01", "2023-01-01", sensor="landsat"))
    params = exports.ImageExportParams(
        bands=["SR_B4", "SR_B5"],
        region=REGION,
        scale=30,
        crs="EPSG:32632",
        patch_size=128,
        kernel_size=32,
        max_file_size=50_000_000,
        max_pixels=1_000_000_000,
        destination=Destination("gcs", "bkt", prefix="img/x"),
    )
    started = exports.export_image_patches(image, params)
    ((_, uri, body),) = exports_of(ee_session, "image")
    opts = body["fileExportOptions"]
    assert opts["fileFormat"] == "TF_RECORD_IMAGE"
    tf = opts["tfRecordOptions"]
    assert tf["tileDimensions"] == {"width": 128, "height": 128}
    assert tf["marginDimensions"] == {"width": 32, "height": 32}
    assert tf["compress"] is True
    assert tf["maxSizeBytes"] == {"value": "50000000"}
    assert body["maxPixels"] == {"value": "1000000000"}
    assert "EPSG:32632" in json.dumps(body["expression"])  # the client folds crs/scale/region into the expression
    names = ee_session.function_names(body["expression"])
    assert {"Image.bitwiseAnd", "ImageCollection.merge", "Image.toFloat"} <= names  # QA_PIXEL mask, L8+L9
    assert started.prefix == "img/x"


def test_composite_validation_and_tile_url(ee_session):
    with pytest.raises(GeoDLError, match="not after"):
        s2(indices=()).__class__(REGION, "2023-06-01", "2023-05-01").validate()
    with pytest.raises(GeoDLError, match="do not exist"):
        s2(bands=("SR_B4",)).validate()
    with pytest.raises(GeoDLError, match="odd"):
        TrainingExportParams(bands=["B2"], scale=10, patch_size=4, destination=Destination("gcs", "bkt")).validate()
    params = s2()
    url = composites.map_tile_url(composites.build_composite(params), composites.default_vis(params))
    assert url.endswith("/tiles/{z}/{x}/{y}") and "/maps/" in url
    ((_, uri, body),) = [r for r in ee_session.requests if "/maps" in r[1]]
    assert "Image.visualize" in ee_session.function_names(body["expression"])
    assert composites.xyz_layer_uri(url).startswith("type=xyz&url=https://earthengine.googleapis.com/")
