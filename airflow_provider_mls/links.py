"""Operator extra links: the SageMaker model package, the registry artifact, the prediction table, the MLS model.

A task persists its link (the whole URL, as an XCom under the link's ``xcom_key``) as soon as it
knows the resource, before it waits or loads, as the dbt Cloud operators do: the button works while
the task still runs or is deferred. Airflow 3's API server reads exactly that XCom; Airflow 2.11's
webserver calls ``get_link``, which reads it too. A link never touches the network.

The AWS links open the AWS console of the task's region; the MLS link exists only when the MLS
connection names a ``console_url`` (a URL with ``{model_id}``, ``{name}``, ``{version}`` or
``{env}``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow_provider_mls._compat import BaseOperatorLink

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MLSModelLink",
    "PredictionTableLink",
    "RegistryArtifactLink",
    "SageMakerModelPackageLink",
    "mls_model_url",
    "model_package_url",
    "prediction_table_url",
    "registry_artifact_url",
]

CONSOLE = "https://{region}.console.aws.amazon.com"
_PLACEHOLDER = re.compile(r"\{(model_id|name|version|env)\}")
# The links a task instance pushed in this process (read back when Airflow 3 finalizes the task).
_PUSHED = "_mls_pushed_links"
_MODEL_PACKAGE_ARN = re.compile(r"arn:[^:]+:sagemaker:([^:]*):\d*:model-package/([^/]+)/(\d+)$")


def _q(value: object) -> str:
    return quote(str(value), safe="")


def model_package_url(arn: str, region: str | None = None) -> str | None:
    """The SageMaker console's page of a model package version (None if ``arn`` is not one)."""
    match = _MODEL_PACKAGE_ARN.fullmatch(arn or "")
    if match is None:
        return None
    region = region or match.group(1)
    if not region:
        return None
    group, version = match.group(2), match.group(3)
    return (
        f"{CONSOLE.format(region=region)}/sagemaker/home?region={region}"
        f"#/model-registry/model-package-groups/{_q(group)}/versions/{version}"
    )


def registry_artifact_url(bucket: str, prefix: str, region: str | None = None) -> str:
    """The S3 console's view of a model version's folder in the registry bucket."""
    query = f"?prefix={quote(prefix.rstrip('/') + '/', safe='/')}"
    if region:
        query += f"&region={region}"
    return f"https://s3.console.aws.amazon.com/s3/buckets/{_q(bucket)}{query}"


def prediction_table_url(table: str, region: str) -> str:
    """The DynamoDB console's page of a table."""
    return f"{CONSOLE.format(region=region)}/dynamodbv2/home?region={region}#table?name={_q(table)}"


def mls_model_url(console_url: str | None, **values: Any) -> str | None:
    """``console_url`` with its placeholders filled (only these four: no attribute access, unlike ``format``).

    None when there is no console URL, it is not http(s), or it names a value that is not known.
    """
    if not console_url or not console_url.startswith(("https://", "http://")):
        return None
    missing = [m.group(1) for m in _PLACEHOLDER.finditer(console_url) if values.get(m.group(1)) is None]
    if missing:
        return None
    return _PLACEHOLDER.sub(lambda m: _q(values[m.group(1)]), console_url)


class _PersistedLink(BaseOperatorLink):
    """A link whose URL the task pushed to XCom under ``xcom_key``."""

    name: ClassVar[str]  # type: ignore[misc]
    key: ClassVar[str]

    @property
    def xcom_key(self) -> str:
        return self.key

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        from airflow.providers.common.compat.sdk import XCom  # where links are resolved, not at parse time

        pushed = getattr(ti_key, _PUSHED, None)
        if isinstance(pushed, dict) and self.key in pushed:
            return str(pushed[self.key])
        if hasattr(ti_key, "xcom_push") and hasattr(XCom, "get_all"):
            # Airflow 3 asks every link of a finishing task in its worker; a missing XCom would be
            # logged as an ERROR there. A link the task never pushed (e.g. no console_url) is
            # absent: read the task's values of this key as a list (empty: none, no error).
            values = XCom.get_all(
                key=self.key, dag_id=ti_key.dag_id, task_id=ti_key.task_id, run_id=ti_key.run_id
            )
            if not values:
                return ""
            if getattr(ti_key, "map_index", -1) in (None, -1) and len(values) == 1:
                return values[0] if isinstance(values[0], str) else ""
        url = XCom.get_value(ti_key=ti_key, key=self.key)
        return url if isinstance(url, str) else ""

    @classmethod
    def persist(cls, context: Mapping[str, Any] | Any, url: str | None) -> None:
        """Push ``url`` for this link (nothing when there is no URL or no task instance)."""
        ti = context.get("ti") if hasattr(context, "get") else None
        if url and ti is not None:
            ti.xcom_push(key=cls.key, value=url)
            pushed = getattr(ti, _PUSHED, None)
            if not isinstance(pushed, dict):
                pushed = {}
                try:
                    setattr(ti, _PUSHED, pushed)
                except (AttributeError, TypeError, ValueError):  # a task instance that takes no attributes
                    return
            pushed[cls.key] = url


class SageMakerModelPackageLink(_PersistedLink):
    """The model package version in the SageMaker console."""

    name = "SageMaker Model Package"
    key = "mls_link_sagemaker_model_package"


class RegistryArtifactLink(_PersistedLink):
    """The model version's folder (``model.joblib``, ``model.json``) in the S3 console."""

    name = "Registry Artifact (S3)"
    key = "mls_link_registry_artifact"


class PredictionTableLink(_PersistedLink):
    """The batch prediction table in the DynamoDB console."""

    name = "Prediction Table (DynamoDB)"
    key = "mls_link_prediction_table"


class MLSModelLink(_PersistedLink):
    """The model in the MLS console (when the MLS connection names a ``console_url``)."""

    name = "MLS Model"
    key = "mls_link_mls_model"


ALL_LINKS: tuple[type[_PersistedLink], ...] = (
    SageMakerModelPackageLink,
    RegistryArtifactLink,
    PredictionTableLink,
    MLSModelLink,
)
