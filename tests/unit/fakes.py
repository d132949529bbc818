"""Recording stand-ins for the hooks, and a task instance, for the unit layer.

Each fake answers the calls a task makes with what the real service answers (model objects as MLS
returns them, SageMaker's ``DescribeModelPackage`` shapes) and records every call, so a test can
assert exactly what the task asked of its hook. Errors are the hooks' own typed errors
(``MLSNotFoundError`` for an unknown model, ...). Nothing here does I/O.
"""

from __future__ import annotations

import copy
import uuid
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.checks import run_check
from airflow_provider_mls.exceptions import MLSConflictError, MLSNotFoundError, MLSValidationError

if TYPE_CHECKING:
    from airflow_provider_mls.checks import Check, Outcome

STAMP = "2026-12-01T10:00:00+00:00"


def manual_model(id: int, name: str = "churn", version: str = "v1", **fields: Any) -> dict[str, Any]:
    """A manual model as ``GET /api/v1/models/{id}`` returns it."""
    model: dict[str, Any] = {
        "id": id,
        "name": name,
        "version": version,
        "description": "",
        "creator": "",
        "model_type": "manual",
        "status": "NOT_IN_USE",
        "table": "",
        "model_data": f"/models/{name}/{version}/model.joblib",
        "model_meta": {},
        "model_lib": "sklearn",
        "features": "age,tenure",
        "components": [],
        "is_enabled": True,
        "created_at": STAMP,
        "updated_at": STAMP,
    }
    model.update(fields)
    return model


def automl_model(
    id: int, name: str = "churn-auto", version: str = "v1", status: str = "DONE", **fields: Any
) -> dict[str, Any]:
    """An AutoML model as ``GET /api/v1/models/{id}`` returns it."""
    model = manual_model(id, name, version, model_type="automl", status=status, model_lib="autogluon")
    model.update(
        model_data="",
        features="",
        dataset_id=5,
        dataset_name="churn-ds",
        automl_model_info={"error": "out of memory"} if status == "FAILED" else {},
    )
    model.update(fields)
    return model


def component(id: int, name: str) -> dict[str, Any]:
    return {
        "id": id,
        "name": name,
        "info": "info",
        "is_latest": True,
        "user": "ana",
        "created_at": STAMP,
        "updated_at": STAMP,
    }


def _id_of(model: Any) -> int:
    return int(model["id"]) if isinstance(model, dict) else int(model)


class Recorder:
    """``calls``: (method, args, kwargs) of every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.failures: dict[str, BaseException] = {}

    def _record(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((method, args, kwargs))
        failure = self.failures.get(method)
        if failure is not None:
            raise failure

    def fail(self, method: str, exc: BaseException) -> None:
        """Make every later call of ``method`` raise ``exc`` (after it is recorded)."""
        self.failures[method] = exc

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def called(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for name, args, kwargs in self.calls if name == method]


class FakeMLSHook(Recorder):
    """``MLSHook``'s task-facing methods over an in-memory set of models.

    ``answers``: ``path -> results`` (or an exception to raise) for ``run``, which ``run_check``
    drives with the real readiness checks of ``airflow_provider_mls.checks``: the tables' and the
    registry's readiness, the AutoML server status, a model's training status (read from
    ``models``). ``server``: model id -> the server status ``GET .../automl_model_server`` returns
    (a list is consumed one status per read; the last one stays). ``handlers``: model id -> handler.
    """

    def __init__(self, *models: dict[str, Any]) -> None:
        super().__init__()
        self.models: dict[int, dict[str, Any]] = {m["id"]: copy.deepcopy(m) for m in models}
        self.answers: dict[str, Any] = {}
        self.server: dict[int, Any] = {}
        self.handlers: dict[int, str | None] = {}
        self.buckets: list[dict[str, Any]] = []
        self.next_id = 100

    # ---- reads ----
    def _find(self, model_type: str | None, id: int | None, name: str | None, version: str | None) -> dict:
        for model in self.models.values():
            if id is not None and model["id"] != id:
                continue
            if id is None and (model["name"], model["version"]) != (name, version):
                continue
            if model_type is not None and model["model_type"] != model_type:
                continue
            return copy.deepcopy(model)
        what = f"id {id}" if id is not None else f"name {name!r} version {version!r}"
        kind = f"{model_type} model" if model_type else "model"
        raise MLSNotFoundError(f"no {kind} with {what}", code=404)

    def get_model(self, id: int) -> dict[str, Any]:
        self._record("get_model", id)
        return self._find(None, id, None, None)

    def get_manual_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        self._record("get_manual_model", id=id, name=name, version=version)
        return self._find("manual", id, name, version)

    def get_automl_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        self._record("get_automl_model", id=id, name=name, version=version)
        return self._find("automl", id, name, version)

    # ---- creates ----
    def _create(self, model: dict[str, Any], if_exists: str, **hooks: Any) -> dict[str, Any]:
        known = hooks.get("known_id")
        if known is not None and known in self.models:
            return copy.deepcopy(self.models[known])
        for existing in self.models.values():
            if (existing["name"], existing["version"]) == (model["name"], model["version"]):
                if if_exists == "fail" or existing["model_type"] != model["model_type"]:
                    raise MLSConflictError(
                        f"a model named {model['name']!r} with version {model['version']!r} exists", code=409
                    )
                if if_exists == "update":
                    existing.update({k: v for k, v in model.items() if k not in ("id", "model_type")})
                return copy.deepcopy(existing)
        if hooks.get("on_sending") is not None:
            hooks["on_sending"]()
        model["id"] = self.next_id
        self.next_id += 1
        self.models[model["id"]] = model
        if hooks.get("on_created") is not None:
            hooks["on_created"](model["id"])
        return copy.deepcopy(model)

    def create_manual_model(self, name: str, version: str, **kwargs: Any) -> dict[str, Any]:
        self._record("create_manual_model", name=name, version=version, **kwargs)
        fields = {k: v for k, v in kwargs.items() if k in MANUAL and v is not None}
        if isinstance(fields.get("features"), list):
            fields["features"] = ",".join(fields["features"])
        if "components" in fields:
            fields["components"] = [component(i + 1, c) for i, c in enumerate(fields["components"])]
        model = manual_model(0, name, version, **fields)
        hooks = {k: kwargs.get(k) for k in ("known_id", "on_sending", "on_created")}
        return self._create(model, kwargs.get("if_exists", "fail"), **hooks)

    def create_automl_model(self, name: str, version: str, description: str, **kwargs: Any) -> dict[str, Any]:
        self._record("create_automl_model", name=name, version=version, description=description, **kwargs)
        model = automl_model(0, name, version, status="TRAINING", description=description)
        model["dataset_id"] = kwargs.get("dataset_id") or 5
        hooks = {k: kwargs.get(k) for k in ("known_id", "on_sending", "on_created")}
        return self._create(model, kwargs.get("if_exists", "fail"), **hooks)

    # ---- updates ----
    def _stored(self, model: Any, manual: bool = True) -> dict[str, Any]:
        stored = self.models.get(_id_of(model))
        if stored is None:
            raise MLSNotFoundError(f"no model with id {_id_of(model)}", code=404)
        if manual and stored["model_type"] != "manual":
            raise MLSValidationError("model", f"model {stored['id']} is an automl model, not a manual one")
        return stored

    def update_manual_model(self, model: Any, **fields: Any) -> dict[str, Any]:
        self._record("update_manual_model", model, **fields)
        stored = self._stored(model)
        stored.update(fields)
        return copy.deepcopy(stored)

    def update_manual_model_meta(
        self, model: Any, model_meta: dict[str, Any], partial_update: bool = False, *, remove_keys: Any = ()
    ) -> dict[str, Any]:
        self._record(
            "update_manual_model_meta",
            model,
            model_meta,
            partial_update=partial_update,
            remove_keys=remove_keys,
        )
        stored = self._stored(model)
        meta = {**stored["model_meta"], **model_meta} if partial_update else dict(model_meta)
        for key in remove_keys:
            meta.pop(key, None)
        stored["model_meta"] = meta
        return copy.deepcopy(stored)

    def update_manual_model_components(self, model: Any, components: Any) -> dict[str, Any]:
        self._record("update_manual_model_components", model, components)
        stored = self._stored(model)
        names = [c["name"] if isinstance(c, dict) else c for c in components]
        stored["components"] = [component(i + 1, n) for i, n in enumerate(names)]
        return copy.deepcopy(stored)

    def delete_model(self, model: Any, delete_table: bool = False) -> dict[str, Any]:
        self._record("delete_model", model, delete_table=delete_table)
        stored = self._stored(model, manual=False)
        del self.models[stored["id"]]
        dropped = bool(delete_table and stored["model_type"] == "manual" and stored.get("table"))
        return {"id": stored["id"], "deleted": True, "table_dropped": dropped}

    # ---- AutoML server and handler ----
    def get_automl_model_server_status(self, model: Any) -> str:
        self._record("get_automl_model_server_status", model)
        self._stored(model, manual=False)
        return str(self._server_status(_id_of(model)))

    def _server_status(self, id: int) -> str:
        statuses = self.server.get(id, "STOPPED")
        if isinstance(statuses, list):
            return str(statuses.pop(0) if len(statuses) > 1 else statuses[0])
        return str(statuses)

    def start_automl_model_server(self, model: Any) -> Any:
        self._record("start_automl_model_server", model)
        self._stored(model, manual=False)
        if not isinstance(self.server.get(_id_of(model)), list):  # a scripted sequence goes on
            self.server[_id_of(model)] = "STARTING"
        return None

    def stop_automl_model_server(self, model: Any) -> Any:
        self._record("stop_automl_model_server", model)
        self._stored(model, manual=False)
        if not isinstance(self.server.get(_id_of(model)), list):
            self.server[_id_of(model)] = "STOPPING"
        return None

    def get_automl_model_server_handler(self, model: Any) -> str | None:
        self._record("get_automl_model_server_handler", model)
        self._stored(model, manual=False)
        return self.handlers.get(_id_of(model))

    def update_automl_model_server_handler(self, model: Any, handler: str) -> Any:
        self._record("update_automl_model_server_handler", model, handler)
        self.handlers[_id_of(model)] = handler
        return None

    # ---- buckets ----
    def migrate_buckets(self, from_model: Any, to_model: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        self._record("migrate_buckets", from_model, to_model, **kwargs)
        to_id = _id_of(to_model) if to_model is not None else None
        moved = []
        for bucket in self.buckets:
            if bucket["prediction"]["ml_model"] == _id_of(from_model):
                bucket["prediction"]["ml_model"] = to_id
                moved.append(copy.deepcopy(bucket))
        return moved

    # ---- raw calls and readiness checks ----
    def run(self, method: str, path: str, params: Any = None, **kwargs: Any) -> Any:
        self._record("run", method, path, params=params)
        if method == "GET" and path.startswith("/api/v1/models/"):
            rest = path.removeprefix("/api/v1/models/")
            id_text, _, suffix = rest.partition("/")
            if suffix == "automl_model_server":
                self._stored(int(id_text), manual=False)
                return {"status": self._server_status(int(id_text))}
            if not suffix and path not in self.answers:
                return self._find(None, int(id_text), None, None)
        answer = self.answers.get(path)
        if isinstance(answer, list) and answer and all(isinstance(a, dict | BaseException) for a in answer):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            raise AssertionError(f"the fake MLS has no answer for {method} {path}")
        return copy.deepcopy(answer)

    def run_check(self, check: Check) -> Outcome:
        self._record("run_check", check)
        return run_check(check, lambda request: self.run(request.method, request.path, params=request.params))


MANUAL = (
    "description",
    "creator",
    "model_lib",
    "model_data",
    "model_meta",
    "features",
    "table",
    "components",
)


def package(
    version: int = 3,
    group: str = "churn",
    status: str = "PendingManualApproval",
    *,
    card: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    model_data: str | None = "s3://models/churn/3/model.tar.gz",
    description: str | None = None,
) -> dict[str, Any]:
    """A model package version as SageMaker's ``DescribeModelPackage`` returns it."""
    described: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{group}/{version}",
        "ModelPackageDescription": f"{group} version {version}",
        "CreationTime": "2026-12-01T10:00:00+00:00",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1.0",
                    "ModelDataUrl": model_data,
                }
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "CreatedBy": {"UserProfileName": "ana"},
    }
    if model_data is None:
        del described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    if description is not None:
        described["ApprovalDescription"] = description
    if metadata is not None:
        described["CustomerMetadataProperties"] = metadata
    if card is not None:
        import json

        described["ModelCard"] = {"ModelCardContent": json.dumps(card), "ModelCardStatus": "Draft"}
    return described


class AwsClient:
    """What the tasks read of a hook's boto3 client: its region, a table's ARN (for lineage)."""

    meta = SimpleNamespace(region_name="us-east-1")

    def describe_table(self, TableName: str) -> dict[str, Any]:  # boto3 names it so
        return {"Table": {"TableName": TableName, "TableArn": f"{TABLE_ARN}/{TableName}"}}


TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table"


class FakeSageMakerRegistry(Recorder):
    """``SageMakerModelRegistryHook``'s task-facing methods over described versions (by ARN)."""

    def __init__(self, *versions: dict[str, Any]) -> None:
        super().__init__()
        self.versions = {v["ModelPackageArn"]: copy.deepcopy(v) for v in versions}
        self.invalid: MLSValidationError | None = None

    def get_conn(self) -> AwsClient:
        return AwsClient()

    def describe_version(
        self, arn: str | None = None, *, group: str | None = None, version: int | None = None
    ) -> dict[str, Any]:
        self._record("describe_version", arn, group=group, version=version)
        for described in self.versions.values():
            if described["ModelPackageArn"] == arn or (
                arn is None
                and (described["ModelPackageGroupName"], described["ModelPackageVersion"]) == (group, version)
            ):
                return copy.deepcopy(described)
        raise MLSNotFoundError(f"model package {arn or f'{group}/{version}'} does not exist", code=404)

    def approval(self, arn: str) -> dict[str, Any]:
        self._record("approval", arn)
        described = self._described(arn)
        return {
            "arn": described["ModelPackageArn"],
            "status": described.get("ModelApprovalStatus"),
            "description": described.get("ApprovalDescription"),
        }

    def _described(self, arn: str) -> dict[str, Any]:
        if arn not in self.versions:
            raise MLSNotFoundError(f"model package {arn} does not exist", code=404)
        return self.versions[arn]

    def list_versions(self, group: str, *, approval_status: str | None = None) -> list[dict[str, Any]]:
        self._record("list_versions", group, approval_status=approval_status)
        found = [
            {"ModelPackageArn": d["ModelPackageArn"], "ModelPackageVersion": d["ModelPackageVersion"]}
            for d in self.versions.values()
            if d["ModelPackageGroupName"] == group
            and (approval_status is None or d["ModelApprovalStatus"] == approval_status)
        ]
        return sorted(found, key=lambda d: -int(d["ModelPackageVersion"]))

    def latest_approved_version(self, group: str) -> dict[str, Any] | None:
        self._record("latest_approved_version", group)
        approved = [
            d
            for d in self.versions.values()
            if d["ModelPackageGroupName"] == group and d["ModelApprovalStatus"] == "Approved"
        ]
        return max(approved, key=lambda d: d["ModelPackageVersion"]) if approved else None

    def validate_update(self, **changes: Any) -> dict[str, Any]:
        self._record("validate_update", **changes)
        if self.invalid is not None:
            raise self.invalid
        return changes

    def update_version(self, arn: str, **changes: Any) -> dict[str, Any]:
        self._record("update_version", arn, **changes)
        described = self._described(arn)
        if changes.get("approval_status") is not None:
            described["ModelApprovalStatus"] = changes["approval_status"]
        if changes.get("approval_description") is not None:
            described["ApprovalDescription"] = changes["approval_description"]
        metadata = {
            **described.get("CustomerMetadataProperties", {}),
            **(changes.get("customer_metadata") or {}),
        }
        for key in changes.get("remove_metadata_keys") or ():
            metadata.pop(key, None)
        described["CustomerMetadataProperties"] = metadata
        return copy.deepcopy(described)


class FakeModelRegistry(Recorder):
    """``MLSModelRegistryHook``'s task-facing methods: the MLS registry bucket (``put_version`` ...)."""

    def __init__(self, bucket: str = "mls-model-registry-stg") -> None:
        super().__init__()
        self.bucket = bucket
        self.files: dict[tuple[str, str], dict[str, str | None]] = {}

    def get_conn(self) -> AwsClient:
        return AwsClient()

    def put_version(self, name: str, version: str, model: Any, **kwargs: Any) -> dict[str, Any]:
        self._record("put_version", name, version, model, **kwargs)
        if (name, version) in self.files and not kwargs.get("overwrite"):
            raise MLSConflictError(f"version: {name}/{version} exists; pass overwrite=True", code=409)
        writer = kwargs.get("writer")
        self.files[(name, version)] = {"model.joblib": writer, "model.json": writer}
        features = kwargs.get("features")
        features = (
            [f.strip() for f in features.split(",")] if isinstance(features, str) else list(features or [])
        )
        meta = {
            "name": name,
            "version": version,
            "model_lib": kwargs.get("model_lib"),
            "model_lib_version": kwargs.get("model_lib_version"),
            "model_data": f"/models/{name}/{version}/model.joblib",
            "features": features,
            **(kwargs.get("extra") or {}),
        }
        return {
            "bucket": self.bucket,
            "model_uri": f"s3://{self.bucket}/{name}/{version}/model.joblib",
            "meta_uri": f"s3://{self.bucket}/{name}/{version}/model.json",
            "model_data": meta["model_data"],
            "model_meta": meta,
            "size": len(model) if isinstance(model, bytes) else 11,
        }

    def version_exists(self, name: str, version: str) -> bool:
        self._record("version_exists", name, version)
        return (name, version) in self.files

    def writers(self, name: str, version: str) -> dict[str, str | None]:
        self._record("writers", name, version)
        return dict(self.files.get((name, version), {}))


class FakeTables(Recorder):
    """``PredictionTableHook``'s task-facing methods; loads consume the rows and count them."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def get_conn(self) -> AwsClient:
        return AwsClient()

    def create_table(self, table: str, **kwargs: Any) -> dict[str, Any]:
        self._record("create_table", table, **kwargs)
        arn = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
        return {"table": table, "arn": arn, "status": "ACTIVE", "created": True}

    def load_rows(self, table: str, rows: Any, **kwargs: Any) -> int:
        rows = list(rows)
        self._record("load_rows", table, rows, **kwargs)
        self.rows.setdefault(table, []).extend(rows)
        if kwargs.get("on_committed") is not None:
            kwargs["on_committed"](len(rows))
        return len(rows)

    def load_file(self, table: str, path: str, **kwargs: Any) -> int:
        self._record("load_file", table, path, **kwargs)
        with open(path, encoding="utf-8") as handle:
            count = max(0, len(handle.read().strip().splitlines()) - 1)
        return count

    def drop_table(self, table: str, *, ignore_missing: bool = False, wait: bool = True) -> bool:
        self._record("drop_table", table, ignore_missing=ignore_missing)
        if table in self.rows:
            del self.rows[table]
            return True
        if ignore_missing:
            return False
        raise MLSNotFoundError(f"table {table!r} does not exist", code=404)


class FakeTI:
    """A task instance: identity, try number, and the XComs pushed (links included)."""

    def __init__(self, try_number: int = 1, task_id: str = "t") -> None:
        self.id = uuid.uuid4()
        self.dag_id, self.run_id, self.task_id, self.map_index = "unit", "manual__1", task_id, -1
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class FakeStore:
    """Airflow 3.3's task state store of one task instance (JSON values by key), kept across tries."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.broken: set[str] = set()

    def get(self, key: str) -> Any:
        if "get" in self.broken:
            raise RuntimeError("the task state store is unreachable")
        return copy.deepcopy(self.values.get(key))

    def set(self, key: str, value: Any) -> None:
        if "set" in self.broken:
            raise RuntimeError("the task state store is unreachable")
        self.values[key] = copy.deepcopy(value)

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def context(
    op: Any = None, *, try_number: int = 1, store: FakeStore | None = None, **extra: Any
) -> dict[str, Any]:
    """A task's context: ``ti`` (a ``FakeTI``), the task, and the task state store when given."""
    ti = FakeTI(try_number, getattr(op, "task_id", "t"))
    ctx: dict[str, Any] = {"ti": ti, "task_instance": ti, **extra}
    if op is not None:
        ctx["task"] = op
    if store is not None:
        ctx["task_state_store"] = store
    return ctx
