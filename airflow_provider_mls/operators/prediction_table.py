"""Operators on batch prediction tables (DynamoDB): create one, load predictions into it, drop it.

While a load runs the table is marked loading, so MLS's readiness (and ``BatchPredictionReadySensor``)
does not call it ready half-loaded. Cheap to import: boto3 is imported when a task runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import TaskRecord, task_state
from airflow_provider_mls._integration import aws_region, record_lineage
from airflow_provider_mls.bases import AWS_FIELDS, MLSAwsBaseOperator, aws_hook_kwargs
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.links import PredictionTableLink
from airflow_provider_mls.rules import coerce_bool

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

__all__ = ["CreatePredictionTableOperator", "DropPredictionTableOperator", "LoadPredictionTableOperator"]

# A load records its committed rows in the task state store at most this often (seconds), not
# after every batch: each record is an Execution API call and a database write.
PROGRESS_SAVE_SECONDS = 5.0
_monotonic = time.monotonic  # the clock of that interval


class _PredictionTableOperator(MLSAwsBaseOperator):
    """A task on one DynamoDB table (``self.table``); bad input, a missing table and a conflict fail at once."""

    table: str

    @cached_property
    def tables(self) -> PredictionTableHook:
        from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

        return PredictionTableHook(**aws_hook_kwargs(self))


class CreatePredictionTableOperator(_PredictionTableOperator):
    """Create an on-demand DynamoDB table for batch predictions, keyed by ``partition_key`` (and ``sort_key``).

    Key types: ``S`` (string), ``N`` (number), ``B`` (binary). ``if_exists``: ``fail`` (default)
    or ``skip`` (an existing table with the same keys is returned as it is). Waits until the
    table is ACTIVE. Returns ``{"table", "arn", "status", "created"}``.

    :param table: the table's name.
    :param partition_key: the partition key attribute (default ``user_id``).
    :param partition_key_type: its type: ``S``, ``N`` or ``B``.
    :param sort_key: an optional sort key attribute.
    :param sort_key_type: its type: ``S``, ``N`` or ``B``.
    :param if_exists: ``fail`` or ``skip`` when the table exists.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = (
        "table",
        *AWS_FIELDS,
        "partition_key",
        "partition_key_type",
        "sort_key",
        "sort_key_type",
        "if_exists",
    )
    operator_extra_links = (PredictionTableLink(),)

    def __init__(
        self,
        *,
        table: str,
        partition_key: str = "user_id",
        partition_key_type: str = "S",
        sort_key: str | None = None,
        sort_key_type: str = "S",
        if_exists: str = "fail",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id, region_name=region_name, endpoint_url=endpoint_url, **kwargs
        )
        self.table = table
        self.partition_key = partition_key
        self.partition_key_type = partition_key_type
        self.sort_key = sort_key
        self.sort_key_type = sort_key_type
        self.if_exists = if_exists

    def _execute(self, context: Any) -> dict[str, Any]:
        self.persist_links(context, table=self.table, region=aws_region(self.tables))
        return self.tables.create_table(
            self.table,
            partition_key=self.partition_key,
            partition_key_type=self.partition_key_type,
            sort_key=self.sort_key or None,
            sort_key_type=self.sort_key_type,
            if_exists=self.if_exists,
        )


class LoadPredictionTableOperator(_PredictionTableOperator):
    """Load predictions into a table: ``rows`` (a list of dicts, e.g. an XCom) or ``rows_path``, exactly one.

    ``rows_path``: a ``.csv`` (header row; strings unless ``column_types`` maps a column to ``N``,
    ``BOOL`` or ``JSON``), ``.jsonl``/``.ndjson`` or ``.json`` (a list of objects) file on the
    worker, read as it is written; ``file_format`` overrides the suffix. ``rows`` may also be the
    JSON string of a list (a template rendered without native objects). The table is marked
    loading until every row is in; a failed load leaves it marked. Returns ``{"table", "rows"}``
    (the number of rows read).

    On Airflow 3.3+ the rows committed so far are recorded in the task state store (key
    ``mls_load``, after every batch, with a fingerprint of the load's inputs): a retry of the same
    load (a dead worker) reads past them and writes the rest, and the table is marked ready only
    after the last row. Elsewhere, and when the inputs changed, a retry writes every row again
    (each write is a put by key: nothing is duplicated).

    :param table: the table's name.
    :param rows: the rows: a list of dicts (e.g. an XCom), or its JSON string.
    :param rows_path: or a ``.csv``, ``.jsonl``/``.ndjson`` or ``.json`` file on the worker.
    :param file_format: ``csv``, ``jsonl`` or ``json``, instead of the suffix.
    :param column_types: CSV columns that are not strings: ``N``, ``BOOL`` or ``JSON``.
    :param batch_size: rows per ``BatchWriteItem`` (at most 25).
    :param max_attempts: attempts per batch while DynamoDB returns unprocessed items.
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = (
        "table",
        *AWS_FIELDS,
        "rows",
        "rows_path",
        "file_format",
        "column_types",
    )
    template_fields_renderers = {"column_types": "json"}
    operator_extra_links = (PredictionTableLink(),)

    def __init__(
        self,
        *,
        table: str,
        rows: Iterable[Mapping[str, Any]] | str | None = None,
        rows_path: str | None = None,
        file_format: str | None = None,
        column_types: dict[str, str] | None = None,
        batch_size: int = 25,
        max_attempts: int = 8,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id, region_name=region_name, endpoint_url=endpoint_url, **kwargs
        )
        self.table = table
        self.rows = rows
        self.rows_path = rows_path
        self.file_format = file_format
        self.column_types = column_types
        self.batch_size = batch_size
        self.max_attempts = max_attempts

    def _rows(self) -> Iterable[Mapping[str, Any]]:
        rows: Any = self.rows
        if isinstance(rows, str):
            try:
                rows = json.loads(rows)
            except ValueError as exc:
                raise MLSValidationError("rows", f"a string must be a JSON list of rows: {exc}") from None
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
            raise MLSValidationError("rows", f"expected a list of rows (dicts), got {type(rows).__name__}")
        return rows

    def _execute(self, context: Any) -> dict[str, Any]:
        if (self.rows is None) == (self.rows_path is None):
            raise MLSValidationError("rows", "give exactly one of rows and rows_path")
        region = aws_region(self.tables)
        self.persist_links(context, table=self.table, region=region)
        progress = self._progress(context)
        try:
            count = self._load(progress)
        except Exception:
            if progress:
                progress["on_committed"].flush()  # what the batches committed before the failure
            raise
        if progress:  # finished: a later run of this task instance (cleared) loads every row again
            progress["on_committed"].finish(count)
        from airflow_provider_mls import lineage as ol

        table = ol.dynamodb_table(self.table, region=region)
        table.facets["row_count"] = count
        record_lineage(self, inputs=[ol.file_or_s3(self.rows_path)], outputs=[table])
        return {"table": self.table, "rows": count}

    def _load(self, progress: dict[str, Any]) -> int:
        if self.rows_path is not None:
            if not isinstance(self.rows_path, str) or not self.rows_path.strip():
                raise MLSValidationError("rows_path", f"expected a file path, got {self.rows_path!r}")
            try:
                return self.tables.load_file(
                    self.table,
                    self.rows_path,
                    file_format=self.file_format or None,
                    column_types=self.column_types,
                    batch_size=self.batch_size,
                    max_attempts=self.max_attempts,
                    **progress,
                )
            except MLSValidationError as exc:
                if exc.field != "path":
                    raise
                raise MLSValidationError("rows_path", exc.message.split(": ", 1)[-1]) from None
        if self.file_format is not None or self.column_types is not None:
            raise MLSValidationError("file_format", "file_format and column_types go with rows_path only")
        return self.tables.load_rows(
            self.table,
            self._rows(),
            batch_size=self.batch_size,
            max_attempts=self.max_attempts,
            **progress,
        )

    def _progress(self, context: Any) -> dict[str, Any]:
        """``skip_rows`` and ``on_committed`` of the load, from and to the task state store (3.3+)."""
        store = task_state(context)
        if store is None:
            return {}
        record = TaskRecord(store, "mls_load", self.log)
        inputs = self._fingerprint()
        stored = record.load() or {}
        skip = stored.get("committed") if stored.get("inputs") == inputs and not stored.get("done") else 0
        skip = skip if isinstance(skip, int) and not isinstance(skip, bool) and skip > 0 else 0
        if skip:
            self.log.info("An earlier try of this task committed the first %s row(s) of this load", skip)

        return {"skip_rows": skip, "on_committed": _Progress(record, inputs, self.log)}

    def _fingerprint(self) -> str:
        """What the load is (table, rows or file, format, batch size): a record of another load is not resumed."""
        import hashlib
        import os

        source: Any = self.rows
        if self.rows_path is not None:
            try:
                stat = os.stat(self.rows_path)
                source = [self.rows_path, stat.st_size, stat.st_mtime_ns]
            except OSError:
                source = [self.rows_path]
        what = [self.table, source, self.file_format, self.column_types, self.batch_size]
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:32]


class _Progress:
    """``on_committed`` of a load: the committed rows, recorded after the first batch, then at most
    every ``PROGRESS_SAVE_SECONDS``.

    A retry resuming from a count a few seconds old writes those rows again (puts by key: nothing
    is duplicated). ``flush`` records the last count (the load failed), ``finish`` the end of the
    load. A store that cannot be written is warned about once per try, not once per batch.
    """

    def __init__(self, record: TaskRecord, inputs: str, log: Any) -> None:
        self.record, self.inputs, self.log = record, inputs, log
        self.rows = self.saved = 0
        self.last: float | None = None  # the first batch is recorded at once
        self.warned = False

    def __call__(self, rows: int) -> None:
        self.rows = rows
        if self.last is None or _monotonic() - self.last >= PROGRESS_SAVE_SECONDS:
            self._save({"inputs": self.inputs, "committed": rows})

    def flush(self) -> None:
        if self.rows > self.saved:
            self._save({"inputs": self.inputs, "committed": self.rows})

    def finish(self, count: int) -> None:
        self.rows = count
        self._save({"inputs": self.inputs, "committed": count, "done": True})

    def _save(self, value: dict[str, Any]) -> None:
        self.last = _monotonic()
        if self.record.save(value, warn=False):
            self.saved = self.rows
        elif not self.warned:
            self.warned = True
            self.log.warning(
                "Could not record the load's progress in the task state store: a retry writes again "
                "the rows committed since its last record (warned once; the load goes on)"
            )


class DropPredictionTableOperator(_PredictionTableOperator):
    """Drop a batch prediction table and wait until it is gone.

    A missing table fails the task unless ``ignore_missing``. Returns ``{"table", "dropped"}``.

    :param table: the table's name.
    :param ignore_missing: a table that does not exist is a success (``dropped: False``).
    :param aws_conn_id: the AWS connection (None: boto3's default chain).
    :param region_name: AWS region (default: the connection's or the environment's).
    :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
    """

    template_fields: Sequence[str] = ("table", *AWS_FIELDS, "ignore_missing")

    def __init__(
        self,
        *,
        table: str,
        ignore_missing: bool | str = False,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        endpoint_url: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id, region_name=region_name, endpoint_url=endpoint_url, **kwargs
        )
        self.table = table
        self.ignore_missing = ignore_missing

    def _execute(self, context: Any) -> dict[str, Any]:
        ignore_missing = coerce_bool(self.ignore_missing, "ignore_missing")
        dropped = self.tables.drop_table(self.table, ignore_missing=ignore_missing)
        return {"table": self.table, "dropped": dropped}
