"""Fixtures of the trigger tests: the shared local MLS server, its helper endpoints, running a trigger."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mls.testing.local_admin import LocalMLSAdmin

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow_provider_mls._compat import TriggerEvent
    from airflow_provider_mls.local.process import LocalMLSServer
    from airflow_provider_mls.triggers.mls import MLSCheckTrigger

# Tiny backoff for the triggers under test (their retry_min_wait / retry_max_wait kwargs).
FAST_RETRIES = {"retry_min_wait": 0.001, "retry_max_wait": 0.01}


class Admin(LocalMLSAdmin):
    """Set the scene on the shared server: ``/local/...`` and raw API calls, and its connection JSON."""

    def __init__(self, server: LocalMLSServer) -> None:
        super().__init__(server.url, server.auth)
        self.conn = json.loads(server.conn_json())

    def conn_json(self, **changes: Any) -> str:
        """The server's connection JSON with some fields (or extras) changed."""
        conn = json.loads(json.dumps(self.conn))
        conn["extra"].update(changes.pop("extra", {}))
        conn.update(changes)
        return json.dumps(conn)


@pytest.fixture
def admin(mls_conn: LocalMLSServer) -> Iterator[Admin]:
    with Admin(mls_conn) as adm, adm.isolated_faults():
        yield adm


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def run_trigger() -> Callable[[MLSCheckTrigger], list[TriggerEvent]]:
    """``run_trigger(trigger)``: every event it yields (the whole generator), on a fresh event loop."""

    def run(trigger: MLSCheckTrigger) -> list[TriggerEvent]:
        async def collect() -> list[TriggerEvent]:
            return [event async for event in trigger.run()]

        return asyncio.run(asyncio.wait_for(collect(), 60))

    return run
