"""geodl:predict's uncertainty outputs (styled) → geodl:suggestpoints, through the Processing framework."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def test_predict_uncertainty_then_suggest_points(geodl_provider, tmp_path):
    import processing
    from qgis.core import QgsVectorLayer

    from geodl_plugin.core.data.classes import ClassTable
    from geodl_plugin.core.models.model_file import make_manifest, save_model_file
    from geodl_plugin.core.models.networks import fit_random_forest
    from tests.core.synthetic import two_class_scene

    scene = two_class_scene(tmp_path / "scene.tif", size=48)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1000, 600, (80, 3)), rng.normal(3000, 600, (80, 3))])
    forest = fit_random_forest(x, np.repeat([0, 1], 80), 2, n_trees=15, max_depth=5)
    manifest = make_manifest(
        name="rf",
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
    out = processing.run(
        "geodl:predict",
        {
            "INPUT": str(scene),
            "MODEL": str(model),
            "OUTPUT": str(tmp_path / "classes.tif"),
            "OUTPUT_ENTROPY": str(tmp_path / "entropy.tif"),
            "OUTPUT_MARGIN": str(tmp_path / "margin.tif"),
        },
    )
    assert Path(out["OUTPUT_ENTROPY"]).exists() and Path(out["OUTPUT_MARGIN"]).exists()
    qml = (tmp_path / "entropy.qml").read_text()
    assert "singlebandpseudocolor" in qml  # styled by default wherever it is opened
    result = processing.run(
        "geodl:suggestpoints",
        {
            "CLASSES": out["OUTPUT"],
            "UNCERTAINTY": out["OUTPUT_MARGIN"],
            "MEASURE": 1,
            "COUNT": 7,
            "OUTPUT": str(tmp_path / "to_label.gpkg"),
        },
    )
    layer = QgsVectorLayer(result["OUTPUT"], "to label", "ogr")
    assert layer.isValid() and layer.featureCount() == 7
    ranks = [f["rank"] for f in layer.getFeatures()]
    assert sorted(ranks) == list(range(1, 8))
    unc = {f["rank"]: f["uncertainty"] for f in layer.getFeatures()}
    assert all(unc[r] >= unc[r + 1] for r in range(1, 7))
