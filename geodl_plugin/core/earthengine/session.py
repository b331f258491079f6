"""Signing in to Earth Engine with a Cloud project, and turning the client's failures into user errors.

Credentials come from ``earthengine authenticate`` (stored by the client under ``~/.config/earthengine``) or
from a service-account key file the user names in the settings. geodl never writes, logs or copies them:
only the Cloud project id and the key file's *path* are settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from ..runtime.errors import GeoDLError

log = logging.getLogger("geodl")

PERSISTENT = "persistent"  # use the credentials stored by `earthengine authenticate`

NOT_SIGNED_IN = (
    "You are not signed in to Earth Engine. Run `earthengine authenticate` in a terminal (with the Python "
    "that QGIS uses), or choose a service-account key file in the GeoDL dock (Imagery tab), then connect again."
)
NO_PROJECT = (
    "No Google Cloud project is set for Earth Engine. Set the Cloud project id (a project registered for "
    "Earth Engine) in the GeoDL dock (Imagery tab, 'Cloud project') or in the algorithm's 'Cloud project' field, "
    "then connect again."
)
OFFLINE = (
    "Cannot reach Earth Engine ({detail}). Check the internet connection and the proxy settings "
    "(Settings → Options → Network), then try again."
)


@dataclass(frozen=True)
class SessionState:
    """What the dock shows: connected or not, to which project, as whom (never a token)."""

    connected: bool
    project: str = ""
    account: str = ""  # "user credentials" or "service account <email>"
    message: str = "Not connected to Earth Engine."


_lock = threading.Lock()
_state = SessionState(False)
# The credentials Earth Engine was initialised with (a service account's, or those of `earthengine
# authenticate`, whose scopes include Cloud Storage): the bucket steps use the same ones. Kept in memory only.
_credentials: Any = None


def state() -> SessionState:
    return _state


def _is_network_error(exc: BaseException) -> bool:
    try:
        import httplib2

        if isinstance(exc, httplib2.HttpLib2Error) and not isinstance(exc, httplib2.RedirectLimit):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        from google.auth.exceptions import TransportError

        if isinstance(exc, TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (OSError, TimeoutError))  # requests' ConnectionError is an OSError too


def http_status(exc: BaseException) -> Optional[int]:
    """The HTTP status behind an ``ee`` error: the client raises EEException from the googleapiclient
    HttpError without ``from``, so the status is on the implicit context."""
    seen = 0
    current: Optional[BaseException] = exc
    while current is not None and seen < 5:
        resp = getattr(current, "resp", None)
        status = getattr(resp, "status", None)
        if status is not None:
            try:
                return int(status)
            except (TypeError, ValueError):
                return None
        current = current.__cause__ or current.__context__
        seen += 1
    return None


def is_retryable(exc: BaseException) -> bool:
    status = http_status(exc)
    if status is not None:
        return status == 429 or status >= 500
    return _is_network_error(exc)


@contextlib.contextmanager
def ee_errors(action: str) -> Iterator[None]:
    """Turn what the Earth Engine client raises while doing ``action`` into a GeoDLError that names the
    problem and the fix."""
    import ee

    try:
        yield
    except GeoDLError:
        raise
    except ee.EEException as exc:
        text = str(exc)
        status = http_status(exc)
        if "not initialized" in text.lower() or "please authorize" in text.lower():
            raise GeoDLError(f"Cannot {action}: {NOT_SIGNED_IN}") from exc
        if status == 429:
            raise GeoDLError(
                f"Cannot {action}: Earth Engine says too many requests ({text}). Wait a minute and retry, or "
                "lower the number of parallel requests."
            ) from exc
        if status in (401, 403):
            raise GeoDLError(
                f"Cannot {action}: Earth Engine refused access ({text}). Check that the Cloud project is "
                "registered for Earth Engine and that your account may use it, or sign in again with "
                "`earthengine authenticate`."
            ) from exc
        raise GeoDLError(f"Cannot {action}: Earth Engine answered: {text}") from exc
    except Exception as exc:
        if _is_network_error(exc):
            raise GeoDLError(f"Cannot {action}. " + OFFLINE.format(detail=exc)) from exc
        try:
            from google.auth.exceptions import RefreshError
        except ImportError:  # pragma: no cover
            RefreshError = ()  # type: ignore[assignment,misc]  # noqa: N806
        if isinstance(exc, RefreshError):
            raise GeoDLError(f"Cannot {action}: your Earth Engine sign-in has expired. {NOT_SIGNED_IN}") from exc
        raise


def _service_account_credentials(key_file: str) -> tuple[Any, str]:
    path = Path(key_file).expanduser()
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise GeoDLError(
            f"The service-account key file '{path}' does not exist. Choose the JSON key downloaded from the "
            "Cloud console in the GeoDL dock (Imagery tab), or clear the field to use `earthengine authenticate`."
        ) from exc
    except (OSError, ValueError) as exc:
        raise GeoDLError(
            f"The service-account key file '{path}' cannot be read as JSON ({exc}). Download a new JSON key "
            "from the Cloud console (IAM → Service accounts → Keys)."
        ) from exc
    if info.get("type") != "service_account" or "client_email" not in info or "private_key" not in info:
        raise GeoDLError(
            f"'{path}' is not a service-account key (it needs type 'service_account', client_email and "
            "private_key). Download a JSON key from the Cloud console (IAM → Service accounts → Keys)."
        )
    import ee
    from google.oauth2 import service_account

    try:
        creds = service_account.Credentials.from_service_account_info(info, scopes=ee.oauth.SCOPES)
    except ValueError as exc:
        raise GeoDLError(f"The service-account key '{path}' is damaged ({exc}). Download a new key.") from exc
    return creds, str(info.get("project_id", ""))


def connect(
    project: str,
    key_file: str = "",
    credentials: Any = PERSISTENT,
    http_transport: Any = None,
    max_retries: Optional[int] = None,
) -> SessionState:
    """Initialise Earth Engine for ``project``.

    ``key_file``: a service-account JSON key; without one, the credentials stored by `earthengine
    authenticate` are used (``credentials=PERSISTENT``). ``credentials=None`` (no credentials at all) and
    ``http_transport`` exist for tests, which drive the real client through a fake transport.
    ``max_retries`` sets the client's own retries of 429/5xx (the EE default, 5, when None).
    """
    global _state, _credentials
    import ee

    project = (project or "").strip()
    account = "user credentials"
    if key_file:
        credentials, key_project = _service_account_credentials(key_file)
        account = f"service account {credentials.service_account_email}"
        project = project or key_project
    if not project:
        _state = SessionState(False, message=NO_PROJECT)
        raise GeoDLError(NO_PROJECT)
    if credentials == PERSISTENT:
        try:
            credentials = ee.data.get_persistent_credentials()
        except ee.EEException as exc:
            _state = SessionState(False, project=project, message=NOT_SIGNED_IN)
            raise GeoDLError(NOT_SIGNED_IN) from exc
    elif credentials is None:
        account = "no credentials (test transport)"
    with _lock:
        try:
            if max_retries is not None:
                ee.data.setMaxRetries(max_retries)
            with ee_errors(f"connect to Earth Engine with project '{project}'"):
                ee.Initialize(credentials=credentials, project=project, http_transport=http_transport)
        except GeoDLError as exc:
            ee.Reset()
            _state = SessionState(False, project=project, account=account, message=str(exc))
            raise
        _credentials = credentials
        _state = SessionState(True, project=project, account=account, message=f"Connected to Earth Engine (project {project}, {account}).")
    log.info("%s", _state.message)
    return _state


def ensure_connected(project: str = "", key_file: str = "", **kwargs: Any) -> SessionState:
    """Connect unless already connected to ``project`` (or to any project when ``project`` is empty)."""
    import ee

    current = _state
    if current.connected and ee.data.is_initialized() and (not project or project == current.project):
        return current
    return connect(project, key_file=key_file, **kwargs)


def require_connected() -> str:
    """The connected project id, or a GeoDLError saying how to connect."""
    import ee

    if not (_state.connected and ee.data.is_initialized()):
        raise GeoDLError("Earth Engine is not connected. " + NOT_SIGNED_IN)
    return _state.project


def storage_client() -> Any:
    """A Cloud Storage client signed in as Earth Engine is (the service-account key or the stored user
    credentials), for the project Earth Engine uses: not whatever application-default credentials the machine
    happens to have, which may be another account or none."""
    project = require_connected()
    try:
        from google.cloud import storage  # type: ignore[attr-defined]  # a namespace package mypy cannot always follow
    except ImportError as exc:
        raise GeoDLError(
            "Cloud Storage steps need the Python package google-cloud-storage; install it into QGIS's Python "
            "(pip install google-cloud-storage)."
        ) from exc
    try:
        if _credentials is None:  # the test transport's session: no credentials of its own
            return storage.Client(project=project)
        return storage.Client(project=project, credentials=_credentials)
    except Exception as exc:  # noqa: BLE001 - google.auth raises several kinds
        raise GeoDLError(
            f"Cannot open Cloud Storage with the Earth Engine sign-in ({exc}). Sign in again (`earthengine "
            "authenticate` or the service-account key), or copy the files with the Cloud console."
        ) from exc


def disconnect() -> None:
    global _state, _credentials
    import ee

    ee.Reset()
    _state = SessionState(False)
    _credentials = None
