"""One way to get a boto3 client: through an Airflow AWS connection when the amazon provider is there,
else through boto3's own credential chain."""

from __future__ import annotations

from typing import Any

from airflow_provider_mls.exceptions import MLSValidationError


def _aws_base_hook() -> type[Any] | None:
    """The amazon provider's ``AwsBaseHook``, or None when that provider is not installed."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError:
        return None
    return AwsBaseHook  # type: ignore[no-any-return]


def aws_client(
    service: str,
    *,
    aws_conn_id: str | None = "aws_default",
    region_name: str | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """A boto3 client for ``service`` (``"sagemaker"``, ``"s3"``, ...).

    * With ``apache-airflow-providers-amazon`` installed and an ``aws_conn_id``: the connection's
      credentials through ``AwsBaseHook`` (role assumption, profiles, its ``region_name`` and
      ``endpoint_url`` extras). ``endpoint_url`` given here wins over the connection's.
    * Otherwise (no amazon provider, or ``aws_conn_id=None``): boto3's default credential chain
      (environment, shared config/credentials files, container or instance role).

    Without ``endpoint_url`` botocore still honours ``AWS_ENDPOINT_URL`` and the service-specific
    ``AWS_ENDPOINT_URL_<SERVICE>`` (``AWS_ENDPOINT_URL_SAGEMAKER``) environment variables and the
    ``services`` section of the shared config file (botocore >= 1.31; the boto3 >= 1.35 that this
    package requires has them, see ``botocore/configprovider.py``).

    No network call is made here; credentials are resolved lazily by botocore on the first request.

    :raises MLSValidationError: (``region_name``) when the service needs a region and none is
        given, configured on the connection, in ``AWS_DEFAULT_REGION`` or in the shared config.
    """
    from botocore.exceptions import NoRegionError

    hook_class = _aws_base_hook()
    try:
        if hook_class is not None and aws_conn_id is not None:
            hook = hook_class(aws_conn_id=aws_conn_id, client_type=service, region_name=region_name)
            if endpoint_url is None:
                return hook.get_client_type(region_name=region_name)
            session = hook.get_session(region_name=region_name)
            return session.client(service, endpoint_url=endpoint_url, config=hook.config, verify=hook.verify)

        import boto3

        return boto3.session.Session(region_name=region_name).client(service, endpoint_url=endpoint_url)
    except NoRegionError as exc:
        where = "the connection's region_name extra, " if hook_class is not None and aws_conn_id else ""
        raise MLSValidationError(
            "region_name",
            f"no AWS region for the {service} client: pass region_name, or set it in "
            f"{where}AWS_DEFAULT_REGION or the AWS config file",
        ) from exc
