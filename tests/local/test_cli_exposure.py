"""``mls-local`` on a shared machine: beyond loopback only with a password of one's own, and the
embedded AWS endpoint (no authentication) on loopback unless its own option asks otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.timeout(60)


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "airflow_provider_mls.local", "--data-dir", str(tmp_path / "data"), *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MLS_LOCAL_")}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**clean, **(env or {})}
    )


def _own_address() -> str | None:
    """This machine's address on its default route (no packet is sent), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--host", "0.0.0.0"], None),
        (["--host", "::"], None),
        (["--host", "my-laptop.example"], None),
        ([], {"MLS_LOCAL_HOST": "0.0.0.0"}),
        (["--host", "0.0.0.0", "--password", "mls"], None),
    ],
)
def test_beyond_loopback_the_default_password_is_refused(
    tmp_path: Path, args: list[str], env: dict[str, str] | None
) -> None:
    proc = _run(tmp_path, "--port", "0", *args, env=env)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, (out, err)
    assert "serves beyond this machine, with the default password 'mls'" in err
    assert "set --password (or MLS_LOCAL_PASSWORD), or pass --allow-default-credentials" in err
    assert out == ""  # nothing listened


def _started(proc: subprocess.Popen[str]) -> tuple[str, str]:
    assert proc.stdout is not None
    aws_line = proc.stdout.readline()
    line = proc.stdout.readline()
    assert line.startswith("MLS local server listening on "), (aws_line, line, proc.stderr)
    return line.split(" on ", 1)[1].strip(), aws_line.rsplit(" at ", 1)[1].strip()


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    return err


def test_a_password_of_ones_own_serves_beyond_loopback_and_aws_stays_on_loopback(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--port", "0", "--host", "0.0.0.0", "--password", "team-secret")
    try:
        url, aws_url = _started(proc)
        port = int(url.rsplit(":", 1)[1])
        aws_port = int(aws_url.rsplit(":", 1)[1])
        assert aws_url.startswith("http://127.0.0.1:")
        assert requests.get(f"http://127.0.0.1:{port}/local/health", timeout=10).ok
        address = _own_address()
        if address is not None:  # reachable from the network: the API yes, the AWS endpoint no
            assert requests.get(f"http://{address}:{port}/local/health", timeout=10).ok
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://{address}:{aws_port}/", timeout=5)
    finally:
        err = _stop(proc)
    assert "warning: the MLS API listens on 0.0.0.0" in err
    assert "AWS endpoint" not in err


def test_the_default_password_beyond_loopback_when_allowed_and_aws_when_asked(tmp_path: Path) -> None:
    proc = _run(
        tmp_path,
        "--port",
        "0",
        "--host",
        "0.0.0.0",
        "--aws-host",
        "0.0.0.0",
        env={"MLS_LOCAL_ALLOW_DEFAULT_CREDENTIALS": "true"},
    )
    try:
        url, _ = _started(proc)
        assert requests.get(f"{url}/api/v1/models", auth=("mls", "mls"), timeout=10).ok
    finally:
        err = _stop(proc)
    assert "warning: the embedded AWS endpoint (no authentication) listens on 0.0.0.0" in err


def test_loopback_keeps_the_defaults_and_says_nothing(tmp_path: Path) -> None:
    proc = _run(tmp_path, "--port", "0", "--host", "localhost")
    try:
        url, aws_url = _started(proc)
        assert requests.get(f"{url}/api/v1/models", auth=("mls", "mls"), timeout=10).ok
    finally:
        err = _stop(proc)
    assert "warning" not in err
