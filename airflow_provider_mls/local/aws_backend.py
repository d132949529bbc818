"""Where the local server's readiness answers come from: S3 (the model registry) and DynamoDB (the
batch prediction tables), as in MLS (``docs/mls-api.md``).

* ``artifacts/info``: the version's ``model.joblib`` in the registry bucket (``HeadObject``).
* ``is_active``: ``DescribeTable`` says ``ACTIVE``; a table that does not exist is not active.
* ``is_loading``: the table carries the tag ``mls:loading`` = ``"true"`` (``constants.LOADING_TAG``;
  the provider's ``PredictionTableHook.load_rows`` sets it while rows go in).
* ``DELETE /api/v1/dynamodb/tables/{table}``: ``DeleteTable``.

The endpoint is the embedded one (moto, ``local/aws.py``) or any other S3/DynamoDB endpoint
(``mls-local --aws-endpoint``: LocalStack, ...). No Airflow imports here.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC
from typing import Any

from airflow_provider_mls.constants import (
    LOADING_TAG,
    MODEL_FILE,
    REGISTRY_BUCKETS,
    MLSEnv,
    model_data_path,
    registry_key,
)
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.local.errors import APIError, bad_request, conflict, not_found
from airflow_provider_mls.rules import check_table

# The key schema of tables the /local shortcut creates (the provider's create_table default).
LOCAL_TABLE_KEY = "user_id"
# A /local artifact keeps the info it was given as this user metadata of its model.joblib.
_INFO_METADATA = "mls-local-info"
_TEST_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _http_status(exc: Exception) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


class AWSBackend:
    """boto3 clients for one endpoint, and the MLS readiness rules over them (thread-safe)."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str = "us-east-1",
        registry_bucket: str = REGISTRY_BUCKETS[MLSEnv.DEV],
        test_credentials: bool = True,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.endpoint_url = endpoint_url
        self.region = region
        self.registry_bucket = registry_bucket
        session = boto3.session.Session(region_name=region)
        credentials: dict[str, str] = dict(_TEST_CREDENTIALS)
        if not test_credentials and session.get_credentials() is not None:
            credentials = {}  # the caller's own chain (env, profile) for a shared endpoint
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        self._s3 = session.client("s3", endpoint_url=endpoint_url, config=config, **credentials)
        self._ddb = session.client("dynamodb", endpoint_url=endpoint_url, config=config, **credentials)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup
    def ensure_buckets(self) -> list[str]:
        """Create the registry buckets (the three of mls-api.md and the configured one) if missing."""
        names = sorted({*REGISTRY_BUCKETS.values(), self.registry_bucket})
        for name in names:
            try:
                self._s3.create_bucket(Bucket=name)
            except Exception as exc:
                if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
        return names

    def _unavailable(self, what: str, exc: Exception) -> APIError:
        return APIError(500, f"aws: {what} failed at {self.endpoint_url}: {exc}")

    # ------------------------------------------------------------------ tables
    @staticmethod
    def _valid_table(table: str) -> bool:
        """DynamoDB's table name rule, as ``rules.check_table`` states it."""
        try:
            check_table(table)
        except MLSValidationError:
            return False
        return True

    def _describe_table(self, table: str) -> dict[str, Any] | None:
        if not self._valid_table(table):
            return None  # no table can have that name
        try:
            return dict(self._ddb.describe_table(TableName=table)["Table"])
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise self._unavailable(f"DescribeTable {table!r}", exc) from exc

    def _is_loading(self, arn: str) -> bool:
        try:
            tags = self._ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
        except Exception as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return False
            raise self._unavailable("ListTagsOfResource", exc) from exc
        return any(t.get("Key") == LOADING_TAG and str(t.get("Value")).lower() == "true" for t in tags)

    def table_state(self, table: str) -> dict[str, bool]:
        """``is_active``: the table exists and is ACTIVE; ``is_loading``: it carries the loading tag."""
        described = self._describe_table(table)
        if described is None:
            return {"is_active": False, "is_loading": False}
        return {
            "is_active": described.get("TableStatus") == "ACTIVE",
            "is_loading": self._is_loading(str(described["TableArn"])),
        }

    def drop_table(self, table: str) -> dict[str, Any]:
        if not self._valid_table(table):
            raise bad_request("table", f"{table!r} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)")
        try:
            self._ddb.delete_table(TableName=table)
        except Exception as exc:
            code = _error_code(exc)
            if code == "ResourceNotFoundException":
                raise not_found("table", repr(table), "table") from exc
            if code == "ResourceInUseException":
                raise conflict(f"table: {table!r} is being created or updated; try again") from exc
            raise self._unavailable(f"DeleteTable {table!r}", exc) from exc
        return {"table": table}

    def set_table(self, table: str, is_active: bool | None, is_loading: bool | None) -> dict[str, Any]:
        """The ``/local/tables`` shortcut: ``is_active`` false drops the table (a table that does not
        exist is not active); otherwise the table is created if missing (key ``user_id``, a string)
        and ``is_loading`` sets or removes the loading tag."""
        if not self._valid_table(table):
            raise bad_request("table", f"{table!r} is not a DynamoDB table name (3-255 of a-z A-Z 0-9 _ . -)")
        if is_active is False:
            if is_loading:
                raise bad_request(
                    "is_loading", "a table that is not active does not exist, so it cannot be loading"
                )
            if self._describe_table(table) is not None:
                self.drop_table(table)
            return {"table": table, **self.table_state(table)}
        with self._lock:
            described = self._describe_table(table)
            if described is None:
                try:
                    described = self._ddb.create_table(
                        TableName=table,
                        AttributeDefinitions=[{"AttributeName": LOCAL_TABLE_KEY, "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": LOCAL_TABLE_KEY, "KeyType": "HASH"}],
                        BillingMode="PAY_PER_REQUEST",
                    )["TableDescription"]
                    self._ddb.get_waiter("table_exists").wait(
                        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
                    )
                except Exception as exc:
                    raise self._unavailable(f"CreateTable {table!r}", exc) from exc
        if is_loading is not None:
            arn = str(described["TableArn"])
            try:
                if is_loading:
                    self._ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": LOADING_TAG, "Value": "true"}])
                else:
                    self._ddb.untag_resource(ResourceArn=arn, TagKeys=[LOADING_TAG])
            except Exception as exc:
                raise self._unavailable(f"tagging {table!r}", exc) from exc
        return {"table": table, **self.table_state(table)}

    # ------------------------------------------------------------------ artifacts
    def _key(self, name: str, version: str) -> str | None:
        if not name or not version or "/" in name or "/" in version or {name, version} & {".", ".."}:
            return None  # not a version the registry can hold
        return registry_key(name, version, MODEL_FILE)

    def artifact_info(self, name: str, version: str) -> dict[str, Any]:
        """``{"info": ...}`` for the version's ``model.joblib`` in the registry bucket, or ``{"info": None}``."""
        key = self._key(name, version)
        if key is None:
            return {"info": None}
        try:
            head = self._s3.head_object(Bucket=self.registry_bucket, Key=key)
        except Exception as exc:
            if _http_status(exc) in (400, 404) or _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return {"info": None}
            raise self._unavailable(f"HeadObject s3://{self.registry_bucket}/{key}", exc) from exc
        given = head.get("Metadata", {}).get(_INFO_METADATA)
        if given is not None:
            return {"info": json.loads(given)}
        return {
            "info": {
                "path": model_data_path(name, version),
                "uri": f"s3://{self.registry_bucket}/{key}",
                "size": int(head.get("ContentLength", 0)),
                "last_modified": head["LastModified"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
                "etag": str(head.get("ETag", "")).strip('"'),
            }
        }

    def set_artifact(self, name: str, version: str, info: dict[str, Any] | None) -> dict[str, Any]:
        """The ``/local/artifacts`` shortcut: writes a placeholder ``model.joblib``; ``info``, when
        given, is kept with it and answered as is."""
        key = self._key(name, version)
        if key is None:
            raise bad_request(
                "name", f"{name!r}/{version!r} is not a registry path (no '/', not '.' or '..')"
            )
        metadata = {}
        if info is not None:
            encoded = json.dumps(info, separators=(",", ":"))
            if len(encoded) > 1800:
                raise bad_request("info", "must be at most 1800 characters as JSON (S3 user metadata)")
            metadata[_INFO_METADATA] = encoded
        try:
            self._s3.put_object(Bucket=self.registry_bucket, Key=key, Body=b"", Metadata=metadata)
        except Exception as exc:
            raise self._unavailable(f"PutObject s3://{self.registry_bucket}/{key}", exc) from exc
        return self.artifact_info(name, version)

    def delete_artifact(self, name: str, version: str) -> dict[str, Any]:
        if self.artifact_info(name, version)["info"] is None:
            raise not_found("artifact", f"{name}/{version}", "artifact")
        key = self._key(name, version)
        try:
            self._s3.delete_object(Bucket=self.registry_bucket, Key=key)
        except Exception as exc:
            raise self._unavailable(f"DeleteObject s3://{self.registry_bucket}/{key}", exc) from exc
        return {"info": None}
