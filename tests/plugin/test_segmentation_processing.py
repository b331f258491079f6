"""geodl:rasterizemask and geodl:chip through the Processing framework, on the synthetic scene."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO


def _make_scene(tmp_path):
    spec = importlib.util.spec_from_file_location("make_synthetic_scene", REPO / "scripts" / "make_synthetic_scene.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_synthetic_scene"] = module
    spec.loader.exec_module(module)
    return module.make_scene(tmp_path / "scene", size=64, points_per_class=15, seed=0)


def test_rasterize_mask_then_chip(geodl_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingException

    from geodl_plugin.core.data.chips import load_chips

    scene = _make_scene(tmp_path)
    mask = processing.run(
        "geodl:rasterizemask",
        {"INPUT": str(scene.image), "LABELS": str(scene.points), "CLASS_FIELD": "class_name", "OUTPUT": str(tmp_path / "mask.tif")},
    )["OUTPUT"]
    result = processing.run(
        "geodl:chip",
        {
            "INPUT": [str(scene.image)],
            "MASK": mask,
            "PATCH_SIZE": 16,
            "STRIDE": 8,
            "PADDING": 4,
            "TEST_FRACTION": 0.2,
            "OUTPUT": str(tmp_path / "chips.tfrecord.gz"),
            "TEST_OUTPUT": str(tmp_path / "test.tfrecord.gz"),
            "HISTOGRAM": str(tmp_path / "hist.png"),
        },
    )
    chips = load_chips(result["OUTPUT"])
    assert chips.x.shape[1:] == (16, 16, 4) and chips.classes.names == ["crop", "forest", "urban", "water"]
    assert (tmp_path / "hist.png").exists()
    with pytest.raises(QgsProcessingException, match="smaller than one"):
        processing.run(
            "geodl:chip", {"INPUT": [str(scene.image)], "MASK": mask, "PATCH_SIZE": 128, "OUTPUT": str(tmp_path / "big.tfrecord.gz")}
        )


@pytest.mark.slow
def test_segmentation_chain_in_qgis_process(qgis_process, tmp_path):
    """rasterizemask → chip → train (U-Net) → predict, each through qgis_process.bin."""
    scene = _make_scene(tmp_path)
    run = qgis_process.run
    run("rasterizemask", INPUT=scene.image, LABELS=scene.points, CLASS_FIELD="class_name", OUTPUT=tmp_path / "mask.tif")
    run("chip", INPUT=scene.image, MASK=tmp_path / "mask.tif", PATCH_SIZE=16, STRIDE=8, PADDING=4, OUTPUT=tmp_path / "chips.tfrecord.gz")
    run(
        "train",
        SAMPLES=tmp_path / "chips.tfrecord.gz",
        MODEL_TYPE=2,
        EPOCHS=2,
        BATCH_SIZE=8,
        TEST_FRACTION=0,
        OUTPUT=tmp_path / "unet.geodl",
    )
    run(
        "predict",
        INPUT=scene.image,
        MODEL=tmp_path / "unet.geodl",
        OUTPUT=tmp_path / "classes.tif",
        OUTPUT_CONFIDENCE=tmp_path / "confidence.tif",
    )
    import rasterio

    with rasterio.open(tmp_path / "classes.tif") as out, rasterio.open(scene.image) as src:
        assert (out.transform, out.shape) == (src.transform, src.shape)
        assert set(out.read(1).ravel().tolist()) <= {1, 2, 3, 4, 255}
