"""The chaos workload: the hook and the operators against mls-local behind the chaos proxy.

Shared by ``tests/chaos`` (bounded, a few dozen operations) and ``scripts/chaos.py`` (``make
chaos``: more operations, real 2-5 s delays). Every operation runs as a task would: a fresh
operator (or hook) per run, many at once. The server is then read directly (not through the
proxy) and the invariants are counted:

* **duplicates**: ``if_exists="fail"`` creates (manual and AutoML) of one (name, version) that went
  green beyond the first (each writer sends its own payload: only one of them made the model);
* **stale adoptions**: a green create that returned (or left stored) a model that is not its own
  write: one that existed before it ran, or one holding another writer's payload;
* **keys lost**: a green partial meta merge whose key is not stored at the end;
* **untyped errors**: a failure that is not an ``MLSError`` or an ``AirflowException``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

CONN_ID = "mls_chaos"


@dataclass
class Figures:
    runs: int = 0
    green: int = 0
    duplicates: int = 0
    stale_adoptions: int = 0
    keys_lost: int = 0
    typed_errors: int = 0
    conflicts: int = 0  # of the typed errors: the refusals the scenarios ask for (409, if_exists="fail")
    untyped_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what each non-zero invariant counted
    errors: Counter[str] = field(default_factory=Counter)  # typed errors by class
    faults: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def outcome(self, ok: bool, exc: BaseException | None = None) -> None:
        from airflow.exceptions import AirflowException

        from airflow_provider_mls.exceptions import MLSConflictError, MLSError

        with self._lock:
            self.runs += 1
            if ok:
                self.green += 1
            elif isinstance(exc, MLSError | AirflowException):
                self.typed_errors += 1
                self.errors[type(exc).__name__] += 1
                cause = exc if isinstance(exc, MLSError) else exc.__cause__
                if isinstance(cause, MLSConflictError):
                    self.conflicts += 1  # if_exists="fail" on a (name, version) someone else holds
            else:
                self.untyped_errors.append(f"{type(exc).__name__}: {exc}")

    def problem(self, kind: str, message: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + count)
            self.problems.append(f"{kind}: {message}")

    def summary(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "green": self.green,
            "duplicates": self.duplicates,
            "stale_adoptions": self.stale_adoptions,
            "keys_lost": self.keys_lost,
            "typed_errors": self.typed_errors,
            "conflicts": self.conflicts,
            "untyped_errors": len(self.untyped_errors),
        }


class Direct:
    """The server without the proxy: to set the scene and to read the truth."""

    def __init__(self, url: str, auth: tuple[str, str]) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.auth = auth

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.session.request(method, self.url + path, timeout=30, **kw)
        body = r.json()
        if r.status_code != 200 or body.get("error"):
            raise AssertionError(f"{method} {path} -> {r.status_code} {body}")
        return body["results"]

    def models(self, name: str, version: str) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v1/models", params={"name": name, "version": version}))

    def create(self, **body: Any) -> int:
        return int(self.call("POST", "/api/v1/models", json={"model_type": "manual", **body})["id"])


def connection_env(
    proxy_url: str, auth: tuple[str, str], *, max_retries: int = 5, write_settle: float | None = None
) -> dict[str, str]:
    """``AIRFLOW_CONN_MLS_CHAOS``: the MLS connection through the proxy (``write_settle``: the
    connection extra of that name, the hook's wait before it verifies an update; None: its default)."""
    extra: dict[str, Any] = {
        "env": "local",
        "runtime_env": "LOCAL",
        "max_retries": max_retries,
        "timeout": 30,
    }
    if write_settle is not None:
        extra["write_settle"] = write_settle
    conn = {"conn_type": "mls", "host": proxy_url, "login": auth[0], "password": auth[1], "extra": extra}
    return {f"AIRFLOW_CONN_{CONN_ID.upper()}": json.dumps(conn)}


def _run(figures: Figures, fn: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        result = fn()
    except Exception as exc:
        figures.outcome(False, exc)
        return False, exc
    figures.outcome(True)
    return True, result


def _thread_ready() -> None:
    """Airflow 2's ExecutorSafeguard keeps a thread-local set up in the importing thread only: give
    this worker thread its own (a task runs ``execute`` in its process's main thread)."""
    try:
        from airflow.models.baseoperator import ExecutorSafeguard
    except ImportError:  # pragma: no cover - Airflow 3 has no such guard there
        return
    sentinel = getattr(ExecutorSafeguard, "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def _pool(jobs: list[Callable[[], Any]], workers: int) -> list[Any]:
    def run(job: Callable[[], Any]) -> Any:
        _thread_ready()
        return job()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, jobs))


# ---------------------------------------------------------------------------- scenarios
def concurrent_creates(direct: Direct, figures: Figures, *, keys: int, writers: int, tag: str) -> None:
    """``writers`` tasks create the same (name, version) at once, each with its own payload."""
    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    for k in range(keys):
        name = f"chaos_{tag}_c{k}"

        def create(w: int, name: str = name) -> tuple[int, bool, Any]:
            op = CreateManualModelOperator(
                task_id=f"create_{w}",
                name=name,
                version="v1",
                model_data=f"/models/{name}/w{w}/model.joblib",
                model_meta={"writer": w},
                if_exists="fail",
                mls_conn_id=CONN_ID,
            )
            ok, result = _run(figures, lambda: op.execute({}))
            return w, ok, result

        results = _pool([lambda w=w: create(w) for w in range(writers)], writers)
        green = [(w, r) for w, ok, r in results if ok]
        if len(green) > 1:
            figures.problem(
                "duplicates",
                f"{name}: {len(green) - 1} extra green creates {[w for w, _ in green]}",
                len(green) - 1,
            )
        stored = direct.models(name, "v1")
        for w, result in green:
            mine = f"/models/{name}/w{w}/model.joblib"
            if result.get("model_data") != mine or not stored or stored[0]["id"] != result.get("id"):
                figures.problem("stale_adoptions", f"{name}: writer {w} went green with {result}")
            elif stored[0]["model_meta"] != {"writer": w}:
                figures.problem(
                    "stale_adoptions", f"{name}: writer {w}'s model holds {stored[0]['model_meta']}"
                )


def concurrent_automl_creates(direct: Direct, figures: Figures, *, keys: int, writers: int, tag: str) -> None:
    """The same for ``CreateAutoMLModelOperator`` (it shares the create path): one green at most,
    holding its own description."""
    from airflow_provider_mls.operators.mls import CreateAutoMLModelOperator

    dataset = direct.call(
        "POST",
        "/api/v1/datasets",
        json={"name": f"chaos_{tag}_ds", "type": "classification", "base_feature_conf": {"features": ["age"]},
              "label_data_conf": {"source_type": "s3", "source_path": "s3://bucket/labels.csv"}},
    )  # fmt: skip
    for k in range(keys):
        name = f"chaos_{tag}_a{k}"

        def create(w: int, name: str = name) -> tuple[int, bool, Any]:
            op = CreateAutoMLModelOperator(
                task_id=f"automl_{w}",
                name=name,
                version="v1",
                description=f"writer {w}",
                dataset_id=dataset["id"],
                if_exists="fail",
                mls_conn_id=CONN_ID,
            )
            ok, result = _run(figures, lambda: op.execute({}))
            return w, ok, result

        results = _pool([lambda w=w: create(w) for w in range(writers)], writers)
        green = [(w, r) for w, ok, r in results if ok]
        if len(green) > 1:
            figures.problem(
                "duplicates", f"{name}: {len(green) - 1} extra green AutoML creates", len(green) - 1
            )
        stored = direct.models(name, "v1")
        for w, result in green:
            if not stored or stored[0]["id"] != result.get("id") or stored[0]["description"] != f"writer {w}":
                figures.problem(
                    "stale_adoptions", f"{name}: AutoML writer {w} went green with {result}; stored {stored}"
                )


def creates_over_existing(direct: Direct, figures: Figures, *, runs: int, tag: str) -> None:
    """A model exists before the task: ``fail`` must never go green, ``update`` must store the task's values."""
    from airflow_provider_mls.operators.mls import CreateManualModelOperator

    def one(i: int) -> None:
        name = f"chaos_{tag}_e{i}"
        old_id = direct.create(name=name, version="v-update", model_data="/old/model.joblib",
                               model_meta={"gen": "old"})  # fmt: skip
        mode = "update" if i % 2 else "fail"
        new_data = f"/new/{i}/model.joblib"
        op = CreateManualModelOperator(
            task_id=f"over_{i}",
            name=name,
            version="v-update",
            model_data=new_data,
            model_meta={"gen": "new"},
            if_exists=mode,
            mls_conn_id=CONN_ID,
        )
        ok, result = _run(figures, lambda: op.execute({}))
        stored = direct.models(name, "v-update")
        if mode == "fail":
            if ok:
                figures.problem(
                    "stale_adoptions", f"{name}: if_exists=fail went green over model {old_id}: {result}"
                )
            if [m["model_data"] for m in stored] != ["/old/model.joblib"]:
                figures.problem(
                    "stale_adoptions", f"{name}: if_exists=fail changed the stored model: {stored}"
                )
        elif ok:
            values = (stored[0]["id"], stored[0]["model_data"], stored[0]["model_meta"]) if stored else None
            if result.get("model_data") != new_data or values != (old_id, new_data, {"gen": "new"}):
                figures.problem(
                    "stale_adoptions",
                    f"{name}: if_exists=update went green; returned {result}, stored {values}",
                )

    _pool([lambda i=i: one(i) for i in range(runs)], max(1, min(runs, 6)))


def concurrent_merges(direct: Direct, figures: Figures, *, models: int, writers: int, tag: str) -> None:
    """``writers`` tasks merge one distinct key each into the same model's meta at once."""
    from airflow_provider_mls.operators.mls import UpdateModelMetaOperator

    for m in range(models):
        mid = direct.create(name=f"chaos_{tag}_m{m}", version="v1", model_meta={"base": True})

        def merge(w: int, mid: int = mid) -> tuple[int, bool]:
            op = UpdateModelMetaOperator(
                task_id=f"merge_{w}",
                model_id=mid,
                model_meta={f"metric_{w}": w},
                partial_update=True,
                mls_conn_id=CONN_ID,
            )
            ok, _ = _run(figures, lambda: op.execute({}))
            return w, ok

        results = _pool([lambda w=w: merge(w) for w in range(writers)], writers)
        meta = direct.call("GET", f"/api/v1/models/{mid}")["model_meta"]
        lost = [w for w, ok in results if ok and meta.get(f"metric_{w}") != w]
        if lost:
            figures.problem(
                "keys_lost", f"model {mid}: green merges of {lost} are not stored ({sorted(meta)})", len(lost)
            )
        if meta.get("base") is not True:
            figures.problem(
                "keys_lost", f"model {mid}: the key 'base' that no one touched is gone ({sorted(meta)})"
            )


def hook_calls(direct: Direct, figures: Figures, *, runs: int, tag: str) -> None:
    """The hook itself: creates with distinct keys, merges, reads."""
    from airflow_provider_mls.hooks.mls import MLSHook

    mid = direct.create(name=f"chaos_{tag}_h", version="v1", model_meta={})

    def one(i: int) -> None:
        hook = MLSHook(mls_conn_id=CONN_ID, retry_min_wait=0.2, retry_max_wait=2)  # settle: the connection's
        name = f"chaos_{tag}_h{i}"
        ok, model = _run(figures, lambda: hook.create_manual_model(name, "v1", model_meta={"i": i}))
        if ok and (model.get("model_meta") != {"i": i} or len(direct.models(name, "v1")) != 1):
            figures.problem("stale_adoptions", f"{name}: hook create returned {model}")
        ok, _ = _run(figures, lambda: hook.update_manual_model_meta(mid, {f"h{i}": i}, partial_update=True))
        if ok and direct.call("GET", f"/api/v1/models/{mid}")["model_meta"].get(f"h{i}") != i:
            figures.problem("keys_lost", f"model {mid}: hook merge of h{i} went green and is not stored")
        _run(figures, lambda: hook.get_model(mid))

    _pool([lambda i=i: one(i) for i in range(runs)], max(1, min(runs, 6)))


def run_workload(
    server_url: str,
    auth: tuple[str, str],
    proxy: Any,
    *,
    scale: int = 1,
    tag: str | None = None,
    write_settle: float | None = None,
) -> Figures:
    """All scenarios once; ``scale`` multiplies their sizes. The proxy must be started."""
    tag = tag or uuid.uuid4().hex[:8]
    direct = Direct(server_url, auth)
    figures = Figures()
    env = connection_env(proxy.url, auth, write_settle=write_settle)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        concurrent_creates(direct, figures, keys=2 * scale, writers=6, tag=tag)
        concurrent_automl_creates(direct, figures, keys=scale, writers=4, tag=tag)
        creates_over_existing(direct, figures, runs=4 * scale, tag=tag)
        concurrent_merges(direct, figures, models=scale, writers=10, tag=tag)
        hook_calls(direct, figures, runs=3 * scale, tag=tag)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    figures.faults = dict(proxy.stats)
    return figures
