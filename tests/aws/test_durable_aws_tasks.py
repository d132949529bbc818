"""A table load and a registry upload killed mid-way, retried with Airflow 3.3's task state store (moto over HTTP).

The store is the interface of ``context["task_state_store"]`` kept in memory (``TaskStore`` of the operator
tests); a try "dies" where a worker would: between two batches of a load, between the two files of an
upload (nothing cleans up after a dead worker), or after the upload, before the task could report it.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls._compat import AirflowFailException
from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook
from airflow_provider_mls.hooks.prediction_table import PredictionTableHook
from airflow_provider_mls.operators import prediction_table
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator
from tests.operators.test_durable_tasks import TaskStore, context

if TYPE_CHECKING:
    from collections.abc import Iterator

UPLOAD_ARGS: dict[str, Any] = {"model_lib": "sklearn", "model_lib_version": "1.5.2", "features": "age,tenure"}


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs (not even ``except Exception``)."""


@pytest.fixture
def table(moto_url: str, aws_env: None) -> Iterator[str]:
    name = f"durable-{uuid.uuid4().hex[:10]}"
    tables = PredictionTableHook(endpoint_url=moto_url)
    tables.create_table(name)
    yield name
    tables.drop_table(name, ignore_missing=True, wait=False)


def test_a_retried_load_resumes_after_the_rows_committed(
    moto_url: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_table, "PROGRESS_SAVE_SECONDS", 0.0)  # a record after every batch
    store = TaskStore()
    rows = [{"user_id": f"u{i}", "score": i} for i in range(100)]
    batches: list[int] = []
    write = PredictionTableHook._write_batch

    def dies_after_two(self: Any, name: str, items: list[dict[str, Any]], max_attempts: int) -> int:
        if len(batches) == 2:
            raise WorkerDied
        batches.append(len(items))
        return write(self, name, items, max_attempts)

    monkeypatch.setattr(PredictionTableHook, "_write_batch", dies_after_two)
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    with pytest.raises(WorkerDied):
        op.execute(context(store, 1))
    tables = PredictionTableHook(endpoint_url=moto_url)
    assert tables.is_loading(table) and tables.count_items(table) == 50
    assert store.get("mls_load")["committed"] == 50

    batches.clear()
    monkeypatch.setattr(
        PredictionTableHook, "_write_batch", lambda self, *a: (batches.append(len(a[1])), write(self, *a))[1]
    )
    retry = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    assert retry.execute(context(store, 2)) == {"table": table, "rows": 100}
    assert batches == [25, 25]  # only the rows the dead try had not committed
    assert tables.count_items(table) == 100 and not tables.is_loading(table)
    assert store.get("mls_load")["done"] is True

    batches.clear()  # run again (the task cleared): a finished load is loaded whole
    LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url).execute(
        context(store, 3)
    )
    assert batches == [25, 25, 25, 25]


class CountingStore(TaskStore):
    """Counts the writes; ``broken``: every write fails (the api-server down)."""

    def __init__(self, broken: bool = False) -> None:
        super().__init__()
        self.broken, self.sets = broken, 0

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.sets += 1
        if self.broken:
            raise ConnectionError("the task state store is down")
        super().set(key, value, retention=retention)


def test_a_load_records_its_progress_every_few_seconds_not_every_batch(
    moto_url: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CountingStore()
    rows = [{"user_id": f"u{i}"} for i in range(250)]  # 10 batches
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    assert op.execute(context(store, 1))["rows"] == 250
    assert store.sets == 2  # the first batch, then the end (the load is quicker than PROGRESS_SAVE_SECONDS)
    assert store.get("mls_load")["done"] is True

    clock = iter(range(0, 10_000, 3))  # 3 s per reading: a record every other batch
    monkeypatch.setattr(prediction_table, "_monotonic", lambda: float(next(clock)))
    store = CountingStore()
    LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url).execute(
        context(store, 1)
    )
    assert [v["committed"] for _, v in store.writes] == [25, 75, 125, 175, 225, 250]


def test_a_load_failing_mid_way_records_what_it_committed(
    moto_url: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CountingStore()
    write = PredictionTableHook._write_batch
    done: list[int] = []

    def fails_after_three(self: Any, name: str, items: list[dict[str, Any]], max_attempts: int) -> int:
        if len(done) == 3:
            raise RuntimeError("DynamoDB said no")
        done.append(len(items))
        return write(self, name, items, max_attempts)

    monkeypatch.setattr(PredictionTableHook, "_write_batch", fails_after_three)
    rows = [{"user_id": f"u{i}"} for i in range(250)]
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    with pytest.raises(RuntimeError):
        op.execute(context(store, 1))
    assert store.get("mls_load")["committed"] == 75 and store.sets == 2


def test_a_store_that_cannot_be_written_is_warned_about_once(
    moto_url: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prediction_table, "PROGRESS_SAVE_SECONDS", 0.0)
    store = CountingStore(broken=True)
    rows = [{"user_id": f"u{i}"} for i in range(250)]
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    warnings: list[str] = []
    monkeypatch.setattr(op.log, "warning", lambda message, *args: warnings.append(message % args))
    assert op.execute(context(store, 1))["rows"] == 250  # the load goes on
    assert store.sets == 11  # each batch tried (the interval is 0 here), then the end
    assert len([w for w in warnings if "task state store" in w]) == 1


def test_a_retried_load_of_other_rows_starts_over(moto_url: str, table: str) -> None:
    store = TaskStore()
    store.set("mls_load", {"inputs": "another load", "committed": 75})
    rows = [{"user_id": f"u{i}"} for i in range(30)]
    op = LoadPredictionTableOperator(task_id="load", table=table, rows=rows, endpoint_url=moto_url)
    assert op.execute(context(store, 2))["rows"] == 30
    assert PredictionTableHook(endpoint_url=moto_url).count_items(table) == 30


@pytest.fixture
def bucket(moto_url: str, aws_env: None) -> str:
    import boto3

    name = f"durable-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def upload(moto_url: str, bucket: str, name: str) -> UploadModelToRegistryOperator:
    return UploadModelToRegistryOperator(
        task_id="upload",
        name=name,
        version="v1",
        model_bytes=b"\x80\x04model",
        mls_conn_id=None,
        bucket=bucket,
        endpoint_url=moto_url,
        **UPLOAD_ARGS,
    )


@pytest.mark.parametrize("store", [TaskStore(), None], ids=["task state store", "Airflow < 3.3"])
def test_a_retry_after_the_upload_returns_it(moto_url: str, bucket: str, store: TaskStore | None) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    first = upload(moto_url, bucket, name).execute(context(store, 1))  # then the worker died
    if store is None:  # the retry finds "its" version and cannot tell it is its own
        with pytest.raises(AirflowFailException, match="exists"):
            upload(moto_url, bucket, name).execute(context(None, 2))
        return
    assert upload(moto_url, bucket, name).execute(context(store, 2)) == first
    registry = MLSModelRegistryHook(mls_conn_id=None, bucket=bucket, endpoint_url=moto_url)
    assert registry.list_versions(name) == ["v1"]


def test_a_retry_finishes_its_own_half_written_upload(
    moto_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TaskStore()
    name = f"m-{uuid.uuid4().hex[:8]}"

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(MLSModelRegistryHook, "_put_meta", dies)  # model.joblib written, model.json not
        patched.setattr(MLSModelRegistryHook, "_remove_written", lambda self, key: None)  # nobody cleans up
        with pytest.raises(WorkerDied):
            upload(moto_url, bucket, name).execute(context(store, 1))
    registry = MLSModelRegistryHook(mls_conn_id=None, bucket=bucket, endpoint_url=moto_url)
    assert not registry.version_exists(name, "v1")
    result = upload(moto_url, bucket, name).execute(context(store, 2))
    assert registry.version_exists(name, "v1") and registry.get_meta(name, "v1") == result["model_meta"]


def test_another_writers_version_still_fails_and_leaves_no_record(moto_url: str, bucket: str) -> None:
    name = f"m-{uuid.uuid4().hex[:8]}"
    upload(moto_url, bucket, name).execute(context(None, 1))  # somebody else's upload
    store = TaskStore()
    with pytest.raises(AirflowFailException, match="exists"):
        upload(moto_url, bucket, name).execute(context(store, 1))
    assert store.get("mls_upload") is None
    with pytest.raises(AirflowFailException, match="exists"):  # a cleared task does not take it either
        upload(moto_url, bucket, name).execute(context(store, 2))


def test_a_retry_does_not_overwrite_a_rivals_upload_made_after_its_try_began(
    moto_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Try 1 recorded that it began and died before writing anything; a rival then uploaded the same
    name and version: the retry fails on it (its files carry another writer) and leaves them as they are."""
    store = TaskStore()
    name = f"m-{uuid.uuid4().hex[:8]}"

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(MLSModelRegistryHook, "_upload_model", dies)  # nothing written
        with pytest.raises(WorkerDied):
            upload(moto_url, bucket, name).execute(context(store, 1))
    assert store.get("mls_upload")["started"] is True
    registry = MLSModelRegistryHook(mls_conn_id=None, bucket=bucket, endpoint_url=moto_url)
    rival = registry.put_version(name, "v1", b"rival", **{**UPLOAD_ARGS, "features": "rival_feature"})
    with pytest.raises(AirflowFailException, match="written by another writer"):
        upload(moto_url, bucket, name).execute(context(store, 2))
    assert registry.get_meta(name, "v1") == rival["model_meta"]
    assert store.get("mls_upload") is None


def test_a_retry_overwrites_only_its_own_files(
    moto_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = TaskStore()
    name = f"m-{uuid.uuid4().hex[:8]}"

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    with monkeypatch.context() as patched:
        patched.setattr(MLSModelRegistryHook, "_put_meta", dies)  # model.joblib written, model.json not
        patched.setattr(MLSModelRegistryHook, "_remove_written", lambda self, key: None)
        with pytest.raises(WorkerDied):
            upload(moto_url, bucket, name).execute(context(store, 1))
    registry = MLSModelRegistryHook(mls_conn_id=None, bucket=bucket, endpoint_url=moto_url)
    writer = store.get("mls_upload")["writer"]
    assert registry.writers(name, "v1") == {"model.joblib": writer}
    upload(moto_url, bucket, name).execute(context(store, 2))
    assert registry.writers(name, "v1") == {"model.joblib": writer, "model.json": writer}
