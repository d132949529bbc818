"""StartAutoMLServerOperator and StopAutoMLServerOperator against the local server's simulated model server.

The local server moves STARTING -> RUNNING (or FAILED) and STOPPING -> STOPPED 0.5 s after a start or stop
(``server_start_seconds``); a status forced through ``/local`` stays until the next start or stop, which
gives a server that is stuck in STARTING or STOPPING.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)

from airflow_provider_mls.exceptions import (
    MLSBadRequestError,
    MLSConflictError,
    MLSNotFoundError,
    MLSServerError,
)
from airflow_provider_mls.operators.mls import StartAutoMLServerOperator, StopAutoMLServerOperator

from ._support import DeferredRun, record_requests, uniq, writes

if TYPE_CHECKING:
    from ._support import Mls

pytestmark = pytest.mark.timeout(60)

FAST: dict[str, Any] = {"poke_interval": 0.05, "timeout": 20}


def server_path(model: dict) -> str:
    return f"/api/v1/models/{model['id']}/automl_model_server"


def starts(calls: list[tuple[str, str]], model: dict) -> int:
    return writes(calls).count(("POST", server_path(model)))


def stops(calls: list[tuple[str, str]], model: dict) -> int:
    return writes(calls).count(("DELETE", server_path(model)))


@pytest.fixture
def model(mls: Mls) -> dict:
    """A trained AutoML model whose server was never started (STOPPED)."""
    return mls.automl(uniq("srv"))


def stopping(mls: Mls, model: dict) -> None:
    """The server is RUNNING and a stop was just issued: STOPPING for 0.5 s, then STOPPED."""
    mls.force_server(model["id"], "RUNNING")
    mls.stop_server(model["id"])
    assert mls.server_status(model["id"]) == "STOPPING"


# ---- StartAutoMLServerOperator, poke mode ------------------------------------------------------------


def test_start_stopped_server_and_wait(mls: Mls, model: dict) -> None:
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], **FAST)
    assert op.deferrable is False and not hasattr(op, "mode")  # a plain operator, not a sensor
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": True}
    assert mls.server_status(model["id"]) == "RUNNING"
    assert starts(calls, model) == 1


@pytest.mark.parametrize("ref", ["string id", "model dict", "name and version"])
def test_start_by_every_reference(mls: Mls, model: dict, ref: str) -> None:
    selector = {
        "string id": {"model_id": str(model["id"])},
        "model dict": {"model_id": model},
        "name and version": {"name": model["name"], "version": "v1"},
    }[ref]
    result = StartAutoMLServerOperator(task_id="start", **selector, **FAST).execute({})
    assert result == {"model_id": model["id"], "status": "RUNNING", "acted": True}


def test_start_already_running_sends_no_start(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": False}
    assert writes(calls) == []
    assert calls == [("GET", server_path(model))]


def test_start_while_starting_waits_without_a_second_start(mls: Mls, model: dict) -> None:
    mls.call("POST", server_path(model))  # someone else started it
    assert mls.server_status(model["id"]) == "STARTING"
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": False}
    assert starts(calls, model) == 0


def test_start_while_stopping_waits_for_stopped_then_starts(mls: Mls, model: dict) -> None:
    stopping(mls, model)
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": True}
    assert starts(calls, model) == 1  # only once STOPPED: a start while STOPPING is a 409
    assert mls.server_status(model["id"]) == "RUNNING"


@pytest.mark.parametrize("status", ["FAILED", "UNKNOWN"])
def test_start_failed_before_this_task_starts_again(mls: Mls, model: dict, status: str) -> None:
    mls.force_server(model["id"], status)
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": True}
    assert starts(calls, model) == 1


def test_start_that_fails_fails_the_task_at_once(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], fail_next_start=True)
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], poke_interval=0.05, timeout=30)
    calls = record_requests(op)
    began = time.monotonic()
    with pytest.raises(AirflowFailException, match="FAILED after the start"):
        op.execute({})
    assert time.monotonic() - began < 10  # not after the 30 s timeout
    assert starts(calls, model) == 1  # and no second start
    assert mls.server_status(model["id"]) == "FAILED"


def test_start_that_fails_with_soft_fail_skips(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], fail_next_start=True)
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], soft_fail=True, **FAST)
    with pytest.raises(AirflowSkipException):
        op.execute({})
    assert mls.server_status(model["id"]) == "FAILED"


def test_start_stuck_starting_times_out(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "STARTING")  # stays STARTING: a server that never comes up
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], poke_interval=0.05, timeout=0.3)
    calls = record_requests(op)
    began = time.monotonic()
    with pytest.raises(AirflowSensorTimeout):
        op.execute({})
    assert 0.3 <= time.monotonic() - began < 10
    assert starts(calls, model) == 0
    soft = StartAutoMLServerOperator(
        task_id="start", model_id=model["id"], poke_interval=0.05, timeout=0.2, soft_fail=True
    )
    with pytest.raises(AirflowSkipException):
        soft.execute({})


@pytest.mark.parametrize("no_wait", [False, "false"], ids=["bool", "rendered"])
def test_start_without_waiting_returns_at_once(mls: Mls, model: dict, no_wait: object) -> None:
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], wait_for_completion=no_wait, **FAST)
    calls = record_requests(op)
    result = op.execute({})
    assert result == {"model_id": model["id"], "status": "STARTING", "acted": True}
    assert starts(calls, model) == 1
    assert mls.server_status(model["id"]) == "STARTING"  # it returned before the 0.5 s start
    if no_wait is False:
        mls.wait_server(model["id"], "RUNNING")


def test_start_without_waiting_when_running(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], wait_for_completion=False)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "RUNNING", "acted": False}
    assert writes(calls) == []


def test_start_without_waiting_while_stopping_still_starts(mls: Mls, model: dict) -> None:
    stopping(mls, model)
    op = StartAutoMLServerOperator(task_id="start", model_id=model["id"], wait_for_completion=False, **FAST)
    calls = record_requests(op)
    try:
        result = op.execute({})
    except Exception:  # failing loudly (so that a retry starts it) would be fine too
        return
    # The task succeeded, so it must have started the server (or a start must be on its way).
    time.sleep(1.2)
    assert starts(calls, model) == 1 and result["acted"] is True
    assert mls.server_status(model["id"]) in ("STARTING", "RUNNING")


def test_start_of_a_model_still_training_fails(mls: Mls) -> None:
    untrained = mls.automl(uniq("srv-training"), trained=False)
    op = StartAutoMLServerOperator(task_id="start", model_id=untrained["id"], **FAST)
    with pytest.raises(AirflowFailException, match="TRAINING") as err:
        op.execute({})
    assert isinstance(err.value.__cause__, MLSConflictError)
    assert mls.server_status(untrained["id"]) == "STOPPED"


@pytest.mark.parametrize("wait", [True, False])
def test_start_unknown_or_manual_model_fails(mls: Mls, wait: bool) -> None:
    for selector, cause in (
        ({"model_id": 987654321}, MLSNotFoundError),
        ({"name": uniq("ghost"), "version": "v1"}, MLSNotFoundError),
        ({"model_id": mls.manual(uniq("srv-manual"))["id"]}, MLSBadRequestError),
    ):
        op = StartAutoMLServerOperator(task_id="start", wait_for_completion=wait, **selector, **FAST)
        with pytest.raises(AirflowFailException) as err:
            op.execute({})
        assert isinstance(err.value.__cause__, cause), selector


@pytest.mark.parametrize("wait", [True, False])
def test_start_bad_reference_names_the_field(mls: Mls, model: dict, wait: bool) -> None:
    op = StartAutoMLServerOperator(
        task_id="start", model_id=model["id"], name=model["name"], version="v1", wait_for_completion=wait
    )
    calls = record_requests(op)
    with pytest.raises(AirflowFailException, match="model_id"):
        op.execute({})
    assert calls == []
    assert mls.server_status(model["id"]) == "STOPPED"


@pytest.mark.parametrize("cls", [StartAutoMLServerOperator, StopAutoMLServerOperator])
def test_bad_wait_for_completion_fails_fast(mls: Mls, model: dict, cls: type) -> None:
    op = cls(task_id="t", model_id=model["id"], wait_for_completion="sometimes")
    with pytest.raises(AirflowFailException, match="wait_for_completion"):
        op.execute({})


def test_soft_fail_applies_without_waiting(mls: Mls) -> None:
    waiting = StopAutoMLServerOperator(
        task_id="stop", model_id=987654321, wait_for_completion=True, soft_fail=True, **FAST
    )
    with pytest.raises(AirflowSkipException):
        waiting.execute({})
    not_waiting = StopAutoMLServerOperator(task_id="stop", model_id=987654321, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        not_waiting.execute({})


# ---- StopAutoMLServerOperator, poke mode -------------------------------------------------------------


def test_stop_without_waiting_is_the_default(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    op = StopAutoMLServerOperator(task_id="stop", model_id=model["id"], **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "STOPPING", "acted": True}
    assert stops(calls, model) == 1
    mls.wait_server(model["id"], "STOPPED")


@pytest.mark.parametrize("wait", [True, "true"], ids=["bool", "rendered"])
def test_stop_and_wait(mls: Mls, model: dict, wait: object) -> None:
    mls.force_server(model["id"], "RUNNING")
    op = StopAutoMLServerOperator(task_id="stop", model_id=model["id"], wait_for_completion=wait, **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "STOPPED", "acted": True}
    assert stops(calls, model) == 1
    assert mls.server_status(model["id"]) == "STOPPED"


@pytest.mark.parametrize("wait", [True, False])
def test_stop_already_stopped(mls: Mls, model: dict, wait: bool) -> None:
    op = StopAutoMLServerOperator(task_id="stop", model_id=model["id"], wait_for_completion=wait, **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "STOPPED", "acted": False}
    assert writes(calls) == []


def test_stop_while_stopping_waits_without_a_second_stop(mls: Mls, model: dict) -> None:
    stopping(mls, model)
    op = StopAutoMLServerOperator(task_id="stop", model_id=model["id"], wait_for_completion=True, **FAST)
    calls = record_requests(op)
    assert op.execute({}) == {"model_id": model["id"], "status": "STOPPED", "acted": False}
    assert stops(calls, model) == 0


def test_stop_stuck_stopping_times_out(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "STOPPING")
    op = StopAutoMLServerOperator(
        task_id="stop", model_id=model["id"], wait_for_completion=True, poke_interval=0.05, timeout=0.2
    )
    with pytest.raises(AirflowSensorTimeout):
        op.execute({})


def test_start_then_stop_round_trip(mls: Mls, model: dict) -> None:
    assert StartAutoMLServerOperator(task_id="start", name=model["name"], version="v1", **FAST).execute({})[
        "acted"
    ]
    stopped = StopAutoMLServerOperator(
        task_id="stop", name=model["name"], version="v1", wait_for_completion=True, **FAST
    ).execute({})
    assert stopped == {"model_id": model["id"], "status": "STOPPED", "acted": True}


# ---- deferrable mode: the trigger does the waiting ---------------------------------------------------


def deferred_start(model: dict, **kwargs: Any) -> DeferredRun:
    options = {"poke_interval": 0.05, "timeout": 20, **kwargs}
    return DeferredRun(
        lambda: StartAutoMLServerOperator(task_id="start", model_id=model["id"], deferrable=True, **options)
    )


def test_deferred_start_stopped(mls: Mls, model: dict) -> None:
    run = deferred_start(model)
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": True}
    assert run.deferrals == 1
    assert run.checks[0] == {
        "kind": "server_status",
        "model_id": model["id"],
        "wait_while": ["STOPPED", "STARTING"],
    }
    assert run.events[0]["status"] == "success"
    assert mls.server_status(model["id"]) == "RUNNING"


def test_deferred_start_while_stopping_defers_twice(mls: Mls, model: dict) -> None:
    stopping(mls, model)
    run = deferred_start(model)
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": True}
    assert [c["wait_while"] for c in run.checks] == [["STOPPING"], ["STOPPED", "STARTING"]]
    # acted travels with the deferral's trigger: not yet while STOPPING, then true once this task started it
    carried = [(t["carry"]["model_id"], t["carry"]["acted"]) for t in run.triggers]
    assert carried == [(model["id"], False), (model["id"], True)]
    assert run.kwargs == [{}, {}]  # and only there: the deferral itself sends no kwargs
    assert [e["value"]["status"] for e in run.events] == ["STOPPED", "RUNNING"]
    assert mls.server_status(model["id"]) == "RUNNING"


@pytest.mark.parametrize(
    ("before", "acted", "deferrals"), [("STOPPED", True, 1), ("STOPPING", True, 2), ("STARTING", False, 1)]
)
def test_deferred_start_resumed_with_the_event_alone(
    mls: Mls, model: dict, before: str, acted: bool, deferrals: int
) -> None:
    """``airflow dags test`` on Airflow 3.3 resumes with the trigger's event only: the event's check still
    tells which model and whether this task acted."""
    if before == "STOPPING":
        stopping(mls, model)
    elif before == "STARTING":
        mls.call("POST", server_path(model))
    run = DeferredRun(
        lambda: StartAutoMLServerOperator(task_id="start", model_id=model["id"], deferrable=True, **FAST),
        event_only=True,
    )
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": acted}
    assert run.deferrals == deferrals


@pytest.mark.parametrize("event_only", [False, True])
def test_deferred_start_keeps_acted_and_deadline_across_two_deferrals(
    mls: Mls, model: dict, event_only: bool
) -> None:
    """This task starts the server (deferral 1, acted); someone stops it (STOPPING: deferral 2, a wait that
    is not the after-start one); then it ends FAILED. Both resumes, with the kwargs or with the event
    alone, know this task acted: the task fails, no second start; the deadline is the first one."""

    def world(deferral: int) -> None:
        mls.force_server(model["id"], "STOPPING" if deferral == 0 else "FAILED")

    run = DeferredRun(
        lambda: StartAutoMLServerOperator(task_id="start", model_id=model["id"], deferrable=True, **FAST),
        event_only=event_only,
        before_trigger=world,
    )
    with pytest.raises(AirflowFailException, match="FAILED after the start"):
        run()
    assert [c["wait_while"] for c in run.checks] == [["STOPPED", "STARTING"], ["STOPPING"]]
    assert [t["carry"]["acted"] for t in run.triggers] == [True, True]
    assert [e["carry"]["acted"] for e in run.events] == [True, True]
    deadlines = [t["deadline"] for t in run.triggers] + [e["deadline"] for e in run.events]
    assert len(set(deadlines)) == 1  # not extended by a resume
    assert run.deferrals == 2
    assert mls.server_status(model["id"]) == "FAILED"  # not started a second time


@pytest.mark.parametrize("missing", ["model_id", "acted", "deadline"])
def test_resume_without_the_facts_fails_naming_them(missing: str) -> None:
    """The event does not carry them (an event of an older trigger): no guessing."""
    carry = {"model_id": 1, "acted": True, "deadline": time.time() + 60}
    del carry[missing]
    event = {
        "status": "success",
        "message": "m",
        "value": {"model_id": 1, "status": "FAILED"},
        "carry": carry,
    }
    op = StartAutoMLServerOperator(task_id="start", model_id=1, deferrable=True, **FAST)
    with pytest.raises(AirflowFailException, match=missing):
        op.execute_complete({}, event=event)


def test_deferred_stop_resumed_with_the_event_alone(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    run = DeferredRun(
        lambda: StopAutoMLServerOperator(
            task_id="stop", model_id=model["id"], wait_for_completion=True, deferrable=True, **FAST
        ),
        event_only=True,
    )
    assert run() == {"model_id": model["id"], "status": "STOPPED", "acted": True}


def test_deferred_start_while_starting_did_not_act(mls: Mls, model: dict) -> None:
    mls.call("POST", server_path(model))  # someone else started it
    run = deferred_start(model)
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": False}
    assert run.deferrals == 1 and run.triggers[0]["carry"]["acted"] is False


def test_deferred_stop_while_stopping_did_not_act(mls: Mls, model: dict) -> None:
    stopping(mls, model)
    run = DeferredRun(
        lambda: StopAutoMLServerOperator(
            task_id="stop", model_id=model["id"], wait_for_completion=True, deferrable=True, **FAST
        )
    )
    assert run() == {"model_id": model["id"], "status": "STOPPED", "acted": False}
    assert run.deferrals == 1


@pytest.mark.parametrize("cls", [StartAutoMLServerOperator, StopAutoMLServerOperator])
def test_server_operators_have_no_reschedule_mode(cls: type) -> None:
    """Plain operators that act then wait: a reschedule would act again in a new process."""
    with pytest.raises((TypeError, AirflowException), match="mode"):
        cls(task_id="t", model_id=1, mode="reschedule")


def test_deferred_start_already_running_does_not_defer(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    run = deferred_start(model)
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": False}
    assert run.deferrals == 0


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferred_start_that_fails(mls: Mls, model: dict, soft_fail: bool) -> None:
    """The resumed task is a new instance: it must remember from the deferral that it sent the start."""
    mls.force_server(model["id"], fail_next_start=True)
    run = deferred_start(model, soft_fail=soft_fail)
    with pytest.raises(AirflowSkipException if soft_fail else AirflowFailException):
        run()
    assert run.deferrals == 1
    assert run.events[0]["value"] == {"model_id": model["id"], "status": "FAILED"}
    assert mls.server_status(model["id"]) == "FAILED"  # not started a second time


def test_deferred_start_failed_before_starts_again(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "FAILED")
    run = deferred_start(model)
    assert run() == {"model_id": model["id"], "status": "RUNNING", "acted": True}


@pytest.mark.parametrize("soft_fail", [False, True])
def test_deferred_start_stuck_times_out(mls: Mls, model: dict, soft_fail: bool) -> None:
    mls.force_server(model["id"], "STARTING")
    run = deferred_start(model, timeout=0.4, soft_fail=soft_fail)
    with pytest.raises(AirflowSkipException if soft_fail else AirflowSensorTimeout):
        run()
    assert run.deferrals == 1 and run.events[0]["status"] == "timeout"


def test_deferred_start_without_waiting_does_not_defer(mls: Mls, model: dict) -> None:
    run = deferred_start(model, wait_for_completion=False)
    assert run() == {"model_id": model["id"], "status": "STARTING", "acted": True}
    assert run.deferrals == 0


def test_deferred_stop_and_wait(mls: Mls, model: dict) -> None:
    mls.force_server(model["id"], "RUNNING")
    run = DeferredRun(
        lambda: StopAutoMLServerOperator(
            task_id="stop", model_id=model["id"], wait_for_completion=True, deferrable=True, **FAST
        )
    )
    assert run() == {"model_id": model["id"], "status": "STOPPED", "acted": True}
    assert run.deferrals == 1
    assert run.checks[0]["wait_while"] == ["STOPPING", "RUNNING", "STARTING"]
    assert mls.server_status(model["id"]) == "STOPPED"


def test_transient_error_while_waiting_is_not_soft_failed(mls: Mls, model: dict, no_retry_conn: str) -> None:
    """soft_fail skips terminal failures only; a 503 fails the try so that Airflow retries it."""
    mls.add_fault("GET", server_path(model))
    op = StartAutoMLServerOperator(
        task_id="start", mls_conn_id=no_retry_conn, model_id=model["id"], soft_fail=True, **FAST
    )
    with pytest.raises(MLSServerError):
        op.execute({})
    assert mls.server_status(model["id"]) == "STOPPED"
