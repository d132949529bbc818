"""``make demo``: run the example DAGs with ``airflow dags test`` against the embedded local MLS server.

A fresh temporary AIRFLOW_HOME with an embedded SQLite metadata DB and a fresh local server each
time; prints the outcome and exits non-zero when anything fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAG_IDS = ("mls_quickstart", "mls_model_lifecycle", "mls_approval_gated_deploy")
BIN = Path(sys.executable).parent


def airflow(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    with log.open("a") as out:
        out.write(f"\n$ airflow {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            [str(BIN / "airflow"), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        out.write(proc.stdout)
    return proc


def main() -> int:
    from airflow_provider_mls.local.aws import LocalAWSEndpoint
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.testing.dag_run import dag_run_state

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
    started = time.monotonic()
    ok = False
    print(f"MLS demo: working directory {work}")
    with (
        LocalMLSServer(work / "mls-data", port=0, username="mls", password="mls-demo") as server,
        LocalAWSEndpoint() as aws,
    ):
        print(f"MLS demo: local MLS server at {server.url}")
        print(f"MLS demo: embedded AWS endpoint (moto: SageMaker model registry) at {aws.url}")
        env["AIRFLOW_CONN_MLS_DEFAULT"] = server.conn_json()
        env.update(aws.env())
        steps = [
            ("metadata DB", ["db", "migrate"]),
            ("connection test", ["connections", "test", "mls_default"]),
            *((f"DAG {dag_id}", ["dags", "test", dag_id]) for dag_id in DAG_IDS),
        ]
        for label, args in steps:
            proc = airflow(args, env, log)
            passed = proc.returncode == 0
            if label.startswith("DAG"):
                # `dags test` reports the run's final state; a failed task must fail the demo.
                passed = passed and dag_run_state(proc.stdout) == "success"
            if label == "connection test":
                passed = passed and "Connection success!" in proc.stdout
            print(f"MLS demo: {label}: {'ok' if passed else 'FAILED'}")
            if not passed:
                print(proc.stdout[-4000:])
                break
        else:
            ok = True
            os.environ.update(env)  # this process reads the same Airflow home and connection
            summary = model_summary()
            print("MLS demo: models on the local server:")
            for row in summary:
                print("  " + json.dumps(row, sort_keys=True))
            print("MLS demo: SageMaker model package versions:")
            for row in registry_summary():
                print("  " + json.dumps(row, sort_keys=True))
    elapsed = time.monotonic() - started
    if ok:
        print(f"MLS demo: DAG runs {', '.join(DAG_IDS)} succeeded in {elapsed:.1f}s")
        shutil.rmtree(work, ignore_errors=True)
        return 0
    print(f"MLS demo: FAILED after {elapsed:.1f}s; full log: {log}")
    return 1


def model_summary() -> list[dict[str, object]]:
    """The models now on the server, read through the provider's own hook."""
    from airflow_provider_mls.hooks.mls import MLSHook

    hook = MLSHook()
    return [
        {
            "id": m["id"],
            "type": m["model_type"],
            "name": m["name"],
            "version": m["version"],
            "status": m["status"],
            "meta_keys": sorted(m.get("model_meta") or {}),
        }
        for m in hook.list_all_manual_models() + hook.list_all_automl_models()
    ]


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
