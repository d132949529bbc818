"""The hook speaks the reference SDK's dialect (see also tests/conformance/test_differential.py).

The session's local server runs with lean list items (``mls_local_lean_lists``): a list item holds
only the model's id, name, version and type, so a read by name or a create decision that trusted a
list item would come back without ``model_meta`` or ``table`` here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.hooks._envelope import encode_params

if TYPE_CHECKING:
    import requests

    from airflow_provider_mls.hooks.mls import MLSHook
    from tests.hooks.conftest import Admin, RequestLog

META = {"auc": 0.8, "nested": {"a": 1}}


class Bodies:
    """The JSON bodies and query strings a hook's session sends."""

    def __init__(self, hook: MLSHook) -> None:
        self.sent: list[tuple[str, str, Any]] = []
        session = hook.get_conn()
        send = session.send

        def recording_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
            body = json.loads(request.body) if request.body else None
            self.sent.append((str(request.method), str(request.path_url), body))
            return send(request, **kwargs)

        session.send = recording_send  # type: ignore[method-assign]

    def of(self, method: str) -> list[Any]:
        return [body for m, _, body in self.sent if m == method]


def test_the_session_server_serves_lean_list_items(hook: MLSHook, admin: Admin, unique: str) -> None:
    """The guard of this module's premise: list items are lean (mls-local --lean-lists)."""
    model = hook.create_manual_model(f"lean-{unique}", "v1", model_meta=META, table=f"t_{unique}")
    items = admin.call("GET", "/api/v1/models", params={"name": f"lean-{unique}"})
    assert items == [{"id": model["id"], "name": f"lean-{unique}", "version": "v1", "model_type": "manual"}]


def test_a_read_by_name_reads_the_model_by_id(
    hook: MLSHook, counter: RequestLog, admin: Admin, unique: str
) -> None:
    model = hook.create_manual_model(f"rn-{unique}", "v1", model_meta=META, table=f"t_{unique}")
    counter.reset()
    got = hook.get_manual_model(name=f"rn-{unique}", version="v1")
    assert counter.calls == [("GET", "/api/v1/models"), ("GET", f"/api/v1/models/{model['id']}")]
    assert got["model_meta"] == META and got["table"] == f"t_{unique}" and got == model


def test_if_exists_skip_and_update_decide_from_the_whole_model(
    hook: MLSHook, counter: RequestLog, unique: str
) -> None:
    model = hook.create_manual_model(f"sk-{unique}", "v1", model_meta=META, table=f"t_{unique}")
    counter.reset()
    skipped = hook.create_manual_model(f"sk-{unique}", "v1", if_exists="skip")
    assert [c[0] for c in counter.calls] == ["GET", "GET"]  # the list names the id, then the model
    assert skipped == model  # never the list item
    updated = hook.create_manual_model(f"sk-{unique}", "v1", description="again", if_exists="update")
    assert updated["description"] == "again" and updated["model_meta"] == META  # nothing else undone


def test_a_put_leaves_none_out_and_clears_with_empty_string(hook: MLSHook, unique: str) -> None:
    bodies = Bodies(hook)
    bare = hook.create_manual_model(f"pb-{unique}", "v1")
    assert bodies.of("POST") == [{"model_type": "manual", "name": f"pb-{unique}", "version": "v1"}]
    hook.update_manual_model(bare["id"], description="d")
    (put,) = bodies.of("PUT")
    assert None not in put.values(), put  # model_lib, model_data, table are unset: left out, not null
    assert {"model_lib", "model_data", "table"}.isdisjoint(put)
    assert put["description"] == "d" and put["components"] == [] and put["model_meta"] == {}

    full = hook.create_manual_model(f"pc-{unique}", "v1", description="d", table=f"t_{unique}", features="a")
    bodies.sent.clear()
    cleared = hook.update_manual_model(full, description="", table="", features="")
    (put,) = bodies.of("PUT")
    assert (put["description"], put["table"], put["features"]) == ("", "", "")
    assert (cleared["description"], cleared["table"], cleared["features"]) == ("", "", "")
    with pytest.raises(MLSValidationError, match="model_lib"):
        hook.update_manual_model(full, model_lib="")


def test_a_create_leaves_out_what_has_no_value(hook: MLSHook, unique: str) -> None:
    """As the reference client: "", {} and [] are not sent in a create."""
    bodies = Bodies(hook)
    hook.create_manual_model(f"ce-{unique}", "v1", description="", model_meta={}, components=[], features="")
    assert bodies.of("POST") == [{"model_type": "manual", "name": f"ce-{unique}", "version": "v1"}]


def test_a_component_by_name_is_the_latest_read_by_id(hook: MLSHook, admin: Admin, unique: str) -> None:
    admin.component(f"cn-{unique}", info="old", is_latest=False)
    new = admin.component(f"cn-{unique}", info="new", is_latest=True)
    bodies = Bodies(hook)
    got = hook.get_component(name=f"cn-{unique}")
    assert got == new  # the whole component, not the (lean) list item
    paths = [path for _, path, _ in bodies.sent]
    assert paths == [f"/api/v1/components?name=cn-{unique}&is_latest=True", f"/api/v1/components/{new['id']}"]


def test_query_booleans_as_requests_writes_them() -> None:
    assert encode_params({"is_latest": True, "x": False, "n": 1, "gone": None}) == {
        "is_latest": "True",
        "x": "False",
        "n": 1,
    }


def test_the_async_client_writes_query_booleans_as_requests_does(
    hook: MLSHook, admin: Admin, unique: str
) -> None:
    """httpx would write ``true``; the triggers' client sends ``True`` as the reference client does
    (the local server refuses any other spelling, as the real service may)."""
    import asyncio

    from airflow_provider_mls.hooks.mls_async import MLSAsyncClient

    comp = admin.component(f"ac-{unique}")

    async def listed() -> Any:
        async with await MLSAsyncClient.from_connection("mls_default") as client:
            return await client.run(
                "GET", "/api/v1/components", params={"name": comp["name"], "is_latest": True}
            )

    assert [c["id"] for c in asyncio.run(listed())] == [comp["id"]]


def test_create_with_update_clears_with_empty_values(hook: MLSHook, unique: str) -> None:
    """``if_exists="update"`` stores ``""``, ``{}`` and ``[]`` (they clear), yet a POST leaves them out."""
    name = f"cu-{unique}"
    bodies = Bodies(hook)
    created = hook.create_manual_model(name, "v1", description="", model_meta={}, features="", table="")
    assert bodies.of("POST") == [{"model_type": "manual", "name": name, "version": "v1"}]
    full = hook.update_manual_model(
        created, description="d", model_meta=META, features="a", table=f"t_{unique}"
    )
    assert (full["description"], full["model_meta"], full["features"]) == ("d", META, "a")
    bodies.sent.clear()
    cleared = hook.create_manual_model(
        name, "v1", description="", model_meta={}, features="", table="", if_exists="update"
    )
    assert bodies.of("POST") == []
    (put,) = bodies.of("PUT")
    assert (put["description"], put["model_meta"], put["features"], put["table"]) == ("", {}, "", "")
    assert (cleared["description"], cleared["model_meta"], cleared["features"]) == ("", {}, "")
    assert cleared["table"] in ("", None) and cleared["id"] == created["id"]
    kept = hook.create_manual_model(name, "v1", if_exists="update")  # None keeps every field
    assert kept["id"] == created["id"] and (kept["description"], kept["model_meta"]) == ("", {})
