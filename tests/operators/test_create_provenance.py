"""The create operators return only their own write: the issue's sequences, through the operators,
against the local server with its fault injection (and a rival writer between look-up and POST)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mls.exceptions import MLSConflictError
from airflow_provider_mls.operators.mls import CreateAutoMLModelOperator, CreateManualModelOperator

from ._support import uniq

if TYPE_CHECKING:
    import requests

    from ._support import Mls

pytestmark = pytest.mark.timeout(60)
MODELS = "/api/v1/models"


@pytest.mark.parametrize("if_exists", ["fail", "skip", "update"])
def test_a_model_from_before_the_task_is_never_returned_as_created(mls: Mls, if_exists: str) -> None:
    """churn/v-update exists with old values; the next POST would answer 503."""
    name = uniq("churn")
    old = mls.manual(name, "v-update", model_data="/old/model.joblib")
    mls.add_fault("POST", MODELS, status=503)
    op = CreateManualModelOperator(
        task_id="deploy",
        name=name,
        version="v-update",
        model_data="/new/model.joblib",
        model_meta={"gen": "new"},
        if_exists=if_exists,
    )
    if if_exists == "fail":
        with pytest.raises(AirflowFailException, match="MLSConflictError") as err:
            op.execute({})
        assert isinstance(err.value.__cause__, MLSConflictError)
        assert mls.model(old["id"]) == old
        return
    result = op.execute({})
    stored = mls.model(old["id"])
    assert result["id"] == old["id"]
    if if_exists == "skip":
        assert stored == old
    else:
        assert (stored["model_data"], stored["model_meta"]) == ("/new/model.joblib", {"gen": "new"})
    assert [m["id"] for m in mls.models(name)] == [old["id"]]


def _rival_before_the_post(op: Any, mls: Mls, name: str) -> dict[str, Any]:
    """Another writer creates (name, v1) with other values just before the task's POST, which then gets a 503."""
    rival: dict[str, Any] = {}
    session = op.hook.get_conn()
    send = session.send

    def intercepted(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if request.method == "POST" and not rival:
            rival.update(mls.manual(name, "v1", description="rival"))
            mls.add_fault("POST", MODELS, status=503)
        return send(request, **kwargs)

    session.send = intercepted  # type: ignore[method-assign]
    return rival


def test_a_rivals_model_after_an_ambiguous_create_fails_the_task(mls: Mls) -> None:
    name = uniq("rival")
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", description="mine")
    rival = _rival_before_the_post(op, mls, name)
    with pytest.raises(AirflowFailException, match="not this task's write"):
        op.execute({})
    assert mls.model(rival["id"])["description"] == "rival"


def test_a_rivals_model_after_an_ambiguous_create_is_updated_with_if_exists_update(mls: Mls) -> None:
    name = uniq("rival-upd")
    op = CreateManualModelOperator(
        task_id="t", name=name, version="v1", description="mine", if_exists="update"
    )
    rival = _rival_before_the_post(op, mls, name)
    assert op.execute({})["id"] == rival["id"]
    assert mls.model(rival["id"])["description"] == "mine"


def test_a_lost_answer_is_this_tasks_own_model(mls: Mls) -> None:
    name = uniq("lost")
    mls.add_fault("POST", MODELS, status=502, after=True)
    result = CreateManualModelOperator(task_id="t", name=name, version="v1", description="mine").execute({})
    assert [m["id"] for m in mls.models(name)] == [result["id"]]


def test_automl_create_fails_on_a_model_from_before(mls: Mls) -> None:
    old = mls.automl(uniq("am"), trained=False)
    op = CreateAutoMLModelOperator(task_id="t", name=old["name"], version="v1", dataset_id=old["dataset_id"])
    with pytest.raises(AirflowFailException, match="MLSConflictError"):
        op.execute({})


def _retry_context(try_number: int, run_start: datetime) -> dict[str, Any]:
    """What a task retry's context holds of its try and its run (Airflow 3 and 2.11 alike)."""
    return {"ti": SimpleNamespace(try_number=try_number), "dag_run": SimpleNamespace(start_date=run_start)}


def test_a_retry_takes_the_model_its_first_try_created_but_lost(mls: Mls) -> None:
    """Try 1 created the model and lost the answer on its last attempt; try 2 looks it up first."""
    name = uniq("retry")
    run_start = datetime.now(UTC) - timedelta(seconds=2)
    fields = {"model_data": "/m/model.joblib", "model_meta": {"gen": 1}}
    first = mls.manual(name, "v1", **fields)  # what try 1 stored before its answer was lost
    op = CreateManualModelOperator(task_id="t", name=name, version="v1", if_exists="fail", **fields)
    assert op.execute(_retry_context(2, run_start))["id"] == first["id"]
    with pytest.raises(AirflowFailException, match="existed before this create began"):
        op.execute(_retry_context(1, run_start))  # a first try never adopts
    other = CreateManualModelOperator(task_id="t", name=name, version="v1", model_data="/m/other.joblib")
    with pytest.raises(AirflowFailException, match="differs from this task's payload"):
        other.execute(_retry_context(2, run_start))
    later_run = datetime.fromisoformat(first["created_at"]) + timedelta(seconds=5)
    with pytest.raises(AirflowFailException, match="before this task's create began"):
        op.execute(_retry_context(2, later_run))  # a model from before this run: not the task's
    assert [m["id"] for m in mls.models(name)] == [first["id"]]
