"""Fixtures of the local MLS server tests: a real subprocess server, spoken to over HTTP with requests."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from airflow_provider_mls.local.process import LocalMLSServer

FAST: dict[str, Any] = {"training_seconds": 0.6, "server_start_seconds": 0.6, "page_size": 5}


class Api:
    """Thin requests wrapper: ``api.get(path)`` -> ``(http_status, envelope)``."""

    def __init__(self, server: LocalMLSServer, auth: tuple[str, str] | None = None) -> None:
        self.server = server
        self.session = requests.Session()
        self.session.auth = auth if auth is not None else server.auth

    def call(self, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        kw.setdefault("timeout", 15)
        r = self.session.request(method, self.server.url + path, **kw)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("POST", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return self.call("DELETE", path, **kw)

    def ok(self, method: str, path: str, json: Any = None, **kw: Any) -> Any:
        status, body = self.call(method, path, json=json, **kw)
        assert status == 200, (status, body)
        assert body["code"] == 200 and body["error"] is None, body
        return body["results"]

    # helpers creating things with unique names
    def dataset(self, error: str | None = None, **kw: Any) -> dict[str, Any]:
        body = {
            "name": uniq("ds"),
            "type": "classification",
            "base_feature_conf": {"features": ["age"]},
            "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
            **kw,
        }
        if error is not None:
            body["error"] = error
        result: dict[str, Any] = self.ok("POST", "/api/v1/datasets", body)
        return result

    def manual_model(self, **kw: Any) -> int:
        body = {"model_type": "manual", "name": uniq("m"), "version": "v1", "model_lib": "sklearn", **kw}
        return int(self.ok("POST", "/api/v1/models", body)["id"])

    def automl_model(self, dataset_id: int | None = None, **kw: Any) -> int:
        if dataset_id is None:
            dataset_id = self.dataset()["id"]
        body = {
            "model_type": "automl",
            "name": uniq("a"),
            "version": "v1",
            "description": "d",
            "dataset_id": dataset_id,
            **kw,
        }
        return int(self.ok("POST", "/api/v1/models", body)["id"])

    def experiment(self) -> dict[str, Any]:
        result: dict[str, Any] = self.ok(
            "POST", "/api/v1/experiments", {"name": uniq("exp"), "bucketing_seed": "seed"}
        )
        return result


PUT_KEYS = (
    "name",
    "version",
    "description",
    "creator",
    "model_lib",
    "model_data",
    "model_meta",
    "features",
    "table",
)


def put_body(model: dict[str, Any]) -> dict[str, Any]:
    """The PUT of a model as read, as the reference client builds it: ``model_type``, every field
    whose value is not None (read-only ones like ``id`` and ``status`` left out), components as names."""
    body: dict[str, Any] = {"model_type": "manual"}
    body.update({k: model[k] for k in PUT_KEYS if model.get(k) is not None})
    if model.get("components") is not None:
        body["components"] = [c["name"] if isinstance(c, dict) else c for c in model["components"]]
    return body


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def assert_error(status: int, body: Any, code: int, field: str | None = None) -> None:
    assert status == code, (status, body)
    assert isinstance(body, dict), body
    assert body["code"] == code and body["results"] is None, body
    assert isinstance(body["error"], str) and body["error"], body
    if field is not None:
        assert body["error"].startswith(f"{field}:") or f"{field}:" in body["error"], body


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with LocalMLSServer(tmp_path_factory.mktemp("mls-local"), **FAST) as srv:
        yield srv


@pytest.fixture
def api(server: LocalMLSServer) -> Api:
    return Api(server)
