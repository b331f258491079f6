"""Entropy and margin rasters beside confidence, from every model family, through the real prediction paths
(block-wise pixel path for the DNN and the forest, tiled path for the U-Net)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodl_plugin.core.data.classes import ClassTable
from geodl_plugin.core.families import predict_raster
from geodl_plugin.core.models.model_file import make_manifest, save_model_file
from geodl_plugin.core.predict.raster_prediction import (
    CONFIDENCE_NODATA,
    PredictParams,
    uncertainty_from_probabilities,
)
from tests.core.synthetic import two_class_scene

CLASSES = ClassTable.from_names(["water", "tree", "road"])
MEAN, STD = np.array([2000.0] * 3), np.array([1000.0] * 3)


def _model(family: str, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    if family == "dnn":
        from geodl_plugin.core.models.networks import build_pixel_dnn

        model = build_pixel_dnn(3, 3, MEAN, STD**2, hidden_units=(8,))
    elif family == "rf":
        from geodl_plugin.core.models.networks import fit_random_forest

        rng = np.random.default_rng(0)
        x = np.concatenate([rng.normal(1000, 300, (60, 3)), rng.normal(3000, 300, (60, 3)), rng.normal(2000, 300, (60, 3))])
        model = fit_random_forest(x, np.repeat([0, 1, 2], 60), 3, n_trees=10, max_depth=4)
    else:
        from geodl_plugin.core.models.unet import build_unet

        model = build_unet(3, 3, MEAN, STD**2, depth=2, base_filters=4)
    task = "semantic-segmentation" if family == "unet" else "classification"
    manifest = make_manifest(
        name=family,
        architecture=family,
        model=model,
        task=task,
        bands=["b1", "b2", "b3"],
        classes=CLASSES,
        mean=MEAN,
        std=STD,
        source_dtype="uint16",
        nodata=0,
        pixel_size=[30.0, 30.0],
        crs_wkt="",
        crs_units="metre",
        patch_size=16 if family == "unet" else 1,
    )
    if family == "unet":
        manifest["training"]["network"] = {"depth": 2}
    return save_model_file(tmp_path / f"{family}.geodl", model, manifest)


def test_uncertainty_formulas():
    p = np.array([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0], [0.7, 0.2, 0.1]], np.float32)
    entropy, margin = uncertainty_from_probabilities(p)
    assert np.allclose(
        entropy, [0.0, 1.0, np.log(2) / np.log(3), -(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)) / np.log(3)], atol=1e-6
    )
    assert np.allclose(margin, [1.0, 0.0, 0.0, 0.5], atol=1e-6)


@pytest.mark.parametrize("family", ["dnn", "rf", "unet"])
def test_entropy_and_margin_rasters_from_every_family(family, tmp_path):
    scene = two_class_scene(tmp_path / "scene.tif", size=40)
    model = _model(family, tmp_path)
    out = {k: str(tmp_path / f"{k}.tif") for k in ("classes", "confidence", "probabilities", "entropy", "margin")}
    params = PredictParams(
        rasters=[str(scene)],
        model=str(model),
        output=out["classes"],
        confidence_output=out["confidence"],
        probabilities_output=out["probabilities"],
        entropy_output=out["entropy"],
        margin_output=out["margin"],
        block_size=16,
    )
    result = predict_raster(params)
    assert result.entropy_output == out["entropy"] and result.margin_output == out["margin"]
    read = {k: rasterio.open(v).read() for k, v in out.items()}
    valid = read["classes"][0] != 255
    assert (~valid).sum() == 16  # the 4×4 nodata corner
    probs = read["probabilities"][:, valid]
    entropy, margin = uncertainty_from_probabilities(probs, axis=0)
    assert np.allclose(read["entropy"][0][valid], entropy, atol=1e-5)
    assert np.allclose(read["margin"][0][valid], margin, atol=1e-5)
    assert np.allclose(read["confidence"][0][valid], probs.max(axis=0), atol=1e-5)
    for key in ("entropy", "margin"):
        band = read[key][0]
        assert (band[~valid] == CONFIDENCE_NODATA).all() and (band[valid] >= 0).all() and (band[valid] <= 1).all()
        with rasterio.open(out[key]) as ds:
            assert ds.nodata == CONFIDENCE_NODATA and key in ds.descriptions[0]
    # only the uncertainty outputs asked for: no probabilities file needed
    only = PredictParams(
        rasters=[str(scene)], model=str(model), output=str(tmp_path / "c2.tif"), margin_output=str(tmp_path / "m2.tif"), block_size=16
    )
    predict_raster(only)
    assert np.allclose(rasterio.open(tmp_path / "m2.tif").read(1), read["margin"][0], atol=1e-5)
