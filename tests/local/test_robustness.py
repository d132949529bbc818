"""mls-local under abuse: a torn state file, half-sent requests, a missing extra, bounded pages."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest
import requests

from airflow_provider_mls.local.aws import StateFileError, repair_state_file
from airflow_provider_mls.local.cli import AWS_STATE_FILE, EXTRA_HINT, PAGE_SIZE_MAX
from airflow_provider_mls.local.process import LocalMLSServer, LocalMLSServerError

from .conftest import Api

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(120)

LINE = json.dumps({"module": "dynamodb", "method": "POST", "headers": {}, "body": "", "uri": "/"})


# ---------------------------------------------------------------------------- the AWS state file
def test_repair_state_file_drops_only_a_torn_last_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state.jsonl"
    state.write_text(f"{LINE}\n{LINE}\n" + LINE[:37])
    assert repair_state_file(state) == 2
    assert state.read_text() == f"{LINE}\n{LINE}\n"  # cut back: new records start on their own line
    assert "torn last line 3" in caplog.text
    # a whole last line that only lacks its newline is kept, and gets one
    state.write_text(f"{LINE}\n{LINE}")
    assert repair_state_file(state) == 2
    assert state.read_text() == f"{LINE}\n{LINE}\n"
    state.write_text("")
    assert repair_state_file(state) == 0
    # corruption anywhere else is not a crash's trace: refuse
    state.write_text(f"{LINE}\n{{broken\n{LINE}\n")
    with pytest.raises(StateFileError, match="line 2 is corrupt"):
        repair_state_file(state)
    assert state.read_text() == f"{LINE}\n{{broken\n{LINE}\n"  # untouched


def test_server_survives_a_torn_last_line(tmp_path: Path) -> None:
    srv = LocalMLSServer(tmp_path / "data").start()
    try:
        Api(srv).ok("PUT", "/local/tables/tbl_torn", {"is_active": True})
        srv.kill()  # as if killed while writing: a torn last line
        state = tmp_path / "data" / AWS_STATE_FILE
        with state.open("a") as fh:
            fh.write('{"module": "dynamodb", "method": "POST", "headers": {"X-Amz-Ta')
        srv.start()
        api = Api(srv)
        assert api.ok("GET", "/api/v1/dynamodb/tables/tbl_torn/is_active") == {"is_active": True}
        assert "skipping its torn last line" in srv.log_path.read_text()
        # recording goes on after the cut, and the next start replays both tables
        api.ok("PUT", "/local/tables/tbl_after", {"is_active": True})
        srv.restart()
        api = Api(srv)
        assert api.ok("GET", "/api/v1/dynamodb/tables/tbl_torn/is_active") == {"is_active": True}
        assert api.ok("GET", "/api/v1/dynamodb/tables/tbl_after/is_active") == {"is_active": True}
        srv.stop()
        # a corrupt line that is not the last one still stops the server, naming the line
        lines = state.read_text().splitlines(keepends=True)
        state.write_text(lines[0] + "{corrupt\n" + "".join(lines[1:]))
        with pytest.raises(LocalMLSServerError, match="line 2 is corrupt"):
            srv.start()
    finally:
        srv.stop()


# ---------------------------------------------------------------------------- half-sent requests
@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> object:
    with LocalMLSServer(tmp_path_factory.mktemp("impatient"), extra_args=["--request-timeout", "1"]) as srv:
        yield srv


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _auth_header(srv: LocalMLSServer) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{srv.username}:{srv.password}".encode()).decode()


def test_a_stalled_body_is_dropped_with_408(impatient: LocalMLSServer) -> None:
    body = b'{"model_type": "manual", "name": "stalled", "version": "v1"}'
    head = (
        f"POST /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {_auth_header(impatient)}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((impatient.host, impatient.port), timeout=30) as sock:
        sock.sendall(head + body[: len(body) // 2])  # then stall
        answer = _read_all(sock)  # returns once the server closed the connection (timeout: 30 s)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    envelope = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert envelope["code"] == 408 and envelope["error"].startswith("request timeout")
    api = Api(impatient)
    assert api.ok("GET", "/api/v1/models", params={"name": "stalled"}) == []  # nothing half-written


def test_stalled_headers_are_dropped(impatient: LocalMLSServer) -> None:
    with socket.create_connection((impatient.host, impatient.port), timeout=30) as sock:
        sock.sendall(b"GET /local/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # then stall
        assert _read_all(sock) == b""  # closed, no answer: there was no request yet


def test_prompt_requests_are_unaffected(impatient: LocalMLSServer) -> None:
    session = requests.Session()
    session.auth = impatient.auth
    for _ in range(3):  # keep-alive: every request on the connection gets its own bound
        r = session.post(
            impatient.url + "/api/v1/components", json={"name": "prompt", "info": "i"}, timeout=30
        )
        assert r.status_code == 200, r.text


def test_request_timeout_flag_is_checked(tmp_path: Path) -> None:
    srv = LocalMLSServer(tmp_path, extra_args=["--request-timeout", "soon"], startup_timeout=20)
    with pytest.raises(LocalMLSServerError, match="--request-timeout"):
        srv.start()


# ---------------------------------------------------------------------------- bounded pages
def test_page_size_is_bounded(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "airflow_provider_mls.local", "--data-dir", str(tmp_path),
           "--page-size", str(PAGE_SIZE_MAX + 1)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "--page-size" in proc.stderr


# ---------------------------------------------------------------------------- the local extra
BLOCK = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    from airflow_provider_mls.local.cli import main
    sys.exit(main(["--data-dir", {data_dir!r}, "--port", "0"]))
    """
)


@pytest.mark.parametrize("blocked", [("fastapi",), ("uvicorn",), ("fastapi", "uvicorn")])
def test_missing_extra_names_the_install_command(tmp_path: Path, blocked: tuple[str, ...]) -> None:
    code = BLOCK.format(blocked=set(blocked), data_dir=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert EXTRA_HINT in proc.stderr and EXTRA_HINT == "pip install 'airflow-provider-mls[local]'"
    for name in blocked:
        assert name in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_admin_client_does_not_import_the_launcher() -> None:
    """local.process -> testing.local_admin only: no import cycle between them."""
    code = (
        "import sys; import airflow_provider_mls.testing.local_admin; "
        "print('airflow_provider_mls.local.process' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    assert out.stdout.strip() == "False"
