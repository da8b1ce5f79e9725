"""One target model: every ARN an action touches, parsed once, and ARNs built from parts.

``parse(arn, default_account=...)`` splits an ARN into partition, service, region, account,
resource type, name and qualifier, whatever the service. A route's target may hold more than
one ARN (``waf-block``: an IPv4 and an IPv6 set, joined by a comma) or name one member of a
resource (``flip-flag``: ``FUNCTION_ARN#VARIABLE``): ``parse_all`` handles both.

API Gateway ARNs carry no account (``arn:PARTITION:apigateway:REGION::/restapis/ID/...``): an API
belongs to the account that calls it, so its account is ``default_account``, the
deployment's own.

No ARN here or anywhere else is written with a literal partition: aws-cn and aws-us-gov are
partitions too. ``build`` takes the partition; ``partition_of(region)`` derives it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import RejectedError

_ARN = re.compile(
    r"^arn:(?P<partition>aws(?:-[a-z]+)*):(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):"
    r"(?P<account>\d{12}|):(?P<resource>.+)$"
)
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d$")
#: services whose resources are global: their ARNs carry no region
#: (``arn:PARTITION:cloudfront::ACCOUNT:distribution/ID``)
GLOBAL_SERVICES = frozenset({"iam", "cloudfront"})
#: partitions by region prefix; everything else is the commercial partition ``aws``
_PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-iso-", "aws-iso"))


def partition_of(region: str) -> str:
    """The partition a region belongs to (``cn-north-1`` -> ``aws-cn``)."""
    for prefix, partition in _PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"


def build(partition: str, service: str, region: str, account: str, resource: str) -> str:
    """An ARN from its parts: ``arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE``."""
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


@dataclass(frozen=True)
class Target:
    """One parsed ARN.

    ``resource_type``/``name``/``qualifier`` by service:

    - lambda ``function:NAME[:QUALIFIER]`` -> ``function``, NAME, alias or version (``*`` for
      "every function": ``function:*``);
    - dynamodb ``table/NAME`` -> ``table``, NAME;
    - ssm ``parameter/NAME`` -> ``parameter``, the parameter name (``/a/b`` or ``flat``);
    - apigateway ``/restapis/ID/stages/S`` -> ``restapis``, ID, S (``apis`` for HTTP APIs);
    - wafv2 ``regional|global/ipset/NAME/ID`` -> ``ipset``, NAME, ID (``scope`` REGIONAL or
      CLOUDFRONT);
    - cloudwatch ``alarm:NAME`` -> ``alarm``, NAME;
    - sqs ``QUEUE_NAME`` -> ``queue``, QUEUE_NAME;
    - cloudfront ``distribution/ID`` -> ``distribution``, ID (global: ``region`` is "");
    - wafv2 ``regional|global/webacl/NAME/ID`` -> ``webacl``, NAME, ID (as IP sets);
    - rds ``cluster:NAME`` -> ``cluster``, NAME;
    - ecs ``service/CLUSTER/SERVICE`` -> ``service``, SERVICE, CLUSTER;
    - anything else: the resource's first segment and the rest.

    ``member`` is what follows a ``#`` (a flag's variable), ``account_implied`` is true when
    the ARN carries no account and ``account`` is the deployment's.
    """

    arn: str
    partition: str
    service: str
    region: str
    account: str
    resource_type: str
    name: str
    qualifier: str | None = None
    member: str | None = None
    scope: str | None = None
    account_implied: bool = False

    def describe(self) -> str:
        return f"{self.service} {self.resource_type} {self.name} ({self.account}, {self.region})"


def parse(arn: str, *, default_account: str = "") -> Target:
    """An ARN (optionally ``ARN#member``) -> ``Target``; ``RejectedError`` if it is none."""
    text, _, member = arn.partition("#")
    found = _ARN.match(text)
    if found is None:
        raise RejectedError(f"not an ARN: {arn[:200]!r}")
    partition, service, region, account, resource = found.group(
        "partition", "service", "region", "account", "resource"
    )
    implied = False
    if service == "apigateway" and not account:
        account, implied = default_account, True
    if not account:
        raise RejectedError(f"ARN names no account: {arn[:200]!r}")
    if service in GLOBAL_SERVICES:
        if region:  # a global resource's ARN has no region: one that names one is forged
            raise RejectedError(f"a {service} ARN names no region: {arn[:200]!r}")
    elif not _REGION.match(region):
        raise RejectedError(f"ARN names no region: {arn[:200]!r}")
    kind, name, qualifier, scope = _resource(service, resource, arn)
    return Target(
        arn=arn,
        partition=partition,
        service=service,
        region=region,
        account=account,
        resource_type=kind,
        name=name,
        qualifier=qualifier,
        member=member or None,
        scope=scope,
        account_implied=implied,
    )


def parse_all(target: str, *, default_account: str = "") -> list[Target]:
    """Every ARN in a route's target (comma-separated for multi-ARN targets)."""
    parts = [p.strip() for p in target.split(",")]
    if not all(parts):
        raise RejectedError(f"empty ARN in target {target[:200]!r}")
    return [parse(p, default_account=default_account) for p in parts]


def _resource(service: str, resource: str, arn: str) -> tuple[str, str, str | None, str | None]:
    """(resource type, name, qualifier, scope) of an ARN's resource part."""
    if service == "apigateway":
        path = resource.strip("/").split("/")
        # /restapis/ID[/stages/S] or /apis/ID[/stages/S]
        if len(path) >= 2 and path[0] in ("restapis", "apis"):
            stage = path[3] if len(path) >= 4 and path[2] == "stages" else None
            return path[0], path[1], stage, None
        return path[0], "/".join(path[1:]), None, None
    if service == "wafv2":
        path = resource.split("/")
        if len(path) == 4 and path[0] in ("regional", "global"):
            scope = "REGIONAL" if path[0] == "regional" else "CLOUDFRONT"
            return path[1], path[2], path[3], scope
        raise RejectedError(f"not a WAFv2 resource ARN: {arn[:200]!r}")
    if service == "lambda":
        pieces = resource.split(":")
        if pieces[0] == "function" and 2 <= len(pieces) <= 3 and pieces[1]:
            return "function", pieces[1], pieces[2] if len(pieces) == 3 else None, None
        return pieces[0], ":".join(pieces[1:]), None, None
    if service == "cloudwatch" and resource.startswith("alarm:"):
        # Alarm names may hold any printable character, "/" and ":" included.
        return "alarm", resource[len("alarm:") :], None, None
    if service == "sqs" and ":" not in resource and "/" not in resource:
        # arn:PARTITION:sqs:REGION:ACCOUNT:QUEUE_NAME
        return "queue", resource, None, None
    if service == "rds" and resource.startswith("cluster:"):
        # arn:PARTITION:rds:REGION:ACCOUNT:cluster:NAME (an Aurora or Multi-AZ DB cluster)
        return "cluster", resource[len("cluster:") :], None, None
    if service == "ecs" and resource.startswith("service/"):
        # arn:PARTITION:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE; the old format without
        # the cluster cannot say which cluster to call, so it is refused.
        path = resource.split("/")
        if len(path) != 3 or not all(path):
            raise RejectedError(f"not an ECS service ARN with its cluster: {arn[:200]!r}")
        return "service", path[2], path[1], None
    if service == "ssm" and resource.startswith("parameter/"):
        name = resource[len("parameter/") :]
        return "parameter", f"/{name}" if "/" in name else name, None, None
    for separator in ("/", ":"):
        kind, sep, rest = resource.partition(separator)
        if sep:
            return kind, rest, None, None
    return resource, "", None, None
