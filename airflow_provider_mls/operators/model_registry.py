"""Upload a model version to the MLS model registry (S3), ready to be deployed as a manual model.

Cheap to import: boto3 is imported when a task runs.
"""

from __future__ import annotations

import json
import uuid
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import TaskRecord, task_state
from airflow_provider_mls._integration import aws_region, record_lineage
from airflow_provider_mls.bases import AWS_FIELDS, MLSAwsBaseOperator, aws_hook_kwargs
from airflow_provider_mls.exceptions import MLSConflictError, MLSValidationError
from airflow_provider_mls.links import RegistryArtifactLink
from airflow_provider_mls.rules import coerce_bool

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

__all__ = ["UploadModelToRegistryOperator"]


def _renamed(exc: MLSValidationError, model_field: str) -> MLSValidationError:
    """The hook's error with the operator's argument names (``model_meta_extra``, ``model_path``)."""
    field = exc.field
    if field == "model":
        field = model_field
    elif field.startswith("model_meta"):
        field = "model_meta_extra" + field.removeprefix("model_meta")
    return exc if field == exc.field else MLSValidationError(field, exc.message.split(": ", 1)[-1])


class UploadModelToRegistryOperator(MLSAwsBaseOperator):
    """Upload ``model.joblib`` and its ``model.json`` to the MLS model registry.

    The model is ``model_path`` (a file on the worker) or ``model_bytes``, exactly one. The meta is
    built from ``model_lib``, ``model_lib_version``, ``features`` (a list, or ``"a,b,c"``) and the
    optional keys of ``model_meta_extra`` (``class``, ``metric``, ``performance``,
    ``feature_importance``, ``model_info``; a dict or its JSON string). An existing version fails
    the task unless ``overwrite``. The bucket: ``bucket``, else the MLS connection's
    ``registry_bucket`` extra, else the bucket of its ``env``.

    Returns ``{"bucket", "model_uri", "meta_uri", "model_data", "model_meta", "size"}``:
    ``model_data`` and ``model_meta`` are what ``CreateManualModelOperator`` takes: each key is
    also pushed as an XCom of its own, so ``model_meta=upload.output["model_meta"]`` passes the
    dict itself. Bad input and an existing version fail at once
    (no retries).

    On Airflow 3.3+ the upload is recorded in the task state store (key ``mls_upload``): before it
    starts (the version was free), and with its result once both files are written. A retry after
    a dead worker returns the recorded result when both files are still there (one artifact, not a
    conflict with its own upload), and finishes a half-written upload of its own: both files carry
    a token of this task's upload (S3 metadata ``mls-writer``), so only files with that token are
    replaced; a file another writer put there since fails the retry (``MLSConflictError``).
    Elsewhere such a retry fails on the version its earlier try wrote.

    :param name: the model's name.
    :param version: the model's version.
    :param model_lib: the library (``sklearn``, ``xgboost``, ``lightgbm``, ``catboost``, ...).
    :param model_lib_version: the library's version.
    :param features: the features: a list, or ``"a,b,c"``.
    :param model_path: the model file on the worker.
    :param model_bytes: or the model's bytes (not a template field).
    :param model_meta_extra: optional keys of ``model.json``: a dict or its JSON string.
    :param overwrite: replace an existing version.
    :param bucket: the registry bucket (default: the MLS connection's).
    :param mls_conn_id: the MLS connection whose ``registry_bucket`` or ``env`` names the bucket.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = (
        "name",
        "version",
        "model_path",
        "model_lib",
        "model_lib_version",
        "features",
        "model_meta_extra",
        "bucket",
        "overwrite",
        "mls_conn_id",
        *AWS_FIELDS,
    )
    template_fields_renderers = {"model_meta_extra": "json"}
    ui_color = "#e8f5e9"
    operator_extra_links = (RegistryArtifactLink(),)

    def __init__(
        self,
        *,
        name: str,
        version: str,
        model_lib: str,
        model_lib_version: str,
        features: str | list[str],
        model_path: str | None = None,
        model_bytes: bytes | None = None,
        model_meta_extra: dict[str, Any] | str | None = None,
        overwrite: bool | str = False,
        bucket: str | None = None,
        mls_conn_id: str | None = "mls_default",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id, region_name=region_name, endpoint_url=endpoint_url, **kwargs
        )
        self.name = name
        self.version = version
        self.model_lib = model_lib
        self.model_lib_version = model_lib_version
        self.features = features
        self.model_path = model_path
        self.model_bytes = model_bytes
        self.model_meta_extra = model_meta_extra
        self.overwrite = overwrite
        self.bucket = bucket
        self.mls_conn_id = mls_conn_id

    @cached_property
    def registry(self) -> MLSModelRegistryHook:
        from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook

        return MLSModelRegistryHook(
            mls_conn_id=self.mls_conn_id,
            bucket=self.bucket or None,
            **aws_hook_kwargs(self),
        )

    def _model(self) -> str | bytes:
        if (self.model_path is None) == (self.model_bytes is None):
            raise MLSValidationError("model_path", "give exactly one of model_path and model_bytes")
        if self.model_bytes is not None:
            if not isinstance(self.model_bytes, bytes | bytearray) or not self.model_bytes:
                raise MLSValidationError("model_bytes", "expected the model's bytes, not empty")
            return bytes(self.model_bytes)
        if not isinstance(self.model_path, str) or not self.model_path.strip():
            raise MLSValidationError("model_path", f"expected a file path, got {self.model_path!r}")
        return self.model_path

    def _extra(self) -> dict[str, Any] | None:
        extra = self.model_meta_extra
        if isinstance(extra, str):  # a template rendered without render_template_as_native_obj
            if not extra.strip():
                return None
            try:
                extra = json.loads(extra)
            except ValueError as exc:
                raise MLSValidationError("model_meta_extra", f"is not a JSON object: {exc}") from None
        if extra is not None and not isinstance(extra, dict):
            raise MLSValidationError("model_meta_extra", f"expected a dict, got {type(extra).__name__}")
        return extra

    def _recorded(self, result: Any) -> dict[str, Any] | None:
        """An earlier try's recorded result, when both of its files are still in the registry."""
        if not isinstance(result, dict) or not isinstance(result.get("meta_uri"), str):
            return None
        # model.json is written after model.joblib: it is there only when both are
        if not self.registry.version_exists(self.name, self.version):
            self.log.warning("The upload an earlier try of this task recorded is gone: uploading again")
            return None
        self.log.info(
            "An earlier try of this task uploaded %s/%s: %s", self.name, self.version, result["meta_uri"]
        )
        return result

    def _own_files(self, writer: str | None) -> bool:
        """An earlier try began this upload: may this try overwrite what is there (only its own files)?"""
        there = self.registry.writers(self.name, self.version)
        began = "An earlier try of this task began uploading %s/%s: %s"
        if not there:  # nothing written yet: a plain (conditional) upload
            self.log.info(began, self.name, self.version, "nothing of it is there yet, uploading it")
            return False
        foreign = [file for file, by in there.items() if writer is None or by != writer]
        if foreign:
            raise MLSConflictError(
                f"version: {self.name}/{self.version} exists ({', '.join(foreign)} written by another "
                "writer since this task's earlier try began its upload); pass overwrite=True to replace it",
                code=409,
            )
        self.log.info(began, self.name, self.version, "writing it again over its own files")
        return True

    def _execute(self, context: Any) -> dict[str, Any]:
        model = self._model()
        extra = self._extra()
        overwrite = coerce_bool(self.overwrite, "overwrite")
        store = task_state(context)
        record = TaskRecord(store, "mls_upload", self.log) if store is not None else None
        what = {"name": self.name, "version": self.version}
        stored = (record.load() or {}) if record is not None else {}
        if any(stored.get(k) != v for k, v in what.items()):
            stored = {}
        result = self._recorded(stored.get("result"))
        if result is None:
            writer = stored.get("writer") if isinstance(stored.get("writer"), str) else None
            replace = overwrite
            if stored and not overwrite:
                try:
                    replace = self._own_files(writer)
                except MLSConflictError:
                    if record is not None:
                        record.drop()  # nothing of this task's there to finish
                    raise
            if record is not None and (not stored or writer is None):
                writer = uuid.uuid4().hex
                record.save({**what, "started": True, "writer": writer})
            try:
                result = self.registry.put_version(
                    self.name,
                    self.version,
                    model,
                    model_lib=self.model_lib,
                    model_lib_version=self.model_lib_version,
                    features=self.features,
                    extra=extra,
                    overwrite=replace,
                    writer=writer,
                )
            except MLSValidationError as exc:
                # The hook checks everything before any call; name the operator's arguments.
                raise _renamed(exc, "model_path" if isinstance(model, str) else "model_bytes") from None
            except MLSConflictError:
                if record is not None and not stored:
                    record.drop()  # another writer's version: nothing of this task's to finish
                raise
            if record is not None:
                record.save({**what, "result": result})
        self.log.info("Model %s/%s is in the registry: %s", self.name, self.version, result["meta_uri"])
        region = aws_region(self.registry)
        self.persist_links(
            context, bucket=result["bucket"], prefix=f"{self.name}/{self.version}", region=region
        )
        from airflow_provider_mls import lineage as ol

        record_lineage(
            self,
            inputs=[ol.file_or_s3(model) if isinstance(model, str) else None],
            outputs=[ol.file_or_s3(result["model_uri"])],
        )
        # Each key as its own XCom too, so ``upload.output["model_meta"]`` hands the dict itself to
        # the next operator (as a TaskFlow task with multiple_outputs does).
        ti = context.get("ti") if hasattr(context, "get") else None
        if ti is not None and self.do_xcom_push:
            for key, value in result.items():
                ti.xcom_push(key=key, value=value)
        return result
