"""The DAGs of the fault test (``tests/e2e/test_faults.py``): one task each that starts something remote,
retried after a fault, and a mapped deferred wait for the triggerer.

Every name comes from the run's conf, so each scenario writes its own models, tables and artifacts.
``MLS_FAULT_WAITS`` (the environment of the deployment) is how many waits ``mls_fault_waits`` maps.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mls.operators.mls import (
    CreateAutoMLModelOperator,
    CreateManualModelOperator,
    StartAutoMLServerOperator,
)
from airflow_provider_mls.operators.model_registry import UploadModelToRegistryOperator
from airflow_provider_mls.operators.prediction_table import LoadPredictionTableOperator
from airflow_provider_mls.sensors.mls import BatchPredictionReadySensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
RETRIES = {"retries": 3, "retry_delay": timedelta(seconds=1)}
WAITS = int(os.environ.get("MLS_FAULT_WAITS", "200"))
TABLES = 10  # the waits share these tables: 20 waits per shared request at 200

with DAG("mls_fault_create_manual", schedule=None, start_date=START, catchup=False, tags=["mls", "faults"]):
    CreateManualModelOperator(
        task_id="create",
        name="{{ dag_run.conf['name'] }}",
        version="{{ dag_run.conf['version'] }}",
        if_exists="{{ dag_run.conf.get('if_exists', 'fail') }}",
        description="{{ dag_run.conf.get('description', 'fault test') }}",
        model_lib="sklearn",
        **RETRIES,
    )

with DAG("mls_fault_create_automl", schedule=None, start_date=START, catchup=False, tags=["mls", "faults"]):
    CreateAutoMLModelOperator(
        task_id="create",
        name="{{ dag_run.conf['name'] }}",
        version="{{ dag_run.conf['version'] }}",
        description="fault test",
        dataset_name="{{ dag_run.conf['dataset'] }}",
        **RETRIES,
    )

with DAG(
    "mls_fault_load_table",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["mls", "faults"],
    render_template_as_native_obj=True,
):
    LoadPredictionTableOperator(
        task_id="load",
        table="{{ dag_run.conf['table'] }}",
        rows="{{ dag_run.conf['rows'] }}",
        **RETRIES,
    )

with DAG("mls_fault_upload", schedule=None, start_date=START, catchup=False, tags=["mls", "faults"]):
    UploadModelToRegistryOperator(
        task_id="upload",
        name="{{ dag_run.conf['name'] }}",
        version="{{ dag_run.conf['version'] }}",
        model_lib="sklearn",
        model_lib_version="1.5.0",
        features="a,b,c",
        model_bytes=b"\x80" * (16 << 20),  # 16 MiB: the upload takes long enough to be killed in
        **RETRIES,
    )

with DAG(
    "mls_fault_waits",
    schedule=None,
    start_date=START,
    catchup=False,
    tags=["mls", "faults"],
    max_active_tasks=WAITS,
):
    BatchPredictionReadySensor.partial(
        task_id="wait",
        deferrable=True,
        poke_interval=2,
        timeout=900,
        **RETRIES,
    ).expand(table=[f"fault_waits_{i % TABLES}" for i in range(WAITS)])

with DAG("mls_fault_start_server", schedule=None, start_date=START, catchup=False, tags=["mls", "faults"]):
    StartAutoMLServerOperator(
        task_id="start",
        model_id="{{ dag_run.conf['model_id'] }}",
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )
