"""The ``mls-local`` CLI and the ``LocalMLSServer`` launcher."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_mls.local.process import LocalMLSServer, LocalMLSServerError

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)


def spawn(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "airflow_provider_mls.local", "--data-dir", str(tmp_path / "data"), *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_listening_line_and_clean_exit(tmp_path: Path, sig: signal.Signals) -> None:
    proc = spawn(tmp_path, "--port", "0", "--username", "u", "--password", "p")
    try:
        assert proc.stdout is not None
        aws_line = proc.stdout.readline()
        assert aws_line.startswith("MLS local AWS endpoint (embedded moto: S3, DynamoDB, SageMaker) at "), (
            aws_line
        )
        aws_url = aws_line.rsplit(" at ", 1)[1].strip()
        line = proc.stdout.readline()
        assert line.startswith("MLS local server listening on http://127.0.0.1:"), line
        url = line.split(" on ", 1)[1].strip()
        port = int(url.rsplit(":", 1)[1])
        assert port > 0
        r = requests.get(url + "/api/v1/models", auth=("u", "p"), timeout=10)
        assert r.json() == {"code": 200, "error": None, "results": []}
        # The embedded endpoint is up, with the three registry buckets of MLS.
        buckets = requests.get(aws_url + "/", timeout=10).text
        for bucket in ("mls-model-registry", "mls-model-registry-stg", "mls-model-registry-prd"):
            assert f"<Name>{bucket}</Name>" in buckets
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert out == ""  # exactly two lines on stdout, the AWS endpoint's and the listening line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_env_vars(tmp_path: Path) -> None:
    proc = spawn(
        tmp_path, env={"MLS_LOCAL_PORT": "0", "MLS_LOCAL_USERNAME": "envuser", "MLS_LOCAL_PAGE_SIZE": "2"}
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # the AWS endpoint
        url = proc.stdout.readline().split(" on ", 1)[1].strip()
        assert requests.get(url + "/api/v1/models", auth=("envuser", "mls"), timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert proc.returncode == 0


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--port", "abc"], "--port"),
        (["--port", "70000"], "--port"),
        (["--training-seconds", "soon"], "--training-seconds"),
        (["--server-start-seconds", "-1"], "--server-start-seconds"),
        (["--page-size", "0"], "--page-size"),
        (["--log-level", "loud"], "--log-level"),
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], flag: str) -> None:
    proc = spawn(tmp_path, *args)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert flag in err and out == ""


def test_float_timing_flags_accepted(tmp_path: Path) -> None:
    with LocalMLSServer(tmp_path, training_seconds=0.25, server_start_seconds=0.2) as srv:
        assert srv.running and srv.port > 0 and srv.url == f"http://127.0.0.1:{srv.port}"
        assert requests.get(srv.url + "/local/health", timeout=10).json()["results"] == {"status": "ok"}
    assert not srv.running and srv.returncode == 0


def test_launcher_connection_helpers(tmp_path: Path) -> None:
    srv = LocalMLSServer(tmp_path, username="us er", password="p@ss:/word").start()
    try:
        assert srv.conn_uri() == f"mls://us%20er:p%40ss%3A%2Fword@127.0.0.1:{srv.port}?env=local"
        conn = json.loads(srv.conn_json())
        assert conn == {
            "conn_type": "mls",
            "host": srv.url,
            "login": "us er",
            "password": "p@ss:/word",
            "extra": {"env": "local", "runtime_env": "LOCAL"},
        }
        assert requests.get(srv.url + "/api/v1/models", auth=srv.auth, timeout=10).status_code == 200
    finally:
        srv.stop()


def test_launcher_reports_startup_failure(tmp_path: Path) -> None:
    srv = LocalMLSServer(tmp_path, extra_args=["--log-level", "nope"], startup_timeout=20)
    with pytest.raises(LocalMLSServerError, match="--log-level"):
        srv.start()
    assert not srv.running


def test_port_in_use_fails(tmp_path: Path) -> None:
    with LocalMLSServer(tmp_path / "a") as first:
        clash = LocalMLSServer(tmp_path / "b", port=first.port, startup_timeout=20)
        with pytest.raises(LocalMLSServerError, match="cannot bind"):
            clash.start()


def test_external_aws_endpoint(tmp_path: Path) -> None:
    """--aws-endpoint: the server reads another endpoint's S3/DynamoDB, and says so when it is gone."""
    import boto3

    from airflow_provider_mls.local.aws import LocalAWSEndpoint

    aws = LocalAWSEndpoint().start()
    try:
        env = {"AWS_ACCESS_KEY_ID": "other", "AWS_SECRET_ACCESS_KEY": "other"}
        with LocalMLSServer(tmp_path / "data", aws_endpoint=aws.url, password="mls-ext") as server:
            assert server.aws_endpoint_url == aws.url
            assert "AWS_ACCESS_KEY_ID" not in server.aws_env()  # your credentials, not test ones
            s3 = boto3.client("s3", endpoint_url=aws.url, region_name="us-east-1", **{
                "aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]})  # fmt: skip
            names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
            assert {"mls-model-registry", "mls-model-registry-stg", "mls-model-registry-prd"} <= names
            s3.put_object(Bucket="mls-model-registry", Key="ext/v1/model.joblib", Body=b"12345")
            url = server.url + "/api/v1/model_registry/artifacts/info"
            params = {"model_name": "ext", "model_version": "v1"}
            info = requests.get(url, params=params, auth=server.auth, timeout=10).json()["results"]["info"]
            assert info["size"] == 5 and info["uri"] == "s3://mls-model-registry/ext/v1/model.joblib"
            aws.stop()
            r = requests.get(url, params=params, auth=server.auth, timeout=60)
            assert r.status_code == 500 and r.json()["error"].startswith(
                "aws: HeadObject s3://mls-model-registry/ext/v1"
            )
    finally:
        aws.stop()


def test_unusable_aws_endpoint_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    server = LocalMLSServer(tmp_path / "data", aws_endpoint=f"http://127.0.0.1:{port}", startup_timeout=60)
    with pytest.raises(LocalMLSServerError, match=r"the AWS endpoint http://127\.0\.0\.1:\d+ is not usable"):
        server.start()


def test_lean_lists_and_the_request_record(tmp_path: Path) -> None:
    """``--lean-lists``: list items carry ids and names only; ``--record``: every request outside
    /local as it was sent (raw path and query, JSON body), refused ones too."""
    record = tmp_path / "requests.jsonl"
    with LocalMLSServer(tmp_path / "data", lean_lists=True, record=record) as srv:
        s = requests.Session()
        s.auth = srv.auth
        body = {
            "model_type": "manual",
            "name": "lean",
            "version": "v1",
            "model_meta": {"a": 1},
            "table": "tbl",
        }
        mid = s.post(srv.url + "/api/v1/models", json=body, timeout=10).json()["results"]["id"]
        listed = s.get(srv.url + "/api/v1/models", params={"name": "lean"}, timeout=10).json()["results"]
        assert listed == [{"id": mid, "name": "lean", "version": "v1", "model_type": "manual"}]
        assert s.get(f"{srv.url}/api/v1/models/{mid}", timeout=10).json()["results"]["model_meta"] == {"a": 1}
        comp = s.post(
            srv.url + "/api/v1/components", json={"name": "c", "info": "i", "is_latest": True}, timeout=10
        )
        items = s.get(srv.url + "/api/v1/components", params={"is_latest": True}, timeout=10).json()[
            "results"
        ]
        assert items == [{"id": comp.json()["results"]["id"], "name": "c"}]
        assert s.get(srv.url + "/api/v1/models/", timeout=10).status_code == 404
        s.get(srv.url + "/local/faults", timeout=10)  # /local is not recorded
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(e["method"], e["path"], e["query"]) for e in lines] == [
        ("POST", "/api/v1/models", ""),
        ("GET", "/api/v1/models", "name=lean"),
        ("GET", f"/api/v1/models/{mid}", ""),
        ("POST", "/api/v1/components", ""),
        ("GET", "/api/v1/components", "is_latest=True"),
        ("GET", "/api/v1/models/", ""),
    ]
    assert lines[0]["body"] == body and lines[1]["body"] is None
