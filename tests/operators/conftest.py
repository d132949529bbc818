"""Fixtures of the operator tests: the operators run against the shared local MLS server over real HTTP."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from ._support import Mls

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def mls(mls_conn: Any) -> Iterator[Mls]:
    """The ``mls_default`` connection points at the shared local server; this is that server, raw."""
    with Mls(mls_conn) as mls, mls.isolated_faults():
        yield mls


@pytest.fixture
def no_retry_conn(mls: Mls, mls_conn: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection id to the same server whose hook never retries (``max_retries`` 0): no backoff waits."""
    conn = json.loads(mls_conn.conn_json())
    conn["extra"] = {**conn["extra"], "max_retries": 0}
    monkeypatch.setenv("AIRFLOW_CONN_MLS_NORETRY", json.dumps(conn))
    return "mls_noretry"
