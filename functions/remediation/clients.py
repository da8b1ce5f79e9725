"""AWS clients, created lazily and passed in: tests hand in their own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.config import Config

from .quotas import Pace

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigatewayv2 import ApiGatewayV2Client
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_cloudfront import CloudFrontClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_wafv2 import WAFV2Client

# Standard mode retries throttling and 5xx with jittered exponential backoff; in a Config
# ``max_attempts`` counts retries, so 5 means up to 6 tries in all.
DEFAULT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=3,
    read_timeout=10,
)


class Clients:
    """One boto3 client per service, made on first use (cold start pays only for what it uses).

    ``clients("lambda")`` returns the Lambda client; ``clients("wafv2", region="us-east-1")``
    one in another region (CloudFront-scope WAF lives in us-east-1). ``overrides`` maps a
    service name (or ``"service@region"``) to a ready client (a Stubber-wrapped one in tests).
    The endpoint comes from boto3's own ``AWS_ENDPOINT_URL`` unless ``endpoint_url`` is given.
    ``pace`` keeps the calls that have a documented rate to this environment's share of it
    (the Lambda handlers pass one; see ``quotas.py``).
    """

    def __init__(
        self,
        session: boto3.session.Session | None = None,
        *,
        endpoint_url: str | None = None,
        config: Config = DEFAULT_CONFIG,
        overrides: dict[str, Any] | None = None,
        credentials: Callable[[], Mapping[str, str]] | None = None,
        region: str | None = None,
        pace: Pace | None = None,
    ) -> None:
        self._session = session
        self._endpoint_url = endpoint_url
        self._config = config
        self._made: dict[str, Any] = dict(overrides or {})
        self._lock = threading.Lock()
        #: keys for ``session.client`` (``aws_access_key_id`` ...): another identity's
        #: credentials on the same session, so its loaded service models are shared
        self._credentials = credentials
        #: the region a client gets when none is named (None: the session's own)
        self._region = region
        #: this execution environment's share of AWS's documented rates (``quotas.py``)
        self._pace = pace

    def acting_as(
        self, credentials: Callable[[], Mapping[str, str]], *, region: str | None
    ) -> Clients:
        """Clients on this one's session and endpoint, signing with ``credentials`` (asked
        for on each client's creation) and defaulting to ``region``."""
        return Clients(
            self.session(),
            endpoint_url=self._endpoint_url,
            config=self._config,
            credentials=credentials,
            region=region,
            pace=self._pace,
        )

    # Typed clients (boto3-stubs) for the services the Lambda code calls; any other name
    # (the drill's and the tests' own) gets an untyped client.
    @overload
    def __call__(
        self, service: Literal["apigateway"], region: str | None = None
    ) -> APIGatewayClient: ...
    @overload
    def __call__(
        self, service: Literal["apigatewayv2"], region: str | None = None
    ) -> ApiGatewayV2Client: ...
    @overload
    def __call__(
        self, service: Literal["application-autoscaling"], region: str | None = None
    ) -> ApplicationAutoScalingClient: ...
    @overload
    def __call__(
        self, service: Literal["cloudfront"], region: str | None = None
    ) -> CloudFrontClient: ...
    @overload
    def __call__(
        self, service: Literal["cloudwatch"], region: str | None = None
    ) -> CloudWatchClient: ...
    @overload
    def __call__(
        self, service: Literal["dynamodb"], region: str | None = None
    ) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["ecs"], region: str | None = None) -> ECSClient: ...
    @overload
    def __call__(self, service: Literal["lambda"], region: str | None = None) -> LambdaClient: ...
    @overload
    def __call__(
        self, service: Literal["logs"], region: str | None = None
    ) -> CloudWatchLogsClient: ...
    @overload
    def __call__(self, service: Literal["rds"], region: str | None = None) -> RDSClient: ...
    @overload
    def __call__(self, service: Literal["sns"], region: str | None = None) -> SNSClient: ...
    @overload
    def __call__(self, service: Literal["ssm"], region: str | None = None) -> SSMClient: ...
    @overload
    def __call__(self, service: Literal["wafv2"], region: str | None = None) -> WAFV2Client: ...
    @overload
    def __call__(self, service: str, region: str | None = None) -> Any: ...

    def __call__(self, service: str, region: str | None = None) -> Any:
        key = f"{service}@{region}" if region else service
        client = self._made.get(key)
        if client is None:
            with self._lock:
                client = self._made.get(key)
                if client is None:
                    client = self._make(service, region)
                    self._made[key] = client
        return client

    def until(self, deadline: float) -> None:
        """No wait for a rate's share (``pace``) runs past ``deadline`` (``time.monotonic``):
        the handlers set the invocation's end."""
        if self._pace is not None:
            self._pace.deadline = deadline

    def session(self) -> boto3.session.Session:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session()
        return self._session

    def _make(self, service: str, region: str | None = None) -> Any:
        # Untyped on purpose: ``service`` is any name, and the overloads above type the result.
        make: Any = self.session().client
        client = make(
            service,
            region_name=region or self._region or None,
            endpoint_url=self._endpoint_url,
            config=self._config,
            **(self._credentials() if self._credentials else {}),
        )
        if self._pace is not None:
            self._pace.watch(client)
        return client


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ClientError, else the exception's class name."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(exc).__name__))
    return type(exc).__name__
