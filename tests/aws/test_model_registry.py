"""MLSModelRegistryHook against a real moto server over HTTP (S3, conditional writes included)."""

from __future__ import annotations

import json
import os
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import MLSConflictError, MLSValidationError
from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

if TYPE_CHECKING:
    from pathlib import Path

# Nothing listens here: a hook pointed at it proves that validation happens before any request.
UNREACHABLE = "http://127.0.0.1:9"
META_ARGS: dict[str, Any] = {
    "model_lib": "sklearn",
    "model_lib_version": "1.5.2",
    "features": ["age", "tenure"],
}


def s3(moto_url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1")


def body(client: Any, bucket: str, key: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def exists(client: Any, bucket: str, key: str) -> bool:
    return bool(client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))


@pytest.fixture
def bucket(moto_url: str, aws_env: None) -> str:
    name = f"reg-{uuid.uuid4().hex[:12]}"
    s3(moto_url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def hook(moto_url: str, bucket: str) -> MLSModelRegistryHook:
    return MLSModelRegistryHook(mls_conn_id=None, bucket=bucket, endpoint_url=moto_url)


@pytest.fixture
def model_name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def offline() -> MLSModelRegistryHook:
    return MLSModelRegistryHook(mls_conn_id=None, bucket="mls-model-registry", endpoint_url=UNREACHABLE)


# ---- build_meta -----------------------------------------------------------------------------------


def test_build_meta_has_the_required_keys_and_the_optional_ones(offline: MLSModelRegistryHook) -> None:
    meta = offline.build_meta(
        "churn",
        "v1",
        model_lib="xgboost",
        model_lib_version="2.0.3",
        features=" age, tenure ,plan",
        extra={"class": ["stay", "leave"], "performance": {"auc": 0.91}, "model_info": ("a", 1)},
    )
    assert meta == {
        "name": "churn",
        "version": "v1",
        "model_lib": "xgboost",
        "model_lib_version": "2.0.3",
        "model_data": "/models/churn/v1/model.joblib",
        "features": ["age", "tenure", "plan"],
        "class": ["stay", "leave"],
        "performance": {"auc": 0.91},
        "model_info": ["a", 1],
    }
    json.dumps(meta)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "a/b"}, "name"),
        ({"name": ".."}, "name"),
        ({"name": 3}, "name"),
        ({"version": "."}, "version"),
        ({"version": " v1"}, "version"),
        ({"model_lib": "torch"}, "model_lib"),
        ({"model_lib_version": ""}, "model_lib_version"),
        ({"model_lib_version": 1.5}, "model_lib_version"),
        ({"features": []}, "features"),
        ({"features": ""}, "features[0]"),
        ({"features": "a,,b"}, "features[1]"),
        ({"features": ["a", "a"]}, "features[1]"),
        ({"features": ["a", 1]}, "features[1]"),
        ({"features": ["a,b"]}, "features[0]"),
        ({"features": {"a": 1}}, "features"),
        ({"extra": {"owner": "me"}}, "model_meta.owner"),
        ({"extra": {"performance": {"auc": float("nan")}}}, "model_meta.performance.auc"),
        ({"extra": {"model_info": {"trained": [1, object()]}}}, "model_meta.model_info.trained[1]"),
        ({"extra": ["class"]}, "model_meta"),
    ],
)
def test_build_meta_names_the_bad_field(
    offline: MLSModelRegistryHook, changes: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"name": "churn", "version": "v1", **META_ARGS, **changes}
    with pytest.raises(MLSValidationError) as info:
        offline.build_meta(args.pop("name"), args.pop("version"), **args)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("model", "message"),
    [(b"", "empty"), ("/no/such/model.joblib", "not a readable file"), (123, "expected a file path")],
)
def test_put_version_checks_the_model_before_any_request(
    offline: MLSModelRegistryHook, model: Any, message: str
) -> None:
    with pytest.raises(MLSValidationError, match=message) as info:
        offline.put_version("churn", "v1", model, **META_ARGS)
    assert info.value.field == "model"


def test_put_version_refuses_a_directory_and_an_empty_file(
    offline: MLSModelRegistryHook, tmp_path: Path
) -> None:
    empty = tmp_path / "model.joblib"
    empty.write_bytes(b"")
    for model in (tmp_path, empty, str(empty)):
        with pytest.raises(MLSValidationError) as info:
            offline.put_version("churn", "v1", model, **META_ARGS)
        assert info.value.field == "model"


# ---- put / get / conflict / overwrite -------------------------------------------------------------


def test_put_version_from_a_file_writes_both_objects(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str, tmp_path: Path
) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(b"\x80\x04model-bytes" * 100)
    result = hook.put_version(
        model_name, "v1", path, **META_ARGS, extra={"metric": "auc", "performance": {"auc": 0.8}}
    )
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
            "performance": {"auc": 0.8},
        },
        "size": 1300,
    }
    client = s3(moto_url)
    assert body(client, bucket, f"{model_name}/v1/model.joblib") == path.read_bytes()
    assert json.loads(body(client, bucket, f"{model_name}/v1/model.json")) == result["model_meta"]
    assert hook.get_meta(model_name, "v1") == result["model_meta"]
    assert hook.version_exists(model_name, "v1")
    assert hook.list_versions(model_name) == ["v1"]


def test_get_meta_and_version_exists_of_a_missing_version(
    hook: MLSModelRegistryHook, model_name: str
) -> None:
    assert hook.get_meta(model_name, "v9") is None
    assert not hook.version_exists(model_name, "v9")
    assert hook.list_versions(model_name) == []


def test_an_existing_version_is_a_conflict_naming_version(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str
) -> None:
    hook.put_version(model_name, "v1", b"first", **META_ARGS)
    with pytest.raises(MLSConflictError, match=r"^\[409\] version: .*exists.*overwrite=True"):
        hook.put_version(model_name, "v1", b"second", **META_ARGS)
    assert body(s3(moto_url), bucket, f"{model_name}/v1/model.joblib") == b"first"


def test_a_model_file_without_meta_is_a_conflict_too(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str
) -> None:
    s3(moto_url).put_object(Bucket=bucket, Key=f"{model_name}/v1/model.joblib", Body=b"someone's")
    assert not hook.version_exists(model_name, "v1")
    with pytest.raises(MLSConflictError, match=r"version: .*\(model\.joblib\)"):
        hook.put_version(model_name, "v1", b"mine", **META_ARGS)
    assert body(s3(moto_url), bucket, f"{model_name}/v1/model.joblib") == b"someone's"


def test_overwrite_replaces_both_objects(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str
) -> None:
    hook.put_version(model_name, "v1", b"first", **META_ARGS)
    result = hook.put_version(
        model_name,
        "v1",
        b"second!",
        model_lib="lightgbm",
        model_lib_version="4.3",
        features="x",
        overwrite=True,
    )
    assert result["size"] == 7
    assert body(s3(moto_url), bucket, f"{model_name}/v1/model.joblib") == b"second!"
    assert hook.get_meta(model_name, "v1") == result["model_meta"]
    assert result["model_meta"]["model_lib"] == "lightgbm"


@pytest.mark.parametrize("big", [False, True], ids=["one-put", "multipart"])
def test_a_writer_that_got_there_first_is_never_overwritten(
    hook: MLSModelRegistryHook,
    bucket: str,
    moto_url: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
    big: bool,
) -> None:
    """The existence check passes (as if the other writer came just after it), the real S3 write then
    meets the other writer's object: moto answers the ``If-None-Match: *`` write with 412."""
    client = s3(moto_url)
    client.put_object(Bucket=bucket, Key=f"{model_name}/v1/model.joblib", Body=b"other writer")
    monkeypatch.setattr(hook, "_exists", lambda key: False)
    hook.multipart_threshold = hook.multipart_chunksize = 5 * 1024 * 1024  # S3's smallest part
    model = os.urandom(11 * 1024 * 1024) if big else b"mine"
    with pytest.raises(MLSConflictError, match="version: .*written by someone else meanwhile"):
        hook.put_version(model_name, "v1", model, **META_ARGS)
    assert body(client, bucket, f"{model_name}/v1/model.joblib") == b"other writer"
    assert not exists(client, bucket, f"{model_name}/v1/model.json")
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_big_model_goes_up_in_parts_without_overwrite(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str, tmp_path: Path
) -> None:
    hook.multipart_threshold = hook.multipart_chunksize = 5 * 1024 * 1024
    path = tmp_path / "model.joblib"
    path.write_bytes(os.urandom(11 * 1024 * 1024 + 3))
    result = hook.put_version(model_name, "v1", str(path), **META_ARGS)
    client = s3(moto_url)
    head = client.head_object(Bucket=bucket, Key=f"{model_name}/v1/model.joblib")
    assert head["ETag"].endswith('-3"')  # three parts: 5 + 5 + 1 MiB
    assert body(client, bucket, f"{model_name}/v1/model.joblib") == path.read_bytes()
    assert result["size"] == path.stat().st_size
    # overwrite=True goes through boto3's managed transfer, multipart too
    hook.put_version(model_name, "v1", str(path), **META_ARGS, overwrite=True)
    assert body(client, bucket, f"{model_name}/v1/model.joblib") == path.read_bytes()


# ---- nothing half-written -------------------------------------------------------------------------


def _fail_meta_writes(hook: MLSModelRegistryHook, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fault: the hook's real client, with ``put_object`` of model.json raising (a patched method)."""
    from botocore.exceptions import ClientError

    client = hook.get_conn()
    real_put = client.put_object
    failed: list[str] = []

    def put_object(**kwargs: Any) -> Any:
        if kwargs["Key"].endswith("/model.json"):
            failed.append(kwargs["Key"])
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject")
        return real_put(**kwargs)

    monkeypatch.setattr(client, "put_object", put_object)
    return failed


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failed_meta_write_deletes_the_model_it_wrote(
    hook: MLSModelRegistryHook,
    bucket: str,
    moto_url: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
    overwrite: bool,
) -> None:
    """model.json's PutObject fails (a patched client method; moto cannot be made to fail one write)."""
    failed = _fail_meta_writes(hook, monkeypatch)
    with pytest.raises(Exception, match="injected"):
        hook.put_version(model_name, "v1", b"model", **META_ARGS, overwrite=overwrite)
    assert failed == [f"{model_name}/v1/model.json"]
    assert not exists(s3(moto_url), bucket, f"{model_name}/v1/")
    assert not hook.version_exists(model_name, "v1")


def test_a_failed_meta_write_keeps_a_model_file_that_was_there_before(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overwriting an existing version: the model file was not this call's to delete (patched client method)."""
    hook.put_version(model_name, "v1", b"old", **META_ARGS)
    _fail_meta_writes(hook, monkeypatch)
    with pytest.raises(Exception, match="injected"):
        hook.put_version(model_name, "v1", b"new", **META_ARGS, overwrite=True)
    client = s3(moto_url)
    assert exists(client, bucket, f"{model_name}/v1/model.joblib")
    assert hook.version_exists(model_name, "v1")


# ---- list / delete / connection -------------------------------------------------------------------


def test_list_versions_reads_every_page_and_only_committed_versions(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str
) -> None:
    for version in ("v3", "v1", "v10", "v2"):
        hook.put_version(model_name, version, b"m", **META_ARGS)
    client = s3(moto_url)
    client.put_object(Bucket=bucket, Key=f"{model_name}/half/model.joblib", Body=b"no meta")
    client.put_object(Bucket=bucket, Key=f"{model_name}-other/v7/model.json", Body=b"{}")
    hook.list_page_size = 2
    assert hook.list_versions(model_name) == ["v1", "v10", "v2", "v3"]


def test_delete_version_removes_both_files(
    hook: MLSModelRegistryHook, bucket: str, moto_url: str, model_name: str
) -> None:
    hook.put_version(model_name, "v1", b"m", **META_ARGS)
    assert hook.delete_version(model_name, "v1") is True
    assert not exists(s3(moto_url), bucket, f"{model_name}/v1/")
    assert hook.delete_version(model_name, "v1") is False
    with pytest.raises(MLSValidationError, match="version"):
        hook.delete_version(model_name, "../v1")


def test_test_connection(hook: MLSModelRegistryHook, moto_url: str) -> None:
    assert hook.test_connection() == (True, f"Connected to the MLS model registry s3://{hook.bucket}")
    missing = MLSModelRegistryHook(
        mls_conn_id=None, bucket=f"nope-{uuid.uuid4().hex[:8]}", endpoint_url=moto_url
    )
    ok, message = missing.test_connection()
    assert not ok and "failed" in message


# ---- the bucket -----------------------------------------------------------------------------------


def _mls_conn(monkeypatch: pytest.MonkeyPatch, **extra: Any) -> None:
    """``mls_default`` as a JSON connection; its host is unreachable, so any request to MLS would fail."""
    conn = {"conn_type": "mls", "host": UNREACHABLE, "login": "u", "password": "p", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "mls-model-registry-stg"),  # the default env
        ({"env": "dev"}, "mls-model-registry"),
        ({"env": "stg"}, "mls-model-registry-stg"),
        ({"env": "PRD"}, "mls-model-registry-prd"),
        ({"extra__mls__env": "prd_land"}, "mls-model-registry-prd"),
        ({"env": "stg", "registry_bucket": "my-registry"}, "my-registry"),
        ({"env": "stg", "extra__mls__registry_bucket": "ui-registry"}, "ui-registry"),
    ],
)
def test_the_bucket_comes_from_the_mls_connection(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], expected: str
) -> None:
    _mls_conn(monkeypatch, **extra)
    assert MLSModelRegistryHook(endpoint_url=UNREACHABLE).bucket == expected


def test_an_explicit_bucket_wins_over_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    _mls_conn(monkeypatch, env="stg", registry_bucket="my-registry")
    assert MLSModelRegistryHook(bucket="explicit-bucket").bucket == "explicit-bucket"


@pytest.mark.parametrize(
    ("kwargs", "extra", "field", "message"),
    [
        ({"mls_conn_id": None}, None, "bucket", "give bucket"),
        ({"mls_conn_id": "mls_missing"}, None, "bucket", "does not exist"),
        ({}, {"env": "qa"}, "env", "unknown MLS env"),
        ({}, {"registry_bucket": "Bad_Bucket"}, "bucket", "registry_bucket extra"),
        ({"bucket": "a"}, None, "bucket", "not an S3 bucket name"),
    ],
)
def test_no_usable_bucket_names_the_field(
    monkeypatch: pytest.MonkeyPatch,
    kwargs: dict[str, Any],
    extra: dict[str, str] | None,
    field: str,
    message: str,
) -> None:
    if extra is not None:
        _mls_conn(monkeypatch, **extra)
    with pytest.raises(MLSValidationError, match=message) as info:
        MLSModelRegistryHook(**kwargs).bucket  # noqa: B018
    assert info.value.field == field


def test_put_version_into_the_bucket_of_the_mls_connection(
    moto_url: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    bucket = f"reg-conn-{uuid.uuid4().hex[:8]}"
    s3(moto_url).create_bucket(Bucket=bucket)
    _mls_conn(monkeypatch, env="stg", registry_bucket=bucket)
    result = MLSModelRegistryHook(endpoint_url=moto_url).put_version(model_name, "v1", b"m", **META_ARGS)
    assert result["model_uri"] == f"s3://{bucket}/{model_name}/v1/model.joblib"
    assert body(s3(moto_url), bucket, f"{model_name}/v1/model.joblib") == b"m"
