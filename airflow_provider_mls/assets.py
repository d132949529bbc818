"""MLS models as Airflow assets: the ``mls://`` URI scheme and the event of a new model version.

The URI of an MLS model is ``mls://<env>/<model name>``: ``env`` is the MLS env of the connection
(``dev``, ``stg``, ``prd``, ``dev_land``, ``stg_land``, ``prd_land``, ``local``; the runtime env
and a ``host`` override do not change which MLS it is), and the name is percent-encoded. A new
version of a model is an *event* of that asset, with the version in the event's extra::

    {"name": "churn", "version": "v2", "model_id": 12, "env": "prd"}

The deploy and update tasks declare the outlet alias ``mls_model_versions`` (names may be templated
or mapped, and the env comes from the connection when the task runs) and add one event of
``mls://<env>/<name>`` to it when they created or changed a model version; a DAG scheduled on
``model_asset("churn", env="prd")`` runs after each such event. Airflow 2.11: the URI scheme and
``model_asset`` work (a ``Dataset``), but the tasks send no events there: a ``DatasetAlias`` event
fails ``airflow dags test`` of a DAG the scheduler has not synced (an Airflow 2.11 bug), so the
tasks declare no alias on 2.11.

OpenLineage sees an MLS model version as the dataset ``(namespace "mls://<env>", name
"<model name>/<version>")``; the asset converter maps the asset to ``(mls://<env>, <name>)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from collections.abc import Mapping
    from urllib.parse import SplitResult

__all__ = [
    "MODEL_VERSIONS_ALIAS",
    "SCHEME",
    "MLSProfile",
    "model_asset",
    "model_uri",
    "model_versions_alias",
    "openlineage_namespace",
    "parse_model_uri",
    "record_model_version",
]

SCHEME = "mls"
MODEL_VERSIONS_ALIAS = "mls_model_versions"


def _env_value(env: object) -> str:
    """The MLS env as the hook reads it (no hook import: DAG files call this at parse time)."""
    from airflow_provider_mls.constants import DEFAULT_ENV, MLSEnv

    if env is None or env == "":
        return DEFAULT_ENV.value
    try:
        return MLSEnv(str(env).strip().lower()).value
    except ValueError:
        allowed = ", ".join(e.value for e in MLSEnv)
        raise ValueError(f"env: unknown MLS env {env!r}; expected one of {allowed}") from None


def model_uri(name: str, env: str = "stg") -> str:
    """``mls://<env>/<name>``; the env is checked (one of the MLS envs), the name must not be empty."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an MLS model name is a non-empty string, got {name!r}")
    return f"{SCHEME}://{_env_value(env)}/{quote(name, safe='')}"


def parse_model_uri(uri: str) -> tuple[str, str]:
    """(env, name) of an ``mls://`` URI."""
    from urllib.parse import urlsplit

    parsed = urlsplit(uri)
    name = unquote(parsed.path.lstrip("/"))
    if parsed.scheme != SCHEME or not parsed.netloc or not name or "/" in parsed.path.strip("/"):
        raise ValueError(f"not an MLS model URI (mls://<env>/<model name>): {uri!r}")
    return _env_value(parsed.netloc), name


def model_asset(name: str, env: str = "stg") -> Any:
    """The asset of an MLS model (a ``Dataset`` on Airflow 2.11), for a consumer's ``schedule``."""
    from airflow_provider_mls._compat import Asset

    return Asset(uri=model_uri(name, env))


def model_versions_alias() -> Any:
    """The outlet alias the deploy and update tasks add their model version events to."""
    from airflow_provider_mls._compat import AssetAlias

    return AssetAlias(name=MODEL_VERSIONS_ALIAS)


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Airflow's URI handler of the ``mls`` scheme: a known env (lower case), one path segment."""
    env, name = parse_model_uri(uri.geturl())
    return uri._replace(netloc=env, path="/" + quote(name, safe=""), query="", fragment="")


def openlineage_namespace(env: str) -> str:
    """The OpenLineage namespace of an MLS env: ``mls://<env>``."""
    return f"{SCHEME}://{_env_value(env)}"


def convert_asset_to_openlineage(asset: Any, lineage_context: Any = None) -> Any:
    """The OpenLineage dataset of an ``mls://`` asset (Airflow's ``to_openlineage_converter``)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    env, name = parse_model_uri(asset.uri)
    return Dataset(namespace=openlineage_namespace(env), name=name)


@dataclass(frozen=True)
class MLSProfile:
    """What the links, assets and lineage need of an MLS connection: env, console URL, registry bucket."""

    env: str
    console_url: str | None = None
    registry_bucket: str | None = None

    @classmethod
    def of(cls, mls_conn_id: str | None) -> MLSProfile:
        """Read from the connection (the default env when there is no connection id)."""
        from airflow_provider_mls.hooks._config import get_extra  # when a task runs

        extras: Mapping[str, Any] = {}
        if mls_conn_id:
            from airflow_provider_mls._compat import BaseHook

            extras = BaseHook.get_connection(mls_conn_id).extra_dejson or {}
        from airflow_provider_mls.constants import REGISTRY_BUCKETS, MLSEnv

        env = _env_value(get_extra(extras, "env"))
        console_url = get_extra(extras, "console_url")
        bucket = get_extra(extras, "registry_bucket") or REGISTRY_BUCKETS[MLSEnv(env)]
        return cls(env, str(console_url) if console_url else None, str(bucket))


def record_model_version(context: Mapping[str, Any] | Any, model: Mapping[str, Any], env: str) -> bool:
    """Add the event "a new version of this model" to the task's ``mls_model_versions`` alias.

    ``model`` is the model as MLS returned it (``name``, ``version``, ``id``). Nothing happens when
    the task does not declare the alias (e.g. ``outlets`` given explicitly without it). Returns
    whether an event was added.
    """
    task = context.get("task") if hasattr(context, "get") else None
    outlet_events = context.get("outlet_events") if hasattr(context, "get") else None
    if task is None or outlet_events is None:
        return False
    if not any(getattr(o, "name", None) == MODEL_VERSIONS_ALIAS and _is_alias(o) for o in task.outlets or ()):
        return False
    from airflow_provider_mls._compat import Asset

    name, version = model.get("name"), model.get("version")
    extra = {"name": name, "version": version, "model_id": model.get("id"), "env": _env_value(env)}
    outlet_events[model_versions_alias()].add(Asset(uri=model_uri(str(name), env)), extra=extra)
    return True


def _is_alias(outlet: Any) -> bool:
    from airflow_provider_mls._compat import AssetAlias

    return isinstance(outlet, AssetAlias)
