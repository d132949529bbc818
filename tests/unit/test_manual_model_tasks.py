"""The manual model operators' own logic, hook replaced: arguments, what reaches the hook, the XCom value."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls.checks import SUMMARY_FIELDS
from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSError,
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

from .fakes import FakeMLSHook, FakeStore, automl_model, context, manual_model

MODEL = manual_model(12, "churn", "v1", model_meta={"threshold": 0.5, "labels": ["a"]}, table="churn_scores")
LINK_KEY = "mls_link_mls_model"


def run(op: Any, hook: FakeMLSHook, ctx: dict[str, Any] | None = None) -> Any:
    op.hook = hook
    return op.execute(ctx if ctx is not None else context(op))


def failure(op: Any, hook: FakeMLSHook, ctx: dict[str, Any] | None = None) -> BaseException:
    """The cause of the task's fail-fast ``AirflowFailException``."""
    with pytest.raises(AirflowFailException) as err:
        run(op, hook, ctx)
    assert err.value.__cause__ is not None
    return err.value.__cause__


def invalid(op: Any, hook: FakeMLSHook) -> MLSValidationError:
    cause = failure(op, hook)
    assert isinstance(cause, MLSValidationError), cause
    return cause


# ---- CreateManualModelOperator ----------------------------------------------------------------------


def test_create_sends_exactly_the_fields_given_and_returns_a_summary() -> None:
    hook = FakeMLSHook()
    meta = {"threshold": 0.5}
    op = CreateManualModelOperator(
        task_id="create",
        name="churn",
        version="v2",
        description="retrained",
        model_lib="lightgbm",
        model_meta=meta,
        features=["age", "tenure"],
        components=["scaler"],
    )
    ctx = context(op)
    result = run(op, hook, ctx)
    ((args, kwargs),) = hook.called("create_manual_model")
    sent = {k: v for k, v in kwargs.items() if k not in ("not_before", "on_sending", "on_created")}
    assert sent == {
        "name": "churn",
        "version": "v2",
        "if_exists": "fail",
        "description": "retrained",
        "model_lib": "lightgbm",
        "model_meta": {"threshold": 0.5},
        "features": ["age", "tenure"],
        "components": ["scaler"],
    }  # creator, model_data, table: not given, not sent
    assert kwargs["not_before"] is None  # a first try adopts nothing
    assert hook.names == ["create_manual_model"]
    assert set(result) <= set(SUMMARY_FIELDS) and "model_meta" not in result and "components" not in result
    assert (result["id"], result["name"], result["version"], result["model_type"]) == (
        100,
        "churn",
        "v2",
        "manual",
    )
    assert ctx["ti"].xcoms[LINK_KEY] == "https://mls.example/models/100"


@pytest.mark.parametrize("if_exists", ["replace", "", None, "SKIP"])
def test_create_bad_if_exists_names_the_field_and_sends_nothing(if_exists: Any) -> None:
    hook = FakeMLSHook()
    op = CreateManualModelOperator(task_id="t", name="churn", version="v1", if_exists=if_exists)
    assert invalid(op, hook).field == "if_exists"
    assert hook.calls == []


@pytest.mark.parametrize("if_exists", ["skip", "update"])
def test_create_if_exists_reaches_the_hook(if_exists: str) -> None:
    hook = FakeMLSHook(MODEL)
    op = CreateManualModelOperator(
        task_id="t", name="churn", version="v1", description="new", if_exists=if_exists
    )
    result = run(op, hook)
    assert hook.called("create_manual_model")[0][1]["if_exists"] == if_exists
    assert result["id"] == 12
    assert hook.models[12]["description"] == ("new" if if_exists == "update" else "")


def test_create_a_duplicate_fails_at_once() -> None:
    op = CreateManualModelOperator(task_id="t", name="churn", version="v1")
    cause = failure(op, FakeMLSHook(MODEL))
    assert isinstance(cause, MLSConflictError)


def test_create_a_transient_error_is_left_to_airflow_retries() -> None:
    hook = FakeMLSHook()
    hook.fail("create_manual_model", MLSServerError("service unavailable", code=503))
    op = CreateManualModelOperator(task_id="t", name="churn", version="v1")
    with pytest.raises(MLSServerError) as err:
        run(op, hook)
    assert not isinstance(err.value, AirflowFailException)


def test_create_on_a_retry_adopts_only_models_made_since_the_run_began() -> None:
    hook = FakeMLSHook()
    op = CreateManualModelOperator(task_id="t", name="churn", version="v1")
    start = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    run(op, hook, context(op, try_number=2, dag_run=SimpleNamespace(start_date=start)))
    assert hook.called("create_manual_model")[0][1]["not_before"] == start


def test_create_with_a_task_state_store_reconnects_by_id_on_the_retry() -> None:
    store, hook = FakeStore(), FakeMLSHook()
    first = CreateManualModelOperator(task_id="t", name="churn", version="v1", description="d")
    created = run(first, hook, context(first, store=store))
    retry = CreateManualModelOperator(task_id="t", name="churn", version="v1", description="d")
    again = run(retry, hook, context(retry, try_number=2, store=store))
    assert again["id"] == created["id"]
    assert hook.called("create_manual_model")[1][1]["known_id"] == created["id"]
    assert len(hook.models) == 1


def test_create_retry_with_changed_arguments_names_the_changed_fields() -> None:
    store, hook = FakeStore(), FakeMLSHook()
    first = CreateManualModelOperator(task_id="t", name="churn", version="v1", description="d")
    run(first, hook, context(first, store=store))
    changed = CreateManualModelOperator(task_id="t", name="churn", version="v1", description="other")
    cause = failure(changed, hook, context(changed, try_number=2, store=store))
    assert isinstance(cause, MLSConflictError)
    assert "other values of description" in str(cause)
    assert len(hook.called("create_manual_model")) == 1  # the retry sent nothing


def test_create_an_unwritable_store_fails_the_try_before_sending() -> None:
    store, hook = FakeStore(), FakeMLSHook()
    store.broken.add("set")
    op = CreateManualModelOperator(task_id="t", name="churn", version="v1")
    with pytest.raises(MLSError, match="not sending it") as err:
        run(op, hook, context(op, store=store))
    assert not isinstance(err.value, AirflowFailException)  # retryable: a retry sends it
    assert hook.models == {}


# ---- UpdateManualModelOperator ----------------------------------------------------------------------


@pytest.mark.parametrize("ref", [12, "12", " 12 ", MODEL])
def test_update_by_id_sends_no_lookup(ref: Any) -> None:
    hook = FakeMLSHook(MODEL)
    op = UpdateManualModelOperator(task_id="t", model_id=ref, description="new", table="")
    result = run(op, hook)
    assert hook.calls == [("update_manual_model", (12,), {"description": "new", "table": ""})]
    assert result["id"] == 12 and set(result) <= set(SUMMARY_FIELDS)


def test_update_by_name_and_version_reads_the_manual_model_first() -> None:
    hook = FakeMLSHook(MODEL)
    op = UpdateManualModelOperator(
        task_id="t", name="churn", version="v1", new_name="churn2", new_version="v9"
    )
    result = run(op, hook)
    assert hook.names == ["get_manual_model", "update_manual_model"]
    assert hook.called("get_manual_model") == [((), {"id": None, "name": "churn", "version": "v1"})]
    (args, kwargs) = hook.called("update_manual_model")[0]
    assert args[0]["id"] == 12 and kwargs == {"name": "churn2", "version": "v9"}
    assert (result["name"], result["version"]) == ("churn2", "v9")


def test_update_nothing_to_update_names_fields() -> None:
    hook = FakeMLSHook(MODEL)
    assert invalid(UpdateManualModelOperator(task_id="t", model_id=12), hook).field == "fields"
    assert hook.calls == []


@pytest.mark.parametrize(
    ("selector", "field"),
    [
        ({}, "model_id"),
        ({"name": "only-a-name"}, "version"),
        ({"version": "v1"}, "name"),
        ({"name": "churn", "version": "  "}, "version"),
        ({"model_id": "twelve"}, "model_id"),
        ({"model_id": -3}, "model_id"),
        ({"model_id": 2**63}, "model_id"),
        ({"model_id": {"name": "no id"}}, "model_id"),
        ({"model_id": True}, "model_id"),
        ({"model_id": 12, "name": "churn", "version": "v1"}, "model_id"),
    ],
)
def test_update_bad_reference_names_the_field(selector: dict[str, Any], field: str) -> None:
    hook = FakeMLSHook(MODEL)
    cause = invalid(UpdateManualModelOperator(task_id="t", description="x", **selector), hook)
    assert cause.field == field and str(cause).startswith(f"{field}: ")
    assert hook.calls == []


def test_update_an_unknown_model_fails_at_once() -> None:
    op = UpdateManualModelOperator(task_id="t", name="ghost", version="v1", description="x")
    assert isinstance(failure(op, FakeMLSHook(MODEL)), MLSNotFoundError)


# ---- UpdateModelMetaOperator ------------------------------------------------------------------------


def test_meta_replace_by_default() -> None:
    hook = FakeMLSHook(MODEL)
    result = run(UpdateModelMetaOperator(task_id="t", model_id=12, model_meta={"only": 1}), hook)
    assert hook.calls == [
        ("update_manual_model_meta", (12, {"only": 1}), {"partial_update": False, "remove_keys": []})
    ]
    assert result["model_meta_keys"] == ["only"]
    assert set(result) - {"model_meta_keys"} <= set(SUMMARY_FIELDS)


@pytest.mark.parametrize("partial", [True, "True", "true", " TRUE "])
def test_meta_partial_update_from_a_rendered_template(partial: Any) -> None:
    hook = FakeMLSHook(MODEL)
    op = UpdateModelMetaOperator(task_id="t", model_id=12, model_meta={"new": 1}, partial_update=partial)
    result = run(op, hook)
    assert hook.called("update_manual_model_meta")[0][1]["partial_update"] is True
    assert result["model_meta_keys"] == ["labels", "new", "threshold"]


def test_meta_remove_keys_alone_merges_nothing_and_keeps_the_rest() -> None:
    hook = FakeMLSHook(MODEL)
    result = run(UpdateModelMetaOperator(task_id="t", model_id="12", remove_keys=["labels"]), hook)
    assert hook.calls == [
        ("update_manual_model_meta", (12, {}), {"partial_update": True, "remove_keys": ["labels"]})
    ]
    assert result["model_meta_keys"] == ["threshold"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "model_meta"),
        ({"remove_keys": []}, "model_meta"),
        ({"model_meta": {"a": 1}, "partial_update": "yes"}, "partial_update"),
        ({"model_meta": {"a": 1}, "partial_update": 1}, "partial_update"),
    ],
)
def test_meta_bad_input_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    hook = FakeMLSHook(MODEL)
    assert invalid(UpdateModelMetaOperator(task_id="t", model_id=12, **kwargs), hook).field == field
    assert hook.calls == []


def test_meta_by_name_reads_the_manual_model() -> None:
    hook = FakeMLSHook(MODEL, automl_model(13, "churn", "v2"))
    op = UpdateModelMetaOperator(task_id="t", name="churn", version="v2", model_meta={"a": 1})
    assert isinstance(failure(op, hook), MLSNotFoundError)  # v2 is an AutoML model: no manual one
    assert hook.names == ["get_manual_model"]


# ---- UpdateModelComponentsOperator ------------------------------------------------------------------


def test_components_set_and_returned_by_name() -> None:
    hook = FakeMLSHook(MODEL)
    comps = ["scaler", {"id": 4, "name": "encoder"}]
    result = run(UpdateModelComponentsOperator(task_id="t", model_id={"id": 12}, components=comps), hook)
    assert hook.calls == [("update_manual_model_components", (12, comps), {})]
    assert result["components"] == ["scaler", "encoder"]


def test_components_cleared_by_name_and_version() -> None:
    hook = FakeMLSHook(MODEL)
    result = run(UpdateModelComponentsOperator(task_id="t", name="churn", version="v1", components=[]), hook)
    assert hook.names == ["get_manual_model", "update_manual_model_components"]
    assert result["components"] == []


# ---- DeleteModelOperator ----------------------------------------------------------------------------


def test_delete_by_id_reads_the_model_then_deletes_it() -> None:
    hook = FakeMLSHook(MODEL)
    result = run(DeleteModelOperator(task_id="t", model_id=12, delete_table="true"), hook)
    assert hook.names == ["get_model", "delete_model"]
    (args, kwargs) = hook.called("delete_model")[0]
    assert args[0]["id"] == 12 and kwargs == {"delete_table": True}
    assert result == {"id": 12, "deleted": True, "table_dropped": True}


def test_delete_by_name_finds_a_manual_or_an_automl_model() -> None:
    hook = FakeMLSHook(automl_model(13, "auto", "v1"))
    result = run(DeleteModelOperator(task_id="t", name="auto", version="v1"), hook)
    assert hook.names == ["get_manual_model", "get_automl_model", "delete_model"]
    assert result == {"id": 13, "deleted": True, "table_dropped": False}


@pytest.mark.parametrize("ignore", [True, "True", "true"])
def test_delete_missing_with_ignore_missing_is_a_success(ignore: Any) -> None:
    hook = FakeMLSHook()
    by_id = run(DeleteModelOperator(task_id="t", model_id="987", ignore_missing=ignore), hook)
    assert by_id == {"id": 987, "deleted": False, "table_dropped": False}
    by_name = run(DeleteModelOperator(task_id="t", name="ghost", version="v1", ignore_missing=ignore), hook)
    assert by_name == {"id": None, "deleted": False, "table_dropped": False}
    assert "delete_model" not in hook.names


def test_delete_missing_fails_at_once_by_default() -> None:
    assert isinstance(
        failure(DeleteModelOperator(task_id="t", model_id=987), FakeMLSHook()), MLSNotFoundError
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delete_table": "maybe"}, "delete_table"),
        ({"ignore_missing": 1}, "ignore_missing"),
        ({"ignore_missing": None}, "ignore_missing"),
    ],
)
def test_delete_bad_flags_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    hook = FakeMLSHook(MODEL)
    assert invalid(DeleteModelOperator(task_id="t", model_id=12, **kwargs), hook).field == field
    assert hook.calls == [] and 12 in hook.models
