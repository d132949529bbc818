"""The reference SDK's interpreter for the conformance tests.

The SDK lives in its own virtualenv (`make venv-sktmls`, from `requirements/sktmls-client.txt`)
because its ML stack can't share ours; `make test` builds it and passes its interpreter in
MLS_SKTMLS_PYTHON.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_PYTHON = Path(__file__).resolve().parents[2] / ".venv-sktmls" / "bin" / "python"


@pytest.fixture
def sdk_python() -> str:
    configured = os.environ.get("MLS_SKTMLS_PYTHON")
    if configured:
        return configured  # set by `make test`: a missing interpreter is a failure, not a skip
    if not DEFAULT_PYTHON.exists():
        pytest.skip("the sktmls client venv is not built (run `make venv-sktmls` or `make test`)")
    return str(DEFAULT_PYTHON)
