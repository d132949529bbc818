"""An embedded AWS endpoint for local runs and tests: moto's server on loopback, SageMaker as it behaves.

``LocalAWSEndpoint`` starts moto's ``ThreadedMotoServer`` (SageMaker, S3, DynamoDB, ...) in this
process. moto 5.2 differs from SageMaker's model registry in three ways that matter to this
provider; ``apply_sagemaker_semantics()`` (applied by ``start()``) makes it behave like SageMaker:

* ``UpdateModelPackage`` leaves fields that are not sent as they are (moto sets the approval
  status and description to None);
* ``CustomerMetadataProperties`` in an update are added to the existing keys (moto replaces the map);
* the model package's ``ModelCard`` (content and status) given on create or update is kept and
  returned by ``DescribeModelPackage`` (moto drops it).

Needs ``moto[server]`` (installed with the ``test`` extra). Test credentials only: never point a
real account at it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_REGION = "us-east-1"
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


class LocalAWSEndpoint:
    """moto's server on ``host:port`` (0: a free port) in a thread of this process.

    ``with LocalAWSEndpoint() as aws: os.environ.update(aws.env())`` points boto3 (and the
    provider's AWS hooks) at it with test credentials.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = DEFAULT_REGION) -> None:
        self.host = host
        self.port = port
        self.region = region
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
        return self

    def stop(self) -> None:
        if self._server is not None:
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
