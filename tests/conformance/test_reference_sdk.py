"""The reference client (the `sktmls` SDK, pinned) runs against the local server unchanged.

The SDK lives in its own virtualenv (`make venv-sktmls`, from `requirements/sktmls-client.txt`)
because its ML stack can't share ours; `make test` builds it and passes its interpreter in
MLS_SKTMLS_PYTHON.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.e2e
def test_reference_sdk_flow_against_local_server(tmp_path: Path, sdk_python: str) -> None:
    from airflow_provider_mls.local.process import LocalMLSServer

    python = sdk_python
    with LocalMLSServer(
        tmp_path / "mls",
        port=0,
        username="sdk-user",
        password="sdk-password-1",
        training_seconds=0.5,
        server_start_seconds=0.3,
    ) as server:
        proc = subprocess.run(
            [python, str(HERE / "sktmls_flow.py"), server.url, server.username, server.password],
            capture_output=True,
            text=True,
            timeout=180,
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "SKTMLS FLOW OK" in proc.stdout, out[-4000:]
