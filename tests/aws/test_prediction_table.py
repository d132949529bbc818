"""PredictionTableHook against a real moto server over HTTP (DynamoDB)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.constants import LOADING_TAG
from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSNotFoundError,
    MLSRateLimitError,
    MLSValidationError,
)
from airflow_provider_mls.hooks._table_files import json_rows as _json_rows
from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def tables(moto_url: str, aws_env: None) -> PredictionTableHook:
    hook = PredictionTableHook(endpoint_url=moto_url)
    hook.retry_base_delay = 0.001
    return hook


@pytest.fixture
def table(tables: PredictionTableHook) -> Iterator[str]:
    name = f"preds-{uuid.uuid4().hex[:10]}"
    yield name
    tables.drop_table(name, ignore_missing=True, wait=False)


@pytest.fixture
def created(tables: PredictionTableHook, table: str) -> str:
    tables.create_table(table)
    return table


def item(tables: PredictionTableHook, table: str, **key: Any) -> dict[str, Any] | None:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    found = tables.get_conn().get_item(
        TableName=table, Key={k: TypeSerializer().serialize(v) for k, v in key.items()}
    )
    if "Item" not in found:
        return None
    return {k: TypeDeserializer().deserialize(v) for k, v in found["Item"].items()}


def tags(tables: PredictionTableHook, table: str) -> dict[str, str]:
    arn = tables.get_conn().describe_table(TableName=table)["Table"]["TableArn"]
    return {t["Key"]: t["Value"] for t in tables.get_conn().list_tags_of_resource(ResourceArn=arn)["Tags"]}


# ---- create / describe / drop ---------------------------------------------------------------------


def test_create_table_on_demand_and_active(tables: PredictionTableHook, table: str) -> None:
    result = tables.create_table(table)
    assert result == {
        "table": table,
        "arn": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}",
        "status": "ACTIVE",
        "created": True,
    }
    described = tables.describe_table(table)
    assert described is not None
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert described["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    json.dumps(described)
    assert tables.is_active(table)
    assert not tables.is_loading(table)


def test_create_table_with_a_sort_key(tables: PredictionTableHook, table: str) -> None:
    tables.create_table(table, partition_key="svc_mgmt_num", sort_key="rank", sort_key_type="N")
    described = tables.describe_table(table)
    assert described is not None
    assert described["KeySchema"] == [
        {"AttributeName": "svc_mgmt_num", "KeyType": "HASH"},
        {"AttributeName": "rank", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "rank", "AttributeType": "N"} in described["AttributeDefinitions"]


def test_an_existing_table_fails_or_is_skipped(tables: PredictionTableHook, created: str) -> None:
    with pytest.raises(MLSConflictError, match=r"^\[409\] table: .*exists"):
        tables.create_table(created)
    skipped = tables.create_table(created, if_exists="skip")
    assert skipped["created"] is False and skipped["status"] == "ACTIVE"
    with pytest.raises(MLSConflictError, match="table: .*exists with keys"):
        tables.create_table(created, partition_key="other", if_exists="skip")


@pytest.mark.parametrize(
    ("table", "kwargs", "field"),
    [
        ("ab", {}, "table"),
        ("a b c", {}, "table"),
        ("x" * 256, {}, "table"),
        (None, {}, "table"),
        ("preds", {"partition_key_type": "X"}, "partition_key_type"),
        ("preds", {"partition_key": ""}, "partition_key"),
        ("preds", {"sort_key": "user_id"}, "sort_key"),
        ("preds", {"sort_key": "rank", "sort_key_type": "BOOL"}, "sort_key_type"),
        ("preds", {"if_exists": "replace"}, "if_exists"),
    ],
)
def test_create_table_checks_its_input_before_any_request(
    table: Any, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(MLSValidationError) as info:
        PredictionTableHook(endpoint_url=UNREACHABLE).create_table(table, **kwargs)
    assert info.value.field == field


def test_drop_table(tables: PredictionTableHook, created: str) -> None:
    assert tables.drop_table(created) is True
    assert tables.describe_table(created) is None
    assert not tables.is_active(created)
    assert not tables.is_loading(created)
    assert tables.drop_table(created, ignore_missing=True) is False
    with pytest.raises(MLSNotFoundError, match="table: .*does not exist"):
        tables.drop_table(created)


def test_mark_loading(tables: PredictionTableHook, created: str) -> None:
    tables.mark_loading(created, True)
    assert tables.is_loading(created) and tags(tables, created) == {LOADING_TAG: "true"}
    tables.mark_loading(created, False)
    assert not tables.is_loading(created)
    with pytest.raises(MLSNotFoundError, match="table"):
        tables.mark_loading(f"missing-{uuid.uuid4().hex[:6]}", True)
    with pytest.raises(MLSValidationError, match="loading"):
        tables.mark_loading(created, "yes")  # type: ignore[arg-type]


def test_test_connection(tables: PredictionTableHook) -> None:
    assert tables.test_connection() == (True, "Connected to DynamoDB")


# ---- load_rows ------------------------------------------------------------------------------------


def test_load_rows_in_batches_with_duplicates_floats_and_nested_values(
    tables: PredictionTableHook, created: str
) -> None:
    rows = [
        {
            "user_id": f"u{i % 40}",
            "score": i / 3,
            "items": [{"id": i, "p": 0.5}],
            "meta": {"rank": i, "ok": True},
        }
        for i in range(70)
    ]
    assert tables.load_rows(created, rows) == 70
    assert tables.count_items(created) == 40
    assert item(tables, created, user_id="u1") == {  # u1 came twice in one batch: rows 1 and 41
        "user_id": "u1",
        "score": Decimal(repr(41 / 3)),
        "items": [{"id": Decimal(41), "p": Decimal("0.5")}],
        "meta": {"rank": Decimal(41), "ok": True},
    }
    assert item(tables, created, user_id="u29")["score"] == Decimal(repr(69 / 3))  # type: ignore[index]
    assert not tables.is_loading(created)
    assert tags(tables, created) == {}


def test_load_rows_streams_and_marks_the_table_loading_meanwhile(
    tables: PredictionTableHook, created: str, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = tables.get_conn().batch_write_item

    def batch_write_item(**kwargs: Any) -> Any:
        calls.append(len(kwargs["RequestItems"][created]))
        return real(**kwargs)

    monkeypatch.setattr(tables.get_conn(), "batch_write_item", batch_write_item)
    observer = PredictionTableHook(endpoint_url=moto_url)
    seen: list[bool] = []

    def rows() -> Iterator[dict[str, Any]]:
        for i in range(60):
            # Row i is read only after the batches before it were written: nothing is held back.
            assert len(calls) == i // 10
            if i == 30:
                seen.append(observer.is_loading(created))
            yield {"user_id": f"u{i}", "score": i}

    assert tables.load_rows(created, rows(), batch_size=10) == 60
    assert calls == [10] * 6
    assert seen == [True]
    assert not observer.is_loading(created)


def test_load_rows_with_a_numeric_sort_key(tables: PredictionTableHook, table: str) -> None:
    tables.create_table(table, sort_key="rank", sort_key_type="N")
    rows = [{"user_id": "u1", "rank": 1, "item": "a"}, {"user_id": "u1", "rank": 1.0, "item": "b"}]
    rows += [{"user_id": "u1", "rank": 2.5, "item": "c"}]
    assert tables.load_rows(table, rows) == 3
    assert tables.count_items(table) == 2
    assert item(tables, table, user_id="u1", rank=Decimal(1))["item"] == "b"  # type: ignore[index]


def test_load_rows_into_a_missing_table(tables: PredictionTableHook) -> None:
    with pytest.raises(MLSNotFoundError, match="table: .*does not exist"):
        tables.load_rows(f"missing-{uuid.uuid4().hex[:6]}", [{"user_id": "u"}])


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"user_id": "a"}, {"user_id": "b"}, {"score": 1}], "rows[2].user_id"),
        ([{"user_id": "a"}, {"user_id": None}], "rows[1].user_id"),
        ([{"user_id": "a"}, ["user_id", "b"]], "rows[1]"),
        ([{"user_id": 7}], "rows[0].user_id"),
        ([{"user_id": ""}], "rows[0].user_id"),
        ([{"user_id": "a", "score": float("nan")}], "rows[0].score"),
        ([{"user_id": "a", "deep": {"x": [1, float("inf")]}}], "rows[0].deep.x[1]"),
        ([{"user_id": "a", "when": object()}], "rows[0].when"),
        ([{"user_id": "a", "": 1}], "rows[0]"),
    ],
)
def test_a_bad_row_names_its_index_and_attribute(
    tables: PredictionTableHook, created: str, rows: list[Any], field: str
) -> None:
    with pytest.raises(MLSValidationError) as info:
        tables.load_rows(created, rows)
    assert info.value.field == field
    assert tables.count_items(created) == 0
    assert not tables.is_loading(created)  # nothing was written: never marked


@pytest.mark.parametrize(
    ("rows", "kwargs", "field"),
    [
        ({"user_id": "a"}, {}, "rows"),
        ("user_id", {}, "rows"),
        (None, {}, "rows"),
        ([], {"batch_size": 26}, "batch_size"),
        ([], {"batch_size": 0}, "batch_size"),
        ([], {"max_attempts": 0}, "max_attempts"),
    ],
)
def test_load_rows_checks_its_arguments_before_any_request(
    rows: Any, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(MLSValidationError) as info:
        PredictionTableHook(endpoint_url=UNREACHABLE).load_rows("preds", rows, **kwargs)
    assert info.value.field == field


def test_a_bad_row_after_a_written_batch_leaves_the_table_loading(
    tables: PredictionTableHook, created: str
) -> None:
    rows = [{"user_id": f"u{i}"} for i in range(30)] + [{"no_key": 1}]
    with pytest.raises(MLSValidationError, match="stays marked loading") as info:
        tables.load_rows(created, rows)
    assert info.value.field == "rows[30].user_id"
    assert "25 item(s) were written" in str(info.value)
    assert tables.is_loading(created)
    tables.load_rows(created, rows[:30])  # a successful load clears it
    assert not tables.is_loading(created)


def test_an_empty_load_clears_a_stale_loading_mark(tables: PredictionTableHook, created: str) -> None:
    tables.mark_loading(created, True)
    assert tables.load_rows(created, iter([])) == 0
    assert not tables.is_loading(created)


def test_unprocessed_items_are_sent_again(
    tables: PredictionTableHook, created: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto never leaves items unprocessed: the first BatchWriteItem is patched to write only the first
    half of the batch for real (through moto) and hand the rest back as ``UnprocessedItems``."""
    real = tables.get_conn().batch_write_item
    sent: list[int] = []

    def batch_write_item(RequestItems: dict[str, list[Any]]) -> Any:
        requests = RequestItems[created]
        sent.append(len(requests))
        if len(sent) == 1:
            real(RequestItems={created: requests[:10]})
            return {"UnprocessedItems": {created: requests[10:]}}
        return real(RequestItems=RequestItems)

    monkeypatch.setattr(tables.get_conn(), "batch_write_item", batch_write_item)
    sleeps: list[float] = []
    monkeypatch.setattr("airflow_provider_mls.hooks.prediction_table.time.sleep", sleeps.append)
    assert tables.load_rows(created, [{"user_id": f"u{i}", "n": i} for i in range(30)]) == 30
    assert sent == [25, 15, 5]
    assert len(sleeps) == 1 and 0.0005 <= sleeps[0] <= 0.001
    assert tables.count_items(created) == 30
    assert not tables.is_loading(created)


def test_backoff_grows_and_is_capped(
    tables: PredictionTableHook, created: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every BatchWriteItem is patched to leave all items unprocessed (moto never does)."""
    monkeypatch.setattr(
        tables.get_conn(),
        "batch_write_item",
        lambda RequestItems: {"UnprocessedItems": RequestItems},
    )
    sleeps: list[float] = []
    monkeypatch.setattr("airflow_provider_mls.hooks.prediction_table.time.sleep", sleeps.append)
    tables.retry_base_delay, tables.retry_max_delay = 1.0, 4.0
    with pytest.raises(MLSRateLimitError):
        tables.load_rows(created, [{"user_id": "u"}], max_attempts=6)
    ceilings = [1, 2, 4, 4, 4]
    assert len(sleeps) == 5
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_giving_up_says_how_many_stayed_unprocessed_and_leaves_the_table_loading(
    tables: PredictionTableHook, created: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second BatchWriteItem is patched to leave 3 items unprocessed on every attempt (moto never does)."""
    real = tables.get_conn().batch_write_item
    calls: list[int] = []

    def batch_write_item(RequestItems: dict[str, list[Any]]) -> Any:
        calls.append(len(RequestItems[created]))
        if len(calls) == 1:
            return real(RequestItems=RequestItems)
        return {"UnprocessedItems": {created: RequestItems[created][-3:]}}

    monkeypatch.setattr(tables.get_conn(), "batch_write_item", batch_write_item)
    with pytest.raises(MLSRateLimitError) as info:
        tables.load_rows(created, [{"user_id": f"u{i}"} for i in range(35)], max_attempts=3)
    message = str(info.value)
    assert "3 of 10 item(s) stayed unprocessed after 3 attempts" in message
    assert "25 item(s) were written" in message and "stays marked loading" in message
    assert calls == [25, 10, 3, 3]
    assert tables.is_loading(created)


# ---- load_file ------------------------------------------------------------------------------------


def test_load_csv_with_column_types(tables: PredictionTableHook, created: str, tmp_path: Path) -> None:
    path = tmp_path / "preds.csv"
    lines = ["user_id,score,ok,items,note"]
    lines += [f'u{i},{i}.5,{"true" if i % 2 else "no"},"[{{""id"": {i}}}]",hi {i}' for i in range(30)]
    lines += ["u30,,,,"]
    path.write_text("\n".join(lines) + "\n")
    count = tables.load_file(created, path, column_types={"score": "N", "ok": "BOOL", "items": "JSON"})
    assert count == 31
    assert tables.count_items(created) == 31
    assert item(tables, created, user_id="u3") == {
        "user_id": "u3",
        "score": Decimal("3.5"),
        "ok": True,
        "items": [{"id": Decimal(3)}],
        "note": "hi 3",
    }
    assert item(tables, created, user_id="u30") == {
        "user_id": "u30",
        "note": "",
    }  # typed empty cells left out


def test_load_csv_without_types_keeps_strings(
    tables: PredictionTableHook, created: str, tmp_path: Path
) -> None:
    path = tmp_path / "preds.data"
    path.write_text("\ufeffuser_id,score\nu1,0.25\n")
    assert tables.load_file(created, path, file_format="csv") == 1
    assert item(tables, created, user_id="u1") == {"user_id": "u1", "score": "0.25"}


def test_load_jsonl_and_json(tables: PredictionTableHook, created: str, tmp_path: Path) -> None:
    jsonl = tmp_path / "preds.ndjson"
    jsonl.write_text("\n".join(json.dumps({"user_id": f"l{i}", "p": i / 4}) for i in range(27)) + "\n\n")
    assert tables.load_file(created, jsonl) == 27
    listing = tmp_path / "preds.json"
    listing.write_text(
        json.dumps([{"user_id": f"j{i}", "v": [i, 0.5], "s": "a],b"} for i in range(40)], indent=2)
    )
    assert tables.load_file(created, listing) == 40
    assert tables.count_items(created) == 67
    assert item(tables, created, user_id="l2")["p"] == Decimal("0.5")  # type: ignore[index]
    assert item(tables, created, user_id="j7") == {
        "user_id": "j7",
        "v": [Decimal(7), Decimal("0.5")],
        "s": "a],b",
    }


def test_the_json_list_is_read_piece_by_piece(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    rows = [
        {"user_id": f"u{i}", "text": "x" * (i * 7), "nested": {"a": [i, {"b": "]},{"}]}} for i in range(50)
    ]
    path.write_text(" \n [\n" + ",\n ".join(json.dumps(r) for r in rows) + "\n]\n")
    assert list(_json_rows(path, chunk_size=3)) == rows
    path.write_text("[]")
    assert list(_json_rows(path, chunk_size=1)) == []


@pytest.mark.parametrize(
    ("name", "text", "kwargs", "field"),
    [
        ("p.csv", "user_id,score\nu1,1\nu2,abc\n", {"column_types": {"score": "N"}}, "rows[1].score"),
        ("p.csv", "user_id,ok\nu1,maybe\n", {"column_types": {"ok": "BOOL"}}, "rows[0].ok"),
        ("p.csv", "user_id,js\nu1,{oops\n", {"column_types": {"js": "JSON"}}, "rows[0].js"),
        ("p.csv", "user_id\nu1\n", {"column_types": {"missing": "N"}}, "column_types.missing"),
        ("p.csv", "user_id\nu1\n", {"column_types": {"user_id": "DATE"}}, "column_types.user_id"),
        ("p.csv", "user_id\nu1,extra\n", {}, "rows[0]"),
        ("p.csv", "", {}, "path"),
        ("p.csv", "user_id,user_id\nu1,u2\n", {}, "path"),
        ("p.jsonl", '{"user_id": "a"}\n{oops}\n', {}, "rows[1]"),
        ("p.jsonl", '{"user_id": "a"}\n', {"column_types": {"user_id": "S"}}, "column_types"),
        ("p.json", '{"user_id": "a"}', {}, "path"),
        ("p.json", '[{"user_id": "a"} {"user_id": "b"}]', {}, "rows[1]"),
        ("p.json", '[{"user_id": "a"}, {"user_id": ', {}, "rows[1]"),
        ("p.json", '[{"user_id": "a"}, 3]', {}, "rows[1]"),
        ("p.txt", "user_id\n", {}, "file_format"),
        ("p.csv", "user_id\n", {"file_format": "parquet"}, "file_format"),
    ],
)
def test_a_bad_file_names_the_field(
    tables: PredictionTableHook,
    created: str,
    tmp_path: Path,
    name: str,
    text: str,
    kwargs: dict[str, Any],
    field: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(MLSValidationError) as info:
        tables.load_file(created, path, **kwargs)
    assert info.value.field == field
    assert tables.count_items(created) == 0


def test_load_file_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MLSValidationError, match="not a readable file") as info:
        PredictionTableHook(endpoint_url=UNREACHABLE).load_file("preds", tmp_path / "none.csv")
    assert info.value.field == "path"
