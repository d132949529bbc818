"""Reading an MLS connection: the base URL rule, env/runtime_env, timeouts and retries from the extras."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.constants import (
    BASE_URLS,
    DEFAULT_ENV,
    DEFAULT_RUNTIME_ENV,
    MLSEnv,
    MLSRuntimeEnv,
)
from airflow_provider_mls.exceptions import MLSValidationError
from airflow_provider_mls.hooks._retry import DEFAULT_MAX_RETRIES
from airflow_provider_mls.rules import is_loopback

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 60.0)
# Seconds an update waits after its PUT before the read that verifies it (see MLSHook.update_manual_model).
DEFAULT_WRITE_SETTLE = 1.0
MAX_WRITE_SETTLE = 30.0
EXTRA_PREFIX = "extra__mls__"


@dataclass(frozen=True)
class MLSSettings:
    """Everything the hook needs from its connection, resolved once."""

    base_url: str
    username: str
    password: str = field(repr=False)
    timeout: tuple[float, float] = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    write_settle: float = DEFAULT_WRITE_SETTLE
    conn_id: str = ""  # named in the errors of an unreachable MLS and of refused credentials

    @property
    def token(self) -> str:
        """The Basic auth token: base64 of ``username:password``."""
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def get_extra(extras: Mapping[str, Any], key: str) -> Any:
    """An extra by its plain name, else by the Airflow UI's ``extra__mls__<key>`` name."""
    for name in (key, f"{EXTRA_PREFIX}{key}"):
        value = extras.get(name)
        if value is not None and value != "":
            return value
    return None


def parse_env(value: object) -> MLSEnv:
    if value is None or value == "":
        return DEFAULT_ENV
    try:
        return MLSEnv(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(e.value for e in MLSEnv)
        raise MLSValidationError("env", f"unknown MLS env {value!r}; expected one of {allowed}") from None


def parse_runtime_env(value: object) -> MLSRuntimeEnv:
    if value is None or value == "":
        return DEFAULT_RUNTIME_ENV
    try:
        return MLSRuntimeEnv(str(value).strip().upper())
    except ValueError:
        allowed = ", ".join(e.value for e in MLSRuntimeEnv)
        raise MLSValidationError(
            "runtime_env", f"unknown runtime_env {value!r}; expected one of {allowed}"
        ) from None


def table_base_url(env: MLSEnv, runtime_env: MLSRuntimeEnv) -> str:
    try:
        return BASE_URLS[(runtime_env, env)]
    except KeyError:
        valid = sorted(e.value for (r, e) in BASE_URLS if r is runtime_env)
        raise MLSValidationError(
            "env",
            f"env {env.value!r} is not available with runtime_env {runtime_env.value!r} "
            f"(env/runtime_env pairs: {runtime_env.value} accepts {', '.join(valid)})",
        ) from None


def resolve_base_url(
    *,
    host: str | None,
    port: int | None = None,
    schema: str | None = None,
    env: object = None,
    runtime_env: object = None,
) -> str:
    """The MLS base URL of a connection (no trailing slash).

    1. ``env``/``runtime_env`` are always validated (unknown values raise ``MLSValidationError``).
    2. A ``host`` given as a full URL (``http://127.0.0.1:8765``, optionally with a path prefix
       such as ``https://proxy.example.com/mls``) is used as it is.
    3. A bare ``host`` (``127.0.0.1``, as parsed from ``mls://user:pass@127.0.0.1:8765?env=local``)
       gets the scheme of the connection's ``schema`` field when that is ``http``/``https``,
       else ``http://`` for loopback/localhost and ``https://`` for anything else, plus
       ``:port`` when the connection has a port.
    4. Without a host, the (runtime_env, env) pair picks the URL from ``BASE_URLS``
       (defaults ``stg`` / ``LOCAL``); a pair not in the table raises ``MLSValidationError``.
    """
    env_value = parse_env(env)
    runtime_value = parse_runtime_env(runtime_env)
    host = (host or "").strip()
    if not host:
        return table_base_url(env_value, runtime_value)
    if "://" in host:
        return host.rstrip("/")
    name, _, path = host.partition("/")
    scheme = (schema or "").strip().lower()
    if scheme not in ("http", "https"):
        scheme = "http" if is_loopback(name) else "https"
    if name.count(":") > 1 and not name.startswith("["):  # a bare IPv6 address
        name = f"[{name}]"
    netloc = f"{name}:{port}" if port and not _has_port(name) else name
    url = f"{scheme}://{netloc}"
    if path:
        url = f"{url}/{path}"
    return url.rstrip("/")


def _has_port(netloc: str) -> bool:
    return ":" in netloc.rsplit("]", 1)[-1]


def _positive_float(value: object, field: str) -> float:
    if isinstance(value, bool):
        raise MLSValidationError(field, f"expected a number of seconds, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MLSValidationError(field, f"expected a number of seconds, got {value!r}") from None
    if number <= 0:
        raise MLSValidationError(field, f"must be > 0, got {value!r}")
    return number


def parse_timeout(value: object, field: str = "timeout") -> tuple[float, float]:
    """``30`` -> (30, 30); ``(5, 60)`` / ``[5, 60]`` -> (connect, read)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise MLSValidationError(field, f"expected a number or (connect, read), got {value!r}")
        return (_positive_float(value[0], field), _positive_float(value[1], field))
    seconds = _positive_float(value, field)
    return (seconds, seconds)


def parse_max_retries(value: object, field: str = "max_retries") -> int:
    if isinstance(value, bool):
        raise MLSValidationError(field, f"expected an integer >= 0, got {value!r}")
    try:
        number = int(str(value)) if isinstance(value, str) else value
    except ValueError:
        raise MLSValidationError(field, f"expected an integer >= 0, got {value!r}") from None
    if not isinstance(number, int) or number < 0:
        raise MLSValidationError(field, f"expected an integer >= 0, got {value!r}")
    return number


def parse_write_settle(value: object, field: str = "write_settle") -> float:
    """0 to ``MAX_WRITE_SETTLE`` seconds."""
    if isinstance(value, bool):
        raise MLSValidationError(field, f"expected a number of seconds, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise MLSValidationError(field, f"expected a number of seconds, got {value!r}") from None
    if not 0 <= number <= MAX_WRITE_SETTLE:
        raise MLSValidationError(field, f"expected 0 to {MAX_WRITE_SETTLE:g} seconds, got {value!r}")
    return number


def resolve_timeout(explicit: object, extras: Mapping[str, Any]) -> tuple[float, float]:
    """The constructor's ``timeout`` wins; else extras ``timeout``, ``connect_timeout``, ``read_timeout``."""
    if explicit is not None:
        return parse_timeout(explicit)
    connect, read = DEFAULT_TIMEOUT
    both = get_extra(extras, "timeout")
    if both is not None:
        connect, read = parse_timeout(both)
    connect_extra = get_extra(extras, "connect_timeout")
    if connect_extra is not None:
        connect = _positive_float(connect_extra, "connect_timeout")
    read_extra = get_extra(extras, "read_timeout")
    if read_extra is not None:
        read = _positive_float(read_extra, "read_timeout")
    return (connect, read)


def read_settings(
    conn: Any,
    *,
    timeout: object = None,
    max_retries: int | None = None,
    write_settle: float | None = None,
    extras: Mapping[str, Any] | None = None,
) -> MLSSettings:
    """Settings from an Airflow connection; explicit ``timeout``/``max_retries``/``write_settle`` win over the extras.

    ``extras``: the connection's extra dict when the caller already has it (the async path reads
    it without blocking); default ``conn.extra_dejson``.
    """
    if extras is None:
        extras = conn.extra_dejson or {}
    username, password = conn.login or "", conn.password or ""
    if max_retries is None:
        extra_retries = get_extra(extras, "max_retries")
        max_retries = parse_max_retries(DEFAULT_MAX_RETRIES if extra_retries is None else extra_retries)
    if write_settle is None:
        extra_settle = get_extra(extras, "write_settle")
        write_settle = parse_write_settle(DEFAULT_WRITE_SETTLE if extra_settle is None else extra_settle)
    return MLSSettings(
        base_url=resolve_base_url(
            host=conn.host,
            port=conn.port,
            schema=conn.schema,
            env=get_extra(extras, "env"),
            runtime_env=get_extra(extras, "runtime_env"),
        ),
        username=username,
        password=password,
        timeout=resolve_timeout(timeout, extras),
        max_retries=max_retries,
        write_settle=write_settle,
        conn_id=str(getattr(conn, "conn_id", "") or ""),
    )
