"""Settings of the local MLS server (CLI flags / ``MLS_LOCAL_*`` environment variables)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_mls.rules import REQUEST_MAX_BYTES

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    username: str = "mls"
    password: str = "mls"
    training_seconds: float = 5.0
    server_start_seconds: float = 3.0
    page_size: int = 20
    # Request bodies over this are refused (400 naming ``body``); see airflow_provider_mls.rules.
    max_body_bytes: int = REQUEST_MAX_BYTES
    # S3 (model registry) and DynamoDB (batch prediction tables) behind the readiness endpoints.
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    registry_bucket: str = "mls-model-registry"
    # True for the embedded endpoint (test credentials); False: the caller's AWS credential chain.
    aws_test_credentials: bool = True
    # List items (GET /api/v1/models, /api/v1/components) carry only what is promised (ids, names).
    lean_lists: bool = False
    # Append every request outside /local (method, raw path, raw query, body) to this JSONL file.
    record_path: Path | None = None
