"""Segmentation: masks, chips, the U-Net, seamless tiled inference, and U-Net vs pixel DNN on a synthetic scene
with a known truth map (scripts/make_synthetic_scene.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from geodl_plugin.core.data.classes import ClassInfo, ClassTable
from geodl_plugin.core.data.labels import POINT, POLYGON, LabelSet, read_labels
from geodl_plugin.core.io.raster import raster_info
from geodl_plugin.core.io.tfrecord import write_examples
from geodl_plugin.core.models.family import TilingParams, UNetParams
from geodl_plugin.core.runtime.errors import Cancelled, GeoDLError

REPO = Path(__file__).resolve().parents[2]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


synthetic = _load_script("make_synthetic_scene")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return synthetic.make_scene(tmp_path_factory.mktemp("scene"), size=128, points_per_class=30, seed=0)


@pytest.fixture(scope="module")
def labels(scene):
    return read_labels(scene.points, "class_name", target_crs_wkt=raster_info(scene.image).crs_wkt)


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    ious = []
    for c in np.unique(truth):
        a, b = pred == c, truth == c
        ious.append((a & b).sum() / max((a | b).sum(), 1))
    return float(np.mean(ious))


def _wkb(wkt: str) -> bytes:
    from osgeo import ogr

    return bytes(ogr.CreateGeometryFromWkt(wkt).ExportToWkb())


def _tiny_unet(n_bands=4, n_classes=3, depth=2, filters=4, seed=1):
    import keras

    from geodl_plugin.core.models.unet import build_unet

    keras.utils.set_random_seed(seed)
    return build_unet(n_bands, n_classes, [1000.0] * n_bands, [300.0**2] * n_bands, depth=depth, base_filters=filters)


def _unet_file(path, scene, classes, depth=2, filters=4):
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file

    info = raster_info(scene.image)
    model = _tiny_unet(info.count, len(classes), depth, filters)
    manifest = make_manifest(
        name="t",
        architecture="unet",
        task="semantic-segmentation",
        bands=list(info.band_names),
        classes=classes,
        mean=[1000.0] * info.count,
        std=[300.0] * info.count,
        source_dtype=info.dtype,
        nodata=None,
        pixel_size=info.res,
        crs_wkt=info.crs_wkt,
        crs_units=info.crs_units,
        patch_size=16,
        training={"network": {"depth": depth, "base_filters": filters}},
    )
    save_model_file(path, model, manifest)
    return model


# --- sizes and bad input -----------------------------------------------------------------------------------
def test_patch_size_not_divisible_names_nearest_valid_size():
    from geodl_plugin.core.data.chips import unet_patch_size

    assert unet_patch_size(64, 3) == 64
    assert unet_patch_size(257, 3) == 256  # Earth Engine neighborhoodToArray, radius 128
    with pytest.raises(GeoDLError, match=r"divisible by 2\^3 = 8.*Use 32"):
        unet_patch_size(30, 3)
    with pytest.raises(GeoDLError, match="Use 16"):
        unet_patch_size(13, 3)


def test_explicit_depth_that_does_not_fit_is_an_error():
    from geodl_plugin.core.train.unet_training import choose_depth

    assert choose_depth(17, None) == (3, 16)
    assert choose_depth(12, None) == (2, 12)
    with pytest.raises(GeoDLError, match="Use 24"):
        choose_depth(22, 3)


def test_mask_with_no_labelled_pixel_is_an_error(scene, tmp_path):
    from geodl_plugin.core.data.chips import rasterize_mask

    info = raster_info(scene.image)
    far = LabelSet(ClassTable.from_ids([1]), np.array([1]), [_wkb("POINT (0 0)")], info.crs_wkt, POINT)
    out = tmp_path / "mask.tif"
    with pytest.raises(GeoDLError, match="No label falls on a pixel"):
        rasterize_mask(scene.image, far, out)
    assert not out.exists()


def test_mask_classes_absent_from_class_table_are_named(scene, tmp_path):
    import rasterio

    from geodl_plugin.core.data.chips import chip_raster

    info = raster_info(scene.image)
    mask = np.full((info.height, info.width), 255, np.uint8)
    mask[10:20, 10:20] = 1
    mask[40:50, 40:50] = 7
    path = tmp_path / "mask.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=info.width,
        height=info.height,
        count=1,
        dtype="uint8",
        crs=info.crs_wkt,
        transform=rasterio.Affine(*info.transform),
        nodata=255,
    ) as ds:
        ds.write(mask[None])
    classes = ClassTable([ClassInfo(1, "crop", "#e6c229"), ClassInfo(2, "forest", "#1b7837")])
    with pytest.raises(GeoDLError, match=r"Class id\(s\) \[7\].*not in the class table"):
        chip_raster([scene.image], path, tmp_path / "chips.tfrecord.gz", patch_size=16, classes=classes)
    empty = tmp_path / "empty.tif"
    with rasterio.open(
        empty,
        "w",
        driver="GTiff",
        width=info.width,
        height=info.height,
        count=1,
        dtype="uint8",
        crs=info.crs_wkt,
        transform=rasterio.Affine(*info.transform),
        nodata=255,
    ) as ds:
        ds.write(np.full((1, info.height, info.width), 255, np.uint8))
    with pytest.raises(GeoDLError, match="no labelled pixel"):
        chip_raster([scene.image], empty, tmp_path / "chips2.tfrecord.gz", patch_size=16)


def test_single_pixel_samples_cannot_train_a_unet(scene, labels, tmp_path):
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import train_model
    from geodl_plugin.core.train.trainer import TrainParams

    extract_samples([scene.image], labels, tmp_path / "px.tfrecord.gz", 1)
    with pytest.raises(GeoDLError, match="needs image patches"):
        train_model(TrainParams([str(tmp_path / "px.tfrecord.gz")], str(tmp_path / "m.geodl"), family="unet"))


# --- masks and chips -----------------------------------------------------------------------------------
def test_rasterize_polygons_and_points_on_the_raster_grid(scene, tmp_path):
    import rasterio

    from geodl_plugin.core.data.chips import IGNORE, rasterize_mask

    info = raster_info(scene.image)
    x0, y0 = info.transform[2], info.transform[5]
    # polygon over columns 2..5, rows 3..6 (pixel edges); a point in pixel (row 20, col 30)
    poly = f"POLYGON (({x0 + 60} {y0 - 90}, {x0 + 180} {y0 - 90}, {x0 + 180} {y0 - 210}, {x0 + 60} {y0 - 210}, {x0 + 60} {y0 - 90}))"
    classes = ClassTable.from_ids([1, 2])
    polys = LabelSet(classes, np.array([2]), [_wkb(poly)], info.crs_wkt, POLYGON)
    report = rasterize_mask(scene.image, polys, tmp_path / "poly.tif")
    with rasterio.open(tmp_path / "poly.tif") as ds:
        mask = ds.read(1)
        assert ds.transform == rasterio.Affine(*info.transform) and (ds.width, ds.height) == (info.width, info.height)
        assert ds.nodata == IGNORE
    assert report.labelled_pixels == 16 and report.per_class["class 2"] == 16
    assert (mask[3:7, 2:6] == 2).all() and (mask == 2).sum() == 16 and set(np.unique(mask)) == {2, IGNORE}
    assert json.loads((tmp_path / "poly.tif.json").read_text())["classes"][1]["value"] == 2
    pts = LabelSet(classes, np.array([1]), [_wkb(f"POINT ({x0 + 30 * 30.5} {y0 - 30 * 20.5})")], info.crs_wkt, POINT)
    rasterize_mask(scene.image, pts, tmp_path / "pts.tif")
    with rasterio.open(tmp_path / "pts.tif") as ds:
        mask = ds.read(1)
    assert mask[20, 30] == 1 and (mask != IGNORE).sum() == 1


def test_chips_with_stride_padding_blocked_split_and_histograms(scene, labels, tmp_path):
    from geodl_plugin.core.data.chips import IGNORE, chip_raster, load_chips, rasterize_mask

    rasterize_mask(scene.image, labels, tmp_path / "mask.tif")
    report = chip_raster(
        [scene.image],
        tmp_path / "mask.tif",
        tmp_path / "train.tfrecord.gz",
        patch_size=32,
        stride=16,
        padding=8,
        test_output=tmp_path / "test.tfrecord.gz",
        test_fraction=0.25,
        histogram_output=tmp_path / "hist.png",
    )
    assert report.count > 0 and report.test_count > 0
    assert (tmp_path / "hist.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    train, test = load_chips(tmp_path / "train.tfrecord.gz"), load_chips(tmp_path / "test.tfrecord.gz")
    assert train.x.shape[1:] == (32, 32, 4) and train.mask.shape[1:] == (32, 32)
    assert train.classes.names == ["crop", "forest", "urban", "water"]
    # chips carry their own pixels: the mask agrees with the truth map wherever labelled
    truth = scene.truth_array
    info = raster_info(scene.image)
    for chips in (train, test):
        for i in range(len(chips)):
            col = int(round((chips.xy[i, 0] - info.transform[2]) / 30.0 - 16))
            row = int(round((info.transform[5] - chips.xy[i, 1]) / 30.0 - 16))
            m = chips.mask[i]
            rr, cc = np.nonzero(m != IGNORE)
            assert (truth[row + rr, col + cc] == m[rr, cc]).all()
    # whole blocks went to the test file: no test chip overlaps a training chip
    d = np.abs(test.xy[:, None, :] - train.xy[None, :, :]).max(axis=-1)
    assert d.min() >= 32 * 30.0 - 1e-6


def test_earth_engine_257_patches_load_and_crop_to_256(tmp_path):
    from geodl_plugin.core.data.chips import IGNORE, load_chips, unet_patch_size

    rng = np.random.default_rng(0)
    k = 257
    records = []
    for i in range(2):
        label = np.full((k, k), 255.0, np.float32)
        label[128, 128] = i + 1
        label[0, 0] = 2
        records.append({"B2": rng.normal(size=k * k).astype(np.float32), "B3": np.full(k * k, i, np.float32), "class": label.ravel()})
    write_examples(tmp_path / "ee.tfrecord.gz", records)
    chips = load_chips(tmp_path / "ee.tfrecord.gz")
    assert chips.patch_size == 257 and chips.bands == ["B2", "B3"] and chips.classes.ids == [1, 2]
    cropped = chips.crop(unet_patch_size(257, 4))
    assert cropped.x.shape == (2, 256, 256, 2)
    assert cropped.mask[0, 128, 128] == 1 and cropped.mask[1, 128, 128] == 2  # the centre stays inside
    assert (cropped.mask != IGNORE).sum() == 4
    np.testing.assert_array_equal(cropped.x[:, :, :, 0], chips.x[:, :256, :256, 0])


# --- model ---------------------------------------------------------------------------------------------
def test_masked_losses_ignore_unlabelled_pixels_and_augmentation_is_shared():
    import keras

    from geodl_plugin.core.models.unet import augment_batch, make_loss, masked_iou

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=(2, 8, 8)).astype(np.float32)
    y = np.full((2, 8, 8), 255, np.int32)
    y[0, 2, 3], y[1, 5, 5] = 1, 2
    loss = make_loss()
    base = float(keras.ops.convert_to_numpy(loss(y, probs)))
    changed = probs.copy()
    changed[y == 255] = [1.0, 0.0, 0.0]  # anything on unlabelled pixels
    assert float(keras.ops.convert_to_numpy(loss(y, changed))) == pytest.approx(base, rel=1e-5)
    perfect = np.zeros_like(probs)
    perfect[..., 0] = 1
    perfect[0, 2, 3], perfect[1, 5, 5] = [0, 1, 0], [0, 0, 1]
    assert float(keras.ops.convert_to_numpy(masked_iou(y, perfect))) == pytest.approx(1.0)
    x = np.arange(2 * 8 * 8 * 2, dtype=np.float32).reshape(2, 8, 8, 2)
    mask = x[..., 0].astype(np.int32)
    xa, ya = augment_batch(x, mask, np.random.default_rng(3))
    np.testing.assert_array_equal(xa[..., 0].astype(np.int32), ya)


def test_model_file_round_trip_in_safe_mode(scene, labels, tmp_path):
    from geodl_plugin.core.models.model_file import load_model_file

    model = _unet_file(tmp_path / "u.geodl", scene, labels.classes)
    bundle = load_model_file(tmp_path / "u.geodl")
    assert bundle.architecture == "unet" and bundle.patch_size == 16
    assert bundle.manifest["mlm:tasks"] == ["semantic-segmentation"]
    x = np.random.default_rng(0).normal(1000, 300, (2, 32, 48, 4)).astype(np.float32)
    np.testing.assert_allclose(bundle.predict_proba(x), np.asarray(model.predict_on_batch(x)), atol=1e-5)


# --- tiled inference -----------------------------------------------------------------------------------
def test_batch_spans_cover_every_tile_once_in_near_equal_batches():
    from geodl_plugin.core.predict.tiled_prediction import batch_spans

    assert batch_spans(5, 4) == [(0, 3), (3, 2)]
    assert batch_spans(8, 4) == [(0, 4), (4, 4)]
    assert batch_spans(1, 4) == [(0, 1)]
    for n in range(1, 30):
        spans = batch_spans(n, 4)
        assert [s for s, _ in spans] == list(np.cumsum([0] + [k for _, k in spans[:-1]]))
        assert sum(k for _, k in spans) == n and max(k for _, k in spans) <= 4
        assert max(k for _, k in spans) - min(k for _, k in spans) <= 1


@pytest.mark.parametrize("n_classes", [1, 2, 4, 40])
def test_best_class_is_argmax_with_its_probability(n_classes):
    """Class plane by class plane, the first of equal largest probabilities, as argmax picks it."""
    from geodl_plugin.core.predict.tiled_prediction import best_class

    rng = np.random.default_rng(n_classes)
    probs = rng.random((n_classes, 37, 53)).astype(np.float32)
    probs[:, :5] = np.round(probs[:, :5] * 3) / 3  # many ties
    probs[:, 5, :] = 0.25  # every class equal
    best, conf = best_class(probs)
    assert best.dtype == np.uint8 and conf.dtype == np.float32 and best.shape == conf.shape == (37, 53)
    np.testing.assert_array_equal(best, probs.argmax(axis=0))
    np.testing.assert_array_equal(conf, probs.max(axis=0))
    assert (best[5] == 0).all()


@pytest.mark.parametrize("shape", [(70, 50), (20, 9)])
def test_tiled_prediction_equals_untiled(shape):
    from geodl_plugin.core.predict.tiled_prediction import blend_strips, keras_predictor

    height, width = shape
    model = _tiny_unet(n_classes=3)
    rng = np.random.default_rng(0)
    image = (1000 + 300 * rng.normal(size=(4, height, width))).astype(np.float32)
    tile, overlap, margin = 32, 16, 4
    padded = np.pad(image, ((0, 0), (200, 200), (200, 200)), mode="symmetric")

    def read(c, r, w, h):
        return padded[:, 200 + r : 200 + r + h, 200 + c : 200 + c + w]

    network = keras_predictor(model)
    parts = list(blend_strips(read, network, width, height, 3, tile, overlap, margin, batch=3))
    # cut, run and blended channels first (as a series is): the same strips
    first = list(blend_strips(read, network.channels_first, width, height, 3, tile, overlap, margin, batch=3, channels_first=True))
    assert [r for r, _, _ in first] == [r for r, _, _ in parts]
    for (_, a, _), (_, b, _) in zip(first, parts):
        np.testing.assert_allclose(a, b, atol=1e-6)
    rows = [r for r, _, _ in parts]
    assert rows[0] == 0 and sum(p.shape[1] for _, p, _ in parts) == height
    tiled = np.concatenate([p for _, p, _ in parts], axis=1)
    untiled = predict_untiled(model, image, overlap, 4)
    assert tiled.shape == untiled.shape == (3, height, width)
    np.testing.assert_allclose(tiled.sum(axis=0), 1.0, atol=1e-4)
    assert np.abs(tiled - untiled).max() < 0.02
    top2 = np.sort(untiled, axis=0)[-2:]
    clear = top2[1] - top2[0] > 0.05  # the untrained net has near-ties; compare classes where it does not
    assert (tiled.argmax(0) == untiled.argmax(0))[clear].all()


def test_predict_raster_with_unet_writes_class_and_confidence_on_the_grid(scene, labels, tmp_path):
    import rasterio

    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.predict.raster_prediction import PredictParams

    _unet_file(tmp_path / "u.geodl", scene, labels.classes)
    # a copy with a nodata hole
    with rasterio.open(scene.image) as src:
        profile, data = src.profile, src.read()
    data[:, 5:9, 7:12] = -9999
    profile.update(nodata=-9999)
    with rasterio.open(tmp_path / "hole.tif", "w", **profile) as dst:
        dst.write(data)
    params = PredictParams(
        [str(tmp_path / "hole.tif")],
        str(tmp_path / "u.geodl"),
        str(tmp_path / "cls.tif"),
        confidence_output=str(tmp_path / "conf.tif"),
        probabilities_output=str(tmp_path / "prob.tif"),
    )
    params.tiling = TilingParams(size=64, overlap=16)  # several strips and tiles on a 128² raster
    result = predict_raster(params)
    with (
        rasterio.open(tmp_path / "cls.tif") as c,
        rasterio.open(tmp_path / "conf.tif") as f,
        rasterio.open(tmp_path / "prob.tif") as p,
        rasterio.open(scene.image) as src,
    ):
        assert c.transform == src.transform and c.crs == src.crs and (c.width, c.height) == (src.width, src.height)
        cls, conf, prob = c.read(1), f.read(1), p.read()
        assert c.colormap(1)[1][:3] == (0xE6, 0xC2, 0x29)
    assert (cls[5:9, 7:12] == 255).all() and (conf[5:9, 7:12] == -1).all()
    ok = cls != 255
    assert set(np.unique(cls[ok])) <= {1, 2, 3, 4} and ok.sum() == 128 * 128 - 20 == result.pixels
    np.testing.assert_allclose(conf[ok], prob.max(axis=0)[ok], atol=1e-6)
    np.testing.assert_allclose(prob[:, ok].sum(axis=0), 1.0, atol=1e-4)


def test_raster_smaller_than_one_tile_is_padded(scene, labels, tmp_path):
    import rasterio
    from rasterio.windows import Window

    from geodl_plugin.core.families import predict_raster
    from geodl_plugin.core.predict.raster_prediction import PredictParams

    with rasterio.open(scene.image) as src:
        profile = src.profile
        data = src.read(window=Window(0, 0, 7, 5))
        profile.update(width=7, height=5, transform=src.window_transform(Window(0, 0, 7, 5)), tiled=False)
    with rasterio.open(tmp_path / "small.tif", "w", **profile) as dst:
        dst.write(data)
    _unet_file(tmp_path / "u.geodl", scene, labels.classes)
    predict_raster(PredictParams([str(tmp_path / "small.tif")], str(tmp_path / "u.geodl"), str(tmp_path / "c.tif")))
    with rasterio.open(tmp_path / "c.tif") as ds:
        cls = ds.read(1)
    assert cls.shape == (5, 7) and (cls != 255).all()


# --- training ------------------------------------------------------------------------------------------
def _extract(scene, labels, tmp_path, k):
    from geodl_plugin.core.data.samples import extract_samples

    path = tmp_path / f"p{k}.tfrecord.gz"
    extract_samples([scene.image], labels, path, k)
    return str(path)


def test_cancel_stops_within_a_batch_and_writes_nothing(scene, labels, tmp_path):
    from geodl_plugin.core.families import train_model
    from geodl_plugin.core.runtime.progress import Progress
    from geodl_plugin.core.train.trainer import TrainParams

    samples = _extract(scene, labels, tmp_path, 17)
    params = TrainParams([samples], str(tmp_path / "u.geodl"), family="unet", epochs=50, batch_size=8)
    params.options = UNetParams(depth=2, base_filters=4)
    with pytest.raises(Cancelled):
        train_model(params, Progress(is_cancelled=lambda: True))
    assert not (tmp_path / "u.geodl").exists()


@pytest.mark.slow
def test_unet_from_sparse_points_beats_pixel_dnn(scene, labels, tmp_path):
    """The same 120 labelled points train all three: the pixel DNN sees each point's pixel; the U-Net sees
    context, either as chips of the rasterised points (sparse masks) or as 17×17 point patches (only the
    centre labelled). Noise is per pixel, so context wins; IoU is against the full truth map."""
    import rasterio

    from geodl_plugin.core.data.chips import chip_raster, rasterize_mask
    from geodl_plugin.core.families import predict_raster, train_model
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.train.trainer import TrainParams

    pixels, patches = _extract(scene, labels, tmp_path, 1), _extract(scene, labels, tmp_path, 17)
    train_model(TrainParams([pixels], str(tmp_path / "dnn.geodl"), epochs=100, seed=0))
    rasterize_mask(scene.image, labels, tmp_path / "mask.tif")
    chip_raster([scene.image], tmp_path / "mask.tif", tmp_path / "chips.tfrecord.gz", patch_size=32, stride=16, padding=8)
    chips = TrainParams(
        [str(tmp_path / "chips.tfrecord.gz")],
        str(tmp_path / "chips.geodl"),
        family="unet",
        epochs=40,
        batch_size=8,
        seed=0,
        test_fraction=0.0,
    )  # a 128² scene has too few blocks
    chips.options = UNetParams(depth=2, base_filters=8)
    result = train_model(chips)
    assert result.n_test == 0 and result.metrics is None
    points = TrainParams([patches], str(tmp_path / "patches.geodl"), family="unet", epochs=40, batch_size=16, seed=1)
    points.options = UNetParams(depth=2, base_filters=8)
    result = train_model(points)  # the train_model route: point patches → sparse centre-pixel masks
    assert result.metrics.n_samples == result.n_test > 0  # held out: the centre pixels of test patches
    ious = {}
    for name in ("dnn", "chips", "patches"):
        model = str(tmp_path / f"{name}.geodl")
        predict_raster(PredictParams([str(scene.image)], model, str(tmp_path / f"{name}.tif")))
        with rasterio.open(tmp_path / f"{name}.tif") as ds:
            ious[name] = _iou(ds.read(1), scene.truth_array)
    assert ious["chips"] > ious["dnn"] + 0.2, ious
    assert ious["patches"] > ious["dnn"] + 0.05, ious


def test_evaluate_scores_a_unet_on_patch_samples(scene, tmp_path):
    """geodl:evaluate's core on a U-Net model file and point-patch samples (label = centre pixel)."""
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples
    from geodl_plugin.core.families import evaluate_model, train_model
    from geodl_plugin.core.io.raster import raster_info
    from geodl_plugin.core.train.trainer import TrainParams

    labels = read_labels(scene.points, "class_name", target_crs_wkt=raster_info(scene.image).crs_wkt)
    samples = extract_samples([scene.image], labels, tmp_path / "patches.tfrecord.gz", patch_size=9)
    model = tmp_path / "unet.geodl"
    train_model(TrainParams(samples=[samples.path], output=str(model), family="unet", epochs=2, batch_size=8, split="random"))
    report = evaluate_model(model, [samples.path])
    assert report.n_samples == samples.count and 0.0 <= report.overall_accuracy <= 1.0
    assert set(report.per_class) == {c for c in ("crop", "forest", "urban", "water")}


def predict_untiled(model, image: np.ndarray, pad: int, multiple: int) -> np.ndarray:
    """Reference: one pass over the whole (mirror-padded) image (bands, h, w) → (C, h, w). The tiled predictor's reference."""
    import keras

    b, h, w = image.shape
    hp = -(-(h + 2 * pad) // multiple) * multiple
    wp = -(-(w + 2 * pad) // multiple) * multiple
    padded = np.pad(image, ((0, 0), (pad, hp - h - pad), (pad, wp - w - pad)), mode="symmetric")
    out = keras.ops.convert_to_numpy(model.predict_on_batch(np.moveaxis(padded, 0, -1)[None].astype(np.float32)))[0]
    return np.moveaxis(out, -1, 0)[:, pad : pad + h, pad : pad + w]
