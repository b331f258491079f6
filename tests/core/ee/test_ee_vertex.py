"""Vertex AI for convolutional models: a SavedModel that answers Earth Engine's SERIALIZED_TF_TENSORS requests
with the Keras model's output (the request built byte by byte as Earth Engine builds it), tiles sized to the
payload limit with the measured receptive-field margin, the fromVertexAi expression checked against the
bundled signatures, the endpoint recorded in the manifest, and the estimate."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ee_signatures import signature_errors

ee = pytest.importorskip("ee")

BANDS = ["B2", "B3", "B4", "B8"]
IDS = [1, 4, 9]


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory):
    import keras

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.unet import build_unet

    keras.utils.set_random_seed(1)
    mean, std = np.array([0.05, 0.08, 0.1, 0.3]), np.array([0.02, 0.03, 0.04, 0.1])
    model = build_unet(len(BANDS), len(IDS), mean, std**2, depth=2, base_filters=4)
    manifest = make_manifest(
        name="unet",
        architecture="unet",
        bands=BANDS,
        classes=ClassTable.from_ids(IDS),
        mean=mean,
        std=std,
        source_dtype="float32",
        nodata=None,
        pixel_size=[10, 10],
        crs_wkt="",
        crs_units="m",
        patch_size=64,
    )
    path = tmp_path_factory.mktemp("vertex") / "unet.geodl"
    save_model_file(path, model, manifest)
    return path, model


def test_tensor_proto_matches_tensorflow():
    import tensorflow as tf

    from geodl_plugin.core.earthengine.vertex import parse_tensor_proto, tensor_proto

    a = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    assert tensor_proto(a) == tf.io.serialize_tensor(tf.constant(a)).numpy()
    b = np.random.default_rng(1).random((3, 4, 2)).astype(np.float32)
    np.testing.assert_array_equal(parse_tensor_proto(tf.io.serialize_tensor(tf.constant(b)).numpy()), b)


def test_tile_plan_is_the_largest_under_the_payload_limit():
    from geodl_plugin.core.earthengine.vertex import MAX_PAYLOAD_BYTES, plan_tiles, request_bytes, response_bytes

    plan = plan_tiles(BANDS, len(IDS), margin=13, divisor=4)
    assert plan.overlap == 16 and plan.tile % 4 == 0
    side = plan.tile + 2 * plan.overlap
    assert max(request_bytes(side, BANDS), response_bytes(side, len(IDS))) <= MAX_PAYLOAD_BYTES
    assert max(request_bytes(side + 8, BANDS), response_bytes(side + 8, len(IDS))) > MAX_PAYLOAD_BYTES
    # The byte count is the real body's size.
    from geodl_plugin.core.earthengine.vertex import ee_request_body

    body = ee_request_body({b: np.zeros((1, side, side), np.float32) for b in BANDS})
    assert len(json.dumps(body)) == request_bytes(side, BANDS)
    twelve = plan_tiles([f"b{i}" for i in range(12)], len(IDS), margin=13, divisor=4)
    assert twelve.tile < plan.tile  # more bands, smaller tiles


@pytest.mark.slow
def test_savedmodel_answers_earth_engine_requests_with_the_keras_output(unet_file, tmp_path):
    import tensorflow as tf

    from geodl_plugin.core.earthengine.vertex import decode_predictions, ee_request_body, export_savedmodel

    path, model = unet_file
    info = export_savedmodel(str(path), str(tmp_path / "saved"))
    assert info["divisor"] == 4 and info["overlap"] >= info["margin"] > 0
    assert info["request_bytes"] <= 1_500_000 and info["response_bytes"] <= 1_500_000

    rng = np.random.default_rng(7)
    side = 48
    patches = (rng.random((2, side, side, len(BANDS))) * 0.3).astype(np.float32)
    body = ee_request_body({b: patches[..., i] for i, b in enumerate(BANDS)})  # as Earth Engine sends it
    served = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    instances = json.loads(json.dumps(body))["instances"]
    outputs = served(**{b: tf.constant([inst[b] for inst in instances]) for b in BANDS})
    response = {"predictions": [s.decode() for s in outputs["output"].numpy()]}
    probs = decode_predictions(json.loads(json.dumps(response)))
    expected = np.asarray(model.predict_on_batch(patches))
    assert probs.shape == (2, side, side, len(IDS))
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_predict_image_request_validates_and_endpoint_is_recorded(ee_session, unet_file, tmp_path):
    import shutil

    from geodl_plugin.core.earthengine.vertex import (
        PAYLOAD_FORMAT,
        deploy_commands,
        endpoint_name,
        estimate,
        plan_tiles,
        record_endpoint,
        vertex_image,
    )
    from geodl_plugin.core.models.model_file import load_model_file, read_manifest
    from geodl_plugin.core.runtime.errors import GeoDLError

    plan = plan_tiles(BANDS, len(IDS), margin=20, divisor=4)
    endpoint = endpoint_name("test-project", "europe-west4", "123")
    image = vertex_image(endpoint, ee.Image("projects/test-project/assets/comp"), BANDS, IDS, plan, "EPSG:32632", 10)
    region = ee.Geometry.Rectangle([10, 45, 10.1, 45.1], "EPSG:4326", False)
    ee.batch.Export.image.toAsset(image, assetId="projects/test-project/assets/unet_map", region=region, scale=10, maxPixels=1e10).start()
    ((_, _, body),) = ee_session.calls("image:export")
    assert signature_errors(body) == []
    text = json.dumps(body["expression"])
    assert "Model.fromVertexAi" in text and "Model.predictImage" in text and PAYLOAD_FORMAT in text
    assert endpoint in text and f"[{plan.tile}, {plan.tile}]" in text and f"[{plan.overlap}, {plan.overlap}]" in text

    commands = deploy_commands("/tmp/saved", "test-project", "europe-west4", "bkt", "unet")
    assert any("gcloud ai endpoints deploy-model" in c for c in commands)

    copy = tmp_path / "copy.geodl"
    shutil.copy(unet_file[0], copy)
    record_endpoint(copy, endpoint, {"tile": plan.tile, "overlap": plan.overlap})
    assert read_manifest(copy)["vertex"]["endpoint"] == endpoint
    assert load_model_file(copy).model is not None  # the model itself is untouched
    with pytest.raises(GeoDLError, match="not a Vertex AI endpoint"):
        record_endpoint(copy, "my-endpoint")

    est = estimate((-10.0, 35.0, 5.0, 44.0), 10.0, plan, seconds_per_tile=0.5)
    assert est.tiles == est.requests > 1000 and est.cost_usd > 0 and "node-hours" in est.text()


@pytest.mark.slow
def test_processing_exports_records_and_classifies_through_the_endpoint(ee_session, unet_file, tmp_path, qgis_processing):
    import shutil

    import processing

    from geodl_plugin.core.models.model_file import read_manifest
    from geodl_plugin.processing.algorithms.ee_classify import EEClassifyAlgorithm
    from geodl_plugin.processing.algorithms.export_savedmodel import ExportSavedModelAlgorithm

    model = tmp_path / "unet.geodl"
    shutil.copy(unet_file[0], model)
    endpoint = "projects/test-project/locations/europe-west4/endpoints/42"
    alg = ExportSavedModelAlgorithm()
    alg.initAlgorithm()
    result = processing.run(
        alg,
        {
            "MODEL": str(model),
            "OUTPUT": str(tmp_path / "saved"),
            "PROJECT": "test-project",
            "REGION": "europe-west4",
            "BUCKET": "bkt",
            "EXTENT": "5.9,45.8,10.5,47.8 [EPSG:4326]",
            "SCALE": 10,
            "CRS": "EPSG:32632",
            "ENDPOINT": endpoint,
        },
    )
    assert (tmp_path / "saved" / "saved_model.pb").exists()
    assert "gcloud ai models upload" in result["COMMANDS"] and "node-hours" in result["ESTIMATE"]
    recorded = read_manifest(model)["vertex"]
    assert recorded["endpoint"] == endpoint and recorded["crs"] == "EPSG:32632"

    alg = EEClassifyAlgorithm()
    alg.initAlgorithm()
    processing.run(
        alg,
        {
            "MODEL": str(model),
            "PROJECT": "test-project",
            "EXTENT": "5.9,45.8,10.5,47.8 [EPSG:4326]",
            "SENSOR": 0,
            "START": "2023-05-01",
            "END": "2023-09-01",
            "BANDS": ",".join(BANDS),
            "SCALE": 10,
            "CRS": "EPSG:32632",
            "OUTPUT": 0,
            "ASSET_ID": "projects/test-project/assets/swiss_unet",
            "LOAD": False,
        },
    )
    ((_, _, body),) = ee_session.calls("image:export")
    assert signature_errors(body) == []
    text = json.dumps(body["expression"])
    assert "Model.fromVertexAi" in text and endpoint in text and f"[{recorded['tile']}, {recorded['tile']}]" in text
