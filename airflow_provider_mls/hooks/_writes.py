"""What makes the hook's writes never silently wrong: create provenance and verified updates.

No I/O here: the hook sends the requests; these helpers decide what a model it read means.

* **Creates.** After an ambiguous failure (the POST may or may not have landed), a model found
  under the task's (name, version) is the task's own only when ``create_is_ours``: it holds
  exactly the payload and the server created it after the create began (its ``created_at`` is
  not before the ``Date`` of the server's answer to the look-up that found no such model).
* **Updates.** MLS has no conditional write: a PUT carries the whole model, so two writers that
  read before either wrote undo each other's change. Each change is a ``Unit`` (a field, a meta
  key, the whole meta, the components) that knows its value before the write and the value
  wanted; after the write a fresh read gives each unit a verdict: ``ours`` (stored), ``lost``
  (back to the value before: a concurrent write made from an older read undid it, or the write
  never landed) or ``replaced`` (a third value: another writer wrote the same thing later; the
  last writer wins and this one does not fight it).
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from airflow_provider_mls.rules import MANUAL_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

Verdict = Literal["ours", "lost", "replaced"]


class _Missing:
    """A meta key that is absent (removed, or never there)."""

    def __repr__(self) -> str:
        return "<absent>"


MISSING: Any = _Missing()


def component_names_of(value: Any) -> list[str]:
    """Component names from a model's ``components`` (objects or names)."""
    names: list[str] = []
    for item in value or []:
        name = item.get("name") if isinstance(item, dict) else item
        names.append(str(name))
    return names


def normalize_field(field: str, value: Any) -> Any:
    """A manual model field as comparable across what was sent and what MLS stores.

    MLS stores an absent description/features as ``""`` and an absent meta as ``{}``; components
    come back as objects and are sent as names; features may be sent as a list.
    """
    if field == "model_meta":
        return value or {}
    if field == "components":
        return component_names_of(value)
    if field == "features" and isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or None
    if field in ("name", "version"):
        return value
    return value if value not in ("", None) else None


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header as an aware datetime (whole seconds, as the header has them)."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_timestamp(value: Any) -> datetime | None:
    """A model's ISO 8601 ``created_at``/``updated_at`` as an aware datetime (UTC when it has no zone)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def payload_mismatches(model: Mapping[str, Any], payload: Mapping[str, Any]) -> list[str]:
    """The fields in which ``model`` differs from the create ``payload`` (empty: same content)."""
    wrong: list[str] = []
    for field in ("model_type", "name", "version"):
        if model.get(field) != payload.get(field):
            wrong.append(field)
    if payload.get("model_type") == "automl":
        if (model.get("description") or "") != (payload.get("description") or ""):
            wrong.append("description")
        if model.get("dataset_id") != payload.get("dataset_id"):
            wrong.append("dataset_id")
        return wrong
    for field in MANUAL_FIELDS:
        if field == "creator" and payload.get("creator") is None:
            continue  # the service fills in its user
        if normalize_field(field, model.get(field)) != normalize_field(field, payload.get(field)):
            wrong.append(field)
    return wrong


def create_is_ours(
    model: Mapping[str, Any], payload: Mapping[str, Any], not_there_at: datetime | None
) -> tuple[bool, str]:
    """Is ``model`` provably the result of this create? (and why not).

    The caller has seen, before its first POST, that no such model existed (the look-up's answer
    carried the server's ``Date``: ``not_there_at``). The model is ours when it holds the payload
    and its ``created_at`` is not before that date. ``Date`` has whole seconds and servers may
    refresh it only once a second, so it is never later than the look-up but may be a little
    earlier: on its own it cannot tell apart a model created just before the look-up; the
    look-up that found nothing can. The date is the second, necessary condition (a model
    created before it existed before this create, whatever a lagging list said).
    """
    wrong = payload_mismatches(model, payload)
    if wrong:
        return False, f"it differs from this task's payload in {', '.join(wrong)}"
    created = parse_timestamp(model.get("created_at"))
    if not_there_at is not None and created is not None and created < not_there_at:
        return False, (
            f"it was created at {model.get('created_at')}, before this task's create began "
            f"({not_there_at.isoformat()} by the server's clock)"
        )
    return True, "same payload, created after this task's create began"


@dataclass
class Unit:
    """One change of an update: how to read it from a model, how to put it in a PUT body."""

    label: str
    read: Callable[[Mapping[str, Any]], Any]
    write: Callable[[dict[str, Any]], None]
    wanted: Any
    before: Any

    def verdict(self, model: Mapping[str, Any]) -> Verdict:
        value = self.read(model)
        if value == self.wanted:
            return "ours"
        if value == self.before:
            return "lost"
        return "replaced"


def field_unit(field: str, value: Any, base: Mapping[str, Any]) -> Unit:
    """A top-level field of a manual model set to ``value`` (as it is sent)."""

    def read(model: Mapping[str, Any]) -> Any:
        return normalize_field(field, model.get(field))

    def write(body: dict[str, Any]) -> None:
        body[field] = value

    return Unit(field, read, write, normalize_field(field, value), read(base))


def meta_key_unit(key: str, value: Any, base: Mapping[str, Any]) -> Unit:
    """One top-level key of ``model_meta`` set to ``value``, or removed (``value`` is ``MISSING``)."""

    def read(model: Mapping[str, Any]) -> Any:
        return (model.get("model_meta") or {}).get(key, MISSING)

    def write(body: dict[str, Any]) -> None:
        meta = body["model_meta"] = body.get("model_meta") or {}
        if value is MISSING:
            meta.pop(key, None)
        else:
            meta[key] = value

    return Unit(f"model_meta.{key}", read, write, value, read(base))
