"""The MLS hook's updates of manual models: a PUT of the whole model, verified by a read, rewritten
what a concurrent writer undid (see ``MLSHook.update_manual_model``)."""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mls import rules
from airflow_provider_mls.constants import MODEL_LIBS, ModelType
from airflow_provider_mls.exceptions import (
    MLSError,
    MLSValidationError,
    MLSWriteConflictError,
)
from airflow_provider_mls.hooks._config import MAX_WRITE_SETTLE
from airflow_provider_mls.hooks._mls_base import MODELS_PATH, MLSHookBase, ModelRef
from airflow_provider_mls.hooks._retry import retry_after_of, retryable_error
from airflow_provider_mls.hooks._writes import (
    MISSING,
    Unit,
    field_unit,
    meta_key_unit,
)
from airflow_provider_mls.rules import MANUAL_FIELDS

if TYPE_CHECKING:
    from collections.abc import Callable


# Updates: how many write-verify rounds, and the backoff between them.
MAX_WRITE_ROUNDS = 8
WRITE_BACKOFF = 0.25  # first re-write waits up to this (jittered), doubling per round
MAX_WRITE_BACKOFF = 8.0


class MLSModelUpdates(MLSHookBase):
    """The updates of ``MLSHook`` (see there)."""

    # ---- models: update ---------------------------------------------------------------------

    def _remember(self, model: dict[str, Any]) -> dict[str, Any]:
        """Record ``model`` as this hook's own last written state of it (see ``_base_state``)."""
        id = model.get("id")
        if isinstance(id, int) and not isinstance(id, bool):
            self._written[id] = copy.deepcopy(model)
        return model

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
        out every field whose value is ``None`` (never ``null``). Requests: GET (the current state), PUT,
        verifying GET (3). The read is saved
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
