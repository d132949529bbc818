"""Differential conformance: the pinned reference SDK and the provider, side by side on the wire.

For every ``sktmls`` method the provider covers, the SDK (in its own virtualenv, one worker
process for the whole run: ``sktmls_worker.py``) and the equivalent hook call (or, for the SDK's
AutoML upgrade routine, the provider's tasks) run against the same state of one local MLS server
that records every request it gets (``mls-local --record``: method, raw path, raw query string,
JSON body). Each side works on its own copy of the operation's fixtures (same content, its own
names). What went over the wire is compared request by request: method, path (ids and table names
as placeholders), query keys and how each value is written, body keys and their JSON types (``""``
apart from other strings). The only differences allowed are ``ALLOWED``; any other one fails the
test naming the operation and the field.

The same run writes ``docs/requests-per-operation.md`` (requests per operation, sktmls vs the
provider); the test fails when the committed file is not what it wrote (commit the new one).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TABLE_DOC = REPO / "docs" / "requests-per-operation.md"
CONN_ID = "mls_differential"
HANDLER = "def handler(prediction):\n    return prediction\n"
META = {"name": "m", "version": "v1", "model_lib": "lightgbm", "features": ["age", "svc"], "auc": 0.8}

# The differences allowed between what sktmls sends and what the provider sends, each with its
# reason. Each is a rewrite of one side's requests (see ``RULES``); what remains must be equal.
ALLOWED = {
    "read-by-id": "sktmls reads a model (or component) by id as a list filtered by `id`, then "
    "`GET .../{id}`; the provider reads `GET .../{id}` directly: the same read, one request fewer.",
    "read-before-put": "an update reads the model right before its PUT, since the PUT carries the "
    "whole model: sktmls builds it from the object the caller holds, which may be stale, and would "
    "undo another writer's change. (Both read the model back after the PUT: sktmls to return it, "
    "the provider to verify it.)",
    "create-look-up": "a create looks the (name, version) up first (the list by type, name and "
    "version): a model already there is `if_exists`'s to decide, and the server's `Date` of that "
    "answer is what lets a retry after an ambiguous failure prove a model is its own.",
    "stop-reads-status": "the stop task reads the server's status before it stops it: one request "
    "more than sktmls, which stops blindly. The read is needed for retry safety: a retry must never "
    "send a second stop, and only the read tells it that an earlier try's stop was sent (the task "
    "state store records the stop only once MLS answered it, so a try killed in between leaves no "
    "record; before Airflow 3.3 there is no store at all) or that the server is already STOPPED or "
    "STOPPING (a repeated run). Neither the stop's answer (it comes after the stop) nor an earlier "
    "read of the routine (the other tasks read the new model's server, not the old one's) can "
    "stand in for it.",
}
# Where sktmls 2026.10.7 itself is broken: the error it raises, and why the test compares with its
# evident intent instead (the worker's INTENT patch).
SDK_BROKEN = {
    "TypeError": "sktmls 2026.10.7 `update_manual_model` builds `components` with "
    '`component.get("name")` but `Component.get()` takes no argument: a TypeError for any model '
    "with components, raised before a request is sent. Compared with its evident intent "
    "(the components' names).",
}


# ---------------------------------------------------------------------------- normalisation
@dataclass(frozen=True)
class Wire:
    """One request as compared: ids and tables as placeholders, values as how they are written."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    body: Any

    @property
    def query_keys(self) -> frozenset[str]:
        return frozenset(k for k, _ in self.query)

    def __str__(self) -> str:
        query = "&".join(f"{k}=<{v}>" for k, v in self.query)
        return f"{self.method} {self.path}" + (f"?{query}" if query else "")


def value_kind(raw: str) -> str:
    """How a query value is written: ``True``/``False`` literally, else its kind."""
    if raw.lower() in ("true", "false"):
        return raw  # literally: True/False as requests writes them, or another spelling
    if re.fullmatch(r"-?\d+", raw):
        return "int"
    return "str" if raw else "empty"


def shape(value: Any) -> Any:
    """A JSON body's keys and types, ``""`` apart from other strings."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v) for v in value]
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    return '""' if value == "" else "str"


def wire(entry: dict[str, Any]) -> Wire:
    path = re.sub(r"(/dynamodb/tables/)[^/]+", r"\1{table}", entry["path"])
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    pairs = [p.partition("=") for p in entry["query"].split("&") if p]
    query = tuple(sorted((k, value_kind(v)) for k, _, v in pairs))
    body = shape(entry["body"]) if entry.get("body") is not None else None
    if entry.get("body_text"):
        body = "not JSON"
    return Wire(entry["method"], path, query, body)


# ---------------------------------------------------------------------------- allowed differences
def _read_by_id(ws: list[Wire], i: int) -> int:
    w = ws[i]
    if (
        w.method == "GET"
        and w.path in ("/api/v1/models", "/api/v1/components")
        and "id" in w.query_keys
        and i + 1 < len(ws)
        and ws[i + 1].method == "GET"
        and ws[i + 1].path == w.path + "/{id}"
    ):
        return 1
    return 0


def _read_before_put(ws: list[Wire], i: int) -> int:
    w = ws[i]
    nxt = ws[i + 1] if i + 1 < len(ws) else None
    if (
        w.method == "GET"
        and w.path == "/api/v1/models/{id}"
        and nxt
        and (nxt.method, nxt.path) == ("PUT", w.path)
    ):
        return 1
    return 0


def _create_look_up(ws: list[Wire], i: int) -> int:
    w = ws[i]
    nxt = ws[i + 1] if i + 1 < len(ws) else None
    if (
        (w.method, w.path) == ("GET", "/api/v1/models")
        and w.query_keys == {"model_type", "name", "version"}
        and nxt
        and (nxt.method, nxt.path) == ("POST", "/api/v1/models")
    ):
        return 1
    return 0


def _stop_reads_status(ws: list[Wire], i: int) -> int:
    w = ws[i]
    nxt = ws[i + 1] if i + 1 < len(ws) else None
    server = "/api/v1/models/{id}/automl_model_server"
    if (w.method, w.path) == ("GET", server) and nxt and (nxt.method, nxt.path) == ("DELETE", server):
        return 1
    return 0


# (side whose requests are rewritten, rule): each rule says how many requests at i to drop.
RULES: dict[str, tuple[str, Callable[[list[Wire], int], int]]] = {
    "read-by-id": ("sktmls", _read_by_id),
    "read-before-put": ("provider", _read_before_put),
    "create-look-up": ("provider", _create_look_up),
    "stop-reads-status": ("provider", _stop_reads_status),
}
assert set(RULES) == set(ALLOWED)


def rewrite(side: str, ws: list[Wire], allowed: tuple[str, ...]) -> tuple[list[Wire], list[str]]:
    """``ws`` without what the ``allowed`` rules of ``side`` drop; the rules that dropped something."""
    out: list[Wire] = []
    used: list[str] = []
    i = 0
    while i < len(ws):
        for name in allowed:
            rule_side, rule = RULES[name]
            drop = rule(ws, i) if rule_side == side else 0
            if drop:
                used.append(name)
                i += drop
                break
        else:
            out.append(ws[i])
            i += 1
    return out, used


def body_diff(sdk: Any, ours: Any, where: str) -> list[str]:
    if isinstance(sdk, dict) and isinstance(ours, dict):
        out: list[str] = []
        for key in sorted(set(sdk) | set(ours)):
            at = f"{where}.{key}"
            if key not in ours:
                out.append(f"body key {at}: sktmls sends {sdk[key]}, the provider leaves it out")
            elif key not in sdk:
                out.append(f"body key {at}: the provider sends {ours[key]}, sktmls leaves it out")
            else:
                out += body_diff(sdk[key], ours[key], at)
        return out
    if sdk != ours:
        return [f"body {where}: sktmls sends {sdk}, the provider {ours}"]
    return []


def differences(sdk: list[Wire], ours: list[Wire]) -> list[str]:
    out: list[str] = []
    for n, (a, b) in enumerate(zip(sdk, ours, strict=False), 1):
        if (a.method, a.path) != (b.method, b.path):
            out.append(f"request {n}: sktmls sends {a.method} {a.path}, the provider {b.method} {b.path}")
            continue
        qa, qb = dict(a.query), dict(b.query)
        for key in sorted(set(qa) | set(qb)):
            if qa.get(key) != qb.get(key):
                out.append(
                    f"request {n} ({a}): query {key}: sktmls writes {qa.get(key, 'nothing')}, "
                    f"the provider {qb.get(key, 'nothing')}"
                )
        out += [f"request {n} ({a}): {d}" for d in body_diff(a.body, b.body, "")]
    for n, extra in enumerate(sdk[len(ours) :], len(ours) + 1):
        out.append(f"request {n}: sktmls sends {extra}, the provider nothing")
    for n, extra in enumerate(ours[len(sdk) :], len(sdk) + 1):
        out.append(f"request {n}: the provider sends {extra}, sktmls nothing")
    return out


# ---------------------------------------------------------------------------- the operations
class Fixtures:
    """Builds an operation's state through the local server's API (outside the compared window)."""

    def __init__(self, admin: LocalMLSAdmin) -> None:
        self.admin = admin

    def model(self, id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.admin.call("GET", f"/api/v1/models/{id}")
        return result

    def manual(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {"model_type": "manual", "name": name, "version": "v1", **fields}
        return self.model(int(self.admin.call("POST", "/api/v1/models", json=body)["id"]))

    def full(self, tag: str, **fields: Any) -> dict[str, Any]:
        """A manual model with every field but components set."""
        values = {
            "description": "full",
            "creator": "someone",
            "model_lib": "lightgbm",
            "model_data": f"/models/full-{tag}/v1/model.joblib",
            "model_meta": META,
            "features": "age,svc",
            "table": f"tbl_{tag}",
        }
        return self.manual(f"full-{tag}", **{**values, **fields})

    def component(self, name: str) -> dict[str, Any]:
        body = {"name": name, "info": "info", "is_latest": True}
        result: dict[str, Any] = self.admin.call("POST", "/api/v1/components", json=body)
        return result

    def automl(self, name: str, *, handler: bool = False, server: str | None = None) -> dict[str, Any]:
        model = self.admin.create_automl_model(name, "v1", description="automl", trained=True)
        if handler:
            path = f"/api/v1/models/{model['id']}/automl_online_prediction"
            self.admin.call("POST", path, json={"handler": HANDLER})
        if server:
            self.admin.force_server(model["id"], server)
        return self.model(int(model["id"]))

    def serving(self, model: dict[str, Any], tag: str) -> dict[str, Any]:
        """An experiment whose bucket serves ``model``."""
        exp = self.admin.call(
            "POST", "/api/v1/experiments", json={"name": f"exp-{tag}", "bucketing_seed": "s"}
        )
        kind = "automl" if model["model_type"] == "automl" else "online"
        body = {"name": f"b-{tag}", "prediction_type": kind, f"{kind}_model_id": model["id"]}
        result: dict[str, Any] = self.admin.call(
            "POST", f"/api/v1/experiments/{exp['id']}/buckets", json=body
        )
        return result


Setup = Callable[[Fixtures, str], dict[str, Any]]
SdkCall = Callable[[dict[str, Any]], dict[str, Any]]
HookCall = Callable[[MLSHook, dict[str, Any]], Any]


@dataclass
class Op:
    """One sktmls method (or routine) and the provider's equivalent."""

    name: str
    setup: Setup
    sdk: SdkCall  # the worker command, from the context
    ours: HookCall
    allowed: tuple[str, ...] = ()
    broken: str | None = None  # a key of SDK_BROKEN: sktmls raises it; compare with its intent
    # a check of what both returned: (sktmls's result, the provider's, sktmls's context, the provider's)
    result: Callable[[Any, Any, dict[str, Any], dict[str, Any]], None] | None = None
    counts: dict[str, int] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)  # the allowed differences this run used


def M(ctx: dict[str, Any], key: str = "model") -> dict[str, Any]:
    return {"$manual": ctx[key]}


def A(ctx: dict[str, Any], key: str = "model") -> dict[str, Any]:
    return {"$automl": ctx[key]}


def call(method: str, /, **args: Any) -> dict[str, Any]:
    return {"call": method, "args": args}


def bare(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"model": f.manual(f"bare-{tag}")}


def full(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"model": f.full(tag)}


def with_components(f: Fixtures, tag: str) -> dict[str, Any]:
    comp = f.component(f"c-{tag}")
    return {"model": f.full(tag, components=[comp["name"]]), "component": comp}


def bare_and_component(f: Fixtures, tag: str) -> dict[str, Any]:
    return {**bare(f, tag), "component": f.component(f"c-{tag}")}


def component(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"component": f.component(f"c-{tag}")}


def automl(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"model": f.automl(f"auto-{tag}", handler=True, server="RUNNING")}


def automl_stopped(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"model": f.automl(f"auto-{tag}")}


def failed_automl(f: Fixtures, tag: str) -> dict[str, Any]:
    model = f.automl(f"auto-{tag}")
    f.admin.finish_training(model["id"], "FAILED", error="bad labels")
    return {"model": f.model(model["id"])}


def dataset(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"dataset": f.admin.create_dataset(f"ds-{tag}"), "name": f"new-{tag}"}


def new_name(f: Fixtures, tag: str) -> dict[str, Any]:
    return {"name": f"new-{tag}", "component": f.component(f"c-{tag}")}


def table(active: bool, loading: bool) -> Setup:
    def setup(f: Fixtures, tag: str) -> dict[str, Any]:
        ctx = full(f, tag)
        if active:
            f.admin.set_table(ctx["model"]["table"], is_active=True, is_loading=loading)
        return ctx

    return setup


def artifact(present: bool, info: dict[str, Any] | None = None) -> Setup:
    def setup(f: Fixtures, tag: str) -> dict[str, Any]:
        ctx = full(f, tag)
        if present:
            f.admin.set_artifact(ctx["model"]["name"], "v1", info)
        return ctx

    return setup


def served(next_kind: str) -> Setup:
    def setup(f: Fixtures, tag: str) -> dict[str, Any]:
        prev = f.full(f"prev-{tag}")
        f.serving(prev, tag)
        if next_kind == "automl":
            nxt: dict[str, Any] | None = f.automl(f"next-{tag}")
        elif next_kind == "online":
            nxt = f.full(f"next-{tag}")
        else:
            nxt = None
        return {"prev": prev, "next": nxt}

    return setup


def upgrade(f: Fixtures, tag: str) -> dict[str, Any]:
    prev = f.automl(f"prev-{tag}", handler=True, server="RUNNING")
    f.serving(prev, tag)
    return {"prev": prev, "next": f.automl(f"next-{tag}")}


def migrate(kind: str, **extra: Any) -> tuple[SdkCall, HookCall]:
    def sdk(c: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"prev_model": M(c, "prev"), "next_prediction_type": kind, **extra}
        if c["next"] is not None:
            args["next_model"] = {"$automl" if kind == "automl" else "$manual": c["next"]}
        return call("experiments.migrate_bucket", **args)

    def ours(h: MLSHook, c: dict[str, Any]) -> Any:
        static = extra.get("next_static_value")
        return h.migrate_buckets(c["prev"], c["next"], prediction_type=kind, static_value=static)

    return sdk, ours


def run_upgrade(h: MLSHook, c: dict[str, Any]) -> Any:
    """The provider's upgrade routine: the tasks of ``dags_examples/mls_automl_upgrade.py``."""
    from airflow_provider_mls.operators.mls import (
        MigrateBucketsOperator,
        StartAutoMLServerOperator,
        StopAutoMLServerOperator,
        UpdateAutoMLServerHandlerOperator,
    )

    prev, nxt = c["prev"], c["next"]
    common: dict[str, Any] = {"mls_conn_id": CONN_ID}
    waits: dict[str, Any] = {"deferrable": False, "poke_interval": 0.05, **common}
    UpdateAutoMLServerHandlerOperator(
        task_id="copy_handler", model_id=nxt, handler_from_model_id=prev, only_if_missing=True, **common
    ).execute({})
    StartAutoMLServerOperator(task_id="start_server", model_id=nxt, **waits).execute({})
    MigrateBucketsOperator(
        task_id="move_buckets", from_model_id=prev, to_model_id=nxt, prediction_type="automl", **common
    ).execute({})
    return StopAutoMLServerOperator(task_id="stop_previous_server", model_id=prev, **waits).execute({})


def same_model(sdk: Any, ours: Any, sdk_ctx: dict[str, Any], our_ctx: dict[str, Any]) -> None:
    """Both returned the whole model of their own setup (never a list item): its id and its meta.

    sktmls's ``AutoMLModel`` keeps no ``model_meta``; its other fields are compared there.
    """
    assert isinstance(sdk, dict) and isinstance(ours, dict), (sdk, ours)
    for side, got, want in (("sktmls", sdk, sdk_ctx["model"]), ("provider", ours, our_ctx["model"])):
        for key in ("id", "name", "version", "model_type"):
            assert got.get(key) == want[key], f"{side}: {key} {got.get(key)!r}, the model's {want[key]!r}"
        if side == "provider" or want["model_type"] == "manual":
            assert "model_meta" in got, f"{side} returned no model_meta: {sorted(got)}"
            assert got["model_meta"] == want["model_meta"], f"{side}: model_meta {got['model_meta']!r}"
    assert "created_at" in ours, sorted(ours)


def answers(expected: bool) -> Callable[[Any, Any, dict[str, Any], dict[str, Any]], None]:
    """Both answered ``expected`` (a readiness question)."""

    def check(sdk: Any, ours: Any, sdk_ctx: dict[str, Any], our_ctx: dict[str, Any]) -> None:
        assert (sdk, ours) == (expected, expected), (
            f"sktmls {sdk!r}, the provider {ours!r}, expected {expected!r}"
        )

    return check


CREATE_FIELDS = {
    "description": "created",
    "creator": "someone",
    "model_lib": "xgboost",
    "model_data": "/models/new/v1/model.joblib",
    "model_meta": META,
    "features": "age,svc",
    "table": "tbl_new_one",
}

OPS: list[Op] = [
    # ---- manual models
    Op(
        "create_manual_model (every field)",
        new_name,
        lambda c: call(
            "models.create_manual_model",
            name=c["name"],
            version="v1",
            components=[{"$component": c["component"]}],
            **CREATE_FIELDS,
        ),
        lambda h, c: h.create_manual_model(c["name"], "v1", components=[c["component"]], **CREATE_FIELDS),
        ("create-look-up", "read-by-id"),
    ),
    Op(
        "create_manual_model (name and version only)",
        new_name,
        lambda c: call("models.create_manual_model", name=c["name"], version="v1"),
        lambda h, c: h.create_manual_model(c["name"], "v1"),
        ("create-look-up", "read-by-id"),
    ),
    Op(
        "create_model_deployment",
        new_name,
        lambda c: call("models.create_model_deployment", name=c["name"], version="v1", description="d"),
        lambda h, c: h.create_model_deployment(c["name"], "v1", description="d"),
        ("create-look-up", "read-by-id"),
    ),
    Op(
        "get_manual_model (id)",
        full,
        lambda c: call("models.get_manual_model", id=c["model"]["id"]),
        lambda h, c: h.get_manual_model(id=c["model"]["id"]),
        ("read-by-id",),
        result=same_model,
    ),
    Op(
        "get_manual_model (name, version)",
        full,
        lambda c: call("models.get_manual_model", name=c["model"]["name"], version="v1"),
        lambda h, c: h.get_manual_model(name=c["model"]["name"], version="v1"),
        result=same_model,
    ),
    Op(
        "get_model_deployment (id)",
        full,
        lambda c: call("models.get_model_deployment", id=c["model"]["id"]),
        lambda h, c: h.get_model_deployment(id=c["model"]["id"]),
        ("read-by-id",),
    ),
    Op(
        "list_manual_models",
        full,
        lambda c: call("models.list_manual_models", name=c["model"]["name"], page=1),
        lambda h, c: h.list_manual_models(name=c["model"]["name"], page=1),
    ),
    Op(
        "list_model_deployments",
        full,
        lambda c: call("models.list_model_deployments", query=c["model"]["name"]),
        lambda h, c: h.list_model_deployments(query=c["model"]["name"]),
    ),
    Op(
        "update_manual_model (a model with unset fields)",
        bare,
        lambda c: call("models.update_manual_model", manual_model=M(c), description="new"),
        lambda h, c: h.update_manual_model(c["model"], description="new"),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        'update_manual_model (clear with "")',
        full,
        lambda c: call(
            "models.update_manual_model", manual_model=M(c), description="", table="", features=""
        ),
        lambda h, c: h.update_manual_model(c["model"], description="", table="", features=""),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_manual_model (every field)",
        full,
        lambda c: call("models.update_manual_model", manual_model=M(c), version="v2", **CREATE_FIELDS),
        lambda h, c: h.update_manual_model(c["model"], version="v2", **CREATE_FIELDS),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_manual_model (a model with components)",
        with_components,
        lambda c: call("models.update_manual_model", manual_model=M(c), description="new"),
        lambda h, c: h.update_manual_model(c["model"], description="new"),
        ("read-before-put", "read-by-id"),
        broken="TypeError",
    ),
    Op(
        "update_model_deployment",
        bare,
        lambda c: call("models.update_model_deployment", model_deployment=M(c), model_data="/m/v2.joblib"),
        lambda h, c: h.update_model_deployment(c["model"], model_data="/m/v2.joblib"),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_manual_model_meta (replace)",
        full,
        lambda c: call("models.update_manual_model_meta", manual_model=M(c), model_meta={"k": 1}),
        lambda h, c: h.update_manual_model_meta(c["model"], {"k": 1}),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_manual_model_meta (partial_update)",
        full,
        lambda c: call(
            "models.update_manual_model_meta", manual_model=M(c), model_meta={"k": 1}, partial_update=True
        ),
        lambda h, c: h.update_manual_model_meta(c["model"], {"k": 1}, partial_update=True),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_model_deployment_meta",
        full,
        lambda c: call("models.update_model_deployment_meta", model_deployment=M(c), model_meta={}),
        lambda h, c: h.update_model_deployment_meta(c["model"], {}),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_manual_model_components",
        bare_and_component,
        lambda c: call(
            "models.update_manual_model_components",
            manual_model={"$manual": c["model"]},
            components=[{"$component": c["component"]}],
        ),
        lambda h, c: h.update_manual_model_components(c["model"], [c["component"]]),
        ("read-before-put", "read-by-id"),
    ),
    Op(
        "update_model_deployment_components (a model with components)",
        with_components,
        lambda c: call(
            "models.update_model_deployment_components",
            model_deployment=M(c),
            components=[{"$component": c["component"]}],
        ),
        lambda h, c: h.update_model_deployment_components(c["model"], [c["component"]]),
        ("read-before-put", "read-by-id"),
        broken="TypeError",
    ),
    Op(
        "delete_model",
        full,
        lambda c: call("models.delete_model", model=M(c)),
        lambda h, c: h.delete_model(c["model"]),
    ),
    Op(
        "delete_model (delete_table)",
        table(active=True, loading=False),
        lambda c: call("models.delete_model", model=M(c), delete_table=True),
        lambda h, c: h.delete_model(c["model"], delete_table=True),
    ),
    Op(
        "delete_model_deployment",
        full,
        lambda c: call("models.delete_model_deployment", model_deployment=M(c)),
        lambda h, c: h.delete_model_deployment(c["model"]),
    ),
    # ---- readiness
    Op(
        "is_batch_prediction_ready (no table yet)",
        table(active=False, loading=False),
        lambda c: call("models.is_batch_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_batch_prediction_ready(c["model"]),
        result=answers(False),
    ),
    Op(
        "is_batch_prediction_ready (loading)",
        table(active=True, loading=True),
        lambda c: call("models.is_batch_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_batch_prediction_ready(c["model"]),
        result=answers(False),
    ),
    Op(
        "is_batch_prediction_ready (ready)",
        table(active=True, loading=False),
        lambda c: call("models.is_batch_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_batch_prediction_ready(c["model"]),
        result=answers(True),
    ),
    Op(
        "is_online_prediction_ready (no artifact)",
        artifact(present=False),
        lambda c: call("models.is_online_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_online_prediction_ready(c["model"]),
        result=answers(False),
    ),
    Op(
        "is_online_prediction_ready (artifact with an empty info)",
        artifact(present=True, info={}),
        lambda c: call("models.is_online_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_online_prediction_ready(c["model"]),
        result=answers(False),
    ),
    Op(
        "is_online_prediction_ready (artifact)",
        artifact(present=True),
        lambda c: call("models.is_online_prediction_ready", manual_model=M(c)),
        lambda h, c: h.is_online_prediction_ready(c["model"]),
        result=answers(True),
    ),
    # ---- AutoML models, servers, handlers
    Op(
        "create_automl_model",
        dataset,
        lambda c: call(
            "models.create_automl_model",
            dataset={"$dataset": c["dataset"]},
            name=c["name"],
            version="v1",
            description="automl",
        ),
        lambda h, c: h.create_automl_model(c["name"], "v1", "automl", dataset_id=c["dataset"]["id"]),
        ("create-look-up", "read-by-id"),
    ),
    Op(
        "get_automl_model (id)",
        automl,
        lambda c: call("models.get_automl_model", id=c["model"]["id"]),
        lambda h, c: h.get_automl_model(id=c["model"]["id"]),
        ("read-by-id",),
    ),
    Op(
        "get_automl_model (name, version)",
        automl,
        lambda c: call("models.get_automl_model", name=c["model"]["name"], version="v1"),
        lambda h, c: h.get_automl_model(name=c["model"]["name"], version="v1"),
        result=same_model,
    ),
    Op(
        "list_automl_models",
        automl,
        lambda c: call("models.list_automl_models", name=c["model"]["name"]),
        lambda h, c: h.list_automl_models(name=c["model"]["name"]),
    ),
    Op(
        "AutoMLModel.get_error (of a fresh read)",
        failed_automl,
        lambda c: call("automl_error", id=c["model"]["id"]),
        lambda h, c: h.get_automl_model_error(c["model"]["id"]),
        ("read-by-id",),
    ),
    Op(
        "start_automl_model_server",
        automl_stopped,
        lambda c: call("models.start_automl_model_server", model=A(c)),
        lambda h, c: h.start_automl_model_server(c["model"]),
    ),
    Op(
        "stop_automl_model_server",
        automl,
        lambda c: call("models.stop_automl_model_server", model=A(c)),
        lambda h, c: h.stop_automl_model_server(c["model"]),
    ),
    Op(
        "get_automl_model_server_status",
        automl,
        lambda c: call("models.get_automl_model_server_status", model=A(c)),
        lambda h, c: h.get_automl_model_server_status(c["model"]),
    ),
    Op(
        "get_automl_model_server_handler",
        automl,
        lambda c: call("models.get_automl_model_server_handler", model=A(c)),
        lambda h, c: h.get_automl_model_server_handler(c["model"]),
    ),
    Op(
        "update_automl_model_server_handler",
        automl,
        lambda c: call("models.update_automl_model_server_handler", model=A(c), handler=HANDLER),
        lambda h, c: h.update_automl_model_server_handler(c["model"], HANDLER),
    ),
    # ---- components and datasets
    Op(
        "get_component (id)",
        component,
        lambda c: call("components.get_component", id=c["component"]["id"]),
        lambda h, c: h.get_component(id=c["component"]["id"]),
        ("read-by-id",),
    ),
    Op(
        "get_component (name)",
        component,
        lambda c: call("components.get_component", name=c["component"]["name"]),
        lambda h, c: h.get_component(name=c["component"]["name"]),
    ),
    Op(
        "list_components",
        component,
        lambda c: call("components.list_components", name=c["component"]["name"], is_latest=True),
        lambda h, c: h.list_components(name=c["component"]["name"], is_latest=True),
    ),
    Op(
        "get_dataset (name)",
        dataset,
        lambda c: call("datasets.get_dataset", name=c["dataset"]["name"]),
        lambda h, c: h.get_dataset(name=c["dataset"]["name"]),
    ),
    Op(
        "get_dataset (id)",
        dataset,
        lambda c: call("datasets.get_dataset", id=c["dataset"]["id"]),
        lambda h, c: h.get_dataset(id=c["dataset"]["id"]),
    ),
    Op(
        "list_datasets",
        dataset,
        lambda c: call("datasets.list_datasets", name=c["dataset"]["name"]),
        lambda h, c: h.list_datasets(name=c["dataset"]["name"]),
    ),
    # ---- buckets
    Op("migrate_bucket (online)", served("online"), *migrate("online")),
    Op("migrate_bucket (automl)", served("automl"), *migrate("automl")),
    Op("migrate_bucket (static)", served("static"), *migrate("static", next_static_value={"items": []})),
    Op("migrate_bucket (empty)", served("empty"), *migrate("empty")),
    # ---- the SDK's routine, as the provider's tasks
    Op(
        "AutoMLHelper.upgrade_deployment (the tasks of mls_automl_upgrade)",
        upgrade,
        lambda c: call("upgrade_deployment", prev_model=A(c, "prev"), next_model=A(c, "next")),
        run_upgrade,
        ("stop-reads-status",),
    ),
]


# ---------------------------------------------------------------------------- the run
class Worker:
    """The SDK's worker process: one for the whole run."""

    def __init__(self, python: str, url: str, user: str, password: str, record: Path) -> None:
        self.proc = subprocess.Popen(
            [python, str(HERE / "sktmls_worker.py"), url, user, password, str(record)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        hello = self._read()
        assert hello.get("ready"), hello

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"the sktmls worker died: {self.proc.stderr.read()[-4000:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def records(path: Path, start: int, end: int) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh.readlines()[start:end]]


def line_count(path: Path) -> int:
    return sum(1 for _ in open(path, "rb")) if path.exists() else 0


def above_sktmls(ops: list[Op]) -> list[str]:
    """The intro's paragraph on the operations that send more requests than sktmls, and why."""
    above = [op for op in ops if op.counts["provider"] > op.counts.get("intent", op.counts["sktmls"])]
    if not above:
        return ["Every operation sends at most as many requests as sktmls's.", ""]
    names = "; ".join(
        f"`{op.name}` ({op.counts['provider']} vs {op.counts.get('intent', op.counts['sktmls'])}: "
        + ", ".join(f"[{a}](#{a})" for a in op.used if a == "stop-reads-status")
        + ")"
        for op in above
    )
    return [
        "Every operation sends at most as many requests as sktmls's, except this one, for retry "
        f"safety: {names}. Its stop task reads the old model's server status before the stop, so "
        "that a retry never sends a second stop.",
        "",
    ]


def table_markdown(ops: list[Op]) -> str:
    lines = [
        "# Requests per operation: sktmls vs the provider",
        "",
        "<!-- Generated by tests/conformance/test_differential.py: do not edit by hand. -->",
        "",
        "Requests each `sktmls` 2026.10.7 method sends, and the provider's equivalent (hook method, or",
        "the tasks of `dags_examples/mls_automl_upgrade.py` for the SDK's upgrade routine), counted on",
        "the wire by the differential conformance test, which also proves that every request carries",
        "what the SDK's does. Where they differ, the last column names why (reasons below).",
        "",
        *above_sktmls(ops),
        "| operation | sktmls | provider | differences |",
        "|---|---:|---:|---|",
    ]
    for op in ops:
        diff = ", ".join(f"[{a}](#{a})" for a in op.used)
        sdk = f"{op.counts['sktmls']}"
        if op.broken:
            sdk += " (raises; its intent: " + str(op.counts["intent"]) + ")"
        lines.append(f"| `{op.name}` | {sdk} | {op.counts['provider']} | {diff} |")
    lines += ["", "## Why they differ", ""]
    for name, reason in ALLOWED.items():
        lines += [f"### {name}", "", reason, ""]
    lines += ["## Where sktmls 2026.10.7 is broken", ""]
    for name, reason in SDK_BROKEN.items():
        lines += [f"- `{name}`: {reason}"]
    return "\n".join(lines) + "\n"


def test_rewrites_are_the_only_allowed_differences() -> None:
    """The comparison can fail: a null, a lowercase boolean, a missing key or an extra request is named."""
    sdk = [
        wire({"method": "PUT", "path": "/api/v1/models/3", "query": "", "body": {"name": "a", "table": ""}}),
        wire({"method": "GET", "path": "/api/v1/components", "query": "name=c&is_latest=True", "body": None}),
    ]
    ours = [
        wire(
            {
                "method": "PUT",
                "path": "/api/v1/models/4",
                "query": "",
                "body": {"name": "b", "table": None, "x": 1},
            }
        ),
        wire({"method": "GET", "path": "/api/v1/components", "query": "name=c&is_latest=true", "body": None}),
        wire({"method": "GET", "path": "/api/v1/models/4", "query": "", "body": None}),
    ]
    found = differences(sdk, ours)
    assert any('body .table: sktmls sends "", the provider null' in d for d in found), found
    assert any("body key .x: the provider sends int, sktmls leaves it out" in d for d in found), found
    assert any("query is_latest: sktmls writes True, the provider true" in d for d in found), found
    assert any("request 3: the provider sends GET /api/v1/models/{id}" in d for d in found), found
    # an allowed rewrite drops only what its rule matches
    listed = [
        wire({"method": "GET", "path": "/api/v1/models", "query": "id=4&model_type=manual", "body": None}),
        wire({"method": "GET", "path": "/api/v1/models/4", "query": "", "body": None}),
    ]
    assert rewrite("sktmls", listed, ("read-by-id",)) == (listed[1:], ["read-by-id"])
    assert rewrite("provider", listed, ("read-by-id",)) == (listed, [])


@pytest.mark.e2e
def test_provider_sends_what_sktmls_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdk_python: str
) -> None:
    from airflow_provider_mls.local.process import LocalMLSServer

    python = sdk_python
    record = tmp_path / "requests.jsonl"
    with LocalMLSServer(
        tmp_path / "mls",
        username="sdk-user",
        password="sdk-password-1",
        training_seconds=0,
        server_start_seconds=0,
        lean_lists=True,
        record=record,
    ) as server:
        monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", server.conn_json())
        hook = MLSHook(CONN_ID, write_settle=0.05, retry_min_wait=0.01, retry_max_wait=0.05)
        worker = Worker(python, server.url, server.username, server.password, record)
        failures: list[str] = []
        try:
            with server.admin() as admin:
                fixtures = Fixtures(admin)
                for n, op in enumerate(OPS):
                    failures += compare(op, n, fixtures, worker, hook, record)
        finally:
            worker.close()
            hook.close()
    assert not failures, "the provider does not send what sktmls sends:\n" + "\n".join(failures)
    expected = table_markdown(OPS)
    current = TABLE_DOC.read_text(encoding="utf-8") if TABLE_DOC.exists() else ""
    if current != expected:
        TABLE_DOC.write_text(expected, encoding="utf-8")
        pytest.fail(f"{TABLE_DOC.relative_to(REPO)} was stale: rewritten from this run, commit it")


def compare(op: Op, n: int, fixtures: Fixtures, worker: Worker, hook: MLSHook, record: Path) -> list[str]:
    """Run ``op`` on both sides; the differences not allowed, each naming the operation."""
    sdk_ctx, our_ctx = op.setup(fixtures, f"s{n}"), op.setup(fixtures, f"p{n}")
    command = op.sdk(sdk_ctx)
    answer = worker.run(command)
    failures: list[str] = []
    if op.broken:
        # sktmls raises before it sends anything; then its evident intent is what is compared
        error = str(answer["error"] or "")
        if not error.startswith(f"{op.broken}:") or answer["end"] != answer["start"]:
            failures.append(
                f"{op.name}: sktmls was expected to raise {op.broken} before sending anything "
                f"(SDK_BROKEN), it answered {answer['error']!r} after {answer['end'] - answer['start']} request(s)"
            )
        op.counts["sktmls"] = answer["end"] - answer["start"]
        answer = worker.run({**command, "intent": True})
        op.counts["intent"] = answer["end"] - answer["start"]
    elif answer["error"]:
        return [f"{op.name}: sktmls failed: {answer['error']}"]
    else:
        op.counts["sktmls"] = answer["end"] - answer["start"]
    if answer["error"]:
        return [*failures, f"{op.name}: sktmls (its intent) failed: {answer['error']}"]
    start = line_count(record)
    try:
        ours = op.ours(hook, our_ctx)
    except Exception as exc:  # the wire still tells what it sent
        failures.append(f"{op.name}: the provider failed: {type(exc).__name__}: {exc}")
        ours = None
    end = line_count(record)
    op.counts["provider"] = end - start
    sdk_wire = [wire(e) for e in records(record, answer["start"], answer["end"])]
    our_wire = [wire(e) for e in records(record, start, end)]
    sdk_kept, sdk_used = rewrite("sktmls", sdk_wire, op.allowed)
    our_kept, our_used = rewrite("provider", our_wire, op.allowed)
    op.used = [a for a in op.allowed if a in sdk_used + our_used]
    failures += [f"{op.name}: {d}" for d in differences(sdk_kept, our_kept)]
    reference = op.counts.get("intent", op.counts["sktmls"])
    extra = 1 if "stop-reads-status" in op.used else 0  # the one read above sktmls (ALLOWED)
    if op.counts["provider"] > reference + extra:
        failures.append(f"{op.name}: the provider sends {op.counts['provider']} requests, sktmls {reference}")
    if op.result is not None and not failures and ours is not None:
        op.result(answer["result"], ours, sdk_ctx, our_ctx)
    return failures
