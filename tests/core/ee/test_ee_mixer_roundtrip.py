"""TFRecord image export + mixer → GeoTIFF → (a stand-in prediction) → upload TFRecord → ingestion request,
checked pixel for pixel and for georeferencing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from geodl_plugin.core.earthengine import mixer as mx
from geodl_plugin.core.earthengine import upload
from geodl_plugin.core.io.tfrecord import TFRecordWriter, read_examples
from geodl_plugin.core.runtime.errors import GeoDLError

PW, PH, PER_ROW, TOTAL, KERNEL = 4, 3, 3, 6, 2  # 2 rows of 3 patches of 4×3 px, 1 px margin each side
AFFINE = [30.0, 0.0, 600000.0, 0.0, -30.0, 5000000.0]
BANDS = ["B4", "B8"]


def truth() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.random((len(BANDS), 2 * PH, PER_ROW * PW)).astype(np.float32)


def write_fake_export(folder, prefix="exp", total=TOTAL, files=2):
    """What EE writes: core patches + KERNEL/2 margin (overlapping the neighbours, padding 0 at the edges),
    split across several sorted files, and the mixer."""
    data = truth()
    half = KERNEL // 2
    padded = np.pad(data, ((0, 0), (half, half), (half, half)))
    records = []
    for index in range(total):
        row, col = divmod(index, PER_ROW)
        y, x = row * PH, col * PW
        patch = padded[:, y : y + PH + KERNEL, x : x + PW + KERNEL]
        records.append({b: patch[i].ravel() for i, b in enumerate(BANDS)})
    per_file = -(-len(records) // files)
    for f in range(files):
        with TFRecordWriter(folder / f"{prefix}-{f:05d}.tfrecord.gz") as w:
            for rec in records[f * per_file : (f + 1) * per_file]:
                w.write(rec)
    mixer = {
        "projection": {"crs": "EPSG:32633", "affine": {"doubleMatrix": AFFINE}},
        "patchDimensions": [PW, PH],
        "patchesPerRow": PER_ROW,
        "totalPatches": TOTAL,
    }
    (folder / f"{prefix}-mixer.json").write_text(json.dumps(mixer))
    return data


def test_round_trip_export_geotiff_prediction_upload(ee_session, gcs, tmp_path):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    data = write_fake_export(export_dir)

    tif = mx.export_to_geotiff(export_dir, tmp_path / "composite.tif")  # kernel inferred from record length
    with rasterio.open(tif) as src:
        assert (src.width, src.height, src.count) == (PER_ROW * PW, 2 * PH, 2)
        assert src.crs.to_epsg() == 32633
        assert src.transform.almost_equals(rasterio.Affine(*AFFINE))
        assert list(src.descriptions) == BANDS
        np.testing.assert_array_equal(src.read(), data)
        profile = src.profile

    # stand-in for the model: class 1 where B8 > B4, else 0 (per pixel, numpy)
    with rasterio.open(tif) as src:
        pixels = src.read()
    prediction = (pixels[1] > pixels[0]).astype(np.float32)[None]
    pred_tif = tmp_path / "prediction.tif"
    profile.update(count=1)
    with rasterio.open(pred_tif, "w", **profile) as dst:
        dst.write(prediction)

    upload_file = mx.raster_to_upload_tfrecord(pred_tif, export_dir / "exp-mixer.json", tmp_path / "preds.tfrecord", band_names=["class"])
    records = list(read_examples(upload_file))
    assert len(records) == TOTAL
    for index, rec in enumerate(records):
        row, col = divmod(index, PER_ROW)
        want = prediction[0, row * PH : (row + 1) * PH, col * PW : (col + 1) * PW].ravel()
        np.testing.assert_array_equal(rec["class"], want)  # margins cropped, mixer order

    task_id = upload.upload_predictions(
        upload_file,
        export_dir / "exp-mixer.json",
        "geodl/preds",
        "my-bucket",
        ["class"],
        prefix="uploads/run1",
        client=gcs,
    )
    assert task_id
    assert gcs.objects[("my-bucket", "uploads/run1/preds.tfrecord")] == upload_file.read_bytes()
    assert ("my-bucket", "uploads/run1/exp-mixer.json") in gcs.objects
    ((method, uri, body),) = [r for r in ee_session.requests if "image:import" in r[1]]
    manifest = body["imageManifest"]
    assert manifest["name"] == "projects/test-project/assets/geodl/preds"
    assert manifest["pyramidingPolicy"] == "MODE"
    assert manifest["tilesets"][0]["sources"][0]["uris"] == [
        "gs://my-bucket/uploads/run1/preds.tfrecord",
        "gs://my-bucket/uploads/run1/exp-mixer.json",
    ]
    assert manifest["bands"] == [{"id": "class", "tilesetId": "ts", "tilesetBandIndex": 0}]


def test_patch_count_mismatch_names_both_numbers(tmp_path):
    write_fake_export(tmp_path, total=5)  # one patch short of the mixer's 6
    mixer = json.loads((tmp_path / "exp-mixer.json").read_text())
    mixer["totalPatches"] = 6
    (tmp_path / "exp-mixer.json").write_text(json.dumps(mixer))
    with pytest.raises(GeoDLError, match="totalPatches = 6") as info:
        mx.export_to_geotiff(tmp_path, tmp_path / "out.tif")
    assert "5 patches" in str(info.value)
    assert not (tmp_path / "out.tif").exists()


def test_prediction_off_the_grid_is_refused(tmp_path):
    write_fake_export(tmp_path)
    m = mx.read_mixer(tmp_path / "exp-mixer.json")
    with pytest.raises(GeoDLError, match="mixer's grid"):
        mx.write_upload_tfrecord(np.zeros((1, 5, 5), np.float32), m, tmp_path / "p.tfrecord", ["class"])
    with pytest.raises(GeoDLError, match="no 'other-mixer.json'|No 'other-mixer.json'"):
        mx.find_export(tmp_path, "other")


def test_asset_names_and_manifest_checks():
    assert upload.asset_name("a/b", "p") == "projects/p/assets/a/b"
    assert upload.asset_name("users/me/x", "p") == "projects/earthengine-legacy/assets/users/me/x"
    with pytest.raises(GeoDLError, match="mixer"):
        upload.image_manifest("projects/p/assets/x", ["gs://b/p.tfrecord"], ["class"])
