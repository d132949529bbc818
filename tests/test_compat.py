from __future__ import annotations

import airflow

from airflow_provider_mls import _compat


def test_compat_resolves_to_the_running_airflow() -> None:
    major = int(airflow.__version__.split(".")[0])
    assert _compat.AIRFLOW_V_3_0_PLUS is (major >= 3)
    expected = "airflow.sdk" if major >= 3 else "airflow.hooks.base"
    assert _compat.BaseHook.__module__.startswith(expected)
