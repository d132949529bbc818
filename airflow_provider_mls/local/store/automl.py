"""AutoML in the local MLS server's database: datasets, training, model servers and handlers."""

from __future__ import annotations

import ast
import time
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import DATASET_TYPES, ModelStatus, ModelType, ServerStatus
from airflow_provider_mls.local.errors import bad_request, conflict, not_found
from airflow_provider_mls.local.store.db import from_json, iso, non_empty_str, opt_str, to_json, where_clause
from airflow_provider_mls.local.store.models import ModelStore

if TYPE_CHECKING:
    import sqlite3


class AutoMLStore(ModelStore):
    """Datasets, and the AutoML model's training (forced through ``/local``), server and handler."""

    # ------------------------------------------------------------------ datasets
    def _dataset_out(self, row: sqlite3.Row) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "status": "READY",
            "data_type": row["data_type"],
            "setup_conf": from_json(row["setup_conf"]),
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }

    def list_datasets(self, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = where_clause({"id": id, "name": name})
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
        name = non_empty_str("name", name)
        if type not in DATASET_TYPES:
            raise bad_request("type", f"must be one of {', '.join(DATASET_TYPES)}")
        if not isinstance(base_feature_conf, dict):
            raise bad_request("base_feature_conf", "must be a JSON object")
        if not isinstance(label_data_conf, dict):
            raise bad_request("label_data_conf", "must be a JSON object")
        for key in ("source_type", "source_path"):
            if not isinstance(label_data_conf.get(key), str) or not label_data_conf[key]:
                raise bad_request(f"label_data_conf.{key}", "must be a non-empty string")
        error = opt_str("error", error)
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
                (name, type, to_json(setup_conf), now, now),
            )
            row = self._one(db, "SELECT * FROM datasets WHERE id = ?", (cur.lastrowid,))
        assert row is not None
        return self._dataset_out(row)

    def delete_dataset(self, dataset_id: int) -> dict[str, Any]:
        with self._tx() as db:
            if db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,)).rowcount == 0:
                raise not_found("dataset", dataset_id)
        return {"id": dataset_id}

    # ------------------------------------------------------------------ automl server / handler
    def _automl_row(self, db: sqlite3.Connection, model_id: int) -> sqlite3.Row:
        row = self._model_row(db, model_id)
        if row["model_type"] != ModelType.AUTOML.value:
            raise bad_request("model_type", f"model {model_id} is a manual model, not an automl model")
        return row

    @staticmethod
    def _server_status(row: sqlite3.Row, now: float) -> ServerStatus:
        status = row["server_status"]
        if status is None:
            return ServerStatus.STOPPED
        if row["server_due"] is not None and now >= row["server_due"]:
            return ServerStatus.parse(row["server_next"])
        return ServerStatus.parse(status)

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
