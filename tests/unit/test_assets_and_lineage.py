"""What the tasks leave for Airflow beside their XCom, hooks replaced: asset events of new model
versions (Airflow 3) and the OpenLineage datasets each run read and wrote."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS
from airflow_provider_mls.assets import model_versions_alias
from airflow_provider_mls.operators.mls import (
    CreateManualModelOperator,
    DeleteModelOperator,
    UpdateManualModelOperator,
)
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator
from airflow_provider_mls.operators.sagemaker_registry import DeployModelPackageToMLSOperator

from .fakes import (
    TABLE_ARN,
    FakeMLSHook,
    FakeModelRegistry,
    FakeSageMakerRegistry,
    FakeTables,
    context,
    manual_model,
    package,
)

MODEL = manual_model(12, "churn", "v1", model_data="/models/churn/v1/model.joblib")

# ---- asset events -------------------------------------------------------------------------------------

events_on_airflow_3 = pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS,
    reason="Airflow 2.11: the tasks send no dataset events (see airflow_provider_mls.assets)",
)


def with_events(op: Any) -> dict[str, Any]:
    """The task's context with Airflow's own accessor of ``outlet_events``."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return context(op, outlet_events=OutletEventAccessors())


def events(ctx: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    accessor = ctx["outlet_events"][model_versions_alias()]
    return [(e.dest_asset_key.uri, dict(e.extra)) for e in accessor.asset_alias_events]


@events_on_airflow_3
def test_a_deploy_adds_one_event_with_the_version() -> None:
    op = CreateManualModelOperator(task_id="deploy", name="churn", version="v2")
    op.hook = FakeMLSHook()
    ctx = with_events(op)
    model = op.execute(ctx)
    assert events(ctx) == [
        ("mls://stg/churn", {"name": "churn", "version": "v2", "model_id": model["id"], "env": "stg"})
    ]


@events_on_airflow_3
@pytest.mark.parametrize(
    ("changes", "new"),
    [
        ({"table": "churn_20261206"}, False),
        ({"description": "refreshed"}, False),
        ({"model_meta": {"a": 1}}, False),
        ({"model_data": "s3://b/new.joblib"}, True),
        ({"new_version": "v9"}, True),
    ],
)
def test_an_update_is_a_new_version_only_when_its_artifact_or_version_changes(
    changes: dict[str, Any], new: bool
) -> None:
    op = UpdateManualModelOperator(task_id="update", model_id=12, **changes)
    op.hook = FakeMLSHook(MODEL)
    ctx = with_events(op)
    op.execute(ctx)
    assert len(events(ctx)) == (1 if new else 0)


@events_on_airflow_3
def test_a_skip_of_an_existing_version_and_a_failed_deploy_add_no_event() -> None:
    skip = CreateManualModelOperator(task_id="deploy", name="churn", version="v1", if_exists="skip")
    skip.hook = FakeMLSHook(MODEL)
    ctx = with_events(skip)
    skip.execute(ctx)
    assert events(ctx) == []
    dup = CreateManualModelOperator(task_id="deploy", name="churn", version="v1")
    dup.hook = FakeMLSHook(MODEL)
    ctx = with_events(dup)
    with pytest.raises(AirflowFailException):
        dup.execute(ctx)
    assert events(ctx) == []


# ---- OpenLineage --------------------------------------------------------------------------------------


def extract(task: Any) -> Any:
    """What the OpenLineage listener gets from a task that ran: the provider's DefaultExtractor."""
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    lineage = DefaultExtractor(task).extract_on_complete(None)
    assert lineage is not None
    return lineage


def names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_a_deploy_reads_the_registry_artifact_and_writes_the_model_version() -> None:
    op = CreateManualModelOperator(
        task_id="deploy",
        name="churn",
        version="v2",
        model_data="/models/churn/v2/model.joblib",
        features="age,tenure",
    )
    op.hook = FakeMLSHook()
    op.execute(context(op))
    lineage = extract(op)
    assert names(lineage.inputs) == [("s3://mls-model-registry-stg", "churn/v2/model.joblib")]
    assert names(lineage.outputs) == [("mls://stg", "churn/v2")]
    assert [f.name for f in lineage.outputs[0].facets["schema"].fields] == ["age", "tenure"]


def test_an_update_writes_the_version_it_left() -> None:
    op = UpdateManualModelOperator(task_id="update", model_id=12, new_version="v2")
    op.hook = FakeMLSHook(MODEL)
    op.execute(context(op))
    assert names(extract(op).outputs) == [("mls://stg", "churn/v2")]


def test_an_upload_reads_the_file_and_writes_the_s3_artifact(tmp_path: Any) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"m")
    op = UploadModelToRegistryOperator(
        task_id="upload",
        name="churn",
        version="v1",
        model_lib="sklearn",
        model_lib_version="1.5",
        features="a",
        model_path=str(path),
    )
    op.registry = FakeModelRegistry()
    op.execute(context(op))
    lineage = extract(op)
    assert names(lineage.inputs) == [("file", str(path))]
    assert names(lineage.outputs) == [("s3://mls-model-registry-stg", "churn/v1/model.joblib")]


def test_a_load_writes_the_table_by_its_arn_with_the_row_count(tmp_path: Any) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("user_id\na\nb\n", encoding="utf-8")
    from_file = LoadPredictionTableOperator(task_id="load", table="scores", rows_path=str(path))
    from_file.tables = FakeTables()
    from_file.execute(context(from_file))
    lineage = extract(from_file)
    assert names(lineage.inputs) == [("file", str(path))]
    ((namespace, name),) = names(lineage.outputs)
    assert f"{namespace}:{name}" == f"{TABLE_ARN}/scores"
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 2
    from_rows = LoadPredictionTableOperator(task_id="load", table="scores", rows=[{"user_id": "a"}])
    from_rows.tables = FakeTables()
    from_rows.execute(context(from_rows))
    assert extract(from_rows).inputs == []


def test_a_sagemaker_deploy_reads_the_model_data_and_the_package() -> None:
    arn = package()["ModelPackageArn"]
    op = DeployModelPackageToMLSOperator(task_id="deploy", name="churn", model_package_arn=arn)
    op.registry = FakeSageMakerRegistry(package(status="Approved"))
    op.hook = FakeMLSHook()
    op.execute(context(op))
    lineage = extract(op)
    namespace, _, rest = arn.partition(":model-package/")
    assert names(lineage.inputs) == [
        ("s3://models", "churn/3/model.tar.gz"),
        (namespace, f"model-package/{rest}"),
    ]
    assert names(lineage.outputs) == [("mls://stg", "churn/v3")]


def test_a_task_that_recorded_nothing_reports_no_datasets() -> None:
    op = DeleteModelOperator(task_id="delete", model_id=404, ignore_missing=True)
    op.hook = FakeMLSHook()
    op.execute(context(op))
    lineage = extract(op)
    assert lineage.inputs == [] and lineage.outputs == []
