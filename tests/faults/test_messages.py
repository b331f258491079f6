"""Everyday mistakes are one clear message, with no traceback: model files, rasters, labels, parameters."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tests.core.synthetic import ORIGIN, PIXEL, write_points, write_raster

from .conftest import stage, truth_points


def _predict(raster, model, tmp_path):
    return {"INPUT": raster, "MODEL": model, "OUTPUT": tmp_path / "c.tif"}


def _rewrite_manifest(src: Path, dst: Path, change) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            zout.writestr(item, data)
    return dst


def test_missing_model_file(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    fault("predict", _predict(d["scene.tif"], tmp_path / "typo.geodl", tmp_path), r"typo\.geodl' does not exist", d.values())


def test_model_file_that_is_text(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    bad = tmp_path / "m.geodl"
    bad.write_text("not a model")
    fault("predict", _predict(d["scene.tif"], bad, tmp_path), r"not a geodl model file, or it is damaged", [d["scene.tif"], bad])


def test_truncated_model_file(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    cut = tmp_path / "cut.geodl"
    cut.write_bytes(d["rf.geodl"].read_bytes()[:300])
    fault("predict", _predict(d["scene.tif"], cut, tmp_path), r"damaged", [d["scene.tif"], cut])


def test_model_path_is_a_folder(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    (tmp_path / "m.geodl").mkdir()
    fault("predict", _predict(d["scene.tif"], tmp_path / "m.geodl", tmp_path), r"is a folder", [d["scene.tif"]])


def test_manifest_with_a_class_added(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    classes = lambda m: m["mlm:output"][0]["classification:classes"].append(  # noqa: E731
        {"value": 9, "name": "cloud", "color_hint": "ffffff"}
    )
    bad = _rewrite_manifest(d["rf.geodl"], tmp_path / "t.geodl", classes)
    fault(
        "predict", _predict(d["scene.tif"], bad, tmp_path), r"5 class\(es\) in the manifest but the network gives 4", [d["scene.tif"], bad]
    )


def test_manifest_with_a_band_removed(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    bad = _rewrite_manifest(d["rf.geodl"], tmp_path / "t.geodl", lambda m: m["mlm:input"][0]["bands"].pop())
    fault(
        "evaluate",
        {"MODEL": bad, "SAMPLES": world / "s.tfrecord.gz", "OUTPUT": tmp_path / "r.json"},
        r"inconsistent: 2 band\(s\) in the manifest",
        [d["scene.tif"], bad],
    )


def test_manifest_without_classes(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")
    bad = _rewrite_manifest(d["rf.geodl"], tmp_path / "t.geodl", lambda m: m.pop("mlm:output"))
    fault("predict", _predict(d["scene.tif"], bad, tmp_path), r"damaged manifest", [d["scene.tif"], bad])


def test_manifest_with_duplicate_class_ids(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif", "rf.geodl")

    def dup(m):
        m["mlm:output"][0]["classification:classes"][1]["value"] = 1

    bad = _rewrite_manifest(d["rf.geodl"], tmp_path / "t.geodl", dup)
    fault("predict", _predict(d["scene.tif"], bad, tmp_path), r"damaged manifest.*unique", [d["scene.tif"], bad])


def test_vrt_with_a_missing_source(world, tmp_path, fault):
    from osgeo import gdal

    d = stage(world, tmp_path, "rf.geodl")
    src = tmp_path / "part.tif"
    src.write_bytes((world / "scene.tif").read_bytes())
    gdal.BuildVRT(str(tmp_path / "v.vrt"), [str(src)]).FlushCache()
    src.unlink()
    fault(
        "predict",
        _predict(tmp_path / "v.vrt", d["rf.geodl"], tmp_path),
        r"refers to file\(s\) that do not exist",
        [tmp_path / "v.vrt", d["rf.geodl"]],
    )


def test_vrt_with_a_missing_source_at_extraction(world, tmp_path, fault):
    from osgeo import gdal

    d = stage(world, tmp_path, "points.gpkg")
    src = tmp_path / "part.tif"
    src.write_bytes((world / "scene.tif").read_bytes())
    gdal.BuildVRT(str(tmp_path / "v.vrt"), [str(src)]).FlushCache()
    src.unlink()
    fault(
        "extractsamples",
        {"INPUT": [str(tmp_path / "v.vrt")], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"do not exist",
        [tmp_path / "v.vrt", d["points.gpkg"]],
    )


def test_hidden_units_that_are_not_numbers(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "PIXEL_DNN_HIDDEN_UNITS": "64,abc", "OUTPUT": tmp_path / "m.geodl"},
        r"Hidden units '64,abc' must be positive whole numbers",
        [d["s.tfrecord.gz"]],
    )


def test_hidden_units_of_zero(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "PIXEL_DNN_HIDDEN_UNITS": "64,0", "OUTPUT": tmp_path / "m.geodl"},
        r"must be positive whole numbers",
        [d["s.tfrecord.gz"]],
    )


def test_hidden_units_negative(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "PIXEL_DNN_HIDDEN_UNITS": "-5", "OUTPUT": tmp_path / "m.geodl"},
        r"must be positive whole numbers",
        [d["s.tfrecord.gz"]],
    )


def test_learning_rate_zero(world, tmp_path, fault):
    """Refused by the parameter's own bound in Processing, and by the parameters the dock validates."""
    import pytest

    from geodl_plugin.core.runtime.errors import GeoDLError
    from geodl_plugin.core.train.trainer import TrainParams

    d = stage(world, tmp_path, "s.tfrecord.gz")
    fault(
        "train", {"SAMPLES": d["s.tfrecord.gz"], "LEARNING_RATE": 0, "OUTPUT": tmp_path / "m.geodl"}, r"LEARNING_RATE", [d["s.tfrecord.gz"]]
    )
    with pytest.raises(GeoDLError, match="learning rate must be above 0"):
        TrainParams(samples=[str(d["s.tfrecord.gz"])], output=str(tmp_path / "m.geodl"), learning_rate=0).validate()


def test_missing_samples_file(world, tmp_path, fault):
    fault("train", {"SAMPLES": tmp_path / "nope.tfrecord.gz", "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl"}, r"nope\.tfrecord\.gz", [])


def test_labels_whose_geometries_are_all_null(world, tmp_path, fault):
    from osgeo import ogr, osr

    d = stage(world, tmp_path, "scene.tif")
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32621)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "null.gpkg"))
    lyr = ds.CreateLayer("points", srs, ogr.wkbPoint)
    lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    for name in ("water", "tree", "crop"):
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("name", name)
        lyr.CreateFeature(f)
    ds = None
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": tmp_path / "null.gpkg", "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"None of the 3 feature\(s\) .* has a geometry",
        [d["scene.tif"], tmp_path / "null.gpkg"],
    )


def test_labels_whose_class_field_is_empty(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    xy, _ = truth_points(step=12)
    write_points(tmp_path / "e.gpkg", xy, [""] * len(xy))
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": tmp_path / "e.gpkg", "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"have an empty 'name'",
        [d["scene.tif"], tmp_path / "e.gpkg"],
    )


def test_all_nodata_raster_says_how_many_samples_were_dropped(world, tmp_path, fault):
    d = stage(world, tmp_path, "points.gpkg")
    empty = write_raster(tmp_path / "empty.tif", np.zeros((3, 48, 48), np.uint16), nodata=0)
    fault(
        "extractsamples",
        {"INPUT": [str(empty)], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"\d+ of \d+ point\(s\) were dropped because they fall on nodata pixels \(nodata value 0\)",
        [empty, d["points.gpkg"]],
    )


def test_partial_nodata_is_a_warning_not_an_error(world, tmp_path, succeeds):
    from .conftest import scene_array

    d = stage(world, tmp_path, "points.gpkg")
    data = scene_array()
    data[:, :, :6] = 0
    raster = write_raster(tmp_path / "holes.tif", data, nodata=0)
    rec = succeeds(
        "extractsamples",
        {"INPUT": [str(raster)], "LABELS": d["points.gpkg"], "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        [raster, d["points.gpkg"]],
    )
    assert any("on nodata pixels were left out" in w for w in rec.warnings)
    assert not any("nodata" in e for e in rec.errors)


def test_labels_outside_the_raster(world, tmp_path, fault):
    d = stage(world, tmp_path, "scene.tif")
    write_points(tmp_path / "far.gpkg", [(ORIGIN[0] - 1e5, ORIGIN[1]), (ORIGIN[0] - 2e5, ORIGIN[1] - PIXEL)], ["water", "tree"])
    fault(
        "extractsamples",
        {"INPUT": [str(d["scene.tif"])], "LABELS": tmp_path / "far.gpkg", "CLASS_FIELD": "name", "OUTPUT": tmp_path / "s.tfrecord.gz"},
        r"None of the 2 label points falls inside",
        [d["scene.tif"], tmp_path / "far.gpkg"],
    )


def test_raster_with_the_wrong_band_count(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    two = write_raster(tmp_path / "two.tif", np.ones((2, 48, 48), np.uint16), nodata=0)
    fault("predict", _predict(two, d["rf.geodl"], tmp_path), r"has 2 band\(s\) but the model", [two, d["rf.geodl"]])


def test_corrupt_raster(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    bad = tmp_path / "bad.tif"
    bad.write_bytes((world / "scene.tif").read_bytes()[:600])
    fault("predict", _predict(bad, d["rf.geodl"], tmp_path), r"bad\.tif", [bad, d["rf.geodl"]])


def test_dependency_message_names_the_interpreter_qgis_runs(monkeypatch):
    """Under qgis_process sys.executable is the first python3 on PATH (here pyenv's, which cannot import qgis):
    the install command must name this installation's own interpreter instead."""
    import sys

    from geodl_plugin.core.runtime import dependencies

    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    monkeypatch.setattr(sys, "exec_prefix", sys.base_exec_prefix)
    monkeypatch.setattr(sys, "executable", "/root/.pyenv/shims/python3")
    exe = dependencies.qgis_python_executable()
    assert Path(exe).parent == Path(sys.base_exec_prefix) / "bin"
    assert Path(exe).name.startswith(f"python{sys.version_info.major}")
    assert dependencies.install_command(["keras"]).startswith(exe + " -m pip install")
