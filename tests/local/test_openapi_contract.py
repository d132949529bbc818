"""The local server's OpenAPI document is accurate: schemathesis checks every operation against it.

Over real HTTP against a fresh server subprocess: no 5xx, only documented status codes, content
types, headers (`Allow` on 405) and response bodies that match the documented schemas, resources
that exist after a create and are gone after a delete. Two checks are left out on purpose: the
server is liberal in what it accepts where mls-api.md is silent (unknown query parameters,
numeric strings for ids), and some rules depend on state no schema can express (a model id that
must name an AutoML model, a handler that must parse as Python).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_mls.local.process import LocalMLSServer

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "missing_required_header",
        "unsupported_method",
        "allow_header_conformance",
        "use_after_free",
        "ensure_resource_availability",
    ]
)


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_server_conforms_to_its_openapi_document(tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    with LocalMLSServer(tmp_path / "mls", port=0, training_seconds=0.5, server_start_seconds=0.3) as server:
        proc = subprocess.run(
            [
                str(schemathesis),
                "run",
                f"{server.url}/openapi.json",
                "--auth",
                f"{server.username}:{server.password}",
                "--checks",
                CHECKS,
                # Fuzzing the fault-injection endpoint would inject faults into the run itself.
                "--exclude-path",
                "/local/faults",
                "--max-examples",
                "25",
                "--seed",
                "20261122",
                "--generation-deterministic",
                "--workers",
                "1",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=540,
            cwd=tmp_path,  # its cache and reports stay out of the checkout
        )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    tested = re.search(r"Tested:\s*(\d+)", out)
    assert tested is not None and int(tested.group(1)) >= 40, out[-3000:]  # every route but /local/faults
