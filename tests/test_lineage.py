"""OpenLineage: the datasets each task reports, read through the OpenLineage provider's own extractor.

The tasks run for real (the local MLS server, its AWS endpoint); ``DefaultExtractor`` is what the
OpenLineage listener uses for operators with ``get_openlineage_facets_on_complete``. Events written
by a real OpenLineage client (file transport) during ``airflow dags test`` are checked in
``tests/test_integration_dag.py``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls import lineage as ol

if TYPE_CHECKING:
    from pathlib import Path


def test_dataset_names() -> None:
    assert ol.file_or_s3("s3://bucket/a/b/model.joblib") == ol.Ref("s3://bucket", "a/b/model.joblib")
    assert ol.file_or_s3("/models/m.joblib") == ol.Ref("file", "/models/m.joblib")
    assert ol.file_or_s3("file:///models/m.joblib") == ol.Ref("file", "/models/m.joblib")
    assert ol.file_or_s3("https://host/m") is None
    assert ol.file_or_s3("s3://bucket") is None
    assert ol.file_or_s3(None) is None
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/preds"
    assert ol.dynamodb_table("preds", table_arn=arn) == ol.Ref(
        "arn:aws:dynamodb:us-east-1:123456789012", "table/preds"
    )
    package = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/3"
    assert ol.model_package(package) == ol.Ref(
        "arn:aws:sagemaker:eu-west-1:123456789012", "model-package/churn-models/3"
    )
    assert ol.mls_model_version("PRD", "churn", "v2") == ol.Ref("mls://prd", "churn/v2")
    # MLS names a registry artifact /models/<name>/<version>/model.joblib: that object of the bucket.
    registry = ol.mls_model_data("/models/churn/v2/model.joblib", "mls-model-registry-prd")
    assert registry == ol.Ref("s3://mls-model-registry-prd", "churn/v2/model.joblib")
    assert ol.mls_model_data("/data/m.joblib", "mls-model-registry") == ol.Ref("file", "/data/m.joblib")


def extract(task: Any) -> Any:
    """What the OpenLineage listener gets from a task that ran: the provider's DefaultExtractor."""
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    lineage = DefaultExtractor(task).extract_on_complete(None)
    assert lineage is not None
    return lineage


def names(datasets: list[Any]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


@pytest.fixture
def aws(mls_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())
    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    return mls_server


def test_registry_upload_outputs_the_s3_artifact(aws: Any, tmp_path: Path) -> None:
    from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator

    path = tmp_path / "model.joblib"
    path.write_bytes(b"model")
    name = f"ol_{uuid.uuid4().hex[:8]}"
    op = UploadModelToRegistryOperator(
        task_id="upload",
        name=name,
        version="v1",
        model_path=str(path),
        model_lib="sklearn",
        model_lib_version="1.3.0",
        features=["a"],
        aws_conn_id=None,
    )
    result = op.execute({})
    lineage = extract(op)
    assert names(lineage.inputs) == [("file", str(path))]
    bucket = result["bucket"]
    assert names(lineage.outputs) == [(f"s3://{bucket}", f"{name}/v1/model.joblib")]


def test_table_load_inputs_the_file_and_outputs_the_table_with_its_row_count(
    aws: Any, tmp_path: Path
) -> None:
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook
    from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator

    table = f"ol_{uuid.uuid4().hex[:8]}"
    hook = PredictionTableHook(aws_conn_id=None)
    hook.create_table(table)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"user_id": "a", "score": 0.5}\n{"user_id": "b", "score": 0.7}\n')
    op = LoadPredictionTableOperator(task_id="load", table=table, rows_path=str(rows), aws_conn_id=None)
    op.execute({})
    lineage = extract(op)
    arn = hook.get_conn().describe_table(TableName=table)["Table"]["TableArn"]
    assert names(lineage.inputs) == [("file", str(rows))]
    ((namespace, name),) = names(lineage.outputs)
    assert f"{namespace}:{name}" == arn  # the table's ARN, account included
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 2


def test_table_load_of_rows_has_no_input_dataset(aws: Any) -> None:
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook
    from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator

    table = f"ol_{uuid.uuid4().hex[:8]}"
    PredictionTableHook(aws_conn_id=None).create_table(table)
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=[{"user_id": "a"}], aws_conn_id=None)
    op.execute({})
    lineage = extract(op)
    assert lineage.inputs == []
    assert lineage.outputs[0].outputFacets["outputStatistics"].rowCount == 1


def test_deploy_and_update_output_the_mls_model_version(aws: Any) -> None:
    from airflow_provider_mls.operators.mls import CreateManualModelOperator, UpdateManualModelOperator

    name = f"ol_{uuid.uuid4().hex[:8]}"
    create = CreateManualModelOperator(
        task_id="deploy",
        name=name,
        version="v1",
        model_lib="sklearn",
        model_data="s3://mls-model-registry/churn/v1/model.joblib",
        features=["age", "tenure"],
    )
    model = create.execute({})
    lineage = extract(create)
    assert names(lineage.inputs) == [("s3://mls-model-registry", "churn/v1/model.joblib")]
    assert names(lineage.outputs) == [("mls://local", f"{name}/v1")]
    assert [f.name for f in lineage.outputs[0].facets["schema"].fields] == ["age", "tenure"]

    update = UpdateManualModelOperator(task_id="update", model_id=model["id"], new_version="v2")
    update.execute({})
    lineage = extract(update)
    assert names(lineage.inputs) == [("s3://mls-model-registry", "churn/v1/model.joblib")]
    assert names(lineage.outputs) == [("mls://local", f"{name}/v2")]


def test_sagemaker_deploy_inputs_the_model_package(aws: Any) -> None:
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook
    from airflow_provider_mls.operators.sagemaker_registry import DeployModelPackageToMLSOperator

    registry = SageMakerModelRegistryHook(aws_conn_id=None)
    group = f"ol-{uuid.uuid4().hex[:10]}"
    registry.ensure_group(group)
    arn = registry.register_version(
        group, model_data_url="s3://models/churn/model.tar.gz", image="img:1", approval_status="Approved"
    )["ModelPackageArn"]
    name = f"ol_{uuid.uuid4().hex[:8]}"
    op = DeployModelPackageToMLSOperator(
        task_id="deploy", name=name, model_package_arn=arn, model_lib="sklearn", aws_conn_id=None
    )
    op.execute({})
    lineage = extract(op)
    namespace, _, package = arn.partition(":model-package/")
    assert names(lineage.inputs) == [
        ("s3://models", "churn/model.tar.gz"),
        (namespace, f"model-package/{package}"),
    ]
    assert names(lineage.outputs) == [("mls://local", f"{name}/v1")]


def test_a_task_that_recorded_nothing_reports_no_datasets(aws: Any) -> None:
    from airflow_provider_mls.operators.mls import DeleteModelOperator

    op = DeleteModelOperator(task_id="delete", model_id=999999, ignore_missing=True)
    op.execute({})
    lineage = extract(op)
    assert lineage.inputs == [] and lineage.outputs == []
