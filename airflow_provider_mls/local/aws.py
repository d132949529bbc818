"""An embedded AWS endpoint for local runs and tests: moto's server on loopback, SageMaker as it behaves.

``LocalAWSEndpoint`` starts moto's ``ThreadedMotoServer`` (SageMaker, S3, DynamoDB, ...) in this
process. moto 5.2 differs from SageMaker's model registry in three ways that matter to this
provider; ``apply_sagemaker_semantics()`` (applied by ``start()``) makes it behave like SageMaker:

* ``UpdateModelPackage`` leaves fields that are not sent as they are (moto sets the approval
  status and description to None);
* ``CustomerMetadataProperties`` in an update are added to the existing keys (moto replaces the map);
* the model package's ``ModelCard`` (content and status) given on create or update is kept and
  returned by ``DescribeModelPackage`` (moto drops it).

With a ``state_file`` the endpoint keeps its state across restarts: every request that changes
something (not reads) is appended to that file (moto's recorder, one JSON line per request), and a
new start replays the file before it serves. The recorder is one per process, so only one endpoint
of a process can have a state file.

Needs ``moto[server]`` (the ``local`` extra). Test credentials only: never point a real account at it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_REGION = "us-east-1"
log = logging.getLogger("airflow_provider_mls.local")


class StateFileError(ValueError):
    """The AWS state file is corrupt somewhere else than in a torn last line."""


def repair_state_file(state_file: Path) -> int:
    """Check the recorded requests before they are replayed; returns how many there are.

    A process killed while it appended a line leaves that last line torn: it is dropped (with a
    warning) and the file is cut back to its last whole line, so new records start on a line of
    their own. A corrupt line anywhere else is not a crash's trace: ``StateFileError``.
    """
    data = state_file.read_bytes()
    lines = data.split(b"\n")
    good_end = 0  # byte offset after the last good line
    offset = 0
    count = 0
    for index, raw in enumerate(lines):
        end = offset + len(raw) + (1 if index < len(lines) - 1 else 0)
        if raw.strip():
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                rest = b"".join(lines[index + 1 :]).strip()
                if rest:
                    raise StateFileError(
                        f"{state_file}: line {index + 1} is corrupt ({exc}); only a torn last line "
                        "(a crash while writing) is skipped"
                    ) from None
                log.warning(
                    "%s: skipping its torn last line %s (%s bytes: %s); the request it recorded is lost",
                    state_file,
                    index + 1,
                    len(raw),
                    exc,
                )
                with state_file.open("r+b") as fh:
                    fh.truncate(good_end)
                    fh.flush()
                    os.fsync(fh.fileno())
                return count
            count += 1
            good_end = end
        offset = end
    if data and not data.endswith(b"\n"):  # a whole last line without its newline
        with state_file.open("ab") as fh:
            fh.write(b"\n")
    return count


_PATCH_LOCK = threading.Lock()
_PATCHED = False


def apply_sagemaker_semantics() -> None:
    """Patch moto (in this process, once) so its model package registry behaves like SageMaker's."""
    global _PATCHED
    with _PATCH_LOCK:
        if _PATCHED:
            return
        from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
        from moto.sagemaker.responses import SageMakerResponse

        backend_update = SageMakerModelBackend.update_model_package

        def update_model_package(
            self: Any,
            model_package_arn: str,
            model_approval_status: str | None,
            approval_description: str | None,
            customer_metadata_properties: dict[str, str] | None,
            customer_metadata_properties_to_remove: list[str],
            additional_inference_specifications_to_add: list[Any] | None,
        ) -> str:
            package = self.describe_model_package(model_package_arn)
            return str(
                backend_update(
                    self,
                    model_package_arn=model_package_arn,
                    model_approval_status=model_approval_status or package.model_approval_status,
                    approval_description=(
                        approval_description
                        if approval_description is not None
                        else package.approval_description
                    ),
                    customer_metadata_properties={
                        **(package.customer_metadata_properties or {}),
                        **(customer_metadata_properties or {}),
                    },
                    customer_metadata_properties_to_remove=customer_metadata_properties_to_remove,
                    additional_inference_specifications_to_add=additional_inference_specifications_to_add,
                )
            )

        def keep_card(handler: Any) -> Any:
            def wrapped(self: Any) -> Any:
                result = handler(self)
                card = self._get_param("ModelCard")
                if card:
                    arn = (getattr(result, "result", None) or {}).get("ModelPackageArn")
                    package = self.sagemaker_backend.describe_model_package(arn)
                    stored = dict(getattr(package, "model_card", None) or {})
                    stored.update({k: v for k, v in card.items() if v is not None})
                    package.model_card = stored
                return result

            return wrapped

        describe = ModelPackage.gen_response_object

        def gen_response_object(self: Any) -> dict[str, Any]:
            response: dict[str, Any] = describe(self)
            card = getattr(self, "model_card", None)
            if card:
                response["ModelCard"] = dict(card)
            return response

        setattr(SageMakerModelBackend, "update_model_package", update_model_package)  # noqa: B010
        for name in ("create_model_package", "update_model_package"):
            setattr(SageMakerResponse, name, keep_card(getattr(SageMakerResponse, name)))
        setattr(ModelPackage, "gen_response_object", gen_response_object)  # noqa: B010
        _PATCHED = True


# Requests that change nothing, by X-Amz-Target action prefix (DynamoDB, SageMaker: JSON protocols).
_READ_ACTIONS = ("Describe", "List", "Get", "Query", "Scan", "BatchGet", "Search")
_RECORDER_LOCK = threading.Lock()
_RECORDING: list[Path] = []  # the state file of this process's recording endpoint, if any


def _is_read(request: Any) -> bool:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return True
    if str(getattr(request, "raw_path", "") or getattr(request, "path", "")).startswith("/moto-api"):
        return True
    target = str(request.headers.get("X-Amz-Target", ""))
    action = target.rsplit(".", 1)[-1]
    if target and action.startswith(_READ_ACTIONS):
        return True
    # Query protocols (SageMaker speaks JSON; kept for completeness): Action=Describe...
    action = str(getattr(request, "args", {}).get("Action", "")) if hasattr(request, "args") else ""
    return bool(action) and action.startswith(_READ_ACTIONS)


def _patch_recorder() -> None:
    """Record only requests that change state, one whole line at a time (moto's server is threaded)."""
    from moto.moto_api._internal.recorder.models import Recorder

    if getattr(Recorder, "_mls_patched", False):
        return
    record = Recorder._record_request

    def _record_request(self: Any, request: Any, body: bytes | None = None) -> None:
        if not self._user_enabled or _is_read(request):
            return
        with _RECORDER_LOCK:
            record(self, request, body)

    setattr(Recorder, "_record_request", _record_request)  # noqa: B010
    setattr(Recorder, "_mls_patched", True)  # noqa: B010


def reset_embedded(url: str, timeout: float = 30) -> None:
    """Empty the embedded endpoint at ``url`` (every moto backend) and, when this process records
    its state, its state file: a restart then starts empty too. Call it in the endpoint's process."""
    import urllib.request

    request = urllib.request.Request(f"{url.rstrip('/')}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()
    with _RECORDER_LOCK:
        if _RECORDING:
            from moto.moto_api import recorder

            recorder.reset_recording()


class LocalAWSEndpoint:
    """moto's server on ``host:port`` (0: a free port) in a thread of this process.

    ``with LocalAWSEndpoint() as aws: os.environ.update(aws.env())`` points boto3 (and the
    provider's AWS hooks) at it with test credentials.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        state_file: str | Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.state_file = Path(state_file) if state_file is not None else None
        self.replayed = 0  # requests replayed from the state file at start
        self._server: Any = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("LocalAWSEndpoint is not started")
        return self._url

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 at this endpoint with test credentials."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def start(self) -> Self:
        from moto.server import ThreadedMotoServer

        apply_sagemaker_semantics()
        # One access-log line per AWS call would drown everything else; errors still show.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self._url = f"http://{host}:{port}"
        if self.state_file is not None:
            try:
                self._restore_and_record(self.state_file)
            except BaseException:
                self.stop()
                raise
        return self

    def _restore_and_record(self, state_file: Path) -> None:
        from moto.moto_api import recorder

        with _RECORDER_LOCK:
            if _RECORDING:
                raise RuntimeError(f"this process already records AWS state to {_RECORDING[0]}")
            _RECORDING.append(state_file)
        _patch_recorder()
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.touch()
        recorder._location = str(state_file)
        self.replayed = repair_state_file(state_file)
        if self.replayed:
            recorder.replay_recording(target_host=self.url)
        recorder.start_recording()

    def stop(self) -> None:
        if self._server is not None:
            if self.state_file is not None and _RECORDING == [self.state_file]:
                from moto.moto_api import recorder

                recorder.stop_recording()
                _RECORDING.clear()
            self._server.stop()
            self._server = None
            self._url = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
