"""Pydantic request/response models of the local MLS server (they make its OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_mls.constants import DATASET_TYPES, MODEL_LIBS, PREDICTION_TYPES, ServerStatus
from airflow_provider_mls.local.errors import SQLITE_INT_MAX, SQLITE_INT_MIN

T = TypeVar("T")

# An id as the server stores it (see errors.SQLITE_INT_MAX).
DbId = Annotated[int, Field(ge=SQLITE_INT_MIN, le=SQLITE_INT_MAX)]


# The store enforces these rules (with messages that name the field); the schema states them.
def _enum(values: tuple[str, ...] | list[str], nullable: bool = False) -> dict[str, Any]:
    return {"enum": [*values, None] if nullable else list(values)}


_NON_EMPTY: dict[str, Any] = {"minLength": 1}


class _Body(BaseModel):
    # A key the reference client never sends (e.g. ``id``/``status`` of a model sent back as read)
    # is refused (400 naming it): the real service is not promised to ignore it.
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class _LocalBody(BaseModel):
    """A body of the local-only ``/local/...`` endpoints."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class _Out(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


# ---------------------------------------------------------------------------- envelope
class Envelope(BaseModel, Generic[T]):
    """Every answer: ``code`` is HTTP-like (200 on success), ``error`` is null on success."""

    code: int = 200
    error: str | None = None
    results: T


class ErrorEnvelope(BaseModel):
    code: int = Field(examples=[400])
    error: str = Field(examples=["name: must be a non-empty string"])
    results: None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorEnvelope, "description": "Bad input; `error` names the field"},
    401: {"model": ErrorEnvelope, "description": "Missing or wrong Basic auth"},
    404: {"model": ErrorEnvelope, "description": "Unknown id or path"},
    409: {"model": ErrorEnvelope, "description": "Conflict (e.g. (name, version) exists)"},
    500: {"model": ErrorEnvelope, "description": "Unexpected server error"},
}


# ---------------------------------------------------------------------------- results
class IdResult(_Out):
    id: int


class ComponentOut(_Out):
    id: int
    name: str
    info: str | None
    is_latest: bool
    user: str | None
    created_at: str
    updated_at: str


class ModelOut(_Out):
    id: int
    name: str
    version: str
    description: str | None
    creator: str | None
    model_type: str
    status: str
    table: str | None
    model_data: str | None
    model_meta: dict[str, Any]
    model_lib: str | None
    features: str | None
    components: list[ComponentOut]
    is_enabled: bool
    created_at: str
    updated_at: str
    # AutoML models only (absent from manual models)
    dataset_id: DbId | None = None
    dataset_name: str | None = None
    automl_model_info: dict[str, Any] | None = None


# What a list item of GET /api/v1/models always carries; with --lean-lists, nothing more.
MODEL_LIST_ITEM_FIELDS = ("id", "name", "version", "model_type")
COMPONENT_LIST_ITEM_FIELDS = ("id", "name")


class ModelListItem(_Out):
    """A list item: only ``MODEL_LIST_ITEM_FIELDS`` are promised (the reference client reads the
    model by id); by default the local server sends the whole model, with ``--lean-lists`` only those."""

    id: int
    name: str
    version: str
    model_type: str
    description: str | None = None
    creator: str | None = None
    status: str | None = None
    table: str | None = None
    model_data: str | None = None
    model_meta: dict[str, Any] | None = None
    model_lib: str | None = None
    features: str | None = None
    components: list[ComponentOut] | None = None
    is_enabled: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None
    dataset_id: DbId | None = None
    dataset_name: str | None = None
    automl_model_info: dict[str, Any] | None = None


class ComponentListItem(_Out):
    """A list item: only ``COMPONENT_LIST_ITEM_FIELDS`` are promised (see ``ModelListItem``)."""

    id: int
    name: str
    info: str | None = None
    is_latest: bool | None = None
    user: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class ServerStatusOut(_Out):
    status: str = Field(description="STARTING | RUNNING | STOPPING | STOPPED | FAILED | UNKNOWN")


class HandlerOut(_Out):
    handler: str | None


class IsActiveOut(_Out):
    is_active: bool


class IsLoadingOut(_Out):
    is_loading: bool


class TableOut(_Out):
    table: str


class ArtifactInfoOut(_Out):
    info: dict[str, Any] | None


class LabelDataConf(_Out):
    model_config = ConfigDict(extra="allow")
    source_type: str
    source_path: str


class SetupConf(_Out):
    """Also ``error`` (string) when the dataset was created with one (local server: makes trainings fail)."""

    model_config = ConfigDict(extra="allow")
    base_feature_conf: dict[str, Any]
    label_data_conf: LabelDataConf


class DatasetOut(_Out):
    id: int
    name: str
    status: str
    data_type: str
    setup_conf: SetupConf
    created_at: str
    updated_at: str


class ExperimentOut(_Out):
    id: int
    name: str
    description: str | None
    bucketing_seed: str | int | None
    user: str | None
    channels: list[Any]
    model_filter: dict[str, Any] | None
    created_at: str
    updated_at: str


class PredictionOut(_Out):
    id: int
    request: dict[str, Any] = Field(
        description='{"type": ..., "<x>_model_id": id} or {"type": "static", "static_value": {...}}'
    )
    ml_model: int | None


class BucketOut(_Out):
    id: int
    name: str
    description: str | None
    bucket_range: list[int] | None = Field(
        description="[first, last] slot (inclusive) out of 0..99, null without ratio"
    )
    ratio: int | None
    prediction: PredictionOut
    created_at: str
    updated_at: str


class HealthOut(_Out):
    status: str


# ---------------------------------------------------------------------------- request bodies
class ModelCreate(_Body):
    """Manual: everything but ``dataset_id``; AutoML: ``name, version, description, dataset_id``.

    A key is sent with a value or left out: ``null`` is refused (400 naming the key)."""

    model_type: str = Field(description="manual | automl", json_schema_extra=_enum(["manual", "automl"]))
    name: str = Field(json_schema_extra=_NON_EMPTY)
    version: str = Field(json_schema_extra=_NON_EMPTY)
    description: str | None = None
    creator: str | None = None
    model_lib: str | None = Field(
        default=None,
        description="sklearn | xgboost | lightgbm | catboost | rule | autogluon | etc",
        json_schema_extra=_enum(MODEL_LIBS, nullable=True),
    )
    model_data: str | None = None
    model_meta: dict[str, Any] | None = None
    features: str | None = Field(default=None, description="comma-separated feature names")
    table: str | None = None
    components: list[str] | None = Field(default=None, description="component names")
    dataset_id: DbId | None = Field(default=None, description="automl only: the dataset to train from")


class ModelUpdate(_Body):
    """The whole manual model; fields that are missing keep their value, ``""`` clears a string
    field, ``null`` is refused (400 naming the key)."""

    model_type: str | None = Field(
        default=None, description="must be manual", json_schema_extra=_enum(["manual"], nullable=True)
    )
    name: str | None = Field(default=None, json_schema_extra=_NON_EMPTY)
    version: str | None = Field(default=None, json_schema_extra=_NON_EMPTY)
    description: str | None = None
    creator: str | None = None
    model_lib: str | None = Field(default=None, json_schema_extra=_enum(MODEL_LIBS, nullable=True))
    model_data: str | None = None
    model_meta: dict[str, Any] | None = None
    features: str | None = None
    table: str | None = None
    components: list[str] | None = Field(default=None, description="component names")


class HandlerBody(_Body):
    handler: str = Field(description="Python source; must parse")


class ComponentBody(_Body):
    name: str = Field(json_schema_extra=_NON_EMPTY)
    info: str | None = None
    is_latest: bool | None = None


class DatasetBody(_Body):
    name: str = Field(json_schema_extra=_NON_EMPTY)
    type: str = Field(
        description="score | classification | regression", json_schema_extra=_enum(DATASET_TYPES)
    )
    base_feature_conf: dict[str, Any]
    label_data_conf: dict[str, Any] = Field(
        description='{"source_type": ..., "source_path": ...}',
        json_schema_extra={
            "required": ["source_type", "source_path"],
            "properties": {
                "source_type": {"type": "string", **_NON_EMPTY},
                "source_path": {"type": "string", **_NON_EMPTY},
            },
        },
    )
    error: str | None = Field(
        default=None,
        description="local server only: every AutoML model trained from this dataset ends FAILED with it",
    )


class ExperimentBody(_Body):
    name: str = Field(json_schema_extra=_NON_EMPTY)
    bucketing_seed: str | int | None = None
    description: str | None = None
    model_filter_id: DbId | None = None


class BucketRatioBody(_Body):
    bucket_ratio: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(
        description="{bucket id: ratio}; ratios sum to 100", json_schema_extra={"minProperties": 1}
    )


class MigrationRequest(_Body):
    """What a bucket serves: the prediction type and the model (or static value) behind it."""

    prediction_type: str = Field(
        description="online | batch | automl | static | empty", json_schema_extra=_enum(PREDICTION_TYPES)
    )
    online_model_id: DbId | None = None
    batch_model_id: DbId | None = None
    automl_model_id: DbId | None = None
    static_value: dict[str, Any] | None = None


class BucketBody(MigrationRequest):
    name: str = Field(json_schema_extra=_NON_EMPTY)
    description: str | None = None


class BucketMigrationBody(_Body):
    model_id: DbId
    migration_request: MigrationRequest


# ---------------------------------------------------------------------------- /local bodies
class TrainingBody(_LocalBody):
    status: str = Field(description="DONE | FAILED", json_schema_extra=_enum(["DONE", "FAILED"]))
    error: str | None = None


class ServerForceBody(_LocalBody):
    status: str | None = Field(
        default=None,
        description="any ServerStatus, set immediately",
        json_schema_extra=_enum([s.value for s in ServerStatus], nullable=True),
    )
    fail_next_start: bool | None = Field(
        default=None, description="the next start ends FAILED instead of RUNNING"
    )


class ServerForceOut(_Out):
    status: str
    fail_next_start: bool


class TableBody(_LocalBody):
    is_active: bool | None = None
    is_loading: bool | None = None


class TableStateOut(_Out):
    table: str
    is_active: bool
    is_loading: bool


class ArtifactBody(_LocalBody):
    info: dict[str, Any] | None = None


class FaultBody(_LocalBody):
    method: str = Field(default="*", description="HTTP method or *")
    path: str = Field(default="/", description="path prefix, e.g. /api/v1/models")
    status: int | None = Field(default=503, description="null: serve normally (after `delay`)")
    count: int = Field(default=1, ge=1)
    body: str | None = Field(default=None, description="default: a small HTML error page")
    content_type: str = "text/html"
    retry_after: float | None = None
    delay: float = Field(default=0.0, ge=0)
    after: bool = Field(default=False, description="process (commit) the request, then answer with the fault")


class FaultOut(FaultBody):
    id: int
