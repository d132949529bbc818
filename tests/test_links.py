"""Extra links: the URLs they build, the tasks that carry them, and what a task persists before it waits.

What the UI shows after a real run (the serialized task's links read from the metadata DB, on both
Airflow versions) is in ``tests/test_integration_dag.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mls.links import (
    ALL_LINKS,
    MLSModelLink,
    PredictionTableLink,
    RegistryArtifactLink,
    SageMakerModelPackageLink,
    mls_model_url,
    model_package_url,
    prediction_table_url,
    registry_artifact_url,
)

ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-models/7"


class FakeTI:
    """Records ``xcom_push``: what a task instance keeps (the task under test runs for real)."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_model_package_url_reads_region_group_and_version_from_the_arn() -> None:
    url = model_package_url(ARN)
    assert url == (
        "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1"
        "#/model-registry/model-package-groups/churn-models/versions/7"
    )
    assert model_package_url("not-an-arn") is None
    assert model_package_url("arn:aws:sagemaker:eu-west-1:1:model-package-group/churn-models") is None


def test_s3_and_dynamodb_console_urls() -> None:
    assert registry_artifact_url("mls-model-registry", "churn/v2", "us-east-1") == (
        "https://s3.console.aws.amazon.com/s3/buckets/mls-model-registry?prefix=churn/v2/&region=us-east-1"
    )
    assert prediction_table_url("churn_20260101", "ap-northeast-2") == (
        "https://ap-northeast-2.console.aws.amazon.com/dynamodbv2/home?region=ap-northeast-2"
        "#table?name=churn_20260101"
    )


def test_mls_model_url_fills_only_its_placeholders() -> None:
    template = "https://mls.example.com/{env}/models/{model_id}?v={version}&n={name}"
    url = mls_model_url(template, model_id=12, name="churn model", version="v2", env="prd")
    assert url == "https://mls.example.com/prd/models/12?v=v2&n=churn%20model"
    assert mls_model_url(None, model_id=1) is None
    assert mls_model_url("", model_id=1) is None
    assert mls_model_url("javascript:alert(1)", model_id=1) is None
    assert mls_model_url("https://mls/{name}", model_id=1) is None  # a value it names is unknown
    # No str.format: attribute and index lookups stay text.
    assert mls_model_url("https://mls/{model_id.__class__}", model_id=1) == "https://mls/{model_id.__class__}"


def test_persist_pushes_the_whole_url_under_the_links_xcom_key() -> None:
    ti = FakeTI()
    SageMakerModelPackageLink.persist({"ti": ti}, "https://console/x")
    PredictionTableLink.persist({"ti": ti}, None)  # nothing known: nothing pushed
    assert ti.pushed == {SageMakerModelPackageLink().xcom_key: "https://console/x"}
    assert len({link.key for link in ALL_LINKS}) == len(ALL_LINKS)
    assert all(link().xcom_key == link.key for link in ALL_LINKS)


def test_a_finishing_task_reads_its_links_without_a_missing_xcom_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Airflow 3 asks every link of a finishing task in its worker (``ti_key`` is the running task
    instance): a pushed link is answered from this process, a link never pushed is absent ("")
    without the single-XCom lookup that logs a missing XCom at ERROR."""
    from airflow.providers.common.compat import sdk

    asked: list[str] = []

    class XCom:
        @staticmethod
        def get_all(**kwargs: Any) -> None:
            asked.append(f"get_all {kwargs['key']}")
            return None  # what Airflow 3 returns for no value

        @staticmethod
        def get_value(**kwargs: Any) -> Any:
            asked.append(f"get_value {kwargs['key']}")
            raise AssertionError("the lookup that logs 'XCom not found'")

    monkeypatch.setattr(sdk, "XCom", XCom)
    ti = FakeTI()
    ti.dag_id, ti.task_id, ti.run_id, ti.map_index = "d", "t", "r", -1  # type: ignore[attr-defined]
    RegistryArtifactLink.persist({"ti": ti}, "https://s3/x")
    assert RegistryArtifactLink().get_link(None, ti_key=ti) == "https://s3/x"
    assert MLSModelLink().get_link(None, ti_key=ti) == ""
    assert asked == ["get_all mls_link_mls_model"]


def test_tasks_carry_their_links() -> None:
    from airflow_provider_mls.operators.mls import CreateManualModelOperator, DeleteModelOperator
    from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
    from airflow_provider_mls.operators.prediction_table import (
        CreatePredictionTableOperator,
        LoadPredictionTableOperator,
    )
    from airflow_provider_mls.operators.sagemaker_registry import (
        DeployModelPackageToMLSOperator,
        UpdateModelPackageOperator,
    )
    from airflow_provider_mls.sensors.sagemaker_registry import ModelPackageApprovedSensor

    def names(cls: type) -> set[str]:
        return {link.name for link in cls.operator_extra_links}

    assert names(CreateManualModelOperator) == names(DeleteModelOperator) == {"MLS Model"}
    assert names(DeployModelPackageToMLSOperator) == {"MLS Model", "SageMaker Model Package"}
    assert (
        names(UpdateModelPackageOperator) == names(ModelPackageApprovedSensor) == {"SageMaker Model Package"}
    )
    assert names(UploadModelToRegistryOperator) == {"Registry Artifact (S3)"}
    assert (
        names(CreatePredictionTableOperator)
        == names(LoadPredictionTableOperator)
        == {"Prediction Table (DynamoDB)"}
    )


@pytest.fixture
def console_conn(mls_conn: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    import json

    conn = json.loads(mls_conn.conn_json())
    conn["extra"]["console_url"] = "https://mls.example.com/models/{model_id}?v={version}"
    monkeypatch.setenv("AIRFLOW_CONN_MLS_CONSOLE", json.dumps(conn))
    return "mls_console"


def test_a_deploy_persists_the_mls_model_link_when_the_connection_names_a_console(console_conn: str) -> None:
    import uuid

    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    ti = FakeTI()
    op = CreateManualModelOperator(
        task_id="deploy", name=f"links_{uuid.uuid4().hex[:8]}", version="v1", mls_conn_id=console_conn
    )
    model = op.execute({"ti": ti})
    assert ti.pushed[MLSModelLink.key] == f"https://mls.example.com/models/{model['id']}?v=v1"


def test_no_console_url_no_mls_link(mls_conn: Any) -> None:
    import uuid

    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    ti = FakeTI()
    CreateManualModelOperator(task_id="deploy", name=f"links_{uuid.uuid4().hex[:8]}", version="v1").execute(
        {"ti": ti}
    )
    assert MLSModelLink.key not in ti.pushed


def test_the_approval_sensor_persists_its_link_before_it_waits(
    mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pending version: the first check says "waiting", and the link is already there."""
    import uuid

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook
    from airflow_provider_mls.sensors.sagemaker_registry import ModelPackageApprovedSensor

    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    registry = SageMakerModelRegistryHook(aws_conn_id=None)
    group = f"links-{uuid.uuid4().hex[:10]}"
    registry.ensure_group(group)
    arn = registry.register_version(group, model_data_url="s3://b/m.tar.gz", image="img:1")["ModelPackageArn"]

    ti = FakeTI()
    sensor = ModelPackageApprovedSensor(task_id="approved", model_package_arn=arn, aws_conn_id=None)
    assert sensor.poke({"ti": ti}) is False
    assert ti.pushed[SageMakerModelPackageLink.key] == model_package_url(arn)


def test_registry_and_table_links_are_persisted_by_their_tasks(
    mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
    from airflow_provider_mls.operators.prediction_table import (
        CreatePredictionTableOperator,
        LoadPredictionTableOperator,
    )

    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", mls_server.conn_json())
    for name, value in mls_server.aws_env().items():
        monkeypatch.setenv(name, value)
    region = mls_server.aws_env().get("AWS_DEFAULT_REGION", "us-east-1")
    name = f"links_{uuid.uuid4().hex[:8]}"

    ti = FakeTI()
    upload = UploadModelToRegistryOperator(
        task_id="upload",
        name=name,
        version="v1",
        model_bytes=b"model",
        model_lib="sklearn",
        model_lib_version="1.3.0",
        features=["a"],
        aws_conn_id=None,
    )
    result = upload.execute({"ti": ti})
    assert ti.pushed[RegistryArtifactLink.key] == registry_artifact_url(
        result["bucket"], f"{name}/v1", region
    )

    ti = FakeTI()
    CreatePredictionTableOperator(task_id="create", table=name, aws_conn_id=None).execute({"ti": ti})
    LoadPredictionTableOperator(
        task_id="load", table=name, rows=[{"user_id": "u1"}], aws_conn_id=None
    ).execute({"ti": ti})
    assert ti.pushed[PredictionTableLink.key] == prediction_table_url(name, region)
