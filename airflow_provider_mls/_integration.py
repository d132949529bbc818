"""What the task bases call to give Airflow its links, lineage and asset events (one line at each call site).

Import-light: DAG parsing imports this module through the task bases; everything heavier (the
connection, OpenLineage) is imported inside the functions, when a task runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls.links import (
    MLSModelLink,
    PredictionTableLink,
    RegistryArtifactLink,
    SageMakerModelPackageLink,
    mls_model_url,
    model_package_url,
    prediction_table_url,
    registry_artifact_url,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_mls.assets import MLSProfile
    from airflow_provider_mls.lineage import Lineage, Ref

__all__ = [
    "add_model_versions_outlet",
    "lineage_of",
    "persist_aws_links",
    "persist_mls_links",
    "record_lineage",
    "record_model_version",
]


def add_model_versions_outlet(task: Any) -> None:
    """Declare the ``mls_model_versions`` alias among the task's outlets (parse time; no I/O).

    Airflow 3 only. Airflow 2.11's ``DatasetAlias`` events fail a run whose DAG the scheduler has
    not synced yet (``airflow dags test`` on a fresh DB: "Can't flush None value found in collection
    DatasetModel.aliases"), so there the tasks declare nothing and send no dataset events.
    """
    from airflow_provider_mls._compat import AIRFLOW_V_3_0_PLUS

    if not AIRFLOW_V_3_0_PLUS:
        return
    from airflow_provider_mls.assets import MODEL_VERSIONS_ALIAS, model_versions_alias

    outlets = list(task.outlets or [])
    if not any(getattr(o, "name", None) == MODEL_VERSIONS_ALIAS for o in outlets):
        task.outlets = [*outlets, model_versions_alias()]


def profile(task: Any) -> MLSProfile:
    """The task's MLS connection's env and console URL (read once per task run)."""
    from airflow_provider_mls.assets import MLSProfile

    cached: MLSProfile | None = getattr(task, "_mls_profile", None)
    if cached is None:
        cached = MLSProfile.of(getattr(task, "mls_conn_id", None))
        task._mls_profile = cached
    return cached


def persist_mls_links(task: Any, context: Any, refs: Mapping[str, Any]) -> None:
    """``persist_links`` of the MLS operators: the MLS model (with a ``console_url``), the model package."""
    arn = refs.get("model_package_arn")
    if arn:
        task._mls_model_package_arn = arn
        SageMakerModelPackageLink.persist(context, model_package_url(str(arn)))
    if refs.get("model_id") is not None:
        task._mls_model_id = refs["model_id"]
        p = profile(task)
        url = mls_model_url(p.console_url, model_id=refs["model_id"], env=p.env, **_name_version(task, refs))
        MLSModelLink.persist(context, url)


def _name_version(task: Any, refs: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: refs.get(k, getattr(task, k, None)) for k in ("name", "version")}
    return {k: v for k, v in values.items() if isinstance(v, str | int) and v != ""}


def persist_aws_links(task: Any, context: Any, refs: Mapping[str, Any]) -> None:
    """``persist_links`` of the AWS operators: the model package, the prediction table, the registry artifact."""
    if refs.get("model_package_arn"):
        SageMakerModelPackageLink.persist(context, model_package_url(str(refs["model_package_arn"])))
    region = refs.get("region")
    if refs.get("table") and region:
        PredictionTableLink.persist(context, prediction_table_url(str(refs["table"]), str(region)))
    if refs.get("bucket") and refs.get("prefix"):
        RegistryArtifactLink.persist(
            context, registry_artifact_url(str(refs["bucket"]), str(refs["prefix"]), region)
        )


def record_lineage(task: Any, *, inputs: list[Ref | None] = (), outputs: list[Ref | None] = ()) -> None:  # type: ignore[assignment]
    """Keep what the task read and wrote for ``get_openlineage_facets_on_complete``."""
    from airflow_provider_mls.lineage import Lineage

    lineage: Lineage = getattr(task, "_mls_lineage", None) or Lineage()
    lineage.inputs.extend(ref for ref in inputs if ref is not None)
    lineage.outputs.extend(ref for ref in outputs if ref is not None)
    task._mls_lineage = lineage


def lineage_of(task: Any) -> Lineage | None:
    """What the task recorded; a DynamoDB table recorded by name gets its ARN (account) now, when lineage is asked."""
    lineage: Lineage | None = getattr(task, "_mls_lineage", None)
    tables = getattr(task, "tables", None)
    if lineage is not None and tables is not None:
        from airflow_provider_mls.lineage import dynamodb_table

        for i, ref in enumerate(lineage.outputs):
            if ref.namespace.startswith("arn:aws:dynamodb:") and ref.namespace.endswith(":"):
                try:
                    arn = tables.get_conn().describe_table(TableName=ref.name.removeprefix("table/"))
                except Exception as exc:
                    task.log.warning("Lineage: no ARN for table %s: %s", ref.name, exc)
                    continue
                resolved = dynamodb_table(ref.name, table_arn=arn["Table"]["TableArn"])
                resolved.facets.update(ref.facets)
                lineage.outputs[i] = resolved
    return lineage


def record_model_version(task: Any, context: Any, model: Mapping[str, Any], *, new: bool = True) -> None:
    """A deploy or update wrote this model version: its lineage, its MLS link, and (when ``new``) its asset event.

    Lineage: input the model data (``s3://`` or a file) and the SageMaker model package it came from
    (if any); output the MLS model version ``mls://<env>``, ``<name>/<version>``.
    """
    from airflow_provider_mls import lineage as ol
    from airflow_provider_mls.assets import record_model_version as add_event

    p = profile(task)
    name, version = model.get("name"), model.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return
    features = model.get("features")
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    arn = getattr(task, "_mls_model_package_arn", None)
    record_lineage(
        task,
        inputs=[
            ol.mls_model_data(model.get("model_data"), p.registry_bucket),
            ol.model_package(arn) if arn else None,
        ],
        outputs=[ol.mls_model_version(p.env, name, version, features=features or None)],
    )
    if model.get("id") is not None:
        persist_mls_links(task, context, {"model_id": model["id"], "name": name, "version": version})
    if new and add_event(context, model, p.env):
        task.log.info("Asset event: %s version %s", name, version)


def aws_region(hook: Any) -> str | None:
    """The region of an AWS hook's client, for console links; None when the client cannot be built.

    Never raises: the task's own call reports a bad setting (it validates its input first).
    """
    try:
        region = hook.get_conn().meta.region_name
    except Exception:
        return None
    return str(region) if region else None
