"""The pytest plugin users enable for their DAG tests, run as a user would: a separate pytest run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(240)

USER_TESTS = """
import os

import boto3

pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]


def test_connections_and_aws_point_at_the_local_server(mls_local, mls_admin):
    from airflow_provider_mls.hooks.mls import MLSHook

    assert os.environ["AWS_ENDPOINT_URL"] == mls_local.aws_endpoint_url
    assert "AWS_PROFILE" not in os.environ
    # boto3 with no arguments reaches the embedded endpoint; the local server answers from it.
    boto3.client("s3").put_object(Bucket="mls-model-registry", Key="churn/v1/model.joblib", Body=b"abc")
    hook = MLSHook()  # mls_default
    assert hook.get_artifact_info("churn", "v1")["size"] == 3
    mls_admin.set_table("churn_predictions", is_loading=True)
    assert hook.is_table_active("churn_predictions") and hook.is_table_loading("churn_predictions")


def test_the_amazon_style_connection_is_set(mls_local):
    import json

    conn = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == mls_local.aws_endpoint_url


def test_nothing_leaks_into_a_test_without_the_fixture():
    assert os.environ.get("AWS_PROFILE") == "someone-elses"
    assert "AIRFLOW_CONN_MLS_DEFAULT" not in os.environ
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_same_server_for_the_session(mls_local_server, mls_local):
    assert mls_local is mls_local_server and mls_local.running
"""


def test_plugin_fixtures_in_a_user_test_run(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_user_dag=USER_TESTS)
    pytester.makeini("[pytest]\nmls_local_training_seconds = 0.5\n")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AWS_PROFILE", "someone-elses")
    for name in ("AIRFLOW_CONN_MLS_DEFAULT", "AIRFLOW_CONN_AWS_DEFAULT", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


def test_a_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user='pytest_plugins = ["airflow_provider_mls.testing.pytest_plugin"]\n'
        "def test_it(mls_local_server):\n    pass\n"
    )
    pytester.makeini("[pytest]\nmls_local_training_seconds = soon\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*mls_local_training_seconds must be a number of seconds, got 'soon'*"])
    assert result.ret != 0
