"""Durable tasks: what a task records in Airflow 3.3's task state store, and what its next try does with it.

The store here is ``TaskStore``: the interface of ``context["task_state_store"]`` (get, set, delete; JSON
values that survive the task instance's tries), kept in a dict. The operators run against the local MLS
server over real HTTP; a try "dies" where a worker would (a fault after the POST was answered), and the
world moves between the tries: the model edited, a rival's identical create, Airflow's clock ahead of
MLS's. ``tests/e2e/test_faults.py`` does the same with the real store on a real deployment.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_mls.exceptions import MLSError
from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    CreateManualModelOperator,
    StartAutoMLServerOperator,
    StopAutoMLServerOperator,
)
from airflow_provider_mls.triggers.mls import MLSCheckTrigger

from ._support import record_requests, uniq, writes

if TYPE_CHECKING:
    from ._support import Mls

pytestmark = pytest.mark.timeout(60)
MODELS = "/api/v1/models"


class TaskStore:
    """``context["task_state_store"]`` of one task instance, in memory (JSON round-trip like the real one)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes: list[tuple[str, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.dumps(value)
        self.writes.append((key, value))

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def context(store: TaskStore | None, try_number: int, run_start: datetime | None = None) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "ti": SimpleNamespace(try_number=try_number, xcom_push=lambda key, value: None),
        "dag_run": SimpleNamespace(start_date=run_start or datetime.now(UTC) - timedelta(seconds=5)),
    }
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def die_after_the_post(mls: Mls, next_id: int) -> None:
    """The read-back of the model the POST creates fails (503, no retries): the try ends after MLS
    answered its create, as a worker killed at that moment would."""
    mls.add_fault("GET", f"{MODELS}/{next_id}", status=503, count=1)


def next_model_id(mls: Mls) -> int:
    """The id the next model gets (the local server counts up; a throw-away model tells where it is)."""
    probe = mls.manual(uniq("probe"))
    mls.call("DELETE", f"{MODELS}/{probe['id']}")
    return int(probe["id"]) + 1


def first_try_dies_after_its_post(mls: Mls, conn: str, store: TaskStore | None, **kwargs: Any) -> int:
    """Try 1 of a manual create: MLS creates the model, the try fails before it reads it back; its id."""
    model_id = next_model_id(mls)
    die_after_the_post(mls, model_id)
    op = CreateManualModelOperator(task_id="create", mls_conn_id=conn, **kwargs)
    with pytest.raises(MLSError):
        op.execute(context(store, 1))
    assert mls.model(model_id)["name"] == kwargs["name"]
    return model_id


# ---- the cases a time window cannot tell apart -------------------------------------------------------


@pytest.mark.parametrize("store", [TaskStore(), None], ids=["task state store", "window (Airflow < 3.3)"])
def test_model_edited_between_the_tries(mls: Mls, no_retry_conn: str, store: TaskStore | None) -> None:
    name = uniq("edited")
    fields = {"name": name, "version": "v1", "description": "mine", "if_exists": "fail"}
    created = first_try_dies_after_its_post(mls, no_retry_conn, store, **fields)
    if store is not None:
        recorded = store.get("mls_create")
        assert {k: v for k, v in recorded.items() if k != "values"} == {
            "model_type": "manual",
            "name": name,
            "version": "v1",
            "id": created,
        }
        assert sorted(recorded["values"]) == ["description"]  # digests of the values it was given
    mls.edit(created, description="edited by a person")
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    if store is None:  # the payload no longer matches: the window cannot know the model is its own
        with pytest.raises(AirflowFailException, match="existed before this create began"):
            retry.execute(context(None, 2))
        return
    assert retry.execute(context(store, 2))["id"] == created
    assert mls.model(created)["description"] == "edited by a person"  # if_exists=fail changes nothing
    assert [m["id"] for m in mls.models(name)] == [created]


def test_model_edited_between_the_tries_is_updated_with_if_exists_update(
    mls: Mls, no_retry_conn: str
) -> None:
    store = TaskStore()
    name = uniq("edited-upd")
    fields = {"name": name, "version": "v1", "description": "mine", "if_exists": "update"}
    created = first_try_dies_after_its_post(mls, no_retry_conn, store, **fields)
    mls.edit(created, description="edited")
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    assert retry.execute(context(store, 2))["id"] == created
    assert mls.model(created)["description"] == "mine"


@pytest.mark.parametrize("store", [TaskStore(), None], ids=["task state store", "window (Airflow < 3.3)"])
def test_clock_of_mls_a_minute_behind_airflows(mls: Mls, no_retry_conn: str, store: TaskStore | None) -> None:
    """MLS stamps created_at a minute earlier than Airflow's clock says the run began."""
    name = uniq("skew")
    fields = {"name": name, "version": "v1", "description": "mine"}
    created = first_try_dies_after_its_post(mls, no_retry_conn, store, **fields)
    run_start = datetime.fromisoformat(mls.model(created)["created_at"]) + timedelta(minutes=1)
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    if store is None:
        with pytest.raises(AirflowFailException, match="before this task's create began"):
            retry.execute(context(None, 2, run_start))
        return
    assert retry.execute(context(store, 2, run_start))["id"] == created
    assert [m["id"] for m in mls.models(name)] == [created]


@pytest.mark.parametrize("store", [TaskStore(), None], ids=["task state store", "window (Airflow < 3.3)"])
def test_rivals_identical_create_in_the_window(mls: Mls, no_retry_conn: str, store: TaskStore | None) -> None:
    """Try 1 dies before its POST (its look-up fails); a rival then creates the same model, same values."""
    name = uniq("rival")
    fields = {"name": name, "version": "v1", "description": "same"}
    mls.add_fault("GET", MODELS, status=503, count=1)
    with pytest.raises(MLSError):
        CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields).execute(
            context(store, 1)
        )
    assert mls.models(name) == []
    rival = mls.manual(name, "v1", description="same")
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    if store is None:  # same payload, created after the run began: the window takes the rival's as its own
        assert retry.execute(context(None, 2))["id"] == rival["id"]
        return
    assert store.get("mls_create") is None  # nothing was sent: whatever holds the name is somebody else's
    with pytest.raises(AirflowFailException, match=f"exists already \\(id {rival['id']}; it existed before"):
        retry.execute(context(store, 2))


def test_a_post_whose_answer_was_lost_falls_back_to_the_window(mls: Mls, no_retry_conn: str) -> None:
    """Sent but never answered (the worker died in flight): only then does the time window decide."""
    store = TaskStore()
    name = uniq("in-flight")
    fields = {"name": name, "version": "v1", "description": "mine"}
    mls.add_fault("POST", MODELS, status=503, after=True, count=1)  # stored, then the answer is lost
    with pytest.raises(MLSError):
        CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields).execute(
            context(store, 1)
        )
    recorded = store.get("mls_create")
    assert recorded is not None and "sent_at" in recorded and "id" not in recorded
    [model] = mls.models(name)
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    assert retry.execute(context(store, 2))["id"] == model["id"]
    assert store.get("mls_create")["id"] == model["id"]


class BrokenStore(TaskStore):
    """A store that fails to read (``get``) or to write (``set``) while the flag is up: the api-server down."""

    def __init__(self) -> None:
        super().__init__()
        self.broken_get = self.broken_set = False

    def get(self, key: str, default: Any = None) -> Any:
        if self.broken_get:
            raise ConnectionError("the task state store is down")
        return super().get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        if self.broken_set:
            raise ConnectionError("the task state store is down")
        super().set(key, value, retention=retention)


def test_a_store_that_cannot_be_read_falls_back_to_the_window(mls: Mls, no_retry_conn: str) -> None:
    """Try 1 sent the create and died; the retry cannot read the store: the window, not "nothing sent"."""
    store = BrokenStore()
    name = uniq("unreadable")
    fields = {"name": name, "version": "v1", "description": "mine", "if_exists": "fail"}
    created = first_try_dies_after_its_post(mls, no_retry_conn, store, **fields)
    store.broken_get = True
    retry = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    assert retry.execute(context(store, 2))["id"] == created
    assert [m["id"] for m in mls.models(name)] == [created]


def test_a_store_that_cannot_be_written_fails_the_try_before_its_post(mls: Mls, no_retry_conn: str) -> None:
    store = BrokenStore()
    store.broken_set = True
    name = uniq("unwritable")
    fields = {"name": name, "version": "v1", "description": "mine", "if_exists": "fail"}
    op = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields)
    calls = record_requests(op)
    with pytest.raises(MLSError, match="not sending it"):
        op.execute(context(store, 1))
    assert writes(calls) == [] and mls.models(name) == []  # nothing sent: the retry is clean
    store.broken_set = False
    result = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields).execute(
        context(store, 2)
    )
    assert store.get("mls_create")["id"] == result["id"]


@pytest.mark.parametrize("if_exists", ["fail", "skip", "update"])
def test_a_task_cleared_after_its_values_changed(mls: Mls, if_exists: str) -> None:
    """The task created its model and succeeded (the record stays); its DAG's values changed, it is
    cleared: its earlier create holds other values, and ``if_exists`` says so instead of going green."""
    store = TaskStore()
    name = uniq("changed")
    first = CreateManualModelOperator(
        task_id="create", name=name, version="v1", description="old", if_exists=if_exists
    ).execute(context(store, 1))
    again = CreateManualModelOperator(
        task_id="create", name=name, version="v1", description="new", features="a,b", if_exists=if_exists
    )
    warnings: list[str] = []
    again.log.warning = lambda message, *args: warnings.append(message % args)  # type: ignore[method-assign]
    if if_exists == "fail":
        with pytest.raises(AirflowFailException, match="other values of description, features than this run"):
            again.execute(context(store, 2))
        assert mls.model(first["id"])["description"] == "old"
        return
    assert again.execute(context(store, 2))["id"] == first["id"]
    if if_exists == "skip":
        assert mls.model(first["id"])["description"] == "old"
        assert any("other values of description, features" in w for w in warnings)
        return
    assert mls.model(first["id"])["description"] == "new"
    # recorded with this run's values: the same run cleared again is told of no change
    CreateManualModelOperator(
        task_id="create", name=name, version="v1", description="new", features="a,b", if_exists="fail"
    ).execute(context(store, 3))


def test_a_recorded_model_deleted_since_is_created_anew(mls: Mls, no_retry_conn: str) -> None:
    store = TaskStore()
    name = uniq("gone")
    fields = {"name": name, "version": "v1"}
    created = first_try_dies_after_its_post(mls, no_retry_conn, store, **fields)
    mls.call("DELETE", f"{MODELS}/{created}")
    result = CreateManualModelOperator(task_id="create", mls_conn_id=no_retry_conn, **fields).execute(
        context(store, 2)
    )
    assert result["id"] != created
    assert store.get("mls_create")["id"] == result["id"]


def test_a_first_try_records_its_create(mls: Mls) -> None:
    store = TaskStore()
    name = uniq("first")
    result = CreateManualModelOperator(task_id="create", name=name, version="v1").execute(context(store, 1))
    assert [key for key, _ in store.writes] == ["mls_create", "mls_create"]  # before the POST, then its id
    assert "sent_at" in store.writes[0][1]
    assert store.get("mls_create")["id"] == result["id"]


def test_automl_retry_reconnects_to_the_training_it_started(mls: Mls, no_retry_conn: str) -> None:
    store = TaskStore()
    dataset = mls.create_dataset(uniq("ds"))
    name = uniq("am")
    model_id = next_model_id(mls)
    die_after_the_post(mls, model_id)
    fields = {"name": name, "version": "v1", "description": "d", "dataset_id": dataset["id"]}
    with pytest.raises(MLSError):
        CreateAutoMLModelOperator(task_id="train", mls_conn_id=no_retry_conn, **fields).execute(
            context(store, 1)
        )
    run_start = datetime.now(UTC) + timedelta(minutes=1)  # and the clocks disagree
    retry = CreateAutoMLModelOperator(task_id="train", mls_conn_id=no_retry_conn, **fields)
    assert retry.execute(context(store, 2, run_start))["id"] == model_id
    assert [m["id"] for m in mls.models(name)] == [model_id]


# ---- server operators: acted, cancel_on_kill -----------------------------------------------------------


@pytest.fixture
def automl(mls: Mls) -> dict[str, Any]:
    return mls.automl(uniq("srv"))


def test_a_retry_knows_its_earlier_try_started_the_server(mls: Mls, automl: dict[str, Any]) -> None:
    store = TaskStore()
    first = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], wait_for_completion=False)
    assert first.execute(context(store, 1))["acted"] is True
    assert store.get("mls_server") == {"model_id": automl["id"], "action": "start"}
    mls.wait_server(automl["id"], "RUNNING")
    retry = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    calls = record_requests(retry)
    assert retry.execute(context(store, 2)) == {"model_id": automl["id"], "status": "RUNNING", "acted": True}
    assert writes(calls) == []
    # without the store (Airflow < 3.3) the retry cannot know: acted is false
    again = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    assert again.execute(context(None, 2))["acted"] is False


def test_a_retry_after_a_failed_start_starts_again(mls: Mls, automl: dict[str, Any]) -> None:
    """The recorded start of an earlier try does not fail the retry at once: that is what retries are for."""
    store = TaskStore()
    mls.force_server(automl["id"], fail_next_start=True)
    first = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    with pytest.raises(AirflowFailException, match="FAILED after the start"):
        first.execute(context(store, 1))
    assert store.get("mls_server") == {"model_id": automl["id"], "action": "start"}
    retry = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    calls = record_requests(retry)
    assert retry.execute(context(store, 2)) == {"model_id": automl["id"], "status": "RUNNING", "acted": True}
    assert len(writes(calls)) == 1  # the start, sent again


def test_a_retry_after_a_dead_worker_waits_for_the_start_it_sent(mls: Mls, automl: dict[str, Any]) -> None:
    """Try 1 sent the start and died while the server was STARTING: the retry sends no second start, a kill
    stops the server (it is this task's), and a failure after it is retried by a new start, not failed."""
    store = TaskStore()
    first = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], wait_for_completion=False)
    assert first.execute(context(store, 1))["acted"] is True
    mls.force_server(automl["id"], "STARTING")  # and it stays so while the retry waits
    retry = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], deferrable=True, poke_interval=30)
    calls = record_requests(retry)
    with pytest.raises(TaskDeferred) as deferred:
        retry.execute(context(store, 2))
    assert writes(calls) == []
    trigger = deferred.value.trigger
    assert trigger.carry["acted"] is True and trigger.carry["sent"] is False
    assert trigger.stop_server_on_kill == automl["id"]  # cancel_on_kill applies
    value = {"model_id": automl["id"], "status": "FAILED"}
    event = {"status": "success", "value": value, "carry": trigger.carry, "deadline": trigger.deadline}
    mls.force_server(automl["id"], "FAILED")
    resumed = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    calls = record_requests(resumed)
    assert resumed.execute_complete(context(store, 2), event)["status"] == "RUNNING"
    assert len(writes(calls)) == 1
    resumed.on_kill()  # a person kills it now: the server this task started is stopped
    mls.wait_server(automl["id"], "STOPPED")


def test_a_stop_record_does_not_count_as_a_start(mls: Mls, automl: dict[str, Any]) -> None:
    store = TaskStore()
    store.set("mls_server", {"model_id": automl["id"], "action": "stop"})
    mls.force_server(automl["id"], "RUNNING")
    op = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], poke_interval=0.05, timeout=10)
    assert op.execute(context(store, 2))["acted"] is False
    stop = StopAutoMLServerOperator(task_id="t", model_id=automl["id"], wait_for_completion=False)
    assert stop.execute(context(store, 2))["acted"] is True  # that record is the stop's own


def test_killed_in_the_worker_stops_the_server_it_started(mls: Mls, automl: dict[str, Any]) -> None:
    op = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], wait_for_completion=False)
    op.execute(context(TaskStore(), 1))
    op.on_kill()
    mls.wait_server(automl["id"], "STOPPED")


@pytest.mark.parametrize("cancel_on_kill", [False, True])
def test_killed_without_having_started_stops_nothing(
    mls: Mls, automl: dict[str, Any], cancel_on_kill: bool
) -> None:
    mls.force_server(automl["id"], "RUNNING")
    op = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], cancel_on_kill=cancel_on_kill)
    assert op.execute(context(TaskStore(), 1))["acted"] is False
    calls = record_requests(op)
    op.on_kill()
    assert writes(calls) == []
    assert mls.server_status(automl["id"]) == "RUNNING"


def _deferred_trigger(op: StartAutoMLServerOperator) -> MLSCheckTrigger:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context(TaskStore(), 1))
    classpath, kwargs = deferred.value.trigger.serialize()
    json.dumps(kwargs)
    assert classpath == "airflow_provider_mls.triggers.mls.MLSCheckTrigger"
    return MLSCheckTrigger(**kwargs)


@pytest.mark.parametrize("cancel_on_kill", [True, False])
def test_deferred_start_killed_by_a_person(mls: Mls, automl: dict[str, Any], cancel_on_kill: bool) -> None:
    """The triggerer cancels the trigger for a person's action, then awaits its ``on_kill``."""
    op = StartAutoMLServerOperator(  # the trigger checks once, then sleeps: the kill comes first
        task_id="s", model_id=automl["id"], deferrable=True, poke_interval=30, cancel_on_kill=cancel_on_kill
    )
    trigger = _deferred_trigger(op)
    assert trigger.stop_server_on_kill == (automl["id"] if cancel_on_kill else None)

    async def killed() -> None:
        task = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(0.2)
        task.cancel("user-action")
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.on_kill()

    asyncio.run(killed())
    mls.wait_server(automl["id"], "STOPPED" if cancel_on_kill else "RUNNING")


def test_deferred_start_of_a_server_it_did_not_start_stops_nothing_on_kill(
    mls: Mls, automl: dict[str, Any]
) -> None:
    mls.force_server(automl["id"], "STARTING")
    op = StartAutoMLServerOperator(task_id="s", model_id=automl["id"], deferrable=True, poke_interval=0.05)
    trigger = _deferred_trigger(op)
    assert trigger.stop_server_on_kill is None
    assert "stop_server_on_kill" not in trigger.serialize()[1]
    asyncio.run(trigger.on_kill())
    assert mls.server_status(automl["id"]) == "STARTING"


def test_killing_one_wait_leaves_the_others_and_releases_what_it_held(mls: Mls) -> None:
    """Two waits on one table share one request; a person kills one (cancel, then ``on_kill``): the other
    keeps the shared request and fires its one event; afterwards no shared entry or pool is left."""
    from airflow_provider_mls.checks import TableReadyCheck
    from airflow_provider_mls.hooks.mls_async import shared_pool_count
    from airflow_provider_mls.triggers._shared import shared_check_stats

    table = uniq("kill_t").replace("-", "_")
    check = TableReadyCheck(table=table).to_dict()
    killed, kept = (MLSCheckTrigger(check=check, poke_interval=0.1) for _ in range(2))

    async def scenario() -> dict[str, Any]:
        doomed = asyncio.ensure_future(killed.run().__anext__())
        events = kept.run()
        survivor = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.5)
        [entry] = [s for s in shared_check_stats() if s["check"]["table"] == table]
        assert entry["waiters"] == 2
        doomed.cancel("user-action")
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await killed.on_kill()  # nothing of its own to stop remotely
        [entry] = [s for s in shared_check_stats() if s["check"]["table"] == table]
        assert entry["waiters"] == 1
        await asyncio.to_thread(mls.set_table, table)
        event = await asyncio.wait_for(survivor, 30)
        await events.aclose()  # the triggerer is done with a trigger after its event
        assert shared_check_stats() == [] and shared_pool_count() == 0
        return dict(event.payload)

    assert asyncio.run(scenario())["status"] == "success"
