"""The local emulator: moto as a real HTTP endpoint on loopback.

Used by the drill, the tests and the benchmarks: boto3 talks to it through
``endpoint_url`` exactly as it would talk to AWS.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from moto.server import ThreadedMotoServer

from serverless_remediation.remediation.audit import (
    PARTITION_KEY,
    SORT_KEY,
    TARGET_INDEX,
    TARGET_INDEX_KEYS,
)
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.targets import build, parse, partition_of

if TYPE_CHECKING:
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef
    from mypy_boto3_cloudwatch.literals import StateValueType
    from mypy_boto3_lambda.type_defs import CreateAliasRequestTypeDef
    from mypy_boto3_wafv2.literals import IPAddressVersionType, ScopeType
    from mypy_boto3_wafv2.type_defs import IPSetSummaryTypeDef

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


#: endpoints of the moto servers running in this process. The drill's stand-ins for what moto
#: lacks (a pinned id, an unhealthy reader, a registeredAt) edit moto's in-process models:
#: they reach only these, not a moto server in another process (``--local --keep``'s).
_IN_PROCESS: set[str] = set()


def in_process(clients: Clients) -> bool:
    """Whether ``clients`` talk to a moto server running in this process."""
    return str(clients("sts").meta.endpoint_url).rstrip("/") in _IN_PROCESS


#: DynamoDB applies each conditional write and each transaction atomically (transactions
#: are serializable); moto, serving requests on threads, checks a condition and writes in
#: two steps another request can come between. One lock around moto's table writes gives
#: the emulator DynamoDB's documented behaviour (reentrant: a transaction calls the others).
_WRITES = threading.RLock()
_WRITE_METHODS = ("put_item", "update_item", "delete_item", "transact_write_items")


#: moto checks reserved words in update expressions only; DynamoDB refuses an unescaped
#: reserved word in any expression. Syntax words are left out (they are reserved too).
_SYNTAX = frozenset({"and", "or", "not", "between", "in", "set", "remove", "add", "delete"})
_NAME = re.compile(r"(?<![#:\w.])([A-Za-z_][A-Za-z0-9_]*)(?!\s*\()")


def _reserved_words() -> frozenset[str]:
    from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

    return frozenset(w.lower() for w in ReservedKeywords.get_reserved_keywords()) - _SYNTAX


def _expressions(value: Any) -> Iterator[tuple[str, str]]:
    """(parameter, expression) for every ``*Expression`` in a request, transactions too."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if name.endswith("Expression") and isinstance(inner, str):
                yield name, inner
            else:
                yield from _expressions(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _expressions(inner)


def _unused(value: Any) -> Iterator[tuple[str, str]]:
    """(parameter, key) for every expression attribute name or value that no expression
    of its own request (or transaction item) uses: DynamoDB refuses those."""
    if isinstance(value, list):
        for inner in value:
            yield from _unused(inner)
    if not isinstance(value, dict):
        return
    text = " ".join(v for k, v in value.items() if k.endswith("Expression") and isinstance(v, str))
    for parameter in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        for key in value.get(parameter) or {}:
            if not re.search(re.escape(key) + r"(?!\w)", text):
                yield parameter, key
    for name, inner in value.items():
        if not name.startswith("ExpressionAttribute"):
            yield from _unused(inner)


def _refuse_what_dynamodb_refuses() -> None:
    """Make moto's DynamoDB answer as DynamoDB does to a reserved word used as an attribute
    name in any expression, and to an expression attribute name or value no expression
    uses (a ``ValidationException`` each; moto accepts both), once per process."""
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "_checked", False):
        return
    reserved = _reserved_words()

    def checked(self: Any) -> Any:
        request = getattr(self, "params", None) or json.loads(self.body or "{}")
        for parameter, expression in _expressions(request):
            for word in _NAME.findall(expression):
                if word.lower() in reserved:
                    raise MockValidationException(
                        f"Invalid {parameter}: Attribute name is a reserved keyword; "
                        f"reserved keyword: {word}"
                    )
        for parameter, key in _unused(request):
            raise MockValidationException(
                f"Value provided in {parameter} unused in expressions: keys: {{{key}}}"
            )
        return original(self)

    checked._checked = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = checked  # type: ignore[method-assign]


def dynamodb_as_documented() -> None:
    """moto's DynamoDB, in this process, made to behave as DynamoDB documents where moto
    does not: atomic writes and transactions, and the requests DynamoDB refuses refused."""
    _atomic_dynamodb_writes()
    _refuse_what_dynamodb_refuses()


def _atomic_dynamodb_writes() -> None:
    """Wrap moto's DynamoDB write methods in ``_WRITES``, once per process; a transaction
    keeps a copy of the items it touches, not of whole tables (below)."""
    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    for name in _WRITE_METHODS:
        method = getattr(backend, name)
        if getattr(method, "_atomic", False):
            continue
        if name == "transact_write_items":
            method = _item_rollback(method)

        def atomic(self: Any, *args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _WRITES:
                return _method(self, *args, **kwargs)

        atomic._atomic = True  # type: ignore[attr-defined]
        setattr(backend, name, atomic)
    # moto backs up every table a transaction names (a deep copy of the whole table, per
    # transaction: seconds and gigabytes once the audit table holds a storm's records);
    # ``_item_rollback`` restores the touched items instead
    models.copy = _TablesNotCopied()  # type: ignore[assignment]


class _TablesNotCopied:
    """``copy`` for moto's DynamoDB models: a table is "copied" as itself."""

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_rollback(transact: Any) -> Any:
    """moto's transaction, with each touched item copied first and put back if it fails
    (all or nothing, as DynamoDB; the caller holds ``_WRITES``)."""

    def run(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.get_table(op["TableName"])
            key = op.get("Key") or {
                a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a
            }
            saved.append((op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key))))
        try:
            return transact(self, transact_items)
        except Exception:
            for table_name, key, item in saved:
                if item is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, item.to_json()["Attributes"])
            raise

    return run


class Emulator:
    """Start moto on 127.0.0.1 on a free port; ``clients()`` are pointed at it."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> Emulator:
        for name, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        dynamodb_as_documented()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        _IN_PROCESS.add(self.endpoint_url)
        return self

    def stop(self) -> None:
        _IN_PROCESS.discard(self.endpoint_url)
        self._server.stop()

    def reset(self) -> None:
        """Forget every resource (between tests or scenarios)."""
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 (loopback)
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def clients(self, **kwargs: Any) -> Clients:
        return Clients(endpoint_url=self.endpoint_url, **kwargs)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_audit_table(dynamodb: Any, name: str) -> None:
    """The audit, guard and idempotency table, shaped as the CDK app deploys it."""
    index_pk, index_sk = TARGET_INDEX_KEYS
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"}
            for a in (PARTITION_KEY, SORT_KEY, index_pk, index_sk)
        ],
        KeySchema=[
            {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": TARGET_INDEX,
                "KeySchema": [
                    {"AttributeName": index_pk, "KeyType": "HASH"},
                    {"AttributeName": index_sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def function_zip() -> bytes:
    """A tiny deployment package (moto stores code; it never runs it here)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return {}\n")
    return buffer.getvalue()


def create_function(
    clients: Clients,
    name: str,
    *,
    versions: int = 2,
    alias: str | None = "live",
    environment: dict[str, str] | None = None,
    memory: int = 512,
    timeout: int = 30,
    alias_version: str | None = None,
    weights: dict[str, float] | None = None,
) -> str:
    """A Lambda function with ``versions`` published versions and an alias on the newest
    (or on ``alias_version``), routing ``weights`` (version -> share) to other versions: a
    canary, as CodeDeploy or ``aws lambda update-alias --routing-config`` leaves it.

    Returns the alias ARN (or the function ARN when ``alias`` is None).
    """
    iam, lam = clients("iam"), clients("lambda")
    role_name = "remediation-drill-function-role"
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
        )["Role"]["Arn"]
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role_arn,
        Handler="index.handler",
        Code={"ZipFile": function_zip()},
        MemorySize=memory,
        Timeout=timeout,
        Environment={"Variables": dict(environment or {})},
    )
    version = None
    for n in range(versions):
        if n:
            lam.update_function_code(FunctionName=name, ZipFile=function_zip() + bytes(n))
        version = lam.publish_version(FunctionName=name)["Version"]
    if alias is None or version is None:
        return created["FunctionArn"]
    request: CreateAliasRequestTypeDef = {
        "FunctionName": name,
        "Name": alias,
        "FunctionVersion": alias_version or version,
    }
    if weights:
        request["RoutingConfig"] = {
            "AdditionalVersionWeights": {str(k): float(v) for k, v in weights.items()}
        }
    return lam.create_alias(**request)["AliasArn"]


# -- more resource kinds (the drill and the CLI's --local build targets with these) ---------


def put_parameter(clients: Clients, name: str, value: str) -> None:
    """An SSM String parameter (a feature flag or the automation switch)."""
    clients("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def create_table(
    clients: Clients, name: str, *, read: int = 5, write: int = 5, on_demand: bool = False
) -> str:
    """A one-key DynamoDB table, provisioned (``read``/``write``) or on demand. Returns its ARN."""
    billing: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST"}
        if on_demand
        else {
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {"ReadCapacityUnits": read, "WriteCapacityUnits": write},
        }
    )
    created = clients("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        **billing,
    )
    return created["TableDescription"]["TableArn"]


def create_ip_set(
    clients: Clients,
    name: str,
    *,
    ip_set_id: str | None = None,
    scope: ScopeType = "REGIONAL",
    addresses: list[str] | None = None,
    version: IPAddressVersionType = "IPV4",
) -> IPSetSummaryTypeDef:
    """A WAFv2 IP set. ``ip_set_id`` pins the id (moto makes a random one; a config names one).

    Returns the ``Summary`` (Name, Id, ARN, LockToken).
    """
    if ip_set_id is None or not in_process(clients):
        return _create_ip_set(clients, name, scope, addresses, version)
    from moto.wafv2.models import WAFV2Backend

    # moto runs in this process: pin the id it generates for this one call.
    original = WAFV2Backend._generate_id
    WAFV2Backend._generate_id = lambda self: ip_set_id  # type: ignore[method-assign]
    try:
        return _create_ip_set(clients, name, scope, addresses, version)
    finally:
        WAFV2Backend._generate_id = original  # type: ignore[method-assign]


def _create_ip_set(
    clients: Clients,
    name: str,
    scope: ScopeType,
    addresses: list[str] | None,
    version: IPAddressVersionType,
) -> IPSetSummaryTypeDef:
    return clients("wafv2").create_ip_set(
        Name=name,
        Scope=scope,
        IPAddressVersion=version,
        Addresses=list(addresses or []),
    )["Summary"]


def create_log_group(clients: Clients, name: str, lines: list[str], *, at_ms: int) -> None:
    """A log group with one stream holding ``lines`` (e.g. API Gateway access logs)."""
    logs = clients("logs")
    logs.create_log_group(logGroupName=name)
    logs.create_log_stream(logGroupName=name, logStreamName="drill")
    if lines:
        logs.put_log_events(
            logGroupName=name,
            logStreamName="drill",
            logEvents=[{"timestamp": at_ms + i, "message": line} for i, line in enumerate(lines)],
        )


def create_rest_stage(
    clients: Clients,
    api_id: str,
    stage: str,
    *,
    name: str = "",
    deployments: int = 2,
    spacing_seconds: int = 600,
    rate_limit: float | None = None,
    burst_limit: int | None = None,
    other_stages: dict[str, int] | None = None,
) -> str:
    """An API Gateway REST API with id ``api_id`` and ``deployments`` deployments, the stage
    on the newest. Deployments are ``spacing_seconds`` apart (moto stamps them with the
    current second; the API gives whole seconds, so equal stamps cannot be ordered).
    ``other_stages`` maps more stages of the same API to a deployment number (1 = oldest).

    Returns the stage ARN.
    """
    gateway = clients("apigateway")
    api = gateway.create_rest_api(name=name or api_id, tags={"_custom_id_": api_id})
    root = gateway.get_resources(restApiId=api_id)["items"][0]["id"]
    gateway.put_method(
        restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE"
    )
    gateway.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    made = [
        gateway.create_deployment(restApiId=api_id, description=f"v{n}")["id"]
        for n in range(1, deployments + 1)
    ]
    _backdate_deployments(api["id"], made, spacing_seconds)
    gateway.create_stage(restApiId=api_id, stageName=stage, deploymentId=made[-1])
    for other, number in (other_stages or {}).items():
        gateway.create_stage(restApiId=api_id, stageName=other, deploymentId=made[number - 1])
    patch: list[PatchOperationTypeDef] = []
    if rate_limit is not None:
        patch.append(
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate_limit)}
        )
    if burst_limit is not None:
        patch.append(
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst_limit)}
        )
    if patch:
        gateway.update_stage(restApiId=api_id, stageName=stage, patchOperations=patch)
    region = gateway.meta.region_name
    # API Gateway ARNs carry no account.
    return build(
        partition_of(region), "apigateway", region, "", f"/restapis/{api_id}/stages/{stage}"
    )


def _backdate_deployments(api_id: str, ids: list[str], spacing: int) -> None:
    """moto runs in this process: space the deployments' creation times, newest now."""
    from moto.apigateway.models import apigateway_backends

    for regions in apigateway_backends.values():
        for backend in regions.values():
            api = backend.apis.get(api_id)
            if api is None:
                continue
            for age, deployment_id in enumerate(reversed(ids)):
                api.deployments[deployment_id].created_date -= age * spacing


def clients_in(
    clients: Clients, account: str, *, region: str, partition: str = "aws", who: str = "operator"
) -> Clients:
    """``clients`` acting in another ``account`` of the emulator: moto maps the credentials
    of ``sts:AssumeRole`` into a role there (``who``, never checked) to that account."""
    from serverless_remediation.remediation.accounts import client_keys

    found = clients("sts").assume_role(
        RoleArn=f"arn:{partition}:iam::{account}:role/{who}", RoleSessionName=who
    )["Credentials"]
    keys = client_keys(found)
    return clients.acting_as(lambda: keys, region=region)


def put_plain_alarm(cloudwatch: Any, name: str, *, namespace: str) -> None:
    """A metric alarm named ``name`` on a metric of its own: enough for DescribeAlarms."""
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=namespace,
        MetricName=name[:255],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def agree_alarm(
    clients: Clients, arn: str, state: StateValueType, at: datetime, account: str = ACCOUNT
) -> None:
    """Make the emulated CloudWatch show alarm ``arn`` in ``state`` since ``at``.

    What AWS would show when CloudWatch itself sent the message: the pipeline confirms every
    alarm with ``DescribeAlarms`` before acting. The alarm is created (a plain metric alarm)
    when the emulator has none of that name. moto cannot be told a state's time through its
    API, so the time is set on moto's in-process model: the server runs in this process.

    An alarm of another account than ``clients``' own (``account``, by default the
    emulator's) is left alone: a remediator reads another account's alarms only through
    that account's role, and the scope check refuses any other.
    """
    from moto.cloudwatch.models import cloudwatch_backends

    alarm = parse(arn)
    if alarm.account != account or alarm.service != "cloudwatch":
        return
    name = arn.split(":", 6)[6]  # everything after "alarm:" (a name may hold "/" or ":")
    cloudwatch = clients("cloudwatch", region=alarm.region)
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        put_plain_alarm(cloudwatch, name, namespace="Drill")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="emulated")
    model = cloudwatch_backends[alarm.account][alarm.region].alarms[name]
    model.state_updated_timestamp = at.astimezone(UTC).replace(tzinfo=None)


def agree_alarms(clients: Clients, event: Any) -> None:
    """``agree_alarm`` for every CloudWatch alarm message in ``event`` (others are left)."""
    import serverless_remediation.remediation.intake as intake
    from serverless_remediation.remediation.models import RejectedError, Source

    try:
        messages = intake.split(event)
    except RejectedError:
        return
    for message in messages:
        try:
            request = intake.parse(message)
        except RejectedError:
            continue
        if request.source is Source.ALARM and request.occurred_at is not None:
            # intake admits only CloudWatch's states (ALARM_STATES)
            state = cast("StateValueType", request.state)
            agree_alarm(clients, request.requested_by, state, request.occurred_at)
