"""The AWS tasks' own logic, hooks replaced: the registry upload, the prediction tables, the SageMaker
Model Registry update and deploy, and the approval sensor.

The hooks' own validation (a model card against its schema, a row's key attributes, ...) and their
calls to AWS are the server-backed tests' (tests/aws, on moto); here the task's side: its arguments,
what it hands to the hook, its XCom values and links, fail-fast and retryable errors.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)

from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
)
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import (
    CreatePredictionTableOperator,
    DropPredictionTableOperator,
    LoadPredictionTableOperator,
)
from airflow_provider_mls.operators.sagemaker_registry import (
    DeployModelPackageToMLSOperator,
    UpdateModelPackageOperator,
)
from airflow_provider_mls.sensors.sagemaker_registry import ModelPackageApprovedSensor
from airflow_provider_mls.triggers.sagemaker_registry import ModelPackageApprovalTrigger

from .fakes import (
    FakeMLSHook,
    FakeModelRegistry,
    FakeSageMakerRegistry,
    FakeStore,
    FakeTables,
    context,
    package,
)

ARN = package()["ModelPackageArn"]
CARD = {"model_overview": {"model_creator": "ana"}, "intended_uses": {"purpose_of_model": "churn"}}


def run(op: Any, ctx: dict[str, Any] | None = None, **hooks: Any) -> Any:
    for attribute, hook in hooks.items():
        setattr(op, attribute, hook)
    return op.execute(ctx if ctx is not None else context(op))


def cause_of(op: Any, ctx: dict[str, Any] | None = None, **hooks: Any) -> BaseException:
    with pytest.raises(AirflowFailException) as err:
        run(op, ctx, **hooks)
    assert err.value.__cause__ is not None
    return err.value.__cause__


def field_of(op: Any, **hooks: Any) -> str:
    cause = cause_of(op, **hooks)
    assert isinstance(cause, MLSValidationError), cause
    return cause.field


# ---- UploadModelToRegistryOperator ------------------------------------------------------------------


def upload(**kwargs: Any) -> UploadModelToRegistryOperator:
    args = {
        "name": "churn",
        "version": "v1",
        "model_lib": "sklearn",
        "model_lib_version": "1.5.0",
        "features": "age,tenure",
        "model_bytes": b"joblib-bytes",
    }
    return UploadModelToRegistryOperator(task_id="upload", **{**args, **kwargs})


def test_upload_hands_the_model_and_meta_to_the_registry_and_pushes_each_key() -> None:
    registry = FakeModelRegistry()
    op = upload(model_meta_extra='{"performance": {"auc": 0.9}}', overwrite="false")
    ctx = context(op)
    result = run(op, ctx, registry=registry)
    assert registry.calls == [
        (
            "put_version",
            ("churn", "v1", b"joblib-bytes"),
            {
                "model_lib": "sklearn",
                "model_lib_version": "1.5.0",
                "features": "age,tenure",
                "extra": {"performance": {"auc": 0.9}},
                "overwrite": False,
                "writer": None,
            },
        )
    ]
    assert set(result) == {"bucket", "model_uri", "meta_uri", "model_data", "model_meta", "size"}
    assert result["model_meta"]["performance"] == {"auc": 0.9}
    pushed = ctx["ti"].xcoms
    assert {k: pushed[k] for k in result} == result  # upload.output["model_meta"] is the dict itself
    assert pushed["mls_link_registry_artifact"] == (
        "https://s3.console.aws.amazon.com/s3/buckets/mls-model-registry-stg?prefix=churn/v1/&region=us-east-1"
    )


def test_upload_from_a_path_and_without_xcom_push(tmp_path: Any) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"m")
    registry = FakeModelRegistry()
    op = upload(model_bytes=None, model_path=str(path), do_xcom_push=False)
    ctx = context(op)
    run(op, ctx, registry=registry)
    assert registry.calls[0][1][2] == str(path)
    assert [k for k in ctx["ti"].xcoms if not k.startswith("mls_link_")] == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_path": "/tmp/x"}, "model_path"),  # and model_bytes
        ({"model_bytes": None}, "model_path"),
        ({"model_bytes": None, "model_path": " "}, "model_path"),
        ({"model_bytes": b""}, "model_bytes"),
        ({"model_bytes": "text, not bytes"}, "model_bytes"),
        ({"model_meta_extra": "{not json"}, "model_meta_extra"),
        ({"model_meta_extra": [1]}, "model_meta_extra"),
        ({"overwrite": "maybe"}, "overwrite"),
    ],
)
def test_upload_bad_input_names_the_field_before_any_call(kwargs: dict[str, Any], field: str) -> None:
    registry = FakeModelRegistry()
    assert field_of(upload(**kwargs), registry=registry) == field
    assert registry.calls == []


@pytest.mark.parametrize(
    ("hook_field", "model", "field"),
    [
        ("model", {}, "model_bytes"),
        ("model", {"model_bytes": None, "model_path": "/m.joblib"}, "model_path"),
        ("model_meta.owner", {}, "model_meta_extra.owner"),
        ("features[1]", {}, "features[1]"),
    ],
)
def test_upload_names_the_hooks_errors_by_the_operators_arguments(
    hook_field: str, model: dict[str, Any], field: str
) -> None:
    registry = FakeModelRegistry()
    registry.fail("put_version", MLSValidationError(hook_field, "is not right"))
    cause = cause_of(upload(**model), registry=registry)
    assert isinstance(cause, MLSValidationError) and (cause.field, cause.message) == (
        field,
        f"{field}: is not right",
    )


def test_upload_an_existing_version_fails_at_once() -> None:
    registry = FakeModelRegistry()
    registry.files[("churn", "v1")] = {"model.joblib": None, "model.json": None}
    assert isinstance(cause_of(upload(), registry=registry), MLSConflictError)
    assert run(upload(overwrite=True), registry=registry)["bucket"] == "mls-model-registry-stg"


def test_upload_retry_returns_the_upload_its_earlier_try_recorded() -> None:
    store, registry = FakeStore(), FakeModelRegistry()
    first = upload()
    result = run(first, context(first, store=store), registry=registry)
    assert registry.called("put_version")[0][1]["writer"] is not None  # a token of this task's upload
    retry = upload()
    assert run(retry, context(retry, try_number=2, store=store), registry=registry) == result
    assert len(registry.called("put_version")) == 1


def test_upload_retry_finishes_only_its_own_half_written_upload() -> None:
    store, registry = FakeStore(), FakeModelRegistry()
    registry.fail("put_version", MLSServerError("slow down", code=503))
    first = upload()
    with pytest.raises(MLSServerError):  # transient: Airflow's retries apply
        run(first, context(first, store=store), registry=registry)
    token = registry.called("put_version")[0][1]["writer"]
    registry.failures.clear()
    registry.files[("churn", "v1")] = {"model.joblib": token}  # its model.joblib was written
    retry = upload()
    run(retry, context(retry, try_number=2, store=store), registry=registry)
    again = registry.called("put_version")[1][1]
    assert (again["overwrite"], again["writer"]) == (True, token)  # over its own files only


def test_upload_retry_does_not_overwrite_another_writers_files() -> None:
    store, registry = FakeStore(), FakeModelRegistry()
    registry.fail("put_version", MLSServerError("slow down", code=503))
    first = upload()
    with pytest.raises(MLSServerError):
        run(first, context(first, store=store), registry=registry)
    registry.failures.clear()
    registry.files[("churn", "v1")] = {"model.joblib": "another-writer", "model.json": "another-writer"}
    retry = upload()
    assert isinstance(
        cause_of(retry, context(retry, try_number=2, store=store), registry=registry), MLSConflictError
    )
    assert len(registry.called("put_version")) == 1


# ---- the prediction table operators ---------------------------------------------------------------------


def test_create_table_hands_its_keys_to_the_hook_and_links_the_table() -> None:
    tables = FakeTables()
    op = CreatePredictionTableOperator(task_id="c", table="scores", sort_key="", if_exists="skip")
    ctx = context(op)
    result = run(op, ctx, tables=tables)
    assert tables.calls == [
        (
            "create_table",
            ("scores",),
            {
                "partition_key": "user_id",
                "partition_key_type": "S",
                "sort_key": None,
                "sort_key_type": "S",
                "if_exists": "skip",
            },
        )
    ]
    assert result["table"] == "scores" and result["status"] == "ACTIVE"
    assert ctx["ti"].xcoms["mls_link_prediction_table"] == (
        "https://us-east-1.console.aws.amazon.com/dynamodbv2/home?region=us-east-1#table?name=scores"
    )


def test_create_table_bad_input_from_the_hook_fails_at_once() -> None:
    tables = FakeTables()
    tables.fail("create_table", MLSValidationError("partition_key_type", "expected one of S, N, B, got 'X'"))
    op = CreatePredictionTableOperator(task_id="c", table="scores", partition_key_type="X")
    assert field_of(op, tables=tables) == "partition_key_type"


ROWS = [{"user_id": "a", "score": 0.5}, {"user_id": "b", "score": 0.7}]


@pytest.mark.parametrize("rows", [ROWS, '[{"user_id": "a", "score": 0.5}, {"user_id": "b", "score": 0.7}]'])
def test_load_rows_from_a_list_or_its_json(rows: Any) -> None:
    tables = FakeTables()
    op = LoadPredictionTableOperator(task_id="l", table="scores", rows=rows, batch_size=10)
    assert run(op, tables=tables) == {"table": "scores", "rows": 2}
    assert tables.calls == [("load_rows", ("scores", ROWS), {"batch_size": 10, "max_attempts": 8})]


def test_load_a_file_with_its_format_and_types(tmp_path: Any) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("user_id,score\na,0.5\nb,0.7\nc,0.1\n", encoding="utf-8")
    tables = FakeTables()
    op = LoadPredictionTableOperator(
        task_id="l", table="scores", rows_path=str(path), file_format="csv", column_types={"score": "N"}
    )
    assert run(op, tables=tables) == {"table": "scores", "rows": 3}
    assert tables.calls == [
        (
            "load_file",
            ("scores", str(path)),
            {"file_format": "csv", "column_types": {"score": "N"}, "batch_size": 25, "max_attempts": 8},
        )
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "rows"),
        ({"rows": [], "rows_path": "/tmp/x.csv"}, "rows"),
        ({"rows": "{not json"}, "rows"),
        ({"rows": {"user_id": "a"}}, "rows"),
        ({"rows": "a string"}, "rows"),
        ({"rows": ROWS, "column_types": {"score": "N"}}, "file_format"),
        ({"rows": ROWS, "file_format": "csv"}, "file_format"),
        ({"rows_path": "  "}, "rows_path"),
    ],
)
def test_load_bad_input_names_the_field_and_writes_nothing(kwargs: dict[str, Any], field: str) -> None:
    tables = FakeTables()
    assert (
        field_of(LoadPredictionTableOperator(task_id="l", table="scores", **kwargs), tables=tables) == field
    )
    assert [name for name in tables.names if name.startswith("load_")] == []


def test_load_names_a_bad_file_by_the_operators_argument() -> None:
    tables = FakeTables()
    tables.fail("load_file", MLSValidationError("path", "'/no/such.csv' is not a readable file"))
    op = LoadPredictionTableOperator(task_id="l", table="scores", rows_path="/no/such.csv")
    cause = cause_of(op, tables=tables)
    assert (
        isinstance(cause, MLSValidationError)
        and str(cause) == "rows_path: '/no/such.csv' is not a readable file"
    )


class FailingMidway(FakeTables):
    """Commits ``committed`` rows, then loses the connection (a transient error)."""

    def __init__(self, committed: int) -> None:
        super().__init__()
        self.committed = committed

    def load_rows(self, table: str, rows: Any, **kwargs: Any) -> int:
        rows = list(rows)
        self.calls.append(("load_rows", (table, rows), kwargs))
        if self.committed:
            kwargs["on_committed"](self.committed)
            raise MLSServerError("connection reset", code=503)
        return len(rows) - kwargs.get("skip_rows", 0)


def test_a_retried_load_reads_past_the_rows_its_earlier_try_committed() -> None:
    store, tables = FakeStore(), FailingMidway(committed=1)
    first = LoadPredictionTableOperator(task_id="l", table="scores", rows=ROWS)
    with pytest.raises(MLSServerError):  # retryable
        run(first, context(first, store=store), tables=tables)
    assert tables.calls[0][2]["skip_rows"] == 0
    tables.committed = 0
    retry = LoadPredictionTableOperator(task_id="l", table="scores", rows=ROWS)
    run(retry, context(retry, try_number=2, store=store), tables=tables)
    assert tables.calls[1][2]["skip_rows"] == 1
    other = LoadPredictionTableOperator(task_id="l", table="scores", rows=ROWS[:1])  # another load
    run(other, context(other, try_number=3, store=store), tables=tables)
    assert tables.calls[2][2]["skip_rows"] == 0


@pytest.mark.parametrize("ignore", [True, "True", "true"])
def test_drop_a_missing_table_with_ignore_missing(ignore: Any) -> None:
    tables = FakeTables()
    assert run(
        DropPredictionTableOperator(task_id="d", table="gone", ignore_missing=ignore), tables=tables
    ) == {
        "table": "gone",
        "dropped": False,
    }
    assert tables.calls == [("drop_table", ("gone",), {"ignore_missing": True})]


def test_drop_a_missing_table_fails_at_once_by_default_and_bad_flags_name_the_field() -> None:
    assert isinstance(
        cause_of(DropPredictionTableOperator(task_id="d", table="gone"), tables=FakeTables()),
        MLSNotFoundError,
    )
    tables = FakeTables()
    assert (
        field_of(DropPredictionTableOperator(task_id="d", table="x", ignore_missing="yes"), tables=tables)
        == "ignore_missing"
    )
    assert tables.calls == []


def test_drop_an_existing_table() -> None:
    tables = FakeTables()
    tables.rows["scores"] = list(ROWS)
    assert run(DropPredictionTableOperator(task_id="d", table="scores"), tables=tables) == {
        "table": "scores",
        "dropped": True,
    }


# ---- UpdateModelPackageOperator ---------------------------------------------------------------------


def test_update_by_arn_validates_then_updates_and_returns_the_new_state() -> None:
    registry = FakeSageMakerRegistry(package(card=CARD, metadata={"owner": "ana", "old": "x"}))
    op = UpdateModelPackageOperator(
        task_id="u",
        model_package_arn=ARN,
        approval_status="Approved",
        approval_description="ok by ana",
        customer_metadata={"auc": "0.91"},
        remove_metadata_keys=["old"],
    )
    ctx = context(op)
    result = run(op, ctx, registry=registry)
    changes = {
        "remove_metadata_keys": ("old",),
        "approval_status": "Approved",
        "approval_description": "ok by ana",
        "customer_metadata": {"auc": "0.91"},
    }
    assert registry.calls == [("validate_update", (), changes), ("update_version", (ARN,), changes)]
    assert result == {
        "arn": ARN,
        "group": "churn",
        "version": 3,
        "approval_status": "Approved",
        "approval_description": "ok by ana",
        "customer_metadata": {"owner": "ana", "auc": "0.91"},
        "model_card_status": "Draft",
        "model_card_sections": ["intended_uses", "model_overview"],
    }
    assert (
        ctx["ti"]
        .xcoms["mls_link_sagemaker_model_package"]
        .endswith("#/model-registry/model-package-groups/churn/versions/3")
    )


def test_update_by_group_and_version_number_validates_before_the_lookup() -> None:
    registry = FakeSageMakerRegistry(package())
    op = UpdateModelPackageOperator(
        task_id="u", model_package_group="churn", model_package_version="3", approval_status="Rejected"
    )
    assert run(op, registry=registry)["approval_status"] == "Rejected"
    assert registry.names == ["validate_update", "describe_version", "update_version"]
    assert registry.called("describe_version")[0] == ((None,), {"group": "churn", "version": 3})


def test_update_bad_changes_fail_before_any_aws_call() -> None:
    registry = FakeSageMakerRegistry(package())
    registry.invalid = MLSValidationError("model_card_content.intended_uses", "expected an object")
    op = UpdateModelPackageOperator(
        task_id="u", model_package_group="churn", model_package_version=3, model_card_content={}
    )
    assert field_of(op, registry=registry) == "model_card_content.intended_uses"
    assert registry.names == ["validate_update"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_package_arn": ARN}, "approval_status"),  # nothing to update
        (
            {"model_package_arn": ARN, "model_package_group": "churn", "approval_status": "Approved"},
            "model_package_arn",
        ),
        ({"model_package_arn": "churn/3", "approval_status": "Approved"}, "model_package_arn"),
        ({"approval_status": "Approved"}, "model_package_group"),
        (
            {"model_package_group": " ", "model_package_version": 3, "approval_status": "Approved"},
            "model_package_group",
        ),
        ({"model_package_group": "churn", "approval_status": "Approved"}, "model_package_version"),
        (
            {"model_package_group": "churn", "model_package_version": 0, "approval_status": "Approved"},
            "model_package_version",
        ),
        (
            {"model_package_group": "churn", "model_package_version": "x", "approval_status": "Approved"},
            "model_package_version",
        ),
    ],
)
def test_update_bad_reference_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    registry = FakeSageMakerRegistry(package())
    assert field_of(UpdateModelPackageOperator(task_id="u", **kwargs), registry=registry) == field
    assert registry.calls == []


def test_update_a_version_not_in_the_group_fails_at_once() -> None:
    op = UpdateModelPackageOperator(
        task_id="u", model_package_group="churn", model_package_version=9, approval_status="Approved"
    )
    assert isinstance(cause_of(op, registry=FakeSageMakerRegistry(package())), MLSNotFoundError)


# ---- DeployModelPackageToMLSOperator ----------------------------------------------------------------


def deploy(registry: FakeSageMakerRegistry, hook: FakeMLSHook, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    op = DeployModelPackageToMLSOperator(task_id="deploy", name="churn", **kwargs)
    ctx = context(op)
    return run(op, ctx, registry=registry, hook=hook), ctx


def test_deploy_an_approved_version_as_a_manual_model() -> None:
    registry = FakeSageMakerRegistry(
        package(status="Approved", card=CARD, metadata={"owner": "ana"}, description="ok")
    )
    hook = FakeMLSHook()
    result, ctx = deploy(
        registry, hook, model_package_arn=ARN, model_meta={"team": "growth"}, model_lib="xgboost"
    )
    ((_, sent),) = hook.called("create_manual_model")
    assert (sent["name"], sent["version"], sent["model_lib"]) == ("churn", "v3", "xgboost")
    assert sent["model_data"] == "s3://models/churn/3/model.tar.gz"
    assert sent["model_meta"] == {
        "team": "growth",
        "owner": "ana",
        "model_card": CARD,
        "model_package": {"arn": ARN, "group": "churn", "version": 3, "approval_description": "ok"},
    }
    assert (result["name"], result["version"]) == ("churn", "v3")
    assert ctx["ti"].xcoms["mls_link_sagemaker_model_package"].endswith("versions/3")
    assert ctx["ti"].xcoms["mls_link_mls_model"] == f"https://mls.example/models/{result['id']}"


def test_deploy_by_group_alone_takes_the_newest_approved_version() -> None:
    registry = FakeSageMakerRegistry(
        package(2, status="Approved"), package(3, status="Approved"), package(4, status="Rejected")
    )
    hook = FakeMLSHook()
    result, _ = deploy(
        registry, hook, model_package_group="churn", version="prod", model_data="s3://elsewhere/m"
    )
    assert registry.names == ["latest_approved_version", "describe_version"]
    assert registry.called("describe_version")[0][0] == (package(3)["ModelPackageArn"],)
    ((_, sent),) = hook.called("create_manual_model")
    assert (sent["version"], sent["model_data"]) == ("prod", "s3://elsewhere/m")
    assert result["version"] == "prod"


def test_deploy_by_group_and_number() -> None:
    registry = FakeSageMakerRegistry(package(2, status="Approved"), package(3, status="Approved"))
    result, _ = deploy(registry, FakeMLSHook(), model_package_group="churn", model_package_version=2)
    assert result["version"] == "v2"


@pytest.mark.parametrize(
    ("versions", "kwargs", "field"),
    [
        ([package()], {"model_package_arn": ARN}, "model_package_arn"),  # pending: not approved
        (
            [package(status="Rejected")],
            {"model_package_group": "churn"},
            "model_package_group",
        ),  # none approved
        ([package(status="Approved", model_data=None)], {"model_package_arn": ARN}, "model_data"),
        (
            [package(status="Approved")],
            {"model_package_arn": ARN, "model_package_version": 3},
            "model_package_arn",
        ),
        ([package(status="Approved")], {}, "model_package_group"),
        ([package(status="Approved")], {"model_package_arn": ARN, "if_exists": "replace"}, "if_exists"),
    ],
)
def test_deploy_refuses_and_creates_nothing(
    versions: list[dict[str, Any]], kwargs: dict[str, Any], field: str
) -> None:
    hook = FakeMLSHook()
    op = DeployModelPackageToMLSOperator(task_id="deploy", name="churn", **kwargs)
    assert field_of(op, registry=FakeSageMakerRegistry(*versions), hook=hook) == field
    assert hook.models == {}


# ---- ModelPackageApprovedSensor ---------------------------------------------------------------------


def approved_sensor(registry: FakeSageMakerRegistry, **kwargs: Any) -> ModelPackageApprovedSensor:
    op = ModelPackageApprovedSensor(task_id="wait", **{"model_package_arn": ARN, **kwargs})
    op.registry = registry
    return op


def test_poke_waits_until_approved_with_one_call_per_check() -> None:
    registry = FakeSageMakerRegistry(package())
    op = approved_sensor(registry)
    ctx = context(op)
    assert op.poke(ctx) is False
    registry.versions[ARN].update(ModelApprovalStatus="Approved", ApprovalDescription="ok")
    result = op.poke(ctx)
    assert isinstance(result, PokeReturnValue) and result.is_done
    assert result.xcom_value == {"arn": ARN, "status": "Approved", "description": "ok"}
    assert registry.names == ["approval", "approval"]
    assert ctx["ti"].xcoms["mls_link_sagemaker_model_package"].endswith("versions/3")


def test_poke_by_group_and_version_resolves_the_arn_once() -> None:
    registry = FakeSageMakerRegistry(package())
    op = approved_sensor(
        registry, model_package_arn=None, model_package_group="churn", model_package_version="3"
    )
    ctx = context(op)
    op.poke(ctx)
    op.poke(ctx)
    assert registry.names == ["describe_version", "approval", "approval"]


@pytest.mark.parametrize("soft_fail", [False, True])
def test_rejected_fails_at_once_with_its_description(soft_fail: bool) -> None:
    registry = FakeSageMakerRegistry(package(status="Rejected", description="auc too low"))
    op = approved_sensor(registry, soft_fail=soft_fail)
    with pytest.raises(
        AirflowSkipException if soft_fail else AirflowFailException, match="Rejected: auc too low"
    ):
        op.poke(context(op))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_package_arn": "not-an-arn"}, "model_package_arn"),
        ({"model_package_group": "churn"}, "model_package_arn"),
        ({"model_package_arn": None, "model_package_group": "churn"}, "model_package_version"),
        ({"model_package_arn": None}, "model_package_group"),
    ],
)
def test_bad_reference_fails_at_once_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    registry = FakeSageMakerRegistry(package())
    op = approved_sensor(registry, **kwargs)
    with pytest.raises(AirflowFailException, match=f"MLSValidationError: {field}: "):
        op.poke(context(op))
    assert registry.calls == []


def test_deferrable_pending_defers_to_the_approval_trigger() -> None:
    registry = FakeSageMakerRegistry(package())
    op = approved_sensor(
        registry, deferrable=True, poke_interval=45, timeout=3600, aws_conn_id=None, region_name="eu-west-1"
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(op))
    assert registry.names == ["approval"]
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    assert isinstance(trigger, ModelPackageApprovalTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mls.triggers.sagemaker_registry.ModelPackageApprovalTrigger"
    deadline = kwargs.pop("deadline")
    assert before + 3600 <= deadline <= time.time() + 3600
    assert kwargs == {
        "model_package_arn": ARN,
        "aws_conn_id": None,
        "region_name": "eu-west-1",
        "endpoint_url": None,
        "poke_interval": 45.0,
    }


def test_deferrable_already_approved_returns_without_deferring() -> None:
    registry = FakeSageMakerRegistry(package(status="Approved"))
    op = approved_sensor(registry, deferrable=True)
    assert op.execute(context(op))["status"] == "Approved"


def test_deferrable_without_time_left_times_out_without_deferring() -> None:
    op = approved_sensor(FakeSageMakerRegistry(package()), deferrable=True, timeout=0)
    with pytest.raises(AirflowSensorTimeout):
        op.execute(context(op))


@pytest.mark.parametrize(
    ("event", "raised", "match"),
    [
        (
            {"status": "failed", "message": "model package x was Rejected: no"},
            AirflowFailException,
            "Rejected",
        ),
        ({"status": "timeout", "message": "timed out waiting"}, AirflowSensorTimeout, "timed out waiting"),
        ({"status": "error", "message": "EndpointConnectionError: boom"}, MLSError, "trigger error: .*boom"),
        ({"status": "bogus", "message": "?"}, MLSError, "unknown status 'bogus'"),
        (None, MLSError, "unexpected event"),
    ],
)
def test_execute_complete_on_each_event(event: Any, raised: type[Exception], match: str) -> None:
    registry = FakeSageMakerRegistry()
    op = approved_sensor(registry, deferrable=True)
    with pytest.raises(raised, match=match):
        op.execute_complete(context(op), event)
    value = {"arn": ARN, "status": "Approved", "description": "ok"}
    assert op.execute_complete(context(op), {"status": "success", "message": "ok", "value": value}) == value
    assert registry.calls == []  # the event decides: no call
