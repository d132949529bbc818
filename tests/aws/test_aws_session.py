"""``aws_client``: the boto3 fallback (no amazon provider is installed here) and the provider branch (faked)."""

from __future__ import annotations

import subprocess
import sys
import types
from typing import Any

import pytest

from airflow_provider_mls.aws import aws_client
from airflow_provider_mls.aws.session import _aws_base_hook
from airflow_provider_mls.exceptions import MLSValidationError

PROVIDER_MODULE = "airflow.providers.amazon.aws.hooks.base_aws"


@pytest.fixture
def no_amazon_provider() -> None:
    if _aws_base_hook() is not None:
        pytest.skip("apache-airflow-providers-amazon is installed: these tests cover the boto3 fallback")


def _group_names(client: Any) -> list[str]:
    groups = client.list_model_package_groups()["ModelPackageGroupSummaryList"]
    return [g["ModelPackageGroupName"] for g in groups]


def test_endpoint_from_argument(
    no_amazon_provider: None, moto_url: str, aws_env: None, group_name: str
) -> None:
    client = aws_client("sagemaker", endpoint_url=moto_url)
    assert client.meta.endpoint_url == moto_url
    assert client.meta.region_name == "us-east-1"
    client.create_model_package_group(ModelPackageGroupName=group_name)
    assert group_name in _group_names(client)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL"])
def test_endpoint_from_environment(
    no_amazon_provider: None, moto_url: str, aws_env: None, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, moto_url)
    client = aws_client("sagemaker")
    assert client.meta.endpoint_url == moto_url
    _group_names(client)  # a real request to moto


def test_service_variable_is_for_its_service_only(
    no_amazon_provider: None, moto_url: str, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", moto_url)
    assert aws_client("s3").meta.endpoint_url != moto_url


def test_argument_wins_over_environment(
    no_amazon_provider: None, moto_url: str, aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:9")
    assert aws_client("sagemaker", endpoint_url=moto_url).meta.endpoint_url == moto_url


def test_region_argument_wins(no_amazon_provider: None, aws_env: None) -> None:
    assert aws_client("sagemaker", region_name="eu-west-1").meta.region_name == "eu-west-1"


def test_other_services_on_the_same_server(
    no_amazon_provider: None, moto_url: str, aws_env: None, group_name: str
) -> None:
    s3 = aws_client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket=group_name)
    s3.put_object(Bucket=group_name, Key="model.tar.gz", Body=b"weights")
    assert s3.get_object(Bucket=group_name, Key="model.tar.gz")["Body"].read() == b"weights"
    dynamodb = aws_client("dynamodb", endpoint_url=moto_url)
    dynamodb.create_table(
        TableName=group_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert group_name in dynamodb.list_tables()["TableNames"]


def test_missing_region(no_amazon_provider: None, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(MLSValidationError) as caught:
        aws_client("sagemaker", endpoint_url="http://127.0.0.1:9")
    assert caught.value.field == "region_name"
    assert "region_name" in str(caught.value)
    assert "AWS_DEFAULT_REGION" in str(caught.value)


def test_importing_the_hook_does_not_import_boto3() -> None:
    code = (
        "import sys, airflow_provider_mls.aws, airflow_provider_mls.hooks.sagemaker_registry\n"
        "loaded = sorted(m for m in ('boto3', 'botocore') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the amazon provider branch, with a stand-in AwsBaseHook ------------------------------------


class _Session:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def client(self, service: str, **kwargs: Any) -> str:
        self.calls.append(("session.client", service, kwargs))
        return "client-with-endpoint"


class _FakeAwsBaseHook:
    calls: list[tuple[Any, ...]] = []
    config = "the-config"
    verify = "the-verify"

    def __init__(self, **kwargs: Any) -> None:
        self.calls.append(("init", kwargs))

    def get_client_type(self, region_name: str | None = None) -> str:
        self.calls.append(("get_client_type", region_name))
        return "client-from-connection"

    def get_session(self, region_name: str | None = None) -> _Session:
        self.calls.append(("get_session", region_name))
        return _Session(self.calls)


@pytest.fixture
def fake_provider(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    module = types.ModuleType(PROVIDER_MODULE)
    module.AwsBaseHook = _FakeAwsBaseHook  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PROVIDER_MODULE, module)
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(_FakeAwsBaseHook, "calls", calls)
    return calls


def test_provider_connection_used(fake_provider: list[tuple[Any, ...]]) -> None:
    assert aws_client("sagemaker", aws_conn_id="my_aws", region_name="eu-west-1") == "client-from-connection"
    assert fake_provider == [
        ("init", {"aws_conn_id": "my_aws", "client_type": "sagemaker", "region_name": "eu-west-1"}),
        ("get_client_type", "eu-west-1"),
    ]


def test_provider_connection_with_endpoint_argument(fake_provider: list[tuple[Any, ...]]) -> None:
    assert aws_client("sagemaker", endpoint_url="http://moto:5000") == "client-with-endpoint"
    assert fake_provider[1:] == [
        ("get_session", None),
        (
            "session.client",
            "sagemaker",
            {"endpoint_url": "http://moto:5000", "config": "the-config", "verify": "the-verify"},
        ),
    ]


def test_no_connection_id_skips_the_provider(
    fake_provider: list[tuple[Any, ...]], moto_url: str, aws_env: None
) -> None:
    client = aws_client("sagemaker", aws_conn_id=None, endpoint_url=moto_url)
    assert client.meta.endpoint_url == moto_url
    assert fake_provider == []
