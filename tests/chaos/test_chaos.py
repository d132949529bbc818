"""The project's own chaos proxy, and the write invariants of the hook and operators behind it."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_mls.testing.chaos import FAULT_KINDS, ChaosProxy

from .workload import Direct, Figures, concurrent_merges, connection_env, run_workload

if TYPE_CHECKING:
    from airflow_provider_mls.local.process import LocalMLSServer

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(600)]


def _create(url: str, auth: tuple[str, str], name: str) -> requests.Response:
    body = {"model_type": "manual", "name": name, "version": "v1"}
    return requests.post(url + "/api/v1/models", json=body, auth=auth, timeout=30)


@pytest.mark.parametrize(
    ("kind", "answer", "acted"),
    [
        ("reset_before", "reset", False),
        ("reset_after", "reset", True),
        ("html_502", 502, True),
        ("html_503", 503, False),
        ("delay", 200, True),
    ],
)
def test_each_fault_kind(chaos_server: LocalMLSServer, kind: str, answer: Any, acted: bool) -> None:
    direct = Direct(chaos_server.url, chaos_server.auth)
    with ChaosProxy(chaos_server.url, fault_rate=1, kinds=[kind], delay=(0.1, 0.2), retry_after=3) as proxy:
        name = f"kind_{kind}_{uuid.uuid4().hex[:6]}"
        if answer == "reset":
            with pytest.raises(requests.ConnectionError):
                _create(proxy.url, chaos_server.auth, name)
        else:
            r = _create(proxy.url, chaos_server.auth, name)
            assert r.status_code == answer, r.text
            if answer == 200:
                assert r.json()["error"] is None
            else:
                assert r.headers["Content-Type"] == "text/html" and "<html>" in r.text
                with pytest.raises(json.JSONDecodeError):
                    json.loads(r.text)
            if kind == "html_503":
                assert r.headers["Retry-After"] == "3"
        assert len(direct.models(name, "v1")) == (1 if acted else 0)
        assert proxy.stats[kind] == 1 and proxy.stats["requests"] == 1
        with proxy.calm():  # no faults: a plain relay
            r = requests.get(
                proxy.url + "/api/v1/models", params={"name": name}, auth=chaos_server.auth, timeout=30
            )
            assert r.status_code == 200 and len(r.json()["results"]) == (1 if acted else 0)
        # /local paths are not faulted by default (match=("/api/",))
        assert requests.get(proxy.url + "/local/health", timeout=30).status_code == 200


def test_rate_zero_is_a_transparent_relay(chaos_server: LocalMLSServer) -> None:
    with ChaosProxy(chaos_server.url, fault_rate=0) as proxy:
        session = requests.Session()
        session.auth = chaos_server.auth
        for _ in range(5):
            assert session.get(proxy.url + "/api/v1/models", timeout=30).json()["code"] == 200
        r = session.post(proxy.url + "/api/v1/components", data=iter([b'{"name": "chunk', b'ed", "info": "i"}']),
                         timeout=30)  # fmt: skip
        assert r.json()["results"]["name"] == "chunked"
        assert proxy.stats["faults"] == 0 and proxy.stats["forwarded"] == 6


def test_bad_settings_are_refused() -> None:
    for kwargs in ({"fault_rate": 1.5}, {"kinds": ["explode"]}, {"delay": (3, 1)}):
        with pytest.raises(ValueError):
            ChaosProxy("http://127.0.0.1:1", **kwargs)
    with pytest.raises(ValueError, match="http://"):
        ChaosProxy("https://example.com")


def test_write_invariants_at_20_percent_faults(chaos_server: LocalMLSServer) -> None:
    """A few dozen creates, creates over existing models and concurrent merges through 20 % faults
    (resets before and after the server acted, delays, 502 pages, 503 with Retry-After)."""
    with ChaosProxy(chaos_server.url, fault_rate=0.2, seed=11, delay=(0.2, 1.0), retry_after=1) as proxy:
        figures = run_workload(chaos_server.url, chaos_server.auth, proxy, scale=1)
    summary = figures.summary()
    print(json.dumps({**summary, "faults": figures.faults, "errors": dict(figures.errors)}, indent=2))
    assert figures.runs == 39
    assert figures.faults.get("faults", 0) > 0, figures.faults  # the run did meet faults
    assert figures.problems == [], figures.problems
    assert figures.untyped_errors == [], figures.untyped_errors
    assert summary["duplicates"] == summary["stale_adoptions"] == summary["keys_lost"] == 0
    assert figures.green + figures.typed_errors == figures.runs
    assert figures.green > 0


def test_merges_survive_writes_held_in_flight(
    chaos_server: LocalMLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent distinct-key merges when some requests are held 2-3 s before they reach the server:
    with the connection's ``write_settle`` above that delay (as docs/hook.md says to set it where
    such delays are expected), no green merge loses its key."""
    direct = Direct(chaos_server.url, chaos_server.auth)
    with ChaosProxy(chaos_server.url, fault_rate=0.3, seed=5, kinds=["delay"], delay=(2.0, 3.0)) as proxy:
        for key, value in connection_env(proxy.url, chaos_server.auth, write_settle=4).items():
            monkeypatch.setenv(key, value)
        figures = Figures()
        concurrent_merges(direct, figures, models=1, writers=8, tag=uuid.uuid4().hex[:8])
    assert proxy.stats["delay"] > 0
    assert figures.untyped_errors == []
    assert figures.problems == [], figures.problems


def test_all_fault_kinds_are_drawn() -> None:
    proxy = ChaosProxy("http://127.0.0.1:1", fault_rate=1, seed=3)
    drawn = {proxy._draw("/api/v1/models")[0] for _ in range(200)}
    assert drawn == set(FAULT_KINDS)
    assert proxy._draw("/local/health") == (None, 0.0)
