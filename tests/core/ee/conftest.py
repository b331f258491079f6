"""A fake HTTP transport that lets the real earthengine-api client run offline.

Built per ../shared/recipes/ee_offline.md: the discovery document and the algorithm list bundled in the ee
wheel are served as the server would, every other request is recorded as (method, uri, JSON body) and
answered with canned replies the test chooses. Nothing in ``ee`` is mocked: expressions, serialisation and
request building are the real client's.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import deque
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

ee = pytest.importorskip("ee")
httplib2 = pytest.importorskip("httplib2")

EE_TESTS = Path(ee.__file__).resolve().parent / "tests"
PROJECT = "test-project"


def _discovery() -> bytes:
    text = (EE_TESTS / "cloud_api_discovery_document.json").read_text()
    return text.replace("v1alpha", "v1").encode()


_DISCOVERY = _discovery()
_ALGORITHMS = (EE_TESTS / "algorithms.json").read_bytes()

Reply = tuple[int, Any]  # (status, JSON-able body or raw bytes)
Handler = Callable[[str, str, Any], Optional[Reply]]


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def function_names(expression: Any) -> set[str]:
    """Every ``functionName`` in a serialised EE expression."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "functionName" and isinstance(value, str):
                    found.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return found


class NotStrictJSON(AssertionError):
    """A request body that is not strict JSON (NaN/Infinity): Earth Engine's server rejects it."""


def _reject_constant(name: str) -> Any:
    raise NotStrictJSON(f"{name} in a request body: not JSON")


def strict_json(body: Any) -> Any:
    """Parse a request body as the server does: NaN, Infinity and -Infinity are errors, not numbers."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    return json.loads(body, parse_constant=_reject_constant)


def unmask_values(expression: Any) -> list[Any]:
    """The ``value`` argument of every ``Image.unmask`` call in a serialised expression (references resolved)."""
    values = expression.get("values", {}) if isinstance(expression, dict) else {}
    found: list[Any] = []

    def resolve(node: Any) -> Any:
        seen = 0
        while isinstance(node, dict) and "valueReference" in node and seen < 50:
            node = values[node["valueReference"]]
            seen += 1
        return node

    def walk(node: Any) -> None:
        node = resolve(node)
        if isinstance(node, dict):
            call = node.get("functionInvocationValue")
            if isinstance(call, dict) and call.get("functionName") == "Image.unmask":
                value = resolve(call.get("arguments", {}).get("value"))
                inner = value.get("functionInvocationValue") if isinstance(value, dict) else None
                if isinstance(inner, dict) and inner.get("functionName") == "Image.constant":  # the client wraps it
                    value = resolve(inner.get("arguments", {}).get("value"))
                found.append(value.get("constantValue") if isinstance(value, dict) else value)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(expression)
    return found


def grid_pixel_values(grid: dict, band_index: int) -> np.ndarray:
    """Deterministic pixel values for a computePixels grid: a function of the global pixel position (from the
    grid's affine translation), so a mosaic of tiles can be checked against one formula."""
    h = grid["dimensions"]["height"]
    w = grid["dimensions"]["width"]
    t = grid["affineTransform"]
    col0 = round((t["translateX"] - ORIGIN_X) / t["scaleX"])
    row0 = round((t["translateY"] - ORIGIN_Y) / t["scaleY"])
    rows, cols = np.mgrid[row0 : row0 + h, col0 : col0 + w]
    return (rows * 1000 + cols + band_index * 0.5).astype(np.float32)


ORIGIN_X = 500000.0  # where tests put the top-left of their download regions
ORIGIN_Y = 7000000.0


class FakeEETransport:
    """httplib2-style transport: ``request(uri, method, body, headers, ...) -> (Response, bytes)``."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.handlers: list[Handler] = []
        self.queued: deque[tuple[str, Reply]] = deque()  # (uri substring, reply) served once, first match
        self.operation_states: dict[str, deque] = {}
        self.default_operation_state = "SUCCEEDED"
        self.network_down = False
        self.strict_errors: list[str] = []  # bodies that were not strict JSON (the fixture fails the test)
        # computePixels emulation: ``pixels(grid, bands) -> (h, w, bands) float32`` (default: grid_pixel_values)
        # and ``masked(grid) -> (h, w) bool``, True where Earth Engine's image is masked. NPY carries no mask:
        # a masked pixel arrives as the expression's Image.unmask value, or as 0 without one (as the server does).
        self.pixels: Optional[Callable[[dict, list], np.ndarray]] = None
        self.masked: Optional[Callable[[dict], np.ndarray]] = None
        self.tokens_issued = 0
        self._ids = itertools.count(1)
        self.project = PROJECT

    # --- test helpers ----------------------------------------------------------------------------------
    function_names = staticmethod(function_names)
    unmask_values = staticmethod(unmask_values)
    grid_pixel_values = staticmethod(grid_pixel_values)
    npy_bytes = staticmethod(npy_bytes)
    origin = (ORIGIN_X, ORIGIN_Y)

    def queue(self, uri_part: str, status: int, body: Any = None) -> None:
        """Answer the next request whose URI contains ``uri_part`` with ``status`` (then normal service)."""
        self.queued.append((uri_part, (status, body if body is not None else _error_body(status))))

    def set_operation_states(self, name_or_id: str, *states: Any) -> None:
        """Successive GETs of the operation return these states (the last one repeats). A state may be a
        string, or a (state, error message) tuple for FAILED."""
        self.operation_states[name_or_id.rsplit("/", 1)[-1]] = deque(states)

    def calls(self, uri_part: str, method: Optional[str] = None) -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if uri_part in r[1] and (method is None or r[0] == method)]

    # --- the transport ---------------------------------------------------------------------------------
    def request(self, uri, method="GET", body=None, headers=None, redirections=None, connection_type=None):
        if self.network_down:
            raise httplib2.ServerNotFoundError("Unable to find the server at earthengine.googleapis.com")
        if "$discovery" in uri:
            return self._reply(200, _DISCOVERY)
        if re.search(r"/algorithms(\?|$)", uri):
            return self._reply(200, _ALGORITHMS)
        if uri.startswith("https://oauth2.googleapis.com/token"):
            # A service-account sign-in exchanges a signed JWT for a token through the same transport.
            self.tokens_issued += 1
            return self._reply(200, {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"})
        parsed = None
        if body:
            try:
                parsed = strict_json(body)
            except NotStrictJSON as exc:
                self.strict_errors.append(f"{method} {uri}: {exc}")
                raise
            except (TypeError, ValueError, UnicodeDecodeError):
                parsed = body
        self.requests.append((method, uri, parsed))
        for i, (part, reply) in enumerate(self.queued):
            if part in uri:
                del self.queued[i]
                return self._reply(*reply)
        for handler in self.handlers:
            reply = handler(method, uri, parsed)
            if reply is not None:
                return self._reply(*reply)
        return self._reply(*self._default(method, uri, parsed))

    def _default(self, method: str, uri: str, body: Any) -> Reply:
        path = uri.split("?", 1)[0]
        if path.endswith(":export") or path.endswith("image:import"):
            op_id = f"OP{next(self._ids):04d}"
            return 200, {"name": f"projects/{PROJECT}/operations/{op_id}", "metadata": {"state": "PENDING"}}
        if path.endswith(":cancel"):
            op_id = path.rsplit("/", 1)[-1].split(":")[0]
            self.operation_states[op_id] = deque(["CANCELLED"])
            return 200, {}
        if "/operations/" in path and method == "GET":
            return 200, self._operation(path.rsplit("/", 1)[-1])
        if path.endswith(":computePixels"):
            return 200, self._compute_pixels(body)
        if path.endswith("/maps"):
            return 200, {"name": f"projects/{PROJECT}/maps/fake-map-id"}
        if path.endswith("value:compute"):
            return 200, {"result": None}
        return 404, _error_body(404, f"The fake transport has no reply for {method} {path}")

    def _operation(self, op_id: str) -> dict:
        states = self.operation_states.get(op_id)
        state: Any = self.default_operation_state
        if states:
            state = states.popleft() if len(states) > 1 else states[0]
        message = None
        if isinstance(state, tuple):
            state, message = state
        op: dict[str, Any] = {
            "name": f"projects/{PROJECT}/operations/{op_id}",
            "metadata": {"state": state, "description": op_id, "progress": 0.5 if state == "RUNNING" else 1.0},
        }
        if state in ("SUCCEEDED", "FAILED", "CANCELLED"):
            op["done"] = True
        if state == "SUCCEEDED":
            op["metadata"]["destinationUris"] = [f"https://console.developers.google.com/storage/browser/bkt/{op_id}/"]
        if state == "FAILED":
            op["error"] = {"code": 3, "message": message or "Unknown failure."}
        if state == "CANCELLED":
            op["error"] = {"code": 1, "message": "Cancelled."}
        return op

    def _compute_pixels(self, body: dict) -> bytes:
        bands = body.get("bandIds") or ["b0"]
        grid = body["grid"]
        h, w = grid["dimensions"]["height"], grid["dimensions"]["width"]
        if self.pixels is not None:
            values = np.asarray(self.pixels(grid, list(bands)), dtype=np.float32)
        else:
            values = np.stack([grid_pixel_values(grid, i) for i in range(len(bands))], axis=-1)
        if self.masked is not None:
            fills = unmask_values(body["expression"])
            values[np.asarray(self.masked(grid), dtype=bool)] = float(fills[-1]) if fills else 0.0
        arr = np.zeros((h, w), dtype=[(b, "<f4") for b in bands])
        for i, band in enumerate(bands):
            arr[band] = values[..., i]
        return npy_bytes(arr)

    @staticmethod
    def _reply(status: int, content: Any):
        if isinstance(content, (bytes, bytearray)):
            data = bytes(content)
            ctype = "application/json" if data[:1] in (b"{", b"[") else "application/octet-stream"
        else:
            data = json.dumps(content).encode()
            ctype = "application/json"
        return httplib2.Response({"status": status, "content-type": ctype}), data


def _error_body(status: int, message: str | None = None) -> dict:
    messages = {
        429: "Too many concurrent aggregations.",
        500: "Internal error.",
        503: "The service is currently unavailable.",
        404: "Not found.",
    }
    return {"error": {"code": status, "message": message or messages.get(status, "Error."), "status": "ERROR"}}


@pytest.fixture
def fake_ee(tmp_path, monkeypatch):
    """The fake transport, with HOME an empty folder (no credentials to find); EE reset afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("EARTHENGINE_PROJECT", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(home / "gcloud"))
    # Not on Google Compute Engine: answer google.auth's metadata-server probe at once instead of after its
    # retries (this is the environment, not Earth Engine; the ee client itself is untouched).
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "ping", lambda *a, **k: False)
    transport = FakeEETransport()
    yield transport
    from geodl_plugin.core.earthengine import session

    session.disconnect()  # ee.Reset() and the plugin's own state
    assert not transport.strict_errors, f"request bodies that are not strict JSON: {transport.strict_errors}"


@pytest.fixture
def ee_session(fake_ee):
    """The plugin's own sign-in, run against the fake transport (no credentials, no client retries)."""
    from geodl_plugin.core.earthengine import session

    session.connect(project=PROJECT, credentials=None, http_transport=fake_ee, max_retries=0)
    fake_ee.requests.clear()
    return fake_ee


class FakeBlob:
    """The part of google.cloud.storage.Blob the plugin uses."""

    def __init__(self, store: dict, bucket: str, name: str) -> None:
        self._store, self.bucket_name, self.name = store, bucket, name

    @property
    def size(self):
        data = self._store.get((self.bucket_name, self.name))
        return None if data is None else len(data)

    def download_to_filename(self, filename: str) -> None:
        Path(filename).write_bytes(self._store[(self.bucket_name, self.name)])

    def upload_from_filename(self, filename: str) -> None:
        self._store[(self.bucket_name, self.name)] = Path(filename).read_bytes()


class FakeBucket:
    def __init__(self, store: dict, name: str) -> None:
        self._store, self.name = store, name

    def blob(self, name: str) -> FakeBlob:
        return FakeBlob(self._store, self.name, name)


class FakeStorageClient:
    """A small object shaped like google.cloud.storage.Client (bucket side only; EE stays real)."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def bucket(self, name: str) -> FakeBucket:
        return FakeBucket(self.objects, name)

    def list_blobs(self, bucket: str, prefix: str = ""):
        return [FakeBlob(self.objects, b, n) for (b, n) in sorted(self.objects) if b == bucket and n.startswith(prefix)]


@pytest.fixture
def gcs():
    return FakeStorageClient()
