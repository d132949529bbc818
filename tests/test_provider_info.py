"""The provider registers with Airflow: valid provider info, discovered package, connection type ``mls``."""

from __future__ import annotations

import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest


def _schema() -> dict[str, object]:
    import airflow

    path = Path(airflow.__file__).parent / "provider_info.schema.json"
    return json.loads(path.read_text())


def test_entry_point_is_registered() -> None:
    eps = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_provider_mls")
    ]
    assert len(eps) == 1
    info = eps[0].load()()
    assert info["package-name"] == "airflow-provider-mls"


def test_provider_info_validates_against_installed_airflow_schema() -> None:
    import jsonschema

    from airflow_provider_mls.get_provider_info import get_provider_info

    jsonschema.validate(get_provider_info(), _schema())


def test_provider_info_rejects_a_broken_document() -> None:
    """The schema check above can fail: a document without `name` does not validate."""
    import jsonschema

    from airflow_provider_mls.get_provider_info import get_provider_info

    broken = get_provider_info()
    del broken["name"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema())


def test_every_class_named_in_provider_info_imports() -> None:
    from airflow_provider_mls.get_provider_info import get_provider_info

    info = get_provider_info()
    assert "hook-class-names" not in info  # deprecated by Airflow: connection-types names the hook
    names = [c["hook-class-name"] for c in info["connection-types"]]
    for dotted in names:
        module, _, cls = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), cls), dotted


def test_every_module_named_in_provider_info_imports_and_names_a_known_integration() -> None:
    from airflow_provider_mls.get_provider_info import get_provider_info

    info = get_provider_info()
    integrations = {i["integration-name"] for i in info["integrations"]}
    for section in ("operators", "sensors", "hooks", "triggers"):
        assert info[section], section
        for entry in info[section]:
            assert entry["integration-name"] in integrations, (section, entry)
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_declarative_form_matches_the_hook_methods() -> None:
    from airflow_provider_mls.get_provider_info import get_provider_info
    from airflow_provider_mls.hooks.mls import MLSHook

    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == MLSHook.conn_type == "mls"
    behaviour = MLSHook.get_ui_field_behaviour()
    declared = conn_type["ui-field-behaviour"]
    assert behaviour["hidden_fields"] == declared["hidden-fields"] == ["schema", "port"]
    assert behaviour["relabeling"] == declared["relabeling"]
    assert behaviour["relabeling"]["login"] == "MLS username"
    fields = conn_type["conn-fields"]
    assert set(fields) == {
        "env",
        "runtime_env",
        "registry_bucket",
        "console_url",
        "timeout",
        "connect_timeout",
        "read_timeout",
        "max_retries",
        "write_settle",
    }
    assert fields["registry_bucket"]["schema"] == {  # free text, the env buckets suggested
        "type": ["string", "null"],
        "examples": ["mls-model-registry", "mls-model-registry-prd", "mls-model-registry-stg"],
    }
    assert fields["env"]["schema"]["default"] == "stg"
    assert "dev_land" in fields["env"]["schema"]["enum"]
    assert fields["runtime_env"]["schema"]["default"] == "LOCAL"
    assert fields["max_retries"]["schema"] == {"type": ["integer", "null"], "minimum": 0}
    for name in ("timeout", "connect_timeout", "read_timeout"):
        assert fields[name]["schema"] == {"type": ["number", "null"], "exclusiveMinimum": 0}, name
    assert fields["write_settle"]["schema"] == {"type": ["number", "null"], "minimum": 0, "maximum": 30}
    assert "verify delay of updates" in fields["write_settle"]["description"]


def test_dropdowns_offer_real_values_only_and_stay_optional() -> None:
    """A ``None`` in the enum is what made the Airflow 3 UI show a literal ``null`` choice."""
    import jsonschema

    from airflow_provider_mls._connection_form import declarative_conn_fields

    for name in ("env", "runtime_env"):
        schema = declarative_conn_fields()[name]["schema"]
        assert None not in schema["enum"], name
        assert "null" in schema["type"], name  # optional: the hook applies the default
        jsonschema.validate(schema["default"], schema)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate("nope", schema)


def test_short_host_label_and_placeholders() -> None:
    from airflow_provider_mls._connection_form import declarative_ui_field_behaviour

    behaviour = declarative_ui_field_behaviour()
    assert behaviour["relabeling"]["host"] == "Base URL"
    placeholders = behaviour["placeholders"]
    assert "127.0.0.1" not in placeholders["host"] and "localhost" not in placeholders["host"]
    assert placeholders["registry_bucket"]
    assert "{model_id}" in placeholders["console_url"]


def test_form_defaults_match_the_hook_defaults() -> None:
    """The descriptions name the defaults the hook applies."""
    from airflow_provider_mls._connection_form import FIELDS_BY_NAME
    from airflow_provider_mls.hooks._config import DEFAULT_TIMEOUT, DEFAULT_WRITE_SETTLE, MAX_WRITE_SETTLE
    from airflow_provider_mls.hooks._retry import DEFAULT_MAX_RETRIES

    connect, read = DEFAULT_TIMEOUT
    assert f"default {connect:g}" in FIELDS_BY_NAME["connect_timeout"].description
    assert f"default {read:g}" in FIELDS_BY_NAME["read_timeout"].description
    assert f"default {DEFAULT_MAX_RETRIES}" in FIELDS_BY_NAME["max_retries"].description
    settle = FIELDS_BY_NAME["write_settle"]
    assert f"default {DEFAULT_WRITE_SETTLE:g}" in settle.description
    assert f"0 to {MAX_WRITE_SETTLE:g}" in settle.description and settle.maximum == MAX_WRITE_SETTLE


def test_typed_form_values_are_what_the_hook_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the form saves (numbers as JSON numbers) configures the hook."""
    import json

    from airflow_provider_mls.hooks.mls import MLSHook

    extra = {"env": "local", "connect_timeout": 2.5, "read_timeout": 30, "max_retries": 0, "write_settle": 0}
    conn = {"conn_type": "mls", "host": "http://127.0.0.1:9", "login": "u", "password": "p", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_MLS_FORM", json.dumps(conn))
    settings = MLSHook(mls_conn_id="mls_form")._settings()
    assert settings.timeout == (2.5, 30.0)
    assert settings.max_retries == 0
    assert settings.write_settle == 0


def test_classic_form_widgets_match_the_declarative_fields() -> None:
    pytest.importorskip("flask_appbuilder", reason="the classic form needs the Flask UI (Airflow 2)")
    from airflow_provider_mls.get_provider_info import get_provider_info
    from airflow_provider_mls.hooks.mls import MLSHook

    (conn_type,) = get_provider_info()["connection-types"]
    widgets = MLSHook.get_connection_form_widgets()
    assert set(widgets) == set(conn_type["conn-fields"])
    # Airflow 2.11 accepts string, integer, password and boolean fields only.
    assert widgets["env"].field_class.__name__ == "StringField"
    assert widgets["max_retries"].field_class.__name__ == "IntegerField"
    assert widgets["read_timeout"].field_class.__name__ == "StringField"
    assert widgets["write_settle"].field_class.__name__ == "StringField"
    assert widgets["registry_bucket"].field_class.__name__ == "StringField"


def test_providers_manager_discovers_the_package_and_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert "airflow-provider-mls" in pm.providers
    try:  # Airflow 3.2+: hooks are resolved by the task runtime's manager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hooks = ProvidersManagerTaskRuntime().hooks
    except ImportError:
        hooks = pm.hooks
    assert "mls" in hooks
    hook_info = hooks["mls"]
    assert hook_info is not None
    assert hook_info.hook_class_name == "airflow_provider_mls.hooks.mls.MLSHook"
    assert hook_info.connection_id_attribute_name == "mls_conn_id"


def test_airflow_loads_the_connection_form() -> None:
    """What the UI shows: the env/runtime_env fields and the relabelled, trimmed form (both versions)."""
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    assert {"extra__mls__env", "extra__mls__runtime_env"} <= set(pm.connection_form_widgets)
    behaviour = pm.field_behaviours["mls"]
    assert behaviour["hidden_fields"] == ["schema", "port"]
    assert behaviour["relabeling"]["password"] == "MLS password"


def test_extra_links_are_registered_operator_links() -> None:
    from airflow.providers.common.compat.sdk import BaseOperatorLink
    from airflow.providers_manager import ProvidersManager

    from airflow_provider_mls.get_provider_info import get_provider_info
    from airflow_provider_mls.links import ALL_LINKS

    names = get_provider_info()["extra-links"]
    assert names == [f"{link.__module__}.{link.__qualname__}" for link in ALL_LINKS]
    for dotted in names:
        module, _, cls = dotted.rpartition(".")
        link = getattr(importlib.import_module(module), cls)
        assert issubclass(link, BaseOperatorLink), dotted
    assert set(names) <= set(ProvidersManager().extra_links_class_names)


def test_the_mls_uri_scheme_is_registered_with_airflow() -> None:
    from airflow.providers_manager import ProvidersManager

    pm = ProvidersManager()
    handlers = getattr(pm, "asset_uri_handlers", None)
    if handlers is None:  # Airflow 2.11: datasets
        handlers = pm.dataset_uri_handlers
    from airflow_provider_mls.assets import sanitize_uri

    assert handlers["mls"] is sanitize_uri
