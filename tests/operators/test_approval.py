"""The approval tasks' own logic with the MLS hook replaced: the body, the decision, the re-ask, the timeout.

Airflow's HITL plumbing (``upsert_hitl_detail``, which talks to the task supervisor) is replaced by a
recorder; what the reviewer sees and what is written back are checked exactly. The real round trip
(a scheduler, the REST API, the local MLS server, SageMaker) is ``tests/e2e/test_approval_e2e.py``.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.operators import _approval, approval

from ._support import Mls, record_requests, uniq, writes

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.timeout(60)
needs_hitl = pytest.mark.skipif(not approval.HITL_AVAILABLE, reason="human-in-the-loop needs Airflow 3.1+")

MODEL = {
    "id": 12,
    "model_type": "manual",
    "name": "churn",
    "version": "v2",
    "model_lib": "sklearn",
    "model_data": "/models/churn/v2/model.joblib",
    "creator": "ana",
    "created_at": "2026-12-01T10:00:00Z",
    "description": "retrained on November",
    "features": ["age", "tenure", "calls"],
    "model_meta": {"performance": {"auc": 0.91, "logloss": 0.3, "by_segment": {"new": 0.8}}},
}
SERVING = {
    "id": 9,
    "model_type": "manual",
    "name": "churn",
    "version": "v1",
    "model_lib": "xgboost",
    "model_data": "/models/churn/v1/model.joblib",
    "creator": "bo",
    "created_at": "2026-06-01T10:00:00Z",
    "features": "age,tenure,region",
    "model_meta": {"performance": {"auc": 0.88, "logloss": 0.35, "recall": 0.7}},
}


class FakeHook:
    """The MLS hook's calls the approval task makes, answered from dicts; writes recorded."""

    def __init__(self) -> None:
        self.models = {12: dict(MODEL), 9: dict(SERVING)}
        self.writes: list[tuple[Any, dict[str, Any], bool]] = []
        self.requests: list[tuple[str, str, Any]] = []

    def get_manual_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> Any:
        if id is not None:
            return self.models[id]
        return next(m for m in self.models.values() if (m["name"], m["version"]) == (name, version))

    def get_model(self, id: int) -> Any:
        return self.models[id]

    def run(self, method: str, path: str, params: Any = None, **_: Any) -> Any:
        self.requests.append((method, path, params))
        if path == "/api/v1/experiments":
            return [{"id": 3, "name": "churn-ab"}, {"id": 4, "name": "churn-ab-old"}]
        if path == "/api/v1/experiments/3/buckets":
            return [{"id": 7, "name": "main", "prediction": {"request": {"type": "online"}, "ml_model": 9}}]
        raise AssertionError(path)

    def update_manual_model_meta(self, model: Any, meta: dict[str, Any], partial_update: bool = False) -> Any:
        self.writes.append((model, meta, partial_update))
        self.models[model]["model_meta"] = {**self.models[model]["model_meta"], **meta}
        return self.models[model]


class FakeTI:
    def __init__(self, try_number: int = 1) -> None:
        self.id = uuid.uuid4()
        self.dag_id, self.run_id, self.task_id, self.map_index = "deploy", "manual__1", "approve", -1
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def context(op: Any, try_number: int = 1, store: Any = None) -> dict[str, Any]:
    """The task's context; ``store``: Airflow 3.3's task state store of this task instance."""
    ti = FakeTI(try_number)
    ctx = {"ti": ti, "task_instance": ti, "task": op}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


@pytest.fixture
def mls_conn(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"env": "stg", "console_url": "https://mls.example/models/{model_id}"}
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", json.dumps({"conn_type": "mls", "extra": extra}))


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``upsert_hitl_detail`` would write (the question in Airflow's DB), recorded instead.

    Replaced where ``HITLOperator.execute`` calls it: every question, the first and any asked again,
    goes through Airflow's own operator."""
    calls: list[dict[str, Any]] = []
    import airflow.providers.standard.operators.hitl as hitl

    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kw: calls.append(kw))
    return calls


def notifier() -> Any:
    """An Airflow notifier that counts the times it was called (upstream's execute calls it per question)."""
    from airflow.sdk import BaseNotifier

    class Counting(BaseNotifier):
        template_fields = ()

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def notify(self, context: Any) -> None:
            self.calls += 1

    return Counting()


def operator(**kwargs: Any) -> Any:
    """The task in a DAG, with one downstream task (``move_buckets``) that a rejection skips."""
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("deploy", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = approval.MLSModelApprovalOperator(task_id="approve", **{"model_id": 12, **kwargs})
        op >> EmptyOperator(task_id="move_buckets")
    op.hook = FakeHook()
    return op


def event(option: str, comment: str = "", user: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"comment": comment},
        "responded_at": datetime(2026, 12, 6, 13, 0, tzinfo=UTC),
        "responded_by_user": user if user is not None else {"id": "alice", "name": "Alice"},
        **extra,
    }


# ---- availability ------------------------------------------------------------------------------------


@pytest.mark.skipif(approval.HITL_AVAILABLE, reason="the tasks exist on this Airflow")
def test_before_airflow_3_1_importing_a_task_says_which_airflow_it_needs() -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    assert approval.__all__ == []
    with pytest.raises(AirflowException, match=r"MLSModelApprovalOperator needs Airflow 3\.1 or later"):
        from airflow_provider_mls.operators.approval import MLSModelApprovalOperator  # noqa: F401


# ---- the body ------------------------------------------------------------------------------------------


def test_metrics_table_and_feature_diff() -> None:
    rows = _approval.metrics_table({"auc": 0.91, "note": "x"}, {"auc": 0.88, "recall": 0.7})
    assert rows[2:] == [
        "| auc | 0.91 | 0.88 | +0.03 |",
        "| note | x | - | - |",
        "| recall | - | 0.7 | - |",
    ]
    assert _approval.metrics_table({}, None) == ["No metrics recorded for either version."]
    assert _approval.feature_diff(["a", "b"], "a,c") == "Added `b`; removed `c` (2 now, 2 before)."
    assert _approval.feature_diff("a,b", ["b", "a"]) == "Same 2 feature(s)."
    assert _approval.flat_metrics({"auc": 1, "seg": {"new": 2}, "curve": [1, 2]}) == {"auc": 1, "seg.new": 2}


@needs_hitl
def test_the_reviewer_sees_the_proposal_next_to_the_bucket_model(
    mls_conn: None, asked: list[dict[str, Any]]
) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    op = operator(experiment="churn-ab", bucket="main", assigned_users={"id": "alice", "name": "Alice"})
    ctx = context(op)
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute(ctx)
    # The experiment and the bucket looked up by name, as sktmls does.
    assert op.hook.requests == [
        ("GET", "/api/v1/experiments", {"name": "churn-ab"}),
        ("GET", "/api/v1/experiments/3/buckets", {"name": "main"}),
    ]
    (question,) = asked
    assert question["subject"] == "Deploy churn v2?"
    assert question["options"] == ["Approve", "Reject"]
    assert question["defaults"] == ["Reject"]  # the timeout default is never an approval
    assert question["assigned_users"] == [{"id": "alice", "name": "Alice"}]
    assert question["params"]["comment"]["value"] == ""
    body = question["body"]
    assert "| | proposed | serving now (churn-ab/main) |" in body
    assert "| model | churn v2 (id 12) | churn v1 (id 9) |" in body
    assert "| model_lib | sklearn | xgboost |" in body
    assert "| creator | ana | bo |" in body
    assert "| auc | 0.91 | 0.88 | +0.03 |" in body
    assert "| by_segment.new | 0.8 | - | - |" in body
    assert "| recall | - | 0.7 | - |" in body
    assert "Added `calls`; removed `region` (3 now, 3 before)." in body
    assert "[churn v2 in the MLS console](https://mls.example/models/12)" in body
    assert "(https://mls.example/models/9)" in body
    assert "s3.console.aws.amazon.com/s3/buckets/mls-model-registry-stg?prefix=churn/v2/" in body
    assert "No response timeout" in body
    # what execute_complete needs travels with the wait
    assert parked.value.kwargs == {
        "target": {"model_id": 12, "name": "churn", "version": "v2", "serving_model_id": 9},
        "deadline": None,
        "question": {"subject": "Deploy churn v2?", "body": body},  # asked again as it is
    }
    assert ctx["ti"].xcoms["mls_link_mls_model"] == "https://mls.example/models/12"


@needs_hitl
def test_no_serving_version_and_a_deadline(mls_conn: None, asked: list[dict[str, Any]]) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    op = operator(model_id=None, name="churn", version="v2", response_timeout=timedelta(hours=4))
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute(context(op))
    body = asked[0]["body"]
    assert "| | proposed | serving now (none given) |" in body
    assert "| auc | 0.91 | - | - |" in body
    assert "No answer within 4:00:00 counts as a rejection (never an approval)." in body
    deadline = datetime.fromisoformat(parked.value.kwargs["deadline"])
    assert timedelta(hours=3, minutes=59) < deadline - datetime.now(UTC) <= timedelta(hours=4)
    assert parked.value.timeout == timedelta(hours=4)


# ---- the decision --------------------------------------------------------------------------------------

TARGET = {"model_id": 12, "name": "churn", "version": "v2", "serving_model_id": 9}
RUN = {"dag_id": "deploy", "run_id": "manual__1", "task_id": "approve"}


@needs_hitl
def test_approve_merges_the_approval_entry_and_lets_downstream_run() -> None:
    op = operator()
    result = op.execute_complete(context(op), event("Approve", "looks good"), target=dict(TARGET))
    entry = {
        "decision": "approved",
        "by": {"id": "alice", "name": "Alice"},
        "at": "2026-12-06T13:00:00+00:00",
        "comment": "looks good",
        "dag_run": RUN,
    }
    assert op.hook.writes == [(12, {"approval": entry}, True)]  # the no-lost-update merge of one key
    assert result == {**entry, **TARGET}


@needs_hitl
def test_reject_records_then_skips_downstream_and_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    op = operator()
    ctx = context(op)
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        op.execute_complete(ctx, event("Reject", "auc is worse on new customers"), target=dict(TARGET))
    assert skipped.value.tasks == ["move_buckets"]
    ((_, meta, _),) = op.hook.writes
    assert meta["approval"]["decision"] == "rejected"
    assert meta["approval"]["comment"] == "auc is worse on new customers"
    log = capsys.readouterr().out
    assert "Rejected in Airflow by Alice (id alice)" in log
    assert "downstream tasks are skipped: auc is worse on new customers" in log


@needs_hitl
def test_fail_on_reject_fails_after_recording() -> None:
    from airflow.providers.standard.exceptions import HITLRejectException

    op = operator(fail_on_reject=True)
    with pytest.raises(HITLRejectException, match="rejected: Rejected in Airflow by Alice .*: too risky"):
        op.execute_complete(context(op), event("Reject", "too risky"), target=dict(TARGET))
    assert op.hook.writes[0][1]["approval"]["decision"] == "rejected"


@needs_hitl
def test_a_rejection_without_a_comment_is_not_recorded_and_asks_again(
    mls_conn: None, asked: list[dict[str, Any]]
) -> None:
    """The same question again through ApprovalOperator.execute (notifiers included), same deadline."""
    from airflow.sdk.exceptions import TaskAwaitingInput

    told = notifier()
    op = operator(response_timeout=timedelta(hours=1), notifiers=told)
    with pytest.raises(TaskAwaitingInput) as first:
        op.execute(context(op))
    kwargs = first.value.kwargs
    assert kwargs["question"] == {"subject": "Deploy churn v2?", "body": asked[0]["body"]}
    # The answer comes to a fresh copy of the task (a new process on the worker), 30 minutes left.
    kwargs["deadline"] = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    for _ in range(2):
        resumed = operator(response_timeout=timedelta(hours=1), notifiers=told)
        with pytest.raises(TaskAwaitingInput) as parked:
            resumed.execute_complete(context(resumed), event("Reject", "  "), **kwargs)
        assert resumed.hook.writes == []
        assert parked.value.kwargs == kwargs  # the same target, question and deadline travel on
        assert timedelta(minutes=29) < parked.value.timeout <= timedelta(minutes=30)  # the same deadline
        assert resumed.response_timeout == timedelta(hours=1)
    first_question, *again = asked
    assert len(again) == 2 and told.calls == 3  # each question written afresh, the notifiers told each time
    for question in again:
        assert question["subject"] == "Deploy churn v2?"
        assert question["body"] == (
            "**Asked again: a rejection needs a comment.** The earlier Reject had none and was not recorded."
            "\n\n" + first_question["body"]
        )
        assert {k: question[k] for k in ("options", "defaults", "params")} == {
            k: first_question[k] for k in ("options", "defaults", "params")
        }


@needs_hitl
def test_a_rejection_without_a_comment_past_the_deadline_gets_the_timeout_default_at_once(
    asked: list[dict[str, Any]],
) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    op = operator(response_timeout=timedelta(hours=1))
    deadline = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    question = {"subject": "Deploy churn v2?", "body": "b"}
    with pytest.raises(TaskAwaitingInput) as parked:
        op.execute_complete(
            context(op), event("Reject", ""), target=dict(TARGET), deadline=deadline, question=question
        )
    assert parked.value.timeout == timedelta(seconds=1)
    assert asked[0]["body"].endswith("\n\nb")


@needs_hitl
def test_the_timeout_default_is_a_rejection_by_nobody() -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    op = operator(response_timeout=timedelta(minutes=5))
    ctx = context(op)
    with pytest.raises(DownstreamTasksSkipped):
        op.execute_complete(
            ctx, event("Reject", "", user={}, timedout=True) | {"responded_by_user": None}, target=TARGET
        )
    entry = op.hook.writes[0][1]["approval"]
    assert entry["decision"] == "rejected" and entry["by"] is None
    assert entry["comment"] == "no response within 0:05:00: rejected by default (on_timeout='reject')"


@needs_hitl
def test_on_timeout_fail_fails_and_writes_nothing() -> None:
    from airflow.providers.standard.exceptions import HITLTimeoutError

    op = operator(response_timeout=timedelta(minutes=5), on_timeout="fail")
    assert op.defaults is None
    with pytest.raises(HITLTimeoutError):
        op.execute_complete(context(op), {"error": "no response", "error_type": "timeout"}, target=TARGET)
    assert op.hook.writes == []


@needs_hitl
def test_a_retry_after_the_decision_was_recorded_does_not_ask_again(
    mls_conn: None, asked: list[dict[str, Any]]
) -> None:
    op = operator()
    entry = {"decision": "approved", "by": {"id": "a", "name": "A"}, "at": "t", "comment": "", "dag_run": RUN}
    op.hook.models[12]["model_meta"] = {"approval": entry}
    result = op.execute(context(op, try_number=2))
    assert asked == [] and op.hook.writes == []
    assert result == {**entry, **TARGET, "serving_model_id": None}


# ---- a write-back that fails: the decision kept in the task state store (Airflow 3.3+) ------------------


@pytest.fixture
def local_mls(mls_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Mls, str]]:
    """The shared local MLS server, raw, and a connection to it whose hook never retries (no waits)."""
    conn = json.loads(mls_server.conn_json())
    conn["extra"] = {**conn["extra"], "max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_MLS_NORETRY", json.dumps(conn))
    with Mls(mls_server) as mls, mls.isolated_faults():
        yield mls, "mls_noretry"


def real_task(mls_conn_id: str, model_id: int) -> Any:
    """The task against the local MLS server (a fresh copy per try, as a worker builds it)."""
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("deploy", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = approval.MLSModelApprovalOperator(task_id="approve", model_id=model_id, mls_conn_id=mls_conn_id)
        op >> EmptyOperator(task_id="move_buckets")
    return op


@needs_hitl
@pytest.mark.parametrize("lost", [False, True], ids=["write refused", "written, answer lost"])
@pytest.mark.parametrize("durable", [True, False], ids=["task state store", "Airflow 3.1-3.2"])
def test_a_write_back_that_fails_once_is_finished_by_the_retry_without_asking_again(
    local_mls: tuple[Mls, str], asked: list[dict[str, Any]], lost: bool, durable: bool
) -> None:
    """MLS is down during the write-back (``lost``: it went down after committing it). On Airflow 3.3 the
    retry writes the person's decision from the task state store and asks no one; a write that had
    gone through is not sent twice. Without a store (3.1, 3.2) only a write that went through is
    found (in the meta); otherwise the person is asked again."""
    from airflow.sdk.exceptions import TaskAwaitingInput

    from airflow_provider_mls.exceptions import MLSError
    from tests.operators.test_durable_tasks import TaskStore

    mls, no_retry_conn = local_mls
    model = mls.manual(uniq("churn"), "v2", model_meta={"performance": {"auc": 0.9}})
    target = {"model_id": model["id"], "name": model["name"], "version": "v2", "serving_model_id": None}
    store = TaskStore() if durable else None
    first = real_task(no_retry_conn, model["id"])
    path = f"/api/v1/models/{model['id']}"
    if lost:  # the update is committed, then MLS goes down before the task sees it done
        mls.add_fault("PUT", path, status=503, after=True)
        session = first.hook.get_conn()
        send = session.send

        def send_then_go_down(request: Any, **kwargs: Any) -> Any:
            response = send(request, **kwargs)
            if request.method == "PUT":
                mls.add_fault("*", path, status=503, count=100)
            return response

        session.send = send_then_go_down
    else:
        mls.add_fault("*", path, status=503, count=100)
    with pytest.raises(MLSError):
        first.execute_complete(context(first, 1, store), event("Approve", "ship it"), target=target)
    mls.clear_faults()  # MLS is back
    entry = {
        "decision": "approved",
        "by": {"id": "alice", "name": "Alice"},
        "at": "2026-12-06T13:00:00+00:00",
        "comment": "ship it",
        "dag_run": RUN,
    }
    assert (mls.model(model["id"])["model_meta"].get("approval") == entry) is lost
    if store is not None:
        assert store.get("mls_approval") == {"target": target, "entry": entry}

    retry = real_task(no_retry_conn, model["id"])
    calls = record_requests(retry)
    if not durable and not lost:  # Airflow 3.1, 3.2: the decision is gone with the failed try
        with pytest.raises(TaskAwaitingInput):
            retry.execute(context(retry, 2, store))
        assert len(asked) == 1 and writes(calls) == []
        assert "approval" not in mls.model(model["id"])["model_meta"]
        return
    result = retry.execute(context(retry, 2, store))
    assert asked == []  # nobody asked again
    assert mls.model(model["id"])["model_meta"] == {"performance": {"auc": 0.9}, "approval": entry}
    assert len(writes(calls)) == (0 if lost else 1)  # a write that went through is not sent twice
    assert result == {**entry, **target}
    if store is not None:
        assert store.get("mls_approval") is None  # written: nothing left to finish


@needs_hitl
def test_a_rejection_whose_write_back_failed_is_written_by_the_retry_which_skips_downstream(
    asked: list[dict[str, Any]],
) -> None:
    from airflow.sdk.exceptions import DownstreamTasksSkipped

    from airflow_provider_mls.exceptions import MLSServerError
    from tests.operators.test_durable_tasks import TaskStore

    store = TaskStore()
    op = operator()
    update = op.hook.update_manual_model_meta

    def down(*args: Any, **kwargs: Any) -> Any:
        raise MLSServerError("MLS is down", code=503)

    op.hook.update_manual_model_meta = down
    with pytest.raises(MLSServerError):
        op.execute_complete(context(op, 1, store), event("Reject", "worse on prepaid"), target=TARGET)
    op.hook.update_manual_model_meta = update
    retry = operator()
    retry.hook = op.hook
    with pytest.raises(DownstreamTasksSkipped) as skipped:
        retry.execute(context(retry, 2, store))
    assert skipped.value.tasks == ["move_buckets"] and asked == []
    ((model_id, meta, _),) = op.hook.writes
    assert (model_id, meta["approval"]["decision"], meta["approval"]["comment"]) == (
        12,
        "rejected",
        "worse on prepaid",
    )
    assert store.values == {}


@needs_hitl
def test_a_write_back_that_can_never_succeed_fails_and_keeps_nothing_to_finish() -> None:
    """A terminal error (the model deleted meanwhile) fails the task; a cleared task asks afresh."""
    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_mls.exceptions import MLSNotFoundError
    from tests.operators.test_durable_tasks import TaskStore

    store = TaskStore()
    op = operator()

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise MLSNotFoundError("model 12 not found", code=404)

    op.hook.update_manual_model_meta = gone
    with pytest.raises(AirflowFailException, match="model 12 not found"):
        op.execute_complete(context(op, 1, store), event("Approve", "ok"), target=TARGET)
    assert [key for key, _ in store.writes] == ["mls_approval"] and store.values == {}


@needs_hitl
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"on_timeout": "approve"}, "on_timeout"),
        ({"assigned_users": ["alice"]}, "assigned_users"),
        ({"response_timeout": 60}, "response_timeout"),
        ({"options": ["Yes"]}, "options"),
        ({"defaults": ["Approve"]}, "defaults"),
        ({"body": "approve?"}, "body"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(MLSValidationError, match=f"^{field}: "):
        approval.MLSModelApprovalOperator(task_id="approve", model_id=1, **kwargs)


@needs_hitl
def test_bad_model_references_fail_naming_the_field(mls_conn: None, asked: list[dict[str, Any]]) -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    op = operator(model_id=None)
    with pytest.raises(AirflowFailException, match="model_id"):
        op.execute(context(op))
    op = operator(serving_model_id=9, experiment="churn-ab", bucket="main")
    with pytest.raises(AirflowFailException, match="serving_model_id: give serving_model_id, or experiment"):
        op.execute(context(op))
    op = operator(experiment="churn-ab")
    with pytest.raises(AirflowFailException, match="bucket: give experiment and bucket"):
        op.execute(context(op))
    assert asked == []


@needs_hitl
def test_it_is_an_airflow_approval_operator_in_a_dag() -> None:
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    with DAG("d", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        op = approval.MLSModelApprovalOperator(
            task_id="approve", model_id="{{ ti.xcom_pull('deploy')['id'] }}"
        )
    assert isinstance(op, ApprovalOperator)
    assert op.options == ["Approve", "Reject"]
    assert "model_id" in op.template_fields
