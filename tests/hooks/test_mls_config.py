"""Connection handling of MLSHook: base URL rule, extras, settings, UI metadata. No server needed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_mls.constants import BASE_URLS, MLSEnv, MLSRuntimeEnv
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.get_provider_info import get_provider_info
from airflow_provider_mls.hooks._config import resolve_base_url
from airflow_provider_mls.hooks.mls import MLSHook


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str = "mls_default", **fields: Any) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "mls", **fields}))


@pytest.mark.parametrize(("runtime_env", "env"), sorted(BASE_URLS, key=str))
def test_every_table_pair(monkeypatch: pytest.MonkeyPatch, runtime_env: MLSRuntimeEnv, env: MLSEnv) -> None:
    set_conn(monkeypatch, login="u", password="p", extra={"env": env.value, "runtime_env": runtime_env.value})
    assert MLSHook().base_url == BASE_URLS[(runtime_env, env)]


def test_every_pair_outside_the_table_is_rejected() -> None:
    for runtime_env in MLSRuntimeEnv:
        for env in MLSEnv:
            if (runtime_env, env) in BASE_URLS:
                continue
            with pytest.raises(MLSValidationError) as err:
                resolve_base_url(host=None, env=env.value, runtime_env=runtime_env.value)
            assert err.value.field == "env"
            assert "runtime_env" in str(err.value)


def test_defaults_are_stg_local(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, login="u", password="p")
    assert MLSHook().base_url == "https://ab.stg.sktmls.com"


def test_ui_prefixed_extras_and_case(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        login="u",
        password="p",
        extra={"extra__mls__env": "PRD", "extra__mls__runtime_env": "ye"},
    )
    assert MLSHook().base_url == "https://ab-internal.sktmls.com"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"env": "qa"}, "env"),
        ({"runtime_env": "MARS"}, "runtime_env"),
        ({"env": "local", "runtime_env": "YE"}, "env"),
    ],
)
def test_unknown_env_values(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str], field: str) -> None:
    set_conn(monkeypatch, login="u", password="p", extra=extra)
    with pytest.raises(MLSValidationError) as err:
        MLSHook().base_url  # noqa: B018
    assert err.value.field == field


@pytest.mark.parametrize(
    ("host", "port", "schema", "expected"),
    [
        ("http://127.0.0.1:8765", None, None, "http://127.0.0.1:8765"),
        ("https://proxy.example.com/mls/", None, None, "https://proxy.example.com/mls"),
        ("127.0.0.1", 8765, None, "http://127.0.0.1:8765"),
        ("localhost", None, None, "http://localhost"),
        ("::1", 8000, None, "http://[::1]:8000"),
        ("mls.example.com", 8443, None, "https://mls.example.com:8443"),
        ("mls.example.com", None, "http", "http://mls.example.com"),
        ("127.0.0.1", 8765, "https", "https://127.0.0.1:8765"),
        ("mls.example.com/prefix", 8080, None, "https://mls.example.com:8080/prefix"),
    ],
)
def test_host_overrides_table(host: str, port: int | None, schema: str | None, expected: str) -> None:
    assert resolve_base_url(host=host, port=port, schema=schema, env="prd", runtime_env="YE") == expected


def test_uri_connection_with_bare_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_URI", "mls://u:p@127.0.0.1:8765?env=local")
    assert MLSHook("mls_uri").base_url == "http://127.0.0.1:8765"


def test_constructor_never_reads_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLS_DEFAULT", raising=False)
    hook = MLSHook("does_not_exist", timeout=5, max_retries=2)
    assert hook.timeout == (5.0, 5.0)
    assert hook.max_retries == 2


def test_settings_from_extras_and_constructor_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        login="u",
        password="p",
        extra={"timeout": 20, "read_timeout": 90, "max_retries": "3"},
    )
    settings = MLSHook()._settings()
    assert settings.timeout == (20.0, 90.0)
    assert settings.max_retries == 3
    set_conn(monkeypatch, login="u", password="p", extra={"max_retries": 0, "timeout": [3, 4]})
    assert MLSHook()._settings().max_retries == 0
    assert MLSHook()._settings().timeout == (3.0, 4.0)
    settings = MLSHook(timeout=(1, 2), max_retries=0)._settings()
    assert settings.timeout == (1.0, 2.0)
    assert settings.max_retries == 0
    set_conn(monkeypatch, login="u", password="p")
    settings = MLSHook()._settings()
    assert settings.timeout == (10.0, 60.0)
    assert settings.max_retries == 5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": (1, 2, 3)}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"write_settle": -0.5}, "write_settle"),
        ({"write_settle": 31}, "write_settle"),
    ],
)
def test_bad_constructor_settings(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(MLSValidationError) as err:
        MLSHook(**kwargs)
    assert err.value.field == field


def test_bad_extra_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, login="u", password="p", extra={"connect_timeout": "soon"})
    with pytest.raises(MLSValidationError) as err:
        MLSHook()._settings()
    assert err.value.field == "connect_timeout"


def test_write_settle_from_extras_and_constructor_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, login="u", password="p")
    assert MLSHook()._settings().write_settle == 1.0
    set_conn(monkeypatch, login="u", password="p", extra={"write_settle": "6"})
    assert MLSHook()._settings().write_settle == 6.0
    assert MLSHook(write_settle=0.2)._settings().write_settle == 0.2
    set_conn(monkeypatch, login="u", password="p", extra={"write_settle": "later"})
    with pytest.raises(MLSValidationError) as err:
        MLSHook()._settings()
    assert err.value.field == "write_settle"


def test_ui_metadata_matches_provider_info() -> None:
    info = get_provider_info()["connection-types"][0]
    assert info["connection-type"] == MLSHook.conn_type
    assert info["hook-name"] == MLSHook.hook_name
    behaviour = MLSHook.get_ui_field_behaviour()
    declared = info["ui-field-behaviour"]
    assert behaviour["hidden_fields"] == declared["hidden-fields"]
    assert behaviour["relabeling"] == declared["relabeling"]
    assert MLSHook.conn_name_attr == "mls_conn_id"
    assert MLSHook.default_conn_name == "mls_default"


def test_connection_form_widgets() -> None:
    pytest.importorskip("flask_appbuilder")
    pytest.importorskip("wtforms")
    widgets = MLSHook.get_connection_form_widgets()
    assert set(widgets) == set(get_provider_info()["connection-types"][0]["conn-fields"])
