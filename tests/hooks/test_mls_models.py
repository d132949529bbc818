"""Every MLSHook method against the real local MLS server, with request budgets counted."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import MLSConflictError, MLSNotFoundError, MLSValidationError
from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from tests.hooks.conftest import Admin, RequestLog

META = {"name": "m", "version": "v1", "model_lib": "lightgbm", "features": ["age", "svc"], "nested": {"a": 1}}


def make_manual(hook: MLSHook, name: str, version: str = "v1", **kwargs: Any) -> dict[str, Any]:
    return hook.create_manual_model(name, version, **kwargs)


def test_create_manual_model_full(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    admin.component(f"c1-{unique}")
    comp2 = admin.component(f"c2-{unique}")
    counter.reset()
    meta = copy.deepcopy(META)
    model = hook.create_manual_model(
        f"m-{unique}",
        "v1",
        description="d",
        creator="me",
        model_lib="lightgbm",
        model_data=f"/models/m-{unique}/v1/model.joblib",
        model_meta=meta,
        features=["age", "svc"],
        table=f"t_{unique}",
        components=[f"c1-{unique}", comp2],
    )
    # The look-up (absent: the server's Date then marks when the create began), POST, GET by id.
    assert counter.calls == [
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/models"),
        ("GET", f"/api/v1/models/{model['id']}"),
    ]
    assert model["model_type"] == "manual"
    assert (model["name"], model["version"], model["creator"], model["table"]) == (
        f"m-{unique}",
        "v1",
        "me",
        f"t_{unique}",
    )
    assert model["features"] == "age,svc"
    assert model["model_meta"] == META
    assert [c["name"] for c in model["components"]] == [f"c1-{unique}", f"c2-{unique}"]
    assert meta == META
    assert hook.create_model_deployment.__doc__ == hook.create_manual_model.__doc__


def test_get_manual_model_budget(hook: MLSHook, counter: RequestLog, unique: str) -> None:
    created = make_manual(hook, f"g-{unique}")
    make_manual(hook, f"g-{unique}", "v2")
    counter.reset()
    assert hook.get_manual_model(id=created["id"]) == created
    assert len(counter) == 1
    counter.reset()
    assert hook.get_model_deployment(name=f"g-{unique}", version="v1")["id"] == created["id"]
    assert len(counter) <= 2
    with pytest.raises(MLSNotFoundError, match="automl"):
        hook.get_automl_model(id=created["id"])
    with pytest.raises(MLSNotFoundError):
        hook.get_manual_model(name=f"g-{unique}", version="v9")
    with pytest.raises(MLSNotFoundError) as err:
        hook.get_manual_model(id=987654321)
    assert err.value.code == 404 and err.value.status == 404


def test_list_models(hook: MLSHook, unique: str) -> None:
    a = make_manual(hook, f"l-{unique}")
    b = make_manual(hook, f"l-{unique}", "v2")
    assert [m["id"] for m in hook.list_manual_models(query=f"l-{unique}")] == [a["id"], b["id"]]
    assert [m["id"] for m in hook.list_model_deployments(name=f"l-{unique}", version="v2")] == [b["id"]]
    assert [m["id"] for m in hook.list_manual_models(id=a["id"])] == [a["id"]]
    assert hook.list_manual_models(query=f"l-{unique}", page=2) == []
    assert hook.list_automl_models(query=f"l-{unique}") == []


def test_iter_models_stops_on_empty_page(hook: MLSHook, counter: RequestLog, unique: str) -> None:
    ids = [make_manual(hook, f"p-{unique}", f"v{i}")["id"] for i in range(21)]  # page size 20
    counter.reset()
    assert [m["id"] for m in hook.iter_models("manual", query=f"p-{unique}")] == ids
    assert len(counter) == 3  # 20, 1, empty
    assert [m["id"] for m in hook.list_all_manual_models(query=f"p-{unique}")] == ids


def test_iter_models_stops_on_repeated_page(
    hook: MLSHook, counter: RequestLog, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    ids = [make_manual(hook, f"r-{unique}", f"v{i}")["id"] for i in range(3)]
    real = hook._request_once

    def ignore_page(method: str, path: str, **kwargs: Any) -> Any:
        params = {k: v for k, v in (kwargs.pop("params", None) or {}).items() if k != "page"}
        return real(method, path, params=params, **kwargs)

    monkeypatch.setattr(hook, "_request_once", ignore_page)
    counter.reset()
    assert [m["id"] for m in hook.iter_models("manual", query=f"r-{unique}")] == ids
    assert len(counter) == 2


def test_update_manual_model_keeps_and_clears(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    admin.component(f"uc-{unique}")
    model = make_manual(
        hook,
        f"u-{unique}",
        description="old",
        model_lib="sklearn",
        table=f"t_{unique}",
        model_meta=META,
        features="a,b",
        components=[f"uc-{unique}"],
    )
    counter.reset()
    updated = hook.update_manual_model(model, description="new", table="", features=["x", "y"])
    # Given the dict this hook's create returned (its own last write): PUT, verifying GET.
    assert [c[0] for c in counter.calls] == ["PUT", "GET"]
    assert updated["description"] == "new"
    assert updated["table"] == ""  # cleared with "", as the reference client clears it
    assert updated["features"] == "x,y"
    assert updated["model_lib"] == "sklearn" and updated["model_meta"] == META
    assert [c["name"] for c in updated["components"]] == [f"uc-{unique}"]
    counter.reset()
    renamed = hook.update_model_deployment(
        model["id"], name=f"u2-{unique}", version="v7", model_lib="xgboost"
    )
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]  # given an id: read first
    assert (renamed["name"], renamed["version"], renamed["model_lib"]) == (f"u2-{unique}", "v7", "xgboost")


def test_update_meta_merge_replace_remove(hook: MLSHook, counter: RequestLog, unique: str) -> None:
    model = make_manual(hook, f"meta-{unique}", model_meta=META)
    caller = {"model_lib": "xgboost", "nested": {"b": 2}}
    snapshot = copy.deepcopy(caller)
    held = copy.deepcopy(model)
    counter.reset()
    merged = hook.update_manual_model_meta(model, caller, partial_update=True)
    assert [c[0] for c in counter.calls] == ["PUT", "GET"]
    assert merged["model_meta"] == {**META, "model_lib": "xgboost", "nested": {"b": 2}}
    assert caller == snapshot and model == held
    removed = hook.update_model_deployment_meta(
        model["id"], {"extra": 1}, partial_update=True, remove_keys=["nested", "absent"]
    )
    assert "nested" not in removed["model_meta"] and removed["model_meta"]["extra"] == 1
    assert hook.update_manual_model_meta(model, caller)["model_meta"] == snapshot
    assert hook.update_manual_model_meta(model, {})["model_meta"] == {}


def test_update_components(hook: MLSHook, admin: Admin, unique: str) -> None:
    c1 = admin.component(f"k1-{unique}")
    admin.component(f"k2-{unique}")
    model = make_manual(hook, f"comp-{unique}")
    updated = hook.update_manual_model_components(model, [c1, f"k2-{unique}"])
    assert [c["name"] for c in updated["components"]] == [f"k1-{unique}", f"k2-{unique}"]
    assert hook.update_model_deployment_components(model["id"], [])["components"] == []


def test_delete_model_with_table(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    table = f"del_{unique}"
    admin.set_table(table, is_active=True, is_loading=False)
    model = make_manual(hook, f"d-{unique}", table=table)
    counter.reset()
    assert hook.delete_model(model, delete_table=True) == {
        "id": model["id"],
        "deleted": True,
        "table_dropped": True,
    }
    assert counter.calls == [
        ("DELETE", f"/api/v1/models/{model['id']}"),
        ("DELETE", f"/api/v1/dynamodb/tables/{table}"),
    ]
    assert hook.is_table_active(table) is False
    with pytest.raises(MLSNotFoundError):
        hook.get_manual_model(id=model["id"])
    # table already gone -> fine; an int id is read first to learn the table
    model = make_manual(hook, f"d2-{unique}", table=f"gone_{unique}")
    result = hook.delete_model_deployment(model["id"], delete_table=True)
    assert result == {"id": model["id"], "deleted": True, "table_dropped": False}
    assert hook.drop_table(f"gone_{unique}") is False


def test_refused_delete_leaves_the_table_alone(hook: MLSHook, admin: Admin, unique: str) -> None:
    """A model still serving a bucket can't be deleted; its table must not be dropped either."""
    table = f"served_{unique}"
    admin.set_table(table, is_active=True, is_loading=False)
    model = make_manual(hook, f"served-{unique}", table=table)
    experiment = hook.run(
        "POST", "/api/v1/experiments", json={"name": f"exp-{unique}", "bucketing_seed": "s"}
    )
    hook.run(
        "POST",
        f"/api/v1/experiments/{experiment['id']}/buckets",
        json={"name": "b", "prediction_type": "batch", "batch_model_id": model["id"]},
    )
    with pytest.raises(MLSConflictError):
        hook.delete_model(model, delete_table=True)
    assert hook.get_manual_model(id=model["id"])["table"] == table
    assert hook.is_batch_prediction_ready(model) is True


def test_delete_model_lost_response_is_idempotent(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = make_manual(hook, f"dl-{unique}")
    admin.add_fault("DELETE", f"/api/v1/models/{model['id']}", status=502, after=True)
    counter.reset()
    assert hook.delete_model(model["id"])["deleted"] is True
    assert len(counter) == 2
    with pytest.raises(MLSNotFoundError):
        hook.delete_model(model["id"])  # a first attempt's 404 is not hidden


def test_batch_prediction_ready(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    table = f"bt_{unique}"
    model = make_manual(hook, f"b-{unique}", table=table)
    counter.reset()
    assert hook.is_batch_prediction_ready(model) is False  # no table yet: not active
    assert len(counter) == 1  # not active: is_loading is not asked
    admin.set_table(table, is_active=True, is_loading=True)
    assert hook.is_table_active(table) is True and hook.is_table_loading(table) is True
    assert hook.is_batch_prediction_ready(model) is False
    admin.set_table(table, is_active=True, is_loading=False)
    counter.reset()
    assert hook.is_batch_prediction_ready(model) is True
    assert len(counter) == 2
    counter.reset()
    assert hook.is_batch_prediction_ready(model["id"]) is True
    assert len(counter) == 3  # the model (for its table), is_active, is_loading
    no_table = make_manual(hook, f"nb-{unique}")
    counter.reset()
    with pytest.raises(MLSValidationError) as err:
        hook.is_batch_prediction_ready(no_table)
    assert err.value.field == "table"
    assert len(counter) == 0


def test_online_prediction_ready(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    model = make_manual(hook, f"o-{unique}")
    counter.reset()
    assert hook.is_online_prediction_ready(model) is False
    assert len(counter) == 1
    info = {"model_lib": "lightgbm", "size": 3}
    admin.set_artifact(f"o-{unique}", "v1", info)
    assert hook.is_online_prediction_ready(model) is True
    counter.reset()
    assert hook.is_online_prediction_ready(model["id"]) is True
    assert len(counter) == 2  # the model (for name and version), the artifact
    assert hook.get_artifact_info(f"o-{unique}", "v1") == info


def test_automl_lifecycle(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    dataset = admin.create_dataset(f"ds-{unique}")
    assert hook.get_dataset(name=f"ds-{unique}")["id"] == dataset["id"]
    assert hook.get_dataset(id=dataset["id"])["name"] == f"ds-{unique}"
    assert any(d["id"] == dataset["id"] for d in hook.list_datasets())
    counter.reset()
    model = hook.create_automl_model(f"a-{unique}", "v1", "desc", dataset_name=f"ds-{unique}")
    assert len(counter) == 4  # dataset by name, look-up, POST, GET
    assert model["model_type"] == "automl" and model["dataset_id"] == dataset["id"]
    other = hook.create_automl_model(f"a-{unique}", "v2", "desc", dataset_id=dataset["id"])
    assert hook.get_automl_model(name=f"a-{unique}", version="v2")["id"] == other["id"]
    assert hook.get_automl_model(id=model["id"])["status"] in ("TRAINING", "DONE")
    assert [m["id"] for m in hook.list_automl_models(query=f"a-{unique}")] == [model["id"], other["id"]]
    time.sleep(1.1)
    assert hook.get_automl_model(id=model["id"])["status"] == "DONE"
    assert hook.get_automl_model_error(model) is None

    assert hook.get_automl_model_server_status(model) == "STOPPED"
    hook.start_automl_model_server(model)
    assert hook.get_automl_model_server_status(model["id"]) in ("STARTING", "RUNNING")
    time.sleep(0.6)
    assert hook.get_automl_model_server_status(model) == "RUNNING"
    hook.start_automl_model_server(model)  # a no-op when running
    hook.stop_automl_model_server(model)
    assert hook.get_automl_model_server_status(model) in ("STOPPING", "STOPPED")

    handler = "def handler(x):\n    return x\n"
    hook.update_automl_model_server_handler(model, handler)
    assert hook.get_automl_model_server_handler(model["id"]) == handler
    assert hook.get_automl_model_server_handler(other) is None

    admin.finish_training(other["id"], "FAILED", error="bad labels")
    assert hook.get_automl_model_error(other) == "bad labels"
    assert hook.get_automl_model(id=other["id"])["status"] == "FAILED"


def test_server_status_failed(hook: MLSHook, admin: Admin, unique: str) -> None:
    dataset = admin.create_dataset(f"dsf-{unique}")
    model = hook.create_automl_model(f"af-{unique}", "v1", "desc", dataset_id=dataset["id"])
    admin.force_server(model["id"], "FAILED")
    assert hook.get_automl_model_server_status(model) == "FAILED"


def test_unknown_server_status_is_unknown(hook: MLSHook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hook, "run", lambda *a, **k: {"status": "EXPLODED"})
    assert hook.get_automl_model_server_status(1) == "UNKNOWN"


def test_components_and_datasets_lookup(hook: MLSHook, admin: Admin, unique: str) -> None:
    old = admin.component(f"cx-{unique}", info="old", is_latest=False)
    new = admin.component(f"cx-{unique}", info="new", is_latest=True)
    assert hook.get_component(name=f"cx-{unique}")["id"] == new["id"]
    assert hook.get_component(id=old["id"])["info"] == "old"
    assert {c["id"] for c in hook.list_components(name=f"cx-{unique}")} == {old["id"], new["id"]}
    with pytest.raises(MLSNotFoundError, match="component"):
        hook.get_component(name=f"nope-{unique}")
    with pytest.raises(MLSNotFoundError, match="dataset"):
        hook.get_dataset(name=f"nope-{unique}")
    with pytest.raises(MLSNotFoundError):
        hook.get_component(id=987654321)


def test_migrate_buckets(hook: MLSHook, admin: Admin, unique: str) -> None:
    old = make_manual(hook, f"mg-{unique}")
    new = make_manual(hook, f"mg-{unique}", "v2")
    exp = admin.call("POST", "/api/v1/experiments", json={"name": f"e-{unique}", "bucketing_seed": "seed"})
    bucket = admin.call(
        "POST",
        f"/api/v1/experiments/{exp['id']}/buckets",
        json={"name": "b1", "prediction_type": "online", "online_model_id": old["id"]},
    )
    moved = hook.migrate_buckets(old, new)
    assert [b["id"] for b in moved] == [bucket["id"]]
    assert moved[0]["prediction"]["ml_model"] == new["id"]
    assert hook.migrate_buckets(old["id"], new["id"], prediction_type="online") == []
    moved = hook.migrate_buckets(new, prediction_type="static", static_value={"items": []})
    assert moved[0]["prediction"]["request"]["type"] == "static"


def test_run_low_level(hook: MLSHook, unique: str) -> None:
    model = make_manual(hook, f"run-{unique}")
    assert hook.run("GET", f"api/v1/models/{model['id']}")["name"] == f"run-{unique}"


def test_test_connection(hook: MLSHook, mls_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = hook.test_connection()
    assert ok is True and mls_server.url in message
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_BAD", f"mls://mls:wrong-password@127.0.0.1:{mls_server.port}?env=local"
    )
    ok, message = MLSHook("mls_bad", max_retries=0).test_connection()
    assert ok is False and "401" in message
