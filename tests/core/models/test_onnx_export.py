"""ONNX export for Deepness: the file runs under onnxruntime with Deepness' own preprocessing (/255, NCHW)
and gives the Keras model's probabilities on the same tiles; its metadata uses the keys Deepness' code reads;
the STAC MLM item validates against the vendored v1.5.0 schema."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geodl_plugin.core.data.classes import ClassInfo, ClassTable
from geodl_plugin.core.models.model_file import load_model_file, make_manifest, save_model_file
from geodl_plugin.core.runtime.errors import GeoDLError

SCHEMAS = Path(__file__).parent / "mlm_schema"
CLASSES = ClassTable([ClassInfo(1, "open water", "#1f78b4"), ClassInfo(2, "forest", "#33a02c"), ClassInfo(5, "built-up", "#e31a1c")])
MEAN = np.array([900.0, 1400.0, 2600.0, 3100.0])  # uint16 digital numbers, far beyond 0..255
STD = np.array([120.0, 250.0, 400.0, 600.0])
TOLERANCE = 1e-4  # max |ONNX − Keras| probability accepted here (float32 graphs, observed ~1e-7)


def _manifest(architecture: str, patch: int = 1, units: str = "metre") -> dict:
    task = "semantic-segmentation" if architecture == "unet" else "classification"
    return make_manifest(
        name="onnx test",
        architecture=architecture,
        task=task,
        bands=["B2", "B3", "B4", "B8"],
        classes=CLASSES,
        mean=MEAN,
        std=STD,
        source_dtype="uint16",
        nodata=0,
        pixel_size=[10.0, 10.0],
        crs_wkt="",
        crs_units=units,
        patch_size=patch,
        metrics={"overall_accuracy": 0.9, "kappa": 0.8},
        training={"epochs": 3, "seed": 1},
    )


@pytest.fixture(scope="module")
def dnn_file(tmp_path_factory) -> Path:
    import keras

    from geodl_plugin.core.models.networks import build_pixel_dnn

    keras.utils.set_random_seed(3)
    model = build_pixel_dnn(4, 3, MEAN, STD**2, hidden_units=(16, 8), dropout=0.2)
    path = tmp_path_factory.mktemp("dnn") / "dnn.geodl"
    return save_model_file(path, model, _manifest("dnn"))


@pytest.fixture(scope="module")
def unet_file(tmp_path_factory) -> Path:
    import keras

    from geodl_plugin.core.models.unet import build_unet

    keras.utils.set_random_seed(4)
    model = build_unet(4, 3, MEAN, STD**2, depth=2, base_filters=4)
    manifest = _manifest("unet", patch=32)
    manifest["training"]["network"] = {"depth": 2}
    path = tmp_path_factory.mktemp("unet") / "unet.geodl"
    return save_model_file(path, model, manifest)


def _tiles(n: int, size: int, seed: int) -> np.ndarray:
    """uint16 tiles around the training statistics, as Deepness reads a uint16 layer (NHWC, raw values)."""
    rng = np.random.default_rng(seed)
    return np.clip(MEAN + STD * rng.normal(0, 1.5, (n, size, size, 4)), 0, 65535).astype(np.uint16)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["dnn", "unet"])
def test_onnx_matches_keras_under_deepness_preprocessing(which, dnn_file, unet_file, tmp_path):
    import onnx

    from geodl_plugin.core.models.onnx_export import OnnxExportParams, export_onnx, keras_tiles, run_onnx

    source = dnn_file if which == "dnn" else unet_file
    out = tmp_path / f"{which}.onnx"
    result = export_onnx(OnnxExportParams(str(source), str(out), tile_size=62 if which == "unet" else 48))
    bundle = load_model_file(source)
    tile = result.tile_size
    assert tile == (64 if which == "unet" else 48)  # rounded up to the U-Net's 2^depth
    tiles = _tiles(3, tile, seed=7)
    onnx_probs = run_onnx(out, tiles)  # Deepness' own steps: /255, identity standardisation, NHWC → NCHW
    keras_probs = keras_tiles(bundle, tiles)  # geodl's: raw values into the Keras model
    diff = float(np.abs(onnx_probs - keras_probs).max())
    print(f"{which}: route {result.route}, max |ONNX − Keras| = {diff:.2e} over {onnx_probs.size} probabilities")
    assert onnx_probs.shape == (3, 3, tile, tile)
    assert diff <= TOLERANCE
    assert (onnx_probs.argmax(axis=1) == keras_probs.argmax(axis=1)).mean() > 0.999
    assert np.allclose(onnx_probs.sum(axis=1), 1.0, atol=1e-5)
    # the normalisation really is geodl's: feeding the graph without Deepness' /255 gives other answers
    assert np.abs(run_onnx(out, tiles, deepness_scaling=False) - keras_probs).max() > 0.01

    model = onnx.load(str(out))
    meta = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert meta["model_type"] == "Segmentor"
    assert meta["class_names"] == {"0": "open water", "1": "forest", "2": "built-up"}
    assert meta["tile_size"] == tile and meta["tiles_overlap"] == 15
    assert meta["resolution"] == 1000.0  # 10 m pixels in Deepness' cm/px
    assert meta["standardization_mean"] == [0.0] * 4 and meta["standardization_std"] == [1.0] * 4
    assert meta["geodl_mean"] == MEAN.tolist()
    graph_in = model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_in.type.tensor_type.shape.dim]
    assert graph_in.name == "image" and dims == ["batch", 4, tile, tile]  # NCHW, dynamic batch, as Deepness reads


def test_forest_is_refused_clearly(tmp_path):
    from geodl_plugin.core.models.networks import fit_random_forest
    from geodl_plugin.core.models.onnx_export import OnnxExportParams, export_onnx

    rng = np.random.default_rng(0)
    forest = fit_random_forest(rng.normal(size=(60, 4)), rng.integers(0, 3, 60), 3, n_trees=3, max_depth=3)
    manifest = _manifest("rf")
    path = save_model_file(tmp_path / "rf.geodl", forest, manifest)
    with pytest.raises(GeoDLError, match="not a neural network"):
        export_onnx(OnnxExportParams(str(path), str(tmp_path / "rf.onnx")))
    assert not (tmp_path / "rf.onnx").exists()
    with pytest.raises(GeoDLError, match=r"\.onnx"):
        OnnxExportParams(str(path), str(tmp_path / "rf.bin")).validate()


def _validator():
    import jsonschema

    store = {}
    for name, url in [
        ("mlm-v1.5.0.json", "https://stac-extensions.github.io/mlm/v1.5.0/schema.json"),
        ("classification-v1.1.0.json", "https://stac-extensions.github.io/classification/v1.1.0/schema.json"),
        ("raster-v1.1.0.json", "https://stac-extensions.github.io/raster/v1.1.0/schema.json"),
        ("processing-v1.1.0.json", "https://stac-extensions.github.io/processing/v1.1.0/schema.json"),
    ]:
        store[url] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    mlm = store["https://stac-extensions.github.io/mlm/v1.5.0/schema.json"]
    resolver = jsonschema.RefResolver.from_schema(mlm, store=store)
    cls = jsonschema.validators.validator_for(mlm)
    cls.check_schema(mlm)
    return cls(mlm, resolver=resolver), cls(store["https://stac-extensions.github.io/classification/v1.1.0/schema.json"], resolver=resolver)


@pytest.mark.parametrize("architecture", ["dnn", "unet", "rf"])
def test_stac_item_validates_against_mlm_v150(architecture, tmp_path):
    from geodl_plugin.core.models.stac_item import stac_item, write_stac_item

    mlm, classification = _validator()
    manifest = _manifest(architecture, patch=32 if architecture == "unet" else 1)
    manifest["mlm:framework"] = "scikit-learn" if architecture == "rf" else "keras"
    path = write_stac_item(
        tmp_path / "item.json",
        manifest,
        model_path=tmp_path / "m.geodl",
        onnx_path=None if architecture == "rf" else tmp_path / "m.onnx",
        onnx_tile=None if architecture == "rf" else 64,
    )
    item = json.loads(path.read_text())
    mlm.validate(item)
    classification.validate(item)
    props = item["properties"]
    assert props["mlm:name"] == "onnx test" and props["mlm:architecture"] == architecture
    assert props["mlm:input"][0]["bands"] == ["B2", "B3", "B4", "B8"]
    assert [c["value"] for c in props["mlm:output"][0]["classification:classes"]] == [1, 2, 5]
    models = {k: a for k, a in item["assets"].items() if "mlm:model" in a["roles"]}
    assert models["model"]["href"] == "m.geodl" and models["model"]["mlm:artifact_type"]
    assert ("onnx" in models) == (architecture != "rf")
    # the schema really checks: a model asset without its artifact type, or an item without mlm:input, fails
    import jsonschema

    broken = json.loads(json.dumps(item))
    del broken["assets"]["model"]["mlm:artifact_type"]
    with pytest.raises(jsonschema.ValidationError):
        mlm.validate(broken)
    broken = json.loads(json.dumps(item))
    del broken["properties"]["mlm:input"]
    with pytest.raises(jsonschema.ValidationError):
        mlm.validate(broken)
    assert stac_item(manifest, "x.geodl")["assets"]["model"]["href"] == "x.geodl"
