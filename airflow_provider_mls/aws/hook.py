"""What the provider's AWS hooks share: the ``aws_default`` connection attributes and one boto3 client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any, ClassVar

from airflow_provider_mls._compat import BaseHook


def jsonable(value: Any) -> Any:
    """A boto3 response as plain JSON types (datetimes as ISO strings), without ``ResponseMetadata``."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    return value


class AwsServiceHook(BaseHook):
    """A hook over one boto3 client of ``service``, built on first use through ``aws_client``
    (the amazon provider's ``AwsBaseHook`` when it is installed and ``aws_conn_id`` is given, else
    boto3's default credential chain)."""

    conn_name_attr = "aws_conn_id"
    default_conn_name = "aws_default"
    conn_type = "aws"
    service: ClassVar[str]

    def __init__(
        self,
        aws_conn_id: str | None = default_conn_name,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        super().__init__()
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        self._client: Any = None

    def get_conn(self) -> Any:
        """The hook's boto3 client (built once)."""
        if self._client is None:
            from airflow_provider_mls.aws.session import aws_client

            self._client = aws_client(
                self.service,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
            )
        return self._client
