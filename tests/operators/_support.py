"""Helpers of the operator tests: the shared local MLS server seen from outside, and Airflow's deferral loop."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    from airflow_provider_mls.local.process import LocalMLSServer


def uniq(prefix: str) -> str:
    """A name no other test on the shared server uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Mls(LocalMLSAdmin):
    """The local MLS server through raw HTTP (not the hook): set up state, force simulations, read back."""

    def __init__(self, server: LocalMLSServer) -> None:
        super().__init__(server.url, server.auth, timeout=15)

    def raw(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kwargs)
        return response.status_code, response.json()

    # ---- models ----

    def model(self, id: int) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/api/v1/models/{id}")
        return result

    def edit(self, id: int, **changes: Any) -> None:
        """A person's edit: the model PUT back whole with ``changes``, as the reference client builds a PUT."""
        from airflow_provider_mls.hooks.mls import MLSHook

        self.call("PUT", f"/api/v1/models/{id}", json=MLSHook._manual_body({**self.model(id), **changes}))

    def exists(self, id: int) -> bool:
        return self.raw("GET", f"/api/v1/models/{id}")[0] == 200

    def models(self, name: str) -> list[dict[str, Any]]:
        """Every model (any type) named exactly ``name``."""
        result: list[dict[str, Any]] = self.call("GET", "/api/v1/models", params={"name": name})
        return result

    def manual(self, name: str, version: str = "v1", **fields: Any) -> dict[str, Any]:
        body = {"model_type": "manual", "name": name, "version": version, **fields}
        return self.model(self.call("POST", "/api/v1/models", json=body)["id"])

    def component(self, name: str, info: str = "info") -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/api/v1/components", json={"name": name, "info": info, "is_latest": True}
        )
        return result

    def automl(self, name: str, version: str = "v1", *, trained: bool = True) -> dict[str, Any]:
        """An AutoML model on a new dataset; ``trained`` ends its training now (DONE) instead of in 1 s."""
        return self.create_automl_model(name, version, description="d", trained=trained)

    # ---- AutoML server and handler ----

    def server_status(self, id: int) -> str:
        return str(self.call("GET", f"/api/v1/models/{id}/automl_model_server")["status"])

    def stop_server(self, id: int) -> None:
        self.call("DELETE", f"/api/v1/models/{id}/automl_model_server")

    def wait_server(self, id: int, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (current := self.server_status(id)) != status:
            assert time.monotonic() < deadline, f"server of model {id} is {current}, not {status}"
            time.sleep(0.05)

    def handler(self, id: int) -> str | None:
        handler: str | None = self.call("GET", f"/api/v1/models/{id}/automl_online_prediction")["handler"]
        return handler

    def set_handler(self, id: int, source: str) -> None:
        self.call("POST", f"/api/v1/models/{id}/automl_online_prediction", json={"handler": source})

    # ---- tables, experiments, buckets ----

    def table_active(self, table: str) -> bool:
        return bool(self.call("GET", f"/api/v1/dynamodb/tables/{table}/is_active")["is_active"])

    def experiment(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", "/api/v1/experiments", json={"name": name, "bucketing_seed": "seed"}
        )
        return result

    def bucket(self, experiment_id: int, name: str, model: dict[str, Any]) -> dict[str, Any]:
        kind = "automl" if model["model_type"] == "automl" else "online"
        result: dict[str, Any] = self.call(
            "POST",
            f"/api/v1/experiments/{experiment_id}/buckets",
            json={"name": name, "prediction_type": kind, f"{kind}_model_id": model["id"]},
        )
        return result

    def buckets(self, experiment_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call("GET", f"/api/v1/experiments/{experiment_id}/buckets")
        return result


def record_requests(op: Any) -> list[tuple[str, str]]:
    """(method, path) of every request the operator's hook sends from now on (also unanswered ones)."""
    session = op.hook.get_conn()
    calls: list[tuple[str, str]] = []
    send = session.send

    def recording_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        calls.append((str(request.method), urlsplit(str(request.url)).path))
        return send(request, **kwargs)

    session.send = recording_send
    return calls


def writes(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [c for c in calls if c[0] != "GET"]


async def _first_event(trigger: BaseTrigger, timeout: float) -> TriggerEvent:
    events = trigger.run()
    try:
        return await asyncio.wait_for(events.__anext__(), timeout)
    finally:
        await events.aclose()


class DeferredRun:
    """Run a deferrable task as Airflow does: ``execute``; on ``TaskDeferred`` rebuild the trigger from
    ``serialize()``, take its first event and resume a *fresh* task instance (a resumed task keeps only
    the deferral's kwargs) with ``resume_execution``; repeat until the task returns or raises.
    """

    def __init__(
        self,
        make_op: Callable[[], Any],
        context: dict[str, Any] | None = None,
        *,
        event_only: bool = False,
        before_trigger: Callable[[int], None] | None = None,
    ) -> None:
        self.make_op = make_op
        # Called with the deferral's index (0, 1, ...) before its trigger runs: the world moving on.
        self.before_trigger = before_trigger
        # Resume with the event alone, as ``airflow dags test`` does on Airflow 3.3 (it drops the kwargs).
        self.event_only = event_only
        self.context: dict[str, Any] = context if context is not None else {}
        self.checks: list[dict[str, Any]] = []  # the check of each deferral
        self.triggers: list[dict[str, Any]] = []  # the serialized kwargs of each deferral's trigger
        self.events: list[dict[str, Any]] = []  # the payload of each trigger event
        self.kwargs: list[dict[str, Any]] = []  # the kwargs each deferral hands to execute_complete

    @property
    def deferrals(self) -> int:
        return len(self.checks)

    def __call__(self, max_deferrals: int = 5, event_timeout: float = 30.0) -> Any:
        try:
            return self.make_op().execute(self.context)
        except TaskDeferred as exc:
            deferred = exc
        while True:
            assert self.deferrals < max_deferrals, f"deferred more than {max_deferrals} times"
            assert deferred.method_name == "execute_complete"
            assert isinstance(deferred.timeout, timedelta) and deferred.timeout.total_seconds() > 0
            classpath, kwargs = deferred.trigger.serialize()
            json.dumps(kwargs)  # the triggerer stores them
            module, _, name = classpath.rpartition(".")
            trigger = getattr(importlib.import_module(module), name)(**kwargs)
            self.checks.append(kwargs["check"])
            self.triggers.append(kwargs)
            self.kwargs.append(dict(deferred.kwargs or {}))
            if self.before_trigger is not None:
                self.before_trigger(self.deferrals - 1)
            event = asyncio.run(_first_event(trigger, event_timeout))
            self.events.append(event.payload)
            next_kwargs = {**({} if self.event_only else deferred.kwargs or {}), "event": event.payload}
            json.dumps(next_kwargs)
            try:
                return self.make_op().resume_execution(deferred.method_name, next_kwargs, self.context)
            except TaskDeferred as exc:
                deferred = exc
