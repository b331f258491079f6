"""geodl:exportonnx through the Processing framework (the export runs in the worker process)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


@pytest.mark.slow
def test_exportonnx_writes_onnx_and_stac_item(geodl_provider, tmp_path):
    import keras
    import processing
    from qgis.core import QgsProcessingException

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.networks import build_pixel_dnn
    from geodl_plugin.core.models.onnx_export import run_onnx

    keras.utils.set_random_seed(0)
    mean, std = np.array([1000.0, 2000.0, 3000.0]), np.array([100.0, 200.0, 300.0])
    manifest = make_manifest(
        name="px",
        architecture="dnn",
        bands=["b1", "b2", "b3"],
        classes=ClassTable.from_names(["water", "tree"]),
        mean=mean,
        std=std,
        source_dtype="uint16",
        nodata=0,
        pixel_size=[30.0, 30.0],
        crs_wkt="",
        crs_units="metre",
    )
    model_path = save_model_file(tmp_path / "px.geodl", build_pixel_dnn(3, 2, mean, std**2), manifest)
    result = processing.run(
        "geodl:exportonnx",
        {"MODEL": str(model_path), "TILE_SIZE": 32, "OUTPUT": str(tmp_path / "px.onnx"), "STAC": str(tmp_path / "px.json")},
    )
    assert result["OUTPUT"] == str(tmp_path / "px.onnx")
    probs = run_onnx(result["OUTPUT"], np.full((1, 32, 32, 3), [1000, 2000, 3000], np.uint16))
    assert probs.shape == (1, 2, 32, 32)
    item = json.loads((tmp_path / "px.json").read_text())
    assert {a["mlm:artifact_type"] for a in item["assets"].values()} == {"keras.Model.save", "onnx"}
    assert item["assets"]["onnx"]["href"] == "px.onnx"
    with pytest.raises(QgsProcessingException, match=r"\.onnx"):
        processing.run("geodl:exportonnx", {"MODEL": str(model_path), "OUTPUT": str(tmp_path / "px.bin")})


def test_modelcard_for_any_family(geodl_provider, tmp_path):
    import processing

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.networks import fit_random_forest

    rng = np.random.default_rng(0)
    forest = fit_random_forest(rng.normal(size=(40, 3)), rng.integers(0, 2, 40), 2, n_trees=3, max_depth=3)
    manifest = make_manifest(
        name="forest map",
        architecture="rf",
        model=forest,
        bands=["b1", "b2", "b3"],
        classes=ClassTable.from_names(["water", "tree"]),
        mean=[0] * 3,
        std=[1] * 3,
        source_dtype="uint16",
        nodata=0,
        pixel_size=[30.0, 30.0],
        crs_wkt="",
        crs_units="metre",
    )
    model = save_model_file(tmp_path / "rf.geodl", forest, manifest)
    out = processing.run("geodl:modelcard", {"MODEL": str(model), "OUTPUT": str(tmp_path / "rf.json")})["OUTPUT"]
    item = json.loads(Path(out).read_text())
    assert item["properties"]["mlm:architecture"] == "rf" and item["properties"]["mlm:framework"] == "scikit-learn"
    assert item["assets"]["model"] == {**item["assets"]["model"], "href": "rf.geodl", "mlm:artifact_type": "numpy.savez"}
