"""The MLS hook's creates: never repeated blindly, never returning a model that is not their own
write (see ``MLSHook.create_manual_model``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_mls import rules
from airflow_provider_mls.constants import ModelType
from airflow_provider_mls.exceptions import (
    MLSConflictError,
    MLSNotFoundError,
    MLSServerError,
    MLSValidationError,
)
from airflow_provider_mls.hooks._mls_base import MODELS_PATH
from airflow_provider_mls.hooks._mls_update import MLSModelUpdates
from airflow_provider_mls.hooks._retry import outcome_unknown
from airflow_provider_mls.hooks._writes import create_is_ours, parse_timestamp
from airflow_provider_mls.rules import MANUAL_FIELDS, check_if_exists

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime


class MLSModelCreates(MLSModelUpdates):
    """The creates of ``MLSHook`` (see there)."""

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
