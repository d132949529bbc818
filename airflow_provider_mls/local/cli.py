"""``mls-local``: run the local MLS server (see docs/local-server.md)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mls.rules import REQUEST_MAX_BYTES, is_loopback

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import FrameType

READY_PREFIX = "MLS local server listening on "
AWS_PREFIX = "MLS local AWS endpoint "  # then "(embedded moto) at URL" or "(external) at URL"
AWS_STATE_FILE = "aws-state.jsonl"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
PAGE_SIZE_MAX = 500  # GET /api/v1/models pages stay bounded: at most this many models
EXTRA_HINT = "pip install 'airflow-provider-mls[local]'"
LOOPBACK = "127.0.0.1"
DEFAULT_PASSWORD = "mls"
# What mls-local needs beyond the provider itself: the local extra.
_SERVER_MODULES = ("fastapi", "uvicorn")


def _env(name: str, default: str) -> str:
    return os.environ.get(f"MLS_LOCAL_{name}", default)


def _positive_float(flag: str) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number of seconds, got {value!r}") from None
        if number < 0 or number != number:
            raise argparse.ArgumentTypeError(f"{flag} must be >= 0, got {value!r}")
        return number

    return parse


def _int_range(flag: str, low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {value!r}") from None
        if number < low or (high is not None and number > high):
            raise argparse.ArgumentTypeError(
                f"{flag} must be in [{low}, {high if high is not None else 'inf'}]"
            )
        return number

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mls-local",
        description="Local MLS server (the MLS REST API of docs/mls-api.md, persisted in SQLite). "
        "Every flag can also be given as an MLS_LOCAL_<FLAG> environment variable, e.g. MLS_LOCAL_PORT.",
    )
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="bind address (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=_int_range("--port", 0, 65535),
        default=_env("PORT", "8765"),
        help="TCP port; 0 picks a free one (default 8765)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path(_env("DATA_DIR", "./.mls-local")),
        help="directory of the SQLite database and server.log (default ./.mls-local)",
    )
    p.add_argument("--username", default=_env("USERNAME", "mls"), help="Basic auth user (default mls)")
    p.add_argument("--password", default=_env("PASSWORD", "mls"), help="Basic auth password (default mls)")
    p.add_argument(
        "--training-seconds",
        type=_positive_float("--training-seconds"),
        default=_env("TRAINING_SECONDS", "5"),
        help="AutoML training: TRAINING -> DONE after (default 5)",
    )
    p.add_argument(
        "--server-start-seconds",
        type=_positive_float("--server-start-seconds"),
        default=_env("SERVER_START_SECONDS", "3"),
        help="AutoML model server: STARTING -> RUNNING and STOPPING -> STOPPED after (default 3)",
    )
    p.add_argument(
        "--page-size",
        type=_int_range("--page-size", 1, PAGE_SIZE_MAX),
        default=_env("PAGE_SIZE", "20"),
        help=f"models per page of GET /api/v1/models, at most {PAGE_SIZE_MAX} (default 20)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=_int_range("--max-body-bytes", 1024),
        default=_env("MAX_BODY_BYTES", str(REQUEST_MAX_BYTES)),
        help=f"request bodies over this are refused with 400 naming 'body' (default {REQUEST_MAX_BYTES})",
    )
    p.add_argument(
        "--request-timeout",
        type=_positive_float("--request-timeout"),
        default=_env("REQUEST_TIMEOUT", "30"),
        help="a request (headers and body) not fully received this many seconds after its connection "
        "opened (or its previous response) is dropped, 408 when its headers were in; 0 disables (default 30)",
    )
    p.add_argument(
        "--aws-endpoint",
        default=_env("AWS_ENDPOINT", "") or None,
        metavar="URL",
        help="S3/DynamoDB endpoint behind the registry and table endpoints (e.g. LocalStack), used "
        "with your AWS credential chain; default: an embedded moto server on --aws-host",
    )
    p.add_argument(
        "--aws-port",
        type=_int_range("--aws-port", 0, 65535),
        default=_env("AWS_PORT", "0"),
        help="port of the embedded AWS endpoint; 0 picks a free one (default 0)",
    )
    p.add_argument(
        "--aws-region", default=_env("AWS_REGION", "us-east-1"), help="AWS region (default us-east-1)"
    )
    p.add_argument(
        "--registry-bucket",
        default=_env("REGISTRY_BUCKET", "mls-model-registry"),
        help="the model registry bucket artifacts/info reads (default mls-model-registry); "
        "the three registry buckets of MLS are created at start",
    )
    p.add_argument(
        "--lean-lists",
        action="store_true",
        default=_env("LEAN_LISTS", "").lower() in ("1", "true", "yes", "on"),
        help="list items of GET /api/v1/models and /api/v1/components carry only their id, name "
        "(and version, model_type): what the reference client relies on; a client that trusts a "
        "list item as a whole model breaks here as it may against the real MLS",
    )
    p.add_argument(
        "--record",
        type=Path,
        default=Path(_env("RECORD", "")) if _env("RECORD", "") else None,
        metavar="FILE",
        help="append every request outside /local (method, raw path, raw query string, JSON body) "
        "to FILE as one JSON line, before it is served",
    )
    p.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default=_env("LOG_LEVEL", "warning").lower(),
        help="log level of the server, written to stderr (default warning)",
    )
    p.add_argument(
        "--aws-host",
        default=_env("AWS_HOST", LOOPBACK),
        help="bind address of the embedded AWS endpoint, which has no authentication at all; it stays "
        f"on {LOOPBACK} whatever --host is unless this asks for another (default {LOOPBACK})",
    )
    p.add_argument(
        "--allow-default-credentials",
        action="store_true",
        default=_env("ALLOW_DEFAULT_CREDENTIALS", "").lower() in ("1", "true", "yes", "on"),
        help=f"start on a --host beyond loopback even with the default password {DEFAULT_PASSWORD!r} "
        "(refused otherwise: anyone who can reach the port knows it)",
    )
    return p


def _exposure_problem(args: argparse.Namespace) -> str | None:
    """Why these settings must not start, or None; warnings about what is exposed go to stderr."""
    if not is_loopback(args.host):
        if args.password == DEFAULT_PASSWORD and not args.allow_default_credentials:
            return (
                f"--host {args.host} serves beyond this machine, with the default password "
                f"{DEFAULT_PASSWORD!r} that anyone knows: set --password (or MLS_LOCAL_PASSWORD), "
                "or pass --allow-default-credentials"
            )
        print(
            f"mls-local: warning: the MLS API listens on {args.host} (plain HTTP, Basic auth)",
            file=sys.stderr,
        )
    if args.aws_endpoint is None and not is_loopback(args.aws_host):
        print(
            f"mls-local: warning: the embedded AWS endpoint (no authentication) listens on {args.aws_host}",
            file=sys.stderr,
        )
    return None


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _missing_server_modules() -> list[str]:
    import importlib

    missing = []
    for name in _SERVER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.username:
        parser.error("--username must not be empty")
    problem = _exposure_problem(args)
    if problem is not None:
        print(f"mls-local: {problem}", file=sys.stderr)
        return 2
    missing = _missing_server_modules()
    if missing:
        print(
            f"mls-local: the local server needs {' and '.join(missing)}, which are not installed: "
            f"{EXTRA_HINT}",
            file=sys.stderr,
        )
        return 2

    logging.basicConfig(
        level=logging.DEBUG if args.log_level == "trace" else getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    aws_endpoint, aws_url = None, args.aws_endpoint
    if aws_url is None:
        try:
            from airflow_provider_mls.local.aws import LocalAWSEndpoint
        except ImportError as exc:  # pragma: no cover - moto is part of the local extra
            print(
                f"mls-local: the embedded AWS endpoint needs moto[server] ({exc}): "
                f"{EXTRA_HINT}, or pass --aws-endpoint URL",
                file=sys.stderr,
            )
            return 1
        # This process talks to its own endpoint only, with test credentials: no profile of the
        # user's (which might not even exist in this environment) may get in the way.
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        try:
            args.data_dir.mkdir(parents=True, exist_ok=True)
            aws_endpoint = LocalAWSEndpoint(
                host=args.aws_host,
                port=args.aws_port,
                region=args.aws_region,
                state_file=args.data_dir / AWS_STATE_FILE,
            ).start()
        except Exception as exc:
            print(f"mls-local: cannot start the embedded AWS endpoint: {exc}", file=sys.stderr)
            return 1
        aws_url = aws_endpoint.url
    try:
        return _serve(args, aws_url, embedded=aws_endpoint is not None)
    finally:
        if aws_endpoint is not None:
            aws_endpoint.stop()


def _serve(args: argparse.Namespace, aws_url: str, *, embedded: bool) -> int:
    import uvicorn

    from airflow_provider_mls.local.app import create_app
    from airflow_provider_mls.local.middleware import timed_http_protocol
    from airflow_provider_mls.local.settings import Settings

    settings = Settings(
        aws_endpoint_url=aws_url,
        aws_region=args.aws_region,
        registry_bucket=args.registry_bucket,
        aws_test_credentials=embedded,
        data_dir=args.data_dir,
        username=args.username,
        password=args.password,
        training_seconds=args.training_seconds,
        server_start_seconds=args.server_start_seconds,
        page_size=args.page_size,
        max_body_bytes=args.max_body_bytes,
        lean_lists=args.lean_lists,
        record_path=args.record,
    )
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"mls-local: cannot bind {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    real_host, real_port = sock.getsockname()[:2]
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{real_port}"
    try:
        app = create_app(settings)
        app.state.aws.ensure_buckets()
    except Exception as exc:
        sock.close()
        print(f"mls-local: the AWS endpoint {aws_url} is not usable: {exc}", file=sys.stderr)
        return 1
    kind = "embedded moto: S3, DynamoDB, SageMaker" if embedded else "external"
    sys.stdout.write(f"{AWS_PREFIX}({kind}) at {aws_url}\n")
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug", "trace"),
        timeout_graceful_shutdown=3,
        lifespan="off",
        http=timed_http_protocol(args.request_timeout),
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                sys.stdout.write(f"{READY_PREFIX}{url}\n")
                sys.stdout.flush()

    server = _Server(config)

    # uvicorn re-raises the signal it caught once it is done: make that harmless so we exit 0.
    def _after_shutdown(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _after_shutdown)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        app.state.store.close()
    return 0 if server.started else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
