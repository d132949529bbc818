from __future__ import annotations

import airflow
import pytest

from airflow_provider_mls import _compat


def test_compat_resolves_to_the_running_airflow() -> None:
    major = int(airflow.__version__.split(".")[0])
    assert _compat.AIRFLOW_V_3_0_PLUS is (major >= 3)
    expected = "airflow.sdk" if major >= 3 else "airflow.hooks.base"
    assert _compat.BaseHook.__module__.startswith(expected)


def test_reschedule_exception_is_the_one_the_sensors_raise() -> None:
    import inspect

    import airflow_provider_mls._compat as compat

    sensor_module = inspect.getmodule(compat.BaseSensorOperator)
    assert sensor_module.AirflowRescheduleException is compat.AirflowRescheduleException
    # no private Airflow import is left in the compat module
    assert "_orig_start_date" not in inspect.getsource(compat)


class _Ti:
    def __init__(self, run_id: str = "r", try_number: int = 1) -> None:
        self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number = (
            "d",
            "t",
            run_id,
            -1,
            try_number,
        )


def test_wait_memory_is_per_try_and_per_input(monkeypatch: pytest.MonkeyPatch) -> None:
    store: dict[str, object] = {}
    memory = _compat.WaitMemory()
    monkeypatch.setattr(memory, "_get", lambda key: store.get(key))
    monkeypatch.setattr(memory, "_set", lambda key, value, description: store.__setitem__(key, value))
    monkeypatch.setattr(memory, "_delete", lambda key: store.pop(key, None))
    ctx = {"ti": _Ti()}
    check = {"kind": "artifact_ready", "name": "n", "version": "v"}
    memory.remember(ctx, {"model_id": 12}, check)
    assert memory.recall({"ti": _Ti()}, {"model_id": 12}) == check
    assert memory.recall({"ti": _Ti()}, {"model_id": 13}) is None  # other inputs: resolve again
    assert memory.recall({"ti": _Ti(try_number=2)}, {"model_id": 12}) is None  # another try
    assert memory.recall({}, {"model_id": 12}) is None  # no task instance: nothing kept
    memory.forget(ctx)
    assert store == {}


def test_wait_memory_never_fails_the_task() -> None:
    """Without a metadata DB (2.11) or a task supervisor (3.x), Variables fail: the sensor resolves again."""
    memory = _compat.WaitMemory()
    ctx = {"ti": _Ti(run_id="no-store")}
    memory.remember(ctx, {"a": 1}, {"kind": "x"})
    assert memory.recall(ctx, {"a": 1}) is None
    memory.forget(ctx)


class _FailingStore:
    """A task state store whose every call fails (the execution API unreachable)."""

    def get(self, key: str, default: object = None) -> object:
        raise RuntimeError("execution API unreachable")

    set = delete = get


def test_wait_memory_uses_the_task_state_store_when_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3.3+: the key ``mls_wait`` of the task instance's store, tagged with the try; no Variable."""
    from tests.operators.test_durable_tasks import TaskStore

    memory = _compat.WaitMemory()
    for name in ("_get", "_set", "_delete"):
        monkeypatch.setattr(memory, name, lambda *a, **k: pytest.fail("an Airflow Variable was used"))
    store = TaskStore()
    ctx = {"ti": _Ti(), "task_state_store": store}
    check = {"kind": "artifact_ready", "name": "n", "version": "v"}
    memory.remember(ctx, {"model_id": 12}, check)
    assert store.get("mls_wait") == {"try_number": 1, "inputs": {"model_id": 12}, "value": check}
    assert memory.recall({"ti": _Ti(), "task_state_store": store}, {"model_id": 12}) == check
    assert memory.recall({"ti": _Ti(), "task_state_store": store}, {"model_id": 13}) is None
    assert memory.recall({"ti": _Ti(try_number=2), "task_state_store": store}, {"model_id": 12}) is None
    memory.forget(ctx)
    assert store.values == {}
    failing = {"ti": _Ti(), "task_state_store": _FailingStore()}
    memory.remember(failing, {"a": 1}, {"kind": "x"})  # never fails the task
    assert memory.recall(failing, {"a": 1}) is None
    memory.forget(failing)


def test_task_state_is_none_without_a_store() -> None:
    assert _compat.task_state({}) is None
    assert _compat.task_state({"task_state_store": None}) is None
    assert _compat.task_state({"task_state_store": object()}) is None  # not a store
    assert _compat.task_state(None) is None
