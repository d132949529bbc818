"""Edges found by fuzzing the OpenAPI document: huge ids, the Allow header, the documented codes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import requests

from .conftest import assert_error, uniq

if TYPE_CHECKING:
    from .conftest import Api

HUGE = 2**70


def test_ids_beyond_the_integer_range_are_bad_input_not_a_crash(api: Api) -> None:
    status, body = api.get(f"/api/v1/models/{HUGE}")
    assert_error(status, body, 400, "model_id")
    status, body = api.delete(f"/api/v1/datasets/{HUGE}")
    assert_error(status, body, 400, "dataset_id")
    status, body = api.get("/api/v1/models", params={"page": HUGE})
    assert_error(status, body, 400, "page")
    status, body = api.post(
        "/api/v1/bucket_migrations",
        json={"model_id": HUGE, "migration_request": {"prediction_type": "empty"}},
    )
    assert_error(status, body, 400, "model_id")
    status, body = api.post(
        "/api/v1/models",
        json={"model_type": "automl", "name": uniq("m"), "version": "v1", "dataset_id": str(HUGE)},
    )
    assert_error(status, body, 400, "dataset_id")


def test_unknown_ids_in_range_stay_404(api: Api) -> None:
    status, body = api.get("/api/v1/models/987654321")
    assert_error(status, body, 404)
    status, body = api.get("/api/v1/models/-5")
    assert_error(status, body, 404)


def test_405_names_every_method_of_the_path(api: Api) -> None:
    status, body = api.call("PATCH", "/api/v1/models")
    assert_error(status, body, 405)
    r = requests.options(api.server.url + "/api/v1/models/1", auth=api.server.auth, timeout=10)
    assert r.status_code == 405
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "PUT", "DELETE"}
    r = requests.patch(api.server.url + "/api/v1/models", auth=api.server.auth, timeout=10)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_openapi_documents_400_not_422(api: Api) -> None:
    doc = requests.get(api.server.url + "/openapi.json", timeout=10).json()
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    assert operations
    assert all("422" not in op["responses"] for op in operations)
    create = doc["paths"]["/api/v1/models"]["post"]
    assert "400" in create["responses"]
