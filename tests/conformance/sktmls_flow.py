"""Drive the reference client, the `sktmls` SDK, against a local MLS server.

Runs in its own virtualenv (`requirements/sktmls-client.txt`: sktmls without its ML stack), so
this file imports nothing of ours. usage: python sktmls_flow.py URL USERNAME PASSWORD
Prints one line per step and `SKTMLS FLOW OK` at the end; any mismatch raises.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from base64 import b64encode

import sktmls_light  # noqa: F401  (first: the SDK without its ML stack)
from sktmls import MLSENV, MLSClientError, MLSRuntimeENV
from sktmls.components import ComponentClient
from sktmls.datasets import DatasetClient, FeatureStoreConf, LabelDataConf, ProblemType
from sktmls.experiments import ExperimentClient
from sktmls.models.ml_model import AutoMLModel, ManualModel, MLModelClient, MLModelStatus

URL, USER, PASSWORD = sys.argv[1:4]
ENVS = ("dev", "stg", "prd", "dev_land", "stg_land", "prd_land", "local")


def client(cls):
    c = cls(env=MLSENV.STG, runtime_env=MLSRuntimeENV.LOCAL, username=USER, password=PASSWORD)
    c.config.MLS_AB_API_URL = dict.fromkeys(ENVS, URL)  # the SDK's own table, pointed at the local server
    return c


def local(method: str, path: str, body: bytes) -> None:
    """The local server's readiness shortcuts (what S3/DynamoDB would say on a real MLS)."""
    req = urllib.request.Request(URL + path, data=body, method=method)
    req.add_header("Authorization", "Basic " + b64encode(f"{USER}:{PASSWORD}".encode()).decode())
    req.add_header("Content-Type", "application/json")
    urllib.request.urlopen(req, timeout=10).read()


def step(label: str, value: object = "") -> None:
    print(f"{label}: {value}", flush=True)


def wait_for(what, predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


models, components, datasets, experiments = (
    client(MLModelClient),
    client(ComponentClient),
    client(DatasetClient),
    client(ExperimentClient),
)
sfx = f"{os.getpid()}_{int(time.time() * 1000)}"

# -- components and a manual model that uses one
comp = components.create_component(name=f"comp_{sfx}", info="v1", is_latest=True)
assert components.get_component(name=comp.name).id == comp.id
step("component", comp.name)
with_comp = models.create_manual_model(
    name=f"with_comp_{sfx}", version="v1", model_lib="sklearn", components=[comp]
)
assert isinstance(with_comp, ManualModel)
assert [c.name for c in models.get_manual_model(id=with_comp.id).components] == [comp.name]
step("model with component", with_comp.id)

# -- a manual model (deployment) through its life: create, get, list, update, meta, components
meta = {"name": f"m_{sfx}", "version": "v1", "model_lib": "lightgbm", "features": ["age", "svc_scrb_period"]}
m = models.create_model_deployment(
    name=f"m_{sfx}",
    version="v1",
    description="conformance",
    creator="sktmls",
    model_lib="lightgbm",
    model_data=f"/models/m_{sfx}/v1/model.joblib",
    model_meta=meta,
    features="age,svc_scrb_period",
    table=f"tbl_{sfx}",
)
assert (m.name, m.version, m.table, m.model_meta) == (f"m_{sfx}", "v1", f"tbl_{sfx}", meta), m.get()
assert m.status == MLModelStatus.NOT_IN_USE.value, m.status
assert models.get_manual_model(name=m.name, version="v1").id == m.id
assert models.get_model_deployment(id=m.id).features == "age,svc_scrb_period"
assert [x.id for x in models.list_manual_models(name=m.name, version="v1")] == [m.id]
assert m.id in [x.id for x in models.list_model_deployments(query=f"m_{sfx}")]
step("manual model", m.id)

m = models.update_manual_model(manual_model=m, description="updated", model_data="/models/other/model.joblib")
assert (m.description, m.model_data, m.creator) == ("updated", "/models/other/model.joblib", "sktmls"), (
    m.get()
)
m = models.update_manual_model_meta(manual_model=m, model_meta={"metric": "auc"}, partial_update=True)
assert m.model_meta == {**meta, "metric": "auc"}, m.model_meta
m = models.update_model_deployment_meta(model_deployment=m, model_meta={"replaced": True})
assert m.model_meta == {"replaced": True}, m.model_meta
m = models.update_manual_model_meta(manual_model=m, model_meta={})
assert m.model_meta == {}, m.model_meta
step("updates", "ok")

# -- readiness
assert models.is_batch_prediction_ready(manual_model=m) is False  # table not there yet
local("PUT", f"/local/tables/tbl_{sfx}", b'{"is_active": true, "is_loading": true}')
assert models.is_batch_prediction_ready(manual_model=m) is False  # still loading
local("PUT", f"/local/tables/tbl_{sfx}", b'{"is_active": true, "is_loading": false}')
assert models.is_batch_prediction_ready(manual_model=m) is True
assert models.is_online_prediction_ready(manual_model=m) is False
local("PUT", f"/local/artifacts/m_{sfx}/v1", b'{"info": {"size": 10}}')
assert models.is_online_prediction_ready(manual_model=m) is True
step("readiness", "ok")

# -- AutoML: dataset, training, handler, server
ds = datasets.create_dataset(
    name=f"ds_{sfx}",
    problem_type=ProblemType.CLASSIFICATION,
    feature_store_conf=FeatureStoreConf(enabled=True, feature_group_id_list=[1]),
    label_data_conf=LabelDataConf(source_type="table", source_path="db.labels"),
)
assert datasets.get_dataset(name=ds.name).id == ds.id
auto = models.create_automl_model(dataset=ds, name=f"auto_{sfx}", version="v1", description="automl")
assert isinstance(auto, AutoMLModel) and auto.status == MLModelStatus.AUTOML_TRAINING.value, auto.get()
auto = wait_for(
    "training DONE",
    lambda: (a := models.get_automl_model(name=auto.name, version="v1")).status == "DONE" and a,
)
assert auto.dataset_id == ds.id and auto.get_error() is None
assert auto.id in [a.id for a in models.list_automl_models()]
assert models.get_automl_model_server_status(model=auto) == "STOPPED"
models.update_automl_model_server_handler(model=auto, handler="def handler(x):\n    return x\n")
assert models.get_automl_model_server_handler(model=auto) == "def handler(x):\n    return x\n"
models.start_automl_model_server(model=auto)
assert models.get_automl_model_server_status(model=auto) in ("STARTING", "RUNNING")
wait_for("server RUNNING", lambda: models.get_automl_model_server_status(model=auto) == "RUNNING")
step("automl", auto.id)

# -- experiments, buckets, ratio, migration to the AutoML model
exp = experiments.create_experiment(name=f"exp_{sfx}", description="conformance", bucketing_seed="seed")
b1 = experiments.create_bucket(experiment=exp, name="b1", prediction_type="online", model=m)
b2 = experiments.create_bucket(
    experiment=exp, name="b2", prediction_type="static", static_value={"items": []}
)
buckets = experiments.update_bucket_ratio(experiment=exp, bucket_ratio={b1: 40, b2: 60})
assert sorted(b.name for b in buckets) == ["b1", "b2"]
assert models.get_manual_model(id=m.id).status == MLModelStatus.IN_USE.value
moved = experiments.migrate_bucket(prev_model=m, next_prediction_type="automl", next_model=auto)
assert [b.id for b in moved] == [b1.id], [b.get() for b in moved]
assert models.get_manual_model(id=m.id).status == MLModelStatus.NOT_IN_USE.value
step("buckets", [b.id for b in moved])

# -- clean up: stop the server, delete models (one with its table), errors come back as the envelope says
models.stop_automl_model_server(model=auto)
wait_for("server STOPPED", lambda: models.get_automl_model_server_status(model=auto) == "STOPPED")
experiments.delete_bucket(bucket=experiments.get_bucket(experiment=exp, id=b1.id))
models.delete_model(model=auto)
models.delete_model_deployment(model_deployment=m, delete_table=True)
models.delete_model(model=with_comp)
try:
    models.get_manual_model(id=m.id)
    raise AssertionError("deleted model still there")
except MLSClientError as err:
    assert err.code == 404, err.code
try:
    models.create_manual_model(name=f"dup_{sfx}", version="v1")
    models.create_manual_model(name=f"dup_{sfx}", version="v1")
    raise AssertionError("duplicate (name, version) accepted")
except MLSClientError as err:
    assert err.code == 409, err.code
step("cleanup", "ok")
print("SKTMLS FLOW OK")
