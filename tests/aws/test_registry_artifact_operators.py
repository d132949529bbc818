"""UploadModelToRegistryOperator and the prediction table operators against a real moto server over HTTP.

Operators run through ``execute(context={})``, as in ``test_registry_operators.py``; the MLS side (for
the XCom handed to ``CreateManualModelOperator``) is the shared local MLS server (``mls_conn``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls._compat import AirflowFailException
from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.hooks.prediction_table import PredictionTableHook
from airflow_provider_mls.operators.mls import CreateManualModelOperator
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import (
    CreatePredictionTableOperator,
    DropPredictionTableOperator,
    LoadPredictionTableOperator,
)

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow.models.dag import DAG  # type: ignore[assignment,no-redef]

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

UPLOAD_ARGS: dict[str, Any] = {"model_lib": "sklearn", "model_lib_version": "1.5.2", "features": "age,tenure"}


@pytest.fixture
def bucket(moto_url: str, aws_env: None) -> str:
    import boto3

    name = f"reg-op-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"\x80\x04fitted-model")
    return path


@pytest.fixture
def model_name() -> str:
    return f"op-{uuid.uuid4().hex[:10]}"


def upload_op(moto_url: str, bucket: str, **kwargs: Any) -> UploadModelToRegistryOperator:
    args = {"task_id": "upload", "mls_conn_id": None, "bucket": bucket, "endpoint_url": moto_url}
    return UploadModelToRegistryOperator(**{**args, **UPLOAD_ARGS, **kwargs})


# ---- UploadModelToRegistryOperator ----------------------------------------------------------------


def test_upload_returns_a_json_xcom(moto_url: str, bucket: str, model_file: Path, model_name: str) -> None:
    op = upload_op(
        moto_url,
        bucket,
        name=model_name,
        version="v1",
        model_path=str(model_file),
        model_meta_extra={"metric": "auc", "performance": {"auc": 0.87}},
    )
    result = op.execute({})
    assert json.loads(json.dumps(result)) == result
    assert result == {
        "bucket": bucket,
        "model_uri": f"s3://{bucket}/{model_name}/v1/model.joblib",
        "meta_uri": f"s3://{bucket}/{model_name}/v1/model.json",
        "model_data": f"/models/{model_name}/v1/model.joblib",
        "model_meta": {
            "name": model_name,
            "version": "v1",
            "model_lib": "sklearn",
            "model_lib_version": "1.5.2",
            "model_data": f"/models/{model_name}/v1/model.joblib",
            "features": ["age", "tenure"],
            "metric": "auc",
            "performance": {"auc": 0.87},
        },
        "size": model_file.stat().st_size,
    }


def test_rendered_templates(moto_url: str, bucket: str, model_file: Path, model_name: str) -> None:
    op = upload_op(
        moto_url,
        "{{ params.bucket }}",
        name="{{ params.name }}",
        version="{{ ds_nodash }}",
        model_path="{{ params.path }}",
        features="{{ params.features }}",
        model_meta_extra='{"model_info": {"trained_on": "{{ ds }}"}}',
        overwrite="{{ params.overwrite }}",
    )
    context = {
        "params": {
            "bucket": bucket,
            "name": model_name,
            "path": str(model_file),
            "features": "a,b",
            "overwrite": False,
        },
        "ds": "2024-05-01",
        "ds_nodash": "20240501",
    }
    op.render_template_fields(context)
    assert op.overwrite == "False"  # a rendered template is a string
    result = op.execute({})
    assert result["model_meta"]["model_info"] == {"trained_on": "2024-05-01"}
    assert result["model_meta"]["features"] == ["a", "b"]
    assert result["model_uri"] == f"s3://{bucket}/{model_name}/20240501/model.joblib"


def test_upload_bytes_and_overwrite(moto_url: str, bucket: str, model_name: str) -> None:
    upload_op(moto_url, bucket, name=model_name, version="v1", model_bytes=b"one").execute({})
    with pytest.raises(AirflowFailException, match="MLSConflictError: .*version: .*exists"):
        upload_op(moto_url, bucket, name=model_name, version="v1", model_bytes=b"two").execute({})
    result = upload_op(
        moto_url, bucket, name=model_name, version="v1", model_bytes=b"two", overwrite=True
    ).execute({})
    assert result["size"] == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model_bytes": b"m", "model_path": "/tmp/x"}, "model_path"),
        ({}, "model_path"),
        ({"model_path": "/no/such/model.joblib"}, "model_path"),
        ({"model_bytes": b""}, "model_bytes"),
        ({"model_bytes": b"m", "features": ["a", "a"]}, "features[1]"),
        ({"model_bytes": b"m", "model_lib": "torch"}, "model_lib"),
        ({"model_bytes": b"m", "name": "a/b"}, "name"),
        ({"model_bytes": b"m", "model_meta_extra": {"owner": "x"}}, "model_meta_extra.owner"),
        ({"model_bytes": b"m", "model_meta_extra": "{not json"}, "model_meta_extra"),
        ({"model_bytes": b"m", "model_meta_extra": [1]}, "model_meta_extra"),
        ({"model_bytes": b"m", "overwrite": "maybe"}, "overwrite"),
    ],
)
def test_bad_input_fails_at_once_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    args = {"name": "churn", "version": "v1", **kwargs}
    # Nothing listens on the endpoint: the failure comes before any request.
    op = upload_op("http://127.0.0.1:9", "mls-model-registry", **args)
    with pytest.raises(
        AirflowFailException, match=rf"MLSValidationError: {__import__('re').escape(field)}: "
    ):
        op.execute({})


def test_the_xcom_feeds_create_manual_model(
    moto_url: str, bucket: str, model_file: Path, model_name: str, mls_conn: Any
) -> None:
    """``model_meta`` and ``model_data`` of the XCom go into CreateManualModelOperator as they are (native
    rendering, as with ``render_template_as_native_obj=True``); MLS keeps model.json as the model's meta."""
    result = upload_op(moto_url, bucket, name=model_name, version="v1", model_path=str(model_file)).execute(
        {}
    )

    class TaskInstance:
        def xcom_pull(self, task_ids: str) -> Any:
            assert task_ids == "upload"
            return json.loads(json.dumps(result))

    with DAG("upload_then_create", schedule=None, render_template_as_native_obj=True):
        create = CreateManualModelOperator(
            task_id="create",
            name=model_name,
            version="v1",
            model_lib="{{ ti.xcom_pull(task_ids='upload')['model_meta']['model_lib'] }}",
            model_data="{{ ti.xcom_pull(task_ids='upload')['model_data'] }}",
            model_meta="{{ ti.xcom_pull(task_ids='upload')['model_meta'] }}",
            features="{{ ti.xcom_pull(task_ids='upload')['model_meta']['features'] }}",
        )
    create.render_template_fields({"ti": TaskInstance()})
    assert create.model_meta == result["model_meta"]
    model = create.execute({})
    hook = MLSHook()
    try:
        stored = hook.get_manual_model(id=model["id"])
    finally:
        hook.close()
    assert stored["model_meta"] == result["model_meta"]
    assert stored["model_data"] == f"/models/{model_name}/v1/model.joblib"
    assert stored["model_lib"] == "sklearn"
    assert stored["features"] == "age,tenure"


def test_the_bucket_of_the_mls_connection(
    moto_url: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    import boto3

    bucket = f"reg-op-conn-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=bucket)
    conn = {
        "conn_type": "mls",
        "host": "http://127.0.0.1:9",
        "extra": {"env": "prd", "registry_bucket": bucket},
    }
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", json.dumps(conn))
    op = UploadModelToRegistryOperator(
        task_id="upload",
        name=model_name,
        version="v1",
        model_bytes=b"m",
        endpoint_url=moto_url,
        **UPLOAD_ARGS,
    )
    assert op.execute({})["bucket"] == bucket


# ---- prediction table operators -------------------------------------------------------------------


@pytest.fixture
def table(moto_url: str, aws_env: None) -> Iterator[str]:
    name = f"op-preds-{uuid.uuid4().hex[:10]}"
    yield name
    PredictionTableHook(endpoint_url=moto_url).drop_table(name, ignore_missing=True, wait=False)


def test_create_load_and_drop(moto_url: str, table: str, tmp_path: Path) -> None:
    created = CreatePredictionTableOperator(task_id="create", table=table, endpoint_url=moto_url).execute({})
    assert created == {
        "table": table,
        "arn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}",
        "status": "ACTIVE",
        "created": True,
    }
    again = CreatePredictionTableOperator(
        task_id="create", table=table, if_exists="skip", endpoint_url=moto_url
    )
    assert again.execute({})["created"] is False
    with pytest.raises(AirflowFailException, match="MLSConflictError: .*table: .*exists"):
        CreatePredictionTableOperator(task_id="create", table=table, endpoint_url=moto_url).execute({})

    rows = [{"user_id": f"u{i}", "score": i / 10, "items": [{"id": i}]} for i in range(40)]
    load = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    assert load.execute({}) == {"table": table, "rows": 40}
    csv_file = tmp_path / "more.csv"
    csv_file.write_text("user_id,score\nc1,0.5\nc2,1\n")
    from_file = LoadPredictionTableOperator(
        task_id="load_file",
        table=table,
        rows_path=str(csv_file),
        column_types={"score": "N"},
        endpoint_url=moto_url,
    )
    assert from_file.execute({}) == {"table": table, "rows": 2}
    hook = PredictionTableHook(endpoint_url=moto_url)
    assert hook.count_items(table) == 42 and not hook.is_loading(table)

    drop = DropPredictionTableOperator(task_id="drop", table=table, endpoint_url=moto_url)
    assert drop.execute({}) == {"table": table, "dropped": True}
    with pytest.raises(AirflowFailException, match="MLSNotFoundError: .*table: .*does not exist"):
        drop.execute({})
    again_drop = DropPredictionTableOperator(
        task_id="drop", table=table, ignore_missing="{{ params.ignore }}", endpoint_url=moto_url
    )
    again_drop.render_template_fields({"params": {"ignore": True}})
    assert again_drop.execute({}) == {"table": table, "dropped": False}


def test_load_rows_rendered_as_a_json_string(moto_url: str, table: str) -> None:
    PredictionTableHook(endpoint_url=moto_url).create_table(
        table, partition_key="svc", partition_key_type="N"
    )
    op = LoadPredictionTableOperator(
        task_id="load",
        table="{{ params.table }}",
        rows="{{ params.rows | tojson }}",
        endpoint_url=moto_url,
    )
    op.render_template_fields(
        {"params": {"table": table, "rows": [{"svc": 1, "p": 0.25}, {"svc": 2, "p": 1}]}}
    )
    assert isinstance(op.rows, str)
    assert op.execute({}) == {"table": table, "rows": 2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "rows: give exactly one of rows and rows_path"),
        ({"rows": [], "rows_path": "/tmp/x.csv"}, "rows: give exactly one"),
        ({"rows": "{not json"}, "rows: a string must be a JSON list"),
        ({"rows": {"user_id": "a"}}, "rows: expected a list of rows"),
        ({"rows": [{"user_id": "a"}], "column_types": {"a": "N"}}, "file_format: .*rows_path only"),
        ({"rows": [{"score": 1}]}, r"rows\[0\].user_id: "),
        ({"rows_path": "/no/such/file.csv"}, "rows_path: .*not a readable file"),
        ({"rows": [], "table": "a b"}, "table: expected a DynamoDB table name"),
    ],
)
def test_load_fails_at_once_on_bad_input(
    moto_url: str, table: str, kwargs: dict[str, Any], message: str
) -> None:
    PredictionTableHook(endpoint_url=moto_url).create_table(table)
    op = LoadPredictionTableOperator(task_id="load", **{"table": table, **kwargs}, endpoint_url=moto_url)
    with pytest.raises(AirflowFailException, match=f"MLSValidationError: {message}"):
        op.execute({})


def test_load_into_a_missing_table_fails_at_once(moto_url: str, table: str) -> None:
    op = LoadPredictionTableOperator(
        task_id="load", table=table, rows=[{"user_id": "a"}], endpoint_url=moto_url
    )
    with pytest.raises(AirflowFailException, match="MLSNotFoundError: .*table: .*does not exist"):
        op.execute({})


def test_create_fails_at_once_on_bad_input() -> None:
    op = CreatePredictionTableOperator(
        task_id="create",
        table="preds",
        partition_key_type="X",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",  # else the outcome depends on the AWS variables other tests left
    )
    with pytest.raises(AirflowFailException, match="partition_key_type: expected one of S, N, B"):
        op.execute({})


# ---- templates and imports ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            UploadModelToRegistryOperator,
            {
                "name",
                "version",
                "model_path",
                "model_lib",
                "model_lib_version",
                "features",
                "model_meta_extra",
                "bucket",
            },
        ),
        (CreatePredictionTableOperator, {"table", "partition_key", "sort_key", "if_exists"}),
        (LoadPredictionTableOperator, {"table", "rows", "rows_path", "file_format", "column_types"}),
        (DropPredictionTableOperator, {"table", "ignore_missing"}),
    ],
)
def test_template_fields(cls: type, expected: set[str]) -> None:
    fields = list(cls.template_fields)  # type: ignore[attr-defined]
    assert expected <= set(fields)
    assert {"aws_conn_id", "region_name", "endpoint_url"} <= set(fields)
    assert len(fields) == len(set(fields))


def test_importing_the_operator_modules_does_not_import_boto3(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        import airflow_provider_mls.operators.model_registry
        import airflow_provider_mls.operators.prediction_table
        heavy = sorted(m for m in ("boto3", "botocore", "s3transfer") if m in sys.modules)
        assert not heavy, heavy
        """
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
