"""A person approves a model version in the Airflow UI: Airflow's own human-in-the-loop approval, for MLS
models and SageMaker model package versions, with the decision written back where the model lives.

``MLSModelApprovalOperator`` and ``ModelPackageApprovalOperator`` are Airflow's ``ApprovalOperator``
(``airflow.providers.standard.operators.hitl``): the reviewer answers in the UI's "Required actions"
(or through the REST API) with Approve or Reject and a comment. The body (Markdown) says what is
proposed, its metrics next to those of the version that serves now, the differences in features and
model library, and links. The decision is written back: an MLS model gets an ``approval`` entry in its
meta, a model package its ``ModelApprovalStatus`` and an approval description naming the reviewer.
See ``docs/approval.md``.

Needs Airflow 3.1 or later (human-in-the-loop tasks); on Airflow 3.3 the wait needs no triggerer. On
older Airflow this module imports but has no tasks, and importing one of them raises an error that
says which Airflow version it needs.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import AIRFLOW_VERSION_STRING
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

HITL_MIN_AIRFLOW = (3, 1)
TASKS = ("MLSModelApprovalOperator", "ModelPackageApprovalOperator")

APPROVED, REJECTED = "approved", "rejected"
DECISIONS = (APPROVED, REJECTED)
RECORD_KEY = "mls_approval"  # the decision, in the task state store until it is written back (3.3+)
ON_TIMEOUT = ("reject", "fail")
COMMENT = "comment"
METRIC_KEYS = (
    "performance",
    "metrics",
)  # where MLS metas usually keep metrics (the examples use "performance")
MAX_BODY_ROWS = 40


def _version_tuple(text: str) -> tuple[int, int]:
    parts = [int("".join(c for c in p if c.isdigit()) or 0) for p in text.split(".")[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


HITL_AVAILABLE = _version_tuple(AIRFLOW_VERSION_STRING) >= HITL_MIN_AIRFLOW


def unavailable_message(name: str) -> str:
    return (
        f"{name} needs Airflow {'.'.join(map(str, HITL_MIN_AIRFLOW))} or later (human-in-the-loop tasks, "
        f"airflow.providers.standard.operators.hitl); this is Airflow {AIRFLOW_VERSION_STRING}. "
        "On older Airflow, approve in the SageMaker console and wait with ModelPackageApprovedSensor."
    )


# ---- the body: plain functions of plain dicts (unit-tested without Airflow's HITL machinery) ----------


def _cell(value: Any, limit: int = 120) -> str:
    if value is None or value == "":
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def flat_metrics(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"auc": 0.9, "by_segment": {"new": 0.8}}`` -> ``{"auc": 0.9, "by_segment.new": 0.8}`` (no lists)."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                out.update(flat_metrics(item, f"{prefix}{key}."))
            elif not isinstance(item, list):
                out[f"{prefix}{key}"] = item
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def metrics_table(proposed: Mapping[str, Any], serving: Mapping[str, Any] | None) -> list[str]:
    """Markdown rows: each metric of the proposed version next to the serving version's, with the change."""
    names = list(proposed) + [k for k in (serving or {}) if k not in proposed]
    if not names:
        return ["No metrics recorded for either version."]
    lines = ["| metric | proposed | serving now | change |", "|---|---|---|---|"]
    for name in names[:MAX_BODY_ROWS]:
        new, old = proposed.get(name), (serving or {}).get(name)
        a, b = _number(new), _number(old)
        change = f"{a - b:+.4g}" if a is not None and b is not None else "-"
        lines.append(f"| {_cell(name)} | {_cell(new)} | {_cell(old)} | {change} |")
    if len(names) > MAX_BODY_ROWS:
        lines.append(f"| … {len(names) - MAX_BODY_ROWS} more | | | |")
    return lines


def _features(value: Any) -> list[str]:
    if isinstance(value, str):
        return [f.strip() for f in value.split(",") if f.strip()]
    if isinstance(value, list | tuple):
        return [str(f) for f in value]
    return []


def feature_diff(proposed: Any, serving: Any) -> str:
    new, old = _features(proposed), _features(serving)
    added = [f for f in new if f not in old]
    removed = [f for f in old if f not in new]
    if not added and not removed:
        return f"Same {len(new)} feature(s)." if new else "No features recorded."
    parts = []
    if added:
        parts.append(f"added {', '.join(f'`{f}`' for f in added)}")
    if removed:
        parts.append(f"removed {', '.join(f'`{f}`' for f in removed)}")
    return f"{'; '.join(parts).capitalize()} ({len(new)} now, {len(old)} before)."


def render_body(
    *,
    proposed: Mapping[str, Any],
    serving: Mapping[str, Any] | None,
    serving_label: str,
    facts: Sequence[str],
    metrics: tuple[Mapping[str, Any], Mapping[str, Any] | None],
    features: tuple[Any, Any] | None,
    links: Mapping[str, str | None],
    notes: str | None,
    timeout_note: str,
) -> str:
    """The reviewer's Markdown: what is proposed next to what serves now, metrics, features, links."""
    lines = ["#### What is proposed", "", f"| | proposed | {serving_label} |", "|---|---|---|"]
    for fact in facts:
        lines.append(f"| {fact} | {_cell(proposed.get(fact))} | {_cell((serving or {}).get(fact))} |")
    lines += ["", "#### Metrics", "", *metrics_table(*metrics)]
    if features is not None:
        lines += ["", "#### Features", "", feature_diff(*features)]
    shown = [f"- [{label}]({url})" for label, url in links.items() if url]
    if shown:
        lines += ["", "#### Links", "", *shown]
    if notes:
        lines += ["", "#### Notes", "", notes]
    lines += [
        "",
        "---",
        "**Approve** lets the deploy go on; **Reject** stops it. A rejection needs a comment (one without is "
        "not recorded and the request stays open). The decision, your name and your comment are written to "
        f"the model. {timeout_note}",
    ]
    return "\n".join(lines)


def decision_entry(
    *,
    chosen: str,
    event: Mapping[str, Any],
    comment: str,
    dag_run: Mapping[str, Any],
) -> dict[str, Any]:
    """The ``approval`` record: ``{"decision", "by", "at", "comment", "dag_run"}`` (``by`` None on a timeout)."""
    at = event.get("responded_at")
    at_text = at.isoformat() if isinstance(at, datetime) else str(at or datetime.now(UTC).isoformat())
    user = event.get("responded_by_user")
    by = {"id": str(user.get("id")), "name": str(user.get("name"))} if isinstance(user, dict) else None
    return {
        "decision": APPROVED if chosen == "Approve" else REJECTED,
        "by": by,
        "at": at_text,
        "comment": comment,
        "dag_run": dict(dag_run),
    }


def describe_decision(entry: Mapping[str, Any]) -> str:
    """One line for a log and for a model package's approval description."""
    by = entry.get("by")
    who = f"{by['name']} (id {by['id']})" if isinstance(by, dict) else "nobody (response timeout)"
    run = entry.get("dag_run") or {}
    text = (
        f"{str(entry['decision']).capitalize()} in Airflow by {who} at {entry['at']}: {entry['comment'] or '-'}"
        f" [dag run {run.get('dag_id')}/{run.get('run_id')}, task {run.get('task_id')}]"
    )
    return text


def check_assigned_users(value: Any) -> list[dict[str, str]] | None:
    if value is None:
        return None
    users = [value] if isinstance(value, dict) else value
    if not isinstance(users, list | tuple) or not all(
        isinstance(u, dict) and isinstance(u.get("id"), str) and isinstance(u.get("name"), str) for u in users
    ):
        raise MLSValidationError(
            "assigned_users", f'expected {{"id": ..., "name": ...}} or a list of them, got {value!r}'
        )
    return [{"id": u["id"], "name": u["name"]} for u in users]


def check_timeout(value: Any) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise MLSValidationError("response_timeout", f"expected a positive timedelta or None, got {value!r}")
    return value


def check_on_timeout(value: Any) -> str:
    if value not in ON_TIMEOUT:
        raise MLSValidationError("on_timeout", f"expected one of {', '.join(ON_TIMEOUT)}, got {value!r}")
    return str(value)


if HITL_AVAILABLE:
    from airflow.providers.standard.exceptions import HITLRejectException
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    # ParamsDict is public (airflow.sdk's __all__) but missing from its type stub
    from airflow.sdk import Param, ParamsDict  # type: ignore[attr-defined]

    from airflow_provider_mls._compat import (
        AirflowFailException,
        AirflowSkipException,
        TaskRecord,
        task_state,
    )
    from airflow_provider_mls._integration import aws_region, persist_aws_links, persist_mls_links, profile
    from airflow_provider_mls.bases import AWS_FIELDS, fail_fast, registry_hook
    from airflow_provider_mls.constants import ModelType
    from airflow_provider_mls.links import (
        MLSModelLink,
        RegistryArtifactLink,
        SageMakerModelPackageLink,
        mls_model_url,
        model_package_url,
        registry_artifact_url,
    )
    from airflow_provider_mls.refs import PACKAGE_REF_FIELDS, ModelSelector, PackageRef

    _FIXED = ("options", "multiple", "defaults", "body")

    def _form(params: Any) -> dict[str, Any]:
        """The response form: the comment field, next to any task-level params (the DAG's are dropped)."""
        fields = (
            {k: params.get_param(k) for k in params} if isinstance(params, ParamsDict) else dict(params or {})
        )
        comment = Param(
            "",
            type="string",
            title="Comment",
            description="Why (required when you reject). Recorded with the decision.",
        )
        comment.source = "task"  # a task-level field: HITLOperator drops DAG-level params from the form
        return {**fields, COMMENT: comment}

    class _ModelApprovalOperator(ApprovalOperator):
        """The shared part: the question, the re-ask on a rejection without a comment, the decision."""

        what = "model"

        def __init__(
            self,
            *,
            subject: str | None,
            notes: str | None,
            assigned_users: Any,
            response_timeout: timedelta | None,
            on_timeout: str,
            fail_on_reject: bool,
            ignore_downstream_trigger_rules: bool,
            notifiers: Any,
            **kwargs: Any,
        ) -> None:
            for name in _FIXED:
                if name in kwargs:
                    raise MLSValidationError(name, f"{type(self).__name__} sets {name} itself")
            self.on_timeout = check_on_timeout(on_timeout)
            kwargs.setdefault("multiple_outputs", True)  # review.output["model_id"] works downstream
            super().__init__(
                subject=subject or "",
                body=None,
                defaults=[self.REJECT] if self.on_timeout == "reject" else None,
                params=_form(kwargs.pop("params", None)),
                notifiers=notifiers,
                assigned_users=check_assigned_users(assigned_users),  # type: ignore[arg-type]
                response_timeout=check_timeout(response_timeout),
                fail_on_reject=fail_on_reject,
                ignore_downstream_trigger_rules=ignore_downstream_trigger_rules,
                **kwargs,
            )
            self.notes = notes

        # -- what subclasses provide --------------------------------------------------------------
        def _prepare(self, context: Any) -> tuple[dict[str, Any], str, str]:  # pragma: no cover
            """(target: what execute_complete needs, JSON; subject; body); links persisted."""
            raise NotImplementedError

        def _recorded(
            self, target: Mapping[str, Any], context: Any
        ) -> dict[str, Any] | None:  # pragma: no cover
            """The decision this task (this run) already wrote, if any (a retry does not ask again)."""
            raise NotImplementedError

        def _write_back(
            self, target: Mapping[str, Any], entry: dict[str, Any]
        ) -> dict[str, Any]:  # pragma: no cover
            """Write the decision where the model lives; returns the refs for XCom."""
            raise NotImplementedError

        def _written(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:  # pragma: no cover
            """Whether the model already holds exactly this decision (a write-back whose answer was lost)."""
            raise NotImplementedError

        # -- the flow ----------------------------------------------------------------------------
        def _dag_run(self, context: Any) -> dict[str, Any]:
            ti = context["ti"]
            run = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}
            if getattr(ti, "map_index", -1) not in (-1, None):
                run["map_index"] = ti.map_index
            return run

        def _timeout_note(self) -> str:
            if self.response_timeout is None:
                return "No response timeout: the request stays open until someone answers."
            if self.on_timeout == "reject":
                return f"No answer within {self.response_timeout} counts as a rejection (never an approval)."
            return (
                f"No answer within {self.response_timeout} fails the task; nothing is written to the model."
            )

        def execute(self, context: Any) -> Any:
            record = self._record(context)
            pending = self._pending(record)
            if record is not None and pending is not None:
                return self._finish_write_back(context, record, *pending)
            with fail_fast(self):
                target, subject, body = self._prepare(context)
                done = self._recorded(target, context)
            if done is not None:
                self.log.info(
                    "This run already decided (a retry asks no one again): %s", describe_decision(done)
                )
                return self._finish(context, target, done)
            question = {"subject": self.subject or subject, "body": body}
            deadline = datetime.now(UTC) + self.response_timeout if self.response_timeout else None
            self.log.info("Asking for a decision on %s: %s", self.what, question["subject"])
            return self._ask(context, target, question, deadline, self.response_timeout)

        def _ask(
            self,
            context: Any,
            target: dict[str, Any],
            question: dict[str, Any],
            deadline: datetime | None,
            timeout: timedelta | None,
            preface: str = "",
        ) -> Any:
            """Ask through ``ApprovalOperator.execute`` itself (the request, the notifiers, the wait),
            waiting at most ``timeout``; what ``execute_complete`` needs travels with the wait."""
            self.subject = str(question.get("subject") or self.subject)
            self.body = preface + str(question.get("body") or "")
            asked_for, self.response_timeout = self.response_timeout, timeout
            try:
                return super().execute(context)
            except BaseException as parked:  # TaskAwaitingInput (3.3) or TaskDeferred (3.1, 3.2)
                if getattr(parked, "method_name", None) == "execute_complete":
                    parked.kwargs = {  # type: ignore[attr-defined]
                        **(getattr(parked, "kwargs", None) or {}),
                        "target": target,
                        "deadline": deadline.isoformat() if deadline else None,
                        "question": question,
                    }
                raise
            finally:
                self.response_timeout = asked_for

        def execute_complete(
            self,
            context: Any,
            event: dict[str, Any],
            target: dict[str, Any] | None = None,
            deadline: str | None = None,
            question: dict[str, Any] | None = None,
        ) -> Any:
            if target is None:
                raise AirflowFailException(
                    f"{self.task_id}: resumed without its target; clear the task to ask again"
                )
            if "error" in event:
                self.log.error(
                    "No decision on %s: %s. Nothing is written to the model.", self.what, event.get("error")
                )
                # HITLOperator raises HITLTimeoutError (or HITLTriggerEventError) for it
                return super().execute_complete(context, event)
            chosen = (event.get("chosen_options") or [""])[0]
            params_input = event.get("params_input") or {}
            comment = str(params_input.get(COMMENT) or "").strip()
            timed_out = bool(event.get("timedout")) or event.get("responded_by_user") is None
            if chosen == self.REJECT and not comment and not timed_out:
                return self._ask_again(context, target, deadline, question)
            if timed_out and chosen == self.REJECT and not comment:
                comment = (
                    f"no response within {self.response_timeout}: rejected by default (on_timeout='reject')"
                )
            entry = decision_entry(
                chosen=chosen, event=event, comment=comment, dag_run=self._dag_run(context)
            )
            self.log.info("%s", describe_decision(entry))
            refs = self._write(target, entry, self._record(context))
            result = {**entry, **refs}
            if entry["decision"] == REJECTED and self.fail_on_reject:
                raise HITLRejectException(f"{self.what} rejected: {describe_decision(entry)}")
            if entry["decision"] == REJECTED:
                self.log.info("Rejected, so the downstream tasks are skipped: %s", comment)
            super().execute_complete(context, event)  # Approve: go on; Reject: skip downstream
            return result

        # -- the decision kept until it is written back (Airflow 3.3+: the task state store) ---------
        def _record(self, context: Any) -> TaskRecord | None:
            store = task_state(context)
            return TaskRecord(store, RECORD_KEY, self.log) if store is not None else None

        def _pending(self, record: TaskRecord | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
            """(target, entry) of a decision an earlier try got and did not finish writing back."""
            stored = (record.load() if record is not None else None) or {}
            target, entry = stored.get("target"), stored.get("entry")
            if isinstance(target, dict) and isinstance(entry, dict) and entry.get("decision") in DECISIONS:
                return target, entry
            return None

        def _write(
            self, target: Mapping[str, Any], entry: dict[str, Any], record: TaskRecord | None
        ) -> dict[str, Any]:
            """Write the decision back, kept in the task state store until it is written (3.3+): a try
            that fails here (MLS or SageMaker down) leaves it to the retry, which asks no one again."""
            if record is not None:
                record.save({"target": dict(target), "entry": entry})
            try:
                with fail_fast(self):
                    refs = self._write_back(target, entry)
            except (AirflowFailException, AirflowSkipException):
                if record is not None:  # never writable as it is: a cleared task asks afresh
                    record.drop()
                raise
            if record is not None:
                record.drop()
            return refs

        def _finish_write_back(
            self, context: Any, record: TaskRecord, target: dict[str, Any], entry: dict[str, Any]
        ) -> Any:
            """A retry after the write-back of a decision failed: write that decision, ask no one."""
            self.log.info(
                "An earlier try of this task got the decision and did not finish writing it back; "
                "finishing that (no one is asked again): %s",
                describe_decision(entry),
            )
            with fail_fast(self):
                landed = self._written(target, entry)
            if landed:  # the earlier write-back went through, its answer was lost
                self.log.info("The earlier try's write-back had gone through; not written twice")
                record.drop()
                return self._finish(context, target, entry)
            return self._finish(context, target, entry, self._write(target, entry, record))

        def _finish(
            self,
            context: Any,
            target: Any,
            entry: Mapping[str, Any],
            refs: Mapping[str, Any] | None = None,
        ) -> Any:
            """A decision recorded by an earlier try of this task in this run: act on it, do not ask again."""
            refs = self._refs(target, entry) if refs is None else refs
            if entry.get("decision") == REJECTED:
                if self.fail_on_reject:
                    raise HITLRejectException(f"{self.what} rejected: {describe_decision(entry)}")
                tasks = [t for t in context["task"].get_direct_relatives(upstream=False) if not t.is_teardown]
                if self.ignore_downstream_trigger_rules:
                    tasks = [
                        t for t in context["task"].get_flat_relatives(upstream=False) if not t.is_teardown
                    ]
                if tasks:
                    self.skip(ti=context["ti"], tasks=tasks)
            return {**entry, **refs}

        def _refs(
            self, target: Mapping[str, Any], entry: Mapping[str, Any]
        ) -> dict[str, Any]:  # pragma: no cover
            raise NotImplementedError

        def _ask_again(
            self, context: Any, target: dict[str, Any], deadline: str | None, question: dict[str, Any] | None
        ) -> Any:
            """A rejection without a comment: the same question again (its answer cleared, the notifiers
            called again), until the same deadline (at once past it: the timeout default applies)."""
            due = datetime.fromisoformat(deadline) if deadline else None
            remaining = None if due is None else max(due - datetime.now(UTC), timedelta(seconds=1))
            self.log.warning(
                "Rejected without a comment: not recorded; asking again (a rejection needs a comment)"
            )
            preface = (
                "**Asked again: a rejection needs a comment.** The earlier Reject had none and was not "
                "recorded.\n\n"
            )
            return self._ask(context, target, question or {}, due, remaining, preface)

    class MLSModelApprovalOperator(_ModelApprovalOperator):
        """Ask a person in the Airflow UI to approve an MLS model version; record the decision in its meta.

        Airflow's ``ApprovalOperator`` (Approve / Reject, with a comment that a rejection requires) for a
        manual model given by ``model_id`` (an id, ``"12"`` or an upstream task's model dict) or by
        ``name`` and ``version``. The body shows the model (name, version, model data, creator, when it
        was made), the metrics in its meta (``metrics_key``) next to those of the version serving now
        (``serving_model_id``, or the model of bucket ``bucket`` of experiment ``experiment``), the
        feature and model library differences, and links (MLS console, registry artifact). The decision
        is merged into the model's meta as ``approval`` = ``{"decision", "by", "at", "comment",
        "dag_run"}`` (the no-lost-update merge of ``UpdateModelMetaOperator``). Approve lets the
        downstream tasks run; Reject skips them (or fails the task with ``fail_on_reject``). Returns the
        ``approval`` entry with ``model_id``, ``name``, ``version`` and ``serving_model_id`` (the version
        compared with, or None), each also its own XCom (``review.output["serving_model_id"]``, e.g. for
        ``MigrateBucketsOperator``). Needs Airflow 3.1+.

        :param model_id: the model: its id, a rendered ``"12"``, or an upstream task's model dict.
        :param name: or the model's name (with ``version``).
        :param version: the model's version (with ``name``).
        :param serving_model_id: the version serving now, to compare with (id, ``"12"`` or model dict).
        :param experiment: or the experiment (by name) whose ``bucket`` serves now.
        :param bucket: the bucket (by name) of ``experiment`` whose model serves now.
        :param metrics_key: the meta key with the metrics (default: ``performance``, else ``metrics``).
        :param subject: the headline (default ``Deploy <name> <version>?``).
        :param notes: Markdown added to the body (e.g. what changed in training).
        :param assigned_users: who may answer: ``{"id": ..., "name": ...}`` or a list (default: anyone
            allowed to act on the DAG's human-in-the-loop tasks).
        :param response_timeout: how long to wait for an answer (a timedelta; default None: no limit).
        :param on_timeout: without an answer in time, ``reject`` (default: recorded as a rejection by
            nobody, downstream skipped) or ``fail`` (the task fails, nothing is written). Never approve.
        :param fail_on_reject: a rejection fails the task instead of skipping the downstream tasks.
        :param ignore_downstream_trigger_rules: a rejection skips every downstream task, not only the
            direct ones.
        :param notifiers: Airflow notifiers called when the question is asked.
        :param mls_conn_id: the MLS connection (default ``mls_default``).
        """

        template_fields: Sequence[str] = (
            "model_id",
            "name",
            "version",
            "serving_model_id",
            "experiment",
            "bucket",
            "metrics_key",
            "subject",
            "notes",
            "mls_conn_id",
        )
        template_fields_renderers = {"notes": "md"}
        operator_extra_links = (MLSModelLink(), RegistryArtifactLink())
        what = "MLS model"

        def __init__(
            self,
            *,
            model_id: int | str | dict[str, Any] | None = None,
            name: str | None = None,
            version: str | None = None,
            serving_model_id: int | str | dict[str, Any] | None = None,
            experiment: str | None = None,
            bucket: str | None = None,
            metrics_key: str | None = None,
            subject: str | None = None,
            notes: str | None = None,
            assigned_users: dict[str, str] | list[dict[str, str]] | None = None,
            response_timeout: timedelta | None = None,
            on_timeout: str = "reject",
            fail_on_reject: bool = False,
            ignore_downstream_trigger_rules: bool = False,
            notifiers: Any = None,
            mls_conn_id: str = "mls_default",
            **kwargs: Any,
        ) -> None:
            super().__init__(
                subject=subject,
                notes=notes,
                assigned_users=assigned_users,
                response_timeout=response_timeout,
                on_timeout=on_timeout,
                fail_on_reject=fail_on_reject,
                ignore_downstream_trigger_rules=ignore_downstream_trigger_rules,
                notifiers=notifiers,
                **kwargs,
            )
            self.model_id = model_id
            self.name = name
            self.version = version
            self.serving_model_id = serving_model_id
            self.experiment = experiment
            self.bucket = bucket
            self.metrics_key = metrics_key
            self.mls_conn_id = mls_conn_id

        @cached_property
        def hook(self) -> MLSHook:
            from airflow_provider_mls.hooks.mls import MLSHook

            return MLSHook(mls_conn_id=self.mls_conn_id)

        def _serving(self, model: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
            if self.serving_model_id not in (None, ""):
                if self.experiment or self.bucket:
                    raise MLSValidationError(
                        "serving_model_id", "give serving_model_id, or experiment and bucket, not both"
                    )
                serving = ModelSelector(self.serving_model_id, None, None, prefix="serving_").resolve(
                    self.hook
                )
                return serving, "serving now"
            if not self.experiment and not self.bucket:
                return None, "serving now (none given)"
            for field, value in (("experiment", self.experiment), ("bucket", self.bucket)):
                if not isinstance(value, str) or not value.strip():
                    raise MLSValidationError(
                        field, f"give experiment and bucket by name (got {field}={value!r})"
                    )
            return self._bucket_model(str(self.experiment), str(self.bucket))

        def _bucket_model(self, experiment: str, bucket: str) -> tuple[dict[str, Any] | None, str]:
            """The model a bucket serves: the experiment and the bucket listed by name, as ``sktmls`` does."""
            from airflow_provider_mls.exceptions import MLSNotFoundError

            found = [
                e for e in self.hook.run("GET", "/api/v1/experiments", params={"name": experiment}) or []
            ]
            found = [e for e in found if isinstance(e, dict) and e.get("name") == experiment]
            if len(found) != 1:
                raise MLSNotFoundError(f"experiment: {len(found)} experiments named {experiment!r}", code=404)
            path = f"/api/v1/experiments/{found[0]['id']}/buckets"
            buckets = [b for b in self.hook.run("GET", path, params={"name": bucket}) or []]
            buckets = [b for b in buckets if isinstance(b, dict) and b.get("name") == bucket]
            if len(buckets) != 1:
                raise MLSNotFoundError(
                    f"bucket: {len(buckets)} buckets named {bucket!r} in experiment {experiment!r}", code=404
                )
            prediction = buckets[0].get("prediction") or {}
            label = f"serving now ({experiment}/{bucket})"
            if not prediction.get("ml_model"):
                kind = (prediction.get("request") or {}).get("type")
                return None, f"{label}: {kind or 'no'} prediction, no model"
            return self.hook.get_model(int(prediction["ml_model"])), label

        def _metrics(self, model: Mapping[str, Any] | None) -> dict[str, Any]:
            meta = (model or {}).get("model_meta") or {}
            keys = [self.metrics_key] if self.metrics_key else list(METRIC_KEYS)
            for key in keys:
                if isinstance(meta.get(key), dict):
                    return flat_metrics(meta[key])
            return {}

        def _prepare(self, context: Any) -> tuple[dict[str, Any], str, str]:
            model = ModelSelector(self.model_id, self.name, self.version).resolve(self.hook, ModelType.MANUAL)
            name, version = str(model["name"]), str(model["version"])
            serving, serving_label = self._serving(model)
            if serving is not None and serving.get("id") == model.get("id"):
                serving, serving_label = None, "serving now (this same version)"
            persist_mls_links(self, context, {"model_id": model["id"], "name": name, "version": version})
            p = profile(self)
            artifact = (
                registry_artifact_url(str(p.registry_bucket), f"{name}/{version}")
                if p.registry_bucket
                else None
            )
            RegistryArtifactLink.persist(context, artifact)
            links = {
                f"{name} {version} in the MLS console": mls_model_url(
                    p.console_url, model_id=model["id"], name=name, version=version, env=p.env
                ),
                "its registry artifact (S3)": artifact,
            }
            if serving is not None:
                links[f"{serving.get('name')} {serving.get('version')} (serving) in the MLS console"] = (
                    mls_model_url(
                        p.console_url,
                        model_id=serving.get("id"),
                        name=serving.get("name"),
                        version=serving.get("version"),
                        env=p.env,
                    )
                )
            shown = {**model, "model": f"{name} {version} (id {model['id']})"}
            shown_serving = (
                {
                    **serving,
                    "model": f"{serving.get('name')} {serving.get('version')} (id {serving.get('id')})",
                }
                if serving
                else None
            )
            body = render_body(
                proposed=shown,
                serving=shown_serving,
                serving_label=serving_label,
                facts=("model", "model_lib", "model_data", "creator", "created_at", "description"),
                metrics=(self._metrics(model), self._metrics(serving) if serving else None),
                features=(model.get("features"), (serving or {}).get("features")),
                links=links,
                notes=self.notes,
                timeout_note=self._timeout_note(),
            )
            target = {
                "model_id": int(model["id"]),
                "name": name,
                "version": version,
                "serving_model_id": int(serving["id"]) if serving else None,
            }
            return target, f"Deploy {name} {version}?", body

        def _recorded(self, target: Mapping[str, Any], context: Any) -> dict[str, Any] | None:
            if int(getattr(context.get("ti"), "try_number", 1) or 1) <= 1:
                return None
            meta = (self.hook.get_manual_model(id=target["model_id"]).get("model_meta")) or {}
            entry = meta.get("approval")
            if isinstance(entry, dict) and entry.get("dag_run") == self._dag_run(context):
                return entry
            return None

        def _refs(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
            keys = ("model_id", "name", "version", "serving_model_id")
            return {key: target.get(key) for key in keys}

        def _written(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
            meta = (self.hook.get_manual_model(id=target["model_id"]).get("model_meta")) or {}
            return bool(meta.get("approval") == entry)

        def _write_back(self, target: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
            self.hook.update_manual_model_meta(target["model_id"], {"approval": entry}, partial_update=True)
            self.log.info("Recorded in model %s's meta as approval", target["model_id"])
            return self._refs(target, entry)

    class ModelPackageApprovalOperator(_ModelApprovalOperator):
        """Ask a person in the Airflow UI to approve a SageMaker model package version; write the decision to it.

        Airflow's ``ApprovalOperator`` (Approve / Reject, with a comment that a rejection requires) for
        a version given by ``model_package_arn``, or ``model_package_group`` and
        ``model_package_version``. The body shows the version (model data, image, who registered it and
        when, description), the metrics of its model card next to those of the version serving now
        (``serving_model_package_arn``, default the group's latest Approved version), the differences in
        image (the framework) and customer metadata (e.g. ``features``, ``model_lib``), and links
        (SageMaker console, the model data in S3). The decision is written with one ``UpdateModelPackage``: ``ModelApprovalStatus`` ``Approved`` or
        ``Rejected`` and an approval description naming the reviewer, the comment and the DAG run. A
        version whose status changed while the question was open (decided in the console) is left as
        it is and fails the task. Approve lets the downstream tasks run; Reject skips them (or fails the
        task with ``fail_on_reject``). Returns the decision with ``arn``, ``group``, ``version`` and
        ``approval_status``, each also its own XCom (``review.output["arn"]``). Needs Airflow 3.1+.

        :param model_package_arn: the version's ARN.
        :param model_package_group: or the model package group (with ``model_package_version``).
        :param model_package_version: the version number within the group.
        :param serving_model_package_arn: the version serving now, to compare with (default: the
            group's newest Approved version other than this one).
        :param subject: the headline (default ``Approve <group> version <n>?``).
        :param notes: Markdown added to the body.
        :param assigned_users: who may answer: ``{"id": ..., "name": ...}`` or a list (default: anyone
            allowed to act on the DAG's human-in-the-loop tasks).
        :param response_timeout: how long to wait for an answer (a timedelta; default None: no limit).
        :param on_timeout: without an answer in time, ``reject`` (default: the version is Rejected,
            downstream skipped) or ``fail`` (the task fails, the version stays pending). Never approve.
        :param fail_on_reject: a rejection fails the task instead of skipping the downstream tasks.
        :param ignore_downstream_trigger_rules: a rejection skips every downstream task, not only the
            direct ones.
        :param notifiers: Airflow notifiers called when the question is asked.
        :param aws_conn_id: the AWS connection (None: boto3's default chain).
        :param region_name: AWS region (default: the connection's or the environment's).
        :param endpoint_url: another AWS endpoint (the local server's, LocalStack).
        """

        template_fields: Sequence[str] = (
            *PACKAGE_REF_FIELDS,
            "serving_model_package_arn",
            "subject",
            "notes",
            *AWS_FIELDS,
        )
        template_fields_renderers = {"notes": "md"}
        operator_extra_links = (SageMakerModelPackageLink(), RegistryArtifactLink())
        what = "model package version"

        def __init__(
            self,
            *,
            model_package_arn: str | None = None,
            model_package_group: str | None = None,
            model_package_version: int | str | None = None,
            serving_model_package_arn: str | None = None,
            subject: str | None = None,
            notes: str | None = None,
            assigned_users: dict[str, str] | list[dict[str, str]] | None = None,
            response_timeout: timedelta | None = None,
            on_timeout: str = "reject",
            fail_on_reject: bool = False,
            ignore_downstream_trigger_rules: bool = False,
            notifiers: Any = None,
            aws_conn_id: str | None = "aws_default",
            region_name: str | None = None,
            endpoint_url: str | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                subject=subject,
                notes=notes,
                assigned_users=assigned_users,
                response_timeout=response_timeout,
                on_timeout=on_timeout,
                fail_on_reject=fail_on_reject,
                ignore_downstream_trigger_rules=ignore_downstream_trigger_rules,
                notifiers=notifiers,
                **kwargs,
            )
            self.model_package_arn = model_package_arn
            self.model_package_group = model_package_group
            self.model_package_version = model_package_version
            self.serving_model_package_arn = serving_model_package_arn
            self.aws_conn_id = aws_conn_id
            self.region_name = region_name
            self.endpoint_url = endpoint_url

        @cached_property
        def registry(self) -> SageMakerModelRegistryHook:
            return registry_hook(self)

        @staticmethod
        def _facts(described: Mapping[str, Any] | None) -> dict[str, Any]:
            if not described:
                return {}
            from airflow_provider_mls.operators.sagemaker_registry import _card

            containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
            content, _ = _card(dict(described))
            overview = (content or {}).get("model_overview") or {}
            created_by = described.get("CreatedBy") or {}
            return {
                "version": f"{described.get('ModelPackageGroupName')} v{described.get('ModelPackageVersion')}",
                "status": described.get("ModelApprovalStatus"),
                "model data": containers[0].get("ModelDataUrl"),
                "image": containers[0].get("Image"),
                "created by": overview.get("model_creator")
                or created_by.get("UserProfileName")
                or created_by.get("IamIdentity", {}).get("Arn"),
                "created": described.get("CreationTime"),
                "description": described.get("ModelPackageDescription"),
                **{
                    f"metadata `{k}`": v
                    for k, v in sorted((described.get("CustomerMetadataProperties") or {}).items())
                },
            }

        @staticmethod
        def _card_metrics(described: Mapping[str, Any] | None) -> dict[str, Any]:
            if not described:
                return {}
            from airflow_provider_mls.operators.sagemaker_registry import _card

            content, _ = _card(dict(described))
            out: dict[str, Any] = {}
            for evaluation in (content or {}).get("evaluation_details") or []:
                for group in evaluation.get("metric_groups") or []:
                    for metric in group.get("metric_data") or []:
                        key = metric.get("name")
                        if key is not None:
                            label = f"{evaluation.get('name')}/{key}" if evaluation.get("name") else str(key)
                            out[label] = metric.get("value")
            return out

        def _serving(self, described: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
            arn = described["ModelPackageArn"]
            if self.serving_model_package_arn:
                serving = PackageRef(self.serving_model_package_arn, None, None)
                serving.validate()
                return self.registry.describe_version(self.serving_model_package_arn), "serving now"
            group = str(described["ModelPackageGroupName"])
            for summary in self.registry.list_versions(group, approval_status="Approved"):
                if summary.get("ModelPackageArn") != arn:
                    return self.registry.describe_version(summary["ModelPackageArn"]), "latest approved"
            return None, "latest approved (none)"

        def _prepare(self, context: Any) -> tuple[dict[str, Any], str, str]:
            ref = PackageRef(self.model_package_arn, self.model_package_group, self.model_package_version)
            described = ref.describe(self.registry)
            arn = str(described["ModelPackageArn"])
            region = aws_region(self.registry)
            containers = (described.get("InferenceSpecification") or {}).get("Containers") or [{}]
            data_url = str(containers[0].get("ModelDataUrl") or "")
            bucket, _, key = (
                data_url.removeprefix("s3://").partition("/")
                if data_url.startswith("s3://")
                else ("", "", "")
            )
            refs: dict[str, Any] = {"model_package_arn": arn, "region": region}
            if bucket and key:
                refs.update(bucket=bucket, prefix=key.rsplit("/", 1)[0] if "/" in key else key)
            persist_aws_links(self, context, refs)
            serving, label = self._serving(described)
            artifact = registry_artifact_url(bucket, refs["prefix"], region) if "prefix" in refs else None
            links = {
                "this version in the SageMaker console": model_package_url(arn, region),
                "its model data (S3)": artifact,
            }
            if serving is not None:
                links["the serving version in the SageMaker console"] = model_package_url(
                    str(serving["ModelPackageArn"]), region
                )
            facts = self._facts(described)
            serving_facts = self._facts(serving)
            order = list(facts) + [k for k in serving_facts if k not in facts]
            body = render_body(
                proposed=facts,
                serving=serving_facts if serving else None,
                serving_label=label,
                facts=order,
                metrics=(self._card_metrics(described), self._card_metrics(serving) if serving else None),
                features=None,
                links=links,
                notes=self.notes,
                timeout_note=self._timeout_note(),
            )
            group, number = described.get("ModelPackageGroupName"), described.get("ModelPackageVersion")
            target = {
                "arn": arn,
                "group": group,
                "version": number,
                "status_asked": described.get("ModelApprovalStatus"),
            }
            return target, f"Approve {group} version {number}?", body

        def _marker(self, context: Any) -> str:
            run = self._dag_run(context)
            return f"[dag run {run.get('dag_id')}/{run.get('run_id')}, task {run.get('task_id')}]"

        def _recorded(self, target: Mapping[str, Any], context: Any) -> dict[str, Any] | None:
            if int(getattr(context.get("ti"), "try_number", 1) or 1) <= 1:
                return None
            current = self.registry.approval(str(target["arn"]))
            text = str(current.get("description") or "")
            if current.get("status") in ("Approved", "Rejected") and self._marker(context) in text:
                decision = APPROVED if current["status"] == "Approved" else REJECTED
                return {
                    "decision": decision,
                    "by": None,
                    "at": None,
                    "comment": text,
                    "dag_run": self._dag_run(context),
                }
            return None

        def _refs(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
            refs = {"arn": target["arn"], "group": target["group"], "version": target["version"]}
            return {**refs, "approval_status": self._status(entry)}

        @staticmethod
        def _status(entry: Mapping[str, Any]) -> str:
            return "Approved" if entry["decision"] == APPROVED else "Rejected"

        @staticmethod
        def _description(entry: Mapping[str, Any]) -> str:
            from airflow_provider_mls.hooks.sagemaker_registry import MAX_DESCRIPTION_LENGTH

            text = describe_decision(entry)
            if len(text) > MAX_DESCRIPTION_LENGTH:  # keep the reviewer and the run; shorten the comment
                tail = text[text.rindex(" [dag run ") :]
                text = text[: MAX_DESCRIPTION_LENGTH - len(tail) - 1] + "…" + tail
            return text

        def _written(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
            current = self.registry.approval(str(target["arn"]))
            return (current.get("status"), current.get("description")) == (
                self._status(entry),
                self._description(entry),
            )

        def _write_back(self, target: Mapping[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
            arn = str(target["arn"])
            current = self.registry.approval(arn)
            if current.get("status") != target.get("status_asked"):
                raise AirflowFailException(
                    f"model package {arn} changed from {target.get('status_asked')} to {current.get('status')} "
                    f"while the question was open ({current.get('description') or 'no description'}); "
                    f"the Airflow decision ({entry['decision']}) is not written over it"
                )
            described = self.registry.update_version(
                arn, approval_status=self._status(entry), approval_description=self._description(entry)
            )
            self.log.info("Model package %s is now %s", arn, described.get("ModelApprovalStatus"))
            return {**self._refs(target, entry), "approval_status": described.get("ModelApprovalStatus")}

    __all__ = ["MLSModelApprovalOperator", "ModelPackageApprovalOperator"]

else:
    __all__: list[str] = []  # type: ignore[no-redef]

    def __getattr__(name: str) -> Any:
        if name in TASKS:
            from airflow_provider_mls._compat import AirflowException

            raise AirflowException(unavailable_message(name))
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
