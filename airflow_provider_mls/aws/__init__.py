"""AWS plumbing shared by the provider's AWS hooks. Light to import: boto3 loads when a client is built."""

from __future__ import annotations

from airflow_provider_mls.aws.session import aws_client

__all__ = ["aws_client"]
