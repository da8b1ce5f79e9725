"""Issue 11 on the CDK side: partitions, the remediators' authority and freshness settings,
scope checked at synth, alarm confirmation permissions, topic policies against forged alarms,
alarms on the suite's own failures, the Logs Insights time budget and latency routes for
aliased functions.

The first half synthesizes nothing (config and catalog); the second reads templates.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.config import Settings
from serverless_remediation.remediation.scope import Deployment
from serverless_remediation.remediation.sweeper import SweeperSettings
from serverless_remediation.stacks import catalog
from serverless_remediation.stacks.config import ConfigError, parse_env
from serverless_remediation.stacks.constructs import permissions
from serverless_remediation.stacks.constructs.health import (
    dead_letter_alarm_name,
    errors_alarm_name,
)
from serverless_remediation.stacks.constructs.remediators import CONFIRM_ACTIONS, DECIDER_HANDLER
from tests.infra.conftest import ROOT, Synth, synthesize
from tests.infra.test_config import env

ACCOUNT = "123456789012"
OTHER = "999999999999"
WAF = {
    "kind": "waf",
    "ip_set_name": "blocked",
    "ip_set_id": "11111111-2222-3333-4444-555555555555",
    "log_group": "/access/edge",
    "metric": {"namespace": "Edge", "name": "RateLimitHits"},
}


def build(raw: dict[str, Any]) -> catalog.Catalog:
    return catalog.build(parse_env("autorem", "test", raw), REGISTRY)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# -- partitions ---------------------------------------------------------------------------


def test_no_arn_literal_of_one_partition_in_the_cdk_app() -> None:
    sources = [ROOT / "app.py", *sorted((ROOT / "stacks").rglob("*.py"))]
    assert len(sources) > 10
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sources
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "arn:aws:" in line
    ]
    assert offending == []


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_every_route_target_is_in_the_regions_partition(region: str, partition: str) -> None:
    raw = env(region=region)
    raw["services"].update(
        {
            "api": {"kind": "rest-api", "api_name": "a", "api_id": "a1", "stage": "prod"},
            "table": {"kind": "dynamodb", "table": "t"},
            "flag": {
                "kind": "webhook",
                "flag_parameter": "/flags/hook",
                "success": {"namespace": "N", "name": "S"},
                "failure": {"namespace": "N", "name": "F"},
            },
            "waf": WAF,
        }
    )
    playbook = build(raw).playbook()
    found = [r["target"] for kind in ("alarms", "budgets") for r in playbook[kind].values()]
    assert len(found) >= 7
    for target in found:
        assert target.startswith(f"arn:{partition}:"), target
        assert f":{region}:" in target, target


def test_cloudfront_scope_outside_the_aws_partition_fails_synth() -> None:
    raw = env(region="cn-north-1")
    raw["services"]["waf"] = {**WAF, "scope": "CLOUDFRONT"}
    with pytest.raises(ConfigError, match=r"services\.waf\.scope: CLOUDFRONT.*aws-cn"):
        build(raw)


# -- served regions and the remediators' authority -----------------------------------------


@pytest.mark.parametrize(
    ("region", "scope", "served"),
    [
        ("eu-west-1", "CLOUDFRONT", {"us-east-1"}),
        ("us-east-1", "CLOUDFRONT", set()),
        ("eu-west-1", "REGIONAL", set()),
    ],
)
def test_us_east_1_is_served_only_for_cloudfront_scope_elsewhere(
    region: str, scope: str, served: set[str]
) -> None:
    raw = env(region=region)
    raw["services"]["waf"] = {**WAF, "scope": scope}
    cfg = parse_env("autorem", "test", raw)
    assert catalog.served_regions(cfg) == served
    deployment = catalog.deployment(cfg)
    assert deployment == Deployment(ACCOUNT, region, "aws", frozenset(served))
    (route,) = [a.route for a in build(raw).alarms if a.route.action == "waf-block"]
    ip_set_region = "us-east-1" if scope == "CLOUDFRONT" else region
    assert route.target.startswith(f"arn:aws:wafv2:{ip_set_region}:{ACCOUNT}:")
    assert ("global/ipset/" in route.target) == (scope == "CLOUDFRONT")


def test_max_event_age_is_configurable_and_bounded() -> None:
    assert parse_env("autorem", "test", env()).guards.max_event_age_seconds == 900
    raw = env(guards={"max_event_age_seconds": 300})
    assert parse_env("autorem", "test", raw).guards.max_event_age_seconds == 300
    for bad in (59, 3601):
        with pytest.raises(ConfigError) as caught:
            parse_env("autorem", "test", env(guards={"max_event_age_seconds": bad}))
        assert str(caught.value) == (
            f"environments.test.guards.max_event_age_seconds: {bad} is out of range; allowed: "
            ">= 60 and <= 3600 (an older alarm transition is not acted on)"
        )


# -- scope at synth ------------------------------------------------------------------------

FN = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (FN.replace(ACCOUNT, OTHER), f"account {OTHER}, not {ACCOUNT}"),
        (FN.replace("eu-west-1", "eu-central-1"), "region eu-central-1, not eu-west-1"),
        (FN.replace("arn:aws:", "arn:aws-cn:"), "partition aws-cn, not aws"),
        (
            "arn:aws:apigateway:us-west-2::/restapis/a1/stages/prod",
            "region us-west-2, not eu-west-1",
        ),
    ],
)
def test_an_inventory_target_outside_the_environment_fails_synth(target: str, problem: str) -> None:
    action = "capacity-bump" if "apigateway" not in target else "rollback"
    params = {"kind": "lambda-memory"} if action == "capacity-bump" else {}
    raw = env(inventory=[{"action": action, "target": target, "params": params}])
    with pytest.raises(ConfigError) as caught:
        build(raw)
    message = str(caught.value)
    assert message.startswith("environments.test.inventory[0].target: ")
    assert problem in message
    assert "environments.test.account" in message


def test_a_route_override_into_another_account_names_its_routes_key() -> None:
    raw = env()
    raw["services"]["orders"]["routes"] = {
        "latency": {
            "action": "capacity-bump",
            "target": FN.replace(ACCOUNT, OTHER),
            "params": {"kind": "lambda-memory"},
        }
    }
    with pytest.raises(
        ConfigError,
        match=r"services\.orders\.routes\.latency \(autorem-test-orders-latency\)\.target: "
        rf".*account {OTHER}, not {ACCOUNT}",
    ):
        build(raw)


def test_only_cloudfront_ip_sets_may_live_in_the_served_extra_region() -> None:
    raw = env()
    raw["services"]["edge"] = {**WAF, "scope": "CLOUDFRONT"}
    ip_set = f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/other/{WAF['ip_set_id']}"
    ok = copy.deepcopy(raw)
    ok["inventory"] = [{"action": "waf-block", "target": ip_set, "params": {"log_group": "/x"}}]
    assert build(ok).inventory[0].target == ip_set
    # us-east-1 is served for the IP set, not for a function that happens to live there
    bad = copy.deepcopy(raw)
    bad["inventory"] = [
        {
            "action": "capacity-bump",
            "target": FN.replace("eu-west-1", "us-east-1"),
            "params": {"kind": "lambda-memory"},
        }
    ]
    with pytest.raises(ConfigError, match=r"inventory\[0\]\.target: .* is in us-east-1"):
        build(bad)


def test_revert_routes_name_audit_records_not_arns_and_pass() -> None:
    raw = env(inventory=[{"action": "revert", "target": "0123456789abcdef" * 2}])
    assert build(raw).inventory[0].action == "revert"


# -- Logs Insights time budget -------------------------------------------------------------


def test_the_default_waf_block_query_fits_the_default_timeout() -> None:
    raw = env()
    raw["services"]["waf"] = WAF
    cfg = parse_env("autorem", "test", raw)
    assert cfg.remediators.timeout_seconds == 120
    assert any(a.route.action == "waf-block" for a in catalog.build(cfg, REGISTRY).alarms)


@pytest.mark.parametrize(
    ("remediators", "params", "numbers"),
    [
        ({"timeout_seconds": 60}, {}, ("query_timeout_seconds 60 s", "= 90 s", "timeout 60 s")),
        (
            {},
            {"query_timeout_seconds": 90},
            ("query_timeout_seconds 90 s", "= 120 s", "timeout 120 s"),
        ),
    ],
)
def test_a_query_the_function_cannot_wait_for_fails_synth(
    remediators: dict, params: dict, numbers: tuple[str, ...]
) -> None:
    raw = env(remediators=remediators)
    raw["services"]["waf"] = {**WAF, "params": {"waf-block": params}}
    with pytest.raises(ConfigError) as caught:
        build(raw)
    message = str(caught.value)
    assert "services.waf (autorem-test-waf-abuse)" in message
    assert "remediators.timeout_seconds" in message
    for number in numbers:
        assert number in message


def test_inventory_waf_block_routes_are_checked_too() -> None:
    ip_set = f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset/b/{WAF['ip_set_id']}"
    params = {"log_group": "/x", "query_timeout_seconds": 100}
    raw = env(inventory=[{"action": "waf-block", "target": ip_set, "params": params}])
    with pytest.raises(ConfigError, match=r"inventory\[0\]: waf-block query_timeout_seconds 100"):
        build(raw)


# -- latency of aliased functions ----------------------------------------------------------


def _latency(raw: dict[str, Any], service: str) -> catalog.Route:
    (found,) = [a.route for a in build(raw).alarms if a.name == f"autorem-test-{service}-latency"]
    return found


def test_latency_of_a_function_without_alias_bumps_its_memory() -> None:
    raw = env(services={"plain": {"kind": "lambda", "function": "plain"}})
    route = _latency(raw, "plain")
    assert route.target == f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:plain"
    assert route.params == {"kind": "lambda-memory"}


def test_latency_of_an_aliased_function_adds_provisioned_concurrency_on_the_alias() -> None:
    route = _latency(env(), "orders")
    assert route == catalog.Route(
        "capacity-bump", f"{FN}:live", {"kind": "lambda-provisioned-concurrency"}
    )
    # the role reaches the alias (where provisioned concurrency lives)
    assert f"{FN}:live" in catalog.declared_resources(REGISTRY["capacity-bump"], route)


def test_api_latency_follows_the_alias_its_functions_service_names() -> None:
    raw = env()
    raw["services"]["api"] = {
        "kind": "http-api",
        "api_id": "h1",
        "stage": "prod",
        "function": "orders",
    }
    assert _latency(raw, "api").target == f"{FN}:live"
    # two services naming different aliases: no guess, the function itself
    raw["services"]["orders-canary"] = {"kind": "lambda", "function": "orders", "alias": "canary"}
    assert _latency(raw, "api") == catalog.Route("capacity-bump", FN, {"kind": "lambda-memory"})


def test_an_explicit_latency_route_is_kept() -> None:
    raw = env()
    raw["services"]["orders"]["routes"] = {
        "latency": {"action": "capacity-bump", "target": FN, "params": {"kind": "lambda-timeout"}}
    }
    assert _latency(raw, "orders") == catalog.Route("capacity-bump", FN, {"kind": "lambda-timeout"})


# -- the role builder ----------------------------------------------------------------------


class _Probe:
    """An action declaring permissions like capacity-bump's since issue 11: a Lambda read that
    IAM scopes to the function, and an Application Auto Scaling read it cannot scope."""

    permissions: ClassVar[tuple[str, ...]] = (
        "lambda:GetFunctionConfiguration",
        "lambda:ListAliases",
        "application-autoscaling:DescribeScalableTargets",
        "dynamodb:DescribeTable",
    )

    @classmethod
    def resources(cls, target: str, params: dict | None = None) -> list[str]:
        return [target]


def _statements(routes: list[catalog.Route]) -> list[Any]:
    from aws_cdk import App, Environment, Stack

    stack = Stack(App(), "Probe", env=Environment(account=ACCOUNT, region="eu-west-1"))
    deployment = Deployment(ACCOUNT, "eu-west-1", "aws", frozenset())
    return permissions.route_statements(_Probe, "probe", routes, stack=stack, deployment=deployment)


def test_list_aliases_is_scoped_and_describe_scalable_targets_takes_star() -> None:
    wildcard_reason = permissions.wildcard_reason
    routes = [
        catalog.Route("probe", FN),
        catalog.Route("probe", f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/t"),
    ]
    statements = {s.sid: s.to_json() for s in _statements(routes)}
    assert statements["ProbeLambda"]["Resource"] == FN
    assert set(statements["ProbeLambda"]["Action"]) == {
        "lambda:GetFunctionConfiguration",
        "lambda:ListAliases",
    }
    assert statements["ProbeUnscopable"] == {
        "Sid": "ProbeUnscopable",
        "Effect": "Allow",
        "Action": "application-autoscaling:DescribeScalableTargets",
        "Resource": "*",
    }
    assert "no resource-level permission" in wildcard_reason("*", ["x"])
    # no target of a service: none of its permissions
    only_lambda = _statements(routes[:1])
    assert all("dynamodb" not in json.dumps(s.to_json()) for s in only_lambda)


def test_registered_permissions_all_reach_a_resource_or_are_unscopable() -> None:
    """Every declared permission whose service has no target ARN of its own (a control
    plane like application-autoscaling) must be in UNSCOPABLE, or the role silently lacks it."""
    UNSCOPABLE = permissions.UNSCOPABLE

    target_services = {"lambda", "dynamodb", "ssm", "apigateway", "wafv2", "logs"}
    # capacity-bump's RegisterScalableTarget: this account's scalable targets; cdn-invalidate
    target_services |= {"application-autoscaling", "cloudfront", "rds", "ecs"}
    for name, action in REGISTRY.items():
        for permission in action.permissions:
            service = permission.split(":", 1)[0]
            assert service in target_services or permission in UNSCOPABLE, (name, permission)


# -- templates -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edge() -> Synth:
    """An environment with a CLOUDFRONT-scope WAF (served from us-east-1), with cdk-nag."""
    raw = env()
    raw["services"]["edge"] = {**WAF, "scope": "CLOUDFRONT"}
    return synthesize(parse_env("autorem", "edge", raw), nag=True)


@pytest.fixture(scope="module")
def china() -> Synth:
    raw = env(region="cn-north-1")
    raw["services"]["table"] = {"kind": "dynamodb", "table": "t"}
    return synthesize(parse_env("autorem", "china", raw))


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    """logical id -> properties of every remediator and the sweeper (not the chat buttons'
    function: it acts on nothing, see test_chat_and_paging)."""
    return {
        key: fn["Properties"]
        for key, fn in synth.resources("AWS::Lambda::Function").items()
        if fn["Properties"]["Handler"].startswith("remediation.")
        and fn["Properties"]["Handler"] != DECIDER_HANDLER
    }


def test_templates_of_another_partition_hold_no_commercial_arn(china: Synth) -> None:
    text = json.dumps(china.templates)
    assert "arn:aws-cn:lambda:cn-north-1:" in text
    assert re.findall(r"arn:aws:[^\"]{0,60}", text) == []
    for fn in _functions(china).values():
        assert fn["Environment"]["Variables"]["DEPLOYMENT_PARTITION"] == "aws-cn"


def test_remediators_and_sweeper_know_their_authority(drill: Synth, edge: Synth) -> None:
    for synth, served in ((drill, None), (edge, "us-east-1")):
        known = _functions(synth)
        functions = {
            key: fn for key, fn in synth.resources("AWS::Lambda::Function").items() if key in known
        }
        # a remediator per action the environment routes to, and the sweeper
        routed = permissions.routed_actions(synth.core.suite.catalog, list(REGISTRY))
        assert len(functions) == len(routed) + 1
        for fn in functions.values():
            props = fn["Properties"]
            variables = props["Environment"]["Variables"]
            assert variables["DEPLOYMENT_ACCOUNT"] == synth.config.account
            assert variables["DEPLOYMENT_PARTITION"] == "aws"
            assert variables["MAX_EVENT_AGE_SECONDS"] == "900"
            assert variables.get("SERVED_REGIONS") == served
            # what the function reads at cold start (Lambda sets AWS_REGION)
            environ = {k: v for k, v in variables.items() if isinstance(v, str)}
            environ.update(AWS_REGION=synth.config.region, AUDIT_TABLE="t", NOTICE_TOPIC_ARN="n")
            if props["Handler"] == "remediation.sweeper.lambda_handler":
                deployment = SweeperSettings.from_env(environ).deployment
            else:
                asset = Path(synth.app.outdir) / fn["Metadata"]["aws:asset:path"]
                environ["PLAYBOOK_PATH"] = str(asset / "playbook.json")
                settings = Settings.from_env(environ)
                assert settings.max_event_age_seconds == 900
                deployment = settings.deployment
            assert deployment == catalog.deployment(synth.config)


def test_a_cloudfront_ip_set_is_reached_in_us_east_1(edge: Synth) -> None:
    text = json.dumps(edge.core_template)
    assert f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/blocked/" in text


def test_alarms_are_confirmed_in_every_served_region(edge: Synth) -> None:
    """The scope check accepts an alarm from each served region: each must be readable."""
    confirm = [
        statement
        for body in edge.core_template["Resources"].values()
        if body["Type"] == "AWS::IAM::Policy"
        for statement in body["Properties"]["PolicyDocument"]["Statement"]
        if statement.get("Sid") == "ConfirmAlarms"
    ]
    assert confirm
    prefix = edge.config.prefix
    for statement in confirm:
        assert sorted(statement["Resource"]) == [
            f"arn:aws:cloudwatch:{region}:{ACCOUNT}:alarm:{prefix}-*"
            for region in sorted({edge.config.region, "us-east-1"})
        ]


def test_each_remediator_may_confirm_alarms_and_the_sweeper_need_not(drill: Synth) -> None:
    core = drill.core_template["Resources"]
    by_role: dict[str, list[dict]] = {}
    for body in core.values():
        if body["Type"] == "AWS::IAM::Policy":
            for role in body["Properties"]["Roles"]:
                by_role.setdefault(role["Ref"], []).extend(
                    body["Properties"]["PolicyDocument"]["Statement"]
                )
    for props in _functions(drill).values():
        statements = by_role[props["Role"]["Fn::GetAtt"][0]]
        confirm = [s for s in statements if s.get("Sid") == "ConfirmAlarms"]
        if props["Handler"] == "remediation.sweeper.lambda_handler":
            assert confirm == []
            continue
        (statement,) = confirm
        assert _list(statement["Action"]) == list(CONFIRM_ACTIONS)
        cfg = drill.config
        # Only this environment's alarms (their names share its prefix), not "*".
        assert statement["Resource"] == (
            f"arn:aws:cloudwatch:{cfg.region}:{cfg.account}:alarm:{cfg.prefix}-*"
        )


# -- topic policies: who may start a remediation --------------------------------------------


def _condition_holds(operator: str, key: str, wanted: Any, context: dict[str, str]) -> bool:
    """IAM's condition operators used in the topic policies; negated ones match an absent key."""
    negated = "Not" in operator
    if key not in context:
        return negated
    value = context[key]
    if operator.startswith("Arn"):

        def like(pattern: str) -> bool:
            parts, wanted_parts = value.split(":", 5), pattern.split(":", 5)
            return len(parts) == len(wanted_parts) and all(
                fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted_parts, strict=True)
            )

        matched = any(like(p) for p in _list(wanted))
    elif operator.startswith(("String", "Bool")):
        matched = value in [str(w).lower() if operator == "Bool" else w for w in _list(wanted)]
    else:
        raise AssertionError(f"operator {operator} not modelled")
    return not matched if negated else matched


def _decide(statements: list[dict], principal: dict[str, str], context: dict[str, str]) -> str:
    """``deny`` (explicit), ``allow`` or ``implicit`` for ``sns:Publish`` by ``principal``."""
    allowed = False
    for statement in statements:
        if "sns:Publish" not in _list(statement["Action"]):
            continue
        who = statement["Principal"]
        if who not in ("*", {"AWS": "*"}) and who != principal:
            continue
        conditions = statement.get("Condition", {})
        if all(
            _condition_holds(op, key, wanted, context)
            for op, tests in conditions.items()
            for key, wanted in tests.items()
        ):
            if statement["Effect"] == "Deny":
                return "deny"
            allowed = True
    return "allow" if allowed else "implicit"


def _topic_statements(synth: Synth) -> dict[str, list[dict]]:
    """topic name -> its policy's statements."""
    core = synth.core_template["Resources"]
    out = {}
    for body in core.values():
        if body["Type"] == "AWS::SNS::TopicPolicy":
            (topic,) = body["Properties"]["Topics"]
            name = core[topic["Ref"]]["Properties"]["TopicName"]
            out[name] = body["Properties"]["PolicyDocument"]["Statement"]
    return out


CLOUDWATCH = {"Service": "cloudwatch.amazonaws.com"}
BUDGETS = {"Service": "budgets.amazonaws.com"}
ADMIN = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/Admin"}
ALARM = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:autorem-drill-orders-api-error-rate"
BUDGET = f"arn:aws:budgets::{ACCOUNT}:budget/autorem-drill-monthly"
TLS = {"aws:SecureTransport": "true"}

#: (who, request context, expected on a CloudWatch-only topic, expected on cost-guard's)
PUBLISHES = [
    (CLOUDWATCH, {"aws:SourceArn": ALARM, "aws:SourceAccount": ACCOUNT}, "allow", "allow"),
    (CLOUDWATCH, {"aws:SourceArn": ALARM}, "allow", "allow"),
    (CLOUDWATCH, {"aws:SourceArn": ALARM.replace(ACCOUNT, OTHER)}, "deny", "deny"),
    (CLOUDWATCH, {"aws:SourceArn": ALARM.replace("eu-west-1", "us-east-1")}, "deny", "deny"),
    # an alarm someone else created in the account, not one of this deployment's
    (CLOUDWATCH, {"aws:SourceArn": ALARM.replace("autorem-drill-", "mine-")}, "deny", "deny"),
    (
        BUDGETS,
        {"aws:SourceArn": BUDGET, "aws:SourceAccount": ACCOUNT},
        "deny",
        "allow",
    ),
    (
        BUDGETS,
        {"aws:SourceArn": BUDGET.replace(ACCOUNT, OTHER), "aws:SourceAccount": OTHER},
        "deny",
        "deny",
    ),
    # a person or role of the account, whatever its own policies allow
    (ADMIN, {}, "deny", "deny"),
    ({"AWS": "*"}, {}, "deny", "deny"),
    # another service of the account (an EventBridge rule targeting the topic)
    (
        {"Service": "events.amazonaws.com"},
        {"aws:SourceArn": f"arn:aws:events:eu-west-1:{ACCOUNT}:rule/r"},
        "deny",
        "deny",
    ),
]


@pytest.mark.parametrize(("who", "request_context", "plain", "cost_guard"), PUBLISHES)
def test_only_this_deployments_alarms_and_budgets_may_publish_an_alarm(
    drill: Synth, who: dict, request_context: dict, plain: str, cost_guard: str
) -> None:
    topics = _topic_statements(drill)
    alarm_topics = {n: s for n, s in topics.items() if n.endswith("-alarms")}
    # One alarm topic per action an alarm or budget notifies: not revert, containment
    # (manual only) or cdn-invalidate (a follow-up step, or by hand).
    assert len(alarm_topics) == len(REGISTRY) - 3
    assert "autorem-drill-revert-alarms" not in alarm_topics
    for name, statements in alarm_topics.items():
        expected = cost_guard if name == "autorem-drill-cost-guard-alarms" else plain
        assert _decide(statements, who, {**TLS, **request_context}) == expected, name


def test_alarm_topics_deny_explicitly_so_no_identity_policy_overrides(drill: Synth) -> None:
    for name, statements in _topic_statements(drill).items():
        if not name.endswith("-alarms"):
            continue
        (deny,) = [s for s in statements if s.get("Sid") == "DenyPublishButTheseAlarmsAndBudgets"]
        assert deny["Effect"] == "Deny"
        assert deny["Principal"] == {"AWS": "*"}
        assert deny["Action"] == "sns:Publish"
        assert list(deny["Condition"]) == ["ArnNotLike"]
        assert _decide(statements, CLOUDWATCH, {**TLS, "aws:SourceArn": ALARM}) == "allow"
        # plain HTTP is refused too
        plain = {"aws:SecureTransport": "false", "aws:SourceArn": ALARM}
        assert _decide(statements, CLOUDWATCH, plain) == "deny"


def test_the_notice_topic_takes_the_suites_own_alarms(drill: Synth) -> None:
    statements = _topic_statements(drill)["autorem-drill-notices"]
    own = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:{dead_letter_alarm_name('autorem-drill')}"
    assert _decide(statements, CLOUDWATCH, {**TLS, "aws:SourceArn": own}) == "allow"
    foreign = own.replace(ACCOUNT, OTHER)
    assert _decide(statements, CLOUDWATCH, {**TLS, "aws:SourceArn": foreign}) == "implicit"


# -- the suite's own failures --------------------------------------------------------------


def _health_alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    playbook = synth.core.suite.catalog.playbook()["alarms"]
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in synth.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] not in playbook
    }


def test_dead_letters_and_every_functions_errors_alarm_to_the_notice_topic(drill: Synth) -> None:
    core = drill.core_template["Resources"]
    (notices,) = [
        k
        for k, v in core.items()
        if v["Type"] == "AWS::SNS::Topic"
        and v["Properties"]["TopicName"] == "autorem-drill-notices"
    ]
    (queue,) = [k for k, v in core.items() if v["Type"] == "AWS::SQS::Queue"]
    alarms = _health_alarms(drill)
    functions = {
        v["Properties"]["FunctionName"]: k
        for k, v in core.items()
        if v["Type"] == "AWS::Lambda::Function" and "FunctionName" in v["Properties"]
    }
    expected = {dead_letter_alarm_name("autorem-drill")} | {
        errors_alarm_name("autorem-drill", name)
        for name in [*REGISTRY, "waf-sweeper", "chat-decisions"]
    }
    assert set(alarms) == expected
    for name, props in alarms.items():
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": notices}], name
        assert props["Threshold"] == 0
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["EvaluationPeriods"] == 1
        (dimension,) = props["Dimensions"]
        if name.endswith("-dlq-depth"):
            assert (props["Namespace"], props["MetricName"]) == (
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
            )
            assert props["Statistic"] == "Maximum"
            assert dimension == {
                "Name": "QueueName",
                "Value": {"Fn::GetAtt": [queue, "QueueName"]},
            }
        else:
            assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
            assert props["Statistic"] == "Sum"
            function = name.removesuffix("-errors")
            assert dimension == {"Name": "FunctionName", "Value": {"Ref": functions[function]}}


def test_the_suites_own_alarms_reach_no_remediator(drill: Synth) -> None:
    alarms = _health_alarms(drill)
    assert alarms
    playbook = drill.core.suite.catalog.playbook()
    assert not set(alarms) & set(playbook["alarms"])
    rendered = json.dumps(list(alarms.values()))
    assert "-alarms" not in rendered  # no alarm topic among their actions
