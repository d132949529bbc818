"""The ``mls`` connection form, defined once.

``get_provider_info`` publishes it declaratively (``conn-fields``, ``ui-field-behaviour``: Airflow 3.2+
reads these without importing the hook) and ``MLSHook`` serves the classic methods from it
(Airflow 2.11). Light on purpose: provider discovery imports this module.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mls.constants import DEFAULT_ENV, DEFAULT_RUNTIME_ENV, MLSEnv, MLSRuntimeEnv

HIDDEN_FIELDS: list[str] = ["schema", "port"]
RELABELING: dict[str, str] = {
    "login": "MLS username",
    "password": "MLS password",
    "host": "Base URL (optional, overrides env/runtime_env)",
}
PLACEHOLDERS: dict[str, str] = {
    "host": "http://127.0.0.1:8765",
    "login": "mls_account",
    "extra": '{"env": "stg", "runtime_env": "LOCAL"}',
}

# Extra fields: name -> (label, description, allowed values (None: free text), default).
EXTRA_FIELDS: dict[str, tuple[str, str, list[str] | None, str | None]] = {
    "env": (
        "MLS env",
        "dev, stg, prd, dev_land, stg_land, prd_land or local (default stg)",
        [e.value for e in MLSEnv],
        DEFAULT_ENV.value,
    ),
    "runtime_env": (
        "Runtime env",
        "Where the client runs: YE, EDD or LOCAL (default LOCAL)",
        [e.value for e in MLSRuntimeEnv],
        DEFAULT_RUNTIME_ENV.value,
    ),
    "registry_bucket": (
        "Model registry bucket",
        "The S3 bucket of the MLS model registry (default: the env's, mls-model-registry[-stg|-prd])",
        None,
        None,
    ),
}


def ui_field_behaviour() -> dict[str, Any]:
    """The classic ``get_ui_field_behaviour()`` shape."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


def declarative_ui_field_behaviour() -> dict[str, Any]:
    """The provider-info ``ui-field-behaviour`` shape."""
    return {
        "hidden-fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


def declarative_conn_fields() -> dict[str, Any]:
    """The provider-info ``conn-fields``."""
    fields: dict[str, Any] = {}
    for name, (label, description, values, default) in EXTRA_FIELDS.items():
        schema: dict[str, Any] = {"type": ["string", "null"]}
        if values is not None:
            schema["enum"] = [*values, None]
        if default is not None:
            schema["default"] = default
        fields[name] = {"label": label, "description": description, "schema": schema}
    return fields


def connection_form_widgets() -> dict[str, Any]:
    """The classic form widgets (Flask AppBuilder, imported here only: the Airflow 2 UI has it)."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import StringField

    return {
        name: StringField(lazy_gettext(label), widget=BS3TextFieldWidget(), description=description)
        for name, (label, description, _values, _default) in EXTRA_FIELDS.items()
    }
