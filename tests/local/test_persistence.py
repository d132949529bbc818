"""SQLite persistence: uniqueness under concurrent creates, and survival of a kill -9."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import boto3
import pytest
import requests

from airflow_provider_mls.local.process import LocalMLSServer

from .conftest import Api, uniq

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(90)


def test_unique_under_concurrent_creates(api: Api) -> None:
    name = uniq("race")
    body = {"model_type": "manual", "name": name, "version": "1"}

    def create(_: int) -> tuple[int, int]:
        r = requests.post(api.server.url + "/api/v1/models", json=body, auth=api.server.auth, timeout=30)
        return r.status_code, r.json()["code"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(create, range(20)))
    assert sorted(results).count((200, 200)) == 1, results
    assert sorted(results).count((409, 409)) == 19, results
    assert len(api.ok("GET", "/api/v1/models", params={"name": name})) == 1


def test_everything_survives_kill_9(tmp_path: Path) -> None:
    srv = LocalMLSServer(tmp_path, training_seconds=2.0, server_start_seconds=30.0, page_size=5).start()
    try:
        api = Api(srv)
        comp = api.ok("POST", "/api/v1/components", {"name": "c", "info": "i", "is_latest": True})
        ds = api.dataset()
        manual = api.manual_model(components=["c"], model_meta={"k": 1})
        automl = api.automl_model(dataset_id=ds["id"])
        running = api.automl_model(dataset_id=ds["id"])
        api.ok("POST", f"/local/models/{running}/training", {"status": "DONE"})
        api.ok("POST", f"/api/v1/models/{running}/automl_model_server")
        api.ok("POST", f"/api/v1/models/{automl}/automl_online_prediction", {"handler": "x = 1"})
        exp = api.experiment()
        bucket = api.ok("POST", f"/api/v1/experiments/{exp['id']}/buckets",
                        {"name": "b", "prediction_type": "online", "online_model_id": manual})  # fmt: skip
        api.ok(
            "PUT", f"/api/v1/experiments/{exp['id']}/bucket_ratio", {"bucket_ratio": {str(bucket["id"]): 100}}
        )
        api.ok("PUT", "/local/tables/tbl1", {"is_active": True, "is_loading": False})
        api.ok("PUT", "/local/tables/tbl2", {"is_loading": True})
        api.ok("PUT", "/local/artifacts/m/v1")
        # S3 and DynamoDB live in the embedded AWS endpoint: they survive through its state file.
        aws = {"endpoint_url": srv.aws_endpoint_url, "region_name": "us-east-1",
               "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # fmt: skip
        boto3.client("s3", **aws).put_object(
            Bucket="mls-model-registry", Key="m/v2/model.joblib", Body=b"\x00joblib"
        )
        boto3.client("dynamodb", **aws).put_item(
            TableName="tbl1", Item={"user_id": {"S": "u1"}, "p": {"N": "0.5"}}
        )
        before = {
            "manual": api.ok("GET", f"/api/v1/models/{manual}"),
            "buckets": api.ok("GET", f"/api/v1/experiments/{exp['id']}/buckets"),
            "datasets": api.ok("GET", "/api/v1/datasets"),
            "components": api.ok("GET", "/api/v1/components"),
            "experiments": api.ok("GET", "/api/v1/experiments"),
        }
        assert api.ok("GET", f"/api/v1/models/{automl}")["status"] == "TRAINING"
        old_port = srv.port

        srv.kill()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{old_port}/local/health", timeout=2)
        srv.start()
        api = Api(srv)
        assert api.ok("GET", f"/api/v1/models/{manual}") == before["manual"]
        assert before["manual"]["status"] == "IN_USE" and before["manual"]["components"] == [comp]
        assert api.ok("GET", f"/api/v1/experiments/{exp['id']}/buckets") == before["buckets"]
        assert api.ok("GET", "/api/v1/datasets") == before["datasets"]
        assert api.ok("GET", "/api/v1/components") == before["components"]
        assert api.ok("GET", "/api/v1/experiments") == before["experiments"]
        assert api.ok("GET", "/api/v1/dynamodb/tables/tbl1/is_active") == {"is_active": True}
        assert api.ok("GET", "/api/v1/dynamodb/tables/tbl2/is_loading") == {"is_loading": True}
        aws["endpoint_url"] = srv.aws_endpoint_url  # a new port after the restart
        assert (
            boto3.client("s3", **aws)
            .get_object(Bucket="mls-model-registry", Key="m/v2/model.joblib")["Body"]
            .read()
            == b"\x00joblib"
        )
        item = boto3.client("dynamodb", **aws).get_item(TableName="tbl1", Key={"user_id": {"S": "u1"}})[
            "Item"
        ]
        assert item == {"user_id": {"S": "u1"}, "p": {"N": "0.5"}}
        assert api.ok("GET", "/api/v1/model_registry/artifacts/info",
                      params={"model_name": "m", "model_version": "v2"})["info"]["size"] == 7  # fmt: skip
        assert api.ok("GET", "/api/v1/model_registry/artifacts/info",
                      params={"model_name": "m", "model_version": "v1"})["info"] is not None  # fmt: skip
        assert api.ok("GET", f"/api/v1/models/{automl}/automl_online_prediction") == {"handler": "x = 1"}
        # timers kept running across the crash
        assert api.ok("GET", f"/api/v1/models/{running}/automl_model_server") == {"status": "STARTING"}
        deadline = time.monotonic() + 20
        while (
            api.ok("GET", f"/api/v1/models/{automl}")["status"] == "TRAINING" and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert api.ok("GET", f"/api/v1/models/{automl}")["status"] == "DONE"
        # ids keep growing, uniqueness still enforced
        assert api.post("/api/v1/models", {"model_type": "manual", "name": before["manual"]["name"],
                                           "version": before["manual"]["version"]})[0] == 409  # fmt: skip
        assert api.manual_model() > running
        # a graceful restart keeps everything too
        srv.restart()
        assert Api(srv).ok("GET", f"/api/v1/models/{manual}")["name"] == before["manual"]["name"]
    finally:
        srv.stop()
