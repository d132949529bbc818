"""LocalMLSAdmin against the shared local MLS server: every method, and how a refused call fails."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.local.process import LocalMLSServer
from airflow_provider_mls.testing.local_admin import LocalMLSAdmin, LocalMLSAdminError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def admin(mls_server: LocalMLSServer) -> Iterator[LocalMLSAdmin]:
    with mls_server.admin() as adm, adm.isolated_faults():
        yield adm


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def table_state(admin: LocalMLSAdmin, table: str) -> tuple[bool, bool]:
    active = admin.call("GET", f"/api/v1/dynamodb/tables/{table}/is_active")["is_active"]
    loading = admin.call("GET", f"/api/v1/dynamodb/tables/{table}/is_loading")["is_loading"]
    return active, loading


def artifact_info(admin: LocalMLSAdmin, name: str, version: str) -> Any:
    params = {"model_name": name, "model_version": version}
    return admin.call("GET", "/api/v1/model_registry/artifacts/info", params=params)["info"]


def test_built_from_a_server(mls_server: LocalMLSServer) -> None:
    admin = LocalMLSAdmin.from_server(mls_server, timeout=3)
    assert (admin.url, admin.auth, admin.timeout) == (mls_server.url, mls_server.auth, 3)
    assert admin.session.auth == mls_server.auth
    with admin as entered:
        assert entered is admin
    other = mls_server.admin()
    assert isinstance(other, LocalMLSAdmin) and other.url == mls_server.url and other.timeout == 10
    other.close()
    assert repr(other) == f"LocalMLSAdmin(url={mls_server.url!r})"


def test_a_server_not_started_has_no_admin(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not started|empty"):
        LocalMLSServer(tmp_path).admin()


def test_health(admin: LocalMLSAdmin) -> None:
    assert admin.health() == {"status": "ok"}


def test_set_and_drop_table(admin: LocalMLSAdmin, unique: str) -> None:
    table = f"t_{unique}"
    assert table_state(admin, table) == (False, False)
    assert admin.set_table(table) == {"table": table, "is_active": True, "is_loading": False}
    assert table_state(admin, table) == (True, False)
    assert admin.set_table(table, is_loading=True)["is_loading"] is True
    assert table_state(admin, table) == (True, True)
    # Not active = the DynamoDB table does not exist: the shortcut drops it.
    assert admin.set_table(table, is_active=False) == {
        "table": table,
        "is_active": False,
        "is_loading": False,
    }
    assert table_state(admin, table) == (False, False)
    admin.set_table(table)
    assert admin.drop_table(table) is None
    assert table_state(admin, table) == (False, False)
    with pytest.raises(LocalMLSAdminError, match="404") as err:
        admin.drop_table(table)
    assert err.value.status == 404 and err.value.path == f"/local/tables/{table}"


def test_set_and_delete_artifact(admin: LocalMLSAdmin, unique: str) -> None:
    name = f"art-{unique}"
    assert artifact_info(admin, name, "v1") is None
    default = admin.set_artifact(name, "v1")
    assert default["path"] == f"/models/{name}/v1/model.joblib" and default["size"] == 0
    assert artifact_info(admin, name, "v1") == default
    assert admin.set_artifact(name, "v1", {"size": 7}) == {"size": 7}
    assert artifact_info(admin, name, "v1") == {"size": 7}
    assert admin.delete_artifact(name, "v1") is None
    assert artifact_info(admin, name, "v1") is None


def test_delete_unknown_artifact_raises_with_the_404(admin: LocalMLSAdmin, unique: str) -> None:
    with pytest.raises(LocalMLSAdminError, match=r"DELETE /local/artifacts/.* -> HTTP 404") as err:
        admin.delete_artifact(f"nope-{unique}", "v1")
    assert err.value.status == 404
    assert err.value.body["code"] == 404 and "artifact" in err.value.body["error"]


def test_create_dataset(admin: LocalMLSAdmin, unique: str) -> None:
    plain = admin.create_dataset(f"ds-{unique}")
    assert plain["name"] == f"ds-{unique}" and plain["data_type"] == "classification"
    assert "error" not in plain["setup_conf"]
    broken = admin.create_dataset(f"dsb-{unique}", error="no labels")
    assert broken["setup_conf"]["error"] == "no labels"


def test_create_automl_model(admin: LocalMLSAdmin, unique: str) -> None:
    training = admin.create_automl_model(f"am-{unique}")
    assert training["model_type"] == "automl" and training["version"] == "v1"
    assert training["status"] == "TRAINING"
    dataset = admin.create_dataset(f"ds-{unique}")
    trained = admin.create_automl_model(
        f"am-{unique}", "v2", dataset_id=dataset["id"], description="desc", trained=True
    )
    assert trained["status"] == "DONE" and trained["dataset_id"] == dataset["id"]
    assert trained["description"] == "desc"


def test_finish_training(admin: LocalMLSAdmin, unique: str) -> None:
    model = admin.create_automl_model(f"ft-{unique}")
    done = admin.finish_training(model["id"])
    assert done["id"] == model["id"] and done["status"] == "DONE"
    failed = admin.finish_training(model["id"], "FAILED", error=f"bad labels {unique}")
    assert failed["status"] == "FAILED"
    assert failed["automl_model_info"]["error"] == f"bad labels {unique}"
    assert admin.call("GET", f"/api/v1/models/{model['id']}")["status"] == "FAILED"
    with pytest.raises(LocalMLSAdminError, match="HTTP 400"):
        admin.finish_training(model["id"], "SOMETIMES")


def test_force_server(admin: LocalMLSAdmin, unique: str) -> None:
    model = admin.create_automl_model(f"fs-{unique}", trained=True)
    server_path = f"/api/v1/models/{model['id']}/automl_model_server"
    assert admin.force_server(model["id"], "RUNNING") == {"status": "RUNNING", "fail_next_start": False}
    assert admin.call("GET", server_path)["status"] == "RUNNING"
    assert admin.force_server(model["id"], fail_next_start=True) == {
        "status": "RUNNING",
        "fail_next_start": True,
    }
    assert admin.force_server(model["id"], "STOPPED", False) == {
        "status": "STOPPED",
        "fail_next_start": False,
    }
    with pytest.raises(LocalMLSAdminError, match="HTTP 400"):
        admin.force_server(model["id"], "EXPLODED")


def test_faults(admin: LocalMLSAdmin, unique: str) -> None:
    path = f"/api/v1/dynamodb/tables/f_{unique}/is_active"
    fault = admin.add_fault("GET", path, status=502, count=2, retry_after=1)
    assert isinstance(fault["id"], int)
    assert (fault["method"], fault["path"], fault["status"], fault["count"]) == ("GET", path, 502, 2)
    assert fault["retry_after"] == 1 and fault["content_type"] == "text/html"
    assert [f["id"] for f in admin.pending_faults()] == [fault["id"]]

    with pytest.raises(LocalMLSAdminError, match="HTTP 502") as err:
        admin.call("GET", path)  # the fault's HTML page, not an envelope
    assert isinstance(err.value.body, str)
    assert admin.pending_faults()[0]["count"] == 1

    other = admin.add_fault()  # every method, every path (but /local/faults), once: 503
    assert (other["method"], other["status"], other["count"]) == ("*", 503, 1)
    assert admin.clear_faults() == 2
    assert admin.pending_faults() == []
    assert table_state(admin, f"f_{unique}") == (False, False)  # served normally again


def test_call_returns_the_results(admin: LocalMLSAdmin, unique: str) -> None:
    model_id = admin.call(
        "POST", "/api/v1/models", json={"model_type": "manual", "name": f"c-{unique}", "version": "v1"}
    )["id"]
    found = admin.call("GET", "/api/v1/models", params={"name": f"c-{unique}"})
    assert [m["id"] for m in found] == [model_id]
    with pytest.raises(LocalMLSAdminError, match="HTTP 409"):
        admin.call(
            "POST", "/api/v1/models", json={"model_type": "manual", "name": f"c-{unique}", "version": "v1"}
        )


def test_wrong_credentials_raise(mls_server: LocalMLSServer) -> None:
    with LocalMLSAdmin(mls_server.url, ("mls", "wrong")) as wrong:
        assert wrong.health() == {"status": "ok"}  # no auth on health
        with pytest.raises(LocalMLSAdminError, match="HTTP 401"):
            wrong.pending_faults()


def test_isolated_faults(admin: LocalMLSAdmin, unique: str) -> None:
    admin.add_fault("GET", f"/api/v1/models/{unique}")
    with admin.isolated_faults() as same:
        assert same is admin and admin.pending_faults() == []  # cleared on entry
        admin.add_fault("GET", f"/api/v1/models/{unique}")
    assert admin.pending_faults() == []  # and on exit
    with pytest.raises(KeyError), admin.isolated_faults():
        admin.add_fault("GET", f"/api/v1/models/{unique}")
        raise KeyError("a failing test")
    assert admin.pending_faults() == []
