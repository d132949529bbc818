"""Batch prediction tables: the DynamoDB tables that MLS serves a manual model's batch predictions from."""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.aws.hook import AwsServiceHook, jsonable
from airflow_provider_mls.constants import LOADING_TAG
from airflow_provider_mls.exceptions import (
    MLSBadRequestError,
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSRateLimitError,
    MLSValidationError,
)
from airflow_provider_mls.hooks._table_files import csv_rows, json_rows, jsonl_rows
from airflow_provider_mls.rules import check_attribute, check_bool, check_choice, check_int
from airflow_provider_mls.rules import check_dynamodb_table as check_table

if TYPE_CHECKING:
    from collections.abc import Callable

KEY_TYPES = ("S", "N", "B")
COLUMN_TYPES = ("S", "N", "BOOL", "JSON")
IF_EXISTS = ("fail", "skip")
FILE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
MAX_BATCH = 25  # BatchWriteItem takes at most 25 requests
_LOADING_NOTE = (
    f"the table stays marked loading (tag {LOADING_TAG}=true), so MLS does not report it ready; "
    "load it again to finish"
)


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def _plain(value: Any, path: str) -> Any:
    """A value DynamoDB's serializer takes: floats as ``Decimal``, tuples as lists, nested too."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MLSValidationError(path, f"DynamoDB numbers are finite, got {value!r}")
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise MLSValidationError(path, f"map keys are strings, got {k!r}")
        return {k: _plain(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        return {_plain(v, path) for v in value}
    return value


def _key_part(value: Any, key_type: str, path: str) -> tuple[str, Any]:
    """A key attribute's value, checked against its type; the form used to spot duplicate keys."""
    if key_type == "S" and isinstance(value, str) and value:
        return ("S", value)
    if key_type == "N" and isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if number.is_finite():
            return ("N", number.normalize())  # 1, 1.0 and 1.00 are one key
    if key_type == "B" and isinstance(value, bytes | bytearray) and value:
        return ("B", bytes(value))
    what = {"S": "a non-empty string", "N": "a number", "B": "non-empty bytes"}[key_type]
    raise MLSValidationError(path, f"key attribute of type {key_type}: expected {what}, got {value!r}")


class PredictionTableHook(AwsServiceHook):
    """DynamoDB tables of batch predictions, and MLS's "loading" mark on them.

    While rows go in, a table carries the tag ``mls:loading=true``; MLS's ``is_loading`` answers
    from it, so a half-loaded table is never reported ready. ``load_rows`` sets the tag before
    its first write and removes it only when every row is in.

    Input is checked before any request; a bad value raises ``MLSValidationError`` naming it.

    :param aws_conn_id: the AWS connection (through the amazon provider when it is installed; None,
        or no amazon provider, means boto3's default credential chain).
    :param region_name: the AWS region; default: the connection's, else boto3's.
    :param endpoint_url: another DynamoDB endpoint (a VPC endpoint, a test server).
    """

    hook_name = "MLS Batch Prediction Tables (DynamoDB)"
    service = "dynamodb"

    # Waits between retries of unprocessed items: base * 2**(attempt - 1), capped, half of it random.
    retry_base_delay = 0.1
    retry_max_delay = 10.0
    # The table_exists / table_not_exists waiters.
    waiter_delay = 5
    waiter_max_attempts = 120

    def test_connection(self) -> tuple[bool, str]:
        """One cheap call (a page of one table name)."""
        try:
            self.get_conn().list_tables(Limit=1)
        except Exception as exc:
            return False, f"DynamoDB connection failed: {exc}"
        return True, "Connected to DynamoDB"

    # ---- tables -----------------------------------------------------------------------------

    def _describe(self, table: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self.get_conn().describe_table(TableName=table)["Table"])
        except ClientError as exc:
            if _error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def _require(self, table: str) -> dict[str, Any]:
        described = self._describe(check_table(table))
        if described is None:
            raise MLSNotFoundError(f"table: DynamoDB table {table!r} does not exist", code=404)
        return described

    def describe_table(self, table: str) -> dict[str, Any] | None:
        """The table's description (JSON values), or None when it does not exist."""

        described = self._describe(check_table(table))
        return None if described is None else dict(jsonable(described))

    def is_active(self, table: str) -> bool:
        """Whether the table exists and is ACTIVE."""
        described = self._describe(check_table(table))
        return described is not None and described.get("TableStatus") == "ACTIVE"

    def _tags(self, arn: str) -> dict[str, str]:
        client, tags, params = self.get_conn(), {}, {"ResourceArn": arn}
        while True:
            page = client.list_tags_of_resource(**params)
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
            if not page.get("NextToken"):
                return tags
            params["NextToken"] = page["NextToken"]

    def is_loading(self, table: str) -> bool:
        """Whether the table carries ``mls:loading=true`` (a table that does not exist is not loading)."""
        described = self._describe(check_table(table))
        return described is not None and self._tags(described["TableArn"]).get(LOADING_TAG) == "true"

    def mark_loading(self, table: str, loading: bool) -> None:
        """Set (``True``) or remove (``False``) the table's ``mls:loading`` tag."""
        check_bool(loading, "loading")
        self._mark(self._require(table)["TableArn"], loading)

    def _mark(self, arn: str, loading: bool) -> None:
        if loading:
            self.get_conn().tag_resource(ResourceArn=arn, Tags=[{"Key": LOADING_TAG, "Value": "true"}])
        else:
            self.get_conn().untag_resource(ResourceArn=arn, TagKeys=[LOADING_TAG])

    def _summary(self, described: Mapping[str, Any], created: bool) -> dict[str, Any]:
        return {
            "table": described["TableName"],
            "arn": described["TableArn"],
            "status": described.get("TableStatus"),
            "created": created,
        }

    def _wait(self, waiter: str, table: str) -> None:
        self.get_conn().get_waiter(waiter).wait(
            TableName=table,
            WaiterConfig={"Delay": self.waiter_delay, "MaxAttempts": self.waiter_max_attempts},
        )

    def create_table(
        self,
        table: str,
        *,
        partition_key: str = "user_id",
        partition_key_type: str = "S",
        sort_key: str | None = None,
        sort_key_type: str = "S",
        if_exists: str = "fail",
        wait: bool = True,
    ) -> dict[str, Any]:
        """Create an on-demand (PAY_PER_REQUEST) table; ``{"table", "arn", "status", "created"}``.

        ``if_exists``: ``fail`` raises ``MLSConflictError`` on an existing table, ``skip`` returns
        it (``created`` False) when its keys are the ones asked for. ``wait`` waits until ACTIVE.
        """
        check_table(table)
        keys = [
            (
                check_attribute(partition_key, "partition_key"),
                "HASH",
                check_choice(partition_key_type, "partition_key_type", KEY_TYPES),
            ),
        ]
        if sort_key is not None:
            if sort_key == partition_key:
                raise MLSValidationError("sort_key", f"must differ from the partition key {partition_key!r}")
            keys.append(
                (
                    check_attribute(sort_key, "sort_key"),
                    "RANGE",
                    check_choice(sort_key_type, "sort_key_type", KEY_TYPES),
                )
            )
        check_choice(if_exists, "if_exists", IF_EXISTS)
        from botocore.exceptions import ClientError

        existing = self._describe(table)
        if existing is None:
            try:
                response = self.get_conn().create_table(
                    TableName=table,
                    BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind, _ in keys],
                    AttributeDefinitions=[{"AttributeName": name, "AttributeType": t} for name, _, t in keys],
                )
            except ClientError as exc:
                if _error_code(exc) != "ResourceInUseException":
                    raise
                existing = self._describe(table)  # created by someone else meanwhile
                if existing is None:
                    raise
            else:
                self.log.info("Created DynamoDB table %s (keys %s)", table, ", ".join(k[0] for k in keys))
                if wait:
                    self._wait("table_exists", table)
                    return self._summary(self._require(table), True)
                return self._summary(response["TableDescription"], True)

        if if_exists == "fail":
            raise MLSConflictError(f"table: DynamoDB table {table!r} exists", code=409)
        found = self._key_schema(existing)
        wanted = [(name, t) for name, _, t in keys]
        if found != wanted:
            raise MLSConflictError(
                f"table: DynamoDB table {table!r} exists with keys {found}, not {wanted}", code=409
            )
        self.log.info("DynamoDB table %s exists; if_exists=skip", table)
        if wait and existing.get("TableStatus") != "ACTIVE":
            self._wait("table_exists", table)
            existing = self._require(table)
        return self._summary(existing, False)

    @staticmethod
    def _key_schema(described: Mapping[str, Any]) -> list[tuple[str, str]]:
        """[(name, type)] of the partition key and, if any, the sort key."""
        types = {a["AttributeName"]: a["AttributeType"] for a in described.get("AttributeDefinitions", [])}
        schema = sorted(described["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        return [(k["AttributeName"], types[k["AttributeName"]]) for k in schema]

    def drop_table(self, table: str, *, ignore_missing: bool = False, wait: bool = True) -> bool:
        """Delete the table; False when it did not exist and ``ignore_missing`` (else ``MLSNotFoundError``)."""
        from botocore.exceptions import ClientError

        check_table(table)
        try:
            self.get_conn().delete_table(TableName=table)
        except ClientError as exc:
            if _error_code(exc) != "ResourceNotFoundException":
                raise
            if ignore_missing:
                self.log.info("DynamoDB table %s does not exist; nothing to drop", table)
                return False
            raise MLSNotFoundError(f"table: DynamoDB table {table!r} does not exist", code=404) from None
        if wait:
            self._wait("table_not_exists", table)
        self.log.info("Dropped DynamoDB table %s", table)
        return True

    def count_items(self, table: str) -> int:
        """The number of items (a ``Select=COUNT`` scan over every page; reads the whole table)."""
        check_table(table)
        paginator = self.get_conn().get_paginator("scan")
        return sum(int(page["Count"]) for page in paginator.paginate(TableName=table, Select="COUNT"))

    # ---- loading ----------------------------------------------------------------------------

    def load_rows(
        self,
        table: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        batch_size: int = MAX_BATCH,
        max_attempts: int = 8,
        skip_rows: int = 0,
        on_committed: Callable[[int], None] | None = None,
    ) -> int:
        """Put ``rows`` into the table in batches; returns how many rows were read.

        Rows are read as they are written (an iterator is never held in memory whole). Each row
        needs the table's key attributes; floats become ``Decimal``, nested dicts and lists are
        fine. Within a batch the last row of a key wins. Items that DynamoDB leaves unprocessed
        are sent again with capped exponential backoff and jitter, at most ``max_attempts``
        times in all. The table is tagged loading before the first write and untagged at the
        end; after a failure it stays tagged and the error says so.

        Resuming a load an earlier attempt left half-done: ``on_committed(n)`` is called after
        each batch is written, with the rows read so far (all of them in the table); given back as
        ``skip_rows``, those first rows are read past without being written again.
        """
        check_table(table)
        check_int(batch_size, "batch_size", 1, MAX_BATCH)
        check_int(max_attempts, "max_attempts", 1)
        check_int(skip_rows, "skip_rows", 0)
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
            raise MLSValidationError(
                "rows", f"expected an iterable of rows (dicts), got {type(rows).__name__}"
            )
        described = self._require(table)
        keys = self._key_schema(described)
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        count = written = 0
        marked = False
        batch: dict[tuple[Any, ...], dict[str, Any]] = {}
        try:
            for index, row in enumerate(rows):
                count += 1
                if index < skip_rows:
                    continue
                key, item = self._item(index, row, keys, serializer)
                batch.pop(key, None)
                batch[key] = item
                if len(batch) == batch_size:
                    marked = marked or self._start_loading(described["TableArn"], table)
                    written += self._write_batch(table, list(batch.values()), max_attempts)
                    batch.clear()
                    if on_committed is not None:
                        on_committed(count)
            if batch:
                marked = marked or self._start_loading(described["TableArn"], table)
                written += self._write_batch(table, list(batch.values()), max_attempts)
                if on_committed is not None:
                    on_committed(count)
            if skip_rows:
                self.log.info(
                    "Resumed the load of %s after its first %s row(s), written before", table, skip_rows
                )
        except Exception as exc:
            if not marked:
                raise
            failure = self._load_failed(exc, table, written)
            if failure is exc:
                raise
            raise failure from exc
        self._mark(described["TableArn"], False)
        self.log.info(
            "Loaded %s row(s) into %s (%s item(s) written); no longer loading", count, table, written
        )
        return count

    def _start_loading(self, arn: str, table: str) -> bool:
        self._mark(arn, True)
        self.log.info("Marked DynamoDB table %s loading (%s=true)", table, LOADING_TAG)
        return True

    @staticmethod
    def _item(
        index: int, row: Any, keys: list[tuple[str, str]], serializer: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(key, DynamoDB item) of row ``index``; bad input names ``rows[<index>].<attribute>``."""
        where = f"rows[{index}]"
        if not isinstance(row, Mapping):
            raise MLSValidationError(where, f"expected a dict, got {type(row).__name__}")
        key = tuple(
            _key_part(row[name], key_type, f"{where}.{name}") if row.get(name) is not None else None
            for name, key_type in keys
        )
        for (name, _), part in zip(keys, key, strict=True):
            if part is None:
                raise MLSValidationError(f"{where}.{name}", "the row lacks this key attribute")
        item: dict[str, Any] = {}
        for attribute, value in row.items():
            if not isinstance(attribute, str) or not attribute:
                raise MLSValidationError(where, f"attribute names are non-empty strings, got {attribute!r}")
            path = f"{where}.{attribute}"
            value = _plain(value, path)
            try:
                item[attribute] = serializer.serialize(value)
            except (TypeError, ValueError) as exc:
                raise MLSValidationError(path, str(exc)) from None
        return key, item

    def _write_batch(self, table: str, items: list[dict[str, Any]], max_attempts: int) -> int:
        """One ``BatchWriteItem``, unprocessed items retried; the number of items written."""
        client = self.get_conn()
        requests = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(1, max_attempts + 1):
            response = client.batch_write_item(RequestItems={table: requests})
            requests = (response.get("UnprocessedItems") or {}).get(table) or []
            if not requests:
                return len(items)
            if attempt == max_attempts:
                break
            ceiling = min(self.retry_max_delay, self.retry_base_delay * 2 ** (attempt - 1))
            delay = ceiling / 2 + random.uniform(0, ceiling / 2)
            self.log.info(
                "%s of %s item(s) unprocessed (attempt %s of %s); again in %.2fs",
                len(requests),
                len(items),
                attempt,
                max_attempts,
                delay,
            )
            time.sleep(delay)
        raise MLSRateLimitError(
            f"{len(requests)} of {len(items)} item(s) stayed unprocessed after {max_attempts} attempts"
        )

    def _load_failed(self, exc: Exception, table: str, written: int) -> Exception:
        """The error of a load that failed after the table was marked loading: it says the table stays so."""
        from botocore.exceptions import ClientError

        note = f"{written} item(s) were written to {table!r} before; {_LOADING_NOTE}"
        if isinstance(exc, MLSValidationError):
            return MLSValidationError(exc.field, f"{exc.message.split(': ', 1)[-1]}; {note}")
        if isinstance(exc, MLSError):
            return type(exc)(f"{exc.message}; {note}", code=exc.code)
        if isinstance(exc, ClientError):
            error = {"ValidationException": MLSBadRequestError, "ResourceNotFoundException": MLSNotFoundError}
            return error.get(_error_code(exc), MLSError)(f"DynamoDB: {exc}; {note}")
        exc.add_note(note)
        self.log.error("Loading %s failed: %s", table, note)
        return exc

    def load_file(
        self,
        table: str,
        path: str | os.PathLike[str],
        *,
        file_format: str | None = None,
        column_types: Mapping[str, str] | None = None,
        batch_size: int = MAX_BATCH,
        max_attempts: int = 8,
        skip_rows: int = 0,
        on_committed: Callable[[int], None] | None = None,
    ) -> int:
        """``load_rows`` from a file, read as it is written: ``csv``, ``jsonl`` (``.ndjson``) or ``json``.

        ``file_format`` defaults to the file's suffix. CSV: a header row, every value a string
        unless ``column_types`` maps its column to ``N`` (a number), ``BOOL`` or ``JSON``; an
        empty cell of a typed column is left out. JSON lines: one object a line. JSON: one list
        of objects. Returns how many rows were read.
        """
        check_table(table)
        file = Path(path) if isinstance(path, str | os.PathLike) else None
        if file is None or not str(path) or not file.is_file() or not os.access(file, os.R_OK):
            raise MLSValidationError("path", f"{path!r} is not a readable file")
        if file_format is None:
            if file.suffix.lower() not in FILE_FORMATS:
                raise MLSValidationError(
                    "file_format",
                    f"cannot tell the format of {file.name!r}: give file_format (csv, jsonl, json)",
                )
            file_format = FILE_FORMATS[file.suffix.lower()]
        file_format = {"ndjson": "jsonl"}.get(str(file_format).lower(), str(file_format).lower())
        check_choice(file_format, "file_format", ("csv", "jsonl", "json"))
        types: dict[str, str] = {}
        if column_types is not None:
            if file_format != "csv":
                raise MLSValidationError("column_types", "only a CSV file takes column_types")
            if not isinstance(column_types, Mapping):
                raise MLSValidationError(
                    "column_types", f"expected a dict, got {type(column_types).__name__}"
                )
            for column, kind in column_types.items():
                types[str(column)] = check_choice(kind, f"column_types.{column}", COLUMN_TYPES)
        if file_format == "csv":
            rows = csv_rows(file, types)
        elif file_format == "jsonl":
            rows = jsonl_rows(file)
        else:
            rows = json_rows(file)
        try:
            return self.load_rows(
                table,
                rows,
                batch_size=batch_size,
                max_attempts=max_attempts,
                skip_rows=skip_rows,
                on_committed=on_committed,
            )
        finally:
            rows.close()
