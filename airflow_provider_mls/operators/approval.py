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
says which Airflow version it needs. What both tasks share (the question-and-answer flow, the body and
the decision record) is in ``_approval.py``.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.operators._approval import (
    APPROVED,
    HITL_AVAILABLE,
    REJECTED,
    TASKS,
    card_metrics,
    meta_metrics,
    package_description,
    package_facts,
    package_status,
    render_body,
    run_marker,
    run_of,
    unavailable_message,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import timedelta

    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

if HITL_AVAILABLE:
    from airflow_provider_mls._compat import AirflowFailException
    from airflow_provider_mls.links import (
        MLSModelLink,
        RegistryArtifactLink,
        SageMakerModelPackageLink,
        mls_model_url,
        model_package_url,
        registry_artifact_url,
    )
    from airflow_provider_mls.operators._approval import ModelApprovalBase

    class MLSModelApprovalOperator(ModelApprovalBase):
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
            from airflow_provider_mls.refs import ModelSelector

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

        def _prepare(self, context: Any) -> tuple[dict[str, Any], str, str]:
            from airflow_provider_mls._integration import persist_mls_links, profile
            from airflow_provider_mls.constants import ModelType
            from airflow_provider_mls.refs import ModelSelector

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
                metrics=(
                    meta_metrics(model, self.metrics_key),
                    meta_metrics(serving, self.metrics_key) if serving else None,
                ),
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
            if isinstance(entry, dict) and entry.get("dag_run") == run_of(context):
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

    class ModelPackageApprovalOperator(ModelApprovalBase):
        """Ask a person in the Airflow UI to approve a SageMaker model package version; write the decision to it.

        Airflow's ``ApprovalOperator`` (Approve / Reject, with a comment that a rejection requires) for
        a version given by ``model_package_arn``, or ``model_package_group`` and
        ``model_package_version``. The body shows the version (model data, image, who registered it and
        when, description), the metrics of its model card next to those of the version serving now
        (``serving_model_package_arn``, default the group's latest Approved version), the differences in
        image (the framework) and customer metadata (e.g. ``features``, ``model_lib``), and links
        (SageMaker console, the model data in S3). The decision is written with one ``UpdateModelPackage``:
        ``ModelApprovalStatus`` ``Approved`` or
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
            "model_package_arn",
            "model_package_group",
            "model_package_version",
            "serving_model_package_arn",
            "subject",
            "notes",
            "aws_conn_id",
            "region_name",
            "endpoint_url",
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
            from airflow_provider_mls.bases import registry_hook

            return registry_hook(self)

        def _serving(self, described: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str]:
            from airflow_provider_mls.refs import PackageRef

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
            from airflow_provider_mls._integration import aws_region, persist_aws_links
            from airflow_provider_mls.refs import PackageRef

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
            facts = package_facts(described)
            serving_facts = package_facts(serving)
            order = list(facts) + [k for k in serving_facts if k not in facts]
            body = render_body(
                proposed=facts,
                serving=serving_facts if serving else None,
                serving_label=label,
                facts=order,
                metrics=(card_metrics(described), card_metrics(serving) if serving else None),
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

        def _recorded(self, target: Mapping[str, Any], context: Any) -> dict[str, Any] | None:
            if int(getattr(context.get("ti"), "try_number", 1) or 1) <= 1:
                return None
            current = self.registry.approval(str(target["arn"]))
            text = str(current.get("description") or "")
            if current.get("status") in ("Approved", "Rejected") and run_marker(run_of(context)) in text:
                decision = APPROVED if current["status"] == "Approved" else REJECTED
                return {
                    "decision": decision,
                    "by": None,
                    "at": None,
                    "comment": text,
                    "dag_run": run_of(context),
                }
            return None

        def _refs(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
            refs = {"arn": target["arn"], "group": target["group"], "version": target["version"]}
            return {**refs, "approval_status": package_status(entry)}

        def _written(self, target: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
            current = self.registry.approval(str(target["arn"]))
            return (current.get("status"), current.get("description")) == (
                package_status(entry),
                package_description(entry),
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
                arn, approval_status=package_status(entry), approval_description=package_description(entry)
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
