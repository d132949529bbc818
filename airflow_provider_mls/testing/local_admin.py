"""A client for the local MLS server's test endpoints (``/local/...``), for tests and DAG tests only.

``LocalMLSAdmin`` sets the scene a test needs on a running local server: table and artifact
readiness, training outcomes, model server states and injected faults. Every call checks the MLS
envelope and raises ``LocalMLSAdminError`` (with the status and body) unless the answer is a 2xx
without ``error``. It never talks to a real MLS: the ``/local`` paths exist on the local server only.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, Self

import requests

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["LocalMLSAdmin", "LocalMLSAdminError"]


class _StartedServer(Protocol):
    """What ``from_server`` reads of a started ``LocalMLSServer`` (no import of it: no cycle)."""

    @property
    def url(self) -> str: ...

    @property
    def auth(self) -> tuple[str, str]: ...


class LocalMLSAdminError(RuntimeError):
    """The local server refused an admin call (non-2xx status, ``error`` in the envelope, or not JSON)."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} -> HTTP {status}: {body!r}")
        self.method = method
        self.path = path
        self.status = status
        self.body = body


class LocalMLSAdmin:
    """``with LocalMLSAdmin(mls.url, mls.auth) as admin: admin.set_table("t")`` (``mls`` a running server).

    ``url`` is the server's base URL, ``auth`` its Basic credentials, ``timeout`` the per-request
    timeout in seconds. One ``requests.Session`` (attribute ``session``) serves every call.
    """

    def __init__(self, url: str, auth: tuple[str, str], *, timeout: float = 10) -> None:
        if not url:
            raise ValueError("url is empty (is the local server started?)")
        self.url = url.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = auth

    @classmethod
    def from_server(cls, server: _StartedServer, *, timeout: float = 10) -> Self:
        """An admin client for a started ``LocalMLSServer`` (its ``url`` and ``auth``)."""
        return cls(server.url, server.auth, timeout=timeout)

    # ------------------------------------------------------------------ plumbing
    def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """Send ``method path`` (any path of the server, ``/api/...`` too) and return the ``results``.

        Raises ``LocalMLSAdminError`` unless the answer is a 2xx JSON envelope without ``error``.
        """
        response = self.session.request(
            method, f"{self.url}{path}", json=json, params=params, timeout=self.timeout
        )
        try:
            body = response.json()
        except ValueError:
            raise LocalMLSAdminError(method, path, response.status_code, response.text) from None
        if not 200 <= response.status_code < 300 or not isinstance(body, dict) or body.get("error"):
            raise LocalMLSAdminError(method, path, response.status_code, body)
        return body.get("results")

    def close(self) -> None:
        """Close the HTTP session (the server keeps running)."""
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalMLSAdmin(url={self.url!r})"

    # ------------------------------------------------------------------ endpoints
    def health(self) -> dict[str, Any]:
        """``GET /local/health``: ``{"status": "ok"}``."""
        result: dict[str, Any] = self.call("GET", "/local/health")
        return result

    def reset(self) -> dict[str, Any]:
        """``POST /local/reset``: an empty server again (models, datasets, components, experiments,
        faults; on the embedded AWS endpoint every bucket object, table and model package, the
        registry buckets made again). Returns ``{"deleted": {table: rows}, "faults_cleared",
        "aws_reset"}`` (``aws_reset`` is false with an external ``--aws-endpoint``, left as it is)."""
        result: dict[str, Any] = self.call("POST", "/local/reset")
        return result

    def set_table(self, table: str, *, is_active: bool = True, is_loading: bool = False) -> dict[str, Any]:
        """Create the DynamoDB table if missing and set its loading marker (``is_active=False`` drops
        it instead); returns ``{"table", "is_active", "is_loading"}``."""
        result: dict[str, Any] = self.call(
            "PUT", f"/local/tables/{table}", json={"is_active": is_active, "is_loading": is_loading}
        )
        return result

    def drop_table(self, table: str) -> None:
        """Drop the DynamoDB table (it then reads inactive, not loading); raises if unknown (404)."""
        self.call("DELETE", f"/local/tables/{table}")

    def set_artifact(self, name: str, version: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make the artifact of ``name``/``version`` exist; returns its info.

        ``info=None`` stores the server's default ``{"path", "size": 0, "last_modified"}``.
        """
        path = f"/local/artifacts/{name}/{version}"
        stored: dict[str, Any] = self.call("PUT", path, json={"info": info})["info"]
        return stored

    def delete_artifact(self, name: str, version: str) -> None:
        """Remove the artifact (its info reads ``None`` again); raises if unknown (404)."""
        self.call("DELETE", f"/local/artifacts/{name}/{version}")

    def finish_training(
        self, model_id: int, status: str = "DONE", error: str | None = None
    ) -> dict[str, Any]:
        """End an AutoML model's training now, ``DONE`` or ``FAILED`` (with ``error``); returns the model."""
        body: dict[str, Any] = {"status": status}
        if error is not None:
            body["error"] = error
        result: dict[str, Any] = self.call("POST", f"/local/models/{model_id}/training", json=body)
        return result

    def force_server(
        self, model_id: int, status: str | None = None, fail_next_start: bool | None = None
    ) -> dict[str, Any]:
        """Set an AutoML model server's state now and/or make its next start end ``FAILED``.

        ``None`` leaves that field as it is. Returns ``{"status", "fail_next_start"}``.
        """
        body = {k: v for k, v in (("status", status), ("fail_next_start", fail_next_start)) if v is not None}
        result: dict[str, Any] = self.call("POST", f"/local/models/{model_id}/automl_model_server", json=body)
        return result

    def add_fault(
        self, method: str = "*", path: str = "/", status: int | None = 503, count: int = 1, **kwargs: Any
    ) -> dict[str, Any]:
        """The next ``count`` requests of ``method`` (``*``: any) under the path prefix get ``status``.

        ``kwargs`` are the other fault fields of the server: ``body``, ``content_type``,
        ``retry_after``, ``delay``, ``after`` (see docs/local-server.md). ``status=None`` only delays.
        Returns the fault with its ``id``.
        """
        result: dict[str, Any] = self.call(
            "POST",
            "/local/faults",
            json={"method": method, "path": path, "status": status, "count": count, **kwargs},
        )
        return result

    def pending_faults(self) -> list[dict[str, Any]]:
        """The faults not used up yet."""
        result: list[dict[str, Any]] = self.call("GET", "/local/faults")
        return result

    def clear_faults(self) -> int:
        """Drop every pending fault; returns how many there were."""
        return int(self.call("DELETE", "/local/faults")["cleared"])

    @contextmanager
    def isolated_faults(self) -> Iterator[Self]:
        """``with admin.isolated_faults():`` no fault pending on entry, none left behind on exit."""
        self.clear_faults()
        try:
            yield self
        finally:
            self.clear_faults()

    # ------------------------------------------------------------------ setup helpers
    def create_dataset(self, name: str, *, error: str | None = None) -> dict[str, Any]:
        """A classification dataset (one feature, labels on S3) to train AutoML models from.

        ``error`` (local server only) makes every training from this dataset end ``FAILED`` with it.
        """
        body: dict[str, Any] = {
            "name": name,
            "type": "classification",
            "base_feature_conf": {"features": ["age"]},
            "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
        }
        if error is not None:
            body["error"] = error
        result: dict[str, Any] = self.call("POST", "/api/v1/datasets", json=body)
        return result

    def create_automl_model(
        self,
        name: str,
        version: str = "v1",
        *,
        dataset_id: int | None = None,
        description: str = "",
        trained: bool = False,
    ) -> dict[str, Any]:
        """An AutoML model (training starts) from ``dataset_id``, else from a new ``create_dataset``.

        ``trained=True`` ends its training now (``DONE``) instead of after ``--training-seconds``.
        Returns the model as ``GET /api/v1/models/{id}`` reads it.
        """
        if dataset_id is None:
            dataset_id = int(self.create_dataset(f"ds-{name}-{version}")["id"])
        body = {
            "model_type": "automl",
            "name": name,
            "version": version,
            "description": description,
            "dataset_id": dataset_id,
        }
        model_id = int(self.call("POST", "/api/v1/models", json=body)["id"])
        if trained:
            self.finish_training(model_id)
        result: dict[str, Any] = self.call("GET", f"/api/v1/models/{model_id}")
        return result
