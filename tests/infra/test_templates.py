"""What the synthesized drill (and prod-example) templates must hold: alarms with the
runbook thresholds, one remediator per alarm, least-privilege roles, the switch, the DLQ."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from serverless_remediation.remediation.actions import REGISTRY
from serverless_remediation.remediation.audit import (
    PARTITION_KEY,
    SORT_KEY,
    TARGET_INDEX,
    TARGET_INDEX_KEYS,
    TTL_ATTRIBUTE,
)
from serverless_remediation.remediation.config import Settings
from serverless_remediation.stacks.catalog import REVERT, declared_resources
from serverless_remediation.stacks.constructs.permissions import (
    UNSCOPABLE,
    alarmed_actions,
    param_resources,
)
from serverless_remediation.stacks.constructs.remediators import (
    CONFIRM_ACTIONS,
    KEY_ACTIONS,
    TABLE_ACTIONS,
)
from tests.infra.conftest import Synth

# kind -> (threshold, evaluation periods, period seconds): DESIGN.md's runbook defaults
RUNBOOK = {
    "error-rate": (5, 5, 60),
    "latency": (1000, 5, 60),
    "webhook-failures": (10, 10, 60),
    "throttles": (0, 5, 60),
    "abuse": (100, 1, 3600),
}
PIPELINE_ACTIONS = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    *TABLE_ACTIONS,
    "ssm:GetParameter",
    "sns:Publish",
    *KEY_ACTIONS,
    "sqs:SendMessage",
}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _alarm_periods(props: dict[str, Any]) -> set[int]:
    if "Metrics" not in props:
        return {props["Period"]}
    return {m["MetricStat"]["Period"] for m in props["Metrics"] if "MetricStat" in m}


def _remediators(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """action -> (logical id, function resource)."""
    out = {}
    for logical, fn in synth.resources("AWS::Lambda::Function").items():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "REMEDIATION_ACTIONS" in variables:
            out[variables["REMEDIATION_ACTIONS"]] = (logical.split("/", 1)[1], fn)
    return out


def _asset_dir(synth: Synth, fn: dict[str, Any]) -> Path:
    return Path(synth.app.outdir) / fn["Metadata"]["aws:asset:path"]


# -- alarms -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(RUNBOOK))
def test_each_alarm_kind_exists_with_the_runbook_thresholds(
    drill: Synth, context: dict[str, Any], kind: str
) -> None:
    threshold, periods, period = RUNBOOK[kind]
    # a service that sets its own thresholds in cdk.json (the drill's ECS bridge: 500 ms, per
    # its runbook) is checked by the tests below, not against the defaults
    services = context["environments"]["drill"]["services"]
    tuned = {name for name, raw in services.items() if raw.get("thresholds")}
    alarms = [
        a["Properties"]
        for a in drill.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"].endswith(f"-{kind}")
        and not any(a["Properties"]["AlarmName"].startswith(f"autorem-drill-{t}-") for t in tuned)
    ]
    assert alarms, f"no {kind} alarm in the drill environment"
    for props in alarms:
        assert props["AlarmName"].startswith("autorem-drill-")
        assert props["Threshold"] == threshold
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert props["EvaluationPeriods"] == periods
        assert props["DatapointsToAlarm"] == periods
        assert _alarm_periods(props) == {period}
        assert props["TreatMissingData"] == "notBreaching"


def test_rates_are_metric_math_and_latency_is_p99(drill: Synth) -> None:
    for props in (a["Properties"] for a in drill.resources("AWS::CloudWatch::Alarm").values()):
        name = props["AlarmName"]
        if name.endswith(("-error-rate", "-webhook-failures")):
            (expression,) = [m["Expression"] for m in props["Metrics"] if "Expression" in m]
            assert "100 *" in expression
        if name.endswith("-latency"):
            assert props["ExtendedStatistic"] == "p99"


def test_a_load_balancer_latency_threshold_is_in_the_metrics_seconds(drill: Synth) -> None:
    """ALB ``TargetResponseTime`` is in seconds: the bridge's 500 ms override alarms at 0.5."""
    (props,) = [
        a["Properties"]
        for a in drill.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "autorem-drill-bridge-latency"
    ]
    assert props["MetricName"] == "TargetResponseTime"
    assert props["Threshold"] == 0.5


def test_per_service_thresholds_override_the_defaults(prod: Synth) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in prod.resources("AWS::CloudWatch::Alarm").values()
    }
    assert alarms["autorem-prod-example-nigredo-forms-latency"]["Threshold"] == 1500
    assert alarms["autorem-prod-example-omnix-api-latency"]["Threshold"] == 1000
    payments = alarms["autorem-prod-example-payments-switch-webhook-failures"]
    assert (payments["Threshold"], payments["EvaluationPeriods"]) == (20, 5)


def test_each_alarm_reaches_only_its_own_remediator(drill: Synth) -> None:
    core = drill.core_template["Resources"]
    topic_by_name = {
        body["Properties"]["TopicName"]: logical
        for logical, body in core.items()
        if body["Type"] == "AWS::SNS::Topic"
    }
    subscribers: dict[str, list[str]] = {}
    for body in core.values():
        if body["Type"] == "AWS::SNS::Subscription":
            topic = body["Properties"]["TopicArn"]["Ref"]
            subscribers.setdefault(topic, []).append(
                body["Properties"]["Endpoint"]["Fn::GetAtt"][0]
            )
    action_of = {logical: action for action, (logical, _) in _remediators(drill).items()}
    playbook = drill.core.suite.catalog.playbook()
    alarms = [
        a
        for a in drill.resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] in playbook["alarms"]
    ]
    assert len(alarms) == len(playbook["alarms"]) >= 10
    for props in (a["Properties"] for a in alarms):
        route = playbook["alarms"][props["AlarmName"]]
        assert props["AlarmActions"] == props["OKActions"]
        (topic_arn,) = props["AlarmActions"]
        assert topic_arn.startswith("arn:aws:sns:eu-west-1:123456789012:")
        topic = topic_by_name[topic_arn.rsplit(":", 1)[1]]
        (function,) = subscribers[topic]
        assert action_of[function] == route["action"], props["AlarmName"]


def test_budgets_notify_the_cost_guard_topic(drill: Synth) -> None:
    (budget,) = drill.resources("AWS::Budgets::Budget").values()
    props = budget["Properties"]
    assert props["Budget"]["BudgetName"] == "autorem-drill-monthly"
    (notification,) = props["NotificationsWithSubscribers"]
    assert notification["Notification"]["Threshold"] == 100
    (subscriber,) = notification["Subscribers"]
    assert subscriber == {
        "SubscriptionType": "SNS",
        "Address": "arn:aws:sns:eu-west-1:123456789012:autorem-drill-cost-guard-alarms",
    }


# -- remediators ---------------------------------------------------------------------------


def test_one_remediator_per_registered_action_with_dlq_and_no_retries(drill: Synth) -> None:
    remediators = _remediators(drill)
    assert set(remediators) == set(REGISTRY)
    core = drill.core_template["Resources"]
    (queue,) = [k for k, v in core.items() if v["Type"] == "AWS::SQS::Queue"]
    assert "KmsMasterKeyId" in core[queue]["Properties"]
    configs = {
        v["Properties"]["FunctionName"]["Ref"]: v["Properties"]
        for v in core.values()
        if v["Type"] == "AWS::Lambda::EventInvokeConfig"
    }
    for action, (logical, fn) in remediators.items():
        props = fn["Properties"]
        assert props["Handler"] == "remediation.handler.lambda_handler"
        assert props["Runtime"].startswith("python3.1")
        assert props["DeadLetterConfig"]["TargetArn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert props["ReservedConcurrentExecutions"] == 5
        assert configs[logical]["MaximumRetryAttempts"] == 0, action
        group = core[props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Properties"]["RetentionInDays"] == 90


def test_function_environment_and_asset_load_as_remediator_settings(drill: Synth) -> None:
    for action, (_, fn) in _remediators(drill).items():
        variables = fn["Properties"]["Environment"]["Variables"]
        environ = {
            k: v if isinstance(v, str) else "resolved-by-cloudformation"
            for k, v in variables.items()
        }
        environ["AWS_REGION"] = drill.config.region  # Lambda sets it
        asset = _asset_dir(drill, fn)
        assert (asset / "remediation" / "handler.py").exists()
        settings = Settings.from_env({**environ, "PLAYBOOK_PATH": str(asset / "playbook.json")})
        assert settings.actions == {action}
        assert settings.switch_parameter == "/autorem/drill/switch"
        assert settings.guards.cooldown_seconds == 300
        playbook = json.loads((asset / "playbook.json").read_text(encoding="utf-8"))
        assert playbook == drill.core.suite.catalog.playbook()


def test_sweeper_runs_on_a_schedule_and_is_not_a_remediator(drill: Synth) -> None:
    sweepers = [
        fn
        for fn in drill.resources("AWS::Lambda::Function").values()
        if fn["Properties"]["Handler"] == "remediation.sweeper.lambda_handler"
    ]
    (sweeper,) = sweepers
    assert "REMEDIATION_ACTIONS" not in sweeper["Properties"]["Environment"]["Variables"]
    (rule,) = drill.resources("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"


def _role_statements(synth: Synth, fn: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """(inline default-policy statements, managed-policy statements) of ``fn``'s role."""
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    core = synth.core_template["Resources"]
    inline, managed = [], []
    for body in core.values():
        props = body.get("Properties", {})
        if body["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props["Roles"]:
            inline += props["PolicyDocument"]["Statement"]
        if body["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": role} in props.get("Roles", []):
            managed += props["PolicyDocument"]["Statement"]
    return inline, managed


def test_each_role_allows_only_its_declared_actions_on_its_configured_targets(
    drill: Synth,
) -> None:
    catalog = drill.core.suite.catalog
    for action, (_, fn) in _remediators(drill).items():
        inline, managed = _role_statements(drill, fn)
        for statement in inline:
            assert set(_list(statement["Action"])) <= PIPELINE_ACTIONS | set(CONFIRM_ACTIONS)
            # "*" only where CloudWatch requires it to confirm an alarm (see CONFIRM_ACTIONS)
            if "*" in _list(statement["Resource"]):
                assert set(_list(statement["Action"])) == set(CONFIRM_ACTIONS), statement
        # revert re-applies any other action, so it holds theirs; every other role its own
        served = set(REGISTRY) if action == REVERT else {action}
        permitted = {p for name in served for p in REGISTRY[name].permissions}
        # follow-up steps run in the remediator of the route that names them
        steps = [step for name in served for step in catalog.followups(name)]
        permitted |= {p for step in steps for p in REGISTRY[step.action].permissions}
        allowed = {
            arn
            for name in served
            for route in catalog.routes(name)
            for arn in [
                *declared_resources(REGISTRY[name], route),
                *param_resources(route, drill.core, drill.core.suite.deployment),
            ]
        }
        allowed |= {a for step in steps for a in declared_resources(REGISTRY[step.action], step)}
        granted: set[str] = set()
        for statement in managed:
            actions = set(_list(statement["Action"]))
            resources = set(_list(statement["Resource"]))
            assert statement["Effect"] == "Allow"
            assert actions <= permitted, (action, actions - permitted)
            if resources == {"*"}:
                assert actions <= UNSCOPABLE, (action, actions)
            else:
                assert resources <= allowed, (action, resources - allowed)
            granted |= resources
        # ... and every configured target is actually reachable
        own = {a for r in catalog.routes(action) for a in declared_resources(REGISTRY[action], r)}
        assert own <= granted, (action, own - granted)


def test_roles_reach_the_configured_drill_targets(drill: Synth) -> None:
    remediators = _remediators(drill)

    def resources(action: str) -> set[str]:
        _, managed = _role_statements(drill, remediators[action][1])
        return {r for s in managed for r in _list(s["Resource"])}

    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders-api"
    assert f"{arn}:live" in resources("rollback")
    assert "arn:aws:dynamodb:eu-west-1:123456789012:table/leads" in resources("capacity-bump")
    assert any("ipset/blocked-ips/" in r for r in resources("waf-block"))
    assert arn in resources("cost-guard")
    assert "arn:aws:lambda:eu-west-1:123456789012:function:nigredo-webhook-sender" in resources(
        "flip-flag"
    )
    # latency of a function served through an alias: provisioned concurrency on the alias
    assert f"{arn}:live" in resources("capacity-bump")
    assert "arn:aws:dynamodb:eu-west-1:123456789012:table/leads" not in resources("rollback")


# -- switch, table, topics ----------------------------------------------------------------


def test_switch_parameter_holds_the_configured_default(drill: Synth, prod: Synth) -> None:
    for synth, mode in ((drill, "on"), (prod, "dry-run")):
        (parameter,) = synth.resources("AWS::SSM::Parameter").values()
        assert parameter["Properties"]["Name"] == f"/autorem/{synth.config.env}/switch"
        assert parameter["Properties"]["Value"] == mode


def test_audit_table_shape_comes_from_the_audit_module(drill: Synth) -> None:
    (table,) = drill.resources("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
    ]
    (index,) = props["GlobalSecondaryIndexes"]
    assert index["IndexName"] == TARGET_INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == list(TARGET_INDEX_KEYS)
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_topics_are_encrypted_and_only_alarm_services_of_this_account_publish(
    drill: Synth,
) -> None:
    topics = drill.resources("AWS::SNS::Topic")
    # one per action an alarm or budget notifies (not revert, nor the manual-only
    # containment, nor cdn-invalidate, a follow-up step and manual) + notices
    assert len(topics) == len(alarmed_actions(drill.core.suite.catalog)) + 1
    assert len(alarmed_actions(drill.core.suite.catalog)) == len(REGISTRY) - 3
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics.values())
    sources = {
        "cloudwatch.amazonaws.com": {
            "ArnLike": {
                "aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:autorem-drill-*"
            }
        },
        "budgets.amazonaws.com": {
            "ArnLike": {"aws:SourceArn": "arn:aws:budgets::123456789012:*"},
            "StringEquals": {"aws:SourceAccount": "123456789012"},
        },
    }
    for policy in drill.resources("AWS::SNS::TopicPolicy").values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        denies = [s for s in statements if s["Effect"] == "Deny"]
        assert denies
        assert denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statement in (s for s in statements if s["Effect"] == "Allow"):
            assert statement["Action"] == "sns:Publish"
            assert statement["Condition"] == sources[statement["Principal"]["Service"]]


def test_dashboard_shows_every_action_and_alarm(drill: Synth) -> None:
    (dashboard,) = drill.resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for action in REGISTRY:
        assert f"{action}: remediations by outcome" in body
    for name in drill.core.suite.catalog.playbook()["alarms"]:
        assert name in body


def test_templates_are_cfn_lint_clean_but_w3005(drill: Synth, prod: Synth) -> None:
    from cfnlint.api import ManualArgs, lint

    for synth in (drill, prod):
        for name, template in synth.templates.items():
            text = json.dumps(template)
            found = lint(text, config=ManualArgs(regions=[synth.config.region]))
            assert {m.rule.id for m in found} <= {"W3005"}, (name, [str(m) for m in found])
