"""Fixtures of the hook tests: a hook on the shared local MLS server, a request counter, the local admin API."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests

    from airflow_provider_mls.local.process import LocalMLSServer

FAST = {"retry_min_wait": 0.01, "retry_max_wait": 0.05, "write_settle": 0.1}


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


class Admin(LocalMLSAdmin):
    """The local server's helper endpoints (``/local/...``) and raw API calls, outside the hook."""

    def component(self, name: str, info: str = "info", is_latest: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/api/v1/components", json={"name": name, "info": info, "is_latest": is_latest}
        )
        return result

    def models(self, model_type: str, name: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "GET", "/api/v1/models", params={"model_type": model_type, "name": name}
        )
        return result


@pytest.fixture
def admin(mls_server: LocalMLSServer) -> Iterator[Admin]:
    with Admin.from_server(mls_server) as adm, adm.isolated_faults():
        yield adm


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
