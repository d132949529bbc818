"""The MLS hook: every call of the ``sktmls`` ``MLModelClient``, over the MLS REST protocol."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mls import rules
from airflow_provider_mls._compat import BaseHook, mask_secret
from airflow_provider_mls._connection_form import connection_form_widgets, ui_field_behaviour
from airflow_provider_mls.checks import (
    ArtifactReadyCheck,
    TableReadyCheck,
    artifact_info,
    ready,
    run_steps,
    table_flag,
    table_path,
)
from airflow_provider_mls.constants import MODEL_LIBS, PREDICTION_MODEL_KEYS, ModelType, ServerStatus
from airflow_provider_mls.exceptions import (
    MLSAuthError,
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
    MLSWriteConflictError,
    auth_error,
    unreachable_error,
)
from airflow_provider_mls.hooks._config import (
    MAX_WRITE_SETTLE,
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
    outcome_unknown,
    retry_after_of,
    retry_policy,
    retryable_error,
)
from airflow_provider_mls.hooks._writes import (
    MISSING,
    Unit,
    create_is_ours,
    field_unit,
    meta_key_unit,
    parse_http_date,
    parse_timestamp,
)
from airflow_provider_mls.rules import MANUAL_FIELDS, check_if_exists

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from datetime import datetime

    import requests

    from airflow_provider_mls.checks import Check, Outcome, Request

T = TypeVar("T")
ModelRef = int | Mapping[str, Any]

MODELS_PATH = "/api/v1/models"
DEFAULT_MAX_PAGES = 1000
# Updates: how many write-verify rounds, and the backoff between them.
MAX_WRITE_ROUNDS = 8
WRITE_BACKOFF = 0.25  # first re-write waits up to this (jittered), doubling per round
MAX_WRITE_BACKOFF = 8.0


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

    Extras ``timeout`` (seconds, or ``[connect, read]``), ``connect_timeout``, ``read_timeout``,
    ``max_retries`` and ``write_settle`` apply unless the constructor gets them explicitly.

    Retries (exponential backoff with jitter; 429 ``Retry-After`` honoured) cover connection
    errors, timeouts, 429 and 502/503/504, for calls that are safe to repeat only. A refused
    connection (nothing listens at the URL: MLS is down or the host/port is wrong) is retried at
    most twice (``REFUSED_MAX_RETRIES``, a few seconds), then fails naming the connection and the
    URL it resolved to. A 401/403 is never retried; its error names the connection and its login. A model create is never repeated blindly, and never returns a model that
    is not its own write (see ``create_manual_model``); an update verifies what it stored (see
    ``update_manual_model``).

    Wherever a model is needed, an int id or a model dict as returned by the hook is accepted.
    From a dict the hook takes what it needs and may save a request. An update (whose PUT is the
    whole model) takes a dict as the model's current state only when it is this hook's own last
    written state of that model (as its last create or update returned it); any other dict is
    read fresh first, as are training info and the AutoML error.

    :param mls_conn_id: the MLS connection.
    :param timeout: (connect, read) seconds, or one number for both (default (10, 60)).
    :param max_retries: retries after the first attempt (default 5).
    :param retry_min_wait: first backoff wait in seconds.
    :param retry_max_wait: longest backoff wait in seconds (also caps ``Retry-After``).
    :param write_settle: seconds an update waits after its PUT before the read that verifies it
        (default 1; longer when this update's own requests were slow). See ``update_manual_model``.
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

    # ---- models: create ---------------------------------------------------------------------

    def _create_model(
        self,
        payload: dict[str, Any],
        *,
        if_exists: str,
        update: Mapping[str, Any] | None = None,
        not_before: datetime | None = None,
        known_id: int | None = None,
        on_sending: Callable[[], None] | None = None,
        on_created: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Create a model; never return or change a model that is not this call's own write.

        0. ``known_id`` (the id an earlier try of the task recorded when MLS answered its create):
           the model with that id, when it still holds the (name, version), is this call's own, by
           identity: returned (``if_exists="update"``: with this call's values stored). Deleted or
           renamed since: created anew as below.

        1. Look the (name, version) up first: a model already there is a conflict (``if_exists``).
           The answer's ``Date`` is when the model was not there yet, by the server's clock.
        2. POST, retried only through a look-up: after an ambiguous failure (502/503/504, a
           reset or a read timeout after the request was sent) the next attempt looks again
           before any new POST; a 409 looks too.
        3. A model found after an ambiguous failure is adopted only when ``create_is_ours``
           (same payload, created after step 1). Anything else is a conflict for ``if_exists``.

        With ``not_before`` (a retry of the task: when its first try began), a model found in
        step 1 is adopted as an earlier try's create when it holds the payload and its
        ``created_at`` is known and not before ``not_before``.

        ``on_sending()`` is called before each POST is sent, and ``on_created(id)`` the moment this
        call knows the model is its own (the POST's answer, or an adoption), before it is read back.
        """
        kind = ModelType(payload["model_type"])
        name, version = payload["name"], payload["version"]
        if known_id is not None:
            own = self._known_create(kind, name, version, known_id)
            if own is not None:
                if update and if_exists == "update":
                    return self._update_manual(own, self._field_units(update, own), ", ".join(sorted(update)))
                return self._remember(own)

        def adopted(model: dict[str, Any]) -> dict[str, Any]:
            if on_created is not None and isinstance(model.get("id"), int):
                on_created(int(model["id"]))
            return self._remember(model)

        existing, not_there_at = self._find_model_dated(kind, name, version)
        if existing is not None:
            why = "it existed before this create began"
            if not_before is not None:
                ours, why = self._earlier_try(existing, payload, not_before)
                if ours:
                    self.log.info(
                        "MLS %s model %s/%s (id %s) is an earlier try's create of this task (%s)",
                        kind.value,
                        name,
                        version,
                        existing.get("id"),
                        why,
                    )
                    return adopted(existing)
            return self._on_conflict(kind, existing, if_exists, update, why)
        unknown = False  # has an attempt failed in a way that may have created the model?

        def attempt(_n: int) -> tuple[str, Any]:
            nonlocal unknown
            if unknown:
                found = self._find_model(kind, name, version)
                if found is not None:
                    return "found", found
            if on_sending is not None:
                on_sending()
            try:
                results = self._request_once("POST", MODELS_PATH, json=payload)
            except MLSConflictError as exc:
                found = self._find_model(kind, name, version)
                if found is None:
                    raise self._other_type_conflict(kind, name, version, exc) from exc
                return "found", found
            except Exception as exc:
                unknown = unknown or outcome_unknown(exc)
                raise
            created = results.get("id") if isinstance(results, dict) else None
            if isinstance(created, bool) or not isinstance(created, int):
                raise MLSServerError(
                    f"MLS create returned no model id: {results!r}", method="POST", url=self._url(MODELS_PATH)
                )
            return "created", created

        outcome, value = self._call(f"POST {MODELS_PATH}", attempt, retry_safe=True)
        if outcome == "created":
            self.log.info("Created MLS %s model %s/%s (id %s)", kind.value, name, version, value)
            if on_created is not None:
                on_created(value)
            return self._remember(self._get_model_by_id(value))
        found: dict[str, Any] = value
        if unknown:
            ours, why = create_is_ours(found, payload, not_there_at)
            if ours:
                self.log.info(
                    "MLS %s model %s/%s (id %s) is this task's own create (%s): an earlier attempt "
                    "succeeded but its answer was lost",
                    kind.value,
                    name,
                    version,
                    found.get("id"),
                    why,
                )
                return adopted(found)
            return self._on_conflict(kind, found, if_exists, update, f"it is not this task's write: {why}")
        return self._on_conflict(kind, found, if_exists, update, "another writer created it meanwhile")

    def _known_create(self, kind: ModelType, name: str, version: str, known_id: int) -> dict[str, Any] | None:
        """The model ``known_id`` when it is still this create's (same type, name and version), else None."""
        try:
            model = self._get_model_by_id(rules.check_id(known_id, "known_id"))
        except MLSNotFoundError:
            model = None
        if model is not None and (model.get("model_type"), model.get("name"), model.get("version")) == (
            kind.value,
            name,
            version,
        ):
            self.log.info(
                "MLS %s model %s/%s (id %s) is this task's own create, recorded by an earlier try",
                kind.value,
                name,
                version,
                known_id,
            )
            return model
        self.log.warning(
            "MLS model %s, recorded by an earlier try of this task as its create of %s/%s, %s: creating it anew",
            known_id,
            name,
            version,
            "is gone" if model is None else f"now holds {model.get('name')}/{model.get('version')}",
        )
        return None

    @staticmethod
    def _earlier_try(
        model: Mapping[str, Any], payload: Mapping[str, Any], not_before: datetime
    ) -> tuple[bool, str]:
        """Is ``model``, found before this call's first POST, an earlier try's create? (and why not)."""
        if parse_timestamp(model.get("created_at")) is None:
            return False, "it existed before this create began and has no created_at to date it"
        ours, why = create_is_ours(model, payload, not_before)
        if not ours:
            return False, f"it existed before this create began and is not an earlier try's: {why}"
        return True, f"same payload, created at {model.get('created_at')}, not before the first try began"

    def _remember(self, model: dict[str, Any]) -> dict[str, Any]:
        """Record ``model`` as this hook's own last written state of it (see ``_base_state``)."""
        id = model.get("id")
        if isinstance(id, int) and not isinstance(id, bool):
            self._written[id] = copy.deepcopy(model)
        return model

    def _other_type_conflict(
        self, kind: ModelType, name: str, version: str, conflict: MLSConflictError
    ) -> MLSConflictError:
        return MLSConflictError(
            f"{conflict.message}; no {kind.value} model holds {name}/{version}: a model of the other "
            "type does (or it was deleted meanwhile), so if_exists cannot reuse it",
            code=conflict.code,
            status=conflict.status,
            method=conflict.method,
            url=conflict.url,
        )

    def _on_conflict(
        self,
        kind: ModelType,
        existing: dict[str, Any],
        if_exists: str,
        update: Mapping[str, Any] | None,
        why: str,
    ) -> dict[str, Any]:
        """A (name, version) held by a model this create did not write: ``if_exists`` decides."""
        name, version, id = existing.get("name"), existing.get("version"), existing.get("id")
        if if_exists == "skip":
            self.log.info(
                "MLS %s model %s/%s exists (id %s; %s); if_exists=skip: returning it unchanged",
                kind.value,
                name,
                version,
                id,
                why,
            )
            return existing
        if if_exists == "update" and update is not None:
            self.log.info(
                "MLS %s model %s/%s exists (id %s; %s); if_exists=update: storing %s",
                kind.value,
                name,
                version,
                id,
                why,
                ", ".join(sorted(update)) or "nothing",
            )
            if not update:
                return existing
            return self._update_manual(
                existing, self._field_units(update, existing), ", ".join(sorted(update))
            )
        choices = "'skip' returns it unchanged, 'update' updates it in place"
        if kind is not ModelType.MANUAL or update is None:
            choices = "'skip' returns it unchanged"
        raise MLSConflictError(
            f"a {kind.value} model {name!r} version {version!r} exists already (id {id}; {why}); "
            f"if_exists={if_exists!r} fails on that: {choices}",
            code=409,
            method="POST",
            url=self._url(MODELS_PATH),
        )

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
        if_exists: str = "fail",
        not_before: datetime | None = None,
        known_id: int | None = None,
        on_sending: Callable[[], None] | None = None,
        on_created: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Create (deploy) a manual model; returns the created model (3 requests: look-up, POST, GET).

        ``features``: a comma-separated string or a list of names. ``components``: component
        names or component dicts (their ``name`` is sent).

        ``if_exists`` decides what a model that this call did not create means, when it holds
        the (name, version): ``fail`` (``MLSConflictError``), ``skip`` (return it unchanged) or
        ``update`` (store the values given here in it, as ``update_manual_model``; ``None``
        fields are kept). A model is this call's own only when it provably is: created by one of
        its attempts (after an ambiguous failure: the same content, created after the call began,
        by the server's clock).

        ``not_before``: for a retry of a task whose earlier try may have created the model but
        lost the answer (the Airflow task retry after the hook's own retries ran out): when the
        first try began (an aware datetime). A model already holding the (name, version) is then
        this task's own when it holds exactly this call's values and its ``created_at`` is not
        before ``not_before``. That time comes from Airflow, not from MLS: the two clocks' skew
        moves the window by as much (see docs/hook.md, "Creates and updates: what is guaranteed").

        ``known_id``, ``on_sending`` and ``on_created``: a task that keeps state across its tries
        (Airflow 3.3's task state store) records that it is about to POST (``on_sending()``) and
        the id ``on_created(id)`` gives the moment MLS answers, and passes that id back as
        ``known_id`` on its next try: that model is returned (or updated, for
        ``if_exists="update"``) by identity, whatever the clocks say or whoever edited it.
        """
        if_exists = check_if_exists(if_exists)
        not_before = rules.check_not_before(not_before)
        checked: dict[str, Any] = {
            "model_type": ModelType.MANUAL.value,
            "name": rules.check_name(name, "name"),
            "version": rules.check_version(version, "version"),
            "description": rules.check_optional_str(description, "description"),
            "creator": rules.check_optional_str(creator, "creator"),
            "model_lib": rules.check_model_lib(model_lib),
            "model_data": rules.check_optional_str(model_data, "model_data"),
            "model_meta": rules.check_json_dict(model_meta, "model_meta") if model_meta is not None else None,
            "features": rules.check_features(features),
            "table": "" if table == "" else (None if table is None else rules.check_table(table)),
            "components": rules.check_components(components),
        }
        # As the reference client: a field without a value ("", {}, [] or None) is left out.
        payload = {k: v for k, v in checked.items() if v is not None and v not in ("", {}, [])}
        # An update stores every value given, "", {} and [] included (they clear the field, as
        # in update_manual_model); only None keeps the field.
        update = {k: v for k, v in checked.items() if k in MANUAL_FIELDS and v is not None}
        return self._create_model(
            payload,
            if_exists=if_exists,
            update=update,
            not_before=not_before,
            known_id=known_id,
            on_sending=on_sending,
            on_created=on_created,
        )

    create_model_deployment = create_manual_model

    def create_automl_model(
        self,
        name: str,
        version: str,
        description: str,
        *,
        dataset_id: int | None = None,
        dataset_name: str | None = None,
        if_exists: str = "fail",
        not_before: datetime | None = None,
        known_id: int | None = None,
        on_sending: Callable[[], None] | None = None,
        on_created: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Create an AutoML model (training starts) from a dataset given by id or by name (exactly one).

        ``if_exists``: ``fail`` (``MLSConflictError``) or ``skip`` (return the model that holds the
        (name, version)), with the provenance rule of ``create_manual_model`` (and its ``not_before``,
        ``known_id``, ``on_sending`` and ``on_created``). MLS has no way to cancel a training once
        it started.
        """
        if_exists = check_if_exists(if_exists, ("fail", "skip"))
        not_before = rules.check_not_before(not_before)
        name, version = rules.check_name(name, "name"), rules.check_version(version, "version")
        description = rules.check_optional_str(description, "description") or ""
        if (dataset_id is None) == (dataset_name is None):
            raise MLSValidationError("dataset_id", "give exactly one of dataset_id and dataset_name")
        if dataset_id is None:
            dataset_id = rules.model_id(
                self.get_dataset(name=rules.check_str(dataset_name, "dataset_name")), "dataset_name"
            )
        payload = {
            "model_type": ModelType.AUTOML.value,
            "name": name,
            "version": version,
            "description": description,
            "dataset_id": rules.check_id(dataset_id, "dataset_id"),
        }
        return self._create_model(
            payload,
            if_exists=if_exists,
            not_before=not_before,
            known_id=known_id,
            on_sending=on_sending,
            on_created=on_created,
        )

    # ---- models: update ---------------------------------------------------------------------

    def _base_state(self, model: ModelRef) -> dict[str, Any]:
        """The state an update starts from (its PUT carries the whole model built from it).

        The caller's dict only when it is this hook's own last written state of that model (what
        its last create or verified update read back, unchanged): chained writes save a read.
        Any other dict may be stale (another writer may have changed the model since it was read)
        and a PUT built from it would silently undo that change, so the model is read first.
        """
        id = rules.model_id(model)
        if isinstance(model, Mapping):
            written = self._written.get(id)
            if written is not None and dict(model) == written:
                return copy.deepcopy(written)
        return self._get_model_by_id(id, ModelType.MANUAL)

    @staticmethod
    def _manual_body(current: Mapping[str, Any]) -> dict[str, Any]:
        """The whole manual model as a PUT carries it, as the reference client builds it: every field
        whose value is not ``None``; a ``None`` field is left out, never sent as ``null``."""
        body: dict[str, Any] = {
            "model_type": ModelType.MANUAL.value,
            "name": current.get("name"),
            "version": current.get("version"),
        }
        for field in MANUAL_FIELDS:
            if current.get(field) is not None:
                body[field] = copy.deepcopy(current[field])
        if current.get("components") is not None:
            body["components"] = rules.component_names(current["components"])
        return body

    @staticmethod
    def _field_units(changes: Mapping[str, Any], base: Mapping[str, Any]) -> list[Unit]:
        return [field_unit(field, value, base) for field, value in changes.items()]

    def _settle(self, slowest: float) -> float:
        """How long to wait before verifying: ``write_settle``, or twice this write's slowest request (jittered)."""
        base = self._settings().write_settle
        settle = min(max(base, 2 * slowest), max(base, MAX_WRITE_SETTLE))
        return settle * random.uniform(1.0, 1.25)

    def _update_manual(
        self, model: ModelRef, units: list[Unit] | Callable[[dict[str, Any]], list[Unit]], what: str
    ) -> dict[str, Any]:
        """Write ``units`` into a manual model and verify them; rewrite what concurrent writers undid.

        Each round: PUT the whole model (the newest state read, plus every unit), wait the settle
        time, read the model back and judge each unit (``Unit.verdict``). Units ``lost`` (back to
        their value before this write) are written again in the next round, from a fresh read,
        after a jittered backoff; units ``replaced`` by another writer's later value are left to
        that writer (last writer wins). At most ``MAX_WRITE_ROUNDS`` rounds, then
        ``MLSWriteConflictError``. Returns the model as the last verifying read saw it.
        """
        id = rules.model_id(model)
        path = f"{MODELS_PATH}/{id}"
        started = time.monotonic()
        base = self._base_state(model)
        slowest = time.monotonic() - started
        if base.get("model_type") != ModelType.MANUAL.value:
            raise MLSValidationError(
                "model_id", f"model {id} is a {base.get('model_type')} model; only manual models are updated"
            )
        active = units(base) if callable(units) else units
        for round_ in range(1, MAX_WRITE_ROUNDS + 1):
            if round_ > 1:
                time.sleep(random.uniform(0, min(MAX_WRITE_BACKOFF, WRITE_BACKOFF * 2 ** (round_ - 2))))
                started = time.monotonic()
                base = self._get_model_by_id(id, ModelType.MANUAL)
                slowest = time.monotonic() - started
            body = self._manual_body(base)
            for unit in active:
                unit.write(body)
            if any(unit.label.split(".", 1)[0] == "model_meta" for unit in active):
                rules.check_json_dict(
                    body["model_meta"], "model_meta"
                )  # what a merge adds up to must fit too
            started = time.monotonic()
            wait_at_least = 0.0
            try:
                self._request_once("PUT", path, json=body)
            except Exception as exc:
                if not retryable_error(exc):
                    if isinstance(exc, MLSError):
                        raise
                    raise self._unreachable(f"PUT {path}", exc, 1) from exc
                # Maybe stored, maybe not: the verifying read tells; the same body is never resent blindly.
                self.log.warning(
                    "MLS PUT %s failed (%s: %s); verifying what was stored", path, type(exc).__name__, exc
                )
                wait_at_least = min(retry_after_of(exc) or 0.0, self.retry_max_wait)
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(max(self._settle(slowest), wait_at_least))
            current = self._get_model_by_id(id, ModelType.MANUAL)
            verdicts = {unit.label: unit.verdict(current) for unit in active}
            replaced = [label for label, v in verdicts.items() if v == "replaced"]
            if replaced:
                self.log.info(
                    "MLS model %s: %s since written again by another writer (last writer wins)",
                    id,
                    ", ".join(replaced),
                )
            lost = [unit for unit in active if verdicts[unit.label] == "lost"]
            if not lost:
                self._remember(current)
                self.log.info("MLS model %s: %s stored and verified (round %s)", id, what, round_)
                return current
            self.log.warning(
                "MLS model %s: %s undone by a concurrent write (or not stored); writing again (round %s of %s)",
                id,
                ", ".join(unit.label for unit in lost),
                round_ + 1,
                MAX_WRITE_ROUNDS,
            )
            active = [unit for unit in active if verdicts[unit.label] != "replaced"]
        raise MLSWriteConflictError(
            f"model {id}: concurrent writes undid {what} in each of {MAX_WRITE_ROUNDS} rounds; "
            "nothing is half-written (each round writes the whole model); retry once the other writers are done",
            method="PUT",
            url=self._url(path),
        )

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
        """Update a manual model; returns the model as read after the update was verified.

        ``None`` keeps a field; ``""`` clears a string field (sent as ``""``, as the reference client
        does; ``model_lib`` cannot be cleared), ``{}`` clears ``model_meta``, ``[]`` clears
        ``components``. ``name`` and ``version`` can be changed but not cleared. The PUT leaves
        out every field whose value is ``None`` (never ``null``). Requests: GET (the current state), PUT, verifying GET (3). The read is saved
        (2 requests) only when the dict given is this hook's own last written state of the model,
        exactly as its last create or update of it returned it (chained writes); any other dict
        may be stale and a PUT built from it would silently undo another writer's change.

        Guarantee (see docs/hook.md, "Creates and updates: what is guaranteed"): the fields given here are stored
        when this returns, unless another writer wrote a different value into the same field
        later (last writer wins). A concurrent update of other fields is not undone by this one
        (nor this one by it) as long as each writer's read-to-write time stays under the
        settle time (``write_settle``).
        """
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = rules.check_name(name, "name")
        if version is not None:
            changes["version"] = rules.check_version(version, "version")
        for field, value in (("description", description), ("creator", creator), ("model_data", model_data)):
            if value is not None:
                changes[field] = rules.check_optional_str(value, field)
        if table is not None:
            changes["table"] = "" if table == "" else rules.check_table(table)
        if model_lib is not None:
            if model_lib == "":
                raise MLSValidationError(
                    "model_lib", "cannot be cleared: MLS takes one of " + ", ".join(MODEL_LIBS)
                )
            changes["model_lib"] = rules.check_model_lib(model_lib)
        if features is not None:
            changes["features"] = rules.check_features(features) or ""
        if model_meta is not None:
            changes["model_meta"] = rules.check_json_dict(model_meta, "model_meta")
        if components is not None:
            changes["components"] = rules.check_components(components)
        return self._update_manual(
            model, lambda base: self._field_units(changes, base), ", ".join(sorted(changes))
        )

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

        ``remove_keys`` are then removed. The caller's dicts are never modified. A merge is of
        top-level keys, verified key by key: concurrent merges of distinct keys keep every key;
        the same key written by two merges keeps the last one written. Requests and guarantee as
        ``update_manual_model``.
        """
        new_meta = rules.check_json_dict(model_meta, "model_meta")
        if isinstance(remove_keys, str) or not all(isinstance(k, str) for k in remove_keys):
            raise MLSValidationError("remove_keys", "expected a list of key names")
        removed = list(dict.fromkeys(remove_keys))
        if not partial_update:
            for key in removed:
                new_meta.pop(key, None)
            return self._update_manual(
                model, lambda base: self._field_units({"model_meta": new_meta}, base), "model_meta"
            )

        def units(base: dict[str, Any]) -> list[Unit]:
            made = [meta_key_unit(k, v, base) for k, v in new_meta.items() if k not in removed]
            return made + [meta_key_unit(k, MISSING, base) for k in removed]

        keys = [f"model_meta.{k}" for k in (*new_meta, *removed)]
        return self._update_manual(model, units, ", ".join(keys) or "model_meta (nothing)")

    update_model_deployment_meta = update_manual_model_meta

    def update_manual_model_components(
        self, model: ModelRef, components: Sequence[str | Mapping[str, Any]]
    ) -> dict[str, Any]:
        """Set the model's components (names or component dicts); ``[]`` clears them.

        Requests and guarantee as ``update_manual_model``.
        """
        names = rules.check_components(components)
        return self._update_manual(
            model, lambda base: self._field_units({"components": names}, base), "components"
        )

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
        id = rules.model_id(model)
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

    # ---- readiness: the checks of ``airflow_provider_mls.checks``, run once -----------------------

    def _steps(self, steps: Generator[Request, Any, T]) -> T:
        return run_steps(steps, lambda request: self.run(request.method, request.path, params=request.params))

    def run_check(self, check: Check) -> Outcome:
        """Run one readiness check (``airflow_provider_mls.checks``): the same logic as the triggers."""
        return self._steps(check.steps())

    def is_table_active(self, table: str) -> bool:
        """Is the batch prediction table active? A table that does not exist is not active."""
        return self._steps(table_flag(rules.check_str(table, "table"), "is_active"))

    def is_table_loading(self, table: str) -> bool:
        return self._steps(table_flag(rules.check_str(table, "table"), "is_loading"))

    def drop_table(self, table: str) -> bool:
        """Drop a batch prediction table; False when it was already gone (404)."""
        try:
            self.run("DELETE", table_path(rules.check_str(table, "table")))
        except MLSNotFoundError:
            self.log.info("MLS table %s does not exist (already dropped)", table)
            return False
        self.log.info("Dropped MLS table %s", table)
        return True

    def is_batch_prediction_ready(self, model: ModelRef) -> bool:
        """Is the model's batch prediction table active and not loading? (``checks.TableReadyCheck``)

        Given a dict with ``table``: 1 request when the table is not active, else 2; given an id,
        one more (the model, for its table). A model without a table has no batch prediction:
        ``MLSValidationError`` naming ``table``.
        """
        current = self._model_dict(model, "table")
        table = current.get("table")
        if not table:
            raise MLSValidationError(
                "table", f"model {current.get('id')} has no table, so no batch prediction"
            )
        return ready(self.run_check(TableReadyCheck(table=str(table), model_id=rules.model_id(model))))

    def get_artifact_info(self, name: str, version: str) -> Any:
        """The registry's artifact info of (name, version), or None when there is no artifact."""
        return self._steps(artifact_info(rules.check_str(name, "name"), rules.check_str(version, "version")))

    def is_online_prediction_ready(self, model: ModelRef) -> bool:
        """Does the model's artifact exist in the registry? (``checks.ArtifactReadyCheck``)

        1 request given a dict with ``name`` and ``version``; given an id, one more (the model).
        """
        current = self._model_dict(model, "name", "version")
        return ready(
            self.run_check(
                ArtifactReadyCheck(
                    name=str(current["name"]), version=str(current["version"]), model_id=rules.model_id(model)
                )
            )
        )

    # ---- AutoML model server --------------------------------------------------------------------

    def _server_path(self, model: ModelRef) -> str:
        return f"{MODELS_PATH}/{rules.model_id(model)}/automl_model_server"

    def _handler_path(self, model: ModelRef) -> str:
        return f"{MODELS_PATH}/{rules.model_id(model)}/automl_online_prediction"

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
        source = rules.check_handler(handler)
        return self.run("POST", self._handler_path(model), json={"handler": source}, retry_safe=True)

    def get_automl_model_error(self, model: ModelRef) -> str | None:
        """Why the AutoML training failed (``automl_model_info["error"]``), or None. Always read fresh."""
        current = self._get_model_by_id(rules.model_id(model), ModelType.AUTOML)
        info = current.get("automl_model_info") or {}
        error = info.get("error") if isinstance(info, dict) else None
        return str(error) if error else None

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
        from_id = rules.model_id(from_model, "from_model")
        if prediction_type is not None:
            prediction_type = rules.check_prediction_type(prediction_type)
        request: dict[str, Any] = {}
        if static_value is not None:
            request["static_value"] = rules.check_json_dict(static_value, "static_value")
        if prediction_type == "static" and static_value is None:
            raise MLSValidationError("static_value", "prediction_type 'static' needs a static_value")
        if prediction_type in (None, *PREDICTION_MODEL_KEYS):
            if to_model is None:
                raise MLSValidationError(
                    "to_model", f"prediction_type {prediction_type or 'online/automl'} needs a target model"
                )
            to_id = rules.model_id(to_model, "to_model")
            if prediction_type is None:
                target = self._model_dict(to_model, "model_type")
                prediction_type = "automl" if target.get("model_type") == ModelType.AUTOML.value else "online"
            request[PREDICTION_MODEL_KEYS[prediction_type]] = to_id
        request["prediction_type"] = prediction_type
        body = {"model_id": from_id, "migration_request": request}
        return list(self.run("POST", "/api/v1/bucket_migrations", json=body, retry_safe=False) or [])
