"""Writes that are never silently wrong, against the real local server: creates under ambiguous
failures (the server's fault injection), updates and merges under real concurrency (threads, each
with its own hook and connection, against the server process)."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import (
    TERMINAL_ERRORS,
    MLSAuthError,
    MLSConflictError,
    MLSNotFoundError,
    MLSValidationError,
    MLSWriteConflictError,
)
from airflow_provider_mls.hooks import _mls_update as mls_module
from airflow_provider_mls.hooks._writes import create_is_ours, payload_mismatches
from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from tests.hooks.conftest import Admin, RequestLog

    MakeHook = Callable[..., tuple[MLSHook, RequestLog]]

MODELS = "/api/v1/models"


def before_send(hook: MLSHook, action: Callable[[requests.PreparedRequest], None]) -> None:
    """Run ``action(request)`` just before each request of ``hook`` leaves (a real request still follows)."""
    session = hook.get_conn()
    send = session.send

    def intercepted(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        action(request)
        return send(request, **kwargs)

    session.send = intercepted  # type: ignore[method-assign]


def stored(admin: Admin, model_id: int) -> dict[str, Any]:
    result: dict[str, Any] = admin.call("GET", f"{MODELS}/{model_id}")
    return result


def raw_create(admin: Admin, name: str, version: str, **fields: Any) -> dict[str, Any]:
    created = admin.call(
        "POST", MODELS, json={"model_type": "manual", "name": name, "version": version, **fields}
    )
    return stored(admin, created["id"])


# ---- creates ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("if_exists", ["fail", "skip", "update"])
def test_create_never_adopts_a_model_that_existed_before(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str, if_exists: str
) -> None:
    """The issue's sequence: churn/v-update exists with old values, the next POST would answer 503."""
    old = raw_create(admin, f"churn-{unique}", "v-update", model_data="/old/model.joblib")
    admin.add_fault("POST", MODELS, status=503)
    create = lambda: hook.create_manual_model(  # noqa: E731
        f"churn-{unique}",
        "v-update",
        model_data="/new/model.joblib",
        model_meta={"gen": "new"},
        if_exists=if_exists,
    )
    if if_exists == "fail":
        with pytest.raises(MLSConflictError) as err:
            create()
        assert f"id {old['id']}" in str(err.value) and "existed before" in str(err.value)
        assert stored(admin, old["id"])["model_data"] == "/old/model.joblib"
        return
    model = create()
    assert model["id"] == old["id"]
    now = stored(admin, old["id"])
    if if_exists == "skip":
        assert model["model_data"] == now["model_data"] == "/old/model.joblib"
        assert now["model_meta"] == {}
    else:  # update: the task's values are what the server keeps
        assert model["model_data"] == now["model_data"] == "/new/model.joblib"
        assert model["model_meta"] == now["model_meta"] == {"gen": "new"}
    assert [m["id"] for m in admin.models("manual", f"churn-{unique}")] == [old["id"]]
    assert ("POST", MODELS) not in counter.calls  # decided by the look-up: nothing was POSTed


@pytest.mark.parametrize("if_exists", ["fail", "skip", "update"])
def test_model_created_by_another_writer_during_an_ambiguous_create_is_a_conflict(
    hook: MLSHook, admin: Admin, unique: str, if_exists: str
) -> None:
    """Another writer creates the pair (other values) after the look-up; this POST gets a 503."""
    name = f"race-{unique}"
    rival: dict[str, Any] = {}

    def rival_first(request: requests.PreparedRequest) -> None:
        if request.method == "POST" and not rival:
            rival.update(raw_create(admin, name, "v1", model_data="/rival/model.joblib"))
            admin.add_fault("POST", MODELS, status=503)  # this task's POST: not processed

    before_send(hook, rival_first)
    create = lambda: hook.create_manual_model(  # noqa: E731
        name, "v1", model_data="/mine/model.joblib", if_exists=if_exists
    )
    if if_exists == "fail":
        with pytest.raises(MLSConflictError, match="not this task's write"):
            create()
        assert stored(admin, rival["id"])["model_data"] == "/rival/model.joblib"
        return
    model = create()
    assert model["id"] == rival["id"]
    expected = "/rival/model.joblib" if if_exists == "skip" else "/mine/model.joblib"
    assert model["model_data"] == stored(admin, rival["id"])["model_data"] == expected


def test_lost_create_answer_is_adopted_only_as_this_tasks_write(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    admin.add_fault("POST", MODELS, status=502, after=True)  # committed, then the answer is lost
    model = hook.create_manual_model(
        f"own-{unique}", "v1", model_meta={"a": 1}, features=["x", "y"], if_exists="fail"
    )
    assert model["model_meta"] == {"a": 1} and model["features"] == "x,y"
    assert [m["id"] for m in admin.models("manual", f"own-{unique}")] == [model["id"]]
    # look-up (absent), POST (answer lost), look-up (list, then the model it names)
    assert [c[0] for c in counter.calls] == ["GET", "POST", "GET", "GET"]


def test_a_model_created_before_the_create_began_is_never_adopted(
    hook: MLSHook, admin: Admin, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same content, but older than the create: a look-up that lags (misses it) must not make it ours."""
    name = f"old-{unique}"
    old = raw_create(admin, name, "v1", model_data="/same/model.joblib")
    real = hook._find_model_dated
    calls: list[Any] = []

    def lagging(*args: Any) -> Any:
        model, date = real(*args)
        calls.append(args)
        # The first look-up lags behind: the model is not seen (the server's clock is).
        return (None, date) if len(calls) == 1 else (model, date)

    monkeypatch.setattr(hook, "_find_model_dated", lagging)
    # Date has whole seconds, and servers refresh it about once a second (uvicorn does): let the
    # server's clock move well past the old model's second.
    created = datetime.fromisoformat(old["created_at"])
    while datetime.now(UTC) < created.replace(microsecond=0) + timedelta(seconds=2.5):
        threading.Event().wait(0.05)
    admin.add_fault("POST", MODELS, status=503)  # ambiguous: the retry looks and finds the old model
    with pytest.raises(MLSConflictError, match="before this task's create began"):
        hook.create_manual_model(name, "v1", model_data="/same/model.joblib")


@pytest.mark.parametrize("kind", ["manual", "automl"])
def test_a_retry_adopts_its_earlier_trys_create_only(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str, kind: str
) -> None:
    """The task's first try created the model but lost the answer; the task retry passes not_before."""
    name = f"nb-{kind}-{unique}"
    first_try = datetime.now(UTC) - timedelta(seconds=1)
    if kind == "manual":
        create = lambda **kw: hook.create_manual_model(name, "v1", model_data="/m/1.joblib", **kw)  # noqa: E731
        other = lambda **kw: hook.create_manual_model(name, "v1", model_data="/m/2.joblib", **kw)  # noqa: E731
    else:
        dataset = admin.create_dataset(f"ds-{unique}")
        create = lambda **kw: hook.create_automl_model(name, "v1", "d", dataset_id=dataset["id"], **kw)  # noqa: E731
        other = lambda **kw: hook.create_automl_model(name, "v1", "other", dataset_id=dataset["id"], **kw)  # noqa: E731
    model = create()
    with pytest.raises(MLSConflictError, match="existed before this create began"):
        create()  # no not_before: a first try never adopts
    counter.reset()
    assert create(not_before=first_try)["id"] == model["id"]
    assert [c[0] for c in counter.calls] == ["GET", "GET"]  # the look-up (list, model); nothing written
    with pytest.raises(MLSConflictError, match="differs from this task's payload"):
        other(not_before=first_try)
    later = datetime.fromisoformat(model["created_at"]) + timedelta(seconds=5)
    with pytest.raises(MLSConflictError, match="before this task's create began"):
        create(not_before=later)  # the model is older than the first try: not this task's
    assert [m["id"] for m in admin.models(kind, name)] == [model["id"]]
    with pytest.raises(MLSValidationError, match="not_before"):
        create(not_before=datetime.now())  # naive: no clock to compare with


def test_create_is_ours_rules() -> None:
    payload = {"model_type": "manual", "name": "n", "version": "v", "model_meta": {"a": 1}, "features": "x,y"}
    model = {
        "model_type": "manual",
        "name": "n",
        "version": "v",
        "description": "",
        "creator": "mls",
        "model_lib": None,
        "model_data": None,
        "model_meta": {"a": 1},
        "features": "x,y",
        "table": None,
        "components": [],
        "created_at": "2026-01-01T00:00:05.5+00:00",
    }
    began = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    assert create_is_ours(model, payload, began)[0]
    assert create_is_ours(model, payload, None)[0]  # no Date header: the absent look-up alone
    assert not create_is_ours(model, payload, began + timedelta(seconds=1))[0]
    assert payload_mismatches({**model, "table": "t_x"}, payload) == ["table"]
    assert payload_mismatches({**model, "creator": "someone"}, {**payload, "creator": "me"}) == ["creator"]
    assert payload_mismatches(model, {**payload, "components": ["c"]}) == ["components"]


def test_automl_create_if_exists_and_lost_answer(hook: MLSHook, admin: Admin, unique: str) -> None:
    dataset = admin.create_dataset(f"ads-{unique}")
    admin.add_fault("POST", MODELS, status=504, after=True)
    model = hook.create_automl_model(f"am-{unique}", "v1", "d", dataset_id=dataset["id"])
    assert [m["id"] for m in admin.models("automl", f"am-{unique}")] == [model["id"]]
    with pytest.raises(MLSConflictError):
        hook.create_automl_model(f"am-{unique}", "v1", "d", dataset_id=dataset["id"])
    assert (
        hook.create_automl_model(f"am-{unique}", "v1", "other", dataset_id=dataset["id"], if_exists="skip")[
            "id"
        ]
        == model["id"]
    )


def test_pair_held_by_the_other_type_is_a_conflict_even_with_skip(
    hook: MLSHook, admin: Admin, unique: str
) -> None:
    dataset = admin.create_dataset(f"ods-{unique}")
    admin.create_automl_model(f"ot-{unique}", "v1", dataset_id=dataset["id"])
    with pytest.raises(MLSConflictError, match="other type"):
        hook.create_manual_model(f"ot-{unique}", "v1", if_exists="skip")


# ---- updates: verified, and rewritten when a concurrent write undid them ----------------------------


def test_update_survives_a_stale_write_before_its_verification(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    """Writer B read before this merge's PUT and writes after it: the verifying read sees the loss."""
    model = raw_create(admin, f"st-{unique}", "v1", model_meta={"base": 0})
    stale_body = {
        "model_type": "manual",
        "name": model["name"],
        "version": "v1",
        "model_meta": {"base": 0, "b": 2},
    }
    puts: list[str] = []

    def stale_write_after_our_put(request: requests.PreparedRequest) -> None:
        if request.method == "PUT":
            puts.append("PUT")
        elif request.method == "GET" and puts == ["PUT"]:
            puts.append("b")
            admin.call("PUT", f"{MODELS}/{model['id']}", json=stale_body)  # undoes "a"

    before_send(hook, stale_write_after_our_put)
    updated = hook.update_manual_model_meta(model, {"a": 1}, partial_update=True)
    assert updated["model_meta"] == {"base": 0, "a": 1, "b": 2}
    assert stored(admin, model["id"])["model_meta"] == {"base": 0, "a": 1, "b": 2}
    # read (a dict this hook did not write), PUT, verify (lost), fresh read, PUT again, verify
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET", "GET", "PUT", "GET"]


def test_same_key_last_writer_wins_without_a_fight(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = raw_create(admin, f"lww-{unique}", "v1", model_meta={"k": 0})
    puts: list[str] = []

    def later_writer(request: requests.PreparedRequest) -> None:
        if request.method == "PUT":
            puts.append("PUT")
        elif request.method == "GET" and puts:  # after our PUT: another writer sets the same key, later
            admin.call(
                "PUT",
                f"{MODELS}/{model['id']}",
                json={"model_type": "manual", "name": model["name"], "version": "v1", "model_meta": {"k": 2}},
            )

    before_send(hook, later_writer)
    updated = hook.update_manual_model_meta(model, {"k": 1}, partial_update=True)
    assert updated["model_meta"] == {"k": 2}
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]  # accepted: not rewritten


def test_ambiguous_put_is_verified_not_resent(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = raw_create(admin, f"ap-{unique}", "v1")
    admin.add_fault("PUT", f"{MODELS}/{model['id']}", status=502, after=True)  # stored, answer lost
    updated = hook.update_manual_model(model, description="new", table="t_ap_new")
    assert (updated["description"], updated["table"]) == ("new", "t_ap_new")
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]
    component = admin.component(f"apc-{unique}")
    counter.reset()
    admin.add_fault("PUT", f"{MODELS}/{model['id']}", status=503)  # not stored
    updated = hook.update_manual_model_components(updated, [component])  # chained: no read first
    assert [c["name"] for c in updated["components"]] == [f"apc-{unique}"]
    assert [c[0] for c in counter.calls] == ["PUT", "GET", "GET", "PUT", "GET"]


def test_endless_undoing_ends_in_a_typed_error(
    hook: MLSHook, admin: Admin, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mls_module, "MAX_WRITE_ROUNDS", 3)
    monkeypatch.setattr(mls_module, "WRITE_BACKOFF", 0.01)
    model = raw_create(admin, f"end-{unique}", "v1", model_meta={"x": 0})
    body = {"model_type": "manual", "name": model["name"], "version": "v1", "model_meta": {"x": 0}}
    puts = 0

    def undo(request: requests.PreparedRequest) -> None:
        nonlocal puts
        if request.method == "PUT":
            puts += 1
        elif request.method == "GET" and puts:
            admin.call("PUT", f"{MODELS}/{model['id']}", json=body)

    before_send(hook, undo)
    with pytest.raises(MLSWriteConflictError, match="3 rounds") as err:
        hook.update_manual_model_meta(model["id"], {"y": 1}, partial_update=True)
    assert not isinstance(err.value, TERMINAL_ERRORS)  # a task retry may apply it later
    assert puts == 3


def test_chained_writes_save_the_read_and_an_older_dict_is_read_fresh(
    hook: MLSHook, counter: RequestLog, unique: str
) -> None:
    model = hook.create_manual_model(f"od-{unique}", "v1", model_meta={"base": 0})
    counter.reset()
    first = hook.update_manual_model_meta(model, {"a": 1}, partial_update=True)  # the create's own result
    assert [c[0] for c in counter.calls] == ["PUT", "GET"]
    counter.reset()
    second = hook.update_manual_model(first, description="d")  # the last update's own result
    assert [c[0] for c in counter.calls] == ["PUT", "GET"]
    assert second["model_meta"] == {"base": 0, "a": 1} and second["description"] == "d"
    counter.reset()
    after = hook.update_manual_model_meta(model, {"b": 2}, partial_update=True)  # the same, older dict
    assert after["model_meta"] == {"base": 0, "a": 1, "b": 2} and after["description"] == "d"
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]
    counter.reset()
    edited = {**after, "description": "edited by the caller"}  # not the state the hook wrote
    hook.update_manual_model_meta(edited, {"c": 3}, partial_update=True)
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]


def test_a_stale_dict_never_reverts_a_concurrent_change(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    """A dict read before another writer changed the model: updating from it keeps that change."""
    created = raw_create(admin, f"sd-{unique}", "v1", description="old", model_meta={"base": 0})
    held = hook.get_manual_model(id=created["id"])  # the caller's copy, read now
    other = MLSHook(hook.mls_conn_id, retry_min_wait=0.01, retry_max_wait=0.05, write_settle=0.1)
    other.update_manual_model(held["id"], description="changed meanwhile", table=f"t_sd_{unique}")
    counter.reset()
    updated = hook.update_manual_model_meta(held, {"a": 1}, partial_update=True)  # held is stale now
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]
    for model in (updated, stored(admin, created["id"])):
        assert model["description"] == "changed meanwhile" and model["table"] == f"t_sd_{unique}"
        assert model["model_meta"] == {"base": 0, "a": 1}


# ---- real concurrency ----------------------------------------------------------------------------


def _concurrently(n: int, fn: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(n)

    def run(i: int) -> Any:
        start.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_distinct_key_merges_lose_no_key(
    mls_conn: Any, admin: Admin, unique: str, trial: int
) -> None:
    n = 20
    model = raw_create(admin, f"cm-{unique}", "v1", model_meta={"base": True})
    hooks = [MLSHook(retry_min_wait=0.01, retry_max_wait=0.05) for _ in range(n)]  # default write_settle
    try:
        results = _concurrently(
            n,
            lambda i: hooks[i].update_manual_model_meta(model["id"], {f"metric_{i}": i}, partial_update=True),
        )
    finally:
        for h in hooks:
            h.close()
    meta = stored(admin, model["id"])["model_meta"]
    assert meta == {"base": True, **{f"metric_{i}": i for i in range(n)}}
    assert all(r["model_meta"][f"metric_{i}"] == i for i, r in enumerate(results))


def test_concurrent_field_component_and_meta_updates_all_land(
    mls_conn: Any, admin: Admin, unique: str
) -> None:
    component = admin.component(f"cc-{unique}")
    model = raw_create(admin, f"cf-{unique}", "v1", model_meta={"m": 0})
    writes: list[Callable[[MLSHook], Any]] = [
        lambda h: h.update_manual_model(model["id"], description="d2"),
        lambda h: h.update_manual_model(model["id"], table=f"t_{unique}", model_lib="xgboost"),
        lambda h: h.update_manual_model_components(model["id"], [component]),
        lambda h: h.update_manual_model_meta(model["id"], {"m1": 1}, partial_update=True),
        lambda h: h.update_manual_model_meta(model["id"], {}, partial_update=True, remove_keys=["m"]),
        lambda h: h.update_manual_model(model["id"], creator="someone", model_data="/d"),
    ]
    hooks = [MLSHook(retry_min_wait=0.01, retry_max_wait=0.05) for _ in writes]
    try:
        _concurrently(len(writes), lambda i: writes[i](hooks[i]))
    finally:
        for h in hooks:
            h.close()
    now = stored(admin, model["id"])
    assert (now["description"], now["table"], now["model_lib"]) == ("d2", f"t_{unique}", "xgboost")
    assert (now["creator"], now["model_data"]) == ("someone", "/d")
    assert [c["name"] for c in now["components"]] == [f"cc-{unique}"]
    assert now["model_meta"] == {"m1": 1}


def test_concurrent_same_key_writes_keep_one_of_the_written_values(
    mls_conn: Any, admin: Admin, unique: str
) -> None:
    n = 6
    model = raw_create(admin, f"sk-{unique}", "v1")
    hooks = [MLSHook(retry_min_wait=0.01, retry_max_wait=0.05) for _ in range(n)]
    try:
        _concurrently(
            n,
            lambda i: hooks[i].update_manual_model_meta(
                model["id"], {"shared": i, f"own_{i}": i}, partial_update=True
            ),
        )
    finally:
        for h in hooks:
            h.close()
    meta = stored(admin, model["id"])["model_meta"]
    assert meta["shared"] in range(n)
    assert {k: v for k, v in meta.items() if k != "shared"} == {f"own_{i}": i for i in range(n)}


def test_concurrent_identical_creates_leave_one_model(mls_conn: Any, admin: Admin, unique: str) -> None:
    n = 10
    hooks = [MLSHook(retry_min_wait=0.01, retry_max_wait=0.05) for _ in range(n)]

    def create(i: int) -> Any:
        try:
            return hooks[i].create_manual_model(f"ci-{unique}", "v1", model_data="/m", if_exists="fail")
        except MLSConflictError as exc:
            return exc

    try:
        outcomes = _concurrently(n, create)
    finally:
        for h in hooks:
            h.close()
    created = [o for o in outcomes if isinstance(o, dict)]
    assert len(created) == 1, outcomes  # no fault: exactly one create succeeded, every other one failed typed
    assert all(isinstance(o, MLSConflictError) for o in outcomes if not isinstance(o, dict))
    assert [m["id"] for m in admin.models("manual", f"ci-{unique}")] == [created[0]["id"]]


# ---- errors --------------------------------------------------------------------------------------


def test_401_is_terminal_and_not_retried(
    make_hook: MakeHook, mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MLS_BAD", f"mls://mls:wrong@127.0.0.1:{mls_server.port}?env=local")
    hook, counter = make_hook("mls_bad")
    with pytest.raises(MLSAuthError) as err:
        hook.list_manual_models()
    assert isinstance(err.value, TERMINAL_ERRORS)
    assert err.value.status == 401 and len(counter) == 1


def test_unknown_model_id_names_model_id(hook: MLSHook) -> None:
    with pytest.raises(MLSNotFoundError) as err:
        hook.update_manual_model_meta(987654321, {"a": 1})
    assert err.value.message.startswith("model_id: ") and "987654321" in err.value.message
    assert err.value.status == 404  # a real answer of MLS keeps its status


def test_a_merge_that_would_outgrow_the_meta_limit_writes_nothing(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = raw_create(admin, f"big-{unique}", "v1", model_meta={"a": "x" * 600_000})
    counter.reset()
    with pytest.raises(MLSValidationError) as err:
        hook.update_manual_model_meta(model["id"], {"b": "y" * 600_000}, partial_update=True)
    assert err.value.field == "model_meta" and "bytes" in str(err.value)
    assert [c[0] for c in counter.calls] == ["GET"]  # read to merge; nothing PUT
    hook.update_manual_model(model["id"], description="still updatable")  # other fields: fine


_START: Any = None


def _join_start(barrier: Any) -> None:
    global _START
    _START = barrier


def _merge_in_a_process(model_id: int, i: int) -> int:
    hook = MLSHook(retry_min_wait=0.01, retry_max_wait=0.05)
    try:
        _START.wait()  # every process reads, writes and verifies at the same time
        meta = hook.update_manual_model_meta(model_id, {f"p_{i}": i}, partial_update=True)["model_meta"]
        return int(meta[f"p_{i}"])
    finally:
        hook.close()


def test_concurrent_merges_from_processes_lose_no_key(mls_conn: Any, admin: Admin, unique: str) -> None:
    """As Airflow runs tasks: each writer its own process (fork), its own hook and connection."""
    n = 8
    model = raw_create(admin, f"pm-{unique}", "v1")
    context = multiprocessing.get_context("fork")
    start = context.Barrier(n)
    with ProcessPoolExecutor(
        max_workers=n, mp_context=context, initializer=_join_start, initargs=(start,)
    ) as pool:
        results = list(pool.map(_merge_in_a_process, [model["id"]] * n, range(n)))
    assert results == list(range(n))
    assert stored(admin, model["id"])["model_meta"] == {f"p_{i}": i for i in range(n)}


def test_a_merge_into_a_dict_without_meta(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = {**raw_create(admin, f"nm-{unique}", "v1"), "model_meta": None}  # a caller's dict, meta null
    counter.reset()
    assert hook.update_manual_model_meta(model, {"a": 1}, partial_update=True)["model_meta"] == {"a": 1}
    assert [c[0] for c in counter.calls] == ["GET", "PUT", "GET"]  # not this hook's write: read first
