"""The local pipeline's core on small seeded rasters with known answers, and its bad inputs."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from geodl_plugin.core.data.labels import read_labels
from geodl_plugin.core.data.samples import extract_samples, load_samples
from geodl_plugin.core.data.splits import split_blocked
from geodl_plugin.core.evaluate.metrics import area_adjusted_estimates, classification_report
from geodl_plugin.core.families import predict_raster, train_model
from geodl_plugin.core.io.raster import raster_info
from geodl_plugin.core.io.tfrecord import read_examples, write_examples
from geodl_plugin.core.models.model_file import load_model_file, read_manifest
from geodl_plugin.core.predict.raster_prediction import PredictParams
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError
from geodl_plugin.core.runtime.progress import Progress
from geodl_plugin.core.train.trainer import TrainParams
from tests.core.synthetic import ORIGIN, PIXEL, grid_points, two_class_scene, write_points, write_raster


@pytest.fixture
def scene(tmp_path):
    raster = two_class_scene(tmp_path / "scene.tif")
    xy, names = grid_points()
    points = write_points(tmp_path / "points.gpkg", xy, names)
    return raster, points


@pytest.fixture
def samples(scene, tmp_path):
    raster, points = scene
    labels = read_labels(points, "name", target_crs_wkt=raster_info(raster).crs_wkt)
    report = extract_samples([raster], labels, tmp_path / "samples.tfrecord.gz", band_names=["B2", "B3", "B4"])
    return report


def test_tfrecord_is_read_by_tensorflow_and_back(tmp_path):
    import tensorflow as tf

    path = tmp_path / "a.tfrecord.gz"
    write_examples(path, [{"B2": np.arange(9, dtype=np.float32), "class": 2.0}])
    spec = {"B2": tf.io.FixedLenFeature([9], tf.float32), "class": tf.io.FixedLenFeature([], tf.float32)}
    parsed = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset(str(path), "GZIP")]
    assert parsed[0]["B2"].numpy().tolist() == list(range(9)) and parsed[0]["class"].numpy() == 2.0
    with tf.io.TFRecordWriter(str(tmp_path / "b.tfrecord")) as w:
        w.write(
            tf.train.Example(
                features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[1.5, -2.0]))})
            ).SerializeToString()
        )
    assert next(read_examples(tmp_path / "b.tfrecord"))["x"].tolist() == [1.5, -2.0]


def test_truncated_and_corrupt_tfrecord_name_file_and_record(tmp_path):
    path = tmp_path / "s.tfrecord"
    write_examples(path, [{"B": np.ones(4)} for _ in range(3)], compress=False)
    data = path.read_bytes()
    (tmp_path / "cut.tfrecord").write_bytes(data[:-10])
    with pytest.raises(GeoDLError, match=r"cut\.tfrecord: record 2 is truncated"):
        list(read_examples(tmp_path / "cut.tfrecord"))
    bad = bytearray(data)
    bad[20] ^= 0xFF
    (tmp_path / "bad.tfrecord").write_bytes(bytes(bad))
    with pytest.raises(GeoDLError, match=r"bad\.tfrecord: record 0 is corrupt"):
        list(read_examples(tmp_path / "bad.tfrecord"))
    (tmp_path / "gz.tfrecord.gz").write_bytes(gzip.compress(data)[:-30])
    with pytest.raises(GeoDLError, match=r"gz\.tfrecord\.gz"):
        list(read_examples(tmp_path / "gz.tfrecord.gz"))


def test_samples_exclude_nodata_and_carry_classes(samples):
    loaded = load_samples(samples.path)
    assert loaded.bands == ["B2", "B3", "B4"] and loaded.x.shape[1] == 3
    assert loaded.classes.names == ["tree", "water"]
    assert (loaded.x > 0).all(), "nodata pixels must be left out"
    assert samples.skipped_nodata >= 1
    water = loaded.classes.by_name("water").id
    assert loaded.x[loaded.y == water].mean() < 2000 < loaded.x[loaded.y != water].mean()


def test_labels_in_another_crs_are_reprojected(scene, tmp_path):
    raster, _ = scene
    from osgeo import osr

    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(32621)
    dst.ImportFromEPSG(4326)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_ll = osr.CoordinateTransformation(src, dst)
    xy, names = grid_points()
    lonlat = [to_ll.TransformPoint(x, y)[:2] for x, y in xy]
    points = write_points(tmp_path / "ll.gpkg", lonlat, names, epsg=4326)
    labels = read_labels(points, "name", target_crs_wkt=raster_info(raster).crs_wkt)
    assert np.allclose(labels.points_xy(), np.array(xy), atol=0.01)


def test_points_outside_are_skipped_and_counted_then_error_if_none(scene, tmp_path):
    raster, _ = scene
    xy, names = grid_points()
    far = [(x + 1e6, y) for x, y in xy[:5]]
    pts = write_points(tmp_path / "mixed.gpkg", list(xy) + far, list(names) + names[:5])
    labels = read_labels(pts, "name", target_crs_wkt=raster_info(raster).crs_wkt)
    report = extract_samples([raster], labels, tmp_path / "m.tfrecord.gz")
    assert report.skipped_outside == 5 and any("outside" in w for w in report.warnings)
    only_far = read_labels(write_points(tmp_path / "far.gpkg", far, names[:5]), "name")
    with pytest.raises(GeoDLError, match="None of the 5 label points falls inside"):
        extract_samples([raster], only_far, tmp_path / "f.tfrecord.gz")


def test_few_samples_warn_and_single_class_errors(scene, tmp_path):
    raster, _ = scene
    xy, names = grid_points()
    water = next(p for p, n in zip(xy, names) if n == "water" and p[1] < ORIGIN[1] - 6 * PIXEL)
    few = [(x, y) for (x, y), n in zip(xy, names) if n == "tree"] + [water]
    labels = read_labels(write_points(tmp_path / "few.gpkg", few, ["tree"] * (len(few) - 1) + ["water"]), "name")
    report = extract_samples([raster], labels, tmp_path / "few.tfrecord.gz")
    assert any("'water' has only 1 samples" in w for w in report.warnings)
    one = read_labels(write_points(tmp_path / "one.gpkg", xy[:20], ["tree"] * 20), "name")
    with pytest.raises(GeoDLError, match="at least two"):
        extract_samples([raster], one, tmp_path / "one.tfrecord.gz")


def test_unwritable_output_fails_before_work(samples, scene, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would have to be")
    with pytest.raises(GeoDLError, match="Cannot create the folder"):
        TrainParams(samples=[samples.path], output=str(blocker / "models" / "m.geodl")).validate()
    with pytest.raises(GeoDLError, match="is a folder"):
        TrainParams(samples=[samples.path], output=str(tmp_path)).validate()
    raster, _ = scene
    progress_calls = []
    with pytest.raises(GeoDLError, match="Cannot create the folder"):
        predict_raster(
            PredictParams([str(raster)], "unused.geodl", str(blocker / "out" / "c.tif")), Progress(on_progress=progress_calls.append)
        )
    assert progress_calls == [], "no work may start before the output is known to be writable"


def test_blocked_split_keeps_blocks_on_one_side():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1000, (500, 2))
    y = rng.integers(0, 3, 500)
    train, test = split_blocked(y, xy, 100.0, 0.3, seed=1)
    block = lambda i: (int(xy[i, 0] // 100), int(xy[i, 1] // 100), int(y[i]))  # noqa: E731
    assert not {block(i) for i in train} & {block(i) for i in test}
    assert 0.15 < len(test) / 500 < 0.45


@pytest.mark.slow
@pytest.mark.parametrize("model_type", ["dnn", "rf"])
def test_train_and_predict_on_the_input_grid(samples, scene, tmp_path, model_type):
    raster, _ = scene
    model = tmp_path / f"{model_type}.geodl"
    options = {"n_trees": 20} if model_type == "rf" else None
    result = train_model(
        TrainParams(samples=[samples.path], output=str(model), family=model_type, options=options, epochs=30, batch_size=16, split="random")
    )
    assert result.metrics.overall_accuracy >= 0.95
    manifest = read_manifest(model)
    assert manifest["mlm:input"][0]["bands"] == ["B2", "B3", "B4"]
    assert manifest["raster"]["source_dtype"] == "uint16" and manifest["mlm:architecture"] == model_type
    out = predict_raster(PredictParams([str(raster)], str(model), str(tmp_path / "c.tif"), str(tmp_path / "p.tif")))
    import rasterio

    with rasterio.open(out.output) as c, rasterio.open(raster) as src, rasterio.open(out.confidence_output) as p:
        assert (c.transform, c.crs, c.shape) == (src.transform, src.crs, src.shape)
        classes = c.read(1)
        assert (classes[:4, :4] == 255).all(), "nodata must stay nodata"
        truth = np.where(np.arange(64) < 32, 2, 1)[None, :].repeat(64, 0)  # water=2, tree=1 (sorted names)
        assert (classes[4:, :] == truth[4:, :]).mean() > 0.98
        conf = p.read(1)
        assert (conf[:4, :4] == -1).all() and conf[10:, 10:].min() > 0.5
        assert c.colormap(1)[1][:3] == (27, 120, 55)  # 'tree' green from the class table


def test_forest_arrays_match_scikit_learn():
    from sklearn.ensemble import RandomForestClassifier

    from geodl_plugin.core.models.networks import Forest

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1)
    rf = RandomForestClassifier(n_estimators=15, max_depth=6, random_state=0).fit(x, y)
    assert np.allclose(Forest.from_sklearn(rf).predict_proba(x), rf.predict_proba(x), atol=1e-5)


@pytest.mark.parametrize("rows", [0, 1, 16_383, 16_385, 262_144, 262_145 + 40_000])
def test_compiled_class_head_matches_the_plain_model(rows):
    """The argmax/max head (XLA on TensorFlow, rows padded to fixed sizes) gives exactly the plain model's
    answer for every row count, padding never leaking into the result."""
    import keras

    from geodl_plugin.core.models.model_file import ModelBundle
    from geodl_plugin.core.models.networks import build_pixel_dnn

    keras.utils.set_random_seed(0)
    model = build_pixel_dnn(3, 4, [1000.0] * 3, [250.0**2] * 3, hidden_units=(16,))
    x = np.random.default_rng(rows).normal(1000, 300, (rows, 3)).astype(np.float32)
    plain = (
        np.concatenate([np.asarray(model.predict_on_batch(x[i : i + 100_000])) for i in range(0, rows, 100_000)])
        if rows
        else np.empty((0, 4), np.float32)
    )
    got = ModelBundle({}, model).classify(x, probabilities=True)
    assert got.index.dtype == np.uint8 and got.index.shape == got.confidence.shape == (rows,)
    np.testing.assert_allclose(got.probabilities, plain, atol=1e-5)
    np.testing.assert_allclose(got.confidence, plain.max(axis=1), atol=1e-5)
    clear = np.sort(plain, axis=1)[:, -1] - np.sort(plain, axis=1)[:, -2] > 1e-4  # ties may go either way
    assert (got.index == plain.argmax(axis=1))[clear].all()


def test_a_model_xla_cannot_compile_still_predicts(caplog):
    """Where the compiled kernel is unavailable (no numba) and XLA fails on this machine, the same head runs
    without XLA: same answer, one warning."""
    import keras

    from geodl_plugin.core.models.model_file import ModelBundle
    from geodl_plugin.core.models.networks import build_pixel_dnn

    keras.utils.set_random_seed(1)
    model = build_pixel_dnn(3, 2, [0.0] * 3, [1.0] * 3, hidden_units=(8,))
    x = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    bundle = ModelBundle({}, model)
    predictor = bundle._predictor()
    predictor._fused = None  # as without numba: Keras predicts
    head = predictor._head(False)
    assert head.jit_compile, "on the TensorFlow backend the head is XLA-compiled"

    def broken_compile(*_args, **_kwargs):
        raise RuntimeError("XLA compilation failed: no kernel for this CPU (injected)")

    predictor._compiled[False] = broken_compile  # what a failing XLA compilation raises from
    with caplog.at_level("WARNING", logger="geodl"):
        got = bundle.classify(x)
    assert not head.jit_compile and "predicting without it" in caplog.text
    np.testing.assert_array_equal(got.index, np.asarray(model.predict_on_batch(x)).argmax(axis=1))


def _mismatch_model(tmp_path, samples):
    model = tmp_path / "m.geodl"
    train_model(TrainParams(samples=[samples.path], output=str(model), family="rf", options={"n_trees": 5}, split="random"))
    return model


def test_band_count_and_dtype_mismatch_name_both(samples, tmp_path):
    model = _mismatch_model(tmp_path, samples)
    two_bands = write_raster(tmp_path / "two.tif", np.ones((2, 8, 8), np.uint16))
    with pytest.raises(GeoDLError, match=r"2 band\(s\) but the model .* trained on 3 \(B2, B3, B4\)"):
        predict_raster(PredictParams([str(two_bands)], str(model), str(tmp_path / "o.tif")))
    floats = write_raster(tmp_path / "f.tif", np.ones((3, 8, 8), np.float32))
    with pytest.raises(GeoDLError, match="data type is float32 but the model was trained on uint16"):
        predict_raster(PredictParams([str(floats)], str(model), str(tmp_path / "o.tif")))
    assert not (tmp_path / "o.tif").exists()


def test_cancel_leaves_no_partial_output(samples, scene, tmp_path):
    raster, _ = scene
    model = _mismatch_model(tmp_path, samples)
    calls = []
    progress = Progress(is_cancelled=lambda: len(calls) > 2, on_progress=calls.append)
    with pytest.raises(Cancelled):
        predict_raster(PredictParams([str(raster)], str(model), str(tmp_path / "c.tif"), str(tmp_path / "p.tif"), block_size=16), progress)
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tif" or ".part" in p.name) == ["scene.tif"]


def test_model_file_never_runs_code(tmp_path):
    """A model with a Lambda layer (arbitrary Python) is refused by safe mode."""
    import json
    import zipfile

    import keras

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    model.save(tmp_path / "evil.keras")
    path = tmp_path / "evil.geodl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"format": "geodl-model", "format_version": 1}))
        zf.write(tmp_path / "evil.keras", "model.keras")
    with pytest.raises(GeoDLError, match="cannot be loaded safely"):
        load_model_file(path)


def test_metrics_and_area_adjusted_estimates():
    from geodl_plugin.core.data.classes import ClassTable

    classes = ClassTable.from_names(["a", "b"])
    report = classification_report(np.array([1, 1, 1, 2, 2, 2]), np.array([1, 1, 2, 2, 2, 2]), classes)
    assert report.overall_accuracy == pytest.approx(5 / 6)
    assert report.kappa == pytest.approx((5 / 6 - 0.5) / 0.5)
    assert report.per_class["a"].recall == pytest.approx(2 / 3)
    assert report.per_class["b"].iou == pytest.approx(3 / 4)
    # A stratified sample in the style of Olofsson et al. (2014)'s example, checked against the hand-computed
    # estimators: p.j = sum_i W_i n_ij / n_i. and OA = sum_i W_i n_ii / n_i.
    counts = [200000, 150000, 3200000, 6450000]
    n = np.array([[66, 0, 1, 2], [0, 55, 0, 1], [5, 8, 153, 9], [4, 12, 11, 313]])
    from geodl_plugin.core.data.classes import ClassInfo

    four = ClassTable([ClassInfo(i + 1, f"c{i}", "#000000") for i in range(4)])
    est = area_adjusted_estimates(n, counts, 1.0, four)
    p_c0 = 0.02 * 66 / 69 + 0.32 * 5 / 175 + 0.645 * 4 / 340
    assert est.per_class["c0"].estimated_area == pytest.approx(p_c0 * 10_000_000, rel=1e-6)
    assert est.overall_accuracy == pytest.approx(0.02 * 66 / 69 + 0.015 * 55 / 56 + 0.32 * 153 / 175 + 0.645 * 313 / 340, rel=1e-9)
    perfect = area_adjusted_estimates(np.diag([10, 20, 30, 40]), counts, 1.0, four)
    assert perfect.per_class["c2"].estimated_area == pytest.approx(3_200_000)
    assert perfect.per_class["c2"].estimated_area_ci95 == pytest.approx(0.0)


def test_extent_on_pixel_edges_selects_exactly_those_pixels(scene):
    from geodl_plugin.core.predict.raster_prediction import _window_of_extent

    info = raster_info(scene[0])
    x0, y0 = ORIGIN[0] + 10 * PIXEL, ORIGIN[1] - 20 * PIXEL
    assert _window_of_extent(info, (x0, y0 - 40 * PIXEL, x0 + 50 * PIXEL, y0)) == (10, 20, 50, 40)
    assert _window_of_extent(info, (x0 + 1, y0 - 40 * PIXEL + 1, x0 + 50 * PIXEL - 1, y0 - 1)) == (10, 20, 50, 40)
    with pytest.raises(GeoDLError, match="does not overlap"):
        _window_of_extent(info, (0, 0, 10, 10))
