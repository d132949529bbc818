"""The unit layer: each task's own logic with its hook replaced; no server, no subprocess, no sleep.

Every test here gets an ``mls_default`` connection that points nowhere (``mls.invalid``: the tasks
read their connection's extras for links and assets, never its host, since the hook is replaced),
and these guards, so a test that reaches past its fake fails at once instead of going slow:

* the fixtures that start a server (``mls_local_server``, ``mls_server``, ``moto_url``) fail;
* ``time.sleep`` of more than 0 s, a new process and a network connection raise ``UnitLayerError``.

Run it alone with ``make unit`` (one core, well under a minute).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from typing import Any

# croniter asks `file` about the interpreter when it is first imported (platform.architecture), which
# Airflow does lazily, the first time a test builds a DAG: imported here, before the guards.
import croniter  # noqa: F401
import pytest

MLS_CONN = {
    "conn_type": "mls",
    "host": "mls.invalid",
    "login": "unit",
    "password": "unit-password",
    "extra": {"env": "stg", "console_url": "https://mls.example/models/{model_id}"},
}


class UnitLayerError(AssertionError):
    """A unit test reached for something the unit layer does not use (a server, a process, a sleep)."""


def _no_server(name: str) -> Any:
    def fixture() -> Any:
        raise UnitLayerError(
            f"tests/unit must not start a server ({name}): replace the task's hook (op.hook = fake) and "
            "put server-backed tests in tests/operators, tests/sensors or tests/aws"
        )

    fixture.__name__ = name
    return pytest.fixture(scope="session", name=name)(fixture)


mls_local_server = _no_server("mls_local_server")
mls_server = _no_server("mls_server")
moto_url = _no_server("moto_url")


@pytest.fixture(autouse=True)
def unit_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection the tasks read, and the guards of the layer."""
    monkeypatch.setenv("AIRFLOW_CONN_MLS_DEFAULT", json.dumps(MLS_CONN))
    for name in ("AWS_ENDPOINT_URL", "AIRFLOW_CONN_AWS_DEFAULT"):
        monkeypatch.delenv(name, raising=False)
    sleep = time.sleep

    def no_sleep(seconds: float) -> None:
        if seconds > 0:
            raise UnitLayerError(f"time.sleep({seconds}) in the unit layer: a task waited for real")
        sleep(0)

    def no_process(self: Any, args: Any, *more: Any, **kwargs: Any) -> None:
        raise UnitLayerError(f"a subprocess in the unit layer: {args!r}")

    def no_network(self: Any, address: Any, *more: Any) -> None:
        raise UnitLayerError(f"a network connection in the unit layer: {address!r} (a hook was not replaced)")

    monkeypatch.setattr(time, "sleep", no_sleep)
    monkeypatch.setattr(subprocess.Popen, "__init__", no_process)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *more, **kw: no_network(None, host))
