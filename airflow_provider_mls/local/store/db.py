"""The persistence core of the local MLS server: one SQLite database and the helpers every resource uses.

One connection (WAL mode) guarded by a lock; every write is one ``BEGIN IMMEDIATE`` transaction,
committed before the HTTP answer is sent.  Time-dependent state (AutoML training, model servers)
is stored as absolute due times and derived at read time, so it survives a ``kill -9``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.local.errors import bad_request

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from airflow_provider_mls.local.settings import Settings

DB_FILE = "mls-local.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS components (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    info TEXT,
    is_latest INTEGER NOT NULL DEFAULT 0,
    user TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS datasets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    data_type TEXT NOT NULL,
    setup_conf TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    description TEXT,
    creator TEXT,
    model_type TEXT NOT NULL,
    table_name TEXT,
    model_data TEXT,
    model_meta TEXT NOT NULL,
    model_lib TEXT,
    features TEXT,
    components TEXT NOT NULL,
    is_enabled INTEGER NOT NULL DEFAULT 1,
    dataset_id INTEGER,
    dataset_name TEXT,
    automl_model_info TEXT,
    training_due REAL,
    training_result TEXT,
    training_error TEXT,
    handler TEXT,
    server_status TEXT,
    server_due REAL,
    server_next TEXT,
    fail_next_start INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    description TEXT,
    bucketing_seed TEXT,
    user TEXT,
    model_filter_id INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request TEXT NOT NULL,
    ml_model INTEGER
);
CREATE TABLE IF NOT EXISTS buckets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    ratio INTEGER,
    prediction_id INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


def iso(ts: float) -> str:
    """ISO 8601, UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def to_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except ValueError:  # Python's JSON reader accepts NaN/Infinity; JSON (and MLS) does not
        raise bad_request("body", "contains NaN or Infinity, which JSON does not allow") from None


def where_clause(
    filters: Mapping[str, Any], extra: Sequence[tuple[str, Sequence[Any]]] = ()
) -> tuple[str, list[Any]]:
    """`` WHERE col = ? AND ...`` over the filters that are set, plus ``extra`` (condition, params).

    Column names come from the store's code, never from a request; values are always parameters.
    """
    conditions = [f"{col} = ?" for col, val in filters.items() if val is not None]
    params: list[Any] = [val for val in filters.values() if val is not None]
    for condition, values in extra:
        conditions.append(condition)
        params.extend(values)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def non_empty_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request(field, "must be a non-empty string")
    return value


def opt_str(field: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise bad_request(field, "must be a string or null")
    return value


class Database:
    """The connection, its lock and transactions; the resource stores (``models``, ``automl``,
    ``experiments``) build on it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        data_dir = Path(settings.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILE
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def reset(self) -> dict[str, int]:
        """Delete every row (ids start at 1 again); returns how many rows each table had."""
        tables = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", _SCHEMA)
        with self._tx() as db:
            counts = {t: int(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}
            for table in tables:
                db.execute(f"DELETE FROM {table}")  # names from _SCHEMA, never from a request
            db.execute("DELETE FROM sqlite_sequence")
        return counts

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._db

    @staticmethod
    def _one(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = db.execute(sql, params).fetchone()
        return row
