"""The MLS model registry: an S3 bucket of model versions, ``<name>/<version>/model.joblib`` and ``model.json``."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mls.aws.hook import AwsServiceHook
from airflow_provider_mls.constants import (
    META_FILE,
    MODEL_FILE,
    MODEL_META_OPTIONAL,
    REGISTRY_BUCKETS,
    model_data_path,
    registry_key,
)
from airflow_provider_mls.exceptions import MLSConflictError, MLSError, MLSValidationError
from airflow_provider_mls.rules import (
    check_bool,
    check_bucket,
    check_feature_names,
    check_model_lib,
    check_name,
    check_str,
    check_version,
    plain_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MiB = 1024 * 1024
_MAX_PARTS = 10_000  # S3's limit on the parts of one multipart upload
WRITER_METADATA = "mls-writer"  # S3 user metadata of a version's files: put_version's ``writer``
_MISSING = ("404", "NoSuchKey", "NotFound")
# A conditional write lost: the object exists (412), or another conditional write to it is in flight (409).
_LOST_RACE = ("PreconditionFailed", "ConditionalRequestConflict", "412")


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


@contextlib.contextmanager
def _conflict_on_lost_race(where: str) -> Iterator[None]:
    """A lost conditional write becomes ``MLSConflictError`` naming ``version``."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        if _error_code(exc) in _LOST_RACE:
            raise MLSConflictError(
                f"version: {where} was written by someone else meanwhile ({_error_code(exc)})", code=409
            ) from exc
        raise


class _Model:
    """The model to upload: bytes or a readable file; opened only to upload."""

    def __init__(self, model: Any) -> None:
        self.data: bytes | None = None
        self.path: Path | None = None
        if isinstance(model, bytes | bytearray | memoryview):
            self.data = bytes(model)
            if not self.data:
                raise MLSValidationError("model", "the model bytes are empty")
            self.size = len(self.data)
        elif isinstance(model, str | os.PathLike):
            path = Path(model)
            if not str(model) or not path.is_file() or not os.access(path, os.R_OK):
                raise MLSValidationError("model", f"{str(model)!r} is not a readable file")
            self.path, self.size = path, path.stat().st_size
            if self.size == 0:
                raise MLSValidationError("model", f"{str(model)!r} is an empty file")
        else:
            raise MLSValidationError(
                "model", f"expected a file path or the model's bytes, got {type(model).__name__}"
            )

    def open(self) -> IO[bytes]:
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")


class MLSModelRegistryHook(AwsServiceHook):
    """The MLS model registry: one S3 bucket, a version's files under ``<name>/<version>/``.

    ``model.joblib`` is the model and ``model.json`` its meta (the ``model_meta`` of the MLS manual
    model). ``model.json`` is written last and removed first: a version exists when its
    ``model.json`` does.

    The bucket: ``bucket`` if given, else the MLS connection's extra ``registry_bucket``, else the
    bucket of its ``env`` (``mls-model-registry``, ``-stg``, ``-prd``). Reading the connection
    makes no request to MLS.

    Input is checked before any request; a bad value raises ``MLSValidationError`` naming it.

    :param mls_conn_id: the MLS connection that tells the bucket (None: ``bucket`` is required).
    :param aws_conn_id: the AWS connection (through the amazon provider when it is installed; None,
        or no amazon provider, means boto3's default credential chain).
    :param region_name: the AWS region; default: the connection's, else boto3's.
    :param endpoint_url: another S3 endpoint (a VPC endpoint, a test server).
    :param bucket: the registry bucket, overriding the MLS connection.
    """

    hook_name = "MLS Model Registry (S3)"
    service = "s3"

    # A model up to this size goes in one PUT when it must not overwrite, bigger ones in parts.
    multipart_threshold = 64 * MiB
    multipart_chunksize = 16 * MiB
    list_page_size = 1000  # MaxKeys of each ListObjectsV2 page

    def __init__(
        self,
        mls_conn_id: str | None = "mls_default",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        bucket: str | None = None,
    ) -> None:
        super().__init__(aws_conn_id, region_name, endpoint_url)
        self.mls_conn_id = mls_conn_id
        self._bucket = bucket
        self._resolved_bucket: str | None = None

    # ---- connection -------------------------------------------------------------------------

    @property
    def bucket(self) -> str:
        """The registry bucket: ``bucket``, else the MLS connection's ``registry_bucket``, else its env's."""
        if self._resolved_bucket is None:
            self._resolved_bucket = self._find_bucket()
        return self._resolved_bucket

    def _find_bucket(self) -> str:
        if self._bucket is not None:
            bucket, origin = self._bucket, "bucket"
        else:
            if self.mls_conn_id is None:
                raise MLSValidationError("bucket", "give bucket, or an mls_conn_id whose connection names it")
            from airflow_provider_mls._compat import AirflowNotFoundException
            from airflow_provider_mls.hooks._config import get_extra, parse_env

            try:
                extras = self.get_connection(self.mls_conn_id).extra_dejson or {}
            except AirflowNotFoundException:
                raise MLSValidationError(
                    "bucket", f"no bucket given and the MLS connection {self.mls_conn_id!r} does not exist"
                ) from None
            bucket = get_extra(extras, "registry_bucket")
            origin = f"the registry_bucket extra of connection {self.mls_conn_id!r}"
            if bucket is None:
                bucket = REGISTRY_BUCKETS[parse_env(get_extra(extras, "env"))]
        return check_bucket(bucket, origin)

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call: ``HeadBucket`` on the registry bucket."""
        try:
            self.get_conn().head_bucket(Bucket=self.bucket)
        except Exception as exc:
            return False, f"MLS model registry connection failed: {exc}"
        return True, f"Connected to the MLS model registry s3://{self.bucket}"

    # ---- meta -------------------------------------------------------------------------------

    def build_meta(
        self,
        name: str,
        version: str,
        *,
        model_lib: str,
        model_lib_version: str,
        features: str | Sequence[str],
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The ``model.json`` of a version: the required keys and the optional ``extra`` ones, checked."""
        name, version = check_name(name, "name"), check_version(version, "version")
        meta: dict[str, Any] = {
            "name": name,
            "version": version,
            "model_lib": check_model_lib(model_lib, required=True),
            "model_lib_version": check_str(model_lib_version, "model_lib_version"),
            "model_data": model_data_path(name, version),
            "features": check_feature_names(features),
        }
        if extra is None:
            return meta
        if not isinstance(extra, Mapping):
            raise MLSValidationError(
                "model_meta", f"expected a dict of optional keys, got {type(extra).__name__}"
            )
        for key, value in extra.items():
            if key not in MODEL_META_OPTIONAL:
                raise MLSValidationError(
                    f"model_meta.{key}",
                    f"unknown key; model.json takes only {', '.join(MODEL_META_OPTIONAL)}",
                )
            meta[key] = plain_json(value, f"model_meta.{key}")
        return meta

    # ---- versions ---------------------------------------------------------------------------

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.get_conn().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return False
            raise
        return True

    def put_version(
        self,
        name: str,
        version: str,
        model: str | os.PathLike[str] | bytes,
        *,
        model_lib: str,
        model_lib_version: str,
        features: str | Sequence[str],
        extra: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        writer: str | None = None,
    ) -> dict[str, Any]:
        """Upload a version: ``model.joblib`` (a file path or bytes) first, then ``model.json``.

        ``writer``: a token stored with both files (S3 metadata ``mls-writer``; ``writers`` reads
        it back), so that a task's retry can tell its own half-written upload from another's.

        Without ``overwrite`` an existing version (either file) raises ``MLSConflictError``, and
        both writes are conditional (``If-None-Match: *``), so a writer racing this one cannot be
        overwritten either. If ``model.json`` cannot be written, the ``model.joblib`` this call
        wrote is deleted again (unless it was there before). Returns ``bucket``, ``model_uri``,
        ``meta_uri``, ``model_data``, ``model_meta`` and ``size`` (bytes of the model).
        """
        meta = self.build_meta(
            name,
            version,
            model_lib=model_lib,
            model_lib_version=model_lib_version,
            features=features,
            extra=extra,
        )
        source = _Model(model)
        check_bool(overwrite, "overwrite")
        bucket = self.bucket
        model_key, meta_key = registry_key(name, version, MODEL_FILE), registry_key(name, version, META_FILE)
        model_existed = self._exists(model_key)
        meta_existed = self._exists(meta_key)
        where = f"{name}/{version} in s3://{bucket}"
        if not overwrite and (model_existed or meta_existed):
            present = [f for f, there in ((MODEL_FILE, model_existed), (META_FILE, meta_existed)) if there]
            raise MLSConflictError(
                f"version: {where} exists ({', '.join(present)}); pass overwrite=True to replace it", code=409
            )

        tag = {"Metadata": {WRITER_METADATA: writer}} if writer else {}
        with _conflict_on_lost_race(where):
            self._upload_model(model_key, source, conditional=not overwrite, tag=tag)
        try:
            with _conflict_on_lost_race(where):
                self._put_meta(meta_key, meta, conditional=not overwrite, tag=tag)
        except BaseException:
            if not model_existed:
                self._remove_written(model_key)
            raise
        self.log.info(
            "Uploaded %s/%s to s3://%s: %s (%s bytes) and %s%s",
            name,
            version,
            bucket,
            MODEL_FILE,
            source.size,
            META_FILE,
            " (overwrote the existing version)" if model_existed or meta_existed else "",
        )
        return {
            "bucket": bucket,
            "model_uri": f"s3://{bucket}/{model_key}",
            "meta_uri": f"s3://{bucket}/{meta_key}",
            "model_data": meta["model_data"],
            "model_meta": meta,
            "size": source.size,
        }

    def _remove_written(self, key: str) -> None:
        """Best effort: delete the model.joblib of a version whose model.json could not be written."""
        try:
            self.get_conn().delete_object(Bucket=self.bucket, Key=key)
        except Exception:
            self.log.exception(
                "Could not delete s3://%s/%s after model.json failed: delete it by hand", self.bucket, key
            )
        else:
            self.log.warning("model.json could not be written: deleted s3://%s/%s again", self.bucket, key)

    def _checksum_args(self) -> dict[str, str]:
        """``ChecksumAlgorithm`` as s3transfer sets it (botocore >= 1.36 computes CRC32 by default)."""
        config = self.get_conn().meta.config
        if getattr(config, "request_checksum_calculation", None) == "when_supported":
            return {"ChecksumAlgorithm": "CRC32"}
        return {}

    def _upload_model(
        self, key: str, source: _Model, *, conditional: bool, tag: Mapping[str, Any] | None = None
    ) -> None:
        client = self.get_conn()
        extra: dict[str, Any] = {"ContentType": "application/octet-stream", **(tag or {})}
        with source.open() as body:
            if not conditional:
                # s3transfer: multipart (in parallel) above the threshold; it cannot send If-None-Match.
                from boto3.s3.transfer import TransferConfig

                config = TransferConfig(
                    multipart_threshold=self.multipart_threshold, multipart_chunksize=self.multipart_chunksize
                )
                client.upload_fileobj(body, self.bucket, key, ExtraArgs=extra, Config=config)
            elif source.size <= self.multipart_threshold:
                client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*", **extra)
            else:
                self._upload_parts(key, body, source.size, extra)

    def _upload_parts(self, key: str, body: IO[bytes], size: int, extra: dict[str, Any]) -> None:
        """A multipart upload whose completion is conditional (``If-None-Match: *``), aborted on failure.

        s3transfer (``upload_file``/``upload_fileobj``) does not accept ``IfNoneMatch`` (it is not in
        ``ALLOWED_UPLOAD_ARGS``, boto/boto3#4366), but ``CompleteMultipartUpload`` does: the object
        appears only if no other writer made it first.
        """
        client = self.get_conn()
        checksum = self._checksum_args()
        part_size = max(self.multipart_chunksize, math.ceil(size / _MAX_PARTS))
        upload_id = client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra, **checksum)[
            "UploadId"
        ]
        try:
            parts: list[dict[str, Any]] = []
            while chunk := body.read(part_size):
                number = len(parts) + 1
                response = client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk, **checksum
                )
                part = {"PartNumber": number, "ETag": response["ETag"]}
                if "ChecksumCRC32" in response and checksum:
                    part["ChecksumCRC32"] = response["ChecksumCRC32"]
                parts.append(part)
            client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                IfNoneMatch="*",
            )
        except BaseException:
            try:
                client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:
                self.log.exception(
                    "Could not abort multipart upload %s of s3://%s/%s", upload_id, self.bucket, key
                )
            raise

    def _put_meta(
        self, key: str, meta: Mapping[str, Any], *, conditional: bool, tag: Mapping[str, Any] | None = None
    ) -> None:
        body = json.dumps(meta, ensure_ascii=False, indent=2).encode()
        condition = {"IfNoneMatch": "*"} if conditional else {}
        self.get_conn().put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **condition, **(tag or {})
        )

    def writers(self, name: str, version: str) -> dict[str, str | None]:
        """The files of a version that are there, each with the ``writer`` it was uploaded with (or None)."""
        from botocore.exceptions import ClientError

        found: dict[str, str | None] = {}
        for file in (MODEL_FILE, META_FILE):
            key = registry_key(check_name(name, "name"), check_version(version, "version"), file)
            try:
                head = self.get_conn().head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _MISSING:
                    continue
                raise
            found[file] = (head.get("Metadata") or {}).get(WRITER_METADATA)
        return found

    def get_meta(self, name: str, version: str) -> dict[str, Any] | None:
        """The version's ``model.json``, parsed; None when there is none."""
        from botocore.exceptions import ClientError

        key = registry_key(check_name(name, "name"), check_version(version, "version"), META_FILE)
        try:
            body = self.get_conn().get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise
        try:
            meta = json.loads(body)
        except ValueError as exc:
            raise MLSError(f"s3://{self.bucket}/{key} is not JSON: {exc}") from None
        if not isinstance(meta, dict):
            raise MLSError(f"s3://{self.bucket}/{key} is not a JSON object")
        return meta

    def version_exists(self, name: str, version: str) -> bool:
        """Whether the version is there (its ``model.json`` is)."""
        return self._exists(
            registry_key(check_name(name, "name"), check_version(version, "version"), META_FILE)
        )

    def list_versions(self, name: str) -> list[str]:
        """The versions of model ``name`` that have a ``model.json``, sorted, from every page of the listing."""
        prefix = f"{check_name(name, 'name')}/"
        versions: list[str] = []
        paginator = self.get_conn().get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.list_page_size}
        ):
            for item in page.get("Contents", []):
                version, _, filename = item["Key"][len(prefix) :].partition("/")
                if filename == META_FILE:
                    versions.append(version)
        return sorted(versions)

    def delete_version(self, name: str, version: str) -> bool:
        """Delete a version: ``model.json`` first (it stops existing), then ``model.joblib``.

        Returns whether there was anything to delete.
        """
        name, version = check_name(name, "name"), check_version(version, "version")
        keys = [registry_key(name, version, META_FILE), registry_key(name, version, MODEL_FILE)]
        present = [key for key in keys if self._exists(key)]
        for key in present:
            self.get_conn().delete_object(Bucket=self.bucket, Key=key)
        if present:
            self.log.info("Deleted %s/%s from s3://%s", name, version, self.bucket)
        return bool(present)
