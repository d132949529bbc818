"""AutoML simulation: training TRAINING -> DONE | FAILED and the model server state machine."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from .conftest import FAST, Api, assert_error

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.timeout(60)


def wait_for(fn: Callable[[], object], expected: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    value = fn()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = fn()
    assert value == expected


def status_of(api: Api, model_id: int) -> Callable[[], object]:
    return lambda: api.ok("GET", f"/api/v1/models/{model_id}")["status"]


def server_of(api: Api, model_id: int) -> Callable[[], object]:
    return lambda: api.ok("GET", f"/api/v1/models/{model_id}/automl_model_server")["status"]


def trained(api: Api) -> int:
    model_id = api.automl_model()
    wait_for(status_of(api, model_id), "DONE")
    return model_id


def test_training_goes_to_done(api: Api) -> None:
    model_id = api.automl_model()
    model = api.ok("GET", f"/api/v1/models/{model_id}")
    assert model["status"] == "TRAINING"
    assert "error" not in model["automl_model_info"]
    wait_for(status_of(api, model_id), "DONE")
    model = api.ok("GET", f"/api/v1/models/{model_id}")
    assert "error" not in model["automl_model_info"]
    created = api.ok("GET", "/api/v1/models", params={"id": model_id})[0]
    assert created["status"] == "DONE"


def test_training_fails_from_dataset_error(api: Api) -> None:
    ds = api.dataset(error="label column missing")
    model_id = api.automl_model(dataset_id=ds["id"])
    assert api.ok("GET", f"/api/v1/models/{model_id}")["status"] == "TRAINING"
    wait_for(status_of(api, model_id), "FAILED")
    assert api.ok("GET", f"/api/v1/models/{model_id}")["automl_model_info"]["error"] == "label column missing"


def test_training_outcome_forced_through_local_endpoint(api: Api) -> None:
    model_id = api.automl_model()
    model = api.ok("POST", f"/local/models/{model_id}/training", {"status": "FAILED", "error": "boom"})
    assert model["status"] == "FAILED" and model["automl_model_info"]["error"] == "boom"
    assert api.ok("GET", f"/api/v1/models/{model_id}")["status"] == "FAILED"
    api.ok("POST", f"/local/models/{model_id}/training", {"status": "DONE"})
    model = api.ok("GET", f"/api/v1/models/{model_id}")
    assert model["status"] == "DONE" and "error" not in model["automl_model_info"]
    assert_error(*api.post(f"/local/models/{model_id}/training", {"status": "NOPE"}), 400, "status")
    assert_error(
        *api.post(f"/local/models/{api.manual_model()}/training", {"status": "DONE"}), 400, "model_type"
    )
    assert_error(*api.post("/local/models/999999/training", {"status": "DONE"}), 404)


def test_server_start_and_stop(api: Api) -> None:
    model_id = trained(api)
    url = f"/api/v1/models/{model_id}/automl_model_server"
    assert api.ok("GET", url) == {"status": "STOPPED"}
    assert api.ok("DELETE", url) == {"status": "STOPPED"}  # stop while stopped: no-op
    api.ok("POST", url)
    assert api.ok("GET", url) == {"status": "STARTING"}
    api.ok("POST", url)  # start while starting: no-op
    wait_for(server_of(api, model_id), "RUNNING")
    api.ok("POST", url)  # start while running: no-op
    assert api.ok("GET", url) == {"status": "RUNNING"}
    api.ok("DELETE", url)
    assert api.ok("GET", url) == {"status": "STOPPING"}
    assert_error(*api.post(url), 409)  # start while stopping
    api.ok("DELETE", url)  # stop while stopping: no-op
    wait_for(server_of(api, model_id), "STOPPED")
    api.ok("POST", url)
    wait_for(server_of(api, model_id), "RUNNING")


def test_server_timing(api: Api) -> None:
    model_id = trained(api)
    url = f"/api/v1/models/{model_id}/automl_model_server"
    started = time.monotonic()
    api.ok("POST", url)
    wait_for(server_of(api, model_id), "RUNNING")
    assert time.monotonic() - started >= FAST["server_start_seconds"] * 0.9


def test_server_fail_next_start_and_forced_states(api: Api) -> None:
    model_id = trained(api)
    url = f"/api/v1/models/{model_id}/automl_model_server"
    local = f"/local/models/{model_id}/automl_model_server"
    assert api.ok("POST", local, {"fail_next_start": True})["fail_next_start"] is True
    api.ok("POST", url)
    assert api.ok("GET", url) == {"status": "STARTING"}
    wait_for(server_of(api, model_id), "FAILED")
    api.ok("POST", url)  # restart from FAILED: only the next start failed
    wait_for(server_of(api, model_id), "RUNNING")
    for forced in ("UNKNOWN", "FAILED", "STOPPED", "RUNNING"):
        assert api.ok("POST", local, {"status": forced})["status"] == forced
        assert api.ok("GET", url) == {"status": forced}
    assert_error(*api.post(local, {"status": "WHATEVER"}), 400, "status")


def test_server_start_while_training_or_failed(api: Api) -> None:
    model_id = api.automl_model()
    url = f"/api/v1/models/{model_id}/automl_model_server"
    assert_error(*api.post(url), 409, "status")
    api.ok("POST", f"/local/models/{model_id}/training", {"status": "FAILED", "error": "x"})
    api.ok("POST", url)
    wait_for(server_of(api, model_id), "FAILED")
