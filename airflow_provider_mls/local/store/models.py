"""Models and their components in the local MLS server's database (manual and AutoML models alike)."""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import MODEL_LIBS, ModelStatus, ModelType
from airflow_provider_mls.local.errors import bad_request, checked, conflict, db_int, not_found
from airflow_provider_mls.local.store.db import (
    Database,
    from_json,
    iso,
    non_empty_str,
    opt_str,
    to_json,
    where_clause,
)
from airflow_provider_mls.rules import check_component, check_meta, check_name, check_table, check_version

if TYPE_CHECKING:
    from collections.abc import Mapping

# Fields of a manual model that pass the shared shape rules (rules.py) when they are written.
_CHECKED = ("name", "version", "model_meta", "table")


class ModelStore(Database):
    """Components, and models (create, read, update, delete); AutoML training as models show it."""

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
        where, params = where_clause(
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
            name = non_empty_str("name", name)
            if old is not None and "info" not in fields_set:
                info = old["info"]
            info = opt_str("info", info)
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

    # ------------------------------------------------------------------ models
    @staticmethod
    def _training_status(row: sqlite3.Row, now: float) -> ModelStatus:
        if row["training_due"] is not None and now < row["training_due"]:
            return ModelStatus.TRAINING
        return ModelStatus.parse(row["training_result"])

    def _model_out(self, db: sqlite3.Connection, row: sqlite3.Row, now: float) -> dict[str, Any]:
        components = []
        for cid in from_json(row["components"]) or []:
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
            "model_meta": from_json(row["model_meta"]) or {},
            "model_lib": row["model_lib"],
            "features": row["features"],
            "components": components,
            "is_enabled": bool(row["is_enabled"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }
        if is_automl:
            info = dict(from_json(row["automl_model_info"]) or {})
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
        where, params = where_clause(
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
        table = opt_str("table", body.get("table"))
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
            "description": opt_str("description", body.get("description")) or "",
            "model_lib": model_lib,
            "model_data": opt_str("model_data", body.get("model_data")),
            "model_meta": to_json(model_meta),
            "features": features,
            "table_name": table,
            "components": to_json(self._resolve_components(db, body.get("components"))),
        }

    def create_model(self, body: Mapping[str, Any], user: str) -> dict[str, Any]:
        model_type = body.get("model_type")
        if model_type not in (ModelType.MANUAL.value, ModelType.AUTOML.value):
            raise bad_request("model_type", "must be one of manual, automl")
        name = checked(check_name, body.get("name"), "name")
        version = checked(check_version, body.get("version"), "version")
        creator = opt_str("creator", body.get("creator")) or user
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
                error = (from_json(ds["setup_conf"]) or {}).get("error")
                cols.update(
                    description=opt_str("description", body.get("description")) or "",
                    model_meta=to_json({}),
                    features="",
                    components=to_json([]),
                    model_lib="autogluon",
                    dataset_id=dataset_id,
                    dataset_name=ds["name"],
                    automl_model_info=to_json({"dataset_id": dataset_id, "data_type": ds["data_type"]}),
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
                "model_meta": from_json(row["model_meta"]),
                "features": row["features"],
                "table": row["table_name"],
            }
            merged = {**current, **{k: v for k, v in body.items() if k in fields_set}}
            if "components" not in fields_set:
                cids = from_json(row["components"]) or []
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
            name = non_empty_str("name", merged["name"])
            version = non_empty_str("version", merged["version"])
            if "name" in changed:
                checked(check_name, name, "name")
            if "version" in changed:
                checked(check_version, version, "version")
            cols = self._manual_fields(db, merged, changed)
            if "components" not in fields_set:
                cols["components"] = row["components"]
            cols.update(
                name=name, version=version, creator=opt_str("creator", merged["creator"]), updated_at=now
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
