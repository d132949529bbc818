"""FastAPI app of the local MLS server: the protocol of ``docs/mls-api.md`` plus ``/local/...`` knobs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_mls import __version__
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.local.errors import SQLITE_INT_MAX, SQLITE_INT_MIN, APIError, bad_request, checked
from airflow_provider_mls.local.middleware import FaultRegistry, LocalMiddleware
from airflow_provider_mls.local.schemas import (
    COMPONENT_LIST_ITEM_FIELDS,
    ERROR_RESPONSES,
    MODEL_LIST_ITEM_FIELDS,
    ArtifactBody,
    ArtifactInfoOut,
    BucketBody,
    BucketMigrationBody,
    BucketOut,
    BucketRatioBody,
    ComponentBody,
    ComponentListItem,
    ComponentOut,
    DatasetBody,
    DatasetOut,
    Envelope,
    ExperimentBody,
    ExperimentOut,
    FaultBody,
    FaultOut,
    HandlerBody,
    HandlerOut,
    HealthOut,
    IdResult,
    IsActiveOut,
    IsLoadingOut,
    ModelCreate,
    ModelListItem,
    ModelOut,
    ModelUpdate,
    ServerForceBody,
    ServerForceOut,
    ServerStatusOut,
    TableBody,
    TableOut,
    TableStateOut,
    TrainingBody,
)
from airflow_provider_mls.local.store import Store
from airflow_provider_mls.rules import check_name, check_table, check_version

_HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})

# Ids are SQLite integers: outside that range a request is bad input (400), inside it unknown is 404.
PathId = Annotated[int, Path(ge=SQLITE_INT_MIN, le=SQLITE_INT_MAX)]
QueryId = Annotated[int | None, Query(ge=SQLITE_INT_MIN, le=SQLITE_INT_MAX)]

if TYPE_CHECKING:
    import re

    from pydantic import BaseModel

    from airflow_provider_mls.local.settings import Settings

log = logging.getLogger("airflow_provider_mls.local")

_basic = HTTPBasic(auto_error=False, description="username/password given to mls-local")
_AUTH = [Security(_basic)]  # documents the scheme; LocalMiddleware enforces it on /api and /local


def _ok(results: Any) -> dict[str, Any]:
    return {"code": 200, "error": None, "results": results}


def _no_nulls(body: BaseModel) -> None:
    """A model body key is sent with a value or left out (as the reference client does): ``null`` is a 400."""
    for field in sorted(body.model_fields_set):
        if getattr(body, field) is None:
            raise bad_request(
                field, 'null is not accepted; leave the key out (a string field is cleared with "")'
            )


def _query_bool(value: str | None, field: str) -> bool | None:
    """A query boolean as ``requests`` (the reference client) writes it: ``True`` or ``False``."""
    if value is None:
        return None
    if value not in ("True", "False"):
        raise bad_request(field, f"must be True or False (as requests writes a boolean), got {value!r}")
    return value == "True"


def _lean(items: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{k: item[k] for k in fields if k in item} for item in items]


def _user(request: Request) -> str:
    return str(getattr(request.state, "user", ""))


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"code": status, "error": message, "results": None}, status_code=status, headers=headers
    )


def _validation_message(exc: RequestValidationError) -> str:
    messages = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        # drop list indexes and union-branch names (e.g. "str", "list[str]") after the field name
        field = loc[0] if loc else "body"
        if len(loc) > 1 and loc[0] in ("label_data_conf", "migration_request") and not loc[1].isdigit():
            field = f"{loc[0]}.{loc[1]}"
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            messages.append(f"{'.'.join(loc) or field}: unknown key; MLS does not take it")
            continue
        if field == "body" and kind in ("model_attributes_type", "dict_type", "missing"):
            msg = "must be a JSON object"
        elif kind == "json_invalid":
            field, msg = "body", "is not valid JSON"
        else:
            msg = err.get("msg", "invalid")
        messages.append(f"{field}: {msg}")
    return "; ".join(dict.fromkeys(messages)) or "body: invalid request"


class _NoAWS:
    """Readiness without an AWS endpoint: every call is a 500 that says what is missing."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise APIError(
                500, "aws: the local server runs without an AWS endpoint (start it with mls-local)"
            )

        return fail


def _aws_backend(settings: Settings) -> Any:
    if settings.aws_endpoint_url is None:
        return _NoAWS()
    from airflow_provider_mls.local.aws_backend import AWSBackend

    return AWSBackend(
        settings.aws_endpoint_url,
        region=settings.aws_region,
        registry_bucket=settings.registry_bucket,
        test_credentials=settings.aws_test_credentials,
    )


def create_app(settings: Settings) -> FastAPI:
    store = Store(settings)
    aws = _aws_backend(settings)
    faults = FaultRegistry()
    app = FastAPI(
        title="MLS local server",
        version=__version__,
        description="Local implementation of the MLS REST API (docs/mls-api.md) with /local/... simulation knobs.",
        redirect_slashes=False,
        responses=ERROR_RESPONSES,
    )
    app.state.store = store
    app.state.aws = aws
    app.state.faults = faults
    app.state.settings = settings

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method not allowed: {request.method} {request.url.path}"
            headers = dict(exc.headers or {})
            headers["Allow"] = ", ".join(_allowed_methods(request))
            return _error(405, message, headers)
        else:
            message = str(exc.detail)
        return _error(exc.status_code, message, dict(exc.headers or {}))

    allow_index: list[tuple[re.Pattern[str], frozenset[str]]] = []

    def _allowed_methods(request: Request) -> list[str]:
        """Every method the OpenAPI document lists for this path (Starlette names only one route's)."""
        if not allow_index:
            from starlette.routing import compile_path

            for template, operations in app.openapi().get("paths", {}).items():
                methods = frozenset(m.upper() for m in operations if m.upper() in _HTTP_METHODS)
                allow_index.append((compile_path(template)[0], methods))
        allowed: set[str] = set()
        for pattern, methods in allow_index:
            if pattern.match(request.url.path):
                allowed |= methods
        return sorted(allowed)

    api = APIRouter(prefix="/api/v1", dependencies=_AUTH)

    # ------------------------------------------------------------------ models
    lean_lists = settings.lean_lists

    @api.get(
        "/models",
        tags=["models"],
        response_model=Envelope[list[ModelListItem]],
        response_model_exclude_unset=True,
        description="List items promise only " + ", ".join(MODEL_LIST_ITEM_FIELDS) + "; read a model by id.",
    )
    def list_models(
        model_type: str | None = Query(default=None, json_schema_extra={"enum": ["manual", "automl"]}),
        id: QueryId = None,
        name: str | None = None,
        version: str | None = None,
        query: str | None = Query(
            default=None, description="case-insensitive substring of name or description"
        ),
        page: int = Query(default=1, ge=1, le=SQLITE_INT_MAX, description="1-based"),
    ) -> dict[str, Any]:
        if model_type is not None and model_type not in (ModelType.MANUAL.value, ModelType.AUTOML.value):
            raise bad_request("model_type", "must be one of manual, automl")
        models = store.list_models(
            model_type=model_type, id=id, name=name, version=version, query=query, page=page
        )
        return _ok(_lean(models, MODEL_LIST_ITEM_FIELDS) if lean_lists else models)

    @api.post("/models", tags=["models"], response_model=Envelope[IdResult])
    def create_model(body: ModelCreate, request: Request) -> dict[str, Any]:
        _no_nulls(body)
        return _ok(store.create_model(body.model_dump(exclude_unset=True), _user(request)))

    @api.get(
        "/models/{model_id}",
        tags=["models"],
        response_model=Envelope[ModelOut],
        response_model_exclude_unset=True,
    )
    def get_model(model_id: PathId) -> dict[str, Any]:
        return _ok(store.get_model(model_id))

    @api.put("/models/{model_id}", tags=["models"], response_model=Envelope[IdResult])
    def update_model(model_id: PathId, body: ModelUpdate) -> dict[str, Any]:
        _no_nulls(body)
        fields = set(body.model_fields_set)
        return _ok(store.update_model(model_id, body.model_dump(include=fields), fields))

    @api.delete("/models/{model_id}", tags=["models"], response_model=Envelope[IdResult])
    def delete_model(model_id: PathId) -> dict[str, Any]:
        return _ok(store.delete_model(model_id))

    @api.get(
        "/models/{model_id}/automl_model_server", tags=["automl"], response_model=Envelope[ServerStatusOut]
    )
    def get_server(model_id: PathId) -> dict[str, Any]:
        return _ok(store.server_status(model_id))

    @api.post(
        "/models/{model_id}/automl_model_server", tags=["automl"], response_model=Envelope[ServerStatusOut]
    )
    def start_server(model_id: PathId) -> dict[str, Any]:
        return _ok(store.start_server(model_id))

    @api.delete(
        "/models/{model_id}/automl_model_server", tags=["automl"], response_model=Envelope[ServerStatusOut]
    )
    def stop_server(model_id: PathId) -> dict[str, Any]:
        return _ok(store.stop_server(model_id))

    @api.get(
        "/models/{model_id}/automl_online_prediction", tags=["automl"], response_model=Envelope[HandlerOut]
    )
    def get_handler(model_id: PathId) -> dict[str, Any]:
        return _ok(store.get_handler(model_id))

    @api.post(
        "/models/{model_id}/automl_online_prediction", tags=["automl"], response_model=Envelope[HandlerOut]
    )
    def set_handler(model_id: PathId, body: HandlerBody) -> dict[str, Any]:
        return _ok(store.set_handler(model_id, body.handler))

    # ------------------------------------------------------------------ readiness
    @api.get("/dynamodb/tables/{table}/is_active", tags=["readiness"], response_model=Envelope[IsActiveOut])
    def table_is_active(table: str) -> dict[str, Any]:
        checked(check_table, table, "table")
        return _ok({"is_active": aws.table_state(table)["is_active"]})

    @api.get("/dynamodb/tables/{table}/is_loading", tags=["readiness"], response_model=Envelope[IsLoadingOut])
    def table_is_loading(table: str) -> dict[str, Any]:
        checked(check_table, table, "table")
        return _ok({"is_loading": aws.table_state(table)["is_loading"]})

    @api.delete("/dynamodb/tables/{table}", tags=["readiness"], response_model=Envelope[TableOut])
    def drop_table(table: str) -> dict[str, Any]:
        checked(check_table, table, "table")
        return _ok(aws.drop_table(table))

    @api.get("/model_registry/artifacts/info", tags=["readiness"], response_model=Envelope[ArtifactInfoOut])
    def artifact_info(model_name: str, model_version: str) -> dict[str, Any]:
        checked(check_name, model_name, "model_name")
        checked(check_version, model_version, "model_version")
        return _ok(aws.artifact_info(model_name, model_version))

    # ------------------------------------------------------------------ components
    @api.get(
        "/components",
        tags=["components"],
        response_model=Envelope[list[ComponentListItem]],
        response_model_exclude_unset=True,
        description="List items promise only " + ", ".join(COMPONENT_LIST_ITEM_FIELDS) + "; read one by id.",
    )
    def list_components(
        id: QueryId = None,
        name: str | None = None,
        info: str | None = None,
        is_latest: str | None = Query(default=None, json_schema_extra={"enum": ["True", "False"]}),
    ) -> dict[str, Any]:
        found = store.list_components(
            id=id, name=name, info=info, is_latest=_query_bool(is_latest, "is_latest")
        )
        return _ok(_lean(found, COMPONENT_LIST_ITEM_FIELDS) if lean_lists else found)

    @api.get("/components/{component_id}", tags=["components"], response_model=Envelope[ComponentOut])
    def get_component(component_id: PathId) -> dict[str, Any]:
        return _ok(store.get_component(component_id))

    @api.post("/components", tags=["components"], response_model=Envelope[ComponentOut])
    def create_component(body: ComponentBody, request: Request) -> dict[str, Any]:
        return _ok(
            store.save_component(
                None,
                name=body.name,
                info=body.info,
                is_latest=body.is_latest,
                user=_user(request),
                fields_set=set(body.model_fields_set),
            )
        )

    @api.put("/components/{component_id}", tags=["components"], response_model=Envelope[ComponentOut])
    def update_component(component_id: PathId, body: ComponentBody, request: Request) -> dict[str, Any]:
        return _ok(
            store.save_component(
                component_id,
                name=body.name,
                info=body.info,
                is_latest=body.is_latest,
                user=_user(request),
                fields_set=set(body.model_fields_set),
            )
        )

    @api.delete("/components/{component_id}", tags=["components"], response_model=Envelope[IdResult])
    def delete_component(component_id: PathId) -> dict[str, Any]:
        return _ok(store.delete_component(component_id))

    # ------------------------------------------------------------------ datasets
    @api.get("/datasets", tags=["datasets"], response_model=Envelope[list[DatasetOut]])
    def list_datasets(id: QueryId = None, name: str | None = None) -> dict[str, Any]:
        return _ok(store.list_datasets(id=id, name=name))

    @api.get("/datasets/{dataset_id}", tags=["datasets"], response_model=Envelope[DatasetOut])
    def get_dataset(dataset_id: PathId) -> dict[str, Any]:
        return _ok(store.get_dataset(dataset_id))

    @api.post("/datasets", tags=["datasets"], response_model=Envelope[DatasetOut])
    def create_dataset(body: DatasetBody) -> dict[str, Any]:
        return _ok(
            store.create_dataset(
                name=body.name,
                type=body.type,
                base_feature_conf=body.base_feature_conf,
                label_data_conf=body.label_data_conf,
                error=body.error,
            )
        )

    @api.delete("/datasets/{dataset_id}", tags=["datasets"], response_model=Envelope[IdResult])
    def delete_dataset(dataset_id: PathId) -> dict[str, Any]:
        return _ok(store.delete_dataset(dataset_id))

    # ------------------------------------------------------------------ experiments & buckets
    @api.get("/experiments", tags=["experiments"], response_model=Envelope[list[ExperimentOut]])
    def list_experiments(id: QueryId = None, name: str | None = None) -> dict[str, Any]:
        return _ok(store.list_experiments(id=id, name=name))

    @api.get("/experiments/{experiment_id}", tags=["experiments"], response_model=Envelope[ExperimentOut])
    def get_experiment(experiment_id: PathId) -> dict[str, Any]:
        return _ok(store.get_experiment(experiment_id))

    @api.post("/experiments", tags=["experiments"], response_model=Envelope[ExperimentOut])
    def create_experiment(body: ExperimentBody, request: Request) -> dict[str, Any]:
        return _ok(store.save_experiment(None, body.model_dump(), set(body.model_fields_set), _user(request)))

    @api.put("/experiments/{experiment_id}", tags=["experiments"], response_model=Envelope[ExperimentOut])
    def update_experiment(experiment_id: PathId, body: ExperimentBody, request: Request) -> dict[str, Any]:
        return _ok(
            store.save_experiment(
                experiment_id, body.model_dump(), set(body.model_fields_set), _user(request)
            )
        )

    @api.delete("/experiments/{experiment_id}", tags=["experiments"], response_model=Envelope[IdResult])
    def delete_experiment(experiment_id: PathId) -> dict[str, Any]:
        return _ok(store.delete_experiment(experiment_id))

    @api.get(
        "/experiments/{experiment_id}/buckets", tags=["experiments"], response_model=Envelope[list[BucketOut]]
    )
    def list_buckets(experiment_id: PathId, id: QueryId = None, name: str | None = None) -> dict[str, Any]:
        return _ok(store.list_buckets(experiment_id, id=id, name=name))

    @api.get(
        "/experiments/{experiment_id}/buckets/{bucket_id}",
        tags=["experiments"],
        response_model=Envelope[BucketOut],
    )
    def get_bucket(experiment_id: PathId, bucket_id: PathId) -> dict[str, Any]:
        return _ok(store.get_bucket(experiment_id, bucket_id))

    @api.post(
        "/experiments/{experiment_id}/buckets", tags=["experiments"], response_model=Envelope[BucketOut]
    )
    def create_bucket(experiment_id: PathId, body: BucketBody) -> dict[str, Any]:
        return _ok(store.save_bucket(experiment_id, None, body.model_dump(), set(body.model_fields_set)))

    @api.put(
        "/experiments/{experiment_id}/buckets/{bucket_id}",
        tags=["experiments"],
        response_model=Envelope[BucketOut],
    )
    def update_bucket(experiment_id: PathId, bucket_id: PathId, body: BucketBody) -> dict[str, Any]:
        return _ok(store.save_bucket(experiment_id, bucket_id, body.model_dump(), set(body.model_fields_set)))

    @api.delete(
        "/experiments/{experiment_id}/buckets/{bucket_id}",
        tags=["experiments"],
        response_model=Envelope[IdResult],
    )
    def delete_bucket(experiment_id: PathId, bucket_id: PathId) -> dict[str, Any]:
        return _ok(store.delete_bucket(experiment_id, bucket_id))

    @api.put(
        "/experiments/{experiment_id}/bucket_ratio",
        tags=["experiments"],
        response_model=Envelope[list[BucketOut]],
    )
    def set_bucket_ratio(experiment_id: PathId, body: BucketRatioBody) -> dict[str, Any]:
        return _ok(store.set_bucket_ratio(experiment_id, body.bucket_ratio))

    @api.post("/bucket_migrations", tags=["experiments"], response_model=Envelope[list[BucketOut]])
    def migrate_buckets(body: BucketMigrationBody) -> dict[str, Any]:
        return _ok(store.migrate_buckets(body.model_id, body.migration_request.model_dump()))

    # ------------------------------------------------------------------ /local: simulation knobs
    local = APIRouter(prefix="/local", tags=["local"])

    @local.get("/health", response_model=Envelope[HealthOut])
    def health() -> dict[str, Any]:
        return _ok({"status": "ok"})

    @local.post(
        "/models/{model_id}/training",
        response_model=Envelope[ModelOut],
        dependencies=_AUTH,
        response_model_exclude_unset=True,
    )
    def force_training(model_id: PathId, body: TrainingBody) -> dict[str, Any]:
        return _ok(store.force_training(model_id, body.status.upper(), body.error))

    @local.post(
        "/models/{model_id}/automl_model_server", response_model=Envelope[ServerForceOut], dependencies=_AUTH
    )
    def force_server(model_id: PathId, body: ServerForceBody) -> dict[str, Any]:
        status = body.status.upper() if body.status is not None else None
        return _ok(store.force_server(model_id, status, body.fail_next_start))

    @local.put("/tables/{table}", response_model=Envelope[TableStateOut], dependencies=_AUTH)
    def set_table(table: str, body: TableBody) -> dict[str, Any]:
        checked(check_table, table, "table")
        return _ok(aws.set_table(table, body.is_active, body.is_loading))

    @local.delete("/tables/{table}", response_model=Envelope[TableOut], dependencies=_AUTH)
    def delete_table(table: str) -> dict[str, Any]:
        checked(check_table, table, "table")
        return _ok(aws.drop_table(table))

    @local.put("/artifacts/{name}/{version}", response_model=Envelope[ArtifactInfoOut], dependencies=_AUTH)
    def set_artifact(name: str, version: str, body: ArtifactBody | None = None) -> dict[str, Any]:
        checked(check_name, name, "name")
        checked(check_version, version, "version")
        return _ok(aws.set_artifact(name, version, body.info if body is not None else None))

    @local.delete("/artifacts/{name}/{version}", response_model=Envelope[ArtifactInfoOut], dependencies=_AUTH)
    def delete_artifact(name: str, version: str) -> dict[str, Any]:
        checked(check_name, name, "name")
        checked(check_version, version, "version")
        return _ok(aws.delete_artifact(name, version))

    @local.post("/reset", response_model=Envelope[dict[str, Any]], dependencies=_AUTH)
    def reset() -> dict[str, Any]:
        """Empty the store, drop pending faults and, on the embedded AWS endpoint, every S3 object,
        DynamoDB table and SageMaker resource (the registry buckets are made again)."""
        deleted = store.reset()
        cleared = faults.clear()
        aws_reset = bool(settings.aws_endpoint_url and settings.aws_test_credentials)
        if aws_reset:
            from airflow_provider_mls.local.aws import reset_embedded

            reset_embedded(str(settings.aws_endpoint_url))
            aws.ensure_buckets()
        return _ok({"deleted": deleted, "faults_cleared": cleared, "aws_reset": aws_reset})

    @local.post("/faults", response_model=Envelope[FaultOut], dependencies=_AUTH)
    async def add_fault(body: FaultBody) -> dict[str, Any]:
        return _ok(faults.add(**body.model_dump()).to_dict())

    @local.get("/faults", response_model=Envelope[list[FaultOut]], dependencies=_AUTH)
    async def list_faults() -> dict[str, Any]:
        return _ok([f.to_dict() for f in faults.list()])

    @local.delete("/faults", response_model=Envelope[dict[str, int]], dependencies=_AUTH)
    async def clear_faults() -> dict[str, Any]:
        return _ok({"cleared": faults.clear()})

    app.include_router(api)
    app.include_router(local)
    app.add_middleware(
        LocalMiddleware,
        username=settings.username,
        password=settings.password,
        faults=faults,
        max_body_bytes=settings.max_body_bytes,
        record_path=settings.record_path,
    )
    _drop_validation_422(app)
    return app


def _drop_validation_422(app: FastAPI) -> None:
    """Bad input is answered 400 with the envelope, never FastAPI's 422: keep the document true to that."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
