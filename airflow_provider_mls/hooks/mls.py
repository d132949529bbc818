"""The MLS hook: every call of the ``sktmls`` ``MLModelClient``, over the MLS REST protocol."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from airflow_provider_mls._compat import BaseHook, mask_secret
from airflow_provider_mls._connection_form import connection_form_widgets, ui_field_behaviour
from airflow_provider_mls.checks import run_check
from airflow_provider_mls.constants import PREDICTION_MODEL_KEYS, ModelType, ServerStatus
from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
)
from airflow_provider_mls.hooks import _validation as check
from airflow_provider_mls.hooks._config import (
    MLSSettings,
    parse_max_retries,
    parse_timeout,
    read_settings,
)
from airflow_provider_mls.hooks._envelope import parse_envelope
from airflow_provider_mls.hooks._retry import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    outcome_unknown,
    retry_policy,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

    from airflow_provider_mls.checks import Check, Outcome

T = TypeVar("T")
ModelRef = int | Mapping[str, Any]

# Methods that the retry policy may repeat; any other call needs ``retry_safe=True``.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
MODELS_PATH = "/api/v1/models"
DEFAULT_MAX_PAGES = 1000
# The fields of a manual model that a PUT carries (the whole object, as the reference client sends it).
_MANUAL_FIELDS = ("description", "creator", "model_lib", "model_data", "model_meta", "features", "table")


def _params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the ``None`` ones; booleans as ``true``/``false``."""
    if not params:
        return None
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


class MLSHook(BaseHook):
    """Talk to MLS, the ML service of the ``sktmls`` SDK.

    Connection fields: ``login`` = MLS username, ``password`` = MLS password. The base URL:

    * ``host`` as a full URL (``http://127.0.0.1:8765``, optionally with a path prefix) wins;
    * a bare ``host`` (``mls://user:pass@127.0.0.1:8765?env=local`` gives ``127.0.0.1``) becomes
      ``http://`` for loopback/localhost and ``https://`` otherwise (the ``schema`` field, when
      ``http``/``https``, decides instead), plus ``:port`` when the connection has a port;
    * without a host, the extras ``env`` (dev, stg, prd, dev_land, stg_land, prd_land, local;
      default stg) and ``runtime_env`` (YE, EDD, LOCAL; default LOCAL) pick it from the MLS
      table. Extras may also carry the UI prefix (``extra__mls__env``).

    Extras ``timeout`` (seconds, or ``[connect, read]``), ``connect_timeout``, ``read_timeout`` and
    ``max_retries`` apply unless the constructor gets them explicitly.

    Retries (exponential backoff with jitter; 429 ``Retry-After`` honoured) cover connection
    errors, timeouts, 429 and 502/503/504, for calls that are safe to repeat only. A model
    create is never repeated blindly: after an unknown outcome the model is looked up first.

    Wherever a model is needed, an int id or a model dict as returned by the hook is accepted.
    From a dict the hook takes what does not change (``id``, ``name``, ``version``,
    ``model_type``, ``table``) and saves a request; state that changes (meta, training info,
    the fields of an update) is always read fresh.

    :param mls_conn_id: the MLS connection.
    :param timeout: (connect, read) seconds, or one number for both (default (10, 60)).
    :param max_retries: retries after the first attempt (default 5).
    :param retry_min_wait: first backoff wait in seconds.
    :param retry_max_wait: longest backoff wait in seconds (also caps ``Retry-After``).
    """

    conn_name_attr = "mls_conn_id"
    default_conn_name = "mls_default"
    conn_type = "mls"
    hook_name = "MLS"

    def __init__(
        self,
        mls_conn_id: str = default_conn_name,
        *,
        timeout: float | tuple[float, float] | None = None,
        max_retries: int | None = None,
        retry_min_wait: float = DEFAULT_RETRY_MIN_WAIT,
        retry_max_wait: float = DEFAULT_RETRY_MAX_WAIT,
    ) -> None:
        super().__init__()
        self.mls_conn_id = mls_conn_id
        self.timeout = parse_timeout(timeout) if timeout is not None else None
        self.max_retries = parse_max_retries(max_retries) if max_retries is not None else None
        self.retry_min_wait = float(retry_min_wait)
        self.retry_max_wait = float(retry_max_wait)
        if self.retry_min_wait < 0 or self.retry_max_wait < self.retry_min_wait:
            raise MLSValidationError("retry_max_wait", "expected 0 <= retry_min_wait <= retry_max_wait")
        self._mls_settings: MLSSettings | None = None
        self._session: requests.Session | None = None

    # ---- connection -------------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form: ``env`` and ``runtime_env``."""
        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return ui_field_behaviour()

    def _settings(self) -> MLSSettings:
        if self._mls_settings is None:
            conn = self.get_connection(self.mls_conn_id)
            # Both go to the masker before anything could log them.
            self._mls_settings = read_settings(conn, timeout=self.timeout, max_retries=self.max_retries)
            if self._mls_settings.password:
                mask_secret(self._mls_settings.password)
            mask_secret(self._mls_settings.token)
        return self._mls_settings

    @property
    def base_url(self) -> str:
        """The MLS base URL of the connection (reads the connection, no request)."""
        return self._settings().base_url

    def get_conn(self) -> requests.Session:
        """The hook's ``requests.Session`` (one per hook), with Basic auth on every request."""
        if self._session is None:
            import requests

            self._settings()
            session = requests.Session()
            session.headers.update(
                {
                    "Authorization": f"Basic {self._settings().token}",
                    "Accept": "application/json",
                    "User-Agent": "airflow-provider-mls",
                }
            )
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (the first page of manual models)."""
        try:
            self.run(
                "GET", MODELS_PATH, params={"model_type": ModelType.MANUAL.value, "page": 1}, retry_safe=False
            )
        except Exception as exc:
            return False, f"MLS connection failed: {exc}"
        return True, f"Connected to MLS at {self.base_url}"

    # ---- requests ---------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self._settings().base_url}/{path.lstrip('/')}"

    def _request_once(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """One request; the envelope's ``results``, or a typed ``MLSError``. Transport errors pass through."""
        session = self.get_conn()
        url = self._url(path)
        response = session.request(
            method, url, params=_params(params), json=json, timeout=self._settings().timeout
        )
        return parse_envelope(response.status_code, response.text, response.headers, method=method, url=url)

    def _retry_policy(self, what: str) -> dict[str, Any]:
        return retry_policy(
            max_retries=self._settings().max_retries,
            min_wait=self.retry_min_wait,
            max_wait=self.retry_max_wait,
            log=self.log,
            what=what,
        )

    def _call(self, what: str, fn: Callable[[int], T], *, retry_safe: bool) -> T:
        """``fn(attempt)`` under the retry policy (once when not ``retry_safe``); transport errors become MLSServerError."""
        import requests
        from tenacity import Retrying

        attempts = 0

        def once() -> T:
            nonlocal attempts
            attempts += 1
            return fn(attempts)

        try:
            if not retry_safe:
                return once()
            return Retrying(**self._retry_policy(what))(once)
        except requests.RequestException as exc:
            raise MLSServerError(
                f"could not reach MLS ({type(exc).__name__}: {exc}) after {attempts} attempt(s)",
                method=what.split(" ", 1)[0],
                url=self._url(what.split(" ", 1)[-1]),
            ) from exc

    def run(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        retry_safe: bool | None = None,
    ) -> Any:
        """Call any MLS endpoint and return its ``results``.

        :param retry_safe: may the call be repeated after a transient failure? Default: True for
            GET/PUT/DELETE, False otherwise (a POST is only retried when the caller says so).
        """
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if retry_safe is None else retry_safe
        return self._call(
            f"{method} {path}",
            lambda _attempt: self._request_once(method, path, params=params, json=json),
            retry_safe=safe,
        )

    # ---- models: read -----------------------------------------------------------------------

    def _get_model_by_id(self, id: int, model_type: ModelType | None = None) -> dict[str, Any]:
        model = self.run("GET", f"{MODELS_PATH}/{id}")
        if not isinstance(model, dict):
            raise MLSServerError(
                f"MLS returned no model object for id {id}",
                method="GET",
                url=self._url(f"{MODELS_PATH}/{id}"),
            )
        if model_type is not None and model.get("model_type") != model_type.value:
            raise MLSNotFoundError(
                f"model {id} is a {model.get('model_type')} model, not a {model_type.value} model",
                code=404,
                method="GET",
                url=self._url(f"{MODELS_PATH}/{id}"),
            )
        return model

    def _find_model(self, model_type: ModelType, name: str, version: str) -> dict[str, Any] | None:
        """The model with exactly this (name, version), or None (one request)."""
        page = self.run(
            "GET", MODELS_PATH, params={"model_type": model_type.value, "name": name, "version": version}
        )
        for model in page or []:
            if isinstance(model, dict) and model.get("name") == name and model.get("version") == version:
                return model
        return None

    def _get_model(
        self, model_type: ModelType, id: int | None, name: str | None, version: str | None
    ) -> dict[str, Any]:
        if id is not None:
            return self._get_model_by_id(check.check_id(id), model_type)
        if name is None or version is None:
            raise MLSValidationError("id", "give either id or both name and version")
        name, version = check.check_str(name, "name"), check.check_str(version, "version")
        model = self._find_model(model_type, name, version)
        if model is None:
            raise MLSNotFoundError(
                f"no {model_type.value} model named {name!r} with version {version!r}",
                code=404,
                method="GET",
                url=self._url(MODELS_PATH),
            )
        return model

    def get_model(self, id: int) -> dict[str, Any]:
        """Any model (manual or AutoML) by id."""
        return self._get_model_by_id(check.check_id(id))

    def get_manual_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """A manual model by id (1 request) or by (name, version) (1 request)."""
        return self._get_model(ModelType.MANUAL, id, name, version)

    get_model_deployment = get_manual_model

    def get_automl_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """An AutoML model by id (1 request) or by (name, version) (1 request)."""
        return self._get_model(ModelType.AUTOML, id, name, version)

    def _list_models(self, model_type: ModelType, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        if filters.get("id") is not None:
            check.check_id(filters["id"])
        if filters.get("page") is not None:
            check.check_id(filters["page"], "page")
        unknown = set(filters) - {"id", "name", "version", "query", "page"}
        if unknown:
            raise MLSValidationError(
                sorted(unknown)[0], "unknown model filter; expected id, name, version, query, page"
            )
        results = self.run("GET", MODELS_PATH, params={"model_type": model_type.value, **filters})
        return list(results or [])

    def list_manual_models(
        self,
        *,
        id: int | None = None,
        name: str | None = None,
        version: str | None = None,
        query: str | None = None,
        page: int | None = None,
    ) -> list[dict[str, Any]]:
        """One page of manual models."""
        return self._list_models(
            ModelType.MANUAL, {"id": id, "name": name, "version": version, "query": query, "page": page}
        )

    list_model_deployments = list_manual_models

    def list_automl_models(
        self,
        *,
        id: int | None = None,
        name: str | None = None,
        version: str | None = None,
        query: str | None = None,
        page: int | None = None,
    ) -> list[dict[str, Any]]:
        """One page of AutoML models."""
        return self._list_models(
            ModelType.AUTOML, {"id": id, "name": name, "version": version, "query": query, "page": page}
        )

    def iter_models(
        self, model_type: str | ModelType, *, max_pages: int = DEFAULT_MAX_PAGES, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Every model, page by page from 1, until an empty page or a page that repeats the previous one.

        A repeated page (same ids) means the server ignores ``page``. More than ``max_pages``
        pages raise ``MLSError`` rather than silently truncating.
        """
        try:
            kind = ModelType(model_type)
        except ValueError:
            raise MLSValidationError("model_type", f"expected manual or automl, got {model_type!r}") from None
        if "page" in filters:
            raise MLSValidationError("page", "iter_models walks the pages itself")
        previous: list[Any] | None = None
        for page in range(1, max_pages + 1):
            models = self._list_models(kind, {**filters, "page": page})
            ids = [m.get("id") if isinstance(m, dict) else m for m in models]
            if not models or ids == previous:
                return
            previous = ids
            yield from models
        raise MLSError(
            f"more than {max_pages} pages of {kind.value} models; stopping", url=self._url(MODELS_PATH)
        )

    def list_all_models(self, model_type: str | ModelType, **filters: Any) -> list[dict[str, Any]]:
        """All pages of ``iter_models`` as one list."""
        return list(self.iter_models(model_type, **filters))

    def list_all_manual_models(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_all_models(ModelType.MANUAL, **filters)

    def list_all_automl_models(self, **filters: Any) -> list[dict[str, Any]]:
        return self.list_all_models(ModelType.AUTOML, **filters)

    def _model_dict(
        self, model: ModelRef, *needed: str, model_type: ModelType | None = None
    ) -> dict[str, Any]:
        """The model as a dict: the caller's (copied) when it holds ``needed``, else read by id."""
        id = check.model_id(model)
        if isinstance(model, Mapping) and all(key in model for key in needed):
            if model_type is not None and model.get("model_type", model_type.value) != model_type.value:
                raise MLSValidationError("model", f"model {id} is not a {model_type.value} model")
            return dict(model)
        return self._get_model_by_id(id, model_type)

    # ---- models: create ---------------------------------------------------------------------

    def _create_model(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST a model; after an unknown outcome, look it up by (name, version, model_type) before any retry."""
        kind = ModelType(payload["model_type"])
        name, version = payload["name"], payload["version"]
        unknown = False

        def lookup() -> dict[str, Any] | None:
            existing = self._find_model(kind, name, version)
            if existing is not None:
                self.log.info(
                    "MLS %s model %s/%s exists (id %s): an earlier create attempt had succeeded",
                    kind.value,
                    name,
                    version,
                    existing.get("id"),
                )
            return existing

        def attempt(_n: int) -> tuple[dict[str, Any] | None, int | None]:
            nonlocal unknown
            if unknown:
                existing = lookup()
                if existing is not None:
                    return existing, None
            try:
                results = self._request_once("POST", MODELS_PATH, json=payload)
            except MLSConflictError:
                existing = lookup() if unknown else None
                if existing is not None:
                    return existing, None
                raise
            except Exception as exc:
                unknown = unknown or outcome_unknown(exc)
                raise
            created = results.get("id") if isinstance(results, dict) else None
            if not isinstance(created, int):
                raise MLSServerError(
                    f"MLS create returned no model id: {results!r}", method="POST", url=self._url(MODELS_PATH)
                )
            return None, created

        found, created_id = self._call(f"POST {MODELS_PATH}", attempt, retry_safe=True)
        if found is not None:
            return found
        assert created_id is not None
        self.log.info("Created MLS %s model %s/%s (id %s)", kind.value, name, version, created_id)
        return self._get_model_by_id(created_id)

    def create_manual_model(
        self,
        name: str,
        version: str,
        *,
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: Mapping[str, Any] | None = None,
        features: str | Sequence[str] | None = None,
        table: str | None = None,
        components: Sequence[str | Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create (deploy) a manual model; returns the created model (2 requests: POST + GET).

        ``features``: a comma-separated string or a list of names. ``components``: component
        names or component dicts (their ``name`` is sent).
        """
        payload: dict[str, Any] = {
            "model_type": ModelType.MANUAL.value,
            "name": check.check_str(name, "name"),
            "version": check.check_str(version, "version"),
            "description": check.check_optional_str(description, "description"),
            "creator": check.check_optional_str(creator, "creator"),
            "model_lib": check.check_model_lib(model_lib),
            "model_data": check.check_optional_str(model_data, "model_data"),
            "model_meta": check.check_json_dict(model_meta, "model_meta") if model_meta is not None else None,
            "features": check.check_features(features),
            "table": check.check_optional_str(table, "table"),
            "components": check.component_names(components),
        }
        return self._create_model({k: v for k, v in payload.items() if v is not None})

    create_model_deployment = create_manual_model

    def create_automl_model(
        self,
        name: str,
        version: str,
        description: str,
        *,
        dataset_id: int | None = None,
        dataset_name: str | None = None,
    ) -> dict[str, Any]:
        """Create an AutoML model (training starts) from a dataset given by id or by name (exactly one)."""
        name, version = check.check_str(name, "name"), check.check_str(version, "version")
        description = check.check_optional_str(description, "description") or ""
        if (dataset_id is None) == (dataset_name is None):
            raise MLSValidationError("dataset_id", "give exactly one of dataset_id and dataset_name")
        if dataset_id is None:
            dataset_id = check.model_id(
                self.get_dataset(name=check.check_str(dataset_name, "dataset_name")), "dataset"
            )
        payload = {
            "model_type": ModelType.AUTOML.value,
            "name": name,
            "version": version,
            "description": description,
            "dataset_id": check.check_id(dataset_id, "dataset_id"),
        }
        return self._create_model(payload)

    # ---- models: update ---------------------------------------------------------------------

    def _put_manual_model(self, current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the whole manual model (current state + changes), then read it back."""
        id = check.model_id(current)
        if current.get("model_type") != ModelType.MANUAL.value:
            raise MLSValidationError(
                "model", f"model {id} is a {current.get('model_type')} model; only manual models are updated"
            )
        body: dict[str, Any] = {
            "model_type": ModelType.MANUAL.value,
            "name": current.get("name"),
            "version": current.get("version"),
        }
        for field in _MANUAL_FIELDS:
            body[field] = copy.deepcopy(current.get(field))
        body["components"] = check.component_names(current.get("components") or [])
        body.update(changes)
        self.run("PUT", f"{MODELS_PATH}/{id}", json=body)
        return self._get_model_by_id(id)

    def update_manual_model(
        self,
        model: ModelRef,
        *,
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        creator: str | None = None,
        model_lib: str | None = None,
        model_data: str | None = None,
        model_meta: Mapping[str, Any] | None = None,
        features: str | Sequence[str] | None = None,
        table: str | None = None,
        components: Sequence[str | Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Update a manual model; returns the updated model (GET, PUT of the whole model, GET).

        The current state is always read fresh (a dict is used for its id only), so a stale
        dict never overwrites other changes. ``None`` keeps a field; ``""`` clears a string
        field (sent as null), ``{}`` clears ``model_meta``, ``[]`` clears ``components``.
        ``name`` and ``version`` can be changed but not cleared.
        """
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = check.check_str(name, "name")
        if version is not None:
            changes["version"] = check.check_str(version, "version")
        for field, value in (
            ("description", description),
            ("creator", creator),
            ("model_data", model_data),
            ("table", table),
        ):
            if value is not None:
                changes[field] = check.check_optional_str(value, field) or None
        if model_lib is not None:
            changes["model_lib"] = check.check_model_lib(model_lib) if model_lib != "" else None
        if features is not None:
            changes["features"] = check.check_features(features) or None
        if model_meta is not None:
            changes["model_meta"] = check.check_json_dict(model_meta, "model_meta")
        if components is not None:
            changes["components"] = check.component_names(components)
        current = self._get_model_by_id(check.model_id(model), ModelType.MANUAL)
        return self._put_manual_model(current, changes)

    update_model_deployment = update_manual_model

    def update_manual_model_meta(
        self,
        model: ModelRef,
        model_meta: Mapping[str, Any],
        partial_update: bool = False,
        *,
        remove_keys: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Replace the model's meta (``{}`` clears it) or, with ``partial_update``, merge the new keys in.

        ``remove_keys`` are then removed. The caller's dicts are never modified.
        """
        new_meta = check.check_json_dict(model_meta, "model_meta")
        if isinstance(remove_keys, str) or not all(isinstance(k, str) for k in remove_keys):
            raise MLSValidationError("remove_keys", "expected a list of key names")
        current = self._get_model_by_id(check.model_id(model), ModelType.MANUAL)
        if partial_update:
            merged = copy.deepcopy(current.get("model_meta") or {})
            merged.update(new_meta)
            new_meta = merged
        for key in remove_keys:
            new_meta.pop(key, None)
        return self._put_manual_model(current, {"model_meta": new_meta})

    update_model_deployment_meta = update_manual_model_meta

    def update_manual_model_components(
        self, model: ModelRef, components: Sequence[str | Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Set the model's components (names or component dicts); ``[]`` clears them."""
        names = check.component_names(components)
        current = self._get_model_by_id(check.model_id(model), ModelType.MANUAL)
        return self._put_manual_model(current, {"components": names})

    update_model_deployment_components = update_manual_model_components

    # ---- models: delete ---------------------------------------------------------------------

    def delete_model(self, model: ModelRef, delete_table: bool = False) -> dict[str, Any]:
        """Delete a model; with ``delete_table``, then drop a manual model's batch prediction table.

        The model goes first, as in the reference client: if the service refuses the delete (a
        model that still serves a bucket), its table is left alone rather than pulled from under
        it. A table already gone counts as dropped. Idempotent under retries: a 404 on a repeated
        delete (the first one went through but its answer was lost) counts as deleted.
        Returns ``{"id", "deleted", "table_dropped"}``.
        """
        id = check.model_id(model)
        table = None
        if delete_table:
            current = self._model_dict(model, "model_type", "table")
            if current.get("model_type") == ModelType.MANUAL.value and current.get("table"):
                table = str(current["table"])
        path = f"{MODELS_PATH}/{id}"

        def attempt(n: int) -> None:
            try:
                self._request_once("DELETE", path)
            except MLSNotFoundError:
                if n == 1:
                    raise
                self.log.info("MLS model %s is gone: an earlier delete attempt had succeeded", id)

        self._call(f"DELETE {path}", attempt, retry_safe=True)
        self.log.info("Deleted MLS model %s", id)
        table_dropped = self.drop_table(table) if table is not None else False
        return {"id": id, "deleted": True, "table_dropped": table_dropped}

    delete_model_deployment = delete_model

    # ---- readiness ----------------------------------------------------------------------------

    def _table_path(self, table: str, suffix: str = "") -> str:
        return f"/api/v1/dynamodb/tables/{quote(check.check_str(table, 'table'), safe='')}{suffix}"

    def is_table_active(self, table: str) -> bool:
        """Is the batch prediction table active? A table that does not exist is not active."""
        return bool((self.run("GET", self._table_path(table, "/is_active")) or {}).get("is_active"))

    def is_table_loading(self, table: str) -> bool:
        return bool((self.run("GET", self._table_path(table, "/is_loading")) or {}).get("is_loading"))

    def drop_table(self, table: str) -> bool:
        """Drop a batch prediction table; False when it was already gone (404)."""
        path = self._table_path(table)
        try:
            self.run("DELETE", path)
        except MLSNotFoundError:
            self.log.info("MLS table %s does not exist (already dropped)", table)
            return False
        self.log.info("Dropped MLS table %s", table)
        return True

    def is_batch_prediction_ready(self, model: ModelRef) -> bool:
        """Is the model's batch prediction table active and not loading? (2 requests given a dict with ``table``)

        A model without a table has no batch prediction: ``MLSValidationError`` naming ``table``.
        """
        current = self._model_dict(model, "table")
        table = current.get("table")
        if not table:
            raise MLSValidationError(
                "table", f"model {current.get('id')} has no table, so no batch prediction"
            )
        active = self.is_table_active(str(table))
        loading = self.is_table_loading(str(table))
        return active and not loading

    def get_artifact_info(self, name: str, version: str) -> Any:
        """The registry's artifact info of (name, version), or None when there is no artifact."""
        results = self.run(
            "GET",
            "/api/v1/model_registry/artifacts/info",
            params={
                "model_name": check.check_str(name, "name"),
                "model_version": check.check_str(version, "version"),
            },
        )
        return (results or {}).get("info")

    def is_online_prediction_ready(self, model: ModelRef) -> bool:
        """Does the model's artifact exist in the registry? (1 request given a dict with name and version)"""
        current = self._model_dict(model, "name", "version")
        return self.get_artifact_info(current["name"], current["version"]) is not None

    def run_check(self, check: Check) -> Outcome:
        """Run one readiness check (``airflow_provider_mls.checks``): the same logic as the triggers."""
        return run_check(check, lambda request: self.run(request.method, request.path, params=request.params))

    # ---- AutoML model server --------------------------------------------------------------------

    def _server_path(self, model: ModelRef) -> str:
        return f"{MODELS_PATH}/{check.model_id(model)}/automl_model_server"

    def _handler_path(self, model: ModelRef) -> str:
        return f"{MODELS_PATH}/{check.model_id(model)}/automl_online_prediction"

    def start_automl_model_server(self, model: ModelRef) -> Any:
        """Start the model's server (a no-op for the service when it already runs, so retried)."""
        return self.run("POST", self._server_path(model), retry_safe=True)

    def stop_automl_model_server(self, model: ModelRef) -> Any:
        return self.run("DELETE", self._server_path(model))

    def get_automl_model_server_status(self, model: ModelRef) -> str:
        """A ``ServerStatus`` value; anything unrecognised is ``UNKNOWN``."""
        results = self.run("GET", self._server_path(model))
        status = results.get("status") if isinstance(results, dict) else None
        return ServerStatus.parse(status).value

    def get_automl_model_server_handler(self, model: ModelRef) -> str | None:
        results = self.run("GET", self._handler_path(model))
        handler = results.get("handler") if isinstance(results, dict) else None
        return str(handler) if handler else None

    def update_automl_model_server_handler(self, model: ModelRef, handler: str) -> Any:
        """Replace the handler; the source must parse as Python before anything is sent."""
        source = check.check_handler(handler)
        return self.run("POST", self._handler_path(model), json={"handler": source}, retry_safe=True)

    def get_automl_model_error(self, model: ModelRef) -> str | None:
        """Why the AutoML training failed (``automl_model_info["error"]``), or None. Always read fresh."""
        current = self._get_model_by_id(check.model_id(model), ModelType.AUTOML)
        info = current.get("automl_model_info") or {}
        error = info.get("error") if isinstance(info, dict) else None
        return str(error) if error else None

    # ---- components and datasets --------------------------------------------------------------

    def list_components(self, **filters: Any) -> list[dict[str, Any]]:
        """Components, filtered by ``id``, ``name``, ``info``, ``is_latest``."""
        return list(self.run("GET", "/api/v1/components", params=filters) or [])

    def get_component(self, id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """A component by id, or by name (the ``is_latest`` one, else the newest)."""
        if id is not None:
            component: dict[str, Any] = self.run("GET", f"/api/v1/components/{check.check_id(id)}")
            return component
        if name is None:
            raise MLSValidationError("id", "give id or name")
        name = check.check_str(name, "name")
        matches = [c for c in self.list_components(name=name) if c.get("name") == name]
        if not matches:
            raise MLSNotFoundError(
                f"no component named {name!r}", code=404, method="GET", url=self._url("/api/v1/components")
            )
        latest = [c for c in matches if c.get("is_latest")]
        return max(latest or matches, key=lambda c: (str(c.get("created_at") or ""), c.get("id") or 0))

    def list_datasets(self, **filters: Any) -> list[dict[str, Any]]:
        """Datasets, filtered by ``id`` or ``name``."""
        return list(self.run("GET", "/api/v1/datasets", params=filters) or [])

    def get_dataset(self, id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """A dataset by id or by name."""
        if id is not None:
            id = check.check_id(id)
            matches = [d for d in self.list_datasets(id=id) if d.get("id") == id]
            what = f"id {id}"
        elif name is not None:
            name = check.check_str(name, "name")
            matches = [d for d in self.list_datasets(name=name) if d.get("name") == name]
            what = f"name {name!r}"
        else:
            raise MLSValidationError("id", "give id or name")
        if not matches:
            raise MLSNotFoundError(
                f"no dataset with {what}", code=404, method="GET", url=self._url("/api/v1/datasets")
            )
        return max(matches, key=lambda d: d.get("id") or 0)

    # ---- buckets ------------------------------------------------------------------------------

    def migrate_buckets(
        self,
        from_model: ModelRef,
        to_model: ModelRef | None = None,
        *,
        prediction_type: str | None = None,
        static_value: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Move every bucket served by ``from_model`` to ``to_model``; returns the moved buckets.

        ``prediction_type`` defaults to ``online`` for a manual target and ``automl`` for an
        AutoML one; ``static`` needs ``static_value``, ``empty`` needs no target. Not retried
        (a POST whose repeat would report nothing moved).
        """
        from_id = check.model_id(from_model, "from_model")
        if prediction_type is not None:
            prediction_type = check.check_prediction_type(prediction_type)
        request: dict[str, Any] = {}
        if static_value is not None:
            request["static_value"] = check.check_json_dict(static_value, "static_value")
        if prediction_type == "static" and static_value is None:
            raise MLSValidationError("static_value", "prediction_type 'static' needs a static_value")
        if prediction_type in (None, *PREDICTION_MODEL_KEYS):
            if to_model is None:
                raise MLSValidationError(
                    "to_model", f"prediction_type {prediction_type or 'online/automl'} needs a target model"
                )
            to_id = check.model_id(to_model, "to_model")
            if prediction_type is None:
                target = self._model_dict(to_model, "model_type")
                prediction_type = "automl" if target.get("model_type") == ModelType.AUTOML.value else "online"
            request[PREDICTION_MODEL_KEYS[prediction_type]] = to_id
        request["prediction_type"] = prediction_type
        body = {"model_id": from_id, "migration_request": request}
        return list(self.run("POST", "/api/v1/bucket_migrations", json=body, retry_safe=False) or [])
