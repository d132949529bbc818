"""OpenLineage datasets of the provider's tasks, built only when the OpenLineage provider asks.

The ``openlineage`` extra installs ``apache-airflow-providers-openlineage``; it is imported here, and
only inside the functions, which its listener calls after a task ran (``get_openlineage_facets_on_*``
of the operators). Without it nothing here is imported.

Names follow the OpenLineage naming spec where it has an entry and its AWS pattern where it has not:

=========================  ======================================  ===============================
what                       namespace                               name
=========================  ======================================  ===============================
S3 object (artifact, data) ``s3://<bucket>``                       ``<key>`` (``/models/...``: the registry's)
local file                 ``file``                                ``<absolute path>``
DynamoDB table             ``arn:aws:dynamodb:<region>:<account>``  ``table/<table>``
SageMaker model package    ``arn:aws:sagemaker:<region>:<account>`` ``model-package/<group>/<n>``
MLS model version          ``mls://<env>``                         ``<model name>/<version>``
=========================  ======================================  ===============================

The MLS namespace is the connection's env (``airflow_provider_mls.assets``), so lineage of a model
version does not depend on where the worker runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Lineage",
    "dynamodb_table",
    "file_or_s3",
    "mls_model_data",
    "mls_model_version",
    "model_package",
    "operator_lineage",
    "s3_object",
]


@dataclass(frozen=True)
class Ref:
    """A dataset as plain data (namespace, name, facets): what a task records while it runs."""

    namespace: str
    name: str
    facets: dict[str, Any] = field(default_factory=dict)


@dataclass
class Lineage:
    """The inputs and outputs a task recorded; ``operator_lineage()`` turns them into OpenLineage's."""

    inputs: list[Ref] = field(default_factory=list)
    outputs: list[Ref] = field(default_factory=list)


def s3_object(bucket: str, key: str) -> Ref:
    return Ref(f"s3://{bucket}", key.lstrip("/"))


def file_or_s3(location: str | None) -> Ref | None:
    """``s3://bucket/key`` or a file path as a dataset; None for anything else (e.g. an http URL)."""
    if not isinstance(location, str) or not location.strip():
        return None
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        return s3_object(bucket, key) if bucket and key else None
    if location.startswith("file://"):
        location = location.removeprefix("file://")
    if "://" in location:
        return None
    return Ref("file", os.path.abspath(location))


def mls_model_data(model_data: str | None, registry_bucket: str | None) -> Ref | None:
    """An MLS ``model_data``: ``/models/<name>/<version>/model.joblib`` is that object of the registry bucket."""
    if isinstance(model_data, str) and model_data.startswith("/models/") and registry_bucket:
        return s3_object(registry_bucket, model_data.removeprefix("/models/"))
    return file_or_s3(model_data)


def dynamodb_table(table: str, *, table_arn: str | None = None, region: str | None = None) -> Ref:
    """A table by its ARN (``arn:aws:dynamodb:<region>:<account>:table/<name>``) or by region and name."""
    if table_arn and ":table/" in table_arn:
        namespace, _, name = table_arn.partition(":table/")
        return Ref(namespace, f"table/{name}")
    return Ref(f"arn:aws:dynamodb:{region or ''}:", f"table/{table}")


def model_package(arn: str) -> Ref | None:
    """A SageMaker model package version by its ARN (``...:model-package/<group>/<n>``)."""
    if not isinstance(arn, str) or ":model-package/" not in arn:
        return None
    namespace, _, name = arn.partition(":model-package/")
    return Ref(namespace, f"model-package/{name}")


def mls_model_version(env: str, name: str, version: str, *, features: list[str] | None = None) -> Ref:
    """An MLS model version; its features (when known) as the dataset's schema."""
    from airflow_provider_mls.assets import openlineage_namespace

    facets: dict[str, Any] = {}
    if features:
        facets["schema"] = list(features)
    return Ref(openlineage_namespace(env), f"{name}/{version}", facets)


def _dataset(ref: Ref, *, row_count: int | None = None) -> Any:
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )

    facets: dict[str, Any] = {}
    if "schema" in ref.facets:
        fields = [SchemaDatasetFacetFields(name=str(name)) for name in ref.facets["schema"]]
        facets["schema"] = SchemaDatasetFacet(fields=fields)
    if row_count is not None:
        return OutputDataset(
            namespace=ref.namespace,
            name=ref.name,
            facets=facets,
            outputFacets={"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=row_count)},
        )
    return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)


def operator_lineage(lineage: Lineage | None) -> Any:
    """OpenLineage's ``OperatorLineage`` of what a task recorded (empty when it recorded nothing)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    if lineage is None:
        return OperatorLineage()
    return OperatorLineage(
        inputs=[_dataset(ref) for ref in lineage.inputs],
        outputs=[_dataset(ref, row_count=ref.facets.get("row_count")) for ref in lineage.outputs],
    )
