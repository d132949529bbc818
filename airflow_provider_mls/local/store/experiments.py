"""Experiments, their buckets and the buckets' predictions in the local MLS server's database."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import PREDICTION_MODEL_KEYS, PREDICTION_TYPES, ModelType
from airflow_provider_mls.local.errors import APIError, bad_request, db_int, not_found
from airflow_provider_mls.local.store.db import from_json, iso, non_empty_str, opt_str, to_json, where_clause
from airflow_provider_mls.local.store.models import ModelStore

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping, Sequence


class ExperimentStore(ModelStore):
    """Experiments, buckets (ratios, predictions) and the migration of buckets from one model to another."""

    # ------------------------------------------------------------------ experiments
    def _experiment_out(self, row: sqlite3.Row) -> dict[str, Any]:
        mf = row["model_filter_id"]
        return {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "bucketing_seed": from_json(row["bucketing_seed"]),
            "user": row["user"],
            "channels": [],
            "model_filter": None if mf is None else {"id": mf},
            "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]),
        }

    def list_experiments(self, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = where_clause({"id": id, "name": name})
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
                    "bucketing_seed": from_json(old["bucketing_seed"]),
                    "model_filter_id": old["model_filter_id"],
                }
            values.update(
                {
                    k: body.get(k)
                    for k in ("name", "description", "bucketing_seed", "model_filter_id")
                    if k in fields_set or old is None
                }
            )
            name = non_empty_str("name", values["name"])
            seed = values["bucketing_seed"]
            if seed is None or isinstance(seed, bool) or not isinstance(seed, str | int):
                raise bad_request("bucketing_seed", "must be a string or an integer")
            description = opt_str("description", values["description"]) or ""
            mf = values["model_filter_id"]
            if mf is not None:
                mf = db_int(mf, "model_filter_id", "an integer or null")
            if old is None:
                cur = db.execute(
                    "INSERT INTO experiments (name, description, bucketing_seed, user, model_filter_id, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (name, description, to_json(seed), user, mf, now, now),
                )
                experiment_id = int(cur.lastrowid or 0)
            else:
                db.execute(
                    "UPDATE experiments SET name = ?, description = ?, bucketing_seed = ?, model_filter_id = ?, "
                    "updated_at = ? WHERE id = ?",
                    (name, description, to_json(seed), mf, now, experiment_id),
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
                        "request": from_json(pred["request"]) if pred else {"type": "empty"},
                        "ml_model": pred["ml_model"] if pred else None,
                    },
                    "created_at": iso(row["created_at"]),
                    "updated_at": iso(row["updated_at"]),
                }
            )
        return out

    def list_buckets(self, experiment_id: int, *, id: int | None, name: str | None) -> list[dict[str, Any]]:
        where, params = where_clause({"experiment_id": experiment_id, "id": id, "name": name})
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
            name = non_empty_str("name", name)
            description = (
                body.get("description") if old is None or "description" in fields_set else old["description"]
            )
            description = opt_str("description", description) or ""
            if old is None or "prediction_type" in fields_set:
                request, ml_model = self._prediction_request(db, body)
            if old is None:
                pcur = db.execute(
                    "INSERT INTO predictions (request, ml_model) VALUES (?, ?)", (to_json(request), ml_model)
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
                        (to_json(request), ml_model, old["prediction_id"]),
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
                    (to_json(request), ml_model, row["prediction_id"]),
                )
                db.execute("UPDATE buckets SET updated_at = ? WHERE id = ?", (now, row["id"]))
            ids = [r["id"] for r in rows]
            moved = [self._one(db, "SELECT * FROM buckets WHERE id = ?", (bid,)) for bid in ids]
            return self._buckets_out(db, [r for r in moved if r is not None])
