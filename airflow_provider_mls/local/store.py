"""SQLite persistence of the local MLS server.

One connection (WAL mode) guarded by a lock; every write is one ``BEGIN IMMEDIATE`` transaction,
committed before the HTTP answer is sent.  Time-dependent state (AutoML training, model servers)
is stored as absolute due times and derived at read time, so it survives a ``kill -9``.
"""

from __future__ import annotations

import ast
import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import (
    DATASET_TYPES,
    MODEL_LIBS,
    PREDICTION_MODEL_KEYS,
    PREDICTION_TYPES,
    ModelStatus,
    ModelType,
    ServerStatus,
)
from airflow_provider_mls.local.errors import APIError, bad_request, checked, conflict, db_int, not_found
from airflow_provider_mls.rules import check_component, check_meta, check_name, check_table, check_version

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

_UNSET: Any = object()
# Fields of a manual model that pass the shared shape rules (rules.py) when they are written.
_CHECKED = ("name", "version", "model_meta", "table")


def iso(ts: float) -> str:
    """ISO 8601, UTC."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except ValueError:  # Python's JSON reader accepts NaN/Infinity; JSON (and MLS) does not
        raise bad_request("body", "contains NaN or Infinity, which JSON does not allow") from None


def _where(
    filters: Mapping[str, Any], extra: Sequence[tuple[str, Sequence[Any]]] = ()
) -> tuple[str, list[Any]]:
    """`` WHERE col = ? AND ...`` over the filters that are set, plus ``extra`` (condition, params).

    Column names come from this module, never from a request; values are always parameters.
    """
    conditions = [f"{col} = ?" for col, val in filters.items() if val is not None]
    params: list[Any] = [val for val in filters.values() if val is not None]
    for condition, values in extra:
        conditions.append(condition)
        params.extend(values)
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


def _non_empty_str(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request(field, "must be a non-empty string")
    return value


def _opt_str(field: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise bad_request(field, "must be a string or null")
    return value


def _opt_dict(field: str, value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise bad_request(field, "must be a JSON object or null")
    return value


class Store:
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

    # ------------------------------------------------------------------ components
    def _component_out(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "info": row["info"],
            "is_latest": bool(row["is_latest"]),
            "user": row["user"],
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }

    def list_components(
        self, *, id: int | None, name: str | None, info: str | None, is_latest: bool | None
    ) -> list[dict[str, Any]]:
        where, params = _where(
            {"id": id, "name": name, "info": info, "is_latest": None if is_latest is None else int(is_latest)}
        )
        with self._read() as db:
            rows = db.execute(f"SELECT * FROM components{where} ORDER BY id", params)
            return [self._component_out(r) for r in rows]

    def get_component(self, component_id: int) -> dict[str, Any]:
        with self._read() as db:
            row = self._one(db, "SELECT * FROM components WHERE id = ?", (component_id,))
        if row is None:
            raise not_found("component", component_id)
        return self._component_out(row)

    def save_component(
        self,
        component_id: int | None,
        *,
        name: Any,
        info: Any,
        is_latest: Any,
        user: str,
        fields_set: set[str],
    ) -> dict[str, Any]:
        now = time.time()
        with self._tx() as db:
            old = None
            if component_id is not None:
                old = self._one(db, "SELECT * FROM components WHERE id = ?", (component_id,))
                if old is None:
                    raise not_found("component", component_id)
            if old is not None and "name" not in fields_set:
                name = old["name"]
            if old is None or name != old["name"]:
                name = checked(check_component, name, "name")
            name = _non_empty_str("name", name)
            if old is not None and "info" not in fields_set:
                info = old["info"]
            info = _opt_str("info", info)
            if old is not None and "is_latest" not in fields_set:
                is_latest = bool(old["is_latest"])
            is_latest = bool(is_latest)
            if is_latest:
                db.execute(
                    "UPDATE components SET is_latest = 0 WHERE name = ? AND id IS NOT ?", (name, component_id)
                )
            if old is None:
                cur = db.execute(
                    "INSERT INTO components (name, info, is_latest, user, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, info, int(is_latest), user, now, now),
                )
                component_id = int(cur.lastrowid or 0)
            else:
                db.execute(
                    "UPDATE components SET name = ?, info = ?, is_latest = ?, updated_at = ? WHERE id = ?",
                    (name, info, int(is_latest), now, component_id),
                )
            row = self._one(db, "SELECT * FROM components WHERE id = ?", (component_id,))
        assert row is not None
        return self._component_out(row)

    def delete_component(self, component_id: int) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("DELETE FROM components WHERE id = ?", (component_id,)).rowcount == 0:
                raise not_found("component", component_id)
        return {"id": component_id}

    def _resolve_components(self, db: sqlite3.Connection, value: Any) -> list[int]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise bad_request("components", "must be a list of component names")
        ids: list[int] = []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name:
                raise bad_request("components", f"must be a list of component names, got {item!r}")
            row = self._one(
                db,
                "SELECT id FROM components WHERE name = ? ORDER BY is_latest DESC, id DESC LIMIT 1",
                (name,),
            )
            if row is None:
                checked(check_component, name, "components")  # a name no component can have: say why
                raise bad_request("components", f"unknown component {name!r}")
            if row["id"] not in ids:
                ids.append(row["id"])
        return ids

    # ------------------------------------------------------------------ datasets
    def _dataset_out(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "status": "READY",
            "data_type": row["data_type"],
            "setup_conf": _loads(row["setup_conf"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }

    def list_datasets(self, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = _where({"id": id, "name": name})
        with self._read() as db:
            return [
                self._dataset_out(r) for r in db.execute(f"SELECT * FROM datasets{where} ORDER BY id", params)
            ]

    def get_dataset(self, dataset_id: int) -> dict[str, Any]:
        with self._read() as db:
            row = self._one(db, "SELECT * FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            raise not_found("dataset", dataset_id)
        return self._dataset_out(row)

    def create_dataset(
        self, *, name: Any, type: Any, base_feature_conf: Any, label_data_conf: Any, error: Any
    ) -> dict[str, Any]:
        name = _non_empty_str("name", name)
        if type not in DATASET_TYPES:
            raise bad_request("type", f"must be one of {', '.join(DATASET_TYPES)}")
        if not isinstance(base_feature_conf, dict):
            raise bad_request("base_feature_conf", "must be a JSON object")
        if not isinstance(label_data_conf, dict):
            raise bad_request("label_data_conf", "must be a JSON object")
        for key in ("source_type", "source_path"):
            if not isinstance(label_data_conf.get(key), str) or not label_data_conf[key]:
                raise bad_request(f"label_data_conf.{key}", "must be a non-empty string")
        error = _opt_str("error", error)
        setup_conf: dict[str, Any] = {
            "base_feature_conf": base_feature_conf,
            "label_data_conf": label_data_conf,
        }
        if error:
            setup_conf["error"] = error
        now = time.time()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO datasets (name, data_type, setup_conf, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (name, type, _dumps(setup_conf), now, now),
            )
            row = self._one(db, "SELECT * FROM datasets WHERE id = ?", (cur.lastrowid,))
        assert row is not None
        return self._dataset_out(row)

    def delete_dataset(self, dataset_id: int) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount == 0:
                raise not_found("dataset", dataset_id)
        return {"id": dataset_id}

    # ------------------------------------------------------------------ models
    @staticmethod
    def _training_status(row: sqlite3.Row, now: float) -> ModelStatus:
        if row["training_due"] is not None and now < row["training_due"]:
            return ModelStatus.TRAINING
        return ModelStatus.parse(row["training_result"])

    @staticmethod
    def _server_status(row: sqlite3.Row, now: float) -> ServerStatus:
        status = row["server_status"]
        if status is None:
            return ServerStatus.STOPPED
        if row["server_due"] is not None and now >= row["server_due"]:
            return ServerStatus.parse(row["server_next"])
        return ServerStatus.parse(status)

    def _model_out(self, db: sqlite3.Connection, row: sqlite3.Row, now: float) -> dict[str, Any]:
        components = []
        for cid in _loads(row["components"]) or []:
            crow = self._one(db, "SELECT * FROM components WHERE id = ?", (cid,))
            if crow is not None:
                components.append(self._component_out(crow))
        is_automl = row["model_type"] == ModelType.AUTOML.value
        if is_automl:
            status = self._training_status(row, now)
        else:
            served = self._one(
                db,
                "SELECT 1 FROM buckets b JOIN predictions p ON p.id = b.prediction_id WHERE p.ml_model = ? LIMIT 1",
                (row["id"],),
            )
            status = ModelStatus.IN_USE if served else ModelStatus.NOT_IN_USE
        out: dict[str, Any] = {
            "id": row["id"],
            "name": row["name"],
            "version": row["version"],
            "description": row["description"],
            "creator": row["creator"],
            "model_type": row["model_type"],
            "status": status.value,
            "table": row["table_name"],
            "model_data": row["model_data"],
            "model_meta": _loads(row["model_meta"]) or {},
            "model_lib": row["model_lib"],
            "features": row["features"],
            "components": components,
            "is_enabled": bool(row["is_enabled"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }
        if is_automl:
            info = dict(_loads(row["automl_model_info"]) or {})
            if status is ModelStatus.FAILED:
                info["error"] = row["training_error"] or "training failed"
            elif status is ModelStatus.DONE:
                info.setdefault("trained_at", iso(row["training_due"] or row["created_at"]))
            out.update(dataset_id=row["dataset_id"], dataset_name=row["dataset_name"], automl_model_info=info)
        return out

    def _model_row(self, db: sqlite3.Connection, model_id: int, field: str = "id") -> sqlite3.Row:
        row = self._one(db, "SELECT * FROM models WHERE id = ?", (model_id,))
        if row is None:
            raise not_found("model", model_id, field)
        return row

    def list_models(
        self,
        *,
        model_type: str | None,
        id: int | None,
        name: str | None,
        version: str | None,
        query: str | None,
        page: int,
    ) -> list[dict[str, Any]]:
        search = "(instr(lower(name), lower(?)) > 0 OR instr(lower(coalesce(description, '')), lower(?)) > 0)"
        where, params = _where(
            {"model_type": model_type, "id": id, "name": name, "version": version},
            [(search, [query, query])] if query else [],
        )
        size = self.settings.page_size
        sql = f"SELECT * FROM models{where} ORDER BY id LIMIT ? OFFSET ?"
        params += [size, (page - 1) * size]
        now = time.time()
        with self._read() as db:
            return [self._model_out(db, r, now) for r in db.execute(sql, params).fetchall()]

    def get_model(self, model_id: int) -> dict[str, Any]:
        with self._read() as db:
            return self._model_out(db, self._model_row(db, model_id), time.time())

    def _manual_fields(
        self, db: sqlite3.Connection, body: Mapping[str, Any], ruled: frozenset[str] = frozenset(_CHECKED)
    ) -> dict[str, Any]:
        """The manual model's columns from ``body``; the fields in ``ruled`` also pass the shape rules."""
        model_lib = body.get("model_lib")
        if model_lib is not None and model_lib not in MODEL_LIBS:
            raise bad_request("model_lib", f"must be one of {', '.join(MODEL_LIBS)} (or null)")
        model_meta = body.get("model_meta")
        if model_meta is None:
            model_meta = {}
        if not isinstance(model_meta, dict):
            raise bad_request("model_meta", "must be a JSON object")
        if "model_meta" in ruled:
            checked(check_meta, model_meta, "model_meta")
        table = _opt_str("table", body.get("table"))
        if table and "table" in ruled:
            checked(check_table, table, "table")
        features = body.get("features")
        if features is None:
            features = ""
        if isinstance(features, list) and all(isinstance(f, str) for f in features):
            features = ",".join(features)
        if not isinstance(features, str):
            raise bad_request("features", "must be a comma-separated string")
        return {
            "description": _opt_str("description", body.get("description")) or "",
            "model_lib": model_lib,
            "model_data": _opt_str("model_data", body.get("model_data")),
            "model_meta": _dumps(model_meta),
            "features": features,
            "table_name": table,
            "components": _dumps(self._resolve_components(db, body.get("components"))),
        }

    def create_model(self, body: Mapping[str, Any], user: str) -> dict[str, Any]:
        model_type = body.get("model_type")
        if model_type not in (ModelType.MANUAL.value, ModelType.AUTOML.value):
            raise bad_request("model_type", "must be one of manual, automl")
        name = checked(check_name, body.get("name"), "name")
        version = checked(check_version, body.get("version"), "version")
        creator = _opt_str("creator", body.get("creator")) or user
        now = time.time()
        with self._tx() as db:
            cols: dict[str, Any] = {
                "name": name,
                "version": version,
                "creator": creator,
                "model_type": model_type,
                "created_at": now,
                "updated_at": now,
            }
            if model_type == ModelType.MANUAL.value:
                cols.update(self._manual_fields(db, body))
            else:
                dataset_id = db_int(
                    body.get("dataset_id"), "dataset_id", "the id (integer) of an existing dataset"
                )
                ds = self._one(db, "SELECT * FROM datasets WHERE id = ?", (dataset_id,))
                if ds is None:
                    raise bad_request("dataset_id", f"dataset {dataset_id} not found")
                error = (_loads(ds["setup_conf"]) or {}).get("error")
                cols.update(
                    description=_opt_str("description", body.get("description")) or "",
                    model_meta=_dumps({}),
                    features="",
                    components=_dumps([]),
                    model_lib="autogluon",
                    dataset_id=dataset_id,
                    dataset_name=ds["name"],
                    automl_model_info=_dumps({"dataset_id": dataset_id, "data_type": ds["data_type"]}),
                    training_due=now + self.settings.training_seconds,
                    training_result=ModelStatus.FAILED.value if error else ModelStatus.DONE.value,
                    training_error=error or None,
                )
            try:
                cur = db.execute(
                    f"INSERT INTO models ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    list(cols.values()),
                )
            except sqlite3.IntegrityError:
                raise conflict(f"name: a model {name!r} version {version!r} exists already") from None
            return {"id": int(cur.lastrowid or 0)}

    def update_model(self, model_id: int, body: Mapping[str, Any], fields_set: set[str]) -> dict[str, Any]:
        if body.get("model_type", ModelType.MANUAL.value) != ModelType.MANUAL.value:
            raise bad_request("model_type", "only manual models can be updated (must be 'manual')")
        now = time.time()
        with self._tx() as db:
            row = self._model_row(db, model_id)
            if row["model_type"] != ModelType.MANUAL.value:
                raise bad_request(
                    "model_type", f"model {model_id} is an automl model; only manual models can be PUT"
                )
            # Fields missing from the body keep their current value.
            current: dict[str, Any] = {
                "name": row["name"],
                "version": row["version"],
                "creator": row["creator"],
                "description": row["description"],
                "model_lib": row["model_lib"],
                "model_data": row["model_data"],
                "model_meta": _loads(row["model_meta"]),
                "features": row["features"],
                "table": row["table_name"],
            }
            merged = {**current, **{k: v for k, v in body.items() if k in fields_set}}
            if "components" not in fields_set:
                cids = _loads(row["components"]) or []
                names = []
                for cid in cids:
                    crow = self._one(db, "SELECT name FROM components WHERE id = ?", (cid,))
                    if crow is not None:
                        names.append(crow["name"])
                merged["components"] = names
            # A PUT sends every field back: only the values it changes must pass the shape rules
            # (a model stored before a rule existed stays updatable).
            changed = frozenset(
                k for k in _CHECKED if k in fields_set and k in current and body.get(k) != current[k]
            )
            name = _non_empty_str("name", merged["name"])
            version = _non_empty_str("version", merged["version"])
            if "name" in changed:
                checked(check_name, name, "name")
            if "version" in changed:
                checked(check_version, version, "version")
            cols = self._manual_fields(db, merged, changed)
            if "components" not in fields_set:
                cols["components"] = row["components"]
            cols.update(
                name=name, version=version, creator=_opt_str("creator", merged["creator"]), updated_at=now
            )
            try:
                db.execute(
                    f"UPDATE models SET {', '.join(f'{c} = ?' for c in cols)} WHERE id = ?",
                    [*cols.values(), model_id],
                )
            except sqlite3.IntegrityError:
                raise conflict(f"name: a model {name!r} version {version!r} exists already") from None
        return {"id": model_id}

    def delete_model(self, model_id: int) -> dict[str, Any]:
        with self._tx() as db:
            self._model_row(db, model_id)
            served = [
                r["id"]
                for r in db.execute(
                    "SELECT b.id FROM buckets b JOIN predictions p ON p.id = b.prediction_id WHERE p.ml_model = ?",
                    (model_id,),
                )
            ]
            if served:
                raise conflict(f"id: model {model_id} is served by bucket(s) {served}; migrate them first")
            db.execute("DELETE FROM models WHERE id = ?", (model_id,))
        return {"id": model_id}

    def _automl_row(self, db: sqlite3.Connection, model_id: int) -> sqlite3.Row:
        row = self._model_row(db, model_id)
        if row["model_type"] != ModelType.AUTOML.value:
            raise bad_request("model_type", f"model {model_id} is a manual model, not an automl model")
        return row

    # ------------------------------------------------------------------ automl server / handler
    def server_status(self, model_id: int) -> dict[str, Any]:
        with self._read() as db:
            row = self._automl_row(db, model_id)
            return {"status": self._server_status(row, time.time()).value}

    def start_server(self, model_id: int) -> dict[str, Any]:
        now = time.time()
        with self._tx() as db:
            row = self._automl_row(db, model_id)
            current = self._server_status(row, now)
            if current in (ServerStatus.STARTING, ServerStatus.RUNNING):
                return {"status": current.value}
            if current is ServerStatus.STOPPING:
                raise conflict(
                    f"status: the server of model {model_id} is STOPPING; start it once it is STOPPED"
                )
            training = self._training_status(row, now)
            if training is ModelStatus.TRAINING:
                raise conflict(
                    f"status: model {model_id} is still TRAINING; start its server once it is DONE"
                )
            fails = bool(row["fail_next_start"]) or training is not ModelStatus.DONE
            db.execute(
                "UPDATE models SET server_status = ?, server_due = ?, server_next = ?, fail_next_start = 0 "
                "WHERE id = ?",
                (
                    ServerStatus.STARTING.value,
                    now + self.settings.server_start_seconds,
                    (ServerStatus.FAILED if fails else ServerStatus.RUNNING).value,
                    model_id,
                ),
            )
        return {"status": ServerStatus.STARTING.value}

    def stop_server(self, model_id: int) -> dict[str, Any]:
        now = time.time()
        with self._tx() as db:
            row = self._automl_row(db, model_id)
            current = self._server_status(row, now)
            if current in (ServerStatus.STOPPED, ServerStatus.STOPPING):
                return {"status": current.value}
            db.execute(
                "UPDATE models SET server_status = ?, server_due = ?, server_next = ? WHERE id = ?",
                (
                    ServerStatus.STOPPING.value,
                    now + self.settings.server_start_seconds,
                    ServerStatus.STOPPED.value,
                    model_id,
                ),
            )
        return {"status": ServerStatus.STOPPING.value}

    def force_server(self, model_id: int, status: str | None, fail_next_start: bool | None) -> dict[str, Any]:
        if status is not None and status not in {s.value for s in ServerStatus}:
            raise bad_request("status", f"must be one of {', '.join(s.value for s in ServerStatus)}")
        with self._tx() as db:
            self._automl_row(db, model_id)
            if status is not None:
                db.execute(
                    "UPDATE models SET server_status = ?, server_due = NULL, server_next = NULL WHERE id = ?",
                    (status, model_id),
                )
            if fail_next_start is not None:
                db.execute(
                    "UPDATE models SET fail_next_start = ? WHERE id = ?", (int(fail_next_start), model_id)
                )
            row = self._model_row(db, model_id)
            return {
                "status": self._server_status(row, time.time()).value,
                "fail_next_start": bool(row["fail_next_start"]),
            }

    def force_training(self, model_id: int, status: str, error: str | None) -> dict[str, Any]:
        if status not in (ModelStatus.DONE.value, ModelStatus.FAILED.value):
            raise bad_request("status", "must be DONE or FAILED")
        if status == ModelStatus.FAILED.value and not error:
            error = "training failed (forced through /local)"
        now = time.time()
        with self._tx() as db:
            self._automl_row(db, model_id)
            db.execute(
                "UPDATE models SET training_due = ?, training_result = ?, training_error = ? WHERE id = ?",
                (now, status, error if status == ModelStatus.FAILED.value else None, model_id),
            )
            return self._model_out(db, self._model_row(db, model_id), now)

    def get_handler(self, model_id: int) -> dict[str, Any]:
        with self._read() as db:
            return {"handler": self._automl_row(db, model_id)["handler"]}

    def set_handler(self, model_id: int, handler: Any) -> dict[str, Any]:
        if not isinstance(handler, str):
            raise bad_request("handler", "must be a string of Python source")
        try:
            ast.parse(handler)
        except (SyntaxError, ValueError) as exc:
            raise bad_request("handler", f"is not valid Python: {exc}") from None
        with self._tx() as db:
            self._automl_row(db, model_id)
            db.execute(
                "UPDATE models SET handler = ?, updated_at = ? WHERE id = ?", (handler, time.time(), model_id)
            )
        return {"handler": handler}

    # ------------------------------------------------------------------ experiments
    def _experiment_out(self, row: sqlite3.Row) -> dict[str, Any]:
        mf = row["model_filter_id"]
        return {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "bucketing_seed": _loads(row["bucketing_seed"]),
            "user": row["user"],
            "channels": [],
            "model_filter": None if mf is None else {"id": mf},
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }

    def list_experiments(self, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = _where({"id": id, "name": name})
        with self._read() as db:
            rows = db.execute(f"SELECT * FROM experiments{where} ORDER BY id", params)
            return [self._experiment_out(r) for r in rows]

    def _experiment_row(self, db: sqlite3.Connection, experiment_id: int) -> sqlite3.Row:
        row = self._one(db, "SELECT * FROM experiments WHERE id = ?", (experiment_id,))
        if row is None:
            raise not_found("experiment", experiment_id)
        return row

    def get_experiment(self, experiment_id: int) -> dict[str, Any]:
        with self._read() as db:
            return self._experiment_out(self._experiment_row(db, experiment_id))

    def save_experiment(
        self, experiment_id: int | None, body: Mapping[str, Any], fields_set: set[str], user: str
    ) -> dict[str, Any]:
        now = time.time()
        with self._tx() as db:
            old = self._experiment_row(db, experiment_id) if experiment_id is not None else None
            values: dict[str, Any] = {}
            if old is not None:
                values = {
                    "name": old["name"],
                    "description": old["description"],
                    "bucketing_seed": _loads(old["bucketing_seed"]),
                    "model_filter_id": old["model_filter_id"],
                }
            values.update(
                {
                    k: body.get(k)
                    for k in ("name", "description", "bucketing_seed", "model_filter_id")
                    if k in fields_set or old is None
                }
            )
            name = _non_empty_str("name", values["name"])
            seed = values["bucketing_seed"]
            if seed is None or isinstance(seed, bool) or not isinstance(seed, str | int):
                raise bad_request("bucketing_seed", "must be a string or an integer")
            description = _opt_str("description", values["description"]) or ""
            mf = values["model_filter_id"]
            if mf is not None:
                mf = db_int(mf, "model_filter_id", "an integer or null")
            if old is None:
                cur = db.execute(
                    "INSERT INTO experiments (name, description, bucketing_seed, user, model_filter_id, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, description, _dumps(seed), user, mf, now, now),
                )
                experiment_id = int(cur.lastrowid or 0)
            else:
                db.execute(
                    "UPDATE experiments SET name = ?, description = ?, bucketing_seed = ?, model_filter_id = ?, "
                    "updated_at = ? WHERE id = ?",
                    (name, description, _dumps(seed), mf, now, experiment_id),
                )
            assert experiment_id is not None
            return self._experiment_out(self._experiment_row(db, experiment_id))

    def delete_experiment(self, experiment_id: int) -> dict[str, Any]:
        with self._tx() as db:
            self._experiment_row(db, experiment_id)
            db.execute(
                "DELETE FROM predictions WHERE id IN (SELECT prediction_id FROM buckets WHERE experiment_id = ?)",
                (experiment_id,),
            )
            db.execute("DELETE FROM buckets WHERE experiment_id = ?", (experiment_id,))
            db.execute("DELETE FROM experiments WHERE id = ?", (experiment_id,))
        return {"id": experiment_id}

    # ------------------------------------------------------------------ buckets
    def _prediction_request(
        self, db: sqlite3.Connection, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], int | None]:
        ptype = body.get("prediction_type")
        if ptype not in PREDICTION_TYPES:
            raise bad_request("prediction_type", f"must be one of {', '.join(PREDICTION_TYPES)}")
        request: dict[str, Any] = {"type": ptype}
        ml_model: int | None = None
        if ptype in PREDICTION_MODEL_KEYS:
            key = PREDICTION_MODEL_KEYS[ptype]
            model_id = db_int(
                body.get(key), key, f"the id (integer) of an existing model for prediction_type {ptype}"
            )
            row = self._one(db, "SELECT model_type FROM models WHERE id = ?", (model_id,))
            if row is None:
                raise bad_request(key, f"model {model_id} not found")
            # Only `automl` is bound to a model type: the reference client also serves an AutoML
            # model behind an online or batch bucket.
            if ptype == "automl" and row["model_type"] != ModelType.AUTOML.value:
                raise bad_request(
                    key, f"model {model_id} is a {row['model_type']} model, automl needs an automl one"
                )
            request[key] = model_id
            ml_model = model_id
        elif ptype == "static":
            static_value = body.get("static_value")
            if not isinstance(static_value, dict):
                raise bad_request("static_value", "must be a JSON object for prediction_type static")
            request["static_value"] = static_value
        return request, ml_model

    def _bucket_ranges(self, db: sqlite3.Connection, experiment_id: int) -> dict[int, list[int] | None]:
        ranges: dict[int, list[int] | None] = {}
        start = 0
        for r in db.execute(
            "SELECT id, ratio FROM buckets WHERE experiment_id = ? ORDER BY id", (experiment_id,)
        ):
            ratio = r["ratio"]
            if not ratio:
                ranges[r["id"]] = None
                continue
            ranges[r["id"]] = [start, start + ratio - 1]
            start += ratio
        return ranges

    def _buckets_out(self, db: sqlite3.Connection, rows: Sequence[sqlite3.Row]) -> list[dict[str, Any]]:
        out = []
        cache: dict[int, dict[int, list[int] | None]] = {}
        for row in rows:
            eid = row["experiment_id"]
            if eid not in cache:
                cache[eid] = self._bucket_ranges(db, eid)
            pred = self._one(db, "SELECT * FROM predictions WHERE id = ?", (row["prediction_id"],))
            out.append(
                {
                    "id": row["id"],
                    "name": row["name"],
                    "description": row["description"],
                    "bucket_range": cache[eid].get(row["id"]),
                    "ratio": row["ratio"],
                    "prediction": {
                        "id": row["prediction_id"],
                        "request": _loads(pred["request"]) if pred else {"type": "empty"},
                        "ml_model": pred["ml_model"] if pred else None,
                    },
                    "created_at": iso(row["created_at"]),
                    "updated_at": iso(row["updated_at"]),
                }
            )
        return out

    def list_buckets(self, experiment_id: int, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = _where({"experiment_id": experiment_id, "id": id, "name": name})
        with self._read() as db:
            self._experiment_row(db, experiment_id)
            rows = db.execute(f"SELECT * FROM buckets{where} ORDER BY id", params).fetchall()
            return self._buckets_out(db, rows)

    def _bucket_row(self, db: sqlite3.Connection, experiment_id: int, bucket_id: int) -> sqlite3.Row:
        self._experiment_row(db, experiment_id)
        row = self._one(
            db, "SELECT * FROM buckets WHERE id = ? AND experiment_id = ?", (bucket_id, experiment_id)
        )
        if row is None:
            raise not_found("bucket", bucket_id)
        return row

    def get_bucket(self, experiment_id: int, bucket_id: int) -> dict[str, Any]:
        with self._read() as db:
            return self._buckets_out(db, [self._bucket_row(db, experiment_id, bucket_id)])[0]

    def save_bucket(
        self, experiment_id: int, bucket_id: int | None, body: Mapping[str, Any], fields_set: set[str]
    ) -> dict[str, Any]:
        now = time.time()
        with self._tx() as db:
            self._experiment_row(db, experiment_id)
            old = self._bucket_row(db, experiment_id, bucket_id) if bucket_id is not None else None
            name = body.get("name") if old is None or "name" in fields_set else old["name"]
            name = _non_empty_str("name", name)
            description = (
                body.get("description") if old is None or "description" in fields_set else old["description"]
            )
            description = _opt_str("description", description) or ""
            if old is None or "prediction_type" in fields_set:
                request, ml_model = self._prediction_request(db, body)
            if old is None:
                pcur = db.execute(
                    "INSERT INTO predictions (request, ml_model) VALUES (?, ?)", (_dumps(request), ml_model)
                )
                cur = db.execute(
                    "INSERT INTO buckets (experiment_id, name, description, ratio, prediction_id, created_at, "
                    "updated_at) VALUES (?, ?, ?, NULL, ?, ?, ?)",
                    (experiment_id, name, description, pcur.lastrowid, now, now),
                )
                bucket_id = int(cur.lastrowid or 0)
            else:
                if "prediction_type" in fields_set:
                    db.execute(
                        "UPDATE predictions SET request = ?, ml_model = ? WHERE id = ?",
                        (_dumps(request), ml_model, old["prediction_id"]),
                    )
                db.execute(
                    "UPDATE buckets SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                    (name, description, now, bucket_id),
                )
            assert bucket_id is not None
            return self._buckets_out(db, [self._bucket_row(db, experiment_id, bucket_id)])[0]

    def delete_bucket(self, experiment_id: int, bucket_id: int) -> dict[str, Any]:
        with self._tx() as db:
            row = self._bucket_row(db, experiment_id, bucket_id)
            db.execute("DELETE FROM predictions WHERE id = ?", (row["prediction_id"],))
            db.execute("DELETE FROM buckets WHERE id = ?", (bucket_id,))
        return {"id": bucket_id}

    def set_bucket_ratio(self, experiment_id: int, bucket_ratio: Any) -> list[dict[str, Any]]:
        if not isinstance(bucket_ratio, dict) or not bucket_ratio:
            raise bad_request("bucket_ratio", "must be a non-empty object {bucket id: ratio}")
        ratios: dict[int, int] = {}
        for key, value in bucket_ratio.items():
            bid = db_int(key, "bucket_ratio", f"keyed by bucket ids, got {key!r}")
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise bad_request("bucket_ratio", f"ratio of bucket {bid} must be an integer from 0 to 100")
            ratios[bid] = value
        if sum(ratios.values()) != 100:
            raise bad_request("bucket_ratio", f"ratios must sum to 100, got {sum(ratios.values())}")
        now = time.time()
        with self._tx() as db:
            self._experiment_row(db, experiment_id)
            known = {
                r["id"]
                for r in db.execute("SELECT id FROM buckets WHERE experiment_id = ?", (experiment_id,))
            }
            unknown = sorted(set(ratios) - known)
            if unknown:
                raise bad_request(
                    "bucket_ratio", f"unknown bucket id(s) {unknown} in experiment {experiment_id}"
                )
            for bid in known:
                db.execute(
                    "UPDATE buckets SET ratio = ?, updated_at = ? WHERE id = ?", (ratios.get(bid), now, bid)
                )
            rows = db.execute(
                "SELECT * FROM buckets WHERE experiment_id = ? ORDER BY id", (experiment_id,)
            ).fetchall()
            return self._buckets_out(db, rows)

    def migrate_buckets(self, model_id: Any, migration_request: Any) -> list[dict[str, Any]]:
        model_id = db_int(model_id, "model_id", "the id (integer) of the previous model")
        if not isinstance(migration_request, dict):
            raise bad_request("migration_request", "must be a JSON object")
        now = time.time()
        with self._tx() as db:
            self._model_row(db, model_id, "model_id")
            try:
                request, ml_model = self._prediction_request(db, migration_request)
            except APIError as exc:
                raise APIError(exc.status, f"migration_request.{exc.message}") from None
            rows = db.execute(
                "SELECT b.* FROM buckets b JOIN predictions p ON p.id = b.prediction_id WHERE p.ml_model = ? "
                "ORDER BY b.id",
                (model_id,),
            ).fetchall()
            for row in rows:
                db.execute(
                    "UPDATE predictions SET request = ?, ml_model = ? WHERE id = ?",
                    (_dumps(request), ml_model, row["prediction_id"]),
                )
                db.execute("UPDATE buckets SET updated_at = ? WHERE id = ?", (now, row["id"]))
            ids = [r["id"] for r in rows]
            moved = [self._one(db, "SELECT * FROM buckets WHERE id = ?", (bid,)) for bid in ids]
            return self._buckets_out(db, [r for r in moved if r is not None])
