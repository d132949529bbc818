"""Fixtures of the trigger tests: the shared local MLS server, its helper endpoints, running a trigger."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger

# Tiny backoff for the triggers under test (their retry_min_wait / retry_max_wait kwargs).
FAST_RETRIES = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}


class Admin:
    """Set the scene on the shared server: models through a hook, readiness and faults through ``/local``."""

    def __init__(self, server: Any) -> None:
        self.conn = json.loads(server.conn_json())
        self.url = server.url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = (self.conn["login"], self.conn["password"])
        self.hook = MLSHook(retry_min_wait=0.001, retry_max_wait=0.01)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.url}{path}", timeout=10, **kwargs)
        body = response.json()
        assert not body.get("error"), body
        return body["results"]

    def conn_json(self, **changes: Any) -> str:
        """The server's connection JSON with some fields (or extras) changed."""
        conn = json.loads(json.dumps(self.conn))
        conn["extra"].update(changes.pop("extra", {}))
        conn.update(changes)
        return json.dumps(conn)

    def table(self, table: str, *, is_active: bool = True, is_loading: bool = False) -> None:
        self.call("PUT", f"/local/tables/{table}", json={"is_active": is_active, "is_loading": is_loading})

    def artifact(self, name: str, version: str, info: dict[str, Any]) -> None:
        self.call("PUT", f"/local/artifacts/{name}/{version}", json={"info": info})

    def training(self, model_id: int, status: str, error: str | None = None) -> None:
        body: dict[str, Any] = {"status": status}
        if error is not None:
            body["error"] = error
        self.call("POST", f"/local/models/{model_id}/training", json=body)

    def fault(self, method: str, path: str, status: int | None = 503, count: int = 1, **kwargs: Any) -> None:
        self.call(
            "POST",
            "/local/faults",
            json={"method": method, "path": path, "status": status, "count": count, **kwargs},
        )

    def pending_faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", "/local/faults")
        return result

    def clear_faults(self) -> None:
        self.call("DELETE", "/local/faults")

    def automl_model(self, name: str) -> dict[str, Any]:
        dataset = self.call(
            "POST",
            "/api/v1/datasets",
            json={
                "name": f"ds-{name}",
                "type": "classification",
                "base_feature_conf": {"features": ["age"]},
                "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
            },
        )
        return self.hook.create_automl_model(name, "v1", "trigger test", dataset_id=dataset["id"])

    def close(self) -> None:
        self.hook.close()
        self.session.close()


@pytest.fixture
def admin(mls_conn: Any) -> Iterator[Admin]:
    adm = Admin(mls_conn)
    adm.clear_faults()
    yield adm
    adm.clear_faults()
    adm.close()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def run_trigger() -> Callable[[MLSCheckTrigger], list[TriggerEvent]]:
    """``run_trigger(trigger)``: every event it yields (the whole generator), on a fresh event loop."""

    def run(trigger: MLSCheckTrigger) -> list[TriggerEvent]:
        async def collect() -> list[TriggerEvent]:
            return [event async for event in trigger.run()]

        return asyncio.run(asyncio.wait_for(collect(), 60))

    return run
