"""Run TensorFlow-heavy core calls in a separate Python process.

Why: the QGIS binaries (``qgis``, ``qgis_process``) link the system ``libprotobuf`` into the process's
global symbol scope; TensorFlow's own protobuf then collides with it and the process aborts ("free():
invalid size") on QGIS 3.22. A worker process keeps TensorFlow out of QGIS's address space, keeps QGIS's
main thread free of TensorFlow's threads, and makes cancel reliable.

Calls are typed: ``run_in_worker(train_model, params, progress)`` names the function itself; the worker runs
it only if it is in the allow-list of ``core/jobs.py`` (the worker's entry point, at the top of ``core/``), and
both sides rebuild parameters and results from the function's annotations (``typed_json.py``).

Protocol: the parent writes a JSON line ``{"job": "module:function", "params": {...}}`` to the worker's stdin
per job, and
``cancel`` if the user cancels; closing stdin ends the worker. For each job the worker answers with JSON
lines ``{"progress": p}``, ``{"message": m}``, ``{"metrics": {...}}`` and finally one of ``{"result": {...}}``, ``{"cancelled": true}`` or
``{"error": text, "user": bool}``. A cancel reaches the core's ``Progress.check()`` so outputs are cleaned up
exactly as in-process (write-then-rename); the process is killed only if it ignores the cancel.
"""

from __future__ import annotations

import inspect
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
import typing
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .errors import Cancelled, GeoDLError
from .progress import Progress, ensure
from .tensorflow_env import tensorflow_environment
from .typed_json import from_jsonable, to_jsonable

log = logging.getLogger("geodl")
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])  # the folder holding geodl_plugin/
CANCEL_GRACE_SECONDS = 30.0


JOBS_MODULE = f"{__package__.rsplit('.', 1)[0]}.jobs"  # geodl_plugin.core.jobs: the allow-list


def job_name(function: Callable[..., Any]) -> str:
    return f"{function.__module__}:{function.__qualname__}"


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError):  # an annotation only importable for type checkers
        return {}


def worker_python() -> str:
    """``GEODL_WORKER_PYTHON`` if set, else geodl's own ML runtime when it is set up (``environment.py``),
    else the Python QGIS runs."""
    from .environment import active_runtime, qgis_python_executable, runtime_python

    explicit = os.environ.get("GEODL_WORKER_PYTHON")
    if explicit:
        return explicit
    root = active_runtime()
    own = runtime_python(root) if root is not None else None
    return own or qgis_python_executable()


def _own_runtime(python: str) -> Any:
    """The manifest of the geodl runtime ``python`` belongs to, or None for any other interpreter."""
    from .environment import read_runtime

    folder = Path(python).parent.parent  # <runtime>/bin/python, <runtime>/Scripts/python.exe
    return read_runtime(folder)


def worker_environment(python: str, base: Optional[dict[str, str]] = None) -> dict[str, str]:
    """The worker's environment. In geodl's own runtime the worker sees only the plugin package (no QGIS
    site-packages, no user site, no PYTHONHOME) and the runtime's Keras backend; with QGIS's Python it sees
    QGIS's path, as the parent does."""
    env = dict(os.environ if base is None else base)
    tensorflow_environment(env)
    env["PYTHONUNBUFFERED"] = "1"
    info = _own_runtime(python)
    if info is not None:
        env["PYTHONPATH"] = _PACKAGE_PARENT
        env["PYTHONNOUSERSITE"] = "1"
        env.pop("PYTHONHOME", None)
        env.setdefault("KERAS_BACKEND", info.backend)
    else:
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([_PACKAGE_PARENT, *[p for p in sys.path if p]]))
    return env


class Worker:
    """One worker process that can run several jobs, one at a time. A persistent worker keeps TensorFlow
    and the models it loaded warm between jobs (the dock's preview uses one); ``run_in_worker`` uses a
    fresh one per job."""

    def __init__(self) -> None:
        self._proc: Optional[subprocess.Popen] = None
        self._reader: Optional[threading.Thread] = None
        self._lines: Optional[queue.Queue] = None
        self._stderr: Any = None
        self._lock = threading.Lock()

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        python = worker_python()
        env = worker_environment(python)
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")
        self._proc = subprocess.Popen(
            [python, "-m", JOBS_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            text=True,
            encoding="utf-8",
        )
        lines: queue.Queue = queue.Queue()
        stdout = self._proc.stdout

        def read() -> None:
            for line in stdout:  # type: ignore[union-attr]
                lines.put(line)
            lines.put(None)

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        self._lines = lines

    def _send(self, text: str) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(text + "\n")
            self._proc.stdin.flush()
        except OSError:
            pass

    def call(self, function: Callable[..., Any], params: Any = None, progress: Optional[Progress] = None, **kwargs: Any) -> Any:
        """Run ``function(params, progress)`` (or ``function(progress=…, **kwargs)``) in the worker; mirror its
        progress, metrics and messages onto ``progress``; raise its GeoDLError / Cancelled here; return its
        result, rebuilt as the function's return annotation says."""
        progress = ensure(progress)
        payload = to_jsonable(params) if params is not None else to_jsonable(kwargs)
        request = json.dumps(
            {"job": job_name(function), "params": payload, "keywords": params is None},
        )
        with self._lock:
            if not self.alive:
                self._start()
            assert self._lines is not None and self._proc is not None
            self._send(request)
            try:
                outcome = self._follow(progress)
            except BaseException:
                # Interrupted here (Ctrl+C, SIGTERM): the job must stop through its own clean-up, not be
                # killed mid-write, which would leave its temporary files.
                self._abandon()
                raise
        if outcome.get("cancelled"):
            raise Cancelled("Cancelled by the user.")
        if "error" in outcome:
            if outcome.get("user"):
                raise GeoDLError(outcome["error"])
            raise RuntimeError(outcome["error"] + "\n" + outcome.get("traceback", ""))
        return from_jsonable(_hints(function).get("return", Any), outcome["result"])

    def _follow(self, progress: Progress) -> dict:
        assert self._lines is not None and self._proc is not None
        cancel_sent_at: Optional[float] = None
        while True:
            if progress.cancelled() and cancel_sent_at is None:
                cancel_sent_at = time.monotonic()
                self._send("cancel")
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_SECONDS:
                self.close(kill=True)
                return {"cancelled": True}
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:  # the process ended without an answer
                self._proc.wait()
                self._stderr.seek(0)
                tail = self._stderr.read()[-3000:]
                code = self._proc.returncode
                self.close()
                if cancel_sent_at is not None:
                    return {"cancelled": True}
                return {
                    "error": f"The geodl worker process ended without an answer (exit code {code}). Its last output:\n{tail}",
                    "user": False,
                }
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
                return message

    def _abandon(self) -> None:
        """Cancel the running job and wait (a bounded time) for the worker to confirm, then end it."""
        if not self.alive or self._lines is None:
            return
        self._send("cancel")
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            except BaseException:  # a second Ctrl+C: stop waiting
                break
            if line is None:
                break
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not {"progress", "message", "metrics"} & set(message):
                break
        self.close(kill=True)

    def close(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            if kill:
                proc.kill()
            else:
                try:
                    proc.stdin.close()  # type: ignore[union-attr]  # EOF: the worker's loop ends
                    proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
            proc.wait()
        if proc is not None:
            if self._reader is not None:
                self._reader.join(timeout=5)  # it ends at EOF, once the process is gone
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


_shared: Optional[Worker] = None
_shared_lock = threading.Lock()


def shared_worker() -> Worker:
    """The persistent worker (started on first use, kept until :func:`shutdown_shared_worker`)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Worker()
        return _shared


def shutdown_shared_worker() -> None:
    global _shared
    with _shared_lock:
        worker, _shared = _shared, None
    if worker is not None:
        worker.close()


def run_in_worker(
    function: Callable[..., Any], params: Any = None, progress: Optional[Progress] = None, persistent: bool = False, **kwargs: Any
) -> Any:
    """Run ``function`` (one of ``core/jobs.py``'s allow-list) in a worker process: a fresh one (the default:
    training and full predictions, whose memory goes back to the system afterwards), or the persistent shared
    one (``persistent=True``: quick repeated jobs such as the preview, with TensorFlow and the model kept
    warm)."""
    if persistent:
        return shared_worker().call(function, params, progress, **kwargs)
    worker = Worker()
    try:
        return worker.call(function, params, progress, **kwargs)
    finally:
        worker.close()


def _run(jobs: Mapping[str, Callable[..., Any]], request: dict, progress: Progress) -> Any:
    function = jobs.get(request.get("job", ""))
    if function is None:
        raise GeoDLError(f"The worker does not run '{request.get('job')}' (not in geodl's list of worker jobs).")
    raw = request.get("params") or {}
    accepts_progress = "progress" in inspect.signature(function).parameters
    extra = {"progress": progress} if accepts_progress else {}
    if request.get("keywords"):
        return function(**raw, **extra)
    hints = _hints(function)
    first = next(iter(inspect.signature(function).parameters))
    return function(from_jsonable(hints.get(first, Any), raw), **extra)


def serve(jobs: Mapping[str, Callable[..., Any]]) -> int:
    """The worker process's loop: one request at a time from stdin, answers on stdout."""
    channel = sys.stdout
    sys.stdout = sys.stderr  # library prints must not corrupt the protocol
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    cancel = threading.Event()
    parent_gone = threading.Event()
    requests: queue.Queue = queue.Queue()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "cancel":
                cancel.set()
            elif line.strip():
                # A new job starts uncancelled; cleared here, not when the job starts, so a cancel sent right
                # behind the job (before the worker took it up) is not lost.
                cancel.clear()
                requests.put(json.loads(line))
        # EOF: the parent is done with this worker, or was killed outright (SIGKILL). A job still running
        # then has no one to report to: it is cancelled, so its outputs are cleaned up, and the worker ends.
        parent_gone.set()
        cancel.set()
        requests.put(None)

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

    progress = Progress(
        on_progress=on_progress,
        on_message=lambda m: emit({"message": m}),
        is_cancelled=cancel.is_set,
        on_metrics=lambda m: emit({"metrics": m}),
    )
    while True:
        request = requests.get()
        if request is None:
            return 0
        if parent_gone.is_set():
            return 0  # a job sent just before the parent died: no one wants it
        last[0] = -1.0
        try:
            emit({"result": to_jsonable(_run(jobs, request, progress))})
        except Cancelled:
            emit({"cancelled": True})
        except GeoDLError as exc:
            emit({"error": str(exc), "user": True})
        except Exception as exc:  # noqa: BLE001 - reported to the parent with its traceback
            emit({"error": f"{type(exc).__name__}: {exc}", "user": False, "traceback": traceback.format_exc()})
