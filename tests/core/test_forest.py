"""The random forest: stored as plain arrays (no pickle), predicted by scikit-learn's compiled trees rebuilt
from those arrays, with the same probabilities as the scikit-learn forest that was trained."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from geodl_plugin.core.data.classes import ClassTable
from geodl_plugin.core.models.family import ModelFamily
from geodl_plugin.core.models.networks import Forest, fit_random_forest


def _data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four overlapping classes in 5 features (some noise, so trees grow deep and leaves are impure)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = (rng.normal(size=(n, 5)) + np.eye(4, 5)[y] * 1.5).astype(np.float32) * 300 + 1000
    return x, y


def _roundtrip(forest: Forest) -> Forest:
    buf = io.BytesIO()
    np.savez_compressed(buf, **forest.to_arrays())
    buf.seek(0)
    return Forest.from_arrays(np.load(buf, allow_pickle=False))


def test_forest_from_arrays_equals_scikit_learn_predict_proba():
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data()
    rf = RandomForestClassifier(n_estimators=25, max_depth=12, min_samples_leaf=2, random_state=0).fit(x, y)
    forest = _roundtrip(Forest.from_sklearn(rf))
    assert forest.n_features == 5 and forest.n_trees == 25
    x_new, _ = _data(5000, seed=1)
    x_new[:7, 2] = rf.estimators_[0].tree_.threshold[0]  # exactly on a split: both go left
    got, want = forest.predict_proba(x_new), rf.predict_proba(x_new)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)  # float32 storage of sklearn's float64 leaves
    assert (got.argmax(axis=1) == rf.predict(x_new)).all()
    assert forest.predict_proba(x_new[:0]).shape == (0, 4)


def test_missing_class_keeps_a_zero_column_and_the_rest_match():
    """A class absent from training (id 2 of 0..3) still has its column; the others equal sklearn's."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data()
    keep = y != 2
    forest = _roundtrip(fit_random_forest(x[keep], y[keep], n_classes=4, n_trees=10, seed=3, class_weight=None))
    rf = RandomForestClassifier(n_estimators=10, max_depth=20, random_state=3, class_weight=None).fit(x[keep], y[keep])
    got = forest.predict_proba(x)
    assert (got[:, 2] == 0).all()
    np.testing.assert_allclose(got[:, [0, 1, 3]], rf.predict_proba(x), rtol=0, atol=1e-6)


def test_forest_files_from_before_the_compiled_path_still_predict():
    """Older forest.npz files lack n_features, n_node_samples, impurity, missing_go_to_left: dummies stand in."""
    from sklearn.ensemble import RandomForestClassifier

    x, y = _data()
    rf = RandomForestClassifier(n_estimators=8, max_depth=8, random_state=0).fit(x, y)
    arrays = Forest.from_sklearn(rf).to_arrays()
    old = {k: v for k, v in arrays.items() if k not in ("n_features", "n_node_samples", "impurity", "missing_go_to_left")}
    buf = io.BytesIO()
    np.savez_compressed(buf, **old)
    buf.seek(0)
    forest = Forest.from_arrays(np.load(buf, allow_pickle=False))
    assert forest.n_features == 0 and forest.n_node_samples is None
    np.testing.assert_allclose(forest.predict_proba(x), rf.predict_proba(x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="splits on feature"):
        Forest.from_arrays(old).predict_proba(x[:, :1])


def test_model_file_holds_plain_arrays_and_predicts_like_scikit_learn(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    from geodl_plugin.core.models.model_file import FOREST_MEMBER, load_model_file, make_manifest, save_model_file

    x, y = _data()
    rf = RandomForestClassifier(n_estimators=12, max_depth=10, random_state=0).fit(x, y)
    classes = ClassTable.from_ids([1, 2, 3, 4])
    manifest = make_manifest(
        name="rf",
        architecture=ModelFamily.RANDOM_FOREST,
        bands=[f"b{i}" for i in range(5)],
        classes=classes,
        mean=[0.0] * 5,
        std=[1.0] * 5,
        source_dtype="float32",
        nodata=None,
        pixel_size=(30.0, 30.0),
        crs_wkt="",
        crs_units="metre",
    )
    path = save_model_file(tmp_path / "rf.geodl", Forest.from_sklearn(rf), manifest)
    with zipfile.ZipFile(path) as zf, zf.open(FOREST_MEMBER) as fh:
        stored = np.load(io.BytesIO(fh.read()), allow_pickle=False)  # would raise on an object array
        assert all(stored[k].dtype != object for k in stored.files)
    bundle = load_model_file(path)
    np.testing.assert_allclose(bundle.predict_proba(x), rf.predict_proba(x), rtol=0, atol=1e-6)
    classified = bundle.classify(x)
    assert (classified.index == rf.predict(x)).all()


def test_binned_memo_gives_every_pixel_the_forests_own_answer():
    """Landsat-like pixels (3 bands of integers, many repeats) take the binned path: the forest runs once per
    distinct bin key and answers from its table afterwards — with sklearn's probabilities for every pixel,
    including values exactly on a threshold, just either side of one, and NaN."""
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 600)
    x = np.round(rng.normal(size=(600, 3)) * 200 + 1000 + np.eye(4, 3)[y] * 900).astype(np.float32)
    rf = RandomForestClassifier(n_estimators=40, min_samples_leaf=3, random_state=0).fit(x, y)
    forest = _roundtrip(Forest.from_sklearn(rf))
    palette = np.round(rng.normal(size=(5000, 3)) * 300 + 1300).astype(np.float32)  # imagery repeats spectra
    image = palette[rng.integers(0, len(palette), 200_000)]
    t = rf.estimators_[3].tree_
    node = int(np.flatnonzero(t.children_left >= 0)[0])
    f, thr = int(t.feature[node]), t.threshold[node]
    image[:3, f] = [np.float32(thr), np.nextafter(np.float32(thr), np.float32(-np.inf)), np.nextafter(np.float32(thr), np.float32(np.inf))]
    image[3, 0] = np.nan
    first = forest.predict_proba(image[:100_000])
    assert forest._memo.cells > 0  # the binned path
    n_keys = int(forest._memo.known.sum())
    assert n_keys <= 5004  # far fewer forest evaluations than pixels
    second = forest.predict_proba(image)  # half of it answered from the table
    np.testing.assert_allclose(second, rf.predict_proba(image), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(second[:100_000], first)
    assert set(forest._memo.luts) == {0, 1, 2} - {f}  # whole numbers by table look-up; band f has fractions
    fractional = image[:20_000] * np.float32(0.37) - np.float32(100.5)  # binary search path
    np.testing.assert_allclose(forest.predict_proba(fractional), rf.predict_proba(fractional), rtol=0, atol=1e-6)
    index, confidence, probs = forest.classify(image)  # class and confidence straight from the table
    assert probs is None
    np.testing.assert_array_equal(index, second.argmax(axis=1))
    np.testing.assert_array_equal(confidence, second.max(axis=1))
    wide = _roundtrip(Forest.from_sklearn(rf))
    wide._memo = None
    from geodl_plugin.core.models import networks

    limit = networks._BinMemo.MAX_CELLS
    networks._BinMemo.MAX_CELLS = 1  # the direct path, for key spaces too large for a table
    try:
        np.testing.assert_array_equal(wide.predict_proba(image), second)
        assert wide._memo.cells == 0
    finally:
        networks._BinMemo.MAX_CELLS = limit
