"""A real moto server over HTTP for the AWS tests, and a clean AWS environment for each test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.testing.pytest_plugin import AWS_VARIABLES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

REGION = "us-east-1"
# Anything that could point boto3 at a real account or another endpoint: what the pytest plugin
# hides, and the endpoint and AWS connection too (these tests set their own).
_AWS_ENV = (*AWS_VARIABLES, "AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server (SageMaker, S3, DynamoDB, ...) on a free loopback port, for the session.

    ``LocalAWSEndpoint`` makes moto's model registry behave like SageMaker's (updates leave unsent
    fields alone, metadata is merged, the model card is kept): see ``airflow_provider_mls.local.aws``.
    """
    from airflow_provider_mls.local.aws import LocalAWSEndpoint

    with LocalAWSEndpoint() as endpoint:
        yield endpoint.url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Test credentials and region; no profile, config file or endpoint of the developer's."""
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def registry(moto_url: str, aws_env: None) -> SageMakerModelRegistryHook:
    """The hook against the moto server (no amazon provider here: boto3's credential chain)."""
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    return SageMakerModelRegistryHook(endpoint_url=moto_url)


@pytest.fixture
def group_name() -> str:
    """A group name of this test's own (the moto server lives for the whole session)."""
    return f"grp-{uuid.uuid4().hex[:12]}"
