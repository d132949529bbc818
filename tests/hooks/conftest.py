"""Fixtures of the hook tests: a hook on the shared local MLS server, a request counter, the local admin API."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FAST = {"retry_min_wait": 0.01, "retry_max_wait": 0.05}


class RequestLog:
    """Counts every request a hook's session sends (also those that never get a response)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def install(self, hook: MLSHook) -> RequestLog:
        session = hook.get_conn()
        send = session.send

        def counting_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            self.calls.append((str(request.method), urlsplit(str(request.url)).path))
            return send(request, **kwargs)

        session.send = counting_send  # type: ignore[method-assign]
        return self

    def __len__(self) -> int:
        return len(self.calls)

    def reset(self) -> None:
        self.calls.clear()


class Admin:
    """The local server's helper endpoints (``/local/...``) and raw API calls, outside the hook."""

    def __init__(self, server: Any) -> None:
        conn = json.loads(server.conn_json())
        self.url = server.url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (conn["login"], conn["password"])
        self.password = conn["password"]
        self.login = conn["login"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        body = response.json()
        assert not body.get("error"), body
        return body["results"]

    def fault(self, method: str, path: str, status: int | None = 503, count: int = 1, **kwargs: Any) -> None:
        self.call(
            "POST",
            "/local/faults",
            json={"method": method, "path": path, "status": status, "count": count, **kwargs},
        )

    def clear_faults(self) -> None:
        self.call("DELETE", "/local/faults")

    def table(self, table: str, *, is_active: bool, is_loading: bool) -> None:
        self.call("PUT", f"/local/tables/{table}", json={"is_active": is_active, "is_loading": is_loading})

    def artifact(self, name: str, version: str, info: dict[str, Any] | None) -> None:
        self.call("PUT", f"/local/artifacts/{name}/{version}", json={"info": info})

    def component(self, name: str, info: str = "info", is_latest: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/api/v1/components", json={"name": name, "info": info, "is_latest": is_latest}
        )
        return result

    def dataset(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST",
            "/api/v1/datasets",
            json={
                "name": name,
                "type": "classification",
                "base_feature_conf": {"features": ["age"]},
                "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
            },
        )
        return result

    def models(self, model_type: str, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "GET", "/api/v1/models", params={"model_type": model_type, "name": name}
        )
        return result


@pytest.fixture
def admin(mls_server: Any) -> Iterator[Admin]:
    adm = Admin(mls_server)
    adm.clear_faults()
    yield adm
    adm.clear_faults()


@pytest.fixture
def hook(mls_conn: Any, admin: Admin) -> Iterator[MLSHook]:
    h = MLSHook(**FAST)  # type: ignore[arg-type]
    yield h
    h.close()


@pytest.fixture
def counter(hook: MLSHook) -> RequestLog:
    return RequestLog().install(hook)


@pytest.fixture
def make_hook() -> Iterator[Callable[..., tuple[MLSHook, RequestLog]]]:
    """A hook with fast retries (overridable) on any connection id, and its request counter."""
    made: list[MLSHook] = []

    def factory(conn_id: str = "mls_default", **kwargs: Any) -> tuple[MLSHook, RequestLog]:
        h = MLSHook(conn_id, **{**FAST, **kwargs})
        made.append(h)
        return h, RequestLog().install(h)

    yield factory
    for h in made:
        h.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
