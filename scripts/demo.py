"""``make demo``: the three pipeline DAGs, run with ``airflow dags test`` against the embedded local MLS server.

A fresh temporary AIRFLOW_HOME with an embedded SQLite metadata DB, and a fresh local MLS server
with its embedded AWS endpoint (S3 model registry, DynamoDB tables, SageMaker) each time.
``demo_seed.seed()`` deploys the previous versions first; then ``mls_train_to_deploy``,
``mls_batch_prediction_refresh`` and ``mls_automl_upgrade`` run, and a summary of what they made
is printed (models and versions, tables, registry artifacts, bucket moves). Exits non-zero when
anything fails. ``python scripts/demo.py --all`` also runs the quickstart, lifecycle and
approval-gated examples. While a DAG runs, each task's end (and deferral) is printed, and a line
every 15 s in which no task ended.

The working directory (Airflow home, the server's data, ``demo.log`` with the output of every
command, the task logs of ``airflow dags test`` among it) is deleted after
a green run unless ``--keep`` (``make demo KEEP=1``) is given; a failed run always keeps it. Its
path and where the task logs are is printed at the end.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# (dag id, conf): the main job, then the other examples with --all.
PIPELINES = (
    ("mls_train_to_deploy", '{"model_version": "v2"}'),
    ("mls_batch_prediction_refresh", None),
    ("mls_automl_upgrade", '{"version": "v2"}'),
)
OTHERS = (("mls_quickstart", None), ("mls_model_lifecycle", None), ("mls_approval_gated_deploy", None))
BIN = Path(sys.executable).parent


# What `airflow dags test` says about its tasks (the same lines on Airflow 2.11 and 3.x).
_TASK_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
_TASK_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+) map_index=(?P<index>-?\d+)")
_TRIGGER = "[DAG TEST] running trigger in line"
QUIET_SECONDS = 15  # a line "still running" after this long without a task starting or ending


def _label(match: re.Match[str]) -> str:
    index = int(match.group("index"))
    return match.group("task") + (f"[{index}]" if index >= 0 else "")


def airflow(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    """``airflow <args>``; its output goes to the demo log, and a DAG run's task progress to the screen."""
    progress = args[:2] == ["dags", "test"]
    lines: list[str] = []
    with log.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        proc = subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env={**env, "PYTHONUNBUFFERED": "1"},  # lines as they happen, for the progress lines
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        pending: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                pending.put(line)
            pending.put(None)

        threading.Thread(target=read, daemon=True).start()
        started: dict[str, float] = {}
        begun = last = time.monotonic()
        current = ""
        while True:
            try:
                line = pending.get(timeout=QUIET_SECONDS)
            except queue.Empty:
                if progress:
                    print(
                        f"MLS demo:   ... still running ({time.monotonic() - begun:.0f}s"
                        + (f", task {current}" if current else "")
                        + ")",
                        flush=True,
                    )
                continue
            if line is None:
                break
            lines.append(line)
            out.write(line)
            if not progress:
                continue
            if match := _TASK_START.search(line):
                current = _label(match)
                started[current] = last = time.monotonic()
            elif _TRIGGER in line:
                print(f"MLS demo:   {current}: deferred, its trigger runs in line", flush=True)
            elif match := _TASK_END.search(line):
                label = _label(match)
                took = time.monotonic() - started.get(label, last)
                print(f"MLS demo:   {label} finished ({took:.1f}s)", flush=True)
                current = ""
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), None)


def main() -> int:
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.dag_run import dag_run_state

    runs = PIPELINES + (OTHERS if "--all" in sys.argv[1:] else ())
    keep = "--keep" in sys.argv[1:]
    work = Path(tempfile.mkdtemp(prefix="mls-demo-"))
    log = work / "demo.log"
    home = work / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONWARNINGS": "ignore",
    }
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)  # the demo talks to its own endpoint only
    started = time.monotonic()
    ok = False
    print(f"MLS demo: working directory {work}")
    with LocalMLSServer(work / "mls-data", port=0, username="mls", password="mls-demo") as server:
        print(f"MLS demo: local MLS server at {server.url}")
        print(
            f"MLS demo: its AWS endpoint (S3 registry, DynamoDB tables, SageMaker) at {server.aws_endpoint_url}"
        )
        env["AIRFLOW_CONN_MLS_DEFAULT"] = server.conn_json()
        env["AIRFLOW_CONN_AWS_DEFAULT"] = server.aws_conn_json()
        env.update(server.aws_env())
        os.environ.clear()
        os.environ.update(env)  # this process seeds and summarises through the same connections
        steps: list[tuple[str, Any]] = [
            ("metadata DB", ["db", "migrate"]),
            ("connection test", ["connections", "test", "mls_default"]),
            ("previous versions deployed", lambda: seed_previous(env, log)),
            *(
                (f"DAG {dag_id}", ["dags", "test", dag_id, *(["-c", conf] if conf else [])])
                for dag_id, conf in runs
            ),
        ]
        for label, step in steps:
            if callable(step):
                passed, output = run_step(step)
            elif not label.startswith("DAG"):
                proc = airflow(step, env, log)
                passed, output = proc.returncode == 0, proc.stdout
                if label == "connection test":
                    passed = passed and "Connection success!" in proc.stdout
            if label.startswith("DAG"):  # `dags test` reports the run's state: a failed task fails the demo
                print(f"MLS demo: {label}: running", flush=True)
                proc = airflow(step, env, log)
                passed = proc.returncode == 0 and dag_run_state(proc.stdout) == "success"
                output = proc.stdout
            print(f"MLS demo: {label}: {'ok' if passed else 'FAILED'}", flush=True)
            if not passed:
                print(output[-4000:])
                break
        else:
            ok = True
            print_summary(runs)
    elapsed = time.monotonic() - started
    if ok:
        print(f"MLS demo: DAG runs {', '.join(d for d, _ in runs)} succeeded in {elapsed:.1f}s")
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
            print("MLS demo: working directory deleted (make demo KEEP=1 keeps it, with the task logs)")
            return 0
    else:
        print(f"MLS demo: FAILED after {elapsed:.1f}s")
    print(f"MLS demo: kept {work}")
    print(f"MLS demo: task logs in {log}, each DAG's after its '$ airflow dags test <dag id>' line")
    print(f"MLS demo: Airflow home {home}; the local server's data and log in {work / 'mls-data'}")
    return 0 if ok else 1


SEEDED: dict[str, Any] = {}


def run_step(step: Any) -> tuple[bool, str]:
    import traceback

    try:
        step()
    except Exception:
        return False, traceback.format_exc()
    return True, ""


def seed_previous(env: dict[str, str], log: Path) -> None:
    """scripts/demo_seed.py in its own process (its task logs go to the demo log, not the screen)."""
    import json

    with log.open("a") as out:
        out.write("\n$ python scripts/demo_seed.py\n")
        out.flush()
        proc = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "demo_seed.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out.write(proc.stdout)
    if proc.returncode != 0:
        raise RuntimeError(f"demo_seed.py failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    SEEDED.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"MLS demo: deployed before the DAGs run: {', '.join(SEEDED['models'])}")


def print_summary(runs: tuple[tuple[str, str | None], ...]) -> None:
    """What the DAGs made, read back through the provider's hooks (MLS, S3, DynamoDB)."""
    import logging

    logging.getLogger("botocore").setLevel(logging.WARNING)
    from airflow_provider_mls.hooks.mls import MLSHook
    from airflow_provider_mls.hooks.model_registry import MLSModelRegistryHook
    from airflow_provider_mls.hooks.prediction_table import PredictionTableHook

    hook = MLSHook()
    print("MLS demo: models and versions")
    for m in hook.list_all_manual_models() + hook.list_all_automl_models():
        extra = ""
        if m["model_type"] == "automl":
            extra = f" server={hook.get_automl_model_server_status(m)}"
        elif m.get("table"):
            extra = f" table={m['table']}"
        perf = (m.get("model_meta") or {}).get("performance")
        print(
            f"  {m['model_type']:<6} {m['name']} {m['version']} (id {m['id']}) status={m['status']}{extra}"
            + (f" performance: {_text(perf)}" if perf else "")
        )
    tables = PredictionTableHook()
    print("MLS demo: batch prediction tables (DynamoDB)")
    for name in tables.get_conn().list_tables().get("TableNames", []):
        print(
            f"  {name}: {tables.count_items(name)} rows, active={tables.is_active(name)}, "
            f"loading={tables.is_loading(name)}"
        )
    registry = MLSModelRegistryHook()
    print(f"MLS demo: model registry artifacts (s3://{registry.bucket})")
    for name in sorted({m["name"] for m in hook.list_all_manual_models()}):
        for version in registry.list_versions(name):
            meta = registry.get_meta(name, version) or {}
            print(
                f"  s3://{registry.bucket}/{name}/{version}/: model.joblib + model.json "
                f"(model_lib={meta.get('model_lib')}, features={len(meta.get('features') or [])})"
            )
    print("MLS demo: experiment buckets (after the bucket moves)")
    models = {
        m["id"]: f"{m['name']} {m['version']}"
        for m in hook.list_all_manual_models() + hook.list_all_automl_models()
    }
    for experiment in hook.run("GET", "/api/v1/experiments") or []:
        for bucket in hook.run("GET", f"/api/v1/experiments/{experiment['id']}/buckets") or []:
            served = models.get(bucket["prediction"]["ml_model"], "nothing")
            before = SEEDED.get("serving", {}).get(f"{experiment['name']}/{bucket['name']}")
            moved = f"{before} -> {served}" if before and before != served else f"{served} (unchanged)"
            kind = bucket["prediction"]["request"]["type"]
            print(f"  {experiment['name']}/{bucket['name']} ({kind}): {moved}")
    if any(dag_id == "mls_approval_gated_deploy" for dag_id, _ in runs):
        print("MLS demo: SageMaker model package versions")
        for row in registry_summary():
            print(f"  {row['group']} version {row['version']}: {row['approval']}")


def _text(value: Any) -> str:
    """A summary value as text: ``auc=0.91, logloss=0.32`` for a dict."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    return str(value)


def registry_summary() -> list[dict[str, object]]:
    """The versions of the approval-gated DAG's model package group, through the provider's hook."""
    import logging

    logging.getLogger("botocore").setLevel(logging.WARNING)
    from airflow_provider_mls.hooks.sagemaker_registry import SageMakerModelRegistryHook

    return [
        {
            "group": v.get("ModelPackageGroupName"),
            "version": v.get("ModelPackageVersion"),
            "approval": v.get("ModelApprovalStatus"),
        }
        for v in SageMakerModelRegistryHook().list_versions("churn-model")
    ]


if __name__ == "__main__":
    sys.exit(main())
