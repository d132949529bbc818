"""The ``mls`` connection form, defined once.

``get_provider_info`` publishes it declaratively (``conn-fields``, ``ui-field-behaviour``: Airflow 3.2+
reads these without importing the hook) and ``MLSHook`` serves the classic methods from it
(Airflow 2.11). Light on purpose: provider discovery imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_mls.constants import (
    DEFAULT_ENV,
    DEFAULT_RUNTIME_ENV,
    REGISTRY_BUCKETS,
    MLSEnv,
    MLSRuntimeEnv,
)

HIDDEN_FIELDS: list[str] = ["schema", "port"]
RELABELING: dict[str, str] = {
    "login": "MLS username",
    "password": "MLS password",
    "host": "Base URL",
}
# Placeholders of the standard fields; those of the extra fields are on the fields below.
_PLACEHOLDERS: dict[str, str] = {
    "host": "optional: overrides env and runtime_env",
    "login": "mls_account",
    "extra": '{"env": "stg", "runtime_env": "LOCAL"}',
}


@dataclass(frozen=True)
class ExtraField:
    """One extra of the form: a dropdown (``choices``), free text, or a number."""

    name: str
    label: str
    description: str
    kind: Literal["text", "number", "integer"] = "text"
    choices: tuple[str, ...] = ()
    default: str | None = None
    placeholder: str | None = None  # Airflow 2.11's form and the standard fields
    examples: tuple[str, ...] = ()  # Airflow 3's form: suggestions (a datalist) of a text field
    minimum: int | None = None  # numbers: the smallest accepted value (exclusive for "number"...)
    zero_ok: bool = False  # ... unless 0 is a valid "number": then inclusive
    maximum: int | None = None  # numbers: the largest accepted value (inclusive)


EXTRA_FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "env",
        "MLS env",
        "dev, stg, prd, dev_land, stg_land, prd_land or local (default stg)",
        choices=tuple(e.value for e in MLSEnv),
        default=DEFAULT_ENV.value,
    ),
    ExtraField(
        "runtime_env",
        "Runtime env",
        "Where the worker runs: YE, EDD or LOCAL (default LOCAL)",
        choices=tuple(e.value for e in MLSRuntimeEnv),
        default=DEFAULT_RUNTIME_ENV.value,
    ),
    ExtraField(
        "registry_bucket",
        "Model registry bucket",
        "The S3 bucket of the MLS model registry (default: the env's, mls-model-registry[-stg|-prd])",
        placeholder="mls-model-registry-stg",
        examples=tuple(sorted(set(REGISTRY_BUCKETS.values()))),
    ),
    ExtraField(
        "console_url",
        "MLS console URL",
        "Optional: the MLS console's page of a model, with {model_id}, {name}, {version} or {env} "
        "(the 'MLS model' link of the deploy tasks)",
        placeholder="https://mls.example.com/models/{model_id}",
    ),
    ExtraField(
        "timeout",
        "Timeout (s)",
        "Connect and read timeout of each request, in seconds (default 10 to connect, 60 to read)",
        kind="number",
        minimum=0,
    ),
    ExtraField(
        "connect_timeout", "Connect timeout (s)", "Seconds to connect (default 10)", "number", minimum=0
    ),
    ExtraField(
        "read_timeout", "Read timeout (s)", "Seconds to wait for an answer (default 60)", "number", minimum=0
    ),
    ExtraField(
        "max_retries",
        "Max retries",
        "Retries of a transient failure of a call that is safe to repeat (default 5)",
        kind="integer",
        minimum=0,
    ),
    ExtraField(
        "write_settle",
        "Write settle (s)",
        "Optional: the verify delay of updates: seconds an update waits after its write before the "
        "read that verifies it (0 to 30, default 1); raise it where requests can be held for seconds",
        kind="number",
        minimum=0,
        zero_ok=True,
        maximum=30,
    ),
)
FIELDS_BY_NAME: dict[str, ExtraField] = {f.name: f for f in EXTRA_FIELDS}


def _placeholders() -> dict[str, str]:
    extra = {f.name: f.placeholder for f in EXTRA_FIELDS if f.placeholder is not None}
    return {**_PLACEHOLDERS, **extra}


def ui_field_behaviour() -> dict[str, Any]:
    """The classic ``get_ui_field_behaviour()`` shape."""
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": _placeholders(),
    }


def declarative_ui_field_behaviour() -> dict[str, Any]:
    """The provider-info ``ui-field-behaviour`` shape."""
    return {
        "hidden-fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": _placeholders(),
    }


def field_schema(field: ExtraField) -> dict[str, Any]:
    """The JSON schema of one extra; optional (null allowed), but a dropdown offers real values only."""
    schema: dict[str, Any] = {"type": [field.kind if field.kind != "text" else "string", "null"]}
    if field.choices:
        schema["enum"] = list(field.choices)  # no None: the UI would show a literal "null" choice
    if field.examples:
        schema["examples"] = list(field.examples)
    if field.default is not None:
        schema["default"] = field.default
    if field.minimum is not None:
        exclusive = field.kind == "number" and not field.zero_ok
        schema["exclusiveMinimum" if exclusive else "minimum"] = field.minimum
    if field.maximum is not None:
        schema["maximum"] = field.maximum
    return schema


def declarative_conn_fields() -> dict[str, Any]:
    """The provider-info ``conn-fields``."""
    return {
        f.name: {"label": f.label, "description": f.description, "schema": field_schema(f)}
        for f in EXTRA_FIELDS
    }


def connection_form_widgets() -> dict[str, Any]:
    """The classic form widgets (Flask AppBuilder, imported here only: the Airflow 2 UI has it).

    Airflow 2.11 accepts only string, integer, password and boolean fields in a connection form:
    the dropdowns are text fields there (the description lists the values) and a number of seconds
    is a text field checked as a number.
    """
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import IntegerField, StringField
    from wtforms.validators import NumberRange, Optional, ValidationError

    def seconds(spec: ExtraField) -> Any:
        low = 0.0 if spec.minimum is None else float(spec.minimum)
        high = float("inf") if spec.maximum is None else float(spec.maximum)
        expected = f"{low:g} to {high:g}" if spec.zero_ok else f"> {low:g}"
        expected += "" if spec.zero_ok or spec.maximum is None else f" and <= {high:g}"

        def check(form: Any, field: Any) -> None:
            try:
                number = float(field.data)
                ok = (low <= number if spec.zero_ok else low < number) and number <= high
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValidationError(f"a number of seconds {expected}")

        return check

    widgets: dict[str, Any] = {}
    for f in EXTRA_FIELDS:
        label = lazy_gettext(f.label)
        if f.kind == "integer":
            validators: list[Any] = [Optional()]
            if f.minimum is not None:
                validators.append(NumberRange(min=f.minimum))
            widgets[f.name] = IntegerField(
                label, validators=validators, widget=BS3TextFieldWidget(), description=f.description
            )
        else:
            validators = [Optional(), seconds(f)] if f.kind == "number" else []
            widgets[f.name] = StringField(
                label, validators=validators, widget=BS3TextFieldWidget(), description=f.description
            )
    return widgets
