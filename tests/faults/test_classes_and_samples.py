"""Evaluate matches classes by name; samples without a sidecar record unknown as unknown and never make a model
refuse its own imagery; damaged sidecars are one clear message."""

from __future__ import annotations

import json

import pytest

from tests.core.synthetic import write_points

from .conftest import stage, truth_points


def _extract_core(raster, points, out, **kw):
    from geodl_plugin.core.data.labels import read_labels
    from geodl_plugin.core.data.samples import extract_samples

    return extract_samples([str(raster)], read_labels(points, "name", **kw), out)


def test_evaluate_remaps_a_two_class_sample_set_by_name(world, tmp_path, succeeds):
    """Labels with only tree and water number them 1 and 2; the model's 1 and 2 are crop and developed."""
    d = stage(world, tmp_path, "rf.geodl")
    xy, names = truth_points(step=3, classes=("tree", "water"))
    write_points(tmp_path / "tw.gpkg", xy, names)
    _extract_core(world / "scene.tif", tmp_path / "tw.gpkg", tmp_path / "tw.tfrecord.gz")
    assert [c["value"] for c in json.loads((tmp_path / "tw.tfrecord.gz.json").read_text())["classes"]] == [1, 2]
    rec = succeeds(
        "evaluate",
        {"MODEL": d["rf.geodl"], "SAMPLES": tmp_path / "tw.tfrecord.gz", "OUTPUT": tmp_path / "r.json"},
        [d["rf.geodl"], tmp_path / "tw.tfrecord.gz"],
    )
    assert rec.results["OVERALL_ACCURACY"] == pytest.approx(1.0)


def test_evaluate_refuses_samples_whose_class_names_the_model_lacks(world, tmp_path, fault):
    d = stage(world, tmp_path, "rf.geodl")
    xy, names = truth_points(step=3, classes=("tree", "water"))
    write_points(tmp_path / "x.gpkg", xy, ["forest" if n == "tree" else "lake" for n in names])
    _extract_core(world / "scene.tif", tmp_path / "x.gpkg", tmp_path / "x.tfrecord.gz")
    fault(
        "evaluate",
        {"MODEL": d["rf.geodl"], "SAMPLES": tmp_path / "x.tfrecord.gz", "OUTPUT": tmp_path / "r.json"},
        r"'forest', 'lake' are not classes of the model",
        [d["rf.geodl"], tmp_path / "x.tfrecord.gz"],
    )


def test_evaluate_of_a_map_matches_reference_names_to_the_maps_classes(world, tmp_path, succeeds):
    d = stage(world, tmp_path, "rf.geodl")
    succeeds("predict", {"INPUT": world / "scene.tif", "MODEL": d["rf.geodl"], "OUTPUT": tmp_path / "map.tif"}, [])
    xy, names = truth_points(step=5, classes=("tree", "water"))
    write_points(tmp_path / "ref.gpkg", xy, names)
    rec = succeeds(
        "evaluate",
        {"CLASSIFIED": tmp_path / "map.tif", "REFERENCE": tmp_path / "ref.gpkg", "REFERENCE_FIELD": "name", "OUTPUT": tmp_path / "r.json"},
        [tmp_path / "map.tif", tmp_path / "ref.gpkg"],
    )
    assert rec.results["OVERALL_ACCURACY"] == pytest.approx(1.0)


def _no_sidecar(world, tmp_path):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    (tmp_path / "s.tfrecord.gz.json").unlink()
    return d["s.tfrecord.gz"]


def test_samples_without_sidecar_train_a_model_that_accepts_its_imagery(world, tmp_path, succeeds):
    from geodl_plugin.core.models.model_file import read_manifest

    samples = _no_sidecar(world, tmp_path)
    succeeds("train", {"SAMPLES": samples, "MODEL_TYPE": 1, "SPLIT": 1, "OUTPUT": tmp_path / "m.geodl"}, [samples])
    raster = read_manifest(tmp_path / "m.geodl")["raster"]
    assert raster["source_dtype"] is None and raster["pixel_size"] is None and raster["crs_wkt"] == ""
    rec = succeeds(
        "predict", {"INPUT": world / "scene.tif", "MODEL": tmp_path / "m.geodl", "OUTPUT": tmp_path / "c.tif"}, [tmp_path / "m.geodl"]
    )
    assert rec.results["OUTPUT"]


def test_class_names_and_pixel_size_given_for_samples_without_sidecar(world, tmp_path, succeeds):
    from geodl_plugin.core.models.model_file import ModelBundle, read_manifest

    samples = _no_sidecar(world, tmp_path)
    succeeds(
        "train",
        {
            "SAMPLES": samples,
            "MODEL_TYPE": 1,
            "SPLIT": 1,
            "CLASS_NAMES": "crop,developed,tree,water",
            "SOURCE_PIXEL_SIZE": 30,
            "OUTPUT": tmp_path / "m.geodl",
        },
        [samples],
    )
    manifest = read_manifest(tmp_path / "m.geodl")
    assert ModelBundle(manifest, None).classes.names == ["crop", "developed", "tree", "water"]
    assert manifest["raster"]["pixel_size"] == [30.0, 30.0]


def test_wrong_number_of_class_names_is_refused(world, tmp_path, fault):
    samples = _no_sidecar(world, tmp_path)
    fault(
        "train",
        {"SAMPLES": samples, "MODEL_TYPE": 1, "CLASS_NAMES": "a,b", "OUTPUT": tmp_path / "m.geodl"},
        r"2 class names were given for the 4 classes",
        [samples],
    )


def test_sidecar_that_is_not_json(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    side = tmp_path / "s.tfrecord.gz.json"
    side.write_text('{"bands": ["B2", "B3"', encoding="utf-8")
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl"},
        r"sidecar .* is not valid JSON",
        [d["s.tfrecord.gz"], side],
    )


def test_sidecar_with_a_malformed_class_table(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    side = tmp_path / "s.tfrecord.gz.json"
    meta = json.loads(side.read_text())
    meta["classes"] = [{"name": "water"}]
    side.write_text(json.dumps(meta))
    fault(
        "train",
        {"SAMPLES": d["s.tfrecord.gz"], "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl"},
        r"class table in the sidecar .* malformed",
        [d["s.tfrecord.gz"], side],
    )


def test_sidecar_holding_a_list(world, tmp_path, fault):
    d = stage(world, tmp_path, "s.tfrecord.gz")
    side = tmp_path / "s.tfrecord.gz.json"
    side.write_text("[1, 2]")
    fault(
        "evaluate",
        {"MODEL": world / "rf.geodl", "SAMPLES": d["s.tfrecord.gz"], "OUTPUT": tmp_path / "r.json"},
        r"does not hold a JSON object",
        [d["s.tfrecord.gz"], side],
    )


def test_corrupt_samples_file(world, tmp_path, fault):
    bad = tmp_path / "bad.tfrecord.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    fault("train", {"SAMPLES": bad, "MODEL_TYPE": 1, "OUTPUT": tmp_path / "m.geodl"}, r"bad\.tfrecord\.gz", [bad])
