"""Export a geodl model file as ONNX that the Deepness QGIS plugin runs as a segmentation model.

What Deepness does with an ONNX model (read from its ``processing/models/model_base.py`` and
``preprocessing_utils.py``): it reads a tile of ``tile_size`` × ``tile_size`` pixels at ``resolution`` cm/px
in the layer's own data type (uint16 stays uint16), divides it by 255 (it assumes 8-bit imagery), subtracts
``standardization_mean`` and divides by ``standardization_std`` (identity when absent), transposes NHWC → NCHW
and runs the graph. A "Segmentor" output is (batch, classes, height, width) of per-class probabilities.
It reads its settings from the ONNX custom metadata, every value JSON-encoded: ``model_type``,
``class_names`` (``{"0": name, ...}`` by output channel), ``resolution`` (cm/px), ``tile_size`` (its own
documentation and metadata script say ``tiles_size``, but the code reads ``tile_size``), ``tiles_overlap``
(percent), ``standardization_mean`` / ``standardization_std``.

geodl's networks normalise raw pixel values themselves (the first layer holds the training mean and
variance). So the exported graph starts by multiplying by 255, undoing Deepness' division exactly, and the
metadata's standardisation is the identity (mean 0, std 1): uint16 multispectral imagery gets geodl's
own z-score, the same as in geodl. The training statistics are also written (``geodl_mean``/``geodl_std``)
for reference.

Both geodl networks become one NCHW image → NCHW probabilities graph: the U-Net is fully convolutional;
the pixel DNN's dense layers act on the channel axis of every pixel (a 1×1 convolution in effect). The
random forest has no network to export.

Route: Keras 3's ``model.export(format="onnx")`` first. On the TensorFlow backend it leaves the
``Normalization`` layer's mean and variance as extra graph inputs (they are tensors captured from outside
the traced function), which onnxruntime then demands; when that happens the same function is frozen
(captured tensors become constants) and converted with tf2onnx. Either way the result is checked against the
Keras model with onnxruntime before the file is written.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..io.atomic import atomic_path, check_writable
from ..runtime.errors import GeoDLError
from ..runtime.progress import Progress, ensure
from .model_file import (
    ModelBundle,
    load_model_file,
    manifest_architecture,
    manifest_bands,
    manifest_classes,
    manifest_name,
    manifest_statistics,
)

log = logging.getLogger("geodl")

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
DEEPNESS_SCALE = 255.0  # Deepness divides every input by this
TOLERANCE = 1e-4  # largest |ONNX − Keras| probability accepted by the export's own check
OPSET = 17


@dataclass
class OnnxExportParams:
    model: str  # the .geodl model file
    output: str  # the .onnx file to write
    tile_size: int = 256  # pixels a side of the tiles Deepness feeds (rounded up for a U-Net's pooling)
    tiles_overlap: int = 15  # percent, Deepness' default tile overlap
    stac_output: Optional[str] = None  # also write a STAC item (MLM extension) describing the ONNX file

    def validate(self) -> None:
        if not self.model:
            raise GeoDLError("No model file given. Train a model first (geodl:train).")
        if not self.output:
            raise GeoDLError("No output file given. Choose where to write the .onnx file.")
        if not str(self.output).lower().endswith(".onnx"):
            raise GeoDLError(f"The output '{self.output}' should end in .onnx (Deepness looks for that suffix).")
        if not 16 <= int(self.tile_size) <= 4096:
            raise GeoDLError("The tile size must be between 16 and 4096 pixels.")
        if not 0 <= int(self.tiles_overlap) < 50:
            raise GeoDLError("The tile overlap must be between 0 and 49 percent.")
        check_writable(self.output)
        if self.stac_output:
            check_writable(self.stac_output)


@dataclass
class OnnxExportResult:
    output: str
    route: str  # "keras" (model.export) or "tf2onnx" (frozen function)
    tile_size: int
    max_abs_difference: float  # ONNX vs Keras on a random tile, from the export's own check
    metadata: dict[str, str] = field(default_factory=dict)
    stac_output: Optional[str] = None


def exportable(bundle: ModelBundle) -> Optional[str]:
    """Why this model cannot be exported to ONNX, or None when it can."""
    import_shape = getattr(bundle.model, "input_shape", None)
    if import_shape is None:
        return (
            f"The {bundle.architecture} model is not a neural network; only Keras models (pixel DNN, U-Net) "
            "can be exported to ONNX. Train a pixel DNN or a U-Net for Deepness."
        )
    if len(import_shape) not in (2, 4):
        return (
            f"The {bundle.architecture} model takes input of shape {import_shape}; Deepness feeds single "
            "images, so only per-pixel and image models can be exported."
        )
    return None


def _pooling_multiple(bundle: ModelBundle) -> int:
    """2^(number of 2× poolings): an image model's tile must be a multiple of it."""
    if len(bundle.model.input_shape) != 4:
        return 1
    import keras

    return 2 ** sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in bundle.model.layers)


def deepness_graph(bundle: ModelBundle, tile_size: int) -> Any:
    """A Keras model from what Deepness feeds, (batch, bands, tile, tile) = raw / 255, to
    (batch, classes, tile, tile) probabilities."""
    import keras

    n_bands = len(bundle.bands)
    inputs = keras.Input((n_bands, tile_size, tile_size), name=INPUT_NAME)
    x = keras.layers.Rescaling(DEEPNESS_SCALE, name="undo_deepness_scaling")(inputs)
    x = keras.layers.Permute((2, 3, 1), name="to_channels_last")(x)
    model = bundle.model
    if len(model.input_shape) == 4:
        x = model(x, training=False)
    else:  # per-pixel network: its layers act on the last (band) axis of every pixel
        for layer in model.layers[1:]:
            if isinstance(layer, keras.layers.Dropout):
                continue
            x = layer(x)
    outputs = keras.layers.Permute((3, 1, 2), name="to_channels_first")(x)
    return keras.Model(inputs, outputs, name="geodl_for_deepness")


def deepness_metadata(manifest: dict[str, Any], tile_size: int, tiles_overlap: int) -> dict[str, str]:
    """Deepness' custom metadata (each value JSON-encoded, as its reader expects)."""
    bands = manifest_bands(manifest)
    stats = manifest_statistics(manifest)
    classes = manifest_classes(manifest)
    meta: dict[str, Any] = {
        "model_type": "Segmentor",
        "class_names": {str(i): c.name for i, c in enumerate(classes)},
        "tile_size": int(tile_size),
        "tiles_overlap": int(tiles_overlap),
        # Identity: the graph undoes the /255 and normalises with geodl's own statistics.
        "standardization_mean": [0.0] * len(bands),
        "standardization_std": [1.0] * len(bands),
        "geodl_mean": [float(m) for m in stats[0]] if stats else [],
        "geodl_std": [float(s) for s in stats[1]] if stats else [],
        "geodl_bands": bands,
        "geodl_class_ids": classes.ids,
        "geodl_source_dtype": (manifest.get("raster") or {}).get("source_dtype"),
    }
    raster = manifest.get("raster") or {}
    size = (raster.get("pixel_size") or [0])[0]
    if size and str(raster.get("crs_units", "")).lower() in ("metre", "meter", "metres", "meters", "m"):
        meta["resolution"] = round(float(size) * 100.0, 6)  # Deepness works in cm per pixel
    elif size:
        log.warning(
            "The model's pixel size is in %s, not metres: Deepness' resolution (cm/px) is left unset; set it by hand in Deepness.",
            raster.get("crs_units") or "unknown units",
        )
    return {k: json.dumps(v) for k, v in meta.items()}


def _keras_route(graph: Any, signature: list, path: str) -> bool:
    """Keras' own exporter; False when its file is unusable (extra graph inputs) or it fails."""
    import onnx

    try:
        graph.export(path, format="onnx", verbose=False, input_signature=signature, opset_version=OPSET)
        inputs = onnx.load(path).graph.input
    except Exception as exc:  # noqa: BLE001 - any failure means: use the other route
        log.info("Keras' ONNX export failed (%s); converting the frozen function instead.", exc)
        return False
    if len(inputs) != 1:
        log.info("Keras' ONNX export left %d graph inputs (captured constants); converting the frozen function instead.", len(inputs))
        return False
    return True


def _frozen_route(graph: Any, signature: list, path: str) -> None:
    from .onnx_engine import frozen_onnx

    Path(path).write_bytes(frozen_onnx(graph, signature).SerializeToString())


def _finish(path: str, metadata: dict[str, str], manifest: dict[str, Any]) -> Any:
    """Name the input/output, mark the batch axis dynamic and attach the metadata."""
    import onnx

    model = onnx.load(path)
    graph = model.graph
    renames = {graph.input[0].name: INPUT_NAME, graph.output[0].name: OUTPUT_NAME}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    graph.input[0].name, graph.output[0].name = INPUT_NAME, OUTPUT_NAME
    for value in (graph.input[0], graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.metadata_props[:]
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "geodl"
    model.doc_string = f"geodl {manifest_architecture(manifest)} model '{manifest_name(manifest)}' for Deepness"
    onnx.checker.check_model(model)
    return model


def run_onnx(path: str | os.PathLike, tiles: np.ndarray, deepness_scaling: bool = True) -> np.ndarray:
    """Probabilities (n, classes, h, w) from an exported file for raw tiles (n, h, w, bands), prepared the way
    Deepness prepares them (/255, identity standardisation, NHWC → NCHW)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    raw = np.asarray(tiles)
    # Deepness: np.float32(tiles * 1./255.)
    x: np.ndarray = (raw * (1.0 / DEEPNESS_SCALE)).astype(np.float32) if deepness_scaling else raw.astype(np.float32)
    x = np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])


def keras_tiles(bundle: ModelBundle, tiles: np.ndarray) -> np.ndarray:
    """The same probabilities from the Keras model in geodl's own way (raw values in), (n, classes, h, w)."""
    x = np.asarray(tiles, np.float32)
    if len(bundle.model.input_shape) == 4:
        import keras

        probs = keras.ops.convert_to_numpy(bundle.model.predict_on_batch(x))
    else:
        n, h, w, b = x.shape
        probs = bundle.predict_proba(x.reshape(-1, b)).reshape(n, h, w, -1)
    return np.transpose(probs, (0, 3, 1, 2))


def export_onnx(params: OnnxExportParams, progress: Optional[Progress] = None, bundle: Optional[ModelBundle] = None) -> OnnxExportResult:
    """Write ``params.output`` (atomically) and, when asked, the STAC item describing it."""
    progress = ensure(progress)
    params.validate()
    bundle = bundle or load_model_file(params.model)
    why = exportable(bundle)
    if why:
        raise GeoDLError(why)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError as exc:
        raise GeoDLError(
            f"ONNX export needs the Python packages onnx, onnxruntime and tf2onnx ({exc}). Install "
            "them with: python -m pip install onnx onnxruntime tf2onnx"
        ) from exc
    import onnx
    import tensorflow as tf

    multiple = _pooling_multiple(bundle)
    tile = int(-(-int(params.tile_size) // multiple) * multiple)
    progress.update(5, f"building the {tile}×{tile} px graph")
    graph = deepness_graph(bundle, tile)
    signature = [tf.TensorSpec((None, len(bundle.bands), tile, tile), tf.float32, name=INPUT_NAME)]
    metadata = deepness_metadata(bundle.manifest, tile, params.tiles_overlap)
    with tempfile.TemporaryDirectory() as d:
        raw = str(Path(d) / "raw.onnx")
        progress.check()
        route = "keras" if _keras_route(graph, signature, raw) else "tf2onnx"
        if route == "tf2onnx":
            progress.check()
            _frozen_route(graph, signature, raw)
        progress.update(70, f"converted ({route}); checking it with onnxruntime")
        model = _finish(raw, metadata, bundle.manifest)
        final = str(Path(d) / "final.onnx")
        onnx.save(model, final)
        diff = _self_check(bundle, final, tile)
        if not diff <= TOLERANCE:
            raise GeoDLError(
                f"The ONNX model's output differs from the Keras model's by {diff:.2g} (more than "
                f"{TOLERANCE:g}); the file was not written. Please report this."
            )
        progress.check()
        with atomic_path(params.output) as tmp:
            Path(tmp).write_bytes(Path(final).read_bytes())
    stac_path = None
    if params.stac_output:
        from .stac_item import write_stac_item

        stac_path = str(write_stac_item(params.stac_output, bundle.manifest, params.output, params.model, onnx_tile=tile))
    progress.update(100, f"ONNX model written to {params.output} (max |ONNX − Keras| = {diff:.1e})")
    return OnnxExportResult(params.output, route, tile, diff, metadata, stac_path)


def _self_check(bundle: ModelBundle, path: str, tile: int) -> float:
    """Max |ONNX − Keras| on two random tiles spanning the training statistics (±3 std)."""
    stats = bundle.statistics
    mean, std = stats if stats else (np.zeros(len(bundle.bands), np.float32), np.ones(len(bundle.bands), np.float32))
    rng = np.random.default_rng(0)
    tiles = (mean + std * rng.uniform(-3, 3, (2, tile, tile, len(mean)))).astype(np.float32)
    tiles = np.maximum(tiles, 0)
    return float(np.abs(run_onnx(path, tiles) - keras_tiles(bundle, tiles)).max())
