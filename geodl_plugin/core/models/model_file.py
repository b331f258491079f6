"""The shareable model file ``*.geodl``: a zip holding ``manifest.json`` and either ``model.keras`` (loaded
in Keras safe mode, without compiling) or ``forest.npz`` (loaded with ``allow_pickle=False``). Opening a
model file never runs code from it.

The manifest uses the STAC Machine Learning Model (MLM) extension's vocabulary where it has a word
(``mlm:name``, ``mlm:architecture``, ``mlm:tasks``, ``mlm:framework``, ``mlm:input`` with ``bands``,
``norm_type``/``statistics``, ``mlm:output`` with ``classification:classes``) and adds what prediction
needs to check the raster it is given: source dtype, nodata, pixel size, CRS and its units, patch size.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..data.classes import ClassTable
from ..io.atomic import atomic_path
from ..runtime.errors import GeoDLError
from .networks import Forest
from .regression import ForestRegressor

FORMAT = "geodl-model"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KERAS_MEMBER = "model.keras"
FOREST_MEMBER = "forest.npz"
FOREST_REGRESSION_MEMBER = "forest_regression.npz"
SUFFIX = ".geodl"
log = logging.getLogger("geodl")
MAX_BATCH_PIXELS = 262_144  # rows a prediction call holds at most, whatever the cache


def make_manifest(
    *,
    name: str,
    architecture: str,
    task: str = "classification",
    bands: Sequence[str],
    classes: ClassTable,
    mean: Sequence[float] | np.ndarray,
    std: Sequence[float] | np.ndarray,
    source_dtype: Optional[str],
    nodata: Optional[float],
    pixel_size: Optional[Sequence[float]],
    crs_wkt: str,
    crs_units: str,
    patch_size: int = 1,
    metrics: Optional[dict] = None,
    training: Optional[dict] = None,
    data_source: str = "",
    model: Any = None,
) -> dict[str, Any]:
    from ...paths import plugin_version

    segmentation = task == "semantic-segmentation"
    shape = [-1, len(bands)] if patch_size == 1 and not segmentation else [-1, patch_size, patch_size, len(bands)]
    framework, version = _framework(model)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mlm:name": name,
        "mlm:architecture": architecture,
        "mlm:tasks": [task],
        "mlm:framework": framework,
        "mlm:framework_version": version,
        "mlm:input": [
            {
                "name": "image",
                "bands": list(bands),
                "input": {
                    "shape": shape,
                    "dim_order": ["batch", "bands"] if len(shape) == 2 else ["batch", "height", "width", "bands"],
                    "data_type": "float32",
                },
                # Normalisation is applied inside the network (its first layer); recorded here for reference.
                "norm_by_channel": True,
                "norm_type": "z-score",
                "statistics": [{"mean": float(m), "stddev": float(s)} for m, s in zip(mean, std)],
                "pre_processing_function": None,
            }
        ],
        "mlm:output": [
            {
                "name": "value",
                "tasks": [task],
                "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "float32"},
                "classification:classes": [],
            }
            if task == "regression"
            else {
                "name": "classes",
                "tasks": [task],
                "result": {"shape": [-1, len(classes)], "dim_order": ["batch", "class"], "data_type": "float32"},
                "classification:classes": classes.to_json(),
            }
        ],
        # None marks what is unknown (samples without a sidecar): prediction then checks nothing against it.
        "raster": {
            "source_dtype": source_dtype,
            "nodata": nodata,
            "pixel_size": None if pixel_size is None else list(map(float, pixel_size)),
            "crs_wkt": crs_wkt,
            "crs_units": crs_units,
        },
        "patch_size": int(patch_size),
        "metrics": metrics or {},
        "training": training or {},
        "provenance": {
            "plugin": "geodl",
            "plugin_version": plugin_version(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "data_source": data_source,
        },
    }


def _framework(model: Any) -> tuple[str, str]:
    if isinstance(model, (Forest, ForestRegressor)):
        from importlib import metadata

        try:
            return "scikit-learn", metadata.version("scikit-learn")
        except metadata.PackageNotFoundError:
            return "scikit-learn", ""
    import keras

    return "keras", f"{keras.__version__} ({keras.backend.backend()})"


# The manifest's vocabulary is read here and nowhere else: the rest of geodl asks these functions (or a bundle's
# properties, or ModelInfo) for a model's family, name, bands, classes and normalisation statistics.
def manifest_architecture(manifest: dict[str, Any]) -> str:
    return str(manifest["mlm:architecture"])


def manifest_name(manifest: dict[str, Any]) -> str:
    return str(manifest.get("mlm:name") or "model")


def manifest_bands(manifest: dict[str, Any]) -> list[str]:
    return [str(b) for b in manifest["mlm:input"][0]["bands"]]


def manifest_classes(manifest: dict[str, Any]) -> ClassTable:
    return ClassTable.from_json(manifest["mlm:output"][0]["classification:classes"])


def manifest_statistics(manifest: dict[str, Any]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The per-band (mean, standard deviation) the model normalises its input with; None if the manifest
    records none (or not one per band)."""
    stats = manifest["mlm:input"][0].get("statistics") or []
    if not stats or len(stats) != len(manifest_bands(manifest)):
        return None
    return np.array([s["mean"] for s in stats], np.float32), np.array([s["stddev"] for s in stats], np.float32)


@dataclass
class ModelBundle:
    """A loaded model file: its manifest and the predictor."""

    manifest: dict[str, Any]
    model: Any  # keras.Model or Forest
    path: str = ""
    _predict: Any = field(default=None, repr=False, compare=False)

    @property
    def architecture(self) -> str:
        return manifest_architecture(self.manifest)

    @property
    def name(self) -> str:
        return manifest_name(self.manifest)

    @property
    def bands(self) -> list[str]:
        return manifest_bands(self.manifest)

    @property
    def classes(self) -> ClassTable:
        return manifest_classes(self.manifest)

    @property
    def statistics(self) -> Optional[tuple[np.ndarray, np.ndarray]]:
        return manifest_statistics(self.manifest)

    @property
    def patch_size(self) -> int:
        return int(self.manifest.get("patch_size", 1))

    @property
    def raster_meta(self) -> dict[str, Any]:
        return dict(self.manifest.get("raster", {}))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, columns in class-table order. ``x`` holds raw pixel values (float32); the
        model normalises them itself."""
        x = np.asarray(x, dtype=np.float32)
        if isinstance(self.model, Forest):
            return self.model.predict_proba(x)
        return self._predictor().probabilities(x)

    def classify(self, x: np.ndarray, probabilities: bool = False) -> Classified:
        """The most probable class (its position in the class table) and its probability for each row of
        ``x``, plus all probabilities when asked. For Keras models the choice is made inside the compiled
        model, so only two numbers per pixel come back instead of one per class."""
        x = np.asarray(x, dtype=np.float32)
        if isinstance(self.model, Forest):
            return Classified(*self.model.classify(x, probabilities))
        return self._predictor().classify(x, probabilities)

    def classify_block(
        self, x: np.ndarray, nodata: Optional[float], ids: np.ndarray, fill_class: int, fill_conf: float, probabilities: bool = False
    ) -> Optional[BlockAnswer]:
        """A raster block as read, (bands, n) of the raster's own type, classified in one compiled pass (validity,
        conversion, class ids and counts included): see :meth:`FusedDense.classify_block`. None where the model
        has no such kernel (not a pixel DNN, numba missing, a GPU): the caller masks and converts the block and
        calls :meth:`classify`."""
        if self.model is None or isinstance(self.model, (Forest, ForestRegressor)) or self.patch_size != 1:
            return None
        fused = self._predictor().fused_kernel()
        return None if fused is None else BlockAnswer(*fused.classify_block(x, nodata, ids, fill_class, fill_conf, probabilities))

    def _predictor(self) -> _KerasPredictor:
        if self._predict is None:
            self._predict = _KerasPredictor(self.model)
        return self._predict


@dataclass
class Classified:
    index: np.ndarray  # (n,) uint8: position of the most probable class in the class table
    confidence: np.ndarray  # (n,) float32: its probability
    probabilities: Optional[np.ndarray] = None  # (n, classes) float32, when asked for


@dataclass
class BlockAnswer:
    """A raster block classified: class ids (the fill class where a pixel is invalid), confidences and, when
    asked, (classes, n) probabilities (the fill value where invalid), and the pixels given each class."""

    classes: np.ndarray  # (n,) uint8
    confidence: np.ndarray  # (n,) float32
    probabilities: Optional[np.ndarray]  # (classes, n) float32
    counts: np.ndarray  # (classes,) int64, by position in the class table


def _last_level_cache_bytes() -> int:
    """The CPU's largest cache, from sysfs (Linux); 8 MiB where it cannot be read."""
    sizes = []
    for entry in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = entry.read_text().strip().upper()
            sizes.append(int(text[:-1]) * {"K": 1 << 10, "M": 1 << 20}[text[-1]] if text[-1] in "KM" else int(text))
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return max(sizes, default=8 << 20)


def rows_per_call(model: Any) -> int:
    """Rows of a prediction call such that the widest dense activation (rows × units × 4 B) fills a quarter of
    the last-level cache (the other three quarters: the input, the next layer and the neighbours' work): a
    power of two between 4,096 and MAX_BATCH_PIXELS."""
    widest = max((int(getattr(layer, "units", 0) or 0) for layer in getattr(model, "layers", [])), default=0) or 64
    budget = _last_level_cache_bytes() // 4
    rows = 1 << max(int(budget // (widest * 4)).bit_length() - 1, 0)
    return int(min(MAX_BATCH_PIXELS, max(4_096, rows)))


class _KerasPredictor:
    """Batched prediction with a Keras model.

    A pixel DNN on a CPU classifies through its own compiled kernel (``dense_kernel.py``, checked against
    Keras before use). Where that kernel cannot be used, ``classify`` runs the model with an argmax/max
    head (pure ``keras.ops``), XLA-compiled on the TensorFlow backend: normalise → dense layers → softmax →
    argmax fuse into one kernel and only the class and its probability leave it. XLA compiles once per input
    shape, so a call's rows are padded up to one of a few fixed sizes (whole batches, then a power of two for
    the remainder): however many nodata pixels a block drops, no new compilation.

    A call holds as many rows as keep the widest hidden activation inside the CPU's last-level cache
    (:func:`rows_per_call`): measured here, a 3→64→4 network ran at 10.5 Mpx/s with 32,768 rows a call
    and at 2.7 Mpx/s with 262,144 (a 64 MiB activation streamed through memory twice). The compiled
    function is called directly: Keras' ``predict_on_batch`` adds about 2 ms of Python a call, as long as
    the model itself at these batch sizes."""

    SMALLEST = 4_096

    def __init__(self, model: Any) -> None:
        self.model = model
        self._fused: Any = False  # the compiled pixel kernel (dense_kernel.py): False until first tried, None if unusable
        self._heads: dict[bool, Any] = {}
        self._compiled: dict[bool, Any] = {}
        self.rows = rows_per_call(model)

    def _head(self, probabilities: bool) -> Any:
        if probabilities not in self._heads:
            import keras

            inputs = keras.Input(shape=self.model.input_shape[1:], dtype="float32")
            probs = self.model(inputs, training=False)
            outputs = [keras.ops.cast(keras.ops.argmax(probs, axis=-1), "uint8"), keras.ops.max(probs, axis=-1)]
            head = keras.Model(inputs, outputs + [probs] if probabilities else outputs)
            # XLA on TensorFlow (Keras only turns it on by itself with a GPU); torch stays eager.
            head.jit_compile = keras.backend.backend() == "tensorflow"
            self._heads[probabilities] = head
        return self._heads[probabilities]

    def _padded_batches(self, x: np.ndarray):
        """(batch padded to a fixed size, rows that are real) for each slice of ``x``."""
        rows = self.rows
        for i in range(0, max(len(x), 1), rows):
            batch = x[i : i + rows]
            n = len(batch)
            size = rows if n == rows else min(rows, max(self.SMALLEST, 1 << max(n - 1, 0).bit_length()))
            if size != n:
                batch = np.concatenate([batch, np.zeros((size - n,) + batch.shape[1:], batch.dtype)])
            yield batch, n

    def classify(self, x: np.ndarray, probabilities: bool) -> Classified:
        if x.ndim != 2:  # image patches (a U-Net): the class axis is the last one
            probs = self.probabilities(x)
            return Classified(probs.argmax(axis=-1).astype(np.uint8), probs.max(axis=-1), probs if probabilities else None)
        fused = self.fused_kernel()
        if fused is not None:
            return Classified(*fused.classify(x, probabilities))
        return self._classify_keras(x, probabilities)

    def fused_kernel(self) -> Any:
        """The pixel DNN's compiled CPU kernel, checked against Keras once; None for other networks, on a GPU
        (Keras runs there) or where it cannot be built."""
        if self._fused is False:
            from .dense_kernel import fused_classifier
            from .onnx_engine import keras_on_gpu

            self._fused = None if keras_on_gpu() else fused_classifier(self.model, self._keras_probabilities)
        return self._fused

    def _keras_probabilities(self, x: np.ndarray) -> np.ndarray:
        """The model's own output, uncompiled (what the kernel is checked against; no XLA compile to wait for)."""
        import keras

        return np.asarray(keras.ops.convert_to_numpy(self.model.predict_on_batch(x)))

    def _classify_keras(self, x: np.ndarray, probabilities: bool) -> Classified:
        head = self._head(probabilities)
        parts = [[np.asarray(o)[:n] for o in self._run(head, probabilities, batch)] for batch, n in self._padded_batches(x)]
        joined = [np.concatenate(p) if len(parts) > 1 else p[0] for p in zip(*parts)]
        return Classified(joined[0], joined[1], joined[2] if probabilities else None)

    def _call(self, head: Any, probabilities: bool) -> Any:
        """The head as one function of a batch: XLA-compiled through ``tf.function`` when the head asks for
        it (TensorFlow), else Keras' own ``predict_on_batch`` (torch, or after XLA failed)."""
        if not head.jit_compile:
            return head.predict_on_batch
        if probabilities not in self._compiled:
            import tensorflow as tf

            compiled = tf.function(lambda batch: head(batch, training=False), jit_compile=True)
            self._compiled[probabilities] = lambda batch: [o.numpy() for o in compiled(batch)]
        return self._compiled[probabilities]

    def _run(self, head: Any, probabilities: bool, batch: np.ndarray) -> Any:
        """One compiled call; if XLA cannot compile the model here, the same head runs without it (slower,
        same answer) rather than failing the prediction."""
        try:
            return self._call(head, probabilities)(batch)
        except Exception as exc:  # noqa: BLE001 - XLA's errors have no common type
            if not head.jit_compile:
                raise
            log.warning("XLA could not compile the model (%s); predicting without it.", str(exc).splitlines()[0])
            head.jit_compile = False
            self._compiled.pop(probabilities, None)
            return head.predict_on_batch(batch)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2:
            import keras

            step = 8  # patches a call
            return np.concatenate(
                [keras.ops.convert_to_numpy(self.model.predict_on_batch(x[i : i + step])) for i in range(0, max(len(x), 1), step)]
            )
        return self.classify(x, probabilities=True).probabilities  # type: ignore[return-value]


def save_model_file(path: str | os.PathLike, model: Any, manifest: dict[str, Any]) -> Path:
    """Write the model file atomically (a cancelled or failed save leaves nothing behind)."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(MANIFEST, json.dumps(manifest, indent=2))
            if isinstance(model, (Forest, ForestRegressor)):
                buf = io.BytesIO()
                np.savez_compressed(buf, **model.to_arrays())
                zf.writestr(FOREST_MEMBER if isinstance(model, Forest) else FOREST_REGRESSION_MEMBER, buf.getvalue())
            else:
                with tempfile.TemporaryDirectory() as d:
                    keras_path = Path(d) / KERAS_MEMBER
                    model.save(keras_path)
                    zf.write(keras_path, KERAS_MEMBER)
    return Path(path)


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    manifest = _read_raw_manifest(path)
    check_manifest(path, manifest)
    return manifest


def _read_raw_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a geodl model file, its format checked, its content not yet."""
    if not str(path).strip():
        raise GeoDLError("No model file given. Choose a .geodl file (train one with geodl:train).")
    if Path(path).is_dir():
        raise GeoDLError(f"The model file '{path}' is a folder; choose a .geodl file.")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read(MANIFEST))
    except FileNotFoundError as exc:
        raise GeoDLError(f"The model file '{path}' does not exist. Check the path, or train a model with geodl:train.") from exc
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise GeoDLError(
            f"'{path}' is not a geodl model file, or it is damaged ({exc}). Train a model with geodl:train, or copy the file again."
        ) from exc
    if not isinstance(manifest, dict):
        raise GeoDLError(f"'{path}' is not a geodl model file (its manifest is not a JSON object).")
    if manifest.get("format") != FORMAT:
        raise GeoDLError(f"'{path}' is not a geodl model file (format '{manifest.get('format')}').")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise GeoDLError(f"'{path}' was written by a newer geodl (format {manifest['format_version']}); update the plugin.")
    return manifest


def check_manifest(path: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Bands, classes and family present and well-formed: a damaged manifest is refused as such, not met later
    as a KeyError deep inside a step."""
    try:
        bands = manifest["mlm:input"][0]["bands"]
        classes = ClassTable.from_json(manifest["mlm:output"][0]["classification:classes"])
        str(manifest["mlm:architecture"])
    except GeoDLError as exc:
        raise GeoDLError(f"The model file '{path}' has a damaged manifest: {exc}") from exc
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise GeoDLError(
            f"The model file '{path}' has a damaged manifest (no valid {exc}). Train the model again or copy the file again."
        ) from exc
    if not bands or (len(classes) < 2 and not _is_regression(manifest)):
        raise GeoDLError(
            f"The model file '{path}' has a damaged manifest ({len(bands)} band(s), {len(classes)} "
            "class(es)). Train the model again or copy the file again."
        )


def _is_regression(manifest: dict[str, Any]) -> bool:
    return "regression" in (manifest.get("mlm:tasks") or [])


def check_manifest_against_network(
    path: str | os.PathLike, manifest: dict[str, Any], n_inputs: Optional[int], n_outputs: Optional[int], forest: bool = False
) -> None:
    """A manifest edited by hand (or a mixed-up file) whose band or class count disagrees with the network would
    silently shift every class; refuse it at load."""
    bands = len(manifest["mlm:input"][0]["bands"])
    # a series model also reads one day-of-year channel per date (training.series.doy)
    bands += len(((manifest.get("training") or {}).get("series") or {}).get("doy") or [])
    classes = len(manifest["mlm:output"][0]["classification:classes"])
    problems = []
    if n_inputs is not None and (n_inputs > bands if forest else n_inputs != bands):
        problems.append(f"{bands} band(s) in the manifest but the network takes {n_inputs}")
    if n_outputs is not None and n_outputs != classes and not _is_regression(manifest):
        problems.append(f"{classes} class(es) in the manifest but the network gives {n_outputs}")
    if problems:
        raise GeoDLError(
            f"The model file '{path}' is inconsistent: {'; '.join(problems)}. Its manifest was edited "
            "or mixed up with another model's; train the model again or use the original file."
        )


@dataclass(frozen=True)
class ModelInfo:
    """What the faces need to know about a model file without loading its network (the manifest alone)."""

    path: str
    architecture: str  # the family's value (models/family.py); core/families.py maps it to its row
    name: str
    bands: tuple[str, ...]
    classes: ClassTable
    patch_size: int
    raster: dict[str, Any]  # source dtype, nodata, pixel size, CRS and its units
    metrics: dict[str, Any]  # the held-out report as JSON (evaluate/reports.py reads it: report_from_dict)


def model_info(manifest: dict[str, Any], path: str = "") -> ModelInfo:
    try:
        return ModelInfo(
            path,
            manifest_architecture(manifest),
            manifest_name(manifest),
            tuple(manifest_bands(manifest)),
            manifest_classes(manifest),
            int(manifest.get("patch_size", 1)),
            dict(manifest.get("raster", {})),
            dict(manifest.get("metrics", {})),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise GeoDLError(
            f"The model file '{path}' has a damaged manifest ({exc!r} is missing or wrong); retrain the model or use an untouched copy."
        ) from exc


def read_model_info(path: str | os.PathLike) -> ModelInfo:
    return model_info(read_manifest(path), str(path))


def load_model_file(path: str | os.PathLike) -> ModelBundle:
    # The network is loaded (safely) before the manifest's content is checked, so a model that would run code is
    # reported as such whatever its manifest holds.
    manifest = _read_raw_manifest(path)
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        if FOREST_MEMBER in names:
            try:
                with zf.open(FOREST_MEMBER) as fh:
                    arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                    forest = Forest.from_arrays(arrays)
            except (ValueError, KeyError, OSError, zipfile.BadZipFile, EOFError) as exc:
                raise GeoDLError(
                    f"The forest in the model file '{path}' is damaged ({exc}). Train the model again or copy the file again."
                ) from exc
            check_manifest(path, manifest)
            check_manifest_against_network(path, manifest, *_forest_shape(forest), forest=True)
            return ModelBundle(manifest, forest, str(path))
        if FOREST_REGRESSION_MEMBER in names:
            with zf.open(FOREST_REGRESSION_MEMBER) as fh:
                arrays = np.load(io.BytesIO(fh.read()), allow_pickle=False)
                regressor = ForestRegressor.from_arrays(arrays)
            check_manifest(path, manifest)
            return ModelBundle(manifest, regressor, str(path))
        if KERAS_MEMBER not in names:
            raise GeoDLError(f"The model file '{path}' holds no model (expected {KERAS_MEMBER} or {FOREST_MEMBER}).")
        import keras

        from .temporal import custom_objects  # registered layer classes (configuration + weights, no code)

        with tempfile.TemporaryDirectory() as d:
            try:
                zf.extract(KERAS_MEMBER, d)
                model = keras.saving.load_model(Path(d) / KERAS_MEMBER, compile=False, safe_mode=True, custom_objects=custom_objects())
            except ValueError as exc:  # safe mode refuses code (lambda layers and the like)
                raise GeoDLError(f"The model in '{path}' cannot be loaded safely ({exc}).") from exc
            except (OSError, KeyError, zipfile.BadZipFile, EOFError, TypeError) as exc:
                raise GeoDLError(
                    f"The network in the model file '{path}' is damaged ({exc}). Train the model again or copy the file again."
                ) from exc
    check_manifest(path, manifest)
    check_manifest_against_network(path, manifest, _last_dim(model.input_shape), _last_dim(model.output_shape))
    return ModelBundle(manifest, model, str(path))


def _last_dim(shape: Any) -> Optional[int]:
    if isinstance(shape, list):  # several inputs/outputs: not a geodl network, nothing to compare
        return None
    return int(shape[-1]) if shape and shape[-1] is not None else None


def _forest_shape(forest: Forest) -> tuple[Optional[int], Optional[int]]:
    """(bands the forest takes at least, classes it gives): a forest stores no input width, only the
    features its splits use; if it uses band k, it takes at least k + 1."""
    used = int(forest.feature[forest.left >= 0].max()) + 1 if (forest.left >= 0).any() else 0
    return used, int(forest.proba.shape[1])


_CACHE: dict[tuple[str, int, int], ModelBundle] = {}


def cached_model(path: str | os.PathLike) -> ModelBundle:
    """The loaded model file, kept while it is unchanged (loading and compiling a Keras model costs more than a
    canvas preview). One entry: the persistent worker and in-process predictions share it."""
    try:
        stat = os.stat(path)
    except OSError:
        return load_model_file(path)  # its message names the problem
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = load_model_file(path)
    return _CACHE[key]
