"""Convolutional models (U-Net; any family whose network takes image tiles) served on Vertex AI and called
from Earth Engine with ``ee.Model.fromVertexAi`` → ``predictImage``.

- :func:`export_savedmodel` writes a TensorFlow SavedModel whose ``serving_default`` signature speaks Earth
  Engine's default payload format, ``SERIALIZED_TF_TENSORS``: each request instance maps every band name to
  a web-safe base64 ``TensorProto`` of one (H, W) float32 tile; the answer, per instance, is one such string
  holding the (H, W, classes) probabilities. Normalisation is the network's own first layer, so raw
  composite values go in.
- :func:`plan_tiles` chooses Earth Engine's ``inputTileSize`` and ``inputOverlapSize``: the overlap is the
  network's receptive-field margin (measured, see :func:`receptive_margin`), both are multiples of what the
  network's pooling needs, and the largest tile is taken whose request *and* response stay under the payload
  limit (Vertex AI online prediction takes 1.5 MB a request).
- :func:`ee_request_body` builds a request the way Earth Engine does (the ``TensorProto`` bytes written
  here by hand, not by TensorFlow), so a test can prove the SavedModel answers it with the Keras output.
- Deployment is printed as ``gcloud`` commands (:func:`deploy_commands`); the endpoint is then recorded in
  the model file's manifest (:func:`record_endpoint`), and :func:`estimate` gives tiles, requests,
  node-hours and cost before anything starts.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import struct
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..io.atomic import atomic_path
from ..models.model_file import manifest_bands, manifest_classes
from ..runtime.errors import GeoDLError

MAX_PAYLOAD_BYTES = 1_500_000  # Vertex AI online prediction: 1.5 MB per request
PAYLOAD_FORMAT = "SERIALIZED_TF_TENSORS"
OUTPUT_KEY = "output"
# Prebuilt TensorFlow serving container (CPU); GPU images exist under the same path (tf2-gpu.*).
SERVING_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"
DEFAULT_MACHINE = "n1-standard-4"
# Vertex AI prediction node price, n1-standard-4 in us-central1 (USD per node-hour, list price 2024);
# shown with every estimate so a user can replace it with their region's.
NODE_HOUR_USD = 0.2185
_DT_FLOAT = 1


# --- TensorProto, by hand ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _field(number, 2) + _varint(len(payload)) + payload


def tensor_proto(array: np.ndarray) -> bytes:
    """A float32 ``tensorflow.TensorProto`` (dtype, tensor_shape, tensor_content little-endian), as
    ``tf.io.serialize_tensor`` writes it."""
    a = np.ascontiguousarray(array, dtype="<f4")
    shape = b"".join(_length_delimited(2, _field(1, 0) + _varint(int(d))) for d in a.shape)
    return _field(1, 0) + _varint(_DT_FLOAT) + _length_delimited(2, shape) + _length_delimited(4, a.tobytes())


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def parse_tensor_proto(data: bytes) -> np.ndarray:
    """The float32 array in a serialised TensorProto (tensor_content or float_val)."""
    pos, content = 0, b""
    dims: list[int] = []
    floats: list[float] = []
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
            if number == 1 and value != _DT_FLOAT:
                raise GeoDLError(f"The tensor has dtype {value}, not float32.")
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            chunk, pos = data[pos : pos + length], pos + length
            if number == 2:  # TensorShapeProto: repeated Dim (field 2) { size (field 1) }
                p = 0
                while p < len(chunk):
                    k, p = _read_varint(chunk, p)
                    n, p = _read_varint(chunk, p)
                    dim, q = chunk[p : p + n], 0
                    size = 0
                    while q < len(dim):
                        kk, q = _read_varint(dim, q)
                        if kk >> 3 == 1 and kk & 7 == 0:
                            size, q = _read_varint(dim, q)
                        else:
                            ln, q = _read_varint(dim, q)
                            q += ln
                    dims.append(size)
                    p += n
            elif number == 4:
                content = chunk
            elif number == 5:  # packed float_val
                floats.extend(struct.unpack(f"<{len(chunk) // 4}f", chunk))
        elif wire == 5:
            floats.append(struct.unpack("<f", data[pos : pos + 4])[0])
            pos += 4
        else:
            raise GeoDLError(f"Unexpected wire type {wire} in a TensorProto.")
    values = np.frombuffer(content, "<f4") if content else np.asarray(floats, np.float32)
    return values.reshape(dims)


def _b64(data: bytes) -> str:
    # tf.io.decode_base64 reads the web-safe alphabet.
    return base64.urlsafe_b64encode(data).decode("ascii")


def ee_request_body(tiles: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The JSON Earth Engine posts to a Vertex AI endpoint with ``SERIALIZED_TF_TENSORS``: ``tiles`` maps each
    band to an (instances, H, W) array; every instance is ``{band: base64(TensorProto of (H, W))}``."""
    bands = list(tiles)
    n = len(next(iter(tiles.values())))
    return {"instances": [{b: _b64(tensor_proto(tiles[b][i])) for b in bands} for i in range(n)]}


def decode_predictions(response: Mapping[str, Any]) -> np.ndarray:
    """(instances, H, W, classes) from a ``{"predictions": [base64 TensorProto, ...]}`` answer."""
    out = []
    for p in response["predictions"]:
        text = p[OUTPUT_KEY] if isinstance(p, dict) else p
        # tf.io.encode_base64 writes no padding (as Google's Earth Engine serving samples do): restore it.
        out.append(parse_tensor_proto(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))
    return np.stack(out)


# --- tiles ------------------------------------------------------------------------------------------------


@dataclass
class TilePlan:
    tile: int  # inputTileSize (px a side, the core each request answers)
    overlap: int  # inputOverlapSize (px on each side: the receptive-field margin)
    request_bytes: int
    response_bytes: int
    margin: int  # measured receptive-field radius
    divisor: int  # input sides must be multiples of this (2^poolings)


def _proto_bytes(side: int, channels: int) -> int:
    return len(tensor_proto(np.zeros((side, side, channels) if channels > 1 else (side, side), np.float32)))


def request_bytes(side: int, bands: Sequence[str]) -> int:
    """Bytes of one request for a ``side``×``side`` input: one instance, each band a base64 TensorProto."""
    one = math.ceil(_proto_bytes(side, 1) / 3) * 4
    return len(json.dumps({"instances": [{b: "" for b in bands}]})) + one * len(bands)


def response_bytes(side: int, n_classes: int) -> int:
    return len(json.dumps({"predictions": [""]})) + math.ceil(_proto_bytes(side, n_classes) / 3) * 4


def plan_tiles(bands: Sequence[str], n_classes: int, margin: int, divisor: int, max_payload: int = MAX_PAYLOAD_BYTES) -> TilePlan:
    """The largest tile (a multiple of ``divisor``) whose request and answer, overlap included, fit
    ``max_payload``; the overlap is ``margin`` rounded up to a multiple of ``divisor``."""
    overlap = int(math.ceil(margin / divisor) * divisor)
    best = None
    tile = divisor
    while True:
        side = tile + 2 * overlap
        req, resp = request_bytes(side, bands), response_bytes(side, n_classes)
        if max(req, resp) > max_payload:
            break
        best = TilePlan(tile, overlap, req, resp, margin, divisor)
        tile += divisor
    if best is None:
        raise GeoDLError(
            f"Even a {divisor}-pixel tile with its {overlap}-pixel margins is over "
            f"{max_payload / 1e6:.1f} MB for {len(bands)} bands and {n_classes} classes; use fewer "
            "bands, or a model with a smaller receptive field."
        )
    return best


def pooling_divisor(model: Any) -> int:
    poolings = sum(1 for layer in model.layers if type(layer).__name__ in ("MaxPooling2D", "AveragePooling2D"))
    return 2**poolings


def receptive_margin(model: Any, n_bands: int, seed: int = 0) -> int:
    """How far (px) a change in one input pixel reaches in the output: the margin each tile needs so its core
    is computed as on an unbroken image. Measured with an impulse, which holds for any convolutional
    architecture; BatchNorm at inference is per-pixel and does not spread it."""
    divisor = pooling_divisor(model)
    size = max(64, 4 * divisor)
    rng = np.random.default_rng(seed)
    while True:
        x = rng.normal(size=(1, size, size, n_bands)).astype(np.float32)
        centre = size // 2
        base = np.asarray(model.predict_on_batch(x))
        x[0, centre, centre, :] += 1000.0
        changed = np.abs(np.asarray(model.predict_on_batch(x)) - base).max(axis=-1)[0] > 0
        rows, cols = np.nonzero(changed)
        margin = int(max(np.abs(rows - centre).max(), np.abs(cols - centre).max())) if len(rows) else 0
        if margin < centre - 1 or size >= 1024:
            return margin
        size *= 2


# --- the SavedModel ---------------------------------------------------------------------------------------


def export_savedmodel(model: str, output: str, progress: Any = None) -> dict[str, Any]:
    """Write the serving SavedModel for the model file ``model`` into the folder ``output`` (replaced
    atomically) and return its tile plan (as a dict, for the worker protocol) plus the local time per tile."""
    import time

    import tensorflow as tf

    from ..models.model_file import load_model_file

    bundle = load_model_file(model)
    if bundle.patch_size == 1:  # a per-pixel family (its row in core/families.py says "pixels")
        raise GeoDLError(
            f"A '{bundle.architecture}' model classifies single pixels: run it inside Earth Engine "
            "(geodl:eeclassify) instead of deploying it."
        )
    keras_model = bundle.model
    bands = bundle.bands
    n_classes = len(bundle.classes)

    class Serving(tf.Module):
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        @tf.function(input_signature=[{b: tf.TensorSpec([None], tf.string, name=b) for b in bands}])
        def serve(self, inputs: dict) -> dict:
            def parse(column: Any) -> Any:
                return tf.map_fn(
                    lambda s: tf.io.parse_tensor(tf.io.decode_base64(s), tf.float32),
                    column,
                    fn_output_signature=tf.TensorSpec([None, None], tf.float32),
                )

            image = tf.stack([parse(inputs[b]) for b in bands], axis=-1)  # (n, H, W, bands)
            probs = self.net(image, training=False)
            encoded = tf.map_fn(lambda p: tf.io.encode_base64(tf.io.serialize_tensor(p)), probs, fn_output_signature=tf.string)
            return {OUTPUT_KEY: encoded}

    module = Serving(keras_model)
    margin = receptive_margin(keras_model, len(bands))
    plan = plan_tiles(bands, n_classes, margin, pooling_divisor(keras_model))
    side = plan.tile + 2 * plan.overlap
    probe = np.zeros((1, side, side, len(bands)), np.float32)
    keras_model.predict_on_batch(probe)
    started = time.perf_counter()
    keras_model.predict_on_batch(probe)
    seconds_per_tile = time.perf_counter() - started
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A folder, written beside the target and swapped in only when complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
    try:
        tf.saved_model.save(module, str(tmp), signatures={"serving_default": module.serve.get_concrete_function()})
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {**asdict(plan), "bands": bands, "classes": bundle.classes.ids, "seconds_per_tile": seconds_per_tile, "path": str(out)}


# --- Earth Engine side ------------------------------------------------------------------------------------


def vertex_image(
    endpoint: str,
    composite: Any,
    bands: Sequence[str],
    class_ids: Sequence[int],
    plan: TilePlan,
    crs: str,
    scale: float,
    probabilities: bool = False,
) -> Any:
    """``class``/``confidence`` bands of the model hosted at ``endpoint`` applied to ``composite``."""
    import ee

    from .output_bands import class_bands

    model = ee.Model.fromVertexAi(
        endpoint=endpoint,
        inputTileSize=[plan.tile, plan.tile],
        inputOverlapSize=[plan.overlap, plan.overlap],
        proj=ee.Projection(crs).atScale(scale),
        fixInputProj=True,
        outputBands={OUTPUT_KEY: {"type": ee.PixelType.float(), "dimensions": 1}},
        maxPayloadBytes=MAX_PAYLOAD_BYTES,
        payloadFormat=PAYLOAD_FORMAT,
    )
    probs = model.predictImage(composite.select(list(bands)).toFloat()).select(OUTPUT_KEY)
    return class_bands(probs, class_ids, probabilities)


@dataclass
class VertexModel:
    """A model deployed on Vertex AI, as recorded in its model file; applied like :class:`.native.NativeModel`."""

    endpoint: str
    bands: list[str]
    class_ids: list[int]
    plan: TilePlan
    crs: str
    scale: float
    seconds_per_tile: float = 0.0

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> VertexModel:
        v = manifest["vertex"]
        raster = manifest.get("raster", {})
        plan = TilePlan(
            int(v["tile"]),
            int(v["overlap"]),
            int(v.get("request_bytes", 0)),
            int(v.get("response_bytes", 0)),
            int(v.get("margin", 0)),
            int(v.get("divisor", 1)),
        )
        ids = manifest_classes(manifest).ids
        scale = float((raster.get("pixel_size") or [10.0])[0])
        return cls(
            v["endpoint"],
            manifest_bands(manifest),
            ids,
            plan,
            str(v.get("crs", "EPSG:3857")),
            float(v.get("scale", scale)),
            float(v.get("seconds_per_tile", 0.0)),
        )

    def apply(self, composite: Any, probabilities: bool = False) -> Any:
        return vertex_image(self.endpoint, composite, self.bands, self.class_ids, self.plan, self.crs, self.scale, probabilities)


def endpoint_name(project: str, region: str, endpoint_id: str) -> str:
    return f"projects/{project}/locations/{region}/endpoints/{endpoint_id}"


def deploy_commands(
    saved_model_dir: str, project: str, region: str, bucket: str, name: str, machine: str = DEFAULT_MACHINE, max_replicas: int = 4
) -> list[str]:
    """The ``gcloud`` commands that upload the SavedModel and deploy it to a new endpoint."""
    uri = f"gs://{bucket}/geodl/vertex/{name}"
    return [
        f"gcloud storage cp --recursive '{saved_model_dir}/*' {uri}/",
        f"gcloud ai models upload --project={project} --region={region} --display-name={name} "
        f"--container-image-uri={SERVING_IMAGE} --artifact-uri={uri}",
        f"gcloud ai endpoints create --project={project} --region={region} --display-name={name}",
        f"gcloud ai endpoints deploy-model ENDPOINT_ID --project={project} --region={region} "
        f"--model=MODEL_ID --display-name={name} --machine-type={machine} --min-replica-count=1 "
        f"--max-replica-count={max_replicas}",
        f"# then record projects/{project}/locations/{region}/endpoints/ENDPOINT_ID in the model file (geodl)",
    ]


def record_endpoint(model_path: str | os.PathLike, endpoint: str, plan: Optional[dict] = None) -> None:
    """Store the endpoint (and the tile plan) in the model file's manifest, rewriting the file atomically."""
    from ..models.model_file import MANIFEST, read_manifest

    if not endpoint.startswith("projects/") or "/endpoints/" not in endpoint:
        raise GeoDLError(f"'{endpoint}' is not a Vertex AI endpoint name (projects/<project>/locations/<region>/endpoints/<id>).")
    manifest = read_manifest(model_path)
    manifest["vertex"] = {"endpoint": endpoint, "payload_format": PAYLOAD_FORMAT, **(plan or {})}
    with zipfile.ZipFile(model_path) as src, atomic_path(model_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
            for item in src.infolist():
                data = json.dumps(manifest, indent=2).encode() if item.filename == MANIFEST else src.read(item)
                dst.writestr(item, data)


@dataclass
class Estimate:
    pixels: int
    tiles: int
    requests: int
    node_hours: float
    cost_usd: float
    hours_wall: float
    replicas: int

    def text(self) -> str:
        return (
            f"{self.pixels:,} px in {self.tiles:,} tiles = {self.requests:,} requests; about "
            f"{self.node_hours:,.1f} node-hours (≈ ${self.cost_usd:,.0f} at ${NODE_HOUR_USD}/node-hour, "
            f"{DEFAULT_MACHINE}), {self.hours_wall:,.1f} h with {self.replicas} replicas."
        )


def estimate(
    region: Sequence[float], scale: float, plan: TilePlan, seconds_per_tile: float, replicas: int = 4, price: float = NODE_HOUR_USD
) -> Estimate:
    """Tiles, requests, node-hours and cost for a region (west, south, east, north in degrees) at ``scale``
    m, from the local time per tile (a serving node is about as fast as this CPU; replace it with a measured
    figure from the endpoint when there is one). Overlaps are computed again by each neighbour, which is in
    the tile time already."""
    west, south, east, north = region
    metres = 111_320.0
    width = (east - west) * metres * math.cos(math.radians((north + south) / 2)) / scale
    height = (north - south) * metres / scale
    tiles = math.ceil(width / plan.tile) * math.ceil(height / plan.tile)
    node_hours = tiles * seconds_per_tile / 3600.0
    return Estimate(int(width * height), tiles, tiles, node_hours, node_hours * price, node_hours / replicas, replicas)
