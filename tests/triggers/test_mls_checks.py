"""The sans-IO readiness checks: serialization, and their logic driven by fake calls (no server)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.checks import (
    CHECKS,
    ArtifactReadyCheck,
    Check,
    Outcome,
    Request,
    ServerStatusCheck,
    TableReadyCheck,
    TrainingDoneCheck,
    arun_check,
    check_from_dict,
    run_check,
)
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSServerError, MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Callable

EVERY_KIND = [
    TableReadyCheck(table="t_1"),
    TableReadyCheck(table="odd/name with spaces", model_id=12),
    ArtifactReadyCheck(name="m", version="v1"),
    ArtifactReadyCheck(name="m", version="v1", model_id=3),
    TrainingDoneCheck(model_id=7),
    ServerStatusCheck(model_id=8),
    ServerStatusCheck(model_id=8, wait_while=("STARTING", "STOPPING")),
]


class FakeMLS:
    """``call(request)`` answering from a list of results (an exception is raised instead)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def acall(self, request: Request) -> Any:
        await asyncio.sleep(0)
        return self(request)


def both(check: Check, make: Callable[[], FakeMLS]) -> tuple[Outcome, FakeMLS]:
    """Run the check with ``run_check`` and with ``arun_check``; both must agree."""
    sync_fake, async_fake = make(), make()
    outcome = run_check(check, sync_fake)
    async_outcome = asyncio.run(arun_check(check, async_fake.acall))
    assert async_outcome == outcome
    assert async_fake.requests == sync_fake.requests
    return outcome, sync_fake


# ---- serialization ---------------------------------------------------------------------------------


def test_every_kind_is_covered() -> None:
    assert {type(c) for c in EVERY_KIND} == set(CHECKS.values())
    assert set(CHECKS) == {"table_ready", "artifact_ready", "training_done", "server_status"}


@pytest.mark.parametrize("check", EVERY_KIND, ids=lambda c: f"{c.kind}-{c}")
def test_round_trip(check: Check) -> None:
    data = check.to_dict()
    assert data["kind"] == check.kind
    rebuilt = check_from_dict(json.loads(json.dumps(data)))  # through JSON, as a trigger's kwargs go
    assert rebuilt == check
    assert type(rebuilt) is type(check)
    assert rebuilt.to_dict() == data
    assert hash(rebuilt) == hash(check)  # frozen, also with wait_while back as a tuple


def test_server_status_wait_while_is_a_list_in_json() -> None:
    data = ServerStatusCheck(model_id=1, wait_while=("STARTING",)).to_dict()
    assert data == {"kind": "server_status", "model_id": 1, "wait_while": ["STARTING"]}
    assert check_from_dict(data).wait_while == ("STARTING",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "nope", "table": "t"},
        {"table": "t"},
        {"kind": None},
        {"kind": "TABLE_READY", "table": "t"},
        None,
        "table_ready",
        ["table_ready"],
    ],
    ids=["unknown-kind", "no-kind", "none-kind", "case", "none", "string", "list"],
)
def test_bad_kind_names_check(data: Any) -> None:
    with pytest.raises(MLSValidationError) as err:
        check_from_dict(data)
    assert err.value.field == "check"
    assert "check: unknown check" in str(err.value)
    assert "table_ready" in str(err.value)  # says what is expected


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "table_ready"},
        {"kind": "table_ready", "table": "t", "colour": "red"},
        {"kind": "training_done"},
        {"kind": "artifact_ready", "name": "m"},
    ],
)
def test_bad_fields_name_check(data: dict[str, Any]) -> None:
    with pytest.raises(MLSValidationError) as err:
        check_from_dict(data)
    assert err.value.field == "check"
    assert f"bad {data['kind']} check" in str(err.value)


# ---- TableReadyCheck ------------------------------------------------------------------------------


def test_table_not_active_costs_one_request() -> None:
    outcome, fake = both(TableReadyCheck(table="a/b c"), lambda: FakeMLS({"is_active": False}))
    assert outcome.state == "waiting" and not outcome.done and not outcome.failed
    assert "not active" in outcome.message
    assert fake.requests == [Request("GET", "/api/v1/dynamodb/tables/a%2Fb%20c/is_active")]


def test_table_loading_waits() -> None:
    outcome, fake = both(
        TableReadyCheck(table="t"), lambda: FakeMLS({"is_active": True}, {"is_loading": True})
    )
    assert outcome.state == "waiting" and "loading" in outcome.message
    assert [r.path for r in fake.requests] == [
        "/api/v1/dynamodb/tables/t/is_active",
        "/api/v1/dynamodb/tables/t/is_loading",
    ]


def test_table_ready() -> None:
    outcome, _ = both(
        TableReadyCheck(table="t", model_id=4), lambda: FakeMLS({"is_active": True}, {"is_loading": False})
    )
    assert outcome.done and outcome.value == {"table": "t", "model_id": 4}
    assert "of model 4" in outcome.message


@pytest.mark.parametrize("answer", [None, {}, {"is_active": None}])
def test_table_empty_answers_wait(answer: Any) -> None:
    outcome, _ = both(TableReadyCheck(table="t"), lambda: FakeMLS(answer))
    assert outcome.state == "waiting"


def test_transient_errors_propagate_out_of_the_check() -> None:
    """Only ``MLSNotFoundError`` means something to some checks; anything else is the caller's problem."""
    error = MLSServerError("down", status=503)
    with pytest.raises(MLSServerError):
        run_check(TableReadyCheck(table="t"), FakeMLS(error))
    with pytest.raises(MLSServerError):
        asyncio.run(arun_check(TableReadyCheck(table="t"), FakeMLS(error).acall))
    with pytest.raises(MLSNotFoundError):  # a table check has no use for a 404 either
        run_check(TableReadyCheck(table="t"), FakeMLS(MLSNotFoundError("gone", code=404)))


# ---- ArtifactReadyCheck ---------------------------------------------------------------------------


def test_artifact_missing_then_present() -> None:
    check = ArtifactReadyCheck(name="m", version="v2", model_id=5)
    outcome, fake = both(check, lambda: FakeMLS({"info": None}))
    assert outcome.state == "waiting" and "does not exist" in outcome.message
    assert fake.requests == [
        Request("GET", "/api/v1/model_registry/artifacts/info", {"model_name": "m", "model_version": "v2"})
    ]
    outcome, _ = both(check, lambda: FakeMLS({"info": {"size": 1}}))
    assert outcome.done
    assert outcome.value == {"model_id": 5, "name": "m", "version": "v2", "info": {"size": 1}}


@pytest.mark.parametrize("info", [{}, "", [], 0, False])
def test_artifact_empty_info_waits(info: Any) -> None:
    # sktmls's is_online_prediction_ready is ``bool(info)``: an empty info is not ready
    outcome, _ = both(ArtifactReadyCheck(name="m", version="v"), lambda: FakeMLS({"info": info}))
    assert outcome.state == "waiting" and "does not exist" in outcome.message


@pytest.mark.parametrize("info", ["s3://bucket/model.joblib", ["x"], 1, True])
def test_artifact_any_truthy_info_is_ready(info: Any) -> None:
    outcome, _ = both(ArtifactReadyCheck(name="m", version="v"), lambda: FakeMLS({"info": info}))
    assert outcome.done and outcome.value["info"] == info


@pytest.mark.parametrize("answer", [None, [], "info"])
def test_artifact_odd_answers_wait(answer: Any) -> None:
    outcome, _ = both(ArtifactReadyCheck(name="m", version="v"), lambda: FakeMLS(answer))
    assert outcome.state == "waiting"


# ---- TrainingDoneCheck ----------------------------------------------------------------------------


def model(status: Any, **extra: Any) -> dict[str, Any]:
    return {"id": 7, "model_type": "automl", "status": status, **extra}


def test_training_done_returns_the_model() -> None:
    done = model("DONE", name="m")
    outcome, fake = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(done))
    assert outcome.done and outcome.value == done
    assert fake.requests == [Request("GET", "/api/v1/models/7")]


def test_training_failed_carries_the_service_error() -> None:
    failed = model("FAILED", automl_model_info={"error": "label column is empty"})
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(failed))
    assert outcome.failed and "label column is empty" in outcome.message and "FAILED" in outcome.message
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(model("FAILED", automl_model_info=None)))
    assert outcome.failed and "the service gave no reason" in outcome.message


def test_training_still_training_waits() -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(model("TRAINING")))
    assert outcome.state == "waiting" and "is TRAINING" in outcome.message


@pytest.mark.parametrize("status", ["QUEUED", "UNKNOWN", None, "", "IN_USE", 3, "succeeded"])
def test_unknown_status_keeps_waiting_and_says_so(status: Any) -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(model(status)))
    assert outcome.state == "waiting"
    assert f"has status {status!r}" in outcome.message
    assert "waiting for DONE or FAILED" in outcome.message


def test_queued_is_never_success_however_often_checked() -> None:
    calls: list[Request] = []

    def call(request: Request) -> dict[str, Any]:
        calls.append(request)
        return model("QUEUED")

    outcomes = [run_check(TrainingDoneCheck(model_id=7), call) for _ in range(20)]
    assert {o.state for o in outcomes} == {"waiting"}
    assert "'QUEUED', which this provider does not know" in outcomes[0].message
    assert len(calls) == 20


def test_training_missing_model_fails() -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(MLSNotFoundError("no", code=404)))
    assert outcome.failed and "does not exist" in outcome.message


def test_training_of_a_manual_model_fails() -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(model("DONE", model_type="manual")))
    assert outcome.failed and "not automl" in outcome.message


def test_training_no_model_object_waits() -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS(None))
    assert outcome.state == "waiting"


def test_training_model_without_type_is_accepted() -> None:
    outcome, _ = both(TrainingDoneCheck(model_id=7), lambda: FakeMLS({"id": 7, "status": "DONE"}))
    assert outcome.done


# ---- ServerStatusCheck ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "value"),
    [
        ("STARTING", "waiting", None),
        ("RUNNING", "done", "RUNNING"),
        ("FAILED", "done", "FAILED"),
        ("STOPPED", "done", "STOPPED"),
        ("EXPLODED", "done", "UNKNOWN"),
    ],
)
def test_server_status(status: str, state: str, value: str | None) -> None:
    outcome, fake = both(ServerStatusCheck(model_id=8), lambda: FakeMLS({"status": status}))
    assert outcome.state == state
    if value is not None:
        assert outcome.value == {"model_id": 8, "status": value}
    assert fake.requests == [Request("GET", "/api/v1/models/8/automl_model_server")]


def test_server_status_custom_wait_while() -> None:
    check = ServerStatusCheck(model_id=8, wait_while=("STOPPING",))
    assert both(check, lambda: FakeMLS({"status": "STOPPING"}))[0].state == "waiting"
    assert both(check, lambda: FakeMLS({"status": "STARTING"}))[0].done


def test_server_status_missing_model_fails() -> None:
    outcome, _ = both(ServerStatusCheck(model_id=8), lambda: FakeMLS(MLSNotFoundError("no", code=404)))
    assert outcome.failed and "does not exist" in outcome.message
