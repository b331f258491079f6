"""An output that is, resolves to, or is a sidecar of an input is refused before anything is written, by every
algorithm (the hook in processing/base.py reads the parameter definitions) and by the core parameters the dock
validates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import stage

SAME = r"(would overwrite|is) the input .*destroy the input"


def _predict(d, out, **extra):
    return {"INPUT": d["scene.tif"], "MODEL": d["rf.geodl"], "OUTPUT": out, **extra}


def test_predict_output_is_the_input_raster(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    fault("predict", _predict(d, d["scene.tif"]), SAME, d.values())


def test_predict_output_is_a_symlink_to_the_input(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    (tmp_path / "link.tif").symlink_to(d["scene.tif"])
    fault("predict", _predict(d, tmp_path / "link.tif"), SAME, d.values())


def test_predict_output_through_a_symlinked_folder(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    (tmp_path / "alias").symlink_to(tmp_path, target_is_directory=True)
    fault("predict", _predict(d, tmp_path / "alias" / "scene.tif"), SAME, d.values())


def test_predict_output_is_a_hard_link_to_the_input(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    os.link(d["scene.tif"], tmp_path / "hard.tif")
    fault("predict", _predict(d, tmp_path / "hard.tif"), SAME, d.values())


def test_predict_output_as_a_relative_path_to_the_input(world, tmp_path, fault, monkeypatch):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    fault("predict", _predict(d, "../sub/../scene.tif"), SAME, d.values())


def test_predict_confidence_output_is_the_input(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    fault("predict", _predict(d, tmp_path / "c.tif", OUTPUT_CONFIDENCE=d["scene.tif"]), SAME, d.values())


def test_predict_output_is_the_inputs_overview_file(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    (tmp_path / "scene.tif.ovr").write_bytes(b"overviews")
    fault("predict", _predict(d, tmp_path / "scene.tif.ovr"), SAME, [*d.values(), tmp_path / "scene.tif.ovr"])


def test_extract_output_is_the_labels_geopackage(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": d["points.gpkg"]},
        SAME,
        d.values(),
    )


def test_extract_output_is_the_raster(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": d["scene.tif"]},
        SAME,
        d.values(),
    )


def test_extract_output_is_the_rasters_sidecar(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    aux = tmp_path / "scene.tif.aux.xml"
    aux.write_text("<PAMDataset/>")
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": aux},
        SAME,
        [*d.values(), aux],
    )


def test_train_output_is_the_samples(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": d["s.tfrecord.gz"]},
        SAME,
        [d["s.tfrecord.gz"], tmp_path / "s.tfrecord.gz.json"],
    )


def test_train_output_is_the_samples_sidecar(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    side = tmp_path / "s.tfrecord.gz.json"
    fault("train", {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": side}, SAME, [d["s.tfrecord.gz"], side])


def test_train_held_out_output_is_the_samples(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl", "OUTPUT_TEST_SAMPLES": d["s.tfrecord.gz"]},
        SAME,
        [d["s.tfrecord.gz"]],
    )


def test_train_two_outputs_are_one_file(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl", "OUTPUT_TEST_SAMPLES": tmp_path / "m.geodl"},
        "same file",
        [d["s.tfrecord.gz"]],
    )


def test_evaluate_report_is_the_samples_sidecar(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz", "rf.geodl")
    side = tmp_path / "s.tfrecord.gz.json"
    fault("evaluate", {"MODEL": d["rf.geodl"], "SAMPLES": d["s.tfrecord.gz"], "OUTPUT": side}, SAME, [*d.values(), side])


def test_evaluate_plot_is_the_model(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz", "rf.geodl")
    fault(
        "evaluate",
        {"MODEL": d["rf.geodl"], "SAMPLES": d["s.tfrecord.gz"], "OUTPUT": tmp_path / "r.json", "OUTPUT_PLOT": d["rf.geodl"]},
        SAME,
        d.values(),
    )


def test_samplepoints_output_is_the_polygons(world, tmp_path, fault):
    d = stage(world, tmp_path, "polygons.gpkg")
    fault(
        "samplepoints", {"INPUT": d["polygons.gpkg"], "CLASS_FIELD": "name", "PER_CLASS": 5, "OUTPUT": d["polygons.gpkg"]}, SAME, d.values()
    )


def test_samplepoints_layer_source_with_layername(world, tmp_path, fault):
    d = stage(world, tmp_path, "polygons.gpkg")
    fault(
        "samplepoints",
        {"INPUT": f"{d['polygons.gpkg']}|layername=polygons", "CLASS_FIELD": "name", "PER_CLASS": 5, "OUTPUT": d["polygons.gpkg"]},
        SAME,
        d.values(),
    )


def test_rasterizemask_output_is_the_labels(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "polygons.gpkg")
    fault(
        "rasterizemask",
        {"INPUT": d["scene.tif"], "LABELS": d["polygons.gpkg"], "CLASS_FIELD": "name", "OUTPUT": d["polygons.gpkg"]},
        SAME,
        d.values(),
    )


def test_chip_output_is_the_mask(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    mask = tmp_path / "mask.tif"
    mask.write_bytes(d["scene.tif"].read_bytes())
    fault("chip", {"INPUT": [str(d["scene.tif"])], "MASK": mask, "PATCH_SIZE": 16, "OUTPUT": mask}, SAME, [d["scene.tif"], mask])


def test_core_predict_params_refuse_what_the_dock_would_overwrite(world, tmp_path):
    from geodl_plugin.core.predict.raster_prediction import PredictParams
    from geodl_plugin.core.runtime.errors import GeoDLError

    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    with pytest.raises(GeoDLError, match="destroy the input"):
        PredictParams(
            rasters=[str(d["scene.tif"])], model=str(d["rf.geodl"]), output=str(tmp_path / "c.tif"), confidence_output=str(d["rf.geodl"])
        ).validate()


def test_core_train_params_refuse_the_samples_as_output(world, tmp_path):
    from geodl_plugin.core.runtime.errors import GeoDLError
    from geodl_plugin.core.train.trainer import TrainParams

    d = stage(world, tmp_path, "s.tfrecord.gz")
    with pytest.raises(GeoDLError, match="destroy the input"):
        TrainParams(samples=[str(d["s.tfrecord.gz"])], output=str(tmp_path / "S.TFRECORD.GZ.JSON".lower())).validate()


def test_core_train_from_labels_refuses_samples_over_the_labels(world, tmp_path):
    from geodl_plugin.core.label_training import TrainFromLabelsParams, train_from_labels
    from geodl_plugin.core.runtime.errors import GeoDLError
    from geodl_plugin.core.train.trainer import TrainParams

    d = stage(world, tmp_path, "scene.tif", "points.gpkg")
    params = TrainFromLabelsParams(
        rasters=[str(d["scene.tif"])],
        labels=str(d["points.gpkg"]),
        class_field="name",
        samples=str(d["points.gpkg"]),
        train=TrainParams(samples=[], output=str(tmp_path / "m.geodl")),
    )
    before = d["points.gpkg"].read_bytes()
    with pytest.raises(GeoDLError, match="destroy the input"):
        train_from_labels(params)
    assert d["points.gpkg"].read_bytes() == before


def test_guard_sees_through_spellings(tmp_path):
    """The path logic itself: the same file written differently is the same; a sibling is not."""
    from geodl_plugin.core.io.paths_guard import check_outputs_against_inputs
    from geodl_plugin.core.runtime.errors import GeoDLError

    src = tmp_path / "a.tfrecord.gz"
    src.write_bytes(b"x")
    for out in (f"{tmp_path}/./a.tfrecord.gz", f"{tmp_path}/b/../a.tfrecord.gz", f"{src}.json", f"{src}-wal", f"/vsizip/{src}/member"):
        with pytest.raises(GeoDLError):
            check_outputs_against_inputs([str(src)], [out])
    check_outputs_against_inputs([str(src)], [str(tmp_path / "b.tfrecord.gz"), str(tmp_path / "a.png")])
    shp = tmp_path / "l.shp"
    shp.write_bytes(b"x")
    with pytest.raises(GeoDLError):
        check_outputs_against_inputs([str(shp)], [str(Path(tmp_path / "l.dbf"))])


def test_predict_input_given_as_a_project_layer_id(world, tmp_path, fault):
    from qgis.core import QgsProject, QgsRasterLayer

    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    layer = QgsRasterLayer(str(d["scene.tif"]), "imagery")
    QgsProject.instance().addMapLayer(layer)
    try:
        fault("predict", _predict(d, d["scene.tif"], INPUT=layer.id()), SAME, d.values())
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
