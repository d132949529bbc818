"""A real moto server over HTTP for the AWS tests, and a clean AWS environment for each test."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

REGION = "us-east-1"
# Anything that could point boto3 at a real account or another endpoint.
_AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SAGEMAKER",
    "AWS_ENDPOINT_URL_S3",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AIRFLOW_CONN_AWS_DEFAULT",
)


def _aws_update_semantics() -> Any:
    """moto's ``update_model_package`` as SageMaker behaves: fields that are not sent stay as they are.

    moto 5.2 overwrites the approval status and its description with None when they are not sent,
    and replaces the whole ``CustomerMetadataProperties`` map instead of adding the given keys.
    """
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        package = self.describe_model_package(model_package_arn)
        return original(
            self,
            model_package_arn=model_package_arn,
            model_approval_status=model_approval_status or package.model_approval_status,
            approval_description=(
                approval_description if approval_description is not None else package.approval_description
            ),
            customer_metadata_properties={
                **(package.customer_metadata_properties or {}),
                **(customer_metadata_properties or {}),
            },
            customer_metadata_properties_to_remove=customer_metadata_properties_to_remove,
            additional_inference_specifications_to_add=additional_inference_specifications_to_add,
        )

    return SageMakerModelBackend, update_model_package


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server (SageMaker, S3, DynamoDB, ...) on a free loopback port, for the session."""
    from moto.server import ThreadedMotoServer

    backend, update_model_package = _aws_update_semantics()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(backend, "update_model_package", update_model_package)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


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
