"""The MLS hook: every call of the ``sktmls`` ``MLModelClient``, over the MLS REST protocol.

``MLSHook`` is built in floors: ``hooks/_mls_base.py`` (connection, requests, reads),
``hooks/_mls_update.py`` (verified updates) and ``hooks/_mls_create.py`` (creates); this module
adds deletes, readiness (``checks.py``), the AutoML model server and bucket moves."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mls import rules
from airflow_provider_mls.checks import (
    ArtifactReadyCheck,
    TableReadyCheck,
    artifact_info,
    ready,
    run_steps,
    table_flag,
    table_path,
)
from airflow_provider_mls.constants import PREDICTION_MODEL_KEYS, ModelType, ServerStatus
from airflow_provider_mls.exceptions import MLSNotFoundError, MLSValidationError
from airflow_provider_mls.hooks._mls_base import MODELS_PATH, ModelRef
from airflow_provider_mls.hooks._mls_create import MLSModelCreates

if TYPE_CHECKING:
    from collections.abc import Generator, Mapping

    from airflow_provider_mls.checks import Check, Outcome, Request

T = TypeVar("T")


class MLSHook(MLSModelCreates):
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
    URL it resolved to. A 401/403 is never retried; its error names the connection and its login. A model
    create is never repeated blindly, and never returns a model that
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

    # Here, on the class the connection type names: Airflow 2.11 looks for them in its own __dict__.
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form: ``env`` and ``runtime_env``."""
        from airflow_provider_mls._connection_form import connection_form_widgets

        return connection_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_mls._connection_form import ui_field_behaviour

        return ui_field_behaviour()

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
