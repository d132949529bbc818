"""The unit layer's own rules: what reaches past a fake fails at once, naming what it reached for."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest

from airflow_provider_mls.operators.mls import UpdateManualModelOperator

from .conftest import UnitLayerError
from .fakes import context


def test_a_real_sleep_a_subprocess_and_the_network_are_refused() -> None:
    time.sleep(0)  # yielding is fine
    with pytest.raises(UnitLayerError, match="time.sleep"):
        time.sleep(0.01)
    with pytest.raises(UnitLayerError, match="subprocess"):
        subprocess.run(["true"], check=False)
    with pytest.raises(UnitLayerError, match="network"):
        socket.create_connection(("127.0.0.1", 9))


def test_a_task_whose_hook_was_not_replaced_fails_at_once() -> None:
    op = UpdateManualModelOperator(task_id="t", model_id=12, description="x")
    with pytest.raises(UnitLayerError, match="network"):
        op.execute(context(op))


@pytest.mark.parametrize("name", ["mls_server", "mls_local_server", "moto_url"])
def test_a_server_fixture_fails_with_the_reason(request: pytest.FixtureRequest, name: str) -> None:
    with pytest.raises(UnitLayerError, match="must not start a server"):
        request.getfixturevalue(name)


def test_the_example_of_docs_development_runs() -> None:
    """The unit test shown in docs/development.md ("The layers of the suite") is a test that passes."""
    from pathlib import Path

    from airflow_provider_mls.operators.mls import UpdateModelMetaOperator

    from .fakes import FakeMLSHook, manual_model

    page = (Path(__file__).resolve().parents[2] / "docs" / "development.md").read_text(encoding="utf-8")
    section = page.split("## The layers of the suite", 1)[1].split("\n## ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {
        "UpdateModelMetaOperator": UpdateModelMetaOperator,
        "FakeMLSHook": FakeMLSHook,
        "manual_model": manual_model,
        "context": context,
    }
    exec(compile(example, "docs/development.md", "exec"), namespace)  # the page's own example
    assert namespace["hook"].calls  # it ran the task
