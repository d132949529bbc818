"""The envelope and HTTP errors become typed MLS exceptions carrying code, status, message, method and url."""

from __future__ import annotations

import json
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import (
    MLSAuthError,
    MLSBadRequestError,
    MLSConflictError,
    MLSError,
    MLSNotFoundError,
    MLSRateLimitError,
    MLSServerError,
)
from airflow_provider_mls.hooks._envelope import parse_envelope

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_mls.hooks.mls import MLSHook
    from tests.hooks.conftest import Admin

    MakeHook = Callable[..., tuple[MLSHook, Any]]


def envelope(code: int, error: str | None, results: Any = None) -> str:
    return json.dumps({"code": code, "error": error, "results": results})


def test_400_from_the_server(hook: MLSHook) -> None:
    with pytest.raises(MLSBadRequestError) as err:
        hook.run(
            "POST",
            "/api/v1/models",
            json={"model_type": "manual", "name": "x", "version": "v", "model_lib": "torch"},
        )
    assert err.value.code == 400 and err.value.status == 400
    assert "model_lib" in err.value.message
    assert err.value.method == "POST" and err.value.url.endswith("/api/v1/models")


def test_401_wrong_password(
    make_hook: MakeHook, mls_server: Any, monkeypatch: pytest.MonkeyPatch, admin: Admin
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_BAD", f"mls://mls:wrong-password@127.0.0.1:{mls_server.port}?env=local"
    )
    with pytest.raises(MLSAuthError) as err:
        make_hook("mls_bad")[0].get_manual_model(id=1)
    assert err.value.code == 401 and "authentication" in err.value.message
    # What to fix, and where: the connection, its login, the URL it resolved to.
    url = f"http://127.0.0.1:{mls_server.port}"
    assert f"MLS at {url} refused the login 'mls' of connection 'mls_bad'" in err.value.message
    assert "check that connection's login and password" in err.value.message
    assert "wrong-password" not in str(err.value)


def test_401_from_the_async_client_names_the_connection(
    mls_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLS_BAD", f"mls://mls:wrong-password@127.0.0.1:{mls_server.port}?env=local"
    )

    async def call() -> None:
        async with await MLSAsyncClient.from_connection("mls_bad") as client:
            await client.run("GET", "/api/v1/models/1")

    with pytest.raises(MLSAuthError) as err:
        asyncio.run(call())
    assert err.value.status == 401
    assert "refused the login 'mls' of connection 'mls_bad'" in err.value.message


def test_404_and_409(hook: MLSHook, unique: str) -> None:
    with pytest.raises(MLSNotFoundError) as nf:
        hook.run("GET", "/api/v1/models/987654321")
    assert nf.value.code == 404 and "not found" in nf.value.message
    hook.create_manual_model(f"dup-{unique}", "v1")
    with pytest.raises(MLSConflictError) as conflict:
        hook.create_manual_model(f"dup-{unique}", "v1")
    assert conflict.value.code == 409 and "exists" in conflict.value.message
    # The way out is named: the task argument that decides what an existing version means.
    assert "if_exists='fail' fails on that: 'skip' returns it unchanged, 'update' updates it in place" in (
        conflict.value.message
    )


def test_a_templated_model_meta_that_rendered_to_a_string_says_how_to_pass_a_dict(hook: MLSHook) -> None:
    from airflow_provider_mls.exceptions import MLSValidationError

    with pytest.raises(MLSValidationError) as err:
        hook.create_manual_model("tpl", "v1", model_meta="{'auc': 0.91}")  # type: ignore[arg-type]
    message = str(err.value)
    assert message.startswith("model_meta: expected a dict, got str (\"{'auc': 0.91}\")")
    assert "XComArg" in message and "render_template_as_native_obj=True" in message


def test_500_envelope(hook: MLSHook, admin: Admin) -> None:
    admin.add_fault(
        "GET",
        "/api/v1/components",
        status=500,
        body=envelope(500, "database on fire"),
        content_type="application/json",
    )
    with pytest.raises(MLSServerError) as err:
        hook.list_components()
    assert (err.value.code, err.value.status, err.value.message) == (500, 500, "database on fire")


def test_error_in_a_200_envelope(hook: MLSHook, admin: Admin) -> None:
    admin.add_fault(
        "GET", "/api/v1/components", status=200, body=envelope(409, "busy"), content_type="application/json"
    )
    with pytest.raises(MLSConflictError) as err:
        hook.list_components()
    assert (err.value.code, err.value.status) == (409, 200)


def test_non_json_502_is_a_clear_server_error(make_hook: MakeHook, mls_conn: Any, admin: Admin) -> None:
    hook, counter = make_hook(max_retries=0)
    admin.add_fault(
        "GET",
        "/api/v1/components",
        status=502,
        body="<html><body><h1>502 Bad Gateway</h1> nginx</body></html>",
        content_type="text/html",
    )
    with pytest.raises(MLSServerError) as err:
        hook.list_components()
    assert err.value.status == 502
    assert "HTTP 502" in str(err.value) and "Bad Gateway" in str(err.value)
    assert not isinstance(err.value.__cause__, json.JSONDecodeError)
    assert len(counter) == 1


def test_errors_pickle() -> None:
    with pytest.raises(MLSServerError) as err:
        parse_envelope(503, "<html/>", {}, method="GET", url="http://x/api")
    clone = pickle.loads(pickle.dumps(err.value))
    assert (type(clone), clone.status, clone.method) == (MLSServerError, 503, "GET")


@pytest.mark.parametrize(
    ("status", "text", "cls", "code"),
    [
        (200, envelope(200, None, [1]), None, None),
        (400, envelope(400, "name: bad"), MLSBadRequestError, 400),
        (403, envelope(403, "forbidden"), MLSAuthError, 403),
        (404, "", MLSNotFoundError, 404),
        (500, envelope(200, None), MLSServerError, 500),
        (200, "not json", MLSServerError, 200),
        (200, "[1, 2]", MLSServerError, 200),
        (504, "<html>gateway timeout</html>", MLSServerError, 504),
        (418, "teapot", MLSError, 418),
    ],
)
def test_parse_envelope(status: int, text: str, cls: type[MLSError] | None, code: int | None) -> None:
    if cls is None:
        assert parse_envelope(status, text, {}, method="GET", url="u") == [1]
        return
    with pytest.raises(cls) as err:
        parse_envelope(status, text, {}, method="GET", url="u")
    assert type(err.value) is cls
    assert err.value.code == code and err.value.status == status


def test_retry_after_is_attached() -> None:
    with pytest.raises(MLSRateLimitError) as err:
        parse_envelope(429, envelope(429, "slow down"), {"Retry-After": "3"}, method="GET", url="u")
    assert err.value.retry_after == 3.0
    assert err.value.code == 429
