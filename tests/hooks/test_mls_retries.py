"""Retries against the real server's fault injection: what is repeated, how often, and what never is."""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_mls.exceptions import MLSConflictError, MLSServerError
from airflow_provider_mls.hooks._retry import outcome_unknown, retry_policy, retryable_error
from airflow_provider_mls.hooks.mls import MLSHook

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.hooks.conftest import Admin, RequestLog

    MakeHook = Callable[..., tuple[MLSHook, RequestLog]]


def test_get_retried_until_it_answers(
    hook: MLSHook, counter: RequestLog, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged: list[tuple[str, tuple[Any, ...]]] = []

    class StubLog:
        def warning(self, msg: str, *args: Any) -> None:
            logged.append((msg, args))

        info = debug = warning

    monkeypatch.setattr(MLSHook, "log", StubLog())
    admin.add_fault("GET", "/api/v1/components", status=503, count=2)
    assert isinstance(hook.list_components(), list)
    assert len(counter) == 3
    retries = [(msg, args) for msg, args in logged if "retry" in msg]
    assert len(retries) == 2
    msg, args = retries[0]
    assert (
        "%s" in msg and "GET /api/v1/components" in args and 1 in args and 5 in args
    )  # %s args, no f-string
    assert "retry 1 of 5" in msg % args


def test_retries_are_bounded(make_hook: MakeHook, mls_conn: Any, admin: Admin) -> None:
    hook, counter = make_hook(max_retries=2)
    admin.add_fault("GET", "/api/v1/components", status=504, count=10)
    with pytest.raises(MLSServerError) as err:
        hook.list_components()
    assert err.value.status == 504
    assert len(counter) == 3


def test_429_honours_retry_after(make_hook: MakeHook, mls_conn: Any, admin: Admin) -> None:
    hook, counter = make_hook(retry_min_wait=0.01, retry_max_wait=2.0)
    admin.add_fault(
        "GET",
        "/api/v1/components",
        status=429,
        retry_after=1,
        body='{"code": 429, "error": "slow down", "results": null}',
        content_type="application/json",
    )
    started = time.monotonic()
    hook.list_components()
    assert time.monotonic() - started >= 0.9
    assert len(counter) == 2


def test_read_timeout_is_retried(make_hook: MakeHook, mls_conn: Any, admin: Admin) -> None:
    hook, counter = make_hook(timeout=(2.0, 0.3))
    admin.add_fault("GET", "/api/v1/components", status=None, delay=1.0)
    hook.list_components()
    assert len(counter) == 2


def test_connection_refused_retried_then_raised(make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLS_CLOSED", f"mls://mls:password@127.0.0.1:{port}?env=local")
    hook, counter = make_hook("mls_closed", max_retries=2)
    with pytest.raises(MLSServerError) as err:
        hook.get_manual_model(id=1)
    assert isinstance(err.value.__cause__, requests.ConnectionError)
    assert not outcome_unknown(err.value.__cause__)  # refused: never sent, a create may simply retry
    assert "could not reach MLS" in str(err.value)
    assert len(counter) == 3


def test_connection_refused_fails_fast_naming_the_connection_and_url(
    make_hook: MakeHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_retries 5, but nothing listens: REFUSED_MAX_RETRIES retries, then what to check."""
    from airflow_provider_mls.hooks._retry import REFUSED_MAX_RETRIES

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DOWN", f"mls://mls:password@127.0.0.1:{port}?env=local")
    hook, counter = make_hook("mls_down", max_retries=5)
    with pytest.raises(MLSServerError) as err:
        hook.get_manual_model(id=1)
    assert len(counter) == REFUSED_MAX_RETRIES + 1 == 3
    url = f"http://127.0.0.1:{port}"
    assert str(err.value).startswith(
        f"could not reach MLS at {url} (connection 'mls_down') after 3 attempt(s): connection refused; "
        f"is MLS running at {url}? If it runs elsewhere, check the host of connection 'mls_down'"
    )
    assert "Max retries exceeded" not in str(err.value)


def test_connection_refused_in_the_async_client_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DOWN", f"mls://mls:password@127.0.0.1:{port}?env=local")
    started = time.monotonic()

    async def call() -> None:
        async with await MLSAsyncClient.from_connection("mls_down", retry_min_wait=0.01) as client:
            await client.run("GET", "/api/v1/models/1")

    with pytest.raises(MLSServerError) as err:
        asyncio.run(call())
    assert "after 3 attempt(s): connection refused" in str(err.value)
    assert f"is MLS running at http://127.0.0.1:{port}?" in str(err.value)
    assert "connection 'mls_down'" in str(err.value)
    assert time.monotonic() - started < 10


def test_post_is_not_blindly_retried(hook: MLSHook, counter: RequestLog, admin: Admin, unique: str) -> None:
    admin.add_fault("POST", "/api/v1/components", status=503, after=True)
    with pytest.raises(MLSServerError):
        hook.run("POST", "/api/v1/components", json={"name": f"p-{unique}", "info": "i", "is_latest": True})
    assert len(counter) == 1
    assert len(hook.list_components(name=f"p-{unique}")) == 1  # it was committed once, never twice


def test_create_lost_response_returns_existing(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    admin.add_fault("POST", "/api/v1/models", status=502, after=True)
    model = hook.create_manual_model(f"lost-{unique}", "v1", model_lib="sklearn")
    # look-up (absent), POST (committed, answer lost), look-up: found (list, then the model by id),
    # and provably this call's
    assert counter.calls == [
        ("GET", "/api/v1/models"),
        ("POST", "/api/v1/models"),
        ("GET", "/api/v1/models"),
        ("GET", f"/api/v1/models/{model['id']}"),
    ]
    assert model["name"] == f"lost-{unique}" and model["model_lib"] == "sklearn"
    assert [m["id"] for m in admin.models("manual", f"lost-{unique}")] == [model["id"]]


def test_create_not_processed_is_retried(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    admin.add_fault("POST", "/api/v1/models", status=503)
    model = hook.create_manual_model(f"np-{unique}", "v1")
    assert [c[0] for c in counter.calls] == ["GET", "POST", "GET", "POST", "GET"]
    assert [m["id"] for m in admin.models("manual", f"np-{unique}")] == [model["id"]]


def test_create_read_timeout_makes_no_duplicate(
    make_hook: MakeHook, mls_conn: Any, admin: Admin, unique: str
) -> None:
    hook, counter = make_hook(timeout=(2.0, 0.3))
    admin.add_fault("POST", "/api/v1/models", status=None, delay=0.8)
    model = hook.create_manual_model(f"rt-{unique}", "v1")
    assert [c[0] for c in counter.calls] == ["GET", "POST", "GET", "POST", "GET"]
    time.sleep(0.8)  # the slow first POST lands now and must conflict, not duplicate
    assert [m["id"] for m in admin.models("manual", f"rt-{unique}")] == [model["id"]]


def test_create_409_after_unknown_outcome_resolves_by_lookup(
    hook: MLSHook, admin: Admin, monkeypatch: pytest.MonkeyPatch, unique: str
) -> None:
    admin.add_fault("POST", "/api/v1/models", status=502, after=True)
    real_find = hook._find_model
    calls = []

    def lagging_find(*args: Any) -> Any:  # a lookup that lags behind the commit once
        calls.append(args)
        return None if len(calls) == 1 else real_find(*args)

    monkeypatch.setattr(hook, "_find_model", lagging_find)
    model = hook.create_manual_model(f"c409-{unique}", "v1")
    assert len(calls) == 2
    assert [m["id"] for m in admin.models("manual", f"c409-{unique}")] == [model["id"]]


def test_plain_409_on_create_is_raised(hook: MLSHook, counter: RequestLog, unique: str) -> None:
    hook.create_manual_model(f"p409-{unique}", "v1")
    counter.reset()
    with pytest.raises(MLSConflictError):
        hook.create_manual_model(f"p409-{unique}", "v1")
    assert [c[0] for c in counter.calls] == ["GET", "GET"]  # the look-up: list, then the model; no POST


def test_handler_replace_and_server_start_are_retried(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    dataset = admin.create_dataset(f"rds-{unique}")
    model = hook.create_automl_model(f"rh-{unique}", "v1", "d", dataset_id=dataset["id"])
    admin.add_fault("POST", f"/api/v1/models/{model['id']}/automl_online_prediction", status=503)
    counter.reset()
    hook.update_automl_model_server_handler(model, "x = 1\n")
    assert len(counter) == 2


def test_policy_is_data() -> None:
    policy = retry_policy(max_retries=3, min_wait=0.1, max_wait=1.0)
    assert {"retry", "stop", "wait", "reraise"} <= set(policy)
    assert retryable_error(requests.ConnectionError())
    assert retryable_error(requests.ReadTimeout())
    assert retryable_error(MLSServerError("x", status=503))
    assert not retryable_error(MLSServerError("x", status=500))
    assert not retryable_error(ValueError())
    assert outcome_unknown(requests.ReadTimeout())
    assert not outcome_unknown(requests.ConnectTimeout())
    assert outcome_unknown(MLSServerError("x", status=502))
    assert not outcome_unknown(MLSServerError("x", status=429))
