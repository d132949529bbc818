"""The MLS sensors in poke and reschedule mode, against the shared local MLS server over HTTP."""

from __future__ import annotations

import contextlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest

from airflow_provider_mls._compat import (
    AIRFLOW_V_3_0_PLUS,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    wait_memory,
)
from airflow_provider_mls.checks import SUMMARY_FIELDS
from airflow_provider_mls.sensors.mls import (
    AutoMLTrainingDoneSensor,
    BatchPredictionReadySensor,
    OnlinePredictionReadySensor,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.sensors.conftest import Admin, Calls

    CountCalls = Callable[[Any], Calls]

FAST_WAIT = {"poke_interval": 0.01, "timeout": 60}
MISSING_ID = 987654321


def done_value(result: PokeReturnValue | bool) -> Any:
    assert isinstance(result, PokeReturnValue), result
    assert result.is_done
    return result.xcom_value


# ---- BatchPredictionReadySensor --------------------------------------------------------------------


def test_batch_by_table_waits_until_active_and_not_loading(
    admin: Admin, count_calls: CountCalls, unique: str
) -> None:
    table = f"bt_{unique}"
    sensor = BatchPredictionReadySensor(task_id="batch", table=table)
    calls = count_calls(sensor)

    assert sensor.poke({}) is False  # never set: not active, is_loading not even asked
    assert calls.calls == [("GET", f"/api/v1/dynamodb/tables/{table}/is_active")]

    admin.set_table(table, is_active=True, is_loading=True)
    calls.reset()
    assert sensor.poke({}) is False
    assert [path for _, path in calls.calls] == [
        f"/api/v1/dynamodb/tables/{table}/is_active",
        f"/api/v1/dynamodb/tables/{table}/is_loading",
    ]

    admin.set_table(table, is_active=True, is_loading=False)
    calls.reset()
    assert done_value(sensor.poke({})) == {"table": table, "model_id": None}
    assert len(calls) == 2
    assert sensor.execute({}) == {"table": table, "model_id": None}


REFERENCES = ["id", "numeric_string", "model_dict", "name_version"]


def _model_reference(model: dict[str, Any], how: str) -> dict[str, Any]:
    if how == "id":
        return {"model_id": model["id"]}
    if how == "numeric_string":
        return {"model_id": f" {model['id']} "}  # a rendered template
    if how == "model_dict":
        return {"model_id": dict(model)}  # an upstream task's XCom
    return {"name": model["name"], "version": model["version"]}


@pytest.mark.parametrize("how", REFERENCES)
def test_batch_by_model_resolves_once(admin: Admin, count_calls: CountCalls, unique: str, how: str) -> None:
    table = f"bm_{unique}"
    model = admin.manual_model(f"bm-{unique}", table=table)
    sensor = BatchPredictionReadySensor(task_id="batch", **_model_reference(model, how))
    calls = count_calls(sensor)

    lookup = 2 if how == "name_version" else 1  # by name: the list names the id, then the model
    assert sensor.poke({}) is False  # not active: model lookup + is_active
    assert len(calls) == lookup + 1
    admin.set_table(table, is_active=True, is_loading=True)
    pokes = 3
    for _ in range(pokes):
        assert sensor.poke({}) is False
    assert len(calls) == lookup + 1 + 2 * pokes  # the model is not read again
    admin.set_table(table, is_active=True, is_loading=False)
    assert done_value(sensor.poke({})) == {"table": table, "model_id": model["id"]}
    assert len(calls) == lookup + 1 + 2 * (pokes + 1)
    assert sum(1 for _, path in calls.calls if path.startswith("/api/v1/models")) == lookup


def test_batch_cost_is_one_plus_two_per_check(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    table = f"bc_{unique}"
    admin.set_table(table, is_active=True, is_loading=True)
    model = admin.manual_model(f"bc-{unique}", table=table)
    sensor = BatchPredictionReadySensor(task_id="batch", model_id=model["id"])
    calls = count_calls(sensor)
    for n in range(1, 5):
        assert sensor.poke({}) is False
        assert len(calls) == 1 + 2 * n


def test_batch_model_without_table_fails_at_once(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    model = admin.manual_model(f"nt-{unique}")
    sensor = BatchPredictionReadySensor(task_id="batch", model_id=model["id"], **FAST_WAIT)
    calls = count_calls(sensor)
    with pytest.raises(AirflowFailException, match=r"table") as err:
        sensor.execute({})
    assert "has no table" in str(err.value)
    assert "MLSValidationError" in str(err.value)
    assert len(calls) == 1  # the model lookup, then no check and no second poke

    soft = BatchPredictionReadySensor(task_id="batch", model_id=model["id"], soft_fail=True, **FAST_WAIT)
    with pytest.raises(AirflowSkipException):
        soft.execute({})


@pytest.mark.parametrize("ref", [{"model_id": MISSING_ID}, {"name": "no-such-model", "version": "v0"}])
def test_batch_unknown_model_fails(admin: Admin, count_calls: CountCalls, ref: dict[str, Any]) -> None:
    sensor = BatchPredictionReadySensor(task_id="batch", **ref, **FAST_WAIT)
    calls = count_calls(sensor)
    with pytest.raises(AirflowFailException, match="MLSNotFoundError"):
        sensor.execute({})
    assert len(calls) == 1


def test_batch_automl_model_is_not_a_batch_model(admin: Admin, unique: str) -> None:
    model = admin.create_automl_model(f"ba-{unique}")
    sensor = BatchPredictionReadySensor(task_id="batch", model_id=model["id"], **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="not a manual model"):
        sensor.execute({})


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"table": "t", "model_id": 1}, "table"),
        ({"table": "t", "name": "m", "version": "v1"}, "table"),
        ({}, "table"),
        ({"table": "  "}, "table"),
        ({"model_id": 1, "name": "m"}, "model_id"),
        ({"name": "m"}, "version"),
        ({"model_id": "twelve"}, "model_id"),
        ({"model_id": {"name": "no id"}}, "model_id"),
    ],
)
def test_batch_bad_arguments_fail_before_any_request(
    mls_conn: Any, count_calls: CountCalls, kwargs: dict[str, Any], field: str
) -> None:
    sensor = BatchPredictionReadySensor(task_id="batch", **kwargs, **FAST_WAIT)
    calls = count_calls(sensor)
    with pytest.raises(AirflowFailException, match=rf"MLSValidationError: .*{field}: "):
        sensor.execute({})
    assert len(calls) == 0


# ---- OnlinePredictionReadySensor -------------------------------------------------------------------


def test_online_by_name_version_needs_no_model(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    name = f"on-{unique}"  # no model at all: the artifact may come first
    sensor = OnlinePredictionReadySensor(task_id="online", name=name, version="v3")
    calls = count_calls(sensor)
    for n in range(1, 4):
        assert sensor.poke({}) is False
        assert len(calls) == n
    assert calls.calls[0] == ("GET", "/api/v1/model_registry/artifacts/info")
    admin.set_artifact(name, "v3", {"size": 7, "model_lib": "lightgbm"})
    value = done_value(sensor.poke({}))
    assert value == {
        "model_id": None,
        "name": name,
        "version": "v3",
        "info": {"size": 7, "model_lib": "lightgbm"},
    }
    assert len(calls) == 4


def test_online_by_model_id_reads_the_model_once(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    model = admin.manual_model(f"oi-{unique}", "v2")
    sensor = OnlinePredictionReadySensor(task_id="online", model_id=str(model["id"]))
    calls = count_calls(sensor)
    pokes = 3
    for _ in range(pokes):
        assert sensor.poke({}) is False
    assert len(calls) == 1 + pokes
    admin.set_artifact(model["name"], "v2")
    value = done_value(sensor.poke({}))
    assert (value["model_id"], value["name"], value["version"]) == (model["id"], model["name"], "v2")
    assert value["info"]["path"].endswith(f"/{model['name']}/v2/model.joblib")
    assert len(calls) == 1 + pokes + 1


def test_online_unknown_model_id_fails(admin: Admin) -> None:
    sensor = OnlinePredictionReadySensor(task_id="online", model_id=MISSING_ID, **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="MLSNotFoundError"):
        sensor.execute({})


# ---- AutoMLTrainingDoneSensor ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["id", "name_version"])
def test_automl_done_returns_the_model_summary(
    admin: Admin, count_calls: CountCalls, unique: str, how: str
) -> None:
    """The summary (as the create operators return it): a small XCom whatever the model's meta."""
    model = admin.create_automl_model(f"ad-{unique}")
    admin.finish_training(model["id"], "DONE")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", **_model_reference(model, how), **FAST_WAIT)
    calls = count_calls(sensor)
    result = sensor.execute({})
    assert isinstance(result, dict)
    assert (result["id"], result["name"], result["status"], result["model_type"]) == (
        model["id"],
        model["name"],
        "DONE",
        "automl",
    )
    assert set(result) <= set(SUMMARY_FIELDS) and "model_meta" not in result
    # (name, version) is looked up once first: the list names the id, then the model
    assert len(calls) == {"id": 1, "name_version": 3}.get(how, 2)


def test_automl_failed_fails_with_the_service_error(
    admin: Admin, count_calls: CountCalls, unique: str
) -> None:
    model = admin.create_automl_model(f"af-{unique}")
    admin.finish_training(model["id"], "FAILED", error=f"label column missing in {unique}")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], **FAST_WAIT)
    calls = count_calls(sensor)
    with pytest.raises(AirflowFailException) as err:
        sensor.execute({})
    assert f"label column missing in {unique}" in str(err.value)
    assert "FAILED" in str(err.value)
    assert len(calls) == 1

    soft = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], soft_fail=True, **FAST_WAIT)
    with pytest.raises(AirflowSkipException):
        soft.execute({})


def test_automl_unknown_status_keeps_waiting_and_says_so(
    mls_conn: Any, monkeypatch: pytest.MonkeyPatch, record_log: Any
) -> None:
    log = record_log(AutoMLTrainingDoneSensor)
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=42)
    statuses = iter(["QUEUED", "TRAINING", None, "PAUSED", "QUEUED"])
    seen: list[tuple[str, str]] = []

    def fake_run(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        seen.append((method, path))
        return {"id": 42, "model_type": "automl", "status": next(statuses)}

    monkeypatch.setattr(sensor.hook, "run", fake_run)
    results = [sensor.poke({}) for _ in range(5)]
    assert results == [False] * 5
    assert seen == [("GET", "/api/v1/models/42")] * 5
    messages = log.messages
    assert any("'QUEUED'" in m and "does not know" in m for m in messages), messages
    assert any("'PAUSED'" in m and "waiting for DONE or FAILED" in m for m in messages), messages
    assert any("is TRAINING" in m for m in messages), messages


def test_automl_sensor_on_a_manual_model_fails(admin: Admin, unique: str) -> None:
    model = admin.manual_model(f"am-{unique}")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="not automl"):
        sensor.execute({})


def test_automl_unknown_model_fails(admin: Admin) -> None:
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=MISSING_ID, **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="does not exist"):
        sensor.execute({})
    by_name = AutoMLTrainingDoneSensor(task_id="automl", name="no-such", version="v0", **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="MLSNotFoundError"):
        by_name.execute({})


def test_automl_training_ends_by_itself(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    """No forcing: the local server finishes the training after training_seconds; the sensor waits for it."""
    model = admin.create_automl_model(f"at-{unique}")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model, poke_interval=0.05, timeout=60)
    calls = count_calls(sensor)
    result = sensor.execute({})
    assert result["status"] == "DONE" and result["id"] == model["id"]
    assert len(calls) >= 1


# ---- poke mode -------------------------------------------------------------------------------------


def test_poke_mode_waits_for_the_table(admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str) -> None:
    table = f"pw_{unique}"
    sensor = BatchPredictionReadySensor(task_id="batch", table=table, **FAST_WAIT)
    real_poke = sensor.poke
    pokes: list[Any] = []

    def poke_then_make_ready(context: Any) -> Any:
        result = real_poke(context)
        pokes.append(result)
        if len(pokes) == 2:
            admin.set_table(table, is_active=True, is_loading=False)
        return result

    monkeypatch.setattr(sensor, "poke", poke_then_make_ready)
    assert sensor.execute({}) == {"table": table, "model_id": None}
    assert [p is False for p in pokes] == [True, True, False]


def test_poke_mode_sees_a_change_made_elsewhere(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    name = f"pt-{unique}"
    sensor = OnlinePredictionReadySensor(
        task_id="online", name=name, version="v1", poke_interval=0.05, timeout=60
    )
    calls = count_calls(sensor)
    timer = threading.Timer(0.3, admin.set_artifact, args=(name, "v1"))
    timer.start()
    try:
        value = sensor.execute({})
    finally:
        timer.join()
    assert value["name"] == name and value["info"] is not None
    assert len(calls) >= 1


def test_poke_mode_timeout(admin: Admin, count_calls: CountCalls, unique: str) -> None:
    table = f"to_{unique}"
    sensor = BatchPredictionReadySensor(task_id="batch", table=table, poke_interval=0.01, timeout=0.05)
    calls = count_calls(sensor)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({})
    assert len(calls) >= 1
    soft = BatchPredictionReadySensor(
        task_id="batch", table=table, poke_interval=0.01, timeout=0.05, soft_fail=True
    )
    with pytest.raises(AirflowSkipException):
        soft.execute({})


def test_poke_mode_transient_errors_are_retried_by_the_hook(
    admin: Admin, count_calls: CountCalls, unique: str
) -> None:
    table = f"tr_{unique}"
    admin.set_table(table)
    admin.add_fault("GET", f"/api/v1/dynamodb/tables/{table}/is_active", status=503, count=1)
    sensor = BatchPredictionReadySensor(task_id="batch", table=table, **FAST_WAIT)
    sensor.hook.retry_min_wait = sensor.hook.retry_max_wait = 0.001
    calls = count_calls(sensor)
    assert sensor.execute({}) == {"table": table, "model_id": None}
    # is_active answered 503 once and was retried by the hook, then is_loading: 3 requests on the wire.
    assert [path.rsplit("/", 1)[-1] for _, path in calls.calls] == ["is_active", "is_active", "is_loading"]


# ---- reschedule mode -------------------------------------------------------------------------------


class RescheduleContext:
    """A context for ``mode="reschedule"`` whose first reschedule date the test chooses.

    Airflow 3: the base sensor asks ``context["ti"].get_first_reschedule_date(context)``; a mock
    ti answers. Airflow 2.11: it queries the metadata DB (``airflow.sensors.base._orig_start_date``);
    the test session's DB has no schema (initialising it would change the AIRFLOW_HOME every test
    folder shares), so that one query is stubbed the same way. The executor-facing behaviour is
    covered by the e2e tests.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, first: datetime | None, run_id: str = "run") -> None:
        self.ti = mock.MagicMock(name="ti")
        self.queries: list[dict[str, Any]] = []
        self.ti.configure_mock(
            dag_id="dag", task_id="batch", run_id=run_id, map_index=-1, try_number=1, max_tries=0
        )
        if AIRFLOW_V_3_0_PLUS:
            self.ti.get_first_reschedule_date.side_effect = self._answer
        else:
            monkeypatch.setattr("airflow.sensors.base._orig_start_date", self._answer_db)
        self.first = first
        self.context: dict[str, Any] = {"ti": self.ti}

    def _answer(self, context: Any) -> datetime | None:
        self.queries.append({"context": context})
        return self.first

    def _answer_db(self, **kwargs: Any) -> datetime | None:
        self.queries.append(kwargs)
        return self.first


@pytest.fixture
def reschedule_context(monkeypatch: pytest.MonkeyPatch) -> Callable[..., RescheduleContext]:
    return lambda first=None, run_id="run": RescheduleContext(monkeypatch, first, run_id)


class VariableStore:
    """Airflow's Variables, in memory: what ``wait_memory`` keeps between reschedules.

    The unit-test session has neither a metadata DB schema (Airflow 2.11) nor a task supervisor
    (Airflow 3) behind ``Variable``; the real store is exercised by ``tests/e2e`` on both versions.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.values: dict[str, Any] = {}
        monkeypatch.setattr(wait_memory, "_get", lambda key: json.loads(json.dumps(self.values.get(key))))
        monkeypatch.setattr(
            wait_memory, "_set", lambda key, value, description: self.values.__setitem__(key, value)
        )
        monkeypatch.setattr(wait_memory, "_delete", lambda key: self.values.pop(key, None))


@pytest.fixture
def variables(monkeypatch: pytest.MonkeyPatch) -> VariableStore:
    return VariableStore(monkeypatch)


@pytest.mark.parametrize("sensor_cls", ["batch", "online", "automl"])
def test_reschedule_mode_costs_one_request_per_check(
    admin: Admin,
    count_calls: CountCalls,
    reschedule_context: Any,
    variables: VariableStore,
    unique: str,
    sensor_cls: str,
) -> None:
    """Each reschedule is a new task object (a new process): the model resolved by the first check of
    the try is kept, so every later check that is not ready costs one request."""
    if sensor_cls == "batch":
        table = f"rsm_{unique}"
        model = admin.manual_model(f"rsm-{unique}", table=table)
        make = lambda: BatchPredictionReadySensor(  # noqa: E731
            task_id="batch", model_id=model["id"], mode="reschedule", poke_interval=30
        )
        ready = lambda: admin.set_table(table, is_active=True, is_loading=False)  # noqa: E731
        expected = {"table": table, "model_id": model["id"]}
    elif sensor_cls == "online":
        model = admin.manual_model(f"rso-{unique}")
        make = lambda: OnlinePredictionReadySensor(  # noqa: E731
            task_id="batch", model_id=model["id"], mode="reschedule", poke_interval=30
        )
        ready = lambda: admin.set_artifact(model["name"], "v1", {"k": 1})  # noqa: E731
        expected = {"model_id": model["id"], "name": model["name"], "version": "v1"}
    else:
        model = admin.create_automl_model(f"rsa-{unique}")
        make = lambda: AutoMLTrainingDoneSensor(  # noqa: E731
            task_id="batch", name=model["name"], version=model["version"], mode="reschedule", poke_interval=30
        )
        ready = lambda: admin.finish_training(model["id"], "DONE")  # noqa: E731
        expected = {"id": model["id"], "status": "DONE"}
    run_id = f"run-{unique}"
    per_execution = []
    for _ in range(3):
        sensor = make()
        calls = count_calls(sensor)
        with pytest.raises(AirflowRescheduleException):
            sensor.execute(reschedule_context(None, run_id).context)
        per_execution.append(len(calls))
    # the first check resolves the model (by name: the list names the id, then the model), later ones don't
    assert per_execution == [3 if sensor_cls == "automl" else 2, 1, 1]
    assert len(variables.values) == 1

    ready()
    sensor = make()
    calls = count_calls(sensor)
    result = sensor.execute(reschedule_context(None, run_id).context)
    assert {k: result[k] for k in expected} == expected
    assert sum(1 for _, path in calls.calls if path.startswith("/api/v1/models?")) == 0
    assert variables.values == {}  # the try ended: forgotten

    # Another try (here: another run) resolves the model again.
    other = make()
    calls = count_calls(other)
    with contextlib.suppress(AirflowRescheduleException):
        other.execute(reschedule_context(None, f"{run_id}-2").context)
    assert calls.calls[0][1].startswith("/api/v1/models")


def test_reschedule_mode_reschedules_when_not_ready(
    admin: Admin, count_calls: CountCalls, reschedule_context: Any, unique: str
) -> None:
    table = f"rs_{unique}"
    sensor = BatchPredictionReadySensor(task_id="batch", table=table, mode="reschedule", poke_interval=30)
    calls = count_calls(sensor)
    ctx = reschedule_context(None)
    before = datetime.now(UTC)
    with pytest.raises(AirflowRescheduleException) as err:
        sensor.execute(ctx.context)
    after = datetime.now(UTC)
    assert before + timedelta(seconds=30) <= err.value.reschedule_date <= after + timedelta(seconds=30)
    assert len(calls) == 1  # one check, no waiting in the worker
    assert len(ctx.queries) == 1
    if not AIRFLOW_V_3_0_PLUS:
        assert ctx.queries[0]["dag_id"] == "dag" and ctx.queries[0]["try_number"] == 1

    admin.set_table(table, is_active=True, is_loading=False)
    assert sensor.execute(reschedule_context(None).context) == {"table": table, "model_id": None}


def test_reschedule_mode_times_out_from_the_first_reschedule(
    admin: Admin, reschedule_context: Any, unique: str
) -> None:
    table = f"rt_{unique}"
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    sensor = BatchPredictionReadySensor(
        task_id="batch", table=table, mode="reschedule", poke_interval=30, timeout=3600
    )
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute(reschedule_context(long_ago).context)
    soft = BatchPredictionReadySensor(
        task_id="batch", table=table, mode="reschedule", poke_interval=30, timeout=3600, soft_fail=True
    )
    with pytest.raises(AirflowSkipException):
        soft.execute(reschedule_context(long_ago).context)


def test_reschedule_mode_terminal_failure_does_not_reschedule(
    admin: Admin, reschedule_context: Any, unique: str
) -> None:
    model = admin.create_automl_model(f"rf-{unique}")
    admin.finish_training(model["id"], "FAILED", error="out of memory")
    sensor = AutoMLTrainingDoneSensor(task_id="automl", model_id=model["id"], mode="reschedule")
    with pytest.raises(AirflowFailException, match="out of memory"):
        sensor.execute(reschedule_context(None).context)


@pytest.mark.parametrize("deferrable", [False, True])
@pytest.mark.parametrize(
    "cls", [BatchPredictionReadySensor, OnlinePredictionReadySensor, AutoMLTrainingDoneSensor]
)
def test_soft_failed_sensor_on_a_missing_model_says_why(
    mls_conn: Any, record_log: Any, cls: type, deferrable: bool
) -> None:
    """Skipped, and both the skip and the log name the missing model (not only "soft_fail")."""
    log = record_log(cls)
    sensor = cls(task_id="s", model_id=MISSING_ID, soft_fail=True, deferrable=deferrable, **FAST_WAIT)
    with pytest.raises(AirflowSkipException) as err:
        sensor.execute({})
    assert str(MISSING_ID) in str(err.value)  # the reason, not only "soft_fail"
    assert any("soft_fail" in m and str(MISSING_ID) in m for m in log.messages), log.messages


def test_bad_input_fails_terminally_naming_the_field(mls_conn: Any) -> None:
    sensor = BatchPredictionReadySensor(task_id="s", model_id="twelve", **FAST_WAIT)
    with pytest.raises(AirflowFailException, match="model_id"):
        sensor.execute({})


def test_reschedule_mode_keeps_nothing_when_nothing_is_looked_up(
    admin: Admin, count_calls: CountCalls, reschedule_context: Any, variables: VariableStore, unique: str
) -> None:
    """A table by name, or a model by name and version for the artifact: nothing to remember."""
    for sensor in (
        BatchPredictionReadySensor(task_id="batch", table=f"nk_{unique}", mode="reschedule"),
        OnlinePredictionReadySensor(task_id="batch", name=f"nk-{unique}", version="v1", mode="reschedule"),
    ):
        calls = count_calls(sensor)
        with pytest.raises(AirflowRescheduleException):
            sensor.execute(reschedule_context(None, f"run-{unique}").context)
        assert len(calls) == 1
    assert variables.values == {}


def test_deferrable_reschedule_mode_leaves_no_variable(
    admin: Admin, reschedule_context: Any, variables: VariableStore, unique: str
) -> None:
    """``deferrable=True`` with ``mode="reschedule"``: the triggerer waits, the check is resolved once,
    so nothing goes into a Variable; the resume also deletes one an older version may have left."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    table = f"drs_{unique}"
    model = admin.manual_model(f"drs-{unique}", table=table)
    make = lambda: BatchPredictionReadySensor(  # noqa: E731
        task_id="batch", model_id=model["id"], mode="reschedule", deferrable=True, poke_interval=30
    )
    context = reschedule_context(None, f"run-{unique}").context
    with pytest.raises(TaskDeferred) as deferred:
        make().execute(context)
    assert variables.values == {}

    key = wait_memory.key(context)
    assert key is not None
    variables.values[key] = {"inputs": {}, "value": {}}  # as an older version left it
    admin.set_table(table, is_active=True, is_loading=False)
    value = {"table": table, "model_id": model["id"]}
    event = {"status": "success", "message": "ready", "value": value, "checks": 1}
    assert make().execute_complete(context, event=event, **(deferred.value.kwargs or {})) == value
    assert variables.values == {}


@pytest.mark.parametrize(
    "cls", [BatchPredictionReadySensor, OnlinePredictionReadySensor, AutoMLTrainingDoneSensor]
)
def test_an_id_beyond_the_largest_fails_before_any_request(
    mls_conn: Any, count_calls: CountCalls, cls: type
) -> None:
    sensor = cls(task_id="s", model_id=2**63, **FAST_WAIT)
    calls = count_calls(sensor)
    with pytest.raises(AirflowFailException, match="model_id: .*beyond the largest id"):
        sensor.execute({})
    assert calls.calls == []
