"""The MLS hook's ground floor: its connection, its requests (retries, errors) and the reads of
models, components and datasets. ``MLSHook`` (``hooks/mls.py``) is what users import."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mls import rules
from airflow_provider_mls._compat import BaseHook, mask_secret
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import (
    MLSAuthError,
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
    auth_error,
    unreachable_error,
)
from airflow_provider_mls.hooks._config import (
    MLSSettings,
    parse_max_retries,
    parse_timeout,
    parse_write_settle,
    read_settings,
)
from airflow_provider_mls.hooks._envelope import encode_params, parse_envelope
from airflow_provider_mls.hooks._retry import (
    DEFAULT_RETRY_MAX_WAIT,
    DEFAULT_RETRY_MIN_WAIT,
    IDEMPOTENT_METHODS,
    retry_policy,
)
from airflow_provider_mls.hooks._writes import parse_http_date

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import requests


T = TypeVar("T")
ModelRef = int | Mapping[str, Any]

MODELS_PATH = "/api/v1/models"
DEFAULT_MAX_PAGES = 1000


class MLSHookBase(BaseHook):
    """Connection, requests and reads of ``MLSHook`` (see there)."""

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
        write_settle: float | None = None,
    ) -> None:
        super().__init__()
        self.mls_conn_id = mls_conn_id
        self.timeout = parse_timeout(timeout) if timeout is not None else None
        self.max_retries = parse_max_retries(max_retries) if max_retries is not None else None
        self.retry_min_wait = float(retry_min_wait)
        self.retry_max_wait = float(retry_max_wait)
        if self.retry_min_wait < 0 or self.retry_max_wait < self.retry_min_wait:
            raise MLSValidationError("retry_max_wait", "expected 0 <= retry_min_wait <= retry_max_wait")
        self.write_settle = parse_write_settle(write_settle) if write_settle is not None else None
        # The newest state of each model this hook wrote and verified: a caller's older dict of it
        # is not taken as its current state.
        self._written: dict[int, dict[str, Any]] = {}
        self._mls_settings: MLSSettings | None = None
        self._session: requests.Session | None = None

    # ---- connection -------------------------------------------------------------------------

    def _settings(self) -> MLSSettings:
        if self._mls_settings is None:
            conn = self.get_connection(self.mls_conn_id)
            # Both go to the masker before anything could log them.
            self._mls_settings = read_settings(
                conn, timeout=self.timeout, max_retries=self.max_retries, write_settle=self.write_settle
            )
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

    def _exchange(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> tuple[Any, str | None]:
        """One request: (the envelope's ``results``, the ``Date`` header), or a typed ``MLSError``.

        Transport errors pass through.
        """
        session = self.get_conn()
        url = self._url(path)
        response = session.request(
            method, url, params=encode_params(params), json=json, timeout=self._settings().timeout
        )
        try:
            results = parse_envelope(
                response.status_code, response.text, response.headers, method=method, url=url
            )
        except MLSAuthError as exc:
            settings = self._settings()
            raise auth_error(
                exc, conn_id=self.mls_conn_id, username=settings.username, base_url=settings.base_url
            ) from None
        return results, response.headers.get("Date")

    def _request_once(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        """One request; the envelope's ``results``, or a typed ``MLSError``. Transport errors pass through."""
        return self._exchange(method, path, params=params, json=json)[0]

    def _retry_policy(self, what: str) -> dict[str, Any]:
        return retry_policy(
            max_retries=self._settings().max_retries,
            min_wait=self.retry_min_wait,
            max_wait=self.retry_max_wait,
            log=self.log,
            what=what,
        )

    def _call(self, what: str, fn: Callable[[int], T], *, retry_safe: bool) -> T:
        """``fn(attempt)`` under the retry policy (once when not ``retry_safe``).

        Transport errors become MLSServerError."""
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
            raise self._unreachable(what, exc, attempts) from exc

    def _unreachable(self, what: str, exc: BaseException, attempts: int) -> MLSServerError:
        return unreachable_error(
            exc,
            conn_id=self.mls_conn_id,
            base_url=self._settings().base_url,
            attempts=attempts,
            method=what.split(" ", 1)[0],
            url=self._url(what.split(" ", 1)[-1]),
        )

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
        try:
            model = self.run("GET", f"{MODELS_PATH}/{id}")
        except MLSNotFoundError as exc:
            # The service names its own path parameter ("id: ..."); the caller knows it as model_id.
            raise MLSNotFoundError(
                f"model_id: no model with id {id}",
                code=exc.code,
                status=exc.status,
                method=exc.method,
                url=exc.url,
            ) from exc
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
        """The model with exactly this (name, version) as its detail read gives it, or None."""
        return self._find_model_dated(model_type, name, version)[0]

    def _find_model_dated(
        self, model_type: ModelType, name: str, version: str
    ) -> tuple[dict[str, Any] | None, datetime | None]:
        """``_find_model`` and the server's ``Date`` of the list's answer (None without the header).

        As the reference client does: the list (filtered by type, name and version) only names
        the model's id, then ``GET /api/v1/models/{id}`` reads it (2 requests; 1 when there is
        none). A list item is not promised to carry every field (``model_meta``, ``table``,
        ``created_at``, ...), so nothing is ever decided from one.
        """
        params = {"model_type": model_type.value, "name": name, "version": version}
        page, date = self._call(
            f"GET {MODELS_PATH}",
            lambda _n: self._exchange("GET", MODELS_PATH, params=params),
            retry_safe=True,
        )
        for item in page or []:
            if isinstance(item, dict) and item.get("name") == name and item.get("version") == version:
                try:
                    model = self._get_model_by_id(rules.model_id(item, "id"), model_type)
                except MLSNotFoundError:
                    break  # deleted between the list and the read: there is none
                return model, parse_http_date(date)
        return None, parse_http_date(date)

    def _get_model(
        self, model_type: ModelType, id: int | None, name: str | None, version: str | None
    ) -> dict[str, Any]:
        if id is not None:
            return self._get_model_by_id(rules.check_id(id), model_type)
        if name is None or version is None:
            raise MLSValidationError("model_id", "give either id or both name and version")
        name, version = rules.check_str(name, "name"), rules.check_str(version, "version")
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
        return self._get_model_by_id(rules.check_id(id))

    def get_manual_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """A manual model by id (1 request) or by (name, version) (2: the list names its id, then the read)."""
        return self._get_model(ModelType.MANUAL, id, name, version)

    get_model_deployment = get_manual_model

    def get_automl_model(
        self, id: int | None = None, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """An AutoML model by id (1 request) or by (name, version) (2: the list names its id, then the read)."""
        return self._get_model(ModelType.AUTOML, id, name, version)

    def _list_models(self, model_type: ModelType, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        if filters.get("id") is not None:
            rules.check_id(filters["id"], "id")
        if filters.get("page") is not None:
            rules.check_id(filters["page"], "page")
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
        """One page of manual models, as list items: only ``id``, ``name``, ``version`` and
        ``model_type`` are promised (the rest may be missing); ``get_model(id)`` reads a whole one."""
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
        """One page of AutoML models, as list items (see ``list_manual_models``)."""
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
        id = rules.model_id(model)
        if isinstance(model, Mapping) and all(key in model for key in needed):
            if model_type is not None and model.get("model_type", model_type.value) != model_type.value:
                raise MLSValidationError("model_id", f"model {id} is not a {model_type.value} model")
            return dict(model)
        return self._get_model_by_id(id, model_type)

    # ---- components and datasets --------------------------------------------------------------

    def list_components(self, **filters: Any) -> list[dict[str, Any]]:
        """Components, filtered by ``id``, ``name``, ``info``, ``is_latest``: list items, of which only
        ``id`` and ``name`` are promised (``get_component(id=...)`` reads a whole one)."""
        return list(self.run("GET", "/api/v1/components", params=filters) or [])

    def get_component(self, id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """A component by id (1 request), or by name: its ``is_latest`` one (2 requests).

        By name as the reference client does: the list filtered by ``name`` and
        ``is_latest=True`` names the component's id, then ``GET /api/v1/components/{id}`` reads
        it. None marked latest is ``MLSNotFoundError``; more than one, ``MLSConflictError``.
        """
        if id is not None:
            component: dict[str, Any] = self.run("GET", f"/api/v1/components/{rules.check_id(id, 'id')}")
            return component
        if name is None:
            raise MLSValidationError("id", "give id or name")
        name = rules.check_str(name, "name")
        url = self._url("/api/v1/components")
        matches = [c for c in self.list_components(name=name, is_latest=True) if c.get("name") == name]
        if not matches:
            raise MLSNotFoundError(
                f"no component named {name!r} marked is_latest", code=404, method="GET", url=url
            )
        if len(matches) > 1:
            ids = ", ".join(str(c.get("id")) for c in matches)
            raise MLSConflictError(
                f"name: {len(matches)} components named {name!r} are marked is_latest (ids {ids})",
                code=409,
                method="GET",
                url=url,
            )
        return self.get_component(id=rules.model_id(matches[0], "id"))

    def list_datasets(self, **filters: Any) -> list[dict[str, Any]]:
        """Datasets, filtered by ``id`` or ``name``."""
        return list(self.run("GET", "/api/v1/datasets", params=filters) or [])

    def get_dataset(self, id: int | None = None, name: str | None = None) -> dict[str, Any]:
        """A dataset by id or by name."""
        if id is not None:
            id = rules.check_id(id, "id")
            matches = [d for d in self.list_datasets(id=id) if d.get("id") == id]
            what = f"id {id}"
        elif name is not None:
            name = rules.check_str(name, "name")
            matches = [d for d in self.list_datasets(name=name) if d.get("name") == name]
            what = f"name {name!r}"
        else:
            raise MLSValidationError("id", "give id or name")
        if not matches:
            raise MLSNotFoundError(
                f"no dataset with {what}", code=404, method="GET", url=self._url("/api/v1/datasets")
            )
        return max(matches, key=lambda d: d.get("id") or 0)
