"""The MLS protocol (docs/mls-api.md) served by the local server: happy paths, 400/401/404/409."""

from __future__ import annotations

import base64

import pytest
import requests

from airflow_provider_mls.constants import MODEL_LIBS

from .conftest import Api, assert_error, put_body, uniq

pytestmark = pytest.mark.timeout(60)

MODEL_FIELDS = {
    "id", "name", "version", "description", "creator", "model_type", "status", "table", "model_data",
    "model_meta", "model_lib", "features", "components", "is_enabled", "created_at", "updated_at",
}  # fmt: skip


# ---------------------------------------------------------------------------- auth
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/models"),
        ("GET", "/api/v1/models/1"),
        ("GET", "/api/v1/datasets"),
        ("GET", "/api/v1/dynamodb/tables/t/is_active"),
        ("GET", "/api/v1/does-not-exist"),
        ("GET", "/local/faults"),
        ("PUT", "/local/tables/t"),
    ],
)
def test_auth_required(api: Api, method: str, path: str) -> None:
    url = api.server.url + path
    for auth in (None, (api.server.username, "wrong"), ("nobody", api.server.password)):
        r = requests.request(method, url, auth=auth, json={}, timeout=10)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        body = r.json()
        assert body["code"] == 401 and body["error"] and body["results"] is None
    r = requests.get(url, headers={"Authorization": "Basic !!notbase64"}, timeout=10)
    assert r.status_code == 401
    token = base64.b64encode(b"no-colon").decode()
    r = requests.get(url, headers={"Authorization": f"Basic {token}"}, timeout=10)
    assert r.status_code == 401


def test_health_and_openapi_are_open(api: Api) -> None:
    r = requests.get(api.server.url + "/local/health", timeout=10)
    assert r.json() == {"code": 200, "error": None, "results": {"status": "ok"}}
    assert requests.get(api.server.url + "/openapi.json", timeout=10).status_code == 200


def test_openapi_lists_every_route(api: Api) -> None:
    doc = requests.get(api.server.url + "/openapi.json", timeout=10).json()
    paths = doc["paths"]
    expected = {
        "/api/v1/models": {"get", "post"},
        "/api/v1/models/{model_id}": {"get", "put", "delete"},
        "/api/v1/models/{model_id}/automl_model_server": {"get", "post", "delete"},
        "/api/v1/models/{model_id}/automl_online_prediction": {"get", "post"},
        "/api/v1/dynamodb/tables/{table}/is_active": {"get"},
        "/api/v1/dynamodb/tables/{table}/is_loading": {"get"},
        "/api/v1/dynamodb/tables/{table}": {"delete"},
        "/api/v1/model_registry/artifacts/info": {"get"},
        "/api/v1/components": {"get", "post"},
        "/api/v1/components/{component_id}": {"get", "put", "delete"},
        "/api/v1/datasets": {"get", "post"},
        "/api/v1/datasets/{dataset_id}": {"delete"},
        "/api/v1/experiments": {"get", "post"},
        "/api/v1/experiments/{experiment_id}": {"put", "delete"},
        "/api/v1/experiments/{experiment_id}/buckets": {"get", "post"},
        "/api/v1/experiments/{experiment_id}/buckets/{bucket_id}": {"put", "delete"},
        "/api/v1/experiments/{experiment_id}/bucket_ratio": {"put"},
        "/api/v1/bucket_migrations": {"post"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    op = paths["/api/v1/models"]["post"]
    assert {"400", "401", "409"} <= set(op["responses"])
    assert "HTTPBasic" in doc["components"]["securitySchemes"]
    assert "Envelope" in str(op["responses"]["200"])


# ---------------------------------------------------------------------------- paths
def test_paths_are_exactly_the_reference_clients(api: Api) -> None:
    """The reference client sends ``/api/v1/datasets`` (its ``api/v1/datasets`` gets the slash):
    a duplicate or trailing slash is never sent by it, and the real service is not promised to
    collapse or ignore one, so the local server refuses them (404 saying why)."""
    ds = api.dataset()
    results = api.ok("GET", "/api/v1/datasets", params={"id": str(ds["id"])})
    assert [d["id"] for d in results] == [ds["id"]]
    for path, why in (
        ("/api/v1/datasets/", "trailing slash"),
        ("//api/v1/datasets", "duplicate slash"),
        ("/api//v1/datasets", "duplicate slash"),
        (f"/api/v1/models/{ds['id']}/", "trailing slash"),
    ):
        status, body = api.get(path)
        assert_error(status, body, 404)
        assert why in body["error"] and path in body["error"], body


def test_unknown_route_and_method_use_envelope(api: Api) -> None:
    assert_error(*api.get("/api/v1/nope"), 404)
    assert_error(*api.call("PATCH", "/api/v1/models"), 405)
    status, body = api.get("/nothing-here")
    assert_error(status, body, 404)


def test_body_must_be_a_json_object(api: Api) -> None:
    for payload in ([1, 2], "text", 5):
        assert_error(*api.post("/api/v1/models", payload), 400, "body")
    status, body = api.call(
        "POST", "/api/v1/models", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(status, body, 400, "body")
    # a JSON body without content type is accepted
    name = uniq("noct")
    status, body = api.call(
        "POST", "/api/v1/models", data=f'{{"model_type": "manual", "name": "{name}", "version": "1"}}'
    )
    assert status == 200, body


# ---------------------------------------------------------------------------- models
def test_manual_model_lifecycle(api: Api) -> None:
    comp = api.ok("POST", "/api/v1/components", {"name": uniq("comp"), "info": "v1", "is_latest": True})
    name = uniq("model")
    body = {
        "model_type": "manual",
        "name": name,
        "version": "v1",
        "description": "A Test Model",
        "creator": "alice",
        "model_lib": "xgboost",
        "model_data": f"/models/{name}/v1/model.joblib",
        "model_meta": {"name": name, "features": ["a", "b"]},
        "features": "a,b",
        "table": "tbl_" + name,
        "components": [comp["name"]],
    }
    model_id = api.ok("POST", "/api/v1/models", body)["id"]
    model = api.ok("GET", f"/api/v1/models/{model_id}")
    assert set(model) == MODEL_FIELDS
    assert model["status"] == "NOT_IN_USE" and model["is_enabled"] is True
    assert model["model_meta"] == body["model_meta"] and model["features"] == "a,b"
    assert model["components"] == [comp]
    assert model["created_at"].endswith("+00:00")
    for key in ("name", "version", "description", "creator", "model_lib", "model_data", "table"):
        assert model[key] == body[key], key

    # list filters
    assert [m["id"] for m in api.ok("GET", "/api/v1/models", params={"name": name})] == [model_id]
    assert [m["id"] for m in api.ok("GET", "/api/v1/models", params={"id": str(model_id)})] == [model_id]
    assert api.ok("GET", "/api/v1/models", params={"name": name, "version": "v2"}) == []
    assert [
        m["id"] for m in api.ok("GET", "/api/v1/models", params={"query": "a TEST mod", "name": name})
    ] == [model_id]
    assert [m["id"] for m in api.ok("GET", "/api/v1/models", params={"query": name.upper()[3:]})] == [
        model_id
    ]
    assert api.ok("GET", "/api/v1/models", params={"name": name, "model_type": "automl"}) == []

    # PUT the whole model (as the reference client builds it from a read), meta replaced
    sent = {**put_body(model), "model_meta": {}, "description": "changed"}
    assert api.ok("PUT", f"/api/v1/models/{model_id}", sent) == {"id": model_id}
    after = api.ok("GET", f"/api/v1/models/{model_id}")
    assert after["model_meta"] == {} and after["description"] == "changed" and after["components"] == [comp]
    # what the reference client never sends is refused, naming the key: the model as read (its
    # id, status, ...), components as objects
    status, resp = api.put(f"/api/v1/models/{model_id}", {**after, "model_type": "manual"})
    assert_error(status, resp, 400, "id")
    assert "status: unknown key" in resp["error"]
    assert_error(*api.put(f"/api/v1/models/{model_id}", {**sent, "components": [comp]}), 400, "components")
    assert api.ok("GET", f"/api/v1/models/{model_id}") == after

    assert api.ok("DELETE", f"/api/v1/models/{model_id}") == {"id": model_id}
    assert_error(*api.get(f"/api/v1/models/{model_id}"), 404)
    assert_error(*api.delete(f"/api/v1/models/{model_id}"), 404)
    assert_error(
        *api.put(f"/api/v1/models/{model_id}", {"model_type": "manual", "name": "x", "version": "y"}), 404
    )


def test_model_pagination(api: Api) -> None:
    prefix = uniq("page")
    ids = [api.manual_model(name=f"{prefix}-{i}") for i in range(7)]
    page1 = api.ok("GET", "/api/v1/models", params={"query": prefix})
    page2 = api.ok("GET", "/api/v1/models", params={"query": prefix, "page": "2"})
    page3 = api.ok("GET", "/api/v1/models", params={"query": prefix, "page": 3})
    assert [m["id"] for m in page1] == ids[:5]  # page size 5, ordered by id
    assert [m["id"] for m in page2] == ids[5:]
    assert page3 == []
    assert_error(*api.get("/api/v1/models", params={"page": 0}), 400, "page")
    assert_error(*api.get("/api/v1/models", params={"page": "x"}), 400, "page")
    assert_error(*api.get("/api/v1/models", params={"id": "abc"}), 400, "id")
    assert_error(*api.get("/api/v1/models", params={"model_type": "other"}), 400, "model_type")


def test_component_resolution_prefers_latest(api: Api) -> None:
    name = uniq("comp")
    old = api.ok("POST", "/api/v1/components", {"name": name, "info": "1", "is_latest": True})
    new = api.ok("POST", "/api/v1/components", {"name": name, "info": "2", "is_latest": False})
    model = api.ok("GET", f"/api/v1/models/{api.manual_model(components=[name])}")
    assert [c["id"] for c in model["components"]] == [old["id"]]
    api.ok("PUT", f"/api/v1/components/{new['id']}", {"name": name, "info": "2", "is_latest": True})
    assert api.ok("GET", f"/api/v1/components/{old['id']}")["is_latest"] is False
    model = api.ok("GET", f"/api/v1/models/{api.manual_model(components=[name])}")
    assert [c["id"] for c in model["components"]] == [new["id"]]


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"model_type": "other"}, "model_type"),
        ({"model_type": None}, "model_type"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": 5}, "name"),
        ({"version": ""}, "version"),
        ({"version": None}, "version"),
        ({"model_lib": "torch"}, "model_lib"),
        ({"model_meta": [1]}, "model_meta"),
        ({"model_meta": "x"}, "model_meta"),
        ({"features": 3}, "features"),
        ({"table": 3}, "table"),
        ({"components": ["no-such-component-xyz"]}, "components"),
        ({"components": "abc"}, "components"),
    ],
)
def test_manual_model_bad_input(api: Api, patch: dict[str, object], field: str) -> None:
    body = {"model_type": "manual", "name": uniq("bad"), "version": "v1", **patch}
    status, resp = api.post("/api/v1/models", body)
    assert_error(status, resp, 400, field)
    if field == "model_lib":
        assert all(lib in resp["error"] for lib in MODEL_LIBS)


def test_null_in_a_model_body_is_refused_naming_the_key(api: Api) -> None:
    """The reference client leaves a key out rather than send null: the service is not promised
    to take a null (a string field is cleared with "")."""
    model = api.ok("GET", f"/api/v1/models/{api.manual_model()}")
    for key in ("description", "creator", "model_lib", "model_data", "features", "table", "model_meta"):
        status, resp = api.post(
            "/api/v1/models", {"model_type": "manual", "name": uniq("n"), "version": "1", key: None}
        )
        assert_error(status, resp, 400, key)
        assert "null is not accepted" in resp["error"]
        assert_error(*api.put(f"/api/v1/models/{model['id']}", {**put_body(model), key: None}), 400, key)
    cleared = {**put_body(model), "description": "", "table": "", "features": ""}
    api.ok("PUT", f"/api/v1/models/{model['id']}", cleared)
    after = api.ok("GET", f"/api/v1/models/{model['id']}")
    assert (after["description"], after["table"], after["features"]) == ("", "", "")


def test_duplicate_name_version_409(api: Api) -> None:
    name = uniq("dup")
    first = api.manual_model(name=name, version="1")
    assert_error(*api.post("/api/v1/models", {"model_type": "manual", "name": name, "version": "1"}), 409)
    ds = api.dataset()
    body = {"model_type": "automl", "name": name, "version": "1", "description": "", "dataset_id": ds["id"]}
    assert_error(*api.post("/api/v1/models", body), 409)
    second = api.manual_model(name=name, version="2")
    # renaming onto an existing pair through PUT
    status, resp = api.put(f"/api/v1/models/{second}", {"model_type": "manual", "name": name, "version": "1"})
    assert_error(status, resp, 409)
    assert api.ok("GET", f"/api/v1/models/{second}")["version"] == "2"
    assert api.ok("GET", f"/api/v1/models/{first}")["version"] == "1"


def test_put_rules(api: Api) -> None:
    automl_id = api.automl_model()
    body = {"model_type": "manual", "name": uniq("x"), "version": "1"}
    assert_error(*api.put(f"/api/v1/models/{automl_id}", body), 400, "model_type")
    manual_id = api.manual_model()
    assert_error(*api.put(f"/api/v1/models/{manual_id}", {**body, "model_type": "automl"}), 400, "model_type")
    assert_error(*api.put(f"/api/v1/models/{manual_id}", {**body, "model_lib": "nope"}), 400, "model_lib")
    assert_error(*api.put(f"/api/v1/models/{manual_id}", {**body, "name": ""}), 400, "name")


def test_automl_create_rules(api: Api) -> None:
    base = {"model_type": "automl", "name": uniq("a"), "version": "1", "description": "d"}
    assert_error(*api.post("/api/v1/models", base), 400, "dataset_id")
    assert_error(*api.post("/api/v1/models", {**base, "dataset_id": 987654}), 400, "dataset_id")
    assert_error(*api.post("/api/v1/models", {**base, "dataset_id": "x"}), 400, "dataset_id")
    ds = api.dataset()
    model = api.ok(
        "GET", f"/api/v1/models/{api.ok('POST', '/api/v1/models', {**base, 'dataset_id': ds['id']})['id']}"
    )
    assert set(model) == MODEL_FIELDS | {"dataset_id", "dataset_name", "automl_model_info"}
    assert model["dataset_id"] == ds["id"] and model["dataset_name"] == ds["name"]
    assert model["model_type"] == "automl" and isinstance(model["automl_model_info"], dict)


def test_manual_model_has_no_automl_endpoints(api: Api) -> None:
    mid = api.manual_model()
    for method in ("GET", "POST", "DELETE"):
        assert_error(*api.call(method, f"/api/v1/models/{mid}/automl_model_server"), 400, "model_type")
    assert_error(*api.get(f"/api/v1/models/{mid}/automl_online_prediction"), 400, "model_type")
    assert_error(*api.get("/api/v1/models/999999/automl_model_server"), 404)


def test_handler(api: Api) -> None:
    mid = api.automl_model()
    assert api.ok("GET", f"/api/v1/models/{mid}/automl_online_prediction") == {"handler": None}
    source = "def handle(x):\n    return x\n"
    api.ok("POST", f"/api/v1/models/{mid}/automl_online_prediction", {"handler": source})
    assert api.ok("GET", f"/api/v1/models/{mid}/automl_online_prediction") == {"handler": source}
    for bad in ({"handler": "def (:"}, {"handler": 3}, {}):
        assert_error(*api.post(f"/api/v1/models/{mid}/automl_online_prediction", bad), 400, "handler")
    assert api.ok("GET", f"/api/v1/models/{mid}/automl_online_prediction") == {"handler": source}


# ---------------------------------------------------------------------------- readiness
def test_table_readiness(api: Api) -> None:
    table = uniq("tbl")
    base = f"/api/v1/dynamodb/tables/{table}"
    assert api.ok("GET", base + "/is_active") == {"is_active": False}
    assert api.ok("GET", base + "/is_loading") == {"is_loading": False}
    assert_error(*api.delete(base), 404)
    api.ok("PUT", f"/local/tables/{table}", {"is_active": True, "is_loading": True})
    assert api.ok("GET", base + "/is_active") == {"is_active": True}
    assert api.ok("GET", base + "/is_loading") == {"is_loading": True}
    api.ok("PUT", f"/local/tables/{table}", {"is_loading": False})
    assert api.ok("GET", base + "/is_active") == {"is_active": True}
    assert api.ok("GET", base + "/is_loading") == {"is_loading": False}
    api.ok("DELETE", base)
    assert api.ok("GET", base + "/is_active") == {"is_active": False}
    # Not active means the DynamoDB table does not exist: /local drops it, and it cannot be loading.
    api.ok("PUT", f"/local/tables/{table}", {})
    assert api.ok("PUT", f"/local/tables/{table}", {"is_active": False}) == {
        "table": table,
        "is_active": False,
        "is_loading": False,
    }
    assert_error(
        *api.call("PUT", f"/local/tables/{table}", json={"is_active": False, "is_loading": True}),
        400,
        "is_loading",
    )
    api.ok("PUT", f"/local/tables/{table}", {})
    api.ok("DELETE", f"/local/tables/{table}")
    assert_error(*api.delete(f"/local/tables/{table}"), 404)
    # A name DynamoDB would refuse is bad input (rules.check_table), never "not ready yet".
    for bad in ("a b", "ab", "a..b"):
        for method, path in (("GET", "/is_active"), ("GET", "/is_loading"), ("DELETE", "")):
            assert_error(*api.call(method, f"/api/v1/dynamodb/tables/{bad}{path}"), 400, "table")
        assert_error(*api.put(f"/local/tables/{bad}", {}), 400, "table")


def test_artifact_readiness(api: Api) -> None:
    name = uniq("art")
    url = "/api/v1/model_registry/artifacts/info"
    params = {"model_name": name, "model_version": "v1"}
    assert api.ok("GET", url, params=params) == {"info": None}
    info = api.ok("PUT", f"/local/artifacts/{name}/v1")["info"]
    assert info["path"] == f"/models/{name}/v1/model.joblib"
    assert api.ok("GET", url, params=params) == {"info": info}
    api.ok("PUT", f"/local/artifacts/{name}/v1", {"info": {"size": 42}})
    assert api.ok("GET", url, params=params) == {"info": {"size": 42}}
    assert api.ok("GET", url, params={"model_name": name, "model_version": "v2"}) == {"info": None}
    api.ok("DELETE", f"/local/artifacts/{name}/v1")
    assert api.ok("GET", url, params=params) == {"info": None}
    assert_error(*api.get(url, params={"model_name": name}), 400, "model_version")


# ---------------------------------------------------------------------------- components
def test_components_crud(api: Api) -> None:
    name = uniq("comp")
    comp = api.ok("POST", "/api/v1/components", {"name": name, "info": "i1", "is_latest": True})
    assert set(comp) == {"id", "name", "info", "is_latest", "user", "created_at", "updated_at"}
    assert comp["user"] == api.server.username and comp["is_latest"] is True
    assert api.ok("GET", f"/api/v1/components/{comp['id']}") == comp
    for params in (
        {"name": name},
        {"id": comp["id"]},
        {"name": name, "info": "i1"},
        {"name": name, "is_latest": True},
    ):
        assert [c["id"] for c in api.ok("GET", "/api/v1/components", params=params)] == [comp["id"]], params
    assert api.ok("GET", "/api/v1/components", params={"name": name, "is_latest": False}) == []
    # booleans as requests (the reference client) writes them; other spellings are refused
    for spelling in ("true", "false", "1", "0", "yes"):
        assert_error(
            *api.get("/api/v1/components", params={"name": name, "is_latest": spelling}), 400, "is_latest"
        )
    updated = api.ok(
        "PUT", f"/api/v1/components/{comp['id']}", {"name": name, "info": "i2", "is_latest": False}
    )
    assert updated["info"] == "i2" and updated["is_latest"] is False
    assert_error(*api.post("/api/v1/components", {"name": "", "info": "x"}), 400, "name")
    assert_error(*api.post("/api/v1/components", {"info": "x"}), 400, "name")
    assert_error(*api.get("/api/v1/components", params={"is_latest": "maybe"}), 400, "is_latest")
    api.ok("DELETE", f"/api/v1/components/{comp['id']}")
    assert_error(*api.get(f"/api/v1/components/{comp['id']}"), 404)
    assert_error(*api.delete(f"/api/v1/components/{comp['id']}"), 404)
    assert_error(*api.put(f"/api/v1/components/{comp['id']}", {"name": name}), 404)


# ---------------------------------------------------------------------------- datasets
def test_datasets(api: Api) -> None:
    ds = api.dataset()
    assert set(ds) == {"id", "name", "status", "data_type", "setup_conf", "created_at", "updated_at"}
    assert ds["status"] == "READY" and ds["data_type"] == "classification"
    assert ds["setup_conf"] == {
        "base_feature_conf": {"features": ["age"]},
        "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"},
    }
    assert api.ok("GET", "/api/v1/datasets", params={"name": ds["name"]}) == [ds]
    assert api.ok("GET", "/api/v1/datasets", params={"id": ds["id"]}) == [ds]
    failing = api.dataset(error="out of memory")
    assert failing["setup_conf"]["error"] == "out of memory"
    api.ok("DELETE", f"/api/v1/datasets/{ds['id']}")
    assert api.ok("GET", "/api/v1/datasets", params={"id": ds["id"]}) == []
    assert_error(*api.delete(f"/api/v1/datasets/{ds['id']}"), 404)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"type": "other"}, "type"),
        ({"name": ""}, "name"),
        ({"base_feature_conf": "x"}, "base_feature_conf"),
        ({"label_data_conf": {"source_type": "s3"}}, "label_data_conf.source_path"),
        ({"label_data_conf": 3}, "label_data_conf"),
    ],
)
def test_dataset_bad_input(api: Api, patch: dict[str, object], field: str) -> None:
    body = {
        "name": uniq("ds"),
        "type": "score",
        "base_feature_conf": {},
        "label_data_conf": {"source_type": "s3", "source_path": "p"},
        **patch,
    }
    assert_error(*api.post("/api/v1/datasets", body), 400, field)


# ---------------------------------------------------------------------------- experiments & buckets
def test_experiments_crud(api: Api) -> None:
    exp = api.experiment()
    assert set(exp) == {"id", "name", "description", "bucketing_seed", "user", "channels", "model_filter",
                        "created_at", "updated_at"}  # fmt: skip
    assert exp["channels"] == [] and exp["model_filter"] is None and exp["user"] == api.server.username
    assert api.ok("GET", "/api/v1/experiments", params={"id": exp["id"]}) == [exp]
    assert api.ok("GET", "/api/v1/experiments", params={"name": exp["name"]}) == [exp]
    changed = api.ok("PUT", f"/api/v1/experiments/{exp['id']}",
                     {"name": exp["name"], "bucketing_seed": "s2", "model_filter_id": 7})  # fmt: skip
    assert changed["bucketing_seed"] == "s2" and changed["model_filter"] == {"id": 7}
    assert_error(*api.post("/api/v1/experiments", {"name": "", "bucketing_seed": "s"}), 400, "name")
    assert_error(*api.post("/api/v1/experiments", {"name": "x"}), 400, "bucketing_seed")
    api.ok("DELETE", f"/api/v1/experiments/{exp['id']}")
    assert_error(*api.delete(f"/api/v1/experiments/{exp['id']}"), 404)
    assert_error(*api.get(f"/api/v1/experiments/{exp['id']}/buckets"), 404)


def test_buckets_and_ratio(api: Api) -> None:
    exp = api.experiment()
    online = api.manual_model()
    base = f"/api/v1/experiments/{exp['id']}/buckets"
    b1 = api.ok("POST", base, {"name": "b1", "prediction_type": "online", "online_model_id": online})
    assert set(b1) >= {"id", "name", "description", "bucket_range", "prediction", "created_at", "updated_at"}
    assert b1["prediction"]["request"] == {"type": "online", "online_model_id": online}
    assert b1["prediction"]["ml_model"] == online and b1["bucket_range"] is None
    assert api.ok("GET", f"/api/v1/models/{online}")["status"] == "IN_USE"
    b2 = api.ok("POST", base, {"name": "b2", "prediction_type": "static", "static_value": {"items": [1]}})
    assert b2["prediction"] == {"id": b2["prediction"]["id"], "request": {"type": "static", "static_value": {"items": [1]}},
                                "ml_model": None}  # fmt: skip
    b3 = api.ok("POST", base, {"name": "b3", "prediction_type": "empty", "description": "control"})
    assert b3["prediction"]["request"] == {"type": "empty"}
    assert [b["id"] for b in api.ok("GET", base)] == [b1["id"], b2["id"], b3["id"]]
    assert [b["id"] for b in api.ok("GET", base, params={"name": "b2"})] == [b2["id"]]
    assert [b["id"] for b in api.ok("GET", base, params={"id": b3["id"]})] == [b3["id"]]

    buckets = api.ok("PUT", f"/api/v1/experiments/{exp['id']}/bucket_ratio",
                     {"bucket_ratio": {str(b1["id"]): 30, str(b2["id"]): 70}})  # fmt: skip
    by_id = {b["id"]: b for b in buckets}
    assert by_id[b1["id"]]["ratio"] == 30 and by_id[b1["id"]]["bucket_range"] == [0, 29]
    assert by_id[b2["id"]]["ratio"] == 70 and by_id[b2["id"]]["bucket_range"] == [30, 99]
    assert by_id[b3["id"]]["bucket_range"] is None
    ratio_url = f"/api/v1/experiments/{exp['id']}/bucket_ratio"
    assert_error(*api.put(ratio_url, {"bucket_ratio": {str(b1["id"]): 50}}), 400, "bucket_ratio")
    assert_error(*api.put(ratio_url, {"bucket_ratio": {"999999": 100}}), 400, "bucket_ratio")
    assert_error(*api.put(ratio_url, {}), 400, "bucket_ratio")

    # PUT a bucket: switch to batch
    batch = api.manual_model(table=uniq("t"))
    b1b = api.ok(
        "PUT", f"{base}/{b1['id']}", {"name": "b1", "prediction_type": "batch", "batch_model_id": batch}
    )
    assert b1b["prediction"]["ml_model"] == batch and b1b["ratio"] == 30
    assert api.ok("GET", f"/api/v1/models/{online}")["status"] == "NOT_IN_USE"

    # deleting a served model is refused
    assert_error(*api.delete(f"/api/v1/models/{batch}"), 409)
    api.ok("DELETE", f"{base}/{b1['id']}")
    assert_error(*api.delete(f"{base}/{b1['id']}"), 404)
    api.ok("DELETE", f"/api/v1/models/{batch}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "b", "prediction_type": "nope"}, "prediction_type"),
        ({"name": "b"}, "prediction_type"),
        ({"name": "b", "prediction_type": "online"}, "online_model_id"),
        ({"name": "b", "prediction_type": "online", "batch_model_id": 1}, "online_model_id"),
        ({"name": "b", "prediction_type": "batch", "batch_model_id": 999999}, "batch_model_id"),
        ({"name": "b", "prediction_type": "automl", "automl_model_id": 999999}, "automl_model_id"),
        ({"name": "b", "prediction_type": "static"}, "static_value"),
        ({"name": "", "prediction_type": "empty"}, "name"),
    ],
)
def test_bucket_bad_input(api: Api, body: dict[str, object], field: str) -> None:
    exp = api.experiment()
    assert_error(*api.post(f"/api/v1/experiments/{exp['id']}/buckets", body), 400, field)


def test_bucket_model_type_must_match(api: Api) -> None:
    exp = api.experiment()
    manual = api.manual_model()
    body = {"name": "b", "prediction_type": "automl", "automl_model_id": manual}
    assert_error(*api.post(f"/api/v1/experiments/{exp['id']}/buckets", body), 400, "automl_model_id")
    assert_error(
        *api.post("/api/v1/experiments/999999/buckets", {"name": "b", "prediction_type": "empty"}), 404
    )


def test_bucket_migration(api: Api) -> None:
    prev, nxt, other = api.automl_model(), api.automl_model(), api.automl_model()
    e1, e2 = api.experiment(), api.experiment()
    moved_ids = []
    for exp in (e1, e2):
        b = api.ok("POST", f"/api/v1/experiments/{exp['id']}/buckets",
                   {"name": "main", "prediction_type": "automl", "automl_model_id": prev})  # fmt: skip
        moved_ids.append(b["id"])
    untouched = api.ok("POST", f"/api/v1/experiments/{e1['id']}/buckets",
                       {"name": "other", "prediction_type": "automl", "automl_model_id": other})  # fmt: skip
    body = {"model_id": prev, "migration_request": {"prediction_type": "automl", "automl_model_id": nxt}}
    moved = api.ok("POST", "/api/v1/bucket_migrations", body)
    assert sorted(b["id"] for b in moved) == sorted(moved_ids)
    for b in moved:
        assert b["prediction"]["ml_model"] == nxt
        assert b["prediction"]["request"] == {"type": "automl", "automl_model_id": nxt}
    listed = {b["id"]: b for b in api.ok("GET", f"/api/v1/experiments/{e1['id']}/buckets")}
    assert listed[moved_ids[0]]["prediction"]["ml_model"] == nxt
    assert listed[untouched["id"]]["prediction"]["ml_model"] == other
    # nothing serves prev any more
    assert api.ok("POST", "/api/v1/bucket_migrations", body) == []
    # to a static value
    static = {"model_id": nxt, "migration_request": {"prediction_type": "static", "static_value": {"x": 1}}}
    moved = api.ok("POST", "/api/v1/bucket_migrations", static)
    assert {b["prediction"]["ml_model"] for b in moved} == {None} and len(moved) == 2

    assert_error(*api.post("/api/v1/bucket_migrations", {**body, "model_id": 999999}), 404, "model_id")
    bad_next = {
        "model_id": prev,
        "migration_request": {"prediction_type": "automl", "automl_model_id": 999999},
    }
    status, resp = api.post("/api/v1/bucket_migrations", bad_next)
    assert_error(status, resp, 400, "automl_model_id")
    bad_type = {"model_id": prev, "migration_request": {"prediction_type": "xx"}}
    assert_error(*api.post("/api/v1/bucket_migrations", bad_type), 400, "prediction_type")
    assert_error(*api.post("/api/v1/bucket_migrations", {"migration_request": {}}), 400, "model_id")
