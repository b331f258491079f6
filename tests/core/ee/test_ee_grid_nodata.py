"""Earth Engine data right to the pixel, through the real earthengine-api client and the strict transport:
masked pixels stay nodata (downloads, image exports, training exports → samples → model), one aligned UTM
grid recorded in the samples and the model, strict JSON (the NaN-nodata upload), Cloud Storage with the Earth
Engine credentials, exact bucket matching, and the Landsat saturation mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodl_plugin.core.earthengine import composites, download, exports, monitor, session, upload
from geodl_plugin.core.earthengine.exports import Destination, LabelledPoint, TrainingExportParams
from geodl_plugin.core.earthengine.grid import NODATA, aligned_grid, region_grid
from tests.core.ee.conftest import NotStrictJSON, strict_json

REGION = (10.0, 45.0, 10.02, 45.01)


def s2(**kw):
    return composites.CompositeParams(region=REGION, start="2023-06-01", end="2023-09-01", **kw)


def test_strict_json_rejects_what_the_server_rejects():
    assert strict_json(b'{"values": [-9999.0]}') == {"values": [-9999.0]}
    for bad in (b'{"values": [NaN]}', b'{"v": Infinity}', b'{"v": -Infinity}'):
        with pytest.raises(NotStrictJSON):
            strict_json(bad)


def test_the_transport_refuses_a_nan_the_real_client_sends(ee_session):
    """What the upload used to send: the client serialises NaN (Python's json allows it); the strict transport,
    like the server, refuses it — every EE test runs with this transport."""
    import ee

    manifest = {
        "name": "projects/test-project/assets/x",
        "tilesets": [{"sources": [{"uris": ["gs://b/x.tif"]}]}],
        "missingData": {"values": [float("nan")]},
    }
    with pytest.raises(AssertionError, match="NaN in a request body"):  # NotStrictJSON (conftest's own copy)
        ee.data.startIngestion(ee.data.newTaskId()[0], manifest)
    assert ee_session.strict_errors and "image:import" in ee_session.strict_errors[0]
    ee_session.strict_errors.clear()  # seen and expected here; any other test fails on one


def test_nan_nodata_upload_sends_strict_json_and_a_finite_copy(ee_session, gcs, tmp_path):
    """A float raster with nodata NaN (e.g. a confidence map): the manifest used to carry
    "missingData": {"values": [NaN]}, which is not JSON. Now the bucket gets a copy with the sentinel."""
    path = tmp_path / "confidence.tif"
    data = np.array([[0.9, np.nan], [0.4, 0.7]], np.float32)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        crs="EPSG:32632",
        transform=from_origin(600000, 5000000, 10, 10),
        nodata=float("nan"),
    ) as ds:
        ds.write(data[None])
    before = path.read_bytes()
    upload.upload_geotiff(path, "geodl/conf", "bkt", "up", client=gcs, pyramiding="MEAN")
    assert path.read_bytes() == before  # the input is never changed
    ((_m, _u, body),) = ee_session.calls("image:import")  # parsed strictly by the transport
    assert body["imageManifest"]["missingData"] == {"values": [NODATA]}
    copy = tmp_path / "copy.tif"
    copy.write_bytes(gcs.objects[("bkt", "up/confidence.tif")])
    with rasterio.open(copy) as src:
        assert src.nodata == NODATA
        np.testing.assert_array_equal(src.read(1), np.array([[0.9, NODATA], [0.4, 0.7]], np.float32))
    with pytest.raises(Exception, match="finite"):
        upload.image_manifest("projects/p/assets/a", ["gs://b/a.tif"], ["b1"], missing_data=float("nan"))


def test_download_marks_masked_pixels_nodata_on_an_aligned_utm_grid(ee_session, tmp_path):
    # masked (cloudy in every scene) where column % 7 == 3: NPY has no mask, so without a fill they are 0.0
    ee_session.masked = lambda grid: (
        (np.indices((grid["dimensions"]["height"], grid["dimensions"]["width"]))[1] + round(grid["affineTransform"]["translateX"] / 10)) % 7
        == 3
    )
    params = download.DownloadParams.for_region(["B4", "B8"], REGION, 10.0, tile_size=32, backoff_seconds=0)
    assert params.crs == "EPSG:32632"  # the region's UTM zone, not EPSG:3857 with "metres"
    out = download.download_composite(s2(), params, tmp_path / "s2.tif")
    with rasterio.open(out) as src:
        assert src.nodata == NODATA and src.crs.to_epsg() == 32632
        assert src.transform.c % 10 == 0 and src.transform.f % 10 == 0  # whole pixels of the 10 m grid
        data = src.read()
        cols = np.arange(src.width) + round(src.transform.c / 10)
    masked = np.broadcast_to(cols % 7 == 3, data.shape[1:])
    assert (data[:, masked] == NODATA).all() and (data[:, ~masked] != NODATA).all()
    calls = ee_session.calls(":computePixels")
    assert len(calls) > 1
    for _m, _u, body in calls:
        t = body["grid"]["affineTransform"]
        assert t["translateX"] % 10 == 0 and t["translateY"] % 10 == 0
        assert ee_session.unmask_values(body["expression"]) == [NODATA]
        assert '"sameFootprint": {"constantValue": false}' in json.dumps(body["expression"])


def test_unaligned_bounds_snap_outward_to_whole_pixels():
    grid = aligned_grid("EPSG:32632", (500003.7, 4999991.0, 500096.2, 5000004.9), 10.0)
    assert (grid.x0, grid.y0, grid.width, grid.height) == (500000.0, 5000010.0, 10, 2)
    assert grid.crs_transform == [10.0, 0.0, 500000.0, 0.0, -10.0, 5000010.0]
    params = download.DownloadParams(["B4"], "EPSG:32632", (500003.7, 4999991.0, 500096.2, 5000004.9), 10.0)
    assert params.grid() == (10, 2) and params.transform().c == 500000.0 and params.transform().f == 5000010.0
    assert region_grid((-70.0, -33.5, -69.9, -33.4), 30.0).crs == "EPSG:32719"  # southern hemisphere


def test_training_export_samples_on_the_grid_and_nodata_reaches_the_model(ee_session, gcs, tmp_path):
    """The table export samples in the download's projection (not the composite's default grid rescaled);
    masked pixels arrive as the sentinel, the downloaded samples get a sidecar with the grid and nodata, the
    samples touching nodata are left out, and the model manifest records the grid."""
    from geodl_plugin.core.data.samples import load_samples
    from geodl_plugin.core.families import train_model
    from geodl_plugin.core.io.tfrecord import write_examples
    from geodl_plugin.core.models.model_file import read_manifest
    from geodl_plugin.core.train.trainer import TrainParams

    rng = np.random.default_rng(3)
    points = [LabelledPoint(10.001 + 0.018 * rng.random(), 45.001 + 0.008 * rng.random(), i % 2) for i in range(60)]
    image = composites.build_composite(s2())
    patches = TrainingExportParams(
        bands=["B4", "B8"], scale=10, patch_size=3, destination=Destination("gcs", "bkt", prefix="geodl/patches")
    )
    exports.export_training_samples(image, points, patches)
    params = TrainingExportParams(bands=["B4", "B8"], scale=10, destination=Destination("gcs", "bkt", prefix="geodl/train"))
    (started,) = exports.export_training_samples(image, points, params)
    patch_body, body = [r[2] for r in ee_session.requests if r[1].split("?")[0].endswith("table:export")]
    # patches: masked neighbours become the sentinel too (neighborhoodToArray's defaultValue), not 0
    assert "Image.neighborhoodToArray" in ee_session.function_names(patch_body["expression"])
    assert '"defaultValue": {"constantValue": -9999.0}' in json.dumps(patch_body["expression"])
    text = json.dumps(body["expression"])
    expected = region_grid(
        (
            min(p.x for p in points) - 0.001,
            min(p.y for p in points) - 0.001,
            max(p.x for p in points) + 0.001,
            max(p.y for p in points) + 0.001,
        ),
        10,
    )
    assert '"crs": {"constantValue": "EPSG:32632"}' in text
    assert json.dumps(expected.crs_transform)[1:-1].replace(" ", "") in text.replace(" ", "")
    assert '"scale"' not in text  # no rescaled default grid
    assert ee_session.unmask_values(body["expression"]) == [NODATA]
    assert started.sidecar["nodata"] == NODATA and started.sidecar["pixel_size"] == [10.0, 10.0]

    # What Earth Engine writes for that request: one Example per point, masked pixels as the unmask value.
    fill = ee_session.unmask_values(body["expression"])[0]
    records = []
    for i in range(60):
        label = i % 2
        pixel = rng.normal(0.1 + 0.2 * label, 0.02, size=2).astype(np.float32)
        if i % 10 == 0:
            pixel[:] = fill  # cloudy in every scene
        records.append({"B4": pixel[:1], "B8": pixel[1:], "class": float(label)})
    write_examples(tmp_path / "ee.tfrecord.gz", records)
    gcs.objects[("bkt", "geodl/train.tfrecord.gz")] = (tmp_path / "ee.tfrecord.gz").read_bytes()
    gcs.objects[("bkt", "geodl/train_old.tfrecord.gz")] = b"not this export's"
    paths = monitor.wait_and_download([started], tmp_path / "dl", client=gcs, poll_seconds=0, sleep=lambda s: None)
    assert [p.name for p in paths] == ["train.tfrecord.gz"]
    sidecar = json.loads((tmp_path / "dl" / "train.tfrecord.gz.json").read_text())
    assert sidecar["bands"] == ["B4", "B8"] and sidecar["patch_size"] == 1 and sidecar["nodata"] == NODATA
    samples = load_samples(paths)
    assert len(samples) == 54 and (samples.x != NODATA).all()  # the 6 masked ones are left out

    model = tmp_path / "m.geodl"
    train_model(TrainParams(samples=[str(p) for p in paths], output=str(model), family="rf", options={"n_trees": 10}, split="random"))
    raster = read_manifest(model)["raster"]
    assert rasterio.crs.CRS.from_wkt(raster["crs_wkt"]).to_epsg() == 32632
    assert raster["pixel_size"] == [10.0, 10.0] and raster["nodata"] == NODATA


def test_image_export_on_the_utm_grid_with_masked_pixels_filled(ee_session):
    params = exports.ImageExportParams(bands=["B4"], region=REGION, scale=10, destination=Destination("gcs", "bkt", prefix="img/x"))
    started = exports.export_image_patches(composites.build_composite(s2()), params)
    ((_m, _u, body),) = [r for r in ee_session.requests if r[1].split("?")[0].endswith("image:export")]
    text = json.dumps(body["expression"])
    grid = region_grid(REGION, 10)
    assert grid.crs == "EPSG:32632" and "EPSG:32632" in text and 'EPSG:4326"}, "transform' not in text
    assert json.dumps(grid.crs_transform)[1:-1].replace(" ", "") in text.replace(" ", "")
    assert ee_session.unmask_values(body["expression"]) == [NODATA]
    assert started.kind == "image" and started.sidecar["nodata"] == NODATA


def test_landsat_masks_saturated_pixels(ee_session):
    params = composites.CompositeParams(REGION, "2022-01-01", "2023-01-01", sensor="landsat", bands=("SR_B4", "SR_B5"))
    assert composites.radsat_mask_bits(params.band_list()) == (1 << 3) | (1 << 4) | (1 << 11)
    composites.map_tile_url(composites.build_composite(params), composites.default_vis(params))
    ((_m, _u, body),) = ee_session.calls("/maps")
    text = json.dumps(body["expression"])
    assert "QA_RADSAT" in text and str((1 << 3) | (1 << 4) | (1 << 11)) in text
    assert "Image.and" in ee_session.function_names(body["expression"])


def _service_account_key(path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test-project",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "geodl@test-project.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def test_cloud_storage_uses_the_earth_engine_service_account(fake_ee, gcs, monkeypatch, tmp_path):
    from google.cloud import storage

    key = _service_account_key(tmp_path / "key.json")
    state = session.connect("test-project", key_file=str(key), http_transport=fake_ee, max_retries=0)
    assert "geodl@test-project" in state.account
    made = []

    def client(*args, **kwargs):
        made.append(kwargs)
        return gcs

    monkeypatch.setattr(storage, "Client", client)
    gcs.objects[("bkt", "x.tfrecord.gz")] = b"1"
    monitor.download_gcs_prefix("bkt", "x", tmp_path / "dl")  # no client given: the session's
    upload.copy_to_gcs([key], "bkt", "keys")
    assert len(made) == 2
    for kwargs in made:
        assert kwargs["project"] == "test-project"
        assert kwargs["credentials"].service_account_email == "geodl@test-project.iam.gserviceaccount.com"


def test_nan_confidence_on_an_export_grid_uploads_with_finite_missing_data(ee_session, gcs, tmp_path):
    """The mixer path of the upload: NaN pixels become the sentinel in the TFRecord and are declared missing."""
    from geodl_plugin.core.earthengine import mixer as mx
    from geodl_plugin.core.io.tfrecord import read_examples

    grid = mx.Mixer("EPSG:32632", (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 2, 2, 2, 2)
    mixer_path = tmp_path / "exp-mixer.json"
    mixer_path.write_text(json.dumps(grid.to_json()))
    conf = tmp_path / "conf.tif"
    data = np.array([[0.5, np.nan, 0.9, 0.8], [0.6, 0.7, np.nan, 0.1]], np.float32)
    with rasterio.open(
        conf,
        "w",
        driver="GTiff",
        width=4,
        height=2,
        count=1,
        dtype="float32",
        crs="EPSG:32632",
        transform=grid.transform(),
        nodata=float("nan"),
    ) as ds:
        ds.write(data[None])
    assert mx.upload_nodata(conf) == NODATA
    records = mx.raster_to_upload_tfrecord(conf, mixer_path, tmp_path / "exp.tfrecord.gz", ["confidence"])
    values = np.concatenate([e["confidence"] for e in read_examples(records)])
    assert np.isfinite(values).all() and (values == NODATA).sum() == 2
    upload.upload_predictions(
        records, mixer_path, "geodl/conf", "bkt", ["confidence"], pyramiding="MEAN", client=gcs, missing_data=mx.upload_nodata(conf)
    )
    ((_m, _u, body),) = ee_session.calls("image:import")
    assert body["imageManifest"]["missingData"] == {"values": [NODATA]}
