"""Each remediator's IAM statements, computed in one place: the action's declared
``permissions`` on ``resources(target)`` of every route the configuration gives it (alarms,
budgets, inventory), grouped by service, plus what a route's parameters name (a log group).

``grants`` is what ``AutoRemediation`` hands ``Remediators``; ``grant`` turns one role's
statements into managed policies sized for IAM, each wildcard acknowledged for cdk-nag with
its reason. Nothing else in the app decides what a remediator may do to a target.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Arn, ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from serverless_remediation.remediation.scope import Deployment
from serverless_remediation.stacks.catalog import REVERT, WAF_BLOCK, Catalog, declared_resources
from serverless_remediation.stacks.config import ConfigError, Route
from serverless_remediation.stacks.constructs.nag import acknowledge

#: IAM actions AWS offers no resource-level scoping for: "*" is the only valid resource
#: (service authorization reference: no resource type listed for them)
UNSCOPABLE = frozenset(
    {
        "logs:GetQueryResults",
        "logs:StopQuery",
        "logs:DescribeQueries",
        "application-autoscaling:DescribeScalableTargets",
        "ecs:DescribeTaskDefinition",
        "ecs:ListTaskDefinitions",
    }
)
#: IAM counts at most 6,144 characters per managed policy (whitespace excluded); keep room
POLICY_BUDGET = 5_000
#: managed policies one role may carry (IAM's default quota)
MAX_POLICIES_PER_ROLE = 10


# -- which actions get a remediator --------------------------------------------------------


def routed_actions(catalog: Catalog, registered: Sequence[str]) -> list[str]:
    """The registered actions some route names (alarm, budget or inventory), and ``revert``
    when any other is there (it undoes their records). An action nothing routes to could act
    on nothing: it gets no function, role or topic."""
    used = {r.action for r in (*_alarm_routes(catalog), *catalog.inventory)}
    used &= set(registered)
    if REVERT in registered and used - {REVERT}:
        used.add(REVERT)
    return sorted(used)


def alarmed_actions(catalog: Catalog) -> list[str]:
    """The actions an alarm or a budget notifies: the ones that need an alarm topic."""
    return sorted({r.action for r in _alarm_routes(catalog)})


def _alarm_routes(catalog: Catalog) -> list[Route]:
    return [*(a.route for a in catalog.alarms), *(b.route for b in catalog.budgets)]


# -- statements ---------------------------------------------------------------------------


def param_resources(route: Route, stack: Stack, deployment: Deployment) -> list[str]:
    """Resources a route's parameters name that ``resources(target)`` cannot know: the access
    log group a ``log_group`` parameter points a query at (and its streams)."""
    name = route.params.get("log_group")
    if not isinstance(name, str) or not name:
        return []
    arn = stack.format_arn(
        partition=deployment.partition,
        region=deployment.region,
        account=deployment.account,
        service="logs",
        resource="log-group",
        resource_name=name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    return [arn, f"{arn}:*"]


def service_of(arn: str) -> str:
    """The service of a resource ARN (any partition); "*" for the unscoped resource."""
    if arn == "*":
        return "*"
    return Arn.split(arn, ArnFormat.NO_RESOURCE_NAME).service


def route_statements(
    action_cls: Any,
    action: str,
    routes: Sequence[Route],
    *,
    stack: Stack,
    deployment: Deployment,
) -> list[iam.PolicyStatement]:
    """IAM statements for ``action`` on its configured ``routes``: its declared permissions,
    grouped by service so a Lambda permission never applies to a table ARN and so on;
    permissions IAM cannot scope (``UNSCOPABLE``) on "*", when any other is granted."""
    resources: set[str] = set()
    for route in routes:
        resources.update(declared_resources(action_cls, route))
        resources.update(param_resources(route, stack, deployment))
    if not resources:
        return []
    by_arn_service: dict[str, list[str]] = {}
    for arn in sorted(resources):
        by_arn_service.setdefault(service_of(arn), []).append(arn)
    by_service: dict[str, list[str]] = {}
    for permission in action_cls.permissions:
        by_service.setdefault(permission.split(":", 1)[0], []).append(permission)
    statements = []
    for service, permissions in sorted(by_service.items()):
        scoped = sorted(p for p in permissions if p not in UNSCOPABLE)
        matching = sorted({*by_arn_service.get(service, ()), *by_arn_service.get("*", ())})
        if not scoped or not matching:
            continue  # no configured target of that service: the permission is not needed
        statements.append(
            iam.PolicyStatement(
                sid=f"{_sid(action)}{_sid(service)}", actions=scoped, resources=matching
            )
        )
    unscoped = sorted(p for p in action_cls.permissions if p in UNSCOPABLE)
    if unscoped and statements:
        statements.append(
            iam.PolicyStatement(sid=f"{_sid(action)}Unscopable", actions=unscoped, resources=["*"])
        )
    return statements


def grants(
    catalog: Catalog,
    actions: Mapping[str, Any],
    *,
    stack: Stack,
    deployment: Deployment,
) -> dict[str, list[iam.PolicyStatement]]:
    """action -> its role's target statements, for every routed action (``routed_actions``).

    ``revert`` re-runs the original action's apply/verify on its record's target: it holds
    every other action's grants (its own target is an audit id, no resource)."""
    names = routed_actions(catalog, list(actions))
    found = {
        name: route_statements(
            actions[name], name, catalog.routes(name), stack=stack, deployment=deployment
        )
        for name in names
    }
    for name in names:  # follow-up steps run in the remediator of the route that names them
        steps = catalog.followups(name)
        for step in sorted({s.action for s in steps}):
            mine = [s for s in steps if s.action == step]
            found[name] += route_statements(
                actions[step], step, mine, stack=stack, deployment=deployment
            )
    if REVERT in found:
        found[REVERT] = [
            *found[REVERT],
            *(s for name in names if name != REVERT for s in found[name]),
        ]
    return found


def sweeper_grants(found: Mapping[str, list[iam.PolicyStatement]]) -> list[iam.PolicyStatement]:
    """Expired blocks come out of the same IP sets waf-block puts them in: its wafv2
    statements, and nothing when waf-block has no route."""
    return [s for s in found.get(WAF_BLOCK, []) if all(a.startswith("wafv2:") for a in s.actions)]


# -- policies -----------------------------------------------------------------------------


def pack(
    statements: Sequence[iam.PolicyStatement], budget: int = POLICY_BUDGET
) -> list[list[iam.PolicyStatement]]:
    """Statements in policy-sized groups; a statement too big for one is split by resources.

    A role's inline policies share 10,240 characters: 150 services' target ARNs do not fit,
    so targets go into managed policies of at most ``budget`` characters each.
    """

    def size(statement: iam.PolicyStatement) -> int:
        return len(json.dumps(statement.to_json(), separators=(",", ":")))

    pieces: list[iam.PolicyStatement] = []
    for statement in statements:
        if size(statement) <= budget:
            pieces.append(statement)
            continue
        chunk: list[str] = []
        part = 0
        for arn in [*statement.resources, None]:
            probe = iam.PolicyStatement(actions=statement.actions, resources=[*chunk, arn or ""])
            if arn is None or (chunk and size(probe) > budget):
                part += 1
                pieces.append(
                    iam.PolicyStatement(
                        sid=f"{statement.sid}{part}", actions=statement.actions, resources=chunk
                    )
                )
                chunk = []
            if arn is not None:
                chunk.append(arn)
    groups: list[list[iam.PolicyStatement]] = []
    used = budget + 1
    for piece in pieces:
        if used + size(piece) > budget:
            groups.append([])
            used = 0
        groups[-1].append(piece)
        used += size(piece)
    return groups


def grant(
    scope: Construct,
    construct_id: str,
    role: iam.IRole,
    statements: Sequence[iam.PolicyStatement],
) -> list[iam.ManagedPolicy]:
    """``statements`` as managed policies on ``role``; each wildcard acknowledged with why."""
    groups = pack(statements)
    if len(groups) > MAX_POLICIES_PER_ROLE:
        raise ConfigError(
            f"{construct_id}: the targets need {len(groups)} managed policies, more than the "
            f"{MAX_POLICIES_PER_ROLE} a role may carry: split the environment"
        )
    policies = []
    for number, group in enumerate(groups, start=1):
        policy = iam.ManagedPolicy(
            scope,
            f"{construct_id}-targets-{number}",
            description=f"{construct_id}: its declared permissions on its configured targets",
            statements=group,
            roles=[role],
        )
        seen: set[str] = set()
        for statement in group:
            for arn in statement.resources:
                if "*" in arn and arn not in seen:
                    seen.add(arn)
                    acknowledge(
                        policy,
                        f"AwsSolutions::AwsSolutions-IAM5[Resource::{arn}]",
                        wildcard_reason(arn, statement.actions),
                    )
        policies.append(policy)
    return policies


def wildcard_reason(arn: str, actions: Sequence[str]) -> str:
    """Why a wildcard resource is as narrow as IAM allows (see route_statements)."""
    if arn == "*":
        return f"{', '.join(actions)}: IAM offers no resource-level permission for these"
    if ":log-group:" in arn:
        return "the log streams of one configured access-log group (Logs Insights reads them)"
    if arn.endswith("/deployments/*"):
        return "the deployments of one configured API: rollback reads them to find the previous"
    if ":function:" in arn and arn.endswith(":*"):
        return (
            "the versions and aliases of one configured function, where provisioned "
            "concurrency lives (cost-guard sheds it)"
        )
    return f"a sub-resource pattern of a configured target, declared by the action: {arn}"


def _sid(action: str) -> str:
    return "".join(part.capitalize() for part in action.split("-"))
