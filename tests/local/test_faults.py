"""Fault injection (/local/faults) for client retry tests."""

from __future__ import annotations

import time

import pytest
import requests

from .conftest import Api, assert_error, uniq

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _clear_faults(api: Api) -> None:
    api.ok("DELETE", "/local/faults")


def test_fault_count_and_default_body(api: Api) -> None:
    fault = api.ok(
        "POST", "/local/faults", {"method": "GET", "path": "/api/v1/datasets", "status": 503, "count": 2}
    )
    assert fault["count"] == 2 and fault["id"] >= 1
    assert len(api.ok("GET", "/local/faults")) == 1
    assert api.get("/api/v1/models")[0] == 200  # other paths unaffected
    assert api.post("/api/v1/datasets", {})[0] == 400  # other methods unaffected
    for _ in range(2):
        r = api.session.get(api.server.url + "/api/v1/datasets", timeout=10)
        assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
        with pytest.raises(ValueError):
            r.json()
    assert api.get("/api/v1/datasets")[0] == 200
    assert api.ok("GET", "/local/faults") == []


def test_fault_custom_body_retry_after_and_wildcard(api: Api) -> None:
    api.ok("POST", "/local/faults", {"method": "*", "path": "/api/v1/models", "status": 429, "count": 1,
                                     "body": "slow down", "content_type": "text/plain", "retry_after": 2})  # fmt: skip
    r = api.session.post(api.server.url + "/api/v1/models", json={}, timeout=10)
    assert r.status_code == 429 and r.text == "slow down" and r.headers["Retry-After"] == "2"
    # the fault applies after auth only
    api.ok("POST", "/local/faults", {"path": "/api/v1/models", "status": 502})
    assert requests.get(api.server.url + "/api/v1/models", timeout=10).status_code == 401
    assert api.session.get(api.server.url + "/api/v1/models", timeout=10).status_code == 502
    # the faults endpoint itself is never faulted
    api.ok("POST", "/local/faults", {"path": "/", "status": 500, "count": 5})
    assert len(api.ok("GET", "/local/faults")) == 1
    assert api.ok("DELETE", "/local/faults") == {"cleared": 1}
    assert api.get("/api/v1/models")[0] == 200


def test_fault_after_commits_then_loses_the_answer(api: Api) -> None:
    name = uniq("lost")
    api.ok(
        "POST", "/local/faults", {"method": "POST", "path": "/api/v1/models", "status": 504, "after": True}
    )
    r = api.session.post(api.server.url + "/api/v1/models",
                         json={"model_type": "manual", "name": name, "version": "1"}, timeout=10)  # fmt: skip
    assert r.status_code == 504
    assert len(api.ok("GET", "/api/v1/models", params={"name": name})) == 1  # committed
    status, body = api.post("/api/v1/models", {"model_type": "manual", "name": name, "version": "1"})
    assert_error(status, body, 409)


def test_fault_delay_triggers_client_timeout(api: Api) -> None:
    api.ok("POST", "/local/faults", {"path": "/api/v1/components", "status": 503, "delay": 1.5})
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.session.get(api.server.url + "/api/v1/components", timeout=0.5)
    assert time.monotonic() - started < 1.4
    # a delay without status: slow but normal answer
    api.ok("POST", "/local/faults", {"path": "/api/v1/components", "status": None, "delay": 0.5})
    started = time.monotonic()
    assert api.get("/api/v1/components")[0] == 200
    assert time.monotonic() - started >= 0.4


def test_fault_bad_input(api: Api) -> None:
    assert_error(*api.post("/local/faults", {"count": 0}), 400, "count")
    assert_error(*api.post("/local/faults", {"delay": -1}), 400, "delay")
