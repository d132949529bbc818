"""Readiness checks as data: the one definition of "is it there yet?" for sensors, operators and triggers.

A check is a small, JSON-serializable description (``Check.to_dict()`` / ``check_from_dict``)
whose ``steps()`` generator yields the MLS requests it needs and receives their ``results``
(or has the request's ``MLSError`` thrown in). It returns an ``Outcome``: ``done`` (with a
small JSON-serializable value), ``waiting`` or ``failed`` (terminal: waiting longer cannot help).
No I/O happens here, so the sync hook (``MLSHook.run_check``) and the async trigger client
(``MLSAsyncClient.run_check``) drive exactly the same logic. No Airflow, requests or httpx
imports: DAG files import this module through the sensors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar
from urllib.parse import quote

from airflow_provider_mls.constants import ModelStatus, ModelType, ServerStatus
from airflow_provider_mls.exceptions import MLSError, MLSNotFoundError, MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator, Mapping

MODELS_PATH = "/api/v1/models"

State = Literal["done", "waiting", "failed"]
T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """One MLS call of a check; always safe to repeat (GET)."""

    method: str
    path: str
    params: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    state: State
    message: str
    value: Any = None

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def failed(self) -> bool:
        return self.state == "failed"


def table_path(table: str, suffix: str = "") -> str:
    return f"/api/v1/dynamodb/tables/{quote(table, safe='')}{suffix}"


# The reads the checks are made of (``run_steps`` drives one alone: the hook's is_table_active, ...).
def table_flag(table: str, flag: str) -> Generator[Request, Any, bool]:
    """Is ``flag`` (``is_active`` or ``is_loading``) of a batch prediction table set? (1 request)."""
    results = yield Request("GET", table_path(table, f"/{flag}"))
    return bool((results or {}).get(flag))


def artifact_info(name: str, version: str) -> Generator[Request, Any, Any]:
    """The registry's artifact info of (name, version); None when there is none (1 request)."""
    results = yield Request(
        "GET", "/api/v1/model_registry/artifacts/info", {"model_name": name, "model_version": version}
    )
    return results.get("info") if isinstance(results, dict) else None


def ready(outcome: Outcome) -> bool:
    """A poke's answer: done is True, waiting is False, failed raises ``MLSError``."""
    if outcome.failed:
        raise MLSError(outcome.message)
    return outcome.done


@dataclass(frozen=True)
class Check:
    """Base of the checks; subclasses are frozen dataclasses of JSON values."""

    kind: ClassVar[str] = ""

    def steps(self) -> Generator[Request, Any, Outcome]:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class TableReadyCheck(Check):
    """A batch prediction table is ready: active and not loading (1-2 requests)."""

    kind: ClassVar[str] = "table_ready"
    table: str
    model_id: int | None = None

    def describe(self) -> str:
        owner = f" of model {self.model_id}" if self.model_id is not None else ""
        return f"batch prediction table {self.table!r}{owner}"

    def steps(self) -> Generator[Request, Any, Outcome]:
        if not (yield from table_flag(self.table, "is_active")):
            return Outcome("waiting", f"{self.describe()} is not active yet (is_active=false)")
        if (yield from table_flag(self.table, "is_loading")):
            return Outcome("waiting", f"{self.describe()} is active but still loading (is_loading=true)")
        return Outcome(
            "done",
            f"{self.describe()} is active and not loading",
            {"table": self.table, "model_id": self.model_id},
        )


@dataclass(frozen=True)
class ArtifactReadyCheck(Check):
    """A model version's artifact is in the registry (1 request)."""

    kind: ClassVar[str] = "artifact_ready"
    name: str
    version: str
    model_id: int | None = None

    def describe(self) -> str:
        return f"registry artifact of model {self.name!r} version {self.version!r}"

    def steps(self) -> Generator[Request, Any, Outcome]:
        info = yield from artifact_info(self.name, self.version)
        if not info:  # as sktmls's is_online_prediction_ready: null, {} or "" is not ready
            return Outcome("waiting", f"{self.describe()} does not exist yet (info={info!r})")
        return Outcome(
            "done",
            f"{self.describe()} exists",
            {"model_id": self.model_id, "name": self.name, "version": self.version, "info": info},
        )


def _training_error(model: Mapping[str, Any]) -> str | None:
    info = model.get("automl_model_info")
    error = info.get("error") if isinstance(info, dict) else None
    return str(error) if error else None


# The fields of a model summary: the XCom value of the create/update operators and of
# AutoMLTrainingDoneSensor (see ``summary``).
SUMMARY_FIELDS = (
    "id",
    "name",
    "version",
    "model_type",
    "status",
    "model_lib",
    "model_data",
    "table",
    "dataset_id",
    "created_at",
    "updated_at",
)


def summary(model: Mapping[str, Any]) -> dict[str, Any]:
    """A model as a small XCom value, whatever the size of its meta: ``SUMMARY_FIELDS`` it has.

    The whole model is one ``MLSHook.get_model(id)`` away.
    """
    return {key: model[key] for key in SUMMARY_FIELDS if key in model}


@dataclass(frozen=True)
class TrainingDoneCheck(Check):
    """An AutoML training ended: DONE succeeds with the model's ``summary``, FAILED fails with the
    service's error (1 request).

    Any status it does not know (``UNKNOWN``, or a value the service added) keeps waiting,
    and the message says so: only ``DONE`` is ever success.
    """

    kind: ClassVar[str] = "training_done"
    model_id: int

    def describe(self) -> str:
        return f"AutoML training of model {self.model_id}"

    def steps(self) -> Generator[Request, Any, Outcome]:
        try:
            model = yield Request("GET", f"{MODELS_PATH}/{self.model_id}")
        except MLSNotFoundError:
            return Outcome("failed", f"model {self.model_id} does not exist (any more)")
        if not isinstance(model, dict):
            return Outcome("waiting", f"MLS returned no model object for {self.model_id}; checking again")
        if model.get("model_type") not in (None, ModelType.AUTOML.value):
            return Outcome(
                "failed", f"model {self.model_id} is a {model.get('model_type')} model, not automl"
            )
        raw = model.get("status")
        status = ModelStatus.parse(raw)
        if status is ModelStatus.DONE:
            return Outcome("done", f"{self.describe()} is DONE", summary(model))
        if status is ModelStatus.FAILED:
            error = _training_error(model) or "the service gave no reason"
            return Outcome("failed", f"{self.describe()} FAILED: {error}")
        if status is ModelStatus.TRAINING:
            return Outcome("waiting", f"{self.describe()} is TRAINING")
        return Outcome(
            "waiting",
            f"{self.describe()} has status {raw!r}, which this provider does not know; "
            "waiting for DONE or FAILED",
        )


@dataclass(frozen=True)
class ServerStatusCheck(Check):
    """An AutoML model server left the ``wait_while`` statuses (1 request); done carries the status.

    The caller decides what the settled status means (``RUNNING`` wanted, ``FAILED`` not).
    """

    kind: ClassVar[str] = "server_status"
    model_id: int
    wait_while: tuple[str, ...] = field(default=(ServerStatus.STARTING.value,))

    def describe(self) -> str:
        return f"AutoML model server of model {self.model_id}"

    def steps(self) -> Generator[Request, Any, Outcome]:
        try:
            results = yield Request("GET", f"{MODELS_PATH}/{self.model_id}/automl_model_server")
        except MLSNotFoundError:
            return Outcome("failed", f"model {self.model_id} does not exist (any more)")
        raw = results.get("status") if isinstance(results, dict) else None
        status = ServerStatus.parse(raw).value
        if status in self.wait_while:
            return Outcome("waiting", f"{self.describe()} is {status}; waiting until it is not")
        return Outcome(
            "done", f"{self.describe()} is {status}", {"model_id": self.model_id, "status": status}
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_id": self.model_id, "wait_while": list(self.wait_while)}


CHECKS: dict[str, type[Check]] = {
    cls.kind: cls for cls in (TableReadyCheck, ArtifactReadyCheck, TrainingDoneCheck, ServerStatusCheck)
}


def check_from_dict(data: Mapping[str, Any]) -> Check:
    """Rebuild a check from ``to_dict()`` (the trigger's serialized kwargs)."""
    if not isinstance(data, dict) or data.get("kind") not in CHECKS:
        raise MLSValidationError("check", f"unknown check {data!r}; expected kind in {sorted(CHECKS)}")
    fields = {k: v for k, v in data.items() if k != "kind"}
    if "wait_while" in fields:
        fields["wait_while"] = tuple(fields["wait_while"])
    try:
        return CHECKS[data["kind"]](**fields)
    except TypeError as exc:
        raise MLSValidationError("check", f"bad {data['kind']} check {data!r}: {exc}") from None


def run_steps(steps: Generator[Request, Any, T], call: Callable[[Request], Any]) -> T:
    """Drive ``steps`` with a sync ``call(request) -> results``; an ``MLSError`` goes into them."""
    try:
        request = next(steps)
        while True:
            try:
                results = call(request)
            except MLSError as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(results)
    except StopIteration as stop:
        value: T = stop.value
        return value


def run_check(check: Check, call: Callable[[Request], Any]) -> Outcome:
    """Drive a check with a sync ``call(request) -> results``; an ``MLSError`` goes into the check."""
    return run_steps(check.steps(), call)


async def arun_check(check: Check, call: Callable[[Request], Awaitable[Any]]) -> Outcome:
    """``run_check`` with an async ``call``."""
    steps = check.steps()
    try:
        request = next(steps)
        while True:
            try:
                results = await call(request)
            except MLSError as exc:
                request = steps.throw(exc)
            else:
                request = steps.send(results)
    except StopIteration as stop:
        outcome: Outcome = stop.value
        return outcome
