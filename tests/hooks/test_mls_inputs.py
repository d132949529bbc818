"""Secrets go to the masker; bad input fails before any request, naming the field."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.hooks.mls import MLSHook
from airflow_provider_mls.rules import META_MAX_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.hooks.conftest import RequestLog


def test_password_and_token_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.common.compat.sdk import redact

    password = "s3cr3t-mls-password-for-masking"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_MASK",
        json.dumps(
            {"conn_type": "mls", "login": "masked_user", "password": password, "host": "http://127.0.0.1:1"}
        ),
    )
    token = base64.b64encode(f"masked_user:{password}".encode()).decode()
    hook = MLSHook("mls_mask")
    session = hook.get_conn()  # reads the connection, no request
    assert session.headers["Authorization"] == f"Basic {token}"
    assert password not in str(redact(f"password is {password}"))
    assert token not in str(redact(f"Authorization: Basic {token}"))
    assert token not in str(redact(dict(session.headers)))
    assert password not in repr(hook._settings()) and token not in repr(hook._settings())


def test_secrets_not_in_error_messages(mls_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_BAD", f"mls://mls:wrong-password-xyz@127.0.0.1:{mls_server.port}?env=local"
    )
    ok, message = MLSHook("mls_bad", max_retries=0).test_connection()
    assert not ok and "wrong-password-xyz" not in message


BAD_CALLS: list[tuple[str, Callable[[MLSHook], Any], str]] = [
    ("model_lib", lambda h: h.create_manual_model("n", "v", model_lib="torch"), "model_lib"),
    ("empty name", lambda h: h.create_manual_model("", "v"), "name"),
    ("non-str version", lambda h: h.create_manual_model("n", 1), "version"),
    ("meta not dict", lambda h: h.create_manual_model("n", "v", model_meta=["x"]), "model_meta"),
    ("meta not json", lambda h: h.create_manual_model("n", "v", model_meta={"x": object()}), "model_meta.x"),
    ("features", lambda h: h.create_manual_model("n", "v", features=[1, 2]), "features"),
    ("components", lambda h: h.create_manual_model("n", "v", components="c1"), "components"),
    ("handler", lambda h: h.update_automl_model_server_handler(1, "def f(:\n  pass"), "handler"),
    ("neither id nor name", lambda h: h.get_manual_model(), "model_id"),
    ("name without version", lambda h: h.get_automl_model(name="n"), "model_id"),
    ("string id", lambda h: h.get_manual_model(id="5"), "model_id"),
    ("bool id", lambda h: h.get_manual_model(id=True), "model_id"),
    ("id beyond int64", lambda h: h.get_model(2**63), "model_id"),
    ("update id beyond int64", lambda h: h.update_manual_model_meta(2**63, {"a": 1}), "model_id"),
    ("negative id", lambda h: h.delete_model(-1), "model_id"),
    ("model ref", lambda h: h.delete_model("5"), "model_id"),
    ("model dict without id", lambda h: h.is_online_prediction_ready({"name": "n"}), "model_id"),
    ("prediction_type", lambda h: h.migrate_buckets(1, 2, prediction_type="bogus"), "prediction_type"),
    ("static without value", lambda h: h.migrate_buckets(1, prediction_type="static"), "static_value"),
    (
        "dataset both",
        lambda h: h.create_automl_model("n", "v", "d", dataset_id=1, dataset_name="x"),
        "dataset_id",
    ),
    ("dataset none", lambda h: h.create_automl_model("n", "v", "d"), "dataset_id"),
    ("update model_lib", lambda h: h.update_manual_model(1, model_lib="torch"), "model_lib"),
    ("update empty name", lambda h: h.update_manual_model(1, name=""), "name"),
    ("meta update", lambda h: h.update_manual_model_meta(1, "x"), "model_meta"),
    ("remove_keys", lambda h: h.update_manual_model_meta(1, {}, remove_keys="k"), "remove_keys"),
    ("list filter", lambda h: h.list_manual_models(id="1"), "id"),
    ("model_type", lambda h: list(h.iter_models("hybrid")), "model_type"),
    ("table", lambda h: h.is_table_active(""), "table"),
    ("batch without table", lambda h: h.is_batch_prediction_ready({"id": 1, "table": None}), "table"),
    # Finite JSON: NaN/Infinity name the path of the value, before any request (a merge sends no GET).
    (
        "meta NaN",
        lambda h: h.create_manual_model("n", "v", model_meta={"performance": {"auc": float("nan")}}),
        "model_meta.performance.auc",
    ),
    (
        "merge Infinity",
        lambda h: h.update_manual_model_meta(1, {"performance": {"loss": float("inf")}}, partial_update=True),
        "model_meta.performance.loss",
    ),
    (
        "meta list NaN",
        lambda h: h.update_manual_model(1, model_meta={"m": [1.0, float("-inf")]}),
        "model_meta.m[1]",
    ),
    (
        "static_value NaN",
        lambda h: h.migrate_buckets(1, prediction_type="static", static_value={"s": float("nan")}),
        "static_value.s",
    ),
    (
        "meta too big",
        lambda h: h.create_manual_model("n", "v", model_meta={"blob": "x" * META_MAX_BYTES}),
        "model_meta",
    ),
    # Shapes of what is written (the shared rules of airflow_provider_mls.rules).
    ("name with slash", lambda h: h.create_manual_model("../../etc/passwd", "v1"), "name"),
    ("name with newline", lambda h: h.create_manual_model("bad\nname", "v1"), "name"),
    ("name padded", lambda h: h.create_manual_model(" sp-x ", "v1"), "name"),
    ("name NUL", lambda h: h.create_manual_model("a\x00b", "v1"), "name"),
    ("name too long", lambda h: h.create_manual_model("n" * 10_000, "v1"), "name"),
    ("version with slash", lambda h: h.create_manual_model("n", "v1/../v2"), "version"),
    ("table with slash", lambda h: h.create_manual_model("n", "v1", table="a/b"), "table"),
    ("rename with slash", lambda h: h.update_manual_model(1, version="v/2"), "version"),
    ("component name", lambda h: h.update_manual_model_components(1, ["ok", "bad/one"]), "components[1]"),
    ("automl name", lambda h: h.create_automl_model("a b", "v1", "d", dataset_id=1), "name"),
    ("if_exists", lambda h: h.create_manual_model("n", "v1", if_exists="replace"), "if_exists"),
    (
        "automl if_exists",
        lambda h: h.create_automl_model("n", "v1", "d", dataset_id=1, if_exists="update"),
        "if_exists",
    ),
]


@pytest.mark.parametrize(("what", "call", "field"), BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_fails_before_any_request(
    hook: MLSHook, counter: RequestLog, what: str, call: Callable[[MLSHook], Any], field: str
) -> None:
    with pytest.raises(MLSValidationError) as err:
        call(hook)
    assert err.value.field == field, err.value
    assert len(counter) == 0
    # Nothing was answered by MLS: no HTTP-like code, and the message does not pretend otherwise.
    assert err.value.code is None and err.value.status is None
    assert not str(err.value).startswith("["), str(err.value)
    assert str(err.value).startswith(f"{field}: ")


def test_handler_error_names_the_line(hook: MLSHook) -> None:
    with pytest.raises(MLSValidationError, match="line 2"):
        hook.update_automl_model_server_handler(1, "x = 1\ny = (\n")
