"""MLS models as assets (datasets on Airflow 2.11): the mls:// URI scheme and the event of a new model version.

A scheduler-level check (a consumer DAG queued by the event) is in ``tests/test_integration_dag.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mls.assets import (
    MODEL_VERSIONS_ALIAS,
    model_asset,
    model_uri,
    model_versions_alias,
    parse_model_uri,
)


def outlet_event_accessors() -> Any:
    """Airflow's own accessor of ``context["outlet_events"]``."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    else:
        from airflow.utils.context import OutletEventAccessors
    return OutletEventAccessors()


def alias_events(accessors: Any) -> list[tuple[str, dict[str, Any]]]:
    """(uri, extra) of each event added through the mls_model_versions alias."""
    accessor = accessors[model_versions_alias()]
    events = getattr(accessor, "asset_alias_events", None)
    if events is None:  # Airflow 2.11
        events = accessor.dataset_alias_events
    out = []
    for event in events:
        if isinstance(event, dict):  # Airflow 2.11
            out.append((event["dest_dataset_uri"], dict(event["extra"])))
        else:
            out.append((event.dest_asset_key.uri, dict(event.extra)))
    return out


def test_model_uri_is_env_and_name() -> None:
    assert model_uri("churn", "prd") == "mls://prd/churn"
    assert model_uri("churn model/2", "stg") == "mls://stg/churn%20model%2F2"
    assert model_uri("churn") == "mls://stg/churn"  # the MLS default env
    assert parse_model_uri("mls://prd/churn%20model%2F2") == ("prd", "churn model/2")
    with pytest.raises(ValueError, match="env"):
        model_uri("churn", "production")
    with pytest.raises(ValueError, match="model name"):
        model_uri("", "prd")
    for bad in ("s3://prd/churn", "mls://prd/", "mls:///churn", "mls://prd/a/b"):
        with pytest.raises(ValueError):
            parse_model_uri(bad)


def test_airflow_normalizes_mls_uris_with_the_providers_handler() -> None:
    from airflow.providers.common.compat.sdk import Asset

    assert Asset("mls://PRD/churn").uri == "mls://prd/churn"  # env in lower case, as the hook reads it
    assert Asset("mls://prd/churn/").uri == "mls://prd/churn"
    assert model_asset("churn", "prd") == Asset("mls://prd/churn")
    if AIRFLOW_V_3_0_PLUS:
        with pytest.raises(ValueError, match="env"):
            Asset("mls://production/churn")
    else:  # Airflow 2.11 warns about a URI its handler refuses
        with pytest.warns(Warning, match="env"):
            Asset("mls://production/churn")


def test_the_openlineage_dataset_of_an_mls_asset() -> None:
    from airflow_provider_mls.assets import convert_asset_to_openlineage

    dataset = convert_asset_to_openlineage(model_asset("churn", "prd"))
    assert (dataset.namespace, dataset.name) == ("mls://prd", "churn")


def test_deploy_and_update_tasks_declare_the_alias_outlet_once() -> None:
    from airflow.providers.common.compat.sdk import Asset

    from airflow_provider_mls.operators.mls import (
        CreateManualModelOperator,
        DeleteModelOperator,
        UpdateManualModelOperator,
    )
    from airflow_provider_mls.operators.sagemaker_registry import DeployModelPackageToMLSOperator

    alias = [MODEL_VERSIONS_ALIAS] if AIRFLOW_V_3_0_PLUS else []  # Airflow 2.11: no alias (see assets)
    mine = Asset("s3://bucket/report")
    create = CreateManualModelOperator(task_id="c", name="n", version="v", outlets=[mine])
    assert create.outlets[0] == mine
    assert [getattr(o, "name", None) for o in create.outlets[1:]] == alias
    update = UpdateManualModelOperator(task_id="u", model_id=1, description="d")
    deploy = DeployModelPackageToMLSOperator(task_id="d", name="n", model_package_group="g")
    for task in (update, deploy):
        assert [o.name for o in task.outlets] == alias
    assert DeleteModelOperator(task_id="x", model_id=1).outlets == []


events_on_airflow_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS,
    reason="Airflow 2.11: the tasks send no dataset events (see airflow_provider_mls.assets)",
)


def _context(task: Any) -> dict[str, Any]:
    return {"task": task, "outlet_events": outlet_event_accessors()}


@events_on_airflow_3
def test_a_deploy_and_an_update_each_add_one_event_with_the_version(mls_conn: Any) -> None:
    from airflow_provider_mls.operators.mls import CreateManualModelOperator, UpdateManualModelOperator

    name = f"asset_{uuid.uuid4().hex[:8]}"
    create = CreateManualModelOperator(task_id="deploy", name=name, version="v1", model_lib="sklearn")
    context = _context(create)
    model = create.execute(context)
    assert alias_events(context["outlet_events"]) == [
        ("mls://local/" + name, {"name": name, "version": "v1", "model_id": model["id"], "env": "local"})
    ]

    update = UpdateManualModelOperator(task_id="update", model_id=model["id"], new_version="v2")
    context = _context(update)
    update.execute(context)
    ((uri, extra),) = alias_events(context["outlet_events"])
    assert uri == "mls://local/" + name and extra["version"] == "v2" and extra["model_id"] == model["id"]


@events_on_airflow_3
def test_skip_of_an_existing_version_adds_no_event(mls_conn: Any) -> None:
    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    name = f"asset_{uuid.uuid4().hex[:8]}"
    CreateManualModelOperator(task_id="a", name=name, version="v1").execute(_context(None))
    again = CreateManualModelOperator(task_id="b", name=name, version="v1", if_exists="skip")
    context = _context(again)
    again.execute(context)
    assert alias_events(context["outlet_events"]) == []


@events_on_airflow_3
def test_a_failed_deploy_adds_no_event(mls_conn: Any) -> None:
    from airflow_provider_mls._compat import AirflowFailException
    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    name = f"asset_{uuid.uuid4().hex[:8]}"
    CreateManualModelOperator(task_id="a", name=name, version="v1").execute(_context(None))
    dup = CreateManualModelOperator(task_id="b", name=name, version="v1")  # if_exists="fail"
    context = _context(dup)
    with pytest.raises(AirflowFailException):
        dup.execute(context)
    assert alias_events(context["outlet_events"]) == []


@events_on_airflow_3
def test_an_update_of_the_table_or_meta_is_no_new_version(mls_conn: Any) -> None:
    """A DAG scheduled on a model that repoints the model's table must not trigger itself."""
    from airflow_provider_mls.operators.mls import CreateManualModelOperator, UpdateManualModelOperator

    name = f"asset_{uuid.uuid4().hex[:8]}"
    model = CreateManualModelOperator(task_id="a", name=name, version="v1").execute(_context(None))
    for kwargs in ({"table": f"{name}_20260101"}, {"description": "refreshed"}):
        update = UpdateManualModelOperator(task_id="u", model_id=model["id"], **kwargs)
        context = _context(update)
        update.execute(context)
        assert alias_events(context["outlet_events"]) == [], kwargs
    update = UpdateManualModelOperator(task_id="u", model_id=model["id"], model_data="s3://b/new.joblib")
    context = _context(update)
    update.execute(context)
    assert [extra["version"] for _, extra in alias_events(context["outlet_events"])] == ["v1"]


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 only")
def test_on_airflow_2_a_deploy_sends_no_dataset_event(mls_conn: Any) -> None:
    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    create = CreateManualModelOperator(task_id="deploy", name=f"asset_{uuid.uuid4().hex[:8]}", version="v1")
    context = _context(create)
    create.execute(context)
    assert create.outlets == [] and alias_events(context["outlet_events"]) == []
