"""What the two approval tasks of ``operators/approval.py`` share.

* the Airflow version gate (human-in-the-loop tasks need Airflow 3.1+) and the message that says so;
* the reviewer's body and the decision record: plain functions of plain dicts (the metrics table, the
  feature diff, the facts and metrics of a model package, the ``approval`` entry, the argument checks),
  unit-tested without Airflow's human-in-the-loop machinery;
* on Airflow 3.1+, ``ModelApprovalBase``: the question, the re-ask on a rejection without a comment,
  the decision kept in the task state store until it is written back where the model lives.

Cheap to import (DAG files import the approval tasks on every parse): the task bases, the hooks and the
integration helpers are imported when a task runs.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_mls._compat import AIRFLOW_VERSION_STRING
from airflow_provider_mls.exceptions import MLSValidationError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

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
    text = f"{str(entry['decision']).capitalize()} in Airflow by {who} at {entry['at']}: {entry['comment'] or '-'}"
    return f"{text} {run_marker(entry.get('dag_run') or {})}"


def run_marker(dag_run: Mapping[str, Any]) -> str:
    """``[dag run <dag>/<run>, task <task>]``: how a decision names the task that asked (``dag_run``)."""
    return f"[dag run {dag_run.get('dag_id')}/{dag_run.get('run_id')}, task {dag_run.get('task_id')}]"


def run_of(context: Any) -> dict[str, Any]:
    """The ``dag_run`` of a decision: the DAG, the run, the task (and its map index) that asked."""
    ti = context["ti"]
    run = {"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id}
    if getattr(ti, "map_index", -1) not in (-1, None):
        run["map_index"] = ti.map_index
    return run


def timeout_note(response_timeout: timedelta | None, on_timeout: str) -> str:
    """The body's last words: what happens without an answer."""
    if response_timeout is None:
        return "No response timeout: the request stays open until someone answers."
    if on_timeout == "reject":
        return f"No answer within {response_timeout} counts as a rejection (never an approval)."
    return f"No answer within {response_timeout} fails the task; nothing is written to the model."


def meta_metrics(model: Mapping[str, Any] | None, metrics_key: str | None) -> dict[str, Any]:
    """The metrics an MLS model keeps in its meta (``metrics_key``, else the usual keys), flattened."""
    meta = (model or {}).get("model_meta") or {}
    keys = [metrics_key] if metrics_key else list(METRIC_KEYS)
    for key in keys:
        if isinstance(meta.get(key), dict):
            return flat_metrics(meta[key])
    return {}


def package_facts(described: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the body shows of a model package version (``DescribeModelPackage``)."""
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


def card_metrics(described: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metrics of a model package version's model card (``evaluation/metric`` when evaluations are named)."""
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


def package_status(entry: Mapping[str, Any]) -> str:
    """A decision as a model package's ``ModelApprovalStatus``."""
    return "Approved" if entry["decision"] == APPROVED else "Rejected"


def package_description(entry: Mapping[str, Any]) -> str:
    """A decision as a model package's approval description (shortened to what SageMaker takes)."""
    from airflow_provider_mls.hooks.sagemaker_registry import MAX_DESCRIPTION_LENGTH

    text = describe_decision(entry)
    if len(text) > MAX_DESCRIPTION_LENGTH:  # keep the reviewer and the run; shorten the comment
        tail = text[text.rindex(" [dag run ") :]
        text = text[: MAX_DESCRIPTION_LENGTH - len(tail) - 1] + "…" + tail
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

    class ModelApprovalBase(ApprovalOperator):
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
        def _timeout_note(self) -> str:
            return timeout_note(self.response_timeout, self.on_timeout)

        def _fail_fast(self) -> Any:
            """The MLS tasks' fail-fast errors (``bases.fail_fast``), imported when the task runs."""
            from airflow_provider_mls.bases import fail_fast

            return fail_fast(self)

        def execute(self, context: Any) -> Any:
            record = self._record(context)
            pending = self._pending(record)
            if record is not None and pending is not None:
                return self._finish_write_back(context, record, *pending)
            with self._fail_fast():
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
            entry = decision_entry(chosen=chosen, event=event, comment=comment, dag_run=run_of(context))
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
                with self._fail_fast():
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
            with self._fail_fast():
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
