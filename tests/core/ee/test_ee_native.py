"""Earth Engine-native classification: the pixel DNN and the random forest compiled to Earth Engine expressions,
proven equal to the model's own prediction by evaluating the serialised request with NumPy, every call checked
against the algorithm signatures bundled in earthengine-api, and the export/tile requests driven through the
real client with the fake transport."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import function_names  # tests/core/ee, on sys.path (rootdir-less test modules)
from ee_signatures import signature_errors

ee = pytest.importorskip("ee")

BANDS = ["B2", "B3", "B4", "NDVI"]
IDS = [1, 2, 5, 7]  # sparse ids: the expression must give the model's ids, not positions
ASSET = "projects/test-project/assets/composite"
MEAN = np.array([0.08, 0.1, 0.12, 0.4])
STD = np.array([0.03, 0.04, 0.05, 0.2])


def _samples(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, len(BANDS))) * STD + MEAN).astype(np.float32)


def _labels(x: np.ndarray) -> np.ndarray:
    z = (x - MEAN) / STD
    return np.clip(np.floor(z[:, 0] + 0.5 * z[:, 3] + 2.0), 0, 3).astype(int)


def _bundle(tmp_path, model, arch: str, dtype: str = "float32"):
    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import load_model_file, make_manifest, save_model_file

    classes = ClassTable.from_ids(IDS)
    manifest = make_manifest(
        name=f"t-{arch}",
        architecture=arch,
        bands=BANDS,
        classes=classes,
        mean=MEAN,
        std=STD,
        source_dtype=dtype,
        nodata=None,
        pixel_size=[10, 10],
        crs_wkt="",
        crs_units="m",
    )
    path = tmp_path / f"{arch}.geodl"
    save_model_file(path, model, manifest)
    return load_model_file(path)


@pytest.fixture(scope="module")
def dnn_model():
    import keras

    from geodl_plugin.core.models.networks import build_pixel_dnn

    keras.utils.set_random_seed(3)
    model = build_pixel_dnn(len(BANDS), len(IDS), MEAN, STD**2, hidden_units=(16, 8), dropout=0.2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = _samples(600, 1)
    model.fit(x, _labels(x), epochs=3, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="module")
def forest_model():
    from geodl_plugin.core.models.networks import fit_random_forest

    x = _samples(400, 2)
    y = _labels(x)
    y[::7] = (y[::7] + 1) % 4  # label noise: some leaves stay mixed at the depth limit
    return fit_random_forest(x, y, len(IDS), n_trees=12, max_depth=6, seed=0)


def _inputs(x: np.ndarray) -> dict:
    return {ASSET: {b: x[:, i] for i, b in enumerate(BANDS)}}


def _encoded(image):
    return ee.serializer.encode(image, for_cloud_api=True)


def _evaluate(bundle, x, probabilities=True):
    from geodl_plugin.core.earthengine import native, native_eval

    compiled = native.ee_classifier_for(bundle)
    encoded = _encoded(compiled.apply(ee.Image(ASSET), probabilities=probabilities))
    assert signature_errors(encoded) == []
    return encoded, native_eval.evaluate_expression(encoded, _inputs(x))


def test_dnn_expression_equals_the_keras_model(ee_session, tmp_path, dnn_model):
    bundle = _bundle(tmp_path, dnn_model, "dnn")
    x = _samples(400, 9)
    encoded, out = _evaluate(bundle, x)
    assert {"Image.matrixMultiply", "Image.toArray", "Image.exp", "Image.arrayArgmax", "Image.remap"} <= function_names(encoded)
    probs = bundle.predict_proba(x)
    ee_probs = np.stack([out[f"p_{c}"] for c in IDS], axis=1)
    np.testing.assert_allclose(ee_probs, probs, atol=2e-6)
    expected = np.array(IDS)[probs.argmax(axis=1)]
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5  # float32 (Keras) vs double (EE) can only swap near-ties
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(out["class"][clear], expected[clear])
    assert len(set(out["class"].tolist())) >= 3  # the sample pixels really exercise several classes
    np.testing.assert_allclose(out["confidence"], probs.max(axis=1), atol=2e-6)


def test_forest_expression_equals_the_forest_exactly(ee_session, tmp_path, forest_model):
    bundle = _bundle(tmp_path, forest_model, "rf")
    x = _samples(500, 11)
    encoded, out = _evaluate(bundle, x)
    assert {"Classifier.decisionTreeEnsemble", "Classifier.setOutputMode", "Image.classify"} <= function_names(encoded)
    assert any(0 < p < 1 for p in forest_model.proba[forest_model.left < 0].ravel())  # soft leaves exist
    classified = bundle.classify(x, probabilities=True)
    np.testing.assert_array_equal(out["class"], np.array(IDS)[classified.index])
    np.testing.assert_allclose(out["confidence"], classified.confidence, atol=1e-6)
    np.testing.assert_allclose(np.stack([out[f"p_{c}"] for c in IDS], 1), classified.probabilities, atol=1e-6)


def test_pure_forest_votes_in_one_raw_ensemble(ee_session, tmp_path):
    """Trees grown until pure (geodl's default): one RAW-mode ensemble of class votes, K× smaller, same answer."""
    from geodl_plugin.core.earthengine import native
    from geodl_plugin.core.models.networks import fit_random_forest

    x = _samples(300, 21)
    forest = fit_random_forest(x, _labels(x), len(IDS), n_trees=15, max_depth=20, seed=1)
    assert native.pure_leaves(forest)
    bundle = _bundle(tmp_path, forest, "rf")
    xs = _samples(500, 22)
    encoded, out = _evaluate(bundle, xs)
    assert "RAW" in str(encoded) and "Image.eq" in function_names(encoded)
    classified = bundle.classify(xs, probabilities=True)
    np.testing.assert_array_equal(out["class"], np.array(IDS)[classified.index])
    np.testing.assert_allclose(np.stack([out[f"p_{c}"] for c in IDS], 1), classified.probabilities, atol=1e-6)
    votes = sum(map(len, native.NativeModel("rf", BANDS, IDS, forest=forest).vote_strings()))
    per_class = sum(len(t) for k in range(len(IDS)) for t in native.forest_tree_strings(forest, BANDS, k))
    assert per_class > 3 * votes


def test_tree_strings_round_trip_thresholds_and_numbering(forest_model):
    from geodl_plugin.core.earthengine.native import forest_tree_strings
    from geodl_plugin.core.earthengine.native_eval import parse_tree

    trees = forest_tree_strings(forest_model, BANDS, 0)
    assert len(trees) == 12
    nodes = parse_tree(trees[0])
    assert trees[0].startswith("1) root ")
    root = int(forest_model.roots[0])
    band, op, threshold, _, leaf = nodes[2]
    assert (band, op, leaf) == (BANDS[forest_model.feature[root]], "<=", False) or leaf
    assert threshold == forest_model.threshold[root]  # the exact double, no rounding in the text
    assert nodes[3][1] == ">"
    n_leaves = sum(1 for v in nodes.values() if v[4])
    end = int(forest_model.roots[1])
    assert n_leaves == int((forest_model.left[root:end] < 0).sum())


def test_refusals_name_the_problem(ee_session, tmp_path, forest_model):
    from geodl_plugin.core.earthengine import native
    from geodl_plugin.core.earthengine.classification import compile_model
    from geodl_plugin.core.runtime.errors import GeoDLError

    bundle = _bundle(tmp_path, forest_model, "rf")
    with pytest.raises(GeoDLError, match="trained on the bands"):
        compile_model(bundle, ["B2", "B3", "B4"])
    with pytest.raises(GeoDLError, match="trained on the bands"):
        compile_model(bundle, ["B3", "B2", "B4", "NDVI"])
    (tmp_path / "dn").mkdir()
    dn = _bundle(tmp_path / "dn", forest_model, "rf", dtype="uint16")  # trained on integer DNs
    with pytest.raises(GeoDLError, match="reflectance"):
        compile_model(dn, BANDS)
    bundle.manifest["mlm:architecture"] = "unet"
    with pytest.raises(GeoDLError, match="Vertex AI"):
        native.ee_classifier_for(bundle)
    bundle.manifest["mlm:architecture"] = "rf"
    image = native.ee_classifier_for(bundle).apply(ee.Image(ASSET))
    old = native.MAX_REQUEST_BYTES
    native.MAX_REQUEST_BYTES = 1000
    try:
        with pytest.raises(GeoDLError, match="fewer or shallower trees"):
            native.check_request_size(image)
    finally:
        native.MAX_REQUEST_BYTES = old


def test_classification_export_to_asset_and_gcs(ee_session, tmp_path, dnn_model):
    from geodl_plugin.core.earthengine import monitor
    from geodl_plugin.core.earthengine.classification import ClassifyParams, start_classification
    from geodl_plugin.core.earthengine.exports import Destination

    bundle = _bundle(tmp_path, dnn_model, "dnn")
    region = (-10.0, 35.0, 5.0, 44.0)  # about Spain: far past one machine at 10 m
    params = ClassifyParams(region=region, scale=10, output="asset", asset_id="projects/test-project/assets/map")
    started = start_classification(bundle, ee.Image(ASSET), BANDS, params)
    method, uri, body = ee_session.calls("image:export")[-1]
    assert method == "POST" and signature_errors(body) == []
    assert body["assetExportOptions"]["earthEngineDestination"]["name"] == "projects/test-project/assets/map"
    assert body["assetExportOptions"]["pyramidingPolicyOverrides"] == {"class": "MODE", "confidence": "MEAN"}
    assert int(body["maxPixels"]["value"]) >= params.pixels()
    assert "Image.matrixMultiply" in function_names(body["expression"])
    status = monitor.wait_for_tasks([started.operation], poll_seconds=0)
    assert status[0].state == "SUCCEEDED"

    # The GeoTIFF export: one integer type for both bands, evaluated on sample pixels.
    gcs = ClassifyParams(region=region, scale=10, output="gcs", destination=Destination(bucket="bkt", prefix="maps/spain"))
    start_classification(bundle, ee.Image(ASSET), BANDS, gcs)
    _, _, body = ee_session.calls("image:export")[-1]
    assert signature_errors(body) == []
    options = body["fileExportOptions"]
    assert options["fileFormat"] == "GEO_TIFF" and options["cloudStorageDestination"]["bucket"] == "bkt"
    from geodl_plugin.core.earthengine.native_eval import evaluate_expression

    x = _samples(50, 4)
    out = evaluate_expression(body["expression"], _inputs(x))
    probs = bundle.predict_proba(x)
    assert out["class"].dtype == np.uint8 and out["confidence"].dtype == np.uint8
    assert set(out["class"].tolist()) <= set(IDS)
    np.testing.assert_allclose(out["confidence"], np.round(probs.max(axis=1) * 100), atol=1)


def test_tile_url_for_a_quick_look(ee_session, tmp_path, forest_model):
    from geodl_plugin.core.earthengine.classification import classification_tile_url

    bundle = _bundle(tmp_path, forest_model, "rf")
    url = classification_tile_url(bundle, ee.Image(ASSET), BANDS)
    assert "{z}" in url or "tiles" in url
    _, _, body = ee_session.calls("/maps")[-1]
    assert signature_errors(body) == []
    assert "Classifier.decisionTreeEnsemble" in function_names(body)


S2 = ["B2", "B3", "B4", "B8", "B11", "B12"]


def _s2_forest_file(tmp_path, dtype="float32"):
    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.networks import fit_random_forest

    rng = np.random.default_rng(5)
    x = rng.random((200, len(S2))).astype(np.float32) * 0.4
    forest = fit_random_forest(x, (x[:, 3] > 0.2).astype(int), 2, n_trees=5, max_depth=4)
    manifest = make_manifest(
        name="s2-rf",
        architecture="rf",
        bands=S2,
        classes=ClassTable.from_ids([3, 8]),
        mean=x.mean(0),
        std=x.std(0),
        source_dtype=dtype,
        nodata=None,
        pixel_size=[10, 10],
        crs_wkt="",
        crs_units="m",
    )
    return str(save_model_file(tmp_path / "s2.geodl", forest, manifest))


def test_processing_algorithm_classifies_a_region_inside_earth_engine(ee_session, tmp_path, qgis_processing):
    import processing
    from qgis.core import QgsProcessingException

    from geodl_plugin.processing.algorithms.ee_classify import EEClassifyAlgorithm

    params = {
        "MODEL": _s2_forest_file(tmp_path),
        "PROJECT": "test-project",
        "EXTENT": "-9.5,3.3,36.0,43.8 [EPSG:4326]",
        "SENSOR": 0,
        "START": "2023-05-01",
        "END": "2023-09-01",
        "SCALE": 10,
        "CRS": "EPSG:3035",
        "OUTPUT": 0,
        "ASSET_ID": "projects/test-project/assets/spain_rf",
        "WAIT": True,
        "LOAD": False,
    }
    alg = EEClassifyAlgorithm()
    alg.initAlgorithm()
    result = processing.run(alg, params)
    assert result["TASK_ID"].startswith("OP") and "tiles" in result["TILE_URL"]
    ((_, _, body),) = ee_session.calls("image:export")
    assert signature_errors(body) == []
    names = function_names(body["expression"])
    assert {"Classifier.decisionTreeEnsemble", "ImageCollection.load", "Image.classify"} <= names
    assert ee_session.calls("/operations/", "GET")  # watched until it ended

    # Another composite than the model's: refused with the reason, nothing started.
    alg = EEClassifyAlgorithm()
    alg.initAlgorithm()
    with pytest.raises(QgsProcessingException, match="trained on the bands"):
        processing.run(alg, {**params, "INDICES": [0]})
    assert len(ee_session.calls("image:export")) == 1


@pytest.mark.slow
def test_dnn_weights_come_from_the_worker_exactly(tmp_path, dnn_model):
    from geodl_plugin.core.earthengine.native import dnn_weights, native_model_from_file

    bundle = _bundle(tmp_path, dnn_model, "dnn")
    shell, compiled = native_model_from_file(bundle.path, in_worker=True)  # TensorFlow stays out of this process
    reference = dnn_weights(dnn_model)
    assert shell.model is None and compiled.class_ids == IDS
    np.testing.assert_array_equal(compiled.dnn.mean, reference.mean)
    for got, want in zip(compiled.dnn.layers, reference.layers):
        np.testing.assert_array_equal(got.kernel, want.kernel)
        assert got.activation == want.activation


def test_dock_map_step_classifies_the_region_in_earth_engine(ee_session, qgis_iface, qgis_new_project, qgis_canvas, qtbot, tmp_path):
    from qgis.core import QgsCoordinateReferenceSystem, QgsGeometry, QgsRectangle
    from qgis.PyQt.QtCore import QDate

    from geodl_plugin import settings
    from geodl_plugin.gui.dock import GeoDLDock

    settings.set_value("ee_project", "test-project")
    dock = GeoDLDock(None, iface=qgis_iface, project=qgis_new_project, canvas=qgis_canvas)
    qtbot.addWidget(dock)
    panel = dock.ee_classify_panel
    assert panel is not None
    assert panel.classify() is None and "model" in dock.messageLabel.text()
    dock.mapping.modelFileWidget.setFilePath(_s2_forest_file(tmp_path))
    dock.region.set_region(QgsGeometry.fromRect(QgsRectangle(10.0, 45.0, 12.0, 46.5)), QgsCoordinateReferenceSystem("EPSG:4326"))
    dock.ee_panel.startEdit.setDate(QDate(2023, 6, 1))
    dock.ee_panel.endEdit.setDate(QDate(2023, 8, 1))
    panel.assetEdit.setText("geodl/dock_rf")
    panel.waitCheck.setChecked(True)
    assert panel.classify() is not None
    qtbot.waitUntil(lambda: panel.task is None, timeout=60000)
    assert panel.task_id, panel.statusLabel.text()
    ((_, _, body),) = ee_session.calls("image:export")
    assert body["assetExportOptions"]["earthEngineDestination"]["name"] == "projects/test-project/assets/geodl/dock_rf"
    assert signature_errors(body) == []
    assert any(layer.name() == "EE classification" for layer in qgis_new_project.mapLayers().values())
    dock.disconnect_project()
