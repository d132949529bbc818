"""The shared input rules (airflow_provider_mls.rules): what they refuse, and that mls-local refuses
exactly the same with a 400 naming the same field."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import requests

from airflow_provider_mls import rules
from airflow_provider_mls.exceptions import MLSValidationError

from .conftest import Api, assert_error, put_body, uniq

BAD_SEGMENTS = [
    pytest.param("x" * 10_000, "characters long", id="10000-chars"),
    pytest.param("a\x00b", "control character", id="nul"),
    pytest.param("bad\nname", "control character", id="newline"),
    pytest.param("tab\there", "control character", id="tab"),
    pytest.param("../../etc/passwd", "slash", id="traversal"),
    pytest.param("a\\b", "slash", id="backslash"),
    pytest.param(" sp-x ", "whitespace", id="surrounding-space"),
    pytest.param("a b", "may contain only", id="inner-space"),
    pytest.param("v1..2", "'..'", id="dotdot"),
    pytest.param("..", "'..'", id="dotdot-alone"),
    pytest.param("", "non-empty", id="empty"),
    pytest.param("모델", "may contain only", id="non-ascii"),
    pytest.param("a?b", "may contain only", id="query-char"),
    pytest.param("a%2Fb", "may contain only", id="percent"),
]
LEGIT_NAMES = ["m", "churn_batch", "lifecycle_model", "m-abc123", "m_4242_1700000000000", "Model.v2", "_x"]
LEGIT_VERSIONS = [
    "v1",
    "1",
    "1.5.2",
    "2024-06",
    "20240101T000000",
    "joblib-1",
    "v" * rules.VERSION_MAX_LENGTH,
]
LEGIT_TABLES = ["tbl", "tbl_1", "tbl_4242_1700000000000", "preds", "a.b-c_d", "x" * rules.TABLE_MAX_LENGTH]


# ---------------------------------------------------------------------------- the rules themselves
@pytest.mark.parametrize(("value", "why"), BAD_SEGMENTS)
@pytest.mark.parametrize(
    ("check", "field"),
    [
        (rules.check_name, "name"),
        (rules.check_version, "version"),
        (rules.check_table, "table"),
        (rules.check_component, "components"),
    ],
)
def test_bad_segments_are_refused_naming_the_field(check: Any, field: str, value: str, why: str) -> None:
    with pytest.raises(MLSValidationError) as err:
        check(value)
    assert err.value.field == field
    assert why in err.value.message
    assert len(str(err.value)) < 300  # a 10,000-character value is not echoed whole


@pytest.mark.parametrize("value", [None, 3, ["a"], b"bytes"])
def test_non_strings_are_refused(value: Any) -> None:
    for check in (rules.check_name, rules.check_version, rules.check_table, rules.check_component):
        with pytest.raises(MLSValidationError, match="string"):
            check(value)


def test_legit_values_pass_unchanged() -> None:
    for name in LEGIT_NAMES:
        assert rules.check_name(name) == name
        assert rules.check_component(name) == name
    for version in LEGIT_VERSIONS:
        assert rules.check_version(version) == version
    for table in LEGIT_TABLES:
        assert rules.check_table(table) == table


def test_lengths_and_leading_characters() -> None:
    assert rules.check_name("n" * rules.NAME_MAX_LENGTH)
    with pytest.raises(MLSValidationError, match="at most 128"):
        rules.check_name("n" * (rules.NAME_MAX_LENGTH + 1))
    with pytest.raises(MLSValidationError, match="at most 64"):
        rules.check_version("v" * (rules.VERSION_MAX_LENGTH + 1))
    with pytest.raises(MLSValidationError, match="at least 3"):
        rules.check_table("ab")
    with pytest.raises(MLSValidationError, match="at most 255"):
        rules.check_table("t" * 256)
    for bad in ("-rf", ".hidden"):
        with pytest.raises(MLSValidationError, match="starts with"):
            rules.check_name(bad)
    assert rules.check_table(".dot-first")  # DynamoDB allows it
    with pytest.raises(MLSValidationError) as err:
        rules.check_name("a/b", field="model_name")
    assert err.value.field == "model_name"


@pytest.mark.parametrize(
    ("meta", "path"),
    [
        ({"performance": {"auc": math.nan}}, "model_meta.performance.auc"),
        ({"performance": {"auc": math.inf}}, "model_meta.performance.auc"),
        ({"scores": [0.1, -math.inf]}, "model_meta.scores[1]"),
        ({"a b": {"c": [{"d": math.nan}]}}, 'model_meta["a b"].c[0].d'),
        ({"when": object()}, "model_meta.when"),
        ({"tags": {"x", "y"}}, "model_meta.tags"),
        ({"nested": {1: "int key"}}, "model_meta.nested"),
    ],
)
def test_meta_errors_name_the_path(meta: dict[str, Any], path: str) -> None:
    with pytest.raises(MLSValidationError) as err:
        rules.check_meta(meta)
    assert err.value.field == path
    assert str(err.value).startswith(f"[400] {path}: ") or str(err.value).startswith(f"{path}: ")


def test_meta_shape_depth_and_size() -> None:
    with pytest.raises(MLSValidationError, match="JSON object"):
        rules.check_meta([1, 2])
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(rules.META_MAX_DEPTH + 1):
        node["k"] = {}
        node = node["k"]
    with pytest.raises(MLSValidationError, match="levels deep"):
        rules.check_meta(deep)
    # the limit is on compact UTF-8 JSON: exactly at it passes, one byte over fails
    overhead = rules.json_size({"x": ""})
    at_limit = {"x": "y" * (rules.META_MAX_BYTES - overhead)}
    assert rules.json_size(at_limit) == rules.META_MAX_BYTES
    assert rules.check_meta(at_limit) is at_limit
    with pytest.raises(MLSValidationError, match="bytes as JSON") as err:
        rules.check_meta({"x": "y" * (rules.META_MAX_BYTES - overhead + 1)})
    assert err.value.field == "model_meta"
    good = {"name": "m", "performance": {"auc": 0.91}, "features": ["a", "b"], "n": None, "ok": True}
    assert rules.check_meta(good) == good
    assert rules.check_json([1, {"a": 2.5}], "info") == [1, {"a": 2.5}]


# ---------------------------------------------------------------------------- mls-local: the same rules
def _same_message(body: dict[str, Any], check: Any, value: Any, field: str) -> None:
    with pytest.raises(MLSValidationError) as err:
        check(value, field)
    assert body["error"] == err.value.message, (body, err.value.message)


@pytest.mark.parametrize(("value", "why"), BAD_SEGMENTS)
def test_server_refuses_bad_names_and_versions_like_the_rules(api: Api, value: str, why: str) -> None:
    status, body = api.post("/api/v1/models", {"model_type": "manual", "name": value, "version": "v1"})
    assert_error(status, body, 400, "name")
    _same_message(body, rules.check_name, value, "name")
    status, body = api.post("/api/v1/models", {"model_type": "manual", "name": uniq("m"), "version": value})
    assert_error(status, body, 400, "version")
    _same_message(body, rules.check_version, value, "version")
    status, body = api.post("/api/v1/components", {"name": value, "info": "i"})
    assert_error(status, body, 400, "name")


def test_server_refuses_bad_tables_components_and_meta(api: Api) -> None:
    name = uniq("m")
    for table in ("a/b", "ab", "t\x00x", " tbl"):
        status, body = api.post(
            "/api/v1/models", {"model_type": "manual", "name": name, "version": "v1", "table": table}
        )
        assert_error(status, body, 400, "table")
        _same_message(body, rules.check_table, table, "table")
    status, body = api.post(
        "/api/v1/models", {"model_type": "manual", "name": name, "version": "v1", "components": ["a/b"]}
    )
    assert_error(status, body, 400, "components")
    assert "slash" in body["error"]
    # NaN cannot be sent with a strict JSON encoder, but Python's default one writes it
    raw = json.dumps({"model_type": "manual", "name": name, "version": "v1",
                      "model_meta": {"performance": {"auc": math.nan}}})  # fmt: skip
    status, body = api.call("POST", "/api/v1/models", data=raw, headers={"Content-Type": "application/json"})
    assert_error(status, body, 400, "model_meta.performance.auc")
    big = {"blob": "x" * rules.META_MAX_BYTES}
    status, body = api.post(
        "/api/v1/models", {"model_type": "manual", "name": name, "version": "v1", "model_meta": big}
    )
    assert_error(status, body, 400, "model_meta")
    # nothing half-written: no model of that name exists
    assert api.ok("GET", "/api/v1/models", params={"name": name}) == []
    # the legit ones are stored
    comp = uniq("comp")
    api.ok("POST", "/api/v1/components", {"name": comp, "info": "i"})
    mid = api.manual_model(name=name, version="1.5.2", table="tbl_1", components=[comp],
                           model_meta={"performance": {"auc": 0.9}})  # fmt: skip
    assert api.ok("GET", f"/api/v1/models/{mid}")["model_meta"] == {"performance": {"auc": 0.9}}


def test_server_put_checks_what_it_changes(api: Api) -> None:
    mid = api.manual_model(model_meta={"k": 1})
    model = api.ok("GET", f"/api/v1/models/{mid}")
    for field, value in (("name", "a/b"), ("version", "v1/../v2"), ("table", "a/b")):
        assert_error(*api.put(f"/api/v1/models/{mid}", {**put_body(model), field: value}), 400, field)
    raw = json.dumps({**put_body(model), "model_meta": {"scores": [1.0, math.inf]}})
    status, body = api.call("PUT", f"/api/v1/models/{mid}", data=raw)
    assert_error(status, body, 400, "model_meta.scores[1]")
    assert api.ok("GET", f"/api/v1/models/{mid}")["model_meta"] == {"k": 1}
    # the whole model sent back unchanged (as the reference client does) is fine
    api.ok("PUT", f"/api/v1/models/{mid}", {**put_body(model), "description": "d2"})


def test_server_checks_readiness_and_local_paths(api: Api) -> None:
    url = "/api/v1/model_registry/artifacts/info"
    assert_error(*api.get(url, params={"model_name": "a/b", "model_version": "v1"}), 400, "model_name")
    assert_error(*api.get(url, params={"model_name": "m", "model_version": "v1/../v2"}), 400, "model_version")
    assert_error(*api.get(url, params={"model_name": "m", "model_version": " v1"}), 400, "model_version")
    assert_error(*api.put("/local/artifacts/m/%2E%2E", {}), 400, "version")
    assert_error(*api.put("/local/artifacts/m%00/v1", {}), 400, "name")
    assert_error(*api.put("/local/artifacts/m/v%20x", {}), 400, "version")
    assert_error(*api.get("/api/v1/dynamodb/tables/t%0Ax/is_active"), 400, "table")


def test_server_refuses_bodies_over_the_limit(api: Api) -> None:
    url = api.server.url + "/api/v1/models"
    body = json.dumps({"model_type": "manual", "name": uniq("big"), "version": "v1",
                       "description": "d" * rules.REQUEST_MAX_BYTES})  # fmt: skip
    r = requests.post(url, data=body, auth=api.server.auth, timeout=60)
    assert r.status_code == 400
    assert r.json()["error"].startswith("body: the request body is") and r.json()["code"] == 400

    def chunks() -> Any:  # chunked: no Content-Length to refuse up front
        yield b'{"model_type": "manual", "name": "chunked", "version": "v1", "description": "'
        for _ in range(rules.REQUEST_MAX_BYTES // 65536 + 2):
            yield b"d" * 65536
        yield b'"}'

    r = requests.post(url, data=chunks(), auth=api.server.auth, timeout=60)
    assert r.status_code == 400 and r.json()["error"].startswith("body:"), r.text
    assert api.ok("GET", "/api/v1/models", params={"name": "chunked"}) == []
    # the server is fine afterwards
    assert api.ok("GET", "/local/health") == {"status": "ok"}


def test_a_meta_within_the_limit_is_accepted_whatever_its_text(api: Api) -> None:
    """The provider's meta limit is measured as compact UTF-8 JSON; a client's encoder may escape
    non-ASCII text (requests does): the server's body limit leaves room for that."""
    overhead = rules.json_size({"x": ""})
    for char, wire in (("\N{GRINNING FACE}", 12), ("가", 6)):
        meta = {"x": char * ((rules.META_MAX_BYTES - overhead) // len(char.encode()))}
        assert rules.check_meta(meta) is meta
        body = json.dumps({"model_type": "manual", "name": uniq("big"), "version": "v1", "model_meta": meta})
        assert len(body) > rules.META_MAX_BYTES * wire // 4  # several times the meta's own size
        status, answer = api.call("POST", "/api/v1/models", data=body)
        assert status == 200, answer
        assert api.ok("GET", f"/api/v1/models/{answer['results']['id']}")["model_meta"] == meta
