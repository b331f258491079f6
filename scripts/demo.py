"""`make demo`: the whole local pipeline on the real Landsat 8 sample scene, headless, through the geodl
Processing algorithms: samplepoints → extractsamples → train (pixel DNN) → evaluate → predict. Writes
classified.tif, confidence.tif, model.geodl, metrics.json, confusion_matrix.png, demo.qgz and map.png."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_headless import finish, start_qgis  # noqa: E402

SCENE = "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"
POLYGONS = "LC08_L1TP_224078_20200518_20200518_01_RT_polygons.gpkg"


def run(data: Path, out: Path, epochs: int = 150) -> dict:
    import processing
    from qgis.core import QgsProcessingFeedback

    out.mkdir(parents=True, exist_ok=True)
    feedback = QgsProcessingFeedback()
    steps = {}

    def step(name, alg, params):
        t = time.perf_counter()
        print(f"== {name}")
        result = processing.run(alg, params, feedback=feedback)
        steps[name] = round(time.perf_counter() - t, 2)
        return result

    step(
        "sample points in the labelled polygons",
        "geodl:samplepoints",
        {
            "INPUT": str(data / POLYGONS),
            "CLASS_FIELD": "name",
            "PER_CLASS": 150,
            "MIN_DISTANCE": 30.0,
            "SEED": 1,
            "OUTPUT": str(out / "points.gpkg"),
        },
    )
    step(
        "extract samples",
        "geodl:extractsamples",
        {
            "INPUT": [str(data / SCENE)],
            "LABELS": str(out / "points.gpkg"),
            "CLASS_FIELD": "class_name",
            "PATCH_SIZE": 1,
            "NODATA": 0,
            "BAND_NAMES": "B2,B3,B4",
            "OUTPUT": str(out / "samples.tfrecord.gz"),
        },
    )
    trained = step(
        "train the pixel DNN",
        "geodl:train",
        {
            "SAMPLES": str(out / "samples.tfrecord.gz"),
            "MODEL_TYPE": 0,
            "EPOCHS": epochs,
            "BATCH_SIZE": 32,
            "SPLIT": 0,
            "BLOCK_SIZE": 8,
            "TEST_FRACTION": 0.3,
            "SEED": 42,
            "OUTPUT": str(out / "model.geodl"),
            "OUTPUT_TEST_SAMPLES": str(out / "heldout.tfrecord.gz"),
        },
    )
    evaluated = step(
        "evaluate on the held-out split",
        "geodl:evaluate",
        {
            "MODEL": str(out / "model.geodl"),
            "SAMPLES": str(out / "heldout.tfrecord.gz"),
            "OUTPUT": str(out / "metrics.json"),
            "OUTPUT_PLOT": str(out / "confusion_matrix.png"),
        },
    )
    step(
        "classify the scene",
        "geodl:predict",
        {
            "INPUT": str(data / SCENE),
            "MODEL": str(out / "model.geodl"),
            "NODATA": 0,
            "OUTPUT": str(out / "classified.tif"),
            "OUTPUT_CONFIDENCE": str(out / "confidence.tif"),
        },
    )
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["train_reported_overall_accuracy"] = trained["OVERALL_ACCURACY"]
    metrics["step_seconds"] = steps
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    build_project(data / SCENE, data / POLYGONS, out)
    print(f"held-out overall accuracy {evaluated['OVERALL_ACCURACY']:.3f}, kappa {evaluated['KAPPA']:.3f}")
    print("step seconds:", steps)
    return metrics


def build_project(scene: Path, polygons: Path, out: Path) -> None:
    """demo.qgz with the styled layers, and map.png rendered from it with a legend."""
    from qgis.core import (
        QgsLayoutExporter,
        QgsLayoutItemLegend,
        QgsLayoutItemMap,
        QgsLayoutPoint,
        QgsLayoutSize,
        QgsLegendRenderer,
        QgsLegendStyle,
        QgsPrintLayout,
        QgsProject,
        QgsRasterLayer,
        QgsRasterRange,
        QgsUnitTypes,
        QgsVectorLayer,
    )

    from geodl_plugin.core.models.model_file import load_model_file
    from geodl_plugin.gui.project_state import DockState
    from geodl_plugin.gui.project_state import save as save_dock_state
    from geodl_plugin.layers import add_result_layers

    project = QgsProject.instance()
    project.clear()
    image = QgsRasterLayer(str(scene), "Landsat 8 (B4, B3, B2)")
    for band in (1, 2, 3):  # the scene's fill value, kept in the project as the layer's user nodata
        image.dataProvider().setUserNoDataValue(band, [QgsRasterRange(0, 0)])
    renderer = image.renderer()
    renderer.setRedBand(3)
    renderer.setGreenBand(2)
    renderer.setBlueBand(1)
    project.addMapLayer(image)
    labels = QgsVectorLayer(str(polygons), "Labelled polygons", "ogr")
    project.addMapLayer(labels)
    classes = load_model_file(out / "model.geodl").classes
    layers = add_result_layers(
        str(out / "classified.tif"), classes, str(out / "confidence.tif"), group_name="GeoDL pixel DNN", project=project
    )
    project.layerTreeRoot().findLayer(layers[1].id()).setItemVisibilityChecked(False)
    points = QgsVectorLayer(str(out / "points.gpkg"), "Training points", "ogr")
    project.addMapLayer(points)
    project.layerTreeRoot().findLayer(points.id()).setItemVisibilityChecked(False)
    project.setCrs(image.crs())
    # The dock's state, so opening demo.qgz with the plugin shows this session's classes, labels and model.
    save_dock_state(
        DockState(
            classes=classes.to_json(),
            active_class=0,
            labels_layer_id=points.id(),
            raster_layer_ids=[image.id()],
            model_path=str((out / "model.geodl").resolve()),
            output_dir=str(out.resolve()),
            epochs=150,
            batch_size=32,
        ),
        project,
    )
    project.write(str(out / "demo.qgz"))

    layout = QgsPrintLayout(project)
    layout.initializeDefaults()
    page = layout.pageCollection().page(0)
    page.setPageSize(QgsLayoutSize(280, 200, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    item = QgsLayoutItemMap(layout)
    item.attemptMove(QgsLayoutPoint(5, 5, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    item.attemptResize(QgsLayoutSize(180, 190, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    item.setLayers([layers[0], labels])
    item.setExtent(layers[0].extent())
    layout.addLayoutItem(item)
    legend = QgsLayoutItemLegend(layout)
    legend.setTitle("Land cover (GeoDL)")
    legend.setLinkedMap(item)
    legend.setAutoUpdateModel(False)
    legend.model().rootGroup().clear()
    node = legend.model().rootGroup().addLayer(layers[0])
    node.setName("Classes")
    QgsLegendRenderer.setNodeLegendStyle(node, QgsLegendStyle.Hidden)
    layout.addLayoutItem(legend)
    legend.attemptMove(QgsLayoutPoint(188, 10, QgsUnitTypes.LayoutUnit.LayoutMillimeters))
    settings = QgsLayoutExporter.ImageExportSettings()
    settings.dpi = 100
    QgsLayoutExporter(layout).exportToImage(str(out / "map.png"), settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/sample"))
    parser.add_argument("--out", type=Path, default=Path("demo-output"))
    parser.add_argument("--epochs", type=int, default=150)
    args = parser.parse_args()
    app, _ = start_qgis()  # noqa: F841 - keep the application alive
    started = time.perf_counter()
    run(args.data, args.out, args.epochs)
    print(f"demo finished in {time.perf_counter() - started:.0f} s; outputs in {args.out}/")
    finish(0)
