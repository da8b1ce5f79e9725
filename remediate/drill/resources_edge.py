"""Drill resource kinds for the edge actions (api-cache, containment, cdn-invalidate):
CloudFront distributions, WAFv2 web ACLs and REST stage caches on the emulator, registered
with ``remediate.drill.kinds`` (the world imports this module).

Scenario keys (``resources.KIND.NAME``) and what ``expect.state`` can check::

    resources:
      distributions:
        E2CATALOGCDN: {in_progress: 0}     # invalidations already running
      web_acls:
        edge-acl: {id: ..., scope: REGIONAL, default: Allow}
      stage_caches:
        c5d6e7f8g9: {stage: prod, enabled: false, size: 0.5}   # a REST API id

``distributions.ID.invalidations`` (each invalidation's paths, oldest first, the busy ones
left out), ``web_acls.NAME.{default, rules}`` (an update must keep the rules),
``stage_caches.API_ID.{enabled, size}``. Distributions and web ACLs come from the routes
that name them (follow-up steps too); a stage cache is watched when a scenario names it.

moto makes random ids; a config names fixed ones: ids are pinned in moto's memory (the
emulator runs in this process), as ``emulator.create_ip_set`` does for IP sets.
"""

from __future__ import annotations

from typing import Any

from serverless_remediation.remediate import emulator as emu
from serverless_remediation.remediate.drill import kinds
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.targets import Target

Spec = dict[str, Any]


# -- create -------------------------------------------------------------------------------


def _set_cache(clients: Clients, api_id: str, spec: Spec) -> None:
    if spec.get("enabled"):
        size = f"{float(spec.get('size', 0.5)):g}"
        clients("apigateway").update_stage(
            restApiId=api_id,
            stageName=spec.get("stage", "prod"),
            patchOperations=[
                {"op": "replace", "path": "/cacheClusterEnabled", "value": "true"},
                {"op": "replace", "path": "/cacheClusterSize", "value": size},
            ],
        )


def create_distribution(clients: Any, distribution_id: str, in_progress: int = 0) -> str:
    """A CloudFront distribution with id ``distribution_id``; ``in_progress`` invalidations
    already running. Returns its ARN."""
    from moto.cloudfront.models import cloudfront_backends

    made = clients("cloudfront").create_distribution(
        DistributionConfig={
            "CallerReference": f"drill-{distribution_id}",
            "Comment": "drill",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "origin",
                        "DomainName": "origin.example.com",
                        "CustomOriginConfig": {
                            "HTTPPort": 80,
                            "HTTPSPort": 443,
                            "OriginProtocolPolicy": "https-only",
                        },
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "origin",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",
            },
        }
    )["Distribution"]
    if not emu.in_process(clients):  # its id cannot be pinned: moto's own
        return str(made["ARN"])
    account = clients("sts").get_caller_identity()["Account"]
    backend = cloudfront_backends[account]["aws"]
    dist = backend.distributions.pop(made["Id"])
    dist.distribution_id = dist.id = distribution_id
    dist.arn = made["ARN"].rsplit("/", 1)[0] + f"/{distribution_id}"
    backend.distributions[distribution_id] = dist
    for n in range(in_progress):
        invalidation = backend.create_invalidation(distribution_id, [f"/busy-{n}"], f"busy-{n}")
        invalidation.status = "InProgress"
    return str(dist.arn)


def create_web_acl(
    clients: Any, name: str, acl_id: str | None, scope: str, spec: dict[str, Any]
) -> str:
    """A WAFv2 web ACL with one rule and the spec's default action; ``acl_id`` pinned."""
    from moto.wafv2.models import WAFV2Backend

    original = WAFV2Backend._generate_id
    if acl_id and emu.in_process(clients):  # a moto in another process keeps its own ids
        WAFV2Backend._generate_id = lambda self: acl_id  # type: ignore[method-assign]
    visibility = {
        "SampledRequestsEnabled": True,
        "CloudWatchMetricsEnabled": True,
        "MetricName": name,
    }
    try:
        made = clients("wafv2").create_web_acl(
            Name=name,
            Scope=scope,
            DefaultAction={str(spec.get("default", "Allow")): {}},
            Description="drill web ACL",
            Rules=[
                {
                    "Name": "rate-limit",
                    "Priority": 1,
                    "Statement": {"RateBasedStatement": {"Limit": 1000, "AggregateKeyType": "IP"}},
                    "Action": {"Block": {}},
                    "VisibilityConfig": {**visibility, "MetricName": "rate-limit"},
                }
            ],
            VisibilityConfig=visibility,
        )["Summary"]
    finally:
        WAFV2Backend._generate_id = original  # type: ignore[method-assign]
    return str(made["ARN"])


# -- observe ------------------------------------------------------------------------------


def _distribution_state(clients: Clients, name: str, spec: Spec) -> dict[str, Any]:
    cloudfront = clients("cloudfront")
    items = cloudfront.list_invalidations(DistributionId=name).get("InvalidationList", {})
    found = []
    for item in items.get("Items") or []:
        got = cloudfront.get_invalidation(DistributionId=name, Id=item["Id"])["Invalidation"]
        paths = got["InvalidationBatch"]["Paths"].get("Items") or []
        if not any(p.startswith("/busy-") for p in paths):
            found.append(sorted(paths))
    return {"invalidations": found}


def _web_acl_state(clients: Clients, name: str, spec: Spec) -> dict[str, Any]:
    waf = clients("wafv2")
    scope = spec.get("scope", "REGIONAL")
    for summary in waf.list_web_acls(Scope=scope).get("WebACLs", []):
        if summary["Name"] == name:
            acl = waf.get_web_acl(Name=name, Scope=scope, Id=summary["Id"])["WebACL"]
            return {
                "default": next(iter(acl["DefaultAction"])),
                "rules": [rule["Name"] for rule in acl.get("Rules", [])],
            }
    return {"default": None, "rules": None}


def _cache_state(clients: Clients, api_id: str, spec: Spec) -> dict[str, Any]:
    found = clients("apigateway").get_stage(restApiId=api_id, stageName=spec.get("stage", "prod"))
    enabled = bool(found.get("cacheClusterEnabled"))
    return {"enabled": enabled, "size": found.get("cacheClusterSize") if enabled else None}


# -- registration -----------------------------------------------------------------------------


def _create_distribution(clients: Clients, name: str, spec: Spec) -> None:
    create_distribution(clients, name, int(spec.get("in_progress", 0)))


def _create_web_acl(clients: Clients, name: str, spec: Spec) -> None:
    create_web_acl(clients, name, spec.get("id"), spec.get("scope", "REGIONAL"), spec)


def _distribution_targets(t: Target) -> list[tuple[str, Spec]]:
    if t.service == "cloudfront" and t.resource_type == "distribution":
        return [(t.name, {})]
    return []


def _web_acl_targets(t: Target) -> list[tuple[str, Spec]]:
    if t.service == "wafv2" and t.resource_type == "webacl":
        return [(t.name, {"id": t.qualifier, "scope": t.scope or "REGIONAL"})]
    return []


DISTRIBUTIONS = kinds.register(
    kinds.ResourceKind(
        name="distributions",
        spec_keys=("in_progress",),
        state_fields=("invalidations",),
        create=_create_distribution,
        read=_distribution_state,
        targets=_distribution_targets,
    )
)
WEB_ACLS = kinds.register(
    kinds.ResourceKind(
        name="web_acls",
        spec_keys=("id", "scope", "default"),
        state_fields=("default", "rules"),
        create=_create_web_acl,
        read=_web_acl_state,
        targets=_web_acl_targets,
    )
)
STAGE_CACHES = kinds.register(
    kinds.ResourceKind(
        name="stage_caches",
        spec_keys=("stage", "enabled", "size"),
        state_fields=("enabled", "size"),
        create=_set_cache,
        read=_cache_state,
        targets=lambda t: [],
    )
)
