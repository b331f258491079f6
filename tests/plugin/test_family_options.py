"""Every family option set in Processing or the dock reaches the trained model and the prediction, through
the worker process (the options are typed dataclasses that cross its pipe as JSON and are rebuilt there)."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import zipfile

import pytest

from geodl_plugin.core.families import FAMILIES
from geodl_plugin.core.models.family import DNNParams, ModelFamily, TilingParams, UNetParams
from geodl_plugin.core.models.model_file import read_manifest
from geodl_plugin.core.predict.raster_prediction import PredictParams
from geodl_plugin.core.runtime.typed_json import from_jsonable, to_jsonable
from geodl_plugin.core.train.trainer import TrainParams
from tests.conftest import REPO


def _scene(tmp_path):
    spec = importlib.util.spec_from_file_location("make_synthetic_scene", REPO / "scripts" / "make_synthetic_scene.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_synthetic_scene"] = module
    spec.loader.exec_module(module)
    return module.make_scene(tmp_path / "scene", size=64, points_per_class=15, seed=0)


def test_params_survive_the_json_trip_with_their_types():
    params = TrainParams(
        samples=["a.tfrecord"],
        output="m.geodl",
        family="unet",
        options=UNetParams(depth=1, base_filters=4, dice_weight=0.5, augment=False),
        epochs=3,
    )
    back = from_jsonable(TrainParams, to_jsonable(params))
    assert back == params and isinstance(back.options, UNetParams) and back.family is ModelFamily.UNET
    predict = PredictParams(["r.tif"], "m.geodl", "o.tif", tiling=TilingParams(size=64, overlap=16, batch=2))
    again = from_jsonable(PredictParams, to_jsonable(predict))
    assert again == predict and isinstance(again.tiling, TilingParams)
    dnn = from_jsonable(TrainParams, to_jsonable(TrainParams(samples=[], output="", options=DNNParams((32, 16)))))
    assert dnn.options.hidden_units == (32, 16)


def test_an_undeclared_option_is_refused_by_name():
    from geodl_plugin.core.runtime.errors import GeoDLError

    with pytest.raises(GeoDLError, match="no option.*unet_depth"):
        TrainParams(samples=[], output="", family="unet", options={"unet_depth": 2})
    with pytest.raises(GeoDLError, match="Unknown model family 'cnn'"):
        TrainParams(samples=[], output="", family="cnn")


def test_every_family_option_is_a_processing_parameter(geodl_provider):
    train = geodl_provider.algorithm("train")
    names = {p.name() for p in train.parameterDefinitions()}
    for spec in FAMILIES.values():
        for field in dataclasses.fields(spec.params_type):
            name = f"{spec.family.name}_{field.name}".upper()
            assert name in names
            definition = train.parameterDefinition(name)
            default = field.default
            expected = ",".join(map(str, default)) if isinstance(default, tuple) else default
            assert definition.defaultValue() == expected, name
    predict = geodl_provider.algorithm("predict")
    assert {"TILE_SIZE", "TILE_OVERLAP", "TILE_BATCH"} <= {p.name() for p in predict.parameterDefinitions()}
    # the dock and Processing start from the same training defaults
    from geodl_plugin import settings

    assert train.parameterDefinition("BATCH_SIZE").defaultValue() == TrainParams([], "").batch_size == settings.DEFAULTS["train_batch_size"]


@pytest.mark.slow
def test_unet_and_tiling_options_set_in_processing_reach_the_model_and_the_map(geodl_provider, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback

    class Messages(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.text = []

        def pushInfo(self, info):  # noqa: N802
            self.text.append(info)

    scene = _scene(tmp_path)
    processing.run(
        "geodl:extractsamples",
        {
            "INPUT": [str(scene.image)],
            "LABELS": str(scene.points),
            "CLASS_FIELD": "class_name",
            "PATCH_SIZE": 17,
            "OUTPUT": str(tmp_path / "patches.tfrecord.gz"),
        },
    )
    processing.run(
        "geodl:train",
        {
            "SAMPLES": str(tmp_path / "patches.tfrecord.gz"),
            "MODEL_TYPE": list(FAMILIES).index(ModelFamily.UNET),
            "EPOCHS": 1,
            "BATCH_SIZE": 8,
            "TEST_FRACTION": 0,
            "OUTPUT": str(tmp_path / "u.geodl"),
            "UNET_DEPTH": 1,
            "UNET_BASE_FILTERS": 6,
            "UNET_DICE_WEIGHT": 0.25,
            "UNET_AUGMENT": False,
        },
    )
    manifest = read_manifest(tmp_path / "u.geodl")
    assert manifest["training"]["options"] == {"depth": 1, "base_filters": 6, "dice_weight": 0.25, "augment": False, "dropout": 0.2}
    assert manifest["training"]["network"]["depth"] == 1
    with zipfile.ZipFile(tmp_path / "u.geodl") as z:
        config = z.read("model.keras")  # the network itself has 6 filters in its first level
    import io
    import json

    with zipfile.ZipFile(io.BytesIO(config)) as inner:
        layers = json.loads(inner.read("config.json"))["config"]["layers"]
    first_conv = next(layer for layer in layers if layer["class_name"] == "Conv2D")
    assert first_conv["config"]["filters"] == 6
    feedback = Messages()
    result = processing.run(
        "geodl:predict",
        {
            "INPUT": str(scene.image),
            "MODEL": str(tmp_path / "u.geodl"),
            "OUTPUT": str(tmp_path / "c.tif"),
            "TILE_SIZE": 32,
            "TILE_OVERLAP": 8,
            "TILE_BATCH": 3,
        },
        feedback=feedback,
    )
    assert (tmp_path / "c.tif").exists() and result["OUTPUT"]
    assert any("tiles of 32×32 px, overlap 8, batches of 3" in t for t in feedback.text), feedback.text
