"""Least privilege, computed from synthesized CloudFormation templates.

For every Lambda function the app deploys (the remediators and the WAF sweeper): each
(action, resource) pair its role allows must be either one of the pipeline's own needs on
the suite's own resources (its log group, the audit table, its switch parameters, the notice
topic, the key, the dead-letter queue, and ``cloudwatch:DescribeAlarms`` on the environment's
own alarms, to confirm each alarm at its source) or one of its action's declared
``permissions`` on a resource the action's ``resources(target)`` names for a target in the
bundled playbook.
For every topic and key: nothing outside the account may publish (or encrypt to publish).

Pure: templates and a playbook in, findings (strings) out. The expected sets are computed
here from the action registry, not read from the CDK code under test.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.approvals import Policy
from serverless_remediation.remediation.audit import TARGET_INDEX
from serverless_remediation.remediation.decisions import chat_identity
from serverless_remediation.remediation.targets import build, partition_of

# IAM actions with no resource-level permission ("*" only): an AWS fact from the service
# authorization reference, not a CDK choice, so the app's one list is used here too
from serverless_remediation.stacks.constructs.permissions import UNSCOPABLE

#: the pipeline's own calls (audit, guards and transitions in one table; switch; notices);
#: its transactions are authorized as the item actions they hold
TABLE_ACTIONS = frozenset(
    f"dynamodb:{op}"
    for op in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "Query")
)
LOG_ACTIONS = frozenset({"logs:CreateLogStream", "logs:PutLogEvents"})
KEY_ACTIONS = frozenset({"kms:Decrypt", "kms:GenerateDataKey"})
#: the pipeline reads each alarm back before acting (remediation.confirm)
CONFIRM_ACTION = "cloudwatch:DescribeAlarms"
#: the AWS services that may publish alarms and budget notices into the suite (and, from
#: the environment's own rules, dead letters to its encrypted queue)
PUBLISHERS = frozenset(
    {"cloudwatch.amazonaws.com", "budgets.amazonaws.com", "events.amazonaws.com"}
)
#: what a hub's remediator may do with its spokes' roles of its own kind
ASSUME_ACTIONS = ("sts:AssumeRole", "sts:TagSession")
SWEEPER_HANDLER = "remediation.sweeper.lambda_handler"
DECIDER_HANDLER = "remediation.decisions.lambda_handler"
#: the chat buttons' function reads approvals and records a refused press
DECIDER_TABLE_ACTIONS = frozenset({"dynamodb:GetItem", "dynamodb:PutItem"})


@dataclass
class Report:
    findings: list[str] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def render(value: Any, account: str, region: str) -> str:
    """A CloudFormation value as text: ``${Logical}`` / ``${Logical.Attr}`` for references."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind == "Ref":
            pseudo = {
                "AWS::Partition": partition_of(region),
                "AWS::AccountId": account,
                "AWS::Region": region,
            }
            return pseudo.get(arg, f"${{{arg}}}")
        if kind == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if kind == "Fn::Join":
            return arg[0].join(render(part, account, region) for part in arg[1])
        if kind == "Fn::Sub" and isinstance(arg, str):
            return (
                arg.replace("${AWS::Partition}", partition_of(region))
                .replace("${AWS::AccountId}", account)
                .replace("${AWS::Region}", region)
            )
    return f"<unresolved {value!r}>"


def listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def declared_resources(action: str, route: Mapping[str, Any]) -> list[str]:
    cls = REGISTRY[action]
    target, params = route["target"], dict(route.get("params") or {})
    if len(inspect.signature(cls.resources).parameters) >= 2:
        found = list(cls.resources(target, params))
    else:
        found = list(cls.resources(target))
    log_group = params.get("log_group")
    if isinstance(log_group, str) and log_group:  # the access logs a query reads
        arn = log_group_arn(target, log_group)
        found += [arn, f"{arn}:*"]
    return found


def log_group_arn(target: str, name: str) -> str:
    parts = target.split(":")
    return build(parts[1], "logs", parts[3], parts[4], f"log-group:{name}")


def routes(playbook: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(the action whose remediator runs it, route): each alarm, budget and inventory route,
    and each follow-up step (``then``), which runs in its main route's remediator."""
    for route in (
        *playbook.get("alarms", {}).values(),
        *playbook.get("budgets", {}).values(),
        *playbook.get("inventory", []),
    ):
        yield route["action"], route
        for step in route.get("then") or ():
            yield route["action"], step


def allowed_for(actions: set[str], playbook: Mapping[str, Any]) -> dict[str, set[str]]:
    """IAM action -> resources allowed, from the declared permissions and the playbook."""
    allowed: dict[str, set[str]] = {}
    for runner, route in routes(playbook):
        if runner not in actions:
            continue
        resources = declared_resources(route["action"], route)
        for permission in REGISTRY[route["action"]].permissions:
            service = permission.split(":", 1)[0]
            if permission in UNSCOPABLE:
                allowed.setdefault(permission, set()).add("*")
                continue
            allowed.setdefault(permission, set()).update(
                arn for arn in resources if arn.split(":")[2] == service
            )
    return allowed


def alarm_arns(
    playbook: Mapping[str, Any], account: str, region: str, prefix: str | None
) -> set[str]:
    """The environment's own alarms: each playbook alarm, and ``PREFIX-*`` when the
    environment's name prefix is given (every alarm the app makes carries it), in the
    environment's region and in each region a target of the playbook lives in (a
    CLOUDFRONT-scope web ACL's ``global`` ARN names us-east-1, where its alarm is)."""
    partition = partition_of(region)
    regions = {region} | {
        arn.split(":")[3]
        for _, route in routes(playbook)
        for arn in [str(route.get("target", ""))]
        if arn.startswith("arn:") and arn.split(":")[3]
    }
    found = set()
    for where in regions:
        found |= {
            build(partition, "cloudwatch", where, account, f"alarm:{name}")
            for name in playbook.get("alarms", {})
        }
        if prefix:
            found.add(build(partition, "cloudwatch", where, account, f"alarm:{prefix}-*"))
    return found


@dataclass(frozen=True)
class Spoke:
    """A hub's spoke stack, as the check needs it."""

    account: str
    region: str
    #: the suite's alarms in that account, one pattern per region it is enrolled in
    alarms: frozenset[str]
    #: the organization a spoke role's trust must require (None: none configured)
    organization_id: str | None = None


def own_routes(playbook: Mapping[str, Any], account: str | None) -> dict[str, Any]:
    """The playbook's routes of ``account`` (None: the hub's own, naming no account)."""
    return {
        "alarms": {n: r for n, r in playbook.get("alarms", {}).items()
                   if r.get("account") == account},
        "budgets": {n: r for n, r in playbook.get("budgets", {}).items()
                    if r.get("account") == account},
        "inventory": [r for r in playbook.get("inventory", []) if r.get("account") == account],
    }  # fmt: skip


def check(
    templates: Mapping[str, Mapping[str, Any]],
    playbook: Mapping[str, Any],
    *,
    account: str,
    region: str,
    alarm_prefix: str | None = None,
    spokes: Mapping[str, Spoke] | None = None,
) -> Report:
    """``spokes``: a hub's spoke stacks by stack name. A hub's own remediators are checked
    against its own routes only: a spoke's targets are reached through the spoke's roles."""
    report = Report()
    alarms = alarm_arns(playbook, account, region, alarm_prefix)
    hub_book = {**playbook, **own_routes(playbook, None)} if spokes else playbook
    for stack, template in templates.items():
        resources = template.get("Resources", {})
        if stack in (spokes or {}):
            where = spokes[stack]  # type: ignore[index]
            _check_spoke_roles(report, stack, resources, playbook, account, where, alarm_prefix)
            continue
        _check_roles(
            report, stack, resources, hub_book, account, region, alarms, alarm_prefix,
            every_route=playbook,
        )  # fmt: skip
        _check_topics(report, stack, resources, account, region)
        _check_keys(report, stack, resources, account)
        _check_invoke_permissions(report, stack, resources, account, region)
    return report


def _of_type(resources: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in resources.items() if v.get("Type") == kind}


def _check_roles(
    report, stack, resources, playbook, account, region, alarms, env_prefix, every_route=None
) -> None:
    """``playbook``: the routes this deployment's own roles act on; ``every_route``: with a
    hub's spoke routes too (which spoke roles each may assume)."""
    r = lambda value: render(value, account, region)  # noqa: E731
    tables = _of_type(resources, "AWS::DynamoDB::Table")
    keys = _of_type(resources, "AWS::KMS::Key")
    parameters = _of_type(resources, "AWS::SSM::Parameter")
    policies = {
        **_of_type(resources, "AWS::IAM::Policy"),
        **_of_type(resources, "AWS::IAM::ManagedPolicy"),
    }
    roles_seen: set[str] = set()
    for name, fn in _of_type(resources, "AWS::Lambda::Function").items():
        props = fn["Properties"]
        role_ref = props.get("Role", {})
        role = role_ref.get("Fn::GetAtt", [None])[0] if isinstance(role_ref, dict) else None
        where = f"{stack}/{name}"
        if role not in resources:
            report.findings.append(f"{where}: role is not one of this stack's roles ({role_ref})")
            continue
        roles_seen.add(role)
        variables = props.get("Environment", {}).get("Variables", {})
        if props.get("Handler") == DECIDER_HANDLER:
            _check_decider(
                report, where, resources, role, props, tables, policies, playbook, env_prefix, r
            )
            continue
        if props.get("Handler") == SWEEPER_HANDLER:
            actions = {"waf-block"}
        else:
            actions = {a.strip() for a in variables.get("REMEDIATION_ACTIONS", "").split(",") if a}
        runs = set(actions)
        if "revert" in actions:  # revert re-applies any other action's change: it may all
            actions |= set(REGISTRY)
        unknown = actions - set(REGISTRY)
        if not actions or unknown:
            report.findings.append(f"{where}: runs no known action ({sorted(unknown)})")
            continue
        allowed = allowed_for(actions, playbook)
        own: dict[str, set[str]] = {a: set() for a in TABLE_ACTIONS | LOG_ACTIONS | KEY_ACTIONS}
        for table in tables:
            own_table = {f"${{{table}.Arn}}", f"${{{table}.Arn}}/index/{TARGET_INDEX}"}
            for a in TABLE_ACTIONS:
                own[a] |= own_table
        for key in keys:
            for a in KEY_ACTIONS:
                own[a].add(f"${{{key}.Arn}}")
        log_group = props.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
        for a in LOG_ACTIONS:
            own[a].add(f"${{{log_group}.Arn}}")
        dlq = r(props.get("DeadLetterConfig", {}).get("TargetArn", ""))
        own["sqs:SendMessage"] = {dlq} if dlq else set()
        own["sns:Publish"] = {r(variables.get("NOTICE_TOPIC_ARN", ""))}
        own[CONFIRM_ACTION] = set(alarms)
        prefix = variables.get("SWITCH_OVERRIDE_PREFIX", "")
        ssm_arn = build(partition_of(region), "ssm", region, account, "parameter")
        own["ssm:GetParameter"] = {f"{ssm_arn}${{{p}}}" for p in parameters} | {
            f"{ssm_arn}{prefix}{a}" for a in actions if prefix
        }
        # a hub's: its per-account switches, and its spokes' roles of its own kind
        spokes = playbook.get("spokes", {})
        per_account = variables.get("SWITCH_ACCOUNT_PREFIX", "")
        if per_account:
            own["ssm:GetParameter"] |= {f"{ssm_arn}{per_account}{a}" for a in {account, *spokes}}
        role_prefix = variables.get("SPOKE_ROLE_PREFIX", "")
        for a in ASSUME_ACTIONS:
            own[a] = spoke_roles(every_route or playbook, runs, role_prefix, partition_of(region))
        for place, statement in _role_statements(report, where, resources, role, policies):
            _check_statement(report, place, statement, own, allowed, r)


def spoke_roles(
    playbook: Mapping[str, Any], runs: set[str], role_prefix: str, partition: str
) -> set[str]:
    """The spoke roles a hub's remediator running ``runs`` may assume: its own kind's, in
    each spoke account a route of its kind names (revert: each spoke account at all)."""
    if not role_prefix:
        return set()
    found = set()
    for runner, route in routes(playbook):
        account = route.get("account")
        if account and (runner in runs or "revert" in runs):
            for kind in runs:
                found.add(f"arn:{partition}:iam::{account}:role/{role_prefix}{kind}")
    return found


def _check_spoke_roles(report, stack, resources, playbook, hub, where: Spoke, env_prefix) -> None:
    """A spoke's roles: each trusted only by the hub's remediator role of its kind (inside
    the organization, when one is named), allowing only its kind's declared permissions on
    the routes of this spoke's account (revert: every kind's), and reading the spoke's own
    alarms."""
    account, region = where.account, where.region
    r = lambda value: render(value, account, region)  # noqa: E731
    policies = {
        **_of_type(resources, "AWS::IAM::Policy"),
        **_of_type(resources, "AWS::IAM::ManagedPolicy"),
    }
    partition = partition_of(region)
    mine = own_routes(playbook, account)
    in_org = (
        {"StringEquals": {"aws:PrincipalOrgID": where.organization_id}}
        if where.organization_id
        else None
    )
    for name, role in _of_type(resources, "AWS::IAM::Role").items():
        props = role["Properties"]
        trust = props.get("AssumeRolePolicyDocument", {}).get("Statement", [])
        principals = [s.get("Principal", {}) for s in trust]
        if principals == [{"Service": "events.amazonaws.com"}]:  # the forwarding rule's
            for place, statement in _role_statements(report, f"{stack}/{name}", resources, name,
                                                     policies):  # fmt: skip
                for action in listed(statement.get("Action", [])):
                    report.counts["grants"] += 1
                    if action != "events:PutEvents":
                        report.findings.append(f"{place}: the forwarding role allows {action}")
            continue
        role_name = str(props.get("RoleName", ""))
        kind = role_name.removeprefix(f"{env_prefix}-spoke-")
        if kind not in REGISTRY:
            report.findings.append(f"{stack}/{name}: a role that is no action's ({role_name})")
            continue
        report.counts["spoke_roles"] += 1
        expected = {"AWS": f"arn:{partition}:iam::{hub}:role/{env_prefix}-{kind}"}
        for statement in trust:
            if statement.get("Principal") != expected or statement.get("Effect") != "Allow":
                report.findings.append(
                    f"{stack}/{name}: trusts {statement.get('Principal')}, not only {expected}"
                )
            if set(listed(statement.get("Action", []))) - set(ASSUME_ACTIONS):
                report.findings.append(f"{stack}/{name}: its trust allows more than assuming")
            if statement.get("Condition") != in_org:
                report.findings.append(
                    f"{stack}/{name}: its trust's condition is {statement.get('Condition')}, "
                    f"not {in_org}"
                )
        runs = set(REGISTRY) if kind == "revert" else {kind}
        allowed = allowed_for(runs if kind != "revert" else {*REGISTRY}, mine)
        own = {CONFIRM_ACTION: set(where.alarms)}
        for place, statement in _role_statements(report, f"{stack}/{name}", resources, name,
                                                 policies):  # fmt: skip
            _check_statement(report, place, statement, own, allowed, r)


def _role_statements(report, where, resources, role, policies):
    """(where, statement) of every policy attached to ``role``, counted; a role that also
    carries policies of its own (managed or inline on the role) is a finding."""
    role_props = resources[role].get("Properties", {})
    if role_props.get("ManagedPolicyArns") or role_props.get("Policies"):
        report.findings.append(f"{where}: role carries policies not checked here")
    report.counts["roles"] += 1
    for policy_name, policy in policies.items():
        if {"Ref": role} not in policy["Properties"].get("Roles", []):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            report.counts["statements"] += 1
            yield f"{where} {policy_name}", statement


def _check_decider(
    report, where, resources, role, props, tables, policies, playbook, env_prefix, r
) -> None:
    """The chat's entry point: its log group, the audit table (read approvals, write audit
    records: each statement keyed to those partitions), and invoking the remediators of the
    routes that wait for approval and the revert remediator; nothing else, and no other
    policy on its role."""
    own: dict[str, set[str]] = {a: set() for a in DECIDER_TABLE_ACTIONS | LOG_ACTIONS}
    for table in tables:
        for a in DECIDER_TABLE_ACTIONS:
            own[a].add(f"${{{table}.Arn}}")
    log_group = props.get("LoggingConfig", {}).get("LogGroup", {}).get("Ref")
    for a in LOG_ACTIONS:
        own[a].add(f"${{{log_group}.Arn}}")
    # the remediators of the routes that wait for approval, and revert where the approvers
    # admit the channel (chat reverts)
    asking = {run for run, route in routes(playbook) if route.get("mode") == "approve"}
    people = Policy.from_dict(playbook.get("people"))
    if people.may_decide(chat_identity(env_prefix or "")):
        asking.add("revert")
    own["lambda:InvokeFunction"] = {
        f"${{{name}.Arn}}"
        for name, fn in _of_type(resources, "AWS::Lambda::Function").items()
        if asking
        & set(fn["Properties"].get("Environment", {}).get("Variables", {})
              .get("REMEDIATION_ACTIONS", "").split(","))
    }  # fmt: skip
    report.counts["deciders"] += 1
    for place, statement in _role_statements(report, where, resources, role, policies):
        table_actions = set(listed(statement.get("Action", []))) & DECIDER_TABLE_ACTIONS
        if table_actions and "dynamodb:LeadingKeys" not in json.dumps(
            statement.get("Condition", {})
        ):
            report.findings.append(
                f"{place}: {sorted(table_actions)} on every partition "
                "(no dynamodb:LeadingKeys condition)"
            )
        _check_statement(report, place, statement, own, {}, r)


def _check_statement(report, where, statement, own, allowed, r) -> None:
    if statement.get("Effect") != "Allow":
        return
    if "NotAction" in statement or "NotResource" in statement:
        report.findings.append(f"{where}: NotAction/NotResource allows too much")
        return
    for action in listed(statement.get("Action", [])):
        for resource in (r(x) for x in listed(statement.get("Resource", []))):
            report.counts["grants"] += 1
            if resource in own.get(action, ()) or resource in allowed.get(action, ()):
                continue
            why = (
                "not a declared permission"
                if action not in own and action not in allowed
                else ("resource outside its targets")
            )
            report.findings.append(f"{where}: allows {action} on {resource}: {why}")


def _same_account(condition: Mapping[str, Any], account: str) -> bool:
    for operator, tests in (condition or {}).items():
        if not operator.startswith(("StringEquals", "ArnEquals", "ArnLike", "StringLike")):
            continue
        for key, value in tests.items():
            values = [str(v) for v in listed(value)]
            account_keys = {"aws:sourceaccount", "aws:sourceowner", "aws:principalaccount"}
            if key.lower() in account_keys and values and all(v == account for v in values):
                return True
            if (
                key.lower() == "aws:sourcearn"
                and values
                and all(v.split(":")[4:5] == [account] for v in values)
            ):
                return True
    return False


def _principal_ok(principal: Any, condition: Any, account: str, r) -> bool:
    """True when only this account (or its alarms and budgets) can be the principal."""
    if principal == "*" or principal == {"AWS": "*"}:
        return _same_account(condition, account)
    for kind, values in principal.items():
        for value in (r(v) for v in listed(values)):
            if kind == "Service":
                if value not in PUBLISHERS or not _same_account(condition, account):
                    return False
            elif kind == "AWS":
                if value not in {account, f"arn:aws:iam::{account}:root"}:
                    return False
            else:
                return False
    return True


def _check_topics(report, stack, resources, account, region) -> None:
    r = lambda value: render(value, account, region)  # noqa: E731
    topic_policies = _of_type(resources, "AWS::SNS::TopicPolicy")
    for topic in _of_type(resources, "AWS::SNS::Topic"):
        report.counts["topics"] += 1
        for name, policy in topic_policies.items():
            if {"Ref": topic} not in policy["Properties"].get("Topics", []):
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = {a.lower() for a in listed(statement.get("Action", []))}
                publishes = actions & {"sns:publish", "sns:*", "*"}
                if statement.get("Effect") != "Allow" or not publishes:
                    continue
                if not _principal_ok(
                    statement.get("Principal", "*"), statement.get("Condition"), account, r
                ):
                    report.findings.append(
                        f"{stack}/{topic}: {name} lets {statement.get('Principal')} publish "
                        "from outside the account"
                    )


def _check_keys(report, stack, resources, account) -> None:
    r = lambda value: render(value, account, "")  # noqa: E731
    for name, key in _of_type(resources, "AWS::KMS::Key").items():
        for statement in key["Properties"].get("KeyPolicy", {}).get("Statement", []):
            if statement.get("Effect") != "Allow":
                continue
            if not _principal_ok(
                statement.get("Principal", "*"), statement.get("Condition"), account, r
            ):
                report.findings.append(
                    f"{stack}/{name}: key policy lets {statement.get('Principal')} use the key "
                    "from outside the account"
                )


def _check_invoke_permissions(report, stack, resources, account, region) -> None:
    for name, permission in _of_type(resources, "AWS::Lambda::Permission").items():
        props = permission["Properties"]
        source = props.get("SourceArn")
        ref = source.get("Ref") if isinstance(source, dict) else None
        getatt = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
        local = ref in resources or getatt in resources
        in_account = isinstance(source, str) and source.split(":")[4:5] == [account]
        if not (local or in_account or props.get("SourceAccount") == account):
            report.findings.append(f"{stack}/{name}: anyone's {props.get('Principal')} may invoke")
