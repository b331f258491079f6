"""Run TensorFlow-heavy core calls in a separate Python process.

Why: the QGIS binaries (``qgis``, ``qgis_process``) link the system ``libprotobuf`` into the process's
global symbol scope; TensorFlow's own protobuf then collides with it and the process aborts ("free():
invalid size") on QGIS 3.22. A worker process keeps TensorFlow out of QGIS's address space, keeps QGIS's
main thread free of TensorFlow's threads, and makes cancel reliable.

Protocol: the parent writes one JSON line ``{"job": name, "params": {...}}`` to the worker's stdin, and later
``cancel`` if the user cancels; the worker answers with JSON lines ``{"progress": p}``, ``{"message": m}``,
``{"metrics": {...}}`` and finally one of ``{"result": {...}}``, ``{"cancelled": true}`` or
``{"error": text, "user": bool}``. A cancel reaches the core's ``Progress.check()`` so outputs are cleaned up
exactly as in-process (write-then-rename); the process is killed only if it ignores the cancel.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import Cancelled, GeoDLError
from .progress import Progress, ensure

log = logging.getLogger("geodl")
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
CANCEL_GRACE_SECONDS = 30.0


def _jobs() -> dict[str, tuple[Callable[..., Any], Optional[type], Optional[type]]]:
    """name → (function, params dataclass or None for keyword arguments, result dataclass or None)."""
    from .dependencies import describe_training_device
    from .evaluation import evaluate_model
    from .prediction import PredictParams, PredictResult, predict_raster
    from .training import TrainParams, TrainResult, train_model

    return {
        "train_model": (train_model, TrainParams, TrainResult),
        "predict_raster": (predict_raster, PredictParams, PredictResult),
        "evaluate_model": (evaluate_model, None, None),
        "describe_training_device": (lambda progress=None: describe_training_device(), None, None),
    }


def _result_types() -> dict[str, Optional[type]]:
    from .prediction import PredictResult
    from .training import TrainResult

    return {"train_model": TrainResult, "predict_raster": PredictResult}


def worker_python() -> str:
    from .dependencies import qgis_python_executable

    return os.environ.get("GEODL_WORKER_PYTHON") or qgis_python_executable()


def call_in_worker(job: str, params: Any = None, progress: Optional[Progress] = None, **kwargs: Any) -> Any:
    """Run ``job`` (a name from the worker's table) in a worker process; mirror its progress, metrics and
    messages onto ``progress``; raise its GeoDLError / Cancelled here; return its result."""
    progress = ensure(progress)
    payload = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else (params or kwargs)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_PACKAGE_PARENT, *[p for p in sys.path if p]]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    module = f"{__package__}.worker"
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        proc = subprocess.Popen([worker_python(), "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=stderr, env=env, text=True, encoding="utf-8")
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"job": job, "params": payload}) + "\n")
        proc.stdin.flush()
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)],  # type: ignore[union-attr]
                                  daemon=True)
        reader.start()
        cancel_sent_at: Optional[float] = None
        outcome: Optional[dict] = None
        while outcome is None:
            if progress.cancelled() and cancel_sent_at is None:
                cancel_sent_at = time.monotonic()
                try:
                    proc.stdin.write("cancel\n")
                    proc.stdin.flush()
                except OSError:
                    pass
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_SECONDS:
                proc.kill()
                proc.wait()
                raise Cancelled("Cancelled by the user.")
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue  # a stray print from a library
            if "progress" in message:
                progress.update(float(message["progress"]))
            elif "message" in message:
                progress.message(str(message["message"]))
            elif "metrics" in message:
                progress.metrics(dict(message["metrics"]))
            else:
                outcome = message
        proc.wait()
        if outcome is None:
            stderr.seek(0)
            tail = stderr.read()[-3000:]
            if cancel_sent_at is not None:
                raise Cancelled("Cancelled by the user.")
            raise RuntimeError(f"The geodl worker process ended without an answer (exit code {proc.returncode}). "
                               f"Its last output:\n{tail}")
    if outcome.get("cancelled"):
        raise Cancelled("Cancelled by the user.")
    if "error" in outcome:
        if outcome.get("user"):
            raise GeoDLError(outcome["error"])
        raise RuntimeError(outcome["error"] + "\n" + outcome.get("traceback", ""))
    result = outcome["result"]
    result_type = _result_types().get(job)
    return result_type(**result) if result_type is not None and isinstance(result, dict) else result


def _serialise(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def _main() -> int:
    channel = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    request = json.loads(sys.stdin.readline())
    cancel = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                cancel.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    lock = threading.Lock()
    last = [-1.0]

    def emit(obj: dict) -> None:
        with lock:
            channel.write(json.dumps(obj, default=str) + "\n")
            channel.flush()

    def on_progress(p: float) -> None:
        if abs(p - last[0]) >= 0.5 or p >= 100:
            last[0] = p
            emit({"progress": p})

    progress = Progress(on_progress=on_progress, on_message=lambda m: emit({"message": m}),
                        is_cancelled=cancel.is_set, on_metrics=lambda m: emit({"metrics": m}))
    try:
        function, params_type, _ = _jobs()[request["job"]]
        raw = request.get("params") or {}
        if params_type is not None:
            result = function(params_type(**raw), progress)
        else:
            result = function(progress=progress, **raw)
        emit({"result": _serialise(result)})
    except Cancelled:
        emit({"cancelled": True})
    except GeoDLError as exc:
        emit({"error": str(exc), "user": True})
    except Exception as exc:  # noqa: BLE001 - reported to the parent with its traceback
        emit({"error": f"{type(exc).__name__}: {exc}", "user": False, "traceback": traceback.format_exc()})
    return 0


if __name__ == "__main__":
    code = _main()
    sys.stderr.flush()
    os._exit(code)  # skip interpreter teardown (TensorFlow's static destructors can crash on exit)
