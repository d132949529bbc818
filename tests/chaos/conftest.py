"""Fixtures of the chaos tests: a local MLS server and the project's chaos proxy in front of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_provider_mls.local.process import LocalMLSServer

if TYPE_CHECKING:
    from collections.abc import Iterator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: drives the hook and operators through the chaos proxy (bounded, ~1-2 min)"
    )


@pytest.fixture(scope="module")
def chaos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMLSServer]:
    with LocalMLSServer(
        tmp_path_factory.mktemp("mls-chaos"), training_seconds=0.5, server_start_seconds=0.5
    ) as srv:
        yield srv
