"""The manual model operators against the local MLS server: create, update, meta, components, delete."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls.checks import SUMMARY_FIELDS, summary
from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
)
from airflow_provider_mls.operators.mls import (
    CreateManualModelOperator,
    DeleteModelOperator,
    UpdateManualModelOperator,
    UpdateModelComponentsOperator,
    UpdateModelMetaOperator,
)

from ._support import record_requests, uniq, writes

if TYPE_CHECKING:
    from ._support import Mls

pytestmark = pytest.mark.timeout(60)

META = {"threshold": 0.5, "labels": ["a", "b"], "nested": {"k": 1}}


def names(model: dict) -> list[str]:
    return [c["name"] for c in model["components"]]


def fail_cause(exc_info: pytest.ExceptionInfo[AirflowFailException]) -> BaseException | None:
    return exc_info.value.__cause__


# ---- CreateManualModelOperator ----------------------------------------------------------------------


def test_create_stores_every_field(mls: Mls) -> None:
    name, c1, c2 = uniq("create"), uniq("comp"), uniq("comp")
    mls.component(c1)
    mls.component(c2)
    meta = copy.deepcopy(META)
    op = CreateManualModelOperator(
        task_id="create",
        name=name,
        version="v1",
        description="the model",
        creator="me",
        model_lib="lightgbm",
        model_data=f"/models/{name}/v1/model.joblib",
        model_meta=meta,
        features=["age", "svc"],
        table=f"t_{name}",
        components=[c1, c2],
    )
    returned = op.execute({})
    stored = mls.model(returned["id"])
    assert returned == summary(stored)  # a small XCom: the meta and components stay in MLS
    assert set(returned) <= set(SUMMARY_FIELDS)
    assert stored["model_type"] == "manual"
    assert {k: stored[k] for k in ("name", "version", "description", "creator", "model_lib")} == {
        "name": name,
        "version": "v1",
        "description": "the model",
        "creator": "me",
        "model_lib": "lightgbm",
    }
    assert stored["model_data"] == f"/models/{name}/v1/model.joblib"
    assert stored["model_meta"] == META and meta == META  # the caller's dict is not touched
    assert stored["features"] == "age,svc"
    assert stored["table"] == f"t_{name}"
    assert names(stored) == [c1, c2]


def test_create_minimal_and_features_as_string(mls: Mls) -> None:
    name = uniq("create-min")
    model = CreateManualModelOperator(task_id="t", name=name, version="v1", features="a,b").execute({})
    stored = mls.model(model["id"])
    assert (stored["name"], stored["features"], stored["components"], stored["model_meta"]) == (
        name,
        "a,b",
        [],
        {},
    )


def test_create_if_exists_fail(mls: Mls) -> None:
    name = uniq("dup")
    first = mls.manual(name, description="first")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", description="second")
    with pytest.raises(AirflowFailException, match="MLSConflictError") as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSConflictError)
    assert mls.model(first["id"]) == first
    assert len(mls.models(name)) == 1


def test_create_if_exists_skip_returns_existing_unchanged(mls: Mls) -> None:
    name = uniq("skip")
    first = mls.manual(name, description="first", model_lib="sklearn", model_meta={"a": 1})
    op = CreateManualModelOperator(
        task_id="t",
        name=name,
        version="v1",
        description="second",
        model_lib="xgboost",
        model_meta={"b": 2},
        if_exists="skip",
    )
    calls = record_requests(op)
    assert op.execute({}) == summary(first)
    assert mls.model(first["id"]) == first
    assert writes(calls) == []  # the hook found the model first: no create, no update


def test_create_if_exists_update_updates_in_place(mls: Mls) -> None:
    name, comp = uniq("upd"), uniq("comp")
    mls.component(comp)
    first = mls.manual(name, description="first", creator="alice", model_lib="sklearn", model_meta={"a": 1})
    op = CreateManualModelOperator(
        task_id="t",
        name=name,
        version="v1",
        description="second",
        model_meta={"b": 2},
        components=[comp],
        if_exists="update",
    )
    returned = op.execute({})
    stored = mls.model(first["id"])
    assert returned == summary(stored) and returned["id"] == first["id"]
    assert stored["description"] == "second"
    assert stored["model_meta"] == {"b": 2}
    assert names(stored) == [comp]
    # None fields are kept
    assert (stored["creator"], stored["model_lib"]) == ("alice", "sklearn")
    assert len(mls.models(name)) == 1


def test_create_if_exists_update_with_no_fields_returns_existing(mls: Mls) -> None:
    name = uniq("upd-none")
    first = mls.manual(name, description="first")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", if_exists="update")
    calls = record_requests(op)
    assert op.execute({}) == summary(first)
    assert "PUT" not in [m for m, _ in writes(calls)]


@pytest.mark.parametrize("if_exists", ["skip", "update"])
def test_create_if_exists_when_an_automl_model_holds_the_pair(mls: Mls, if_exists: str) -> None:
    automl = mls.automl(uniq("taken"), trained=False)
    op = CreateManualModelOperator(task_id="t", name=automl["name"], version="v1", if_exists=if_exists)
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert mls.model(automl["id"]) == automl
    assert isinstance(fail_cause(err), MLSConflictError), fail_cause(err)


def test_create_bad_if_exists_writes_nothing(mls: Mls) -> None:
    name = uniq("bad-if")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", if_exists="replace")
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="if_exists") as err:
        op.execute({})
    cause = fail_cause(err)
    assert isinstance(cause, MLSValidationError) and cause.field == "if_exists"
    assert calls == []
    assert mls.models(name) == []


def test_create_bad_model_lib_names_the_field(mls: Mls) -> None:
    name = uniq("bad-lib")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", model_lib="pytorch")
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="model_lib") as err:
        op.execute({})
    cause = fail_cause(err)
    assert isinstance(cause, MLSValidationError) and cause.field == "model_lib"
    assert calls == []
    assert mls.models(name) == []


def test_create_unknown_component_fails_without_a_model(mls: Mls) -> None:
    name = uniq("bad-comp")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", components=[uniq("missing")])
    with pytest.raises(AirflowFailException, match="components"):
        op.execute({})
    assert mls.models(name) == []


# ---- UpdateManualModelOperator ----------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["id", "string id", "model dict", "name and version"])
def test_update_by_every_reference(mls: Mls, ref: str) -> None:
    name = uniq("u")
    model = mls.manual(name, description="old", creator="alice", model_lib="sklearn", model_meta={"a": 1})
    selectors = {
        "id": {"model_id": model["id"]},
        "string id": {"model_id": str(model["id"])},  # as a rendered template gives it
        "model dict": {"model_id": model},  # an upstream task's return value
        "name and version": {"name": name, "version": "v1"},
    }
    op = UpdateManualModelOperator(
        task_id="t", description="new", features=["x", "y"], table="", **selectors[ref]
    )
    returned = op.execute({})
    stored = mls.model(model["id"])
    assert returned == summary(stored)
    # table="" clears it: sent as "", as the reference client clears a field
    assert (stored["description"], stored["features"], stored["table"]) == ("new", "x,y", "")
    assert (stored["creator"], stored["model_lib"], stored["model_meta"]) == ("alice", "sklearn", {"a": 1})


def test_update_renames(mls: Mls) -> None:
    name, new_name = uniq("ren"), uniq("renamed")
    model = mls.manual(name, description="d")
    op = UpdateManualModelOperator(task_id="t", name=name, version="v1", new_name=new_name, new_version="v2")
    returned = op.execute({})
    assert (returned["id"], returned["name"], returned["version"]) == (model["id"], new_name, "v2")
    assert mls.model(model["id"])["description"] == "d"
    assert mls.models(name) == []
    # a version bump alone keeps the name
    bumped = UpdateManualModelOperator(task_id="t", model_id=model["id"], new_version="v3").execute({})
    assert (bumped["name"], bumped["version"]) == (new_name, "v3")


def test_update_rename_onto_existing_pair_fails(mls: Mls) -> None:
    name = uniq("ren-dup")
    a = mls.manual(name, "v1")
    mls.manual(name, "v2")
    op = UpdateManualModelOperator(task_id="t", model_id=a["id"], new_version="v2")
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSConflictError)
    assert mls.model(a["id"])["version"] == "v1"


def test_update_nothing_to_update(mls: Mls) -> None:
    model = mls.manual(uniq("noop"))
    op = UpdateManualModelOperator(task_id="t", model_id=model["id"])
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="nothing to update") as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSValidationError)
    assert fail_cause(err).field == "fields"
    assert calls == []
    assert mls.model(model["id"]) == model


def test_update_id_and_name_both_given(mls: Mls) -> None:
    name = uniq("both")
    model = mls.manual(name)
    op = UpdateManualModelOperator(
        task_id="t", model_id=model["id"], name=name, version="v1", description="x"
    )
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="model_id") as err:
        op.execute({})
    cause = fail_cause(err)
    assert isinstance(cause, MLSValidationError) and cause.field == "model_id"
    assert calls == []
    assert mls.model(model["id"]) == model


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        ({}, "model_id"),
        ({"name": "only-a-name"}, "version"),
        ({"version": "v1"}, "name"),
        ({"model_id": "twelve"}, "model_id"),
        ({"model_id": -3}, "model_id"),
        ({"model_id": {"name": "no id"}}, "model_id"),
        ({"model_id": True}, "model_id"),
    ],
)
def test_update_bad_reference_names_the_field(mls: Mls, selector: dict, field: str) -> None:
    op = UpdateManualModelOperator(task_id="t", description="x", **selector)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match=field) as err:
        op.execute({})
    cause = fail_cause(err)
    assert isinstance(cause, MLSValidationError) and cause.field == field
    assert calls == []


@pytest.mark.parametrize("ref", ["id", "name and version"])
def test_update_unknown_model(mls: Mls, ref: str) -> None:
    selector = {"model_id": 987654321} if ref == "id" else {"name": uniq("ghost"), "version": "v1"}
    op = UpdateManualModelOperator(task_id="t", description="x", **selector)
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSNotFoundError)


def test_update_an_automl_model_is_refused(mls: Mls) -> None:
    automl = mls.automl(uniq("auto"), trained=False)
    op = UpdateManualModelOperator(task_id="t", model_id=automl["id"], description="x")
    with pytest.raises(AirflowFailException):
        op.execute({})
    assert mls.model(automl["id"])["description"] == "d"


# ---- UpdateModelMetaOperator ------------------------------------------------------------------------


def test_meta_replace(mls: Mls) -> None:
    model = mls.manual(uniq("meta"), model_meta=META, description="keep")
    new = {"only": "this"}
    returned = UpdateModelMetaOperator(task_id="t", model_id=model["id"], model_meta=new).execute({})
    stored = mls.model(model["id"])
    assert returned == {**summary(stored), "model_meta_keys": ["only"]}
    assert stored["model_meta"] == {"only": "this"}
    assert stored["description"] == "keep"


@pytest.mark.parametrize("partial", [True, "True", "true"])
def test_meta_merge(mls: Mls, partial: object) -> None:
    name = uniq("merge")
    mls.manual(name, model_meta=META)
    caller = {"threshold": 0.9, "nested": {"other": 2}, "new": [1]}
    snapshot = copy.deepcopy(caller)
    op = UpdateModelMetaOperator(
        task_id="t", name=name, version="v1", model_meta=caller, partial_update=partial
    )
    returned = op.execute({})
    stored = mls.model(mls.models(name)[0]["id"])["model_meta"]  # a list item is not the whole model
    assert stored == {**META, **snapshot}  # shallow merge, as the SDK's partial_update
    assert returned["model_meta_keys"] == sorted(stored)
    assert caller == snapshot


def test_meta_remove_keys_alone(mls: Mls) -> None:
    model = mls.manual(uniq("rm"), model_meta=META)
    keys = ["nested", "absent"]
    op = UpdateModelMetaOperator(task_id="t", model_id=str(model["id"]), remove_keys=keys)
    returned = op.execute({})
    assert mls.model(model["id"])["model_meta"] == {"threshold": 0.5, "labels": ["a", "b"]}
    assert returned["model_meta_keys"] == ["labels", "threshold"]
    assert keys == ["nested", "absent"]


def test_meta_merge_then_remove(mls: Mls) -> None:
    model = mls.manual(uniq("merge-rm"), model_meta=META)
    caller = {"extra": 1, "labels": ["z"]}
    snapshot = copy.deepcopy(caller)
    op = UpdateModelMetaOperator(
        task_id="t",
        model_id=model,
        model_meta=caller,
        partial_update=True,
        remove_keys=["threshold", "extra"],
    )
    returned = op.execute({})
    assert mls.model(model["id"])["model_meta"] == {"labels": ["z"], "nested": {"k": 1}}
    assert returned["model_meta_keys"] == ["labels", "nested"]
    assert caller == snapshot


def test_meta_replace_then_remove_and_clear(mls: Mls) -> None:
    model = mls.manual(uniq("rep-rm"), model_meta=META)
    op = UpdateModelMetaOperator(
        task_id="t", model_id=model["id"], model_meta={"a": 1, "b": 2}, remove_keys=["b"]
    )
    assert op.execute({})["model_meta_keys"] == ["a"]
    assert mls.model(model["id"])["model_meta"] == {"a": 1}
    cleared = UpdateModelMetaOperator(task_id="t", model_id=model["id"], model_meta={}).execute({})
    assert cleared["model_meta_keys"] == []
    assert mls.model(model["id"])["model_meta"] == {}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "model_meta"),
        ({"model_meta": {"a": 1}, "partial_update": "yes"}, "partial_update"),
        ({"model_meta": ["not", "a", "dict"]}, "model_meta"),
        ({"model_meta": {"a": object()}}, "model_meta"),
        ({"remove_keys": "threshold"}, "remove_keys"),
    ],
)
def test_meta_bad_input_changes_nothing(mls: Mls, kwargs: dict, field: str) -> None:
    model = mls.manual(uniq("meta-bad"), model_meta=META)
    op = UpdateModelMetaOperator(task_id="t", model_id=model["id"], **kwargs)
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match=field) as err:
        op.execute({})
    cause = fail_cause(err)
    assert isinstance(cause, MLSValidationError) and cause.field.startswith(field)  # or a path in it
    assert writes(calls) == []
    assert mls.model(model["id"])["model_meta"] == META


def test_meta_unknown_model(mls: Mls) -> None:
    op = UpdateModelMetaOperator(task_id="t", model_id=987654321, model_meta={"a": 1})
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSNotFoundError)


# ---- UpdateModelComponentsOperator ------------------------------------------------------------------


def test_components_set_and_clear(mls: Mls) -> None:
    name, c1, c2 = uniq("comps"), uniq("k"), uniq("k")
    mls.component(c1)
    comp2 = mls.component(c2)
    model = mls.manual(name, description="keep", model_meta={"a": 1})
    returned = UpdateModelComponentsOperator(
        task_id="t", name=name, version="v1", components=[c1, comp2]
    ).execute({})
    stored = mls.model(model["id"])
    assert returned == {**summary(stored), "components": [c1, c2]}
    assert names(stored) == [c1, c2]
    assert (stored["description"], stored["model_meta"]) == ("keep", {"a": 1})
    cleared = UpdateModelComponentsOperator(task_id="t", model_id=str(model["id"]), components=[]).execute({})
    assert cleared["components"] == [] == mls.model(model["id"])["components"]


def test_components_bad_input(mls: Mls) -> None:
    model = mls.manual(uniq("comps-bad"))
    op = UpdateModelComponentsOperator(task_id="t", model_id=model["id"], components="one-name")
    with pytest.raises(AirflowFailException, match="components"):
        op.execute({})
    op = UpdateModelComponentsOperator(task_id="t", model_id=model["id"], components=[uniq("missing")])
    with pytest.raises(AirflowFailException, match="components"):
        op.execute({})
    assert mls.model(model["id"])["components"] == []


# ---- DeleteModelOperator ----------------------------------------------------------------------------


def test_delete_with_table(mls: Mls) -> None:
    name = uniq("del")
    table = f"t_{name}".replace("-", "_")
    mls.set_table(table)
    model = mls.manual(name, table=table)
    assert mls.table_active(table)
    op = DeleteModelOperator(task_id="t", model_id=model["id"], delete_table=True)
    assert op.execute({}) == {"id": model["id"], "deleted": True, "table_dropped": True}
    assert not mls.exists(model["id"])
    assert not mls.table_active(table)
    assert mls.raw("DELETE", f"/local/tables/{table}")[0] == 404  # really gone, not just inactive


def test_delete_keeps_table_by_default(mls: Mls) -> None:
    name = uniq("del-keep")
    table = f"t_{name}".replace("-", "_")
    mls.set_table(table)
    mls.manual(name, table=table)
    result = DeleteModelOperator(task_id="t", name=name, version="v1").execute({})
    assert result["deleted"] is True and result["table_dropped"] is False
    assert mls.models(name) == []
    assert mls.table_active(table)


def test_delete_table_already_gone(mls: Mls) -> None:
    name = uniq("del-gone")
    model = mls.manual(name, table=f"never_{name}".replace("-", "_"))
    result = DeleteModelOperator(task_id="t", model_id=model, delete_table="true").execute({})
    assert result == {"id": model["id"], "deleted": True, "table_dropped": False}


def test_delete_automl_model(mls: Mls) -> None:
    automl = mls.automl(uniq("del-auto"), trained=False)
    result = DeleteModelOperator(task_id="t", model_id=automl["id"], delete_table=True).execute({})
    assert result == {"id": automl["id"], "deleted": True, "table_dropped": False}
    assert not mls.exists(automl["id"])


@pytest.mark.parametrize("ignore", [True, "True"])
def test_delete_missing_ignored(mls: Mls, ignore: object) -> None:
    by_id = DeleteModelOperator(task_id="t", model_id=987654321, ignore_missing=ignore)
    assert by_id.execute({}) == {"id": 987654321, "deleted": False, "table_dropped": False}
    by_name = DeleteModelOperator(task_id="t", name=uniq("ghost"), version="v1", ignore_missing=ignore)
    assert by_name.execute({})["deleted"] is False


def test_delete_missing_fails_by_default(mls: Mls) -> None:
    for op in (
        DeleteModelOperator(task_id="t", model_id=987654321),
        DeleteModelOperator(task_id="t", name=uniq("ghost"), version="v1", ignore_missing=False),
    ):
        with pytest.raises(AirflowFailException) as err:
            op.execute({})
        assert isinstance(fail_cause(err), MLSNotFoundError)


def test_delete_twice_with_ignore_missing_is_a_rerun_safe_cleanup(mls: Mls) -> None:
    model = mls.manual(uniq("del-twice"))
    op = DeleteModelOperator(task_id="t", model_id=model["id"], ignore_missing=True)
    assert op.execute({})["deleted"] is True
    assert (
        DeleteModelOperator(task_id="t", model_id=model["id"], ignore_missing=True).execute({})["deleted"]
        is False
    )


def test_delete_served_model_is_refused_and_table_kept(mls: Mls) -> None:
    name = uniq("del-served")
    table = f"t_{name}".replace("-", "_")
    mls.set_table(table)
    model = mls.manual(name, table=table)
    mls.bucket(mls.experiment(uniq("exp"))["id"], "b", model)
    op = DeleteModelOperator(task_id="t", model_id=model["id"], delete_table=True, ignore_missing=True)
    with pytest.raises(AirflowFailException) as err:
        op.execute({})
    assert isinstance(fail_cause(err), MLSConflictError)
    assert mls.exists(model["id"]) and mls.table_active(table)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"delete_table": "maybe"}, "delete_table"), ({"ignore_missing": 1}, "ignore_missing")],
)
def test_delete_bad_flags(mls: Mls, kwargs: dict, field: str) -> None:
    model = mls.manual(uniq("del-bad"))
    with pytest.raises(AirflowFailException, match=field):
        DeleteModelOperator(task_id="t", model_id=model["id"], **kwargs).execute({})
    assert mls.exists(model["id"])


# ---- transient errors are not fail-fast -------------------------------------------------------------


def test_transient_error_is_left_to_airflow_retries(mls: Mls, no_retry_conn: str) -> None:
    """A 503 is not bad input: the task fails retryably (Airflow's retries), and the retry succeeds."""
    model = mls.manual(uniq("transient"), description="old")
    mls.add_fault("GET", f"/api/v1/models/{model['id']}")  # the read before the update
    op = UpdateManualModelOperator(
        task_id="t", mls_conn_id=no_retry_conn, model_id=model["id"], description="new"
    )
    with pytest.raises(MLSServerError) as err:
        op.execute({})
    assert not isinstance(err.value, AirflowFailException)
    assert mls.model(model["id"])["description"] == "old"
    retry = UpdateManualModelOperator(
        task_id="t", mls_conn_id=no_retry_conn, model_id=model["id"], description="new"
    )
    retry.execute({})
    assert mls.model(model["id"])["description"] == "new"
