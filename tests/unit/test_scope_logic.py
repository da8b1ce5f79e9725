"""The target model, the scope check, event freshness, alarm confirmation and the manual
limits: pure decisions, on plain data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serverless_remediation.remediation.actions import get_action
from serverless_remediation.remediation.confirm import check_alarm, check_fresh
from serverless_remediation.remediation.models import RejectedError, Request, Source
from serverless_remediation.remediation.scope import Deployment, ScopeError
from serverless_remediation.remediation.targets import build, parse, parse_all, partition_of

ACCOUNT, OTHER = "123456789012", "210987654321"
HERE = Deployment(account=ACCOUNT, region="eu-west-1")
NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)
ALARM_ARN = f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:orders-errors"


# -- the target model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "fields"),
    [
        (
            f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:orders:live",
            ("aws", "lambda", "eu-west-1", ACCOUNT, "function", "orders", "live", None),
        ),
        (
            f"arn:aws-cn:lambda:cn-north-1:{ACCOUNT}:function:orders",
            ("aws-cn", "lambda", "cn-north-1", ACCOUNT, "function", "orders", None, None),
        ),
        (
            f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:leads#WEBHOOK_ENABLED",
            ("aws", "lambda", "eu-west-1", ACCOUNT, "function", "leads", None, "WEBHOOK_ENABLED"),
        ),
        (
            f"arn:aws-us-gov:dynamodb:us-gov-west-1:{ACCOUNT}:table/leads",
            ("aws-us-gov", "dynamodb", "us-gov-west-1", ACCOUNT, "table", "leads", None, None),
        ),
        (
            f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/app/webhook",
            ("aws", "ssm", "eu-west-1", ACCOUNT, "parameter", "/app/webhook", None, None),
        ),
        (
            f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/flat",
            ("aws", "ssm", "eu-west-1", ACCOUNT, "parameter", "flat", None, None),
        ),
        (
            # API Gateway ARNs carry no account: the deployment's own.
            "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3/stages/prod",
            ("aws", "apigateway", "eu-west-1", ACCOUNT, "restapis", "a1b2c3", "prod", None),
        ),
        (
            "arn:aws:apigateway:eu-west-1::/apis/f6g7h8/stages/$default",
            ("aws", "apigateway", "eu-west-1", ACCOUNT, "apis", "f6g7h8", "$default", None),
        ),
        (
            f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/blocked/1111-2222",
            ("aws", "wafv2", "us-east-1", ACCOUNT, "ipset", "blocked", "1111-2222", None),
        ),
        (
            ALARM_ARN,
            ("aws", "cloudwatch", "eu-west-1", ACCOUNT, "alarm", "orders-errors", None, None),
        ),
        (
            # Alarm names may hold "/" and ":".
            f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:team/orders:p99",
            ("aws", "cloudwatch", "eu-west-1", ACCOUNT, "alarm", "team/orders:p99", None, None),
        ),
    ],
)
def test_every_target_kind_parses_into_one_model(arn, fields):
    target = parse(arn, default_account=ACCOUNT)
    got = (
        target.partition,
        target.service,
        target.region,
        target.account,
        target.resource_type,
        target.name,
        target.qualifier,
        target.member,
    )
    assert got == fields


def test_api_gateway_account_is_implied_and_marked():
    stage = parse("arn:aws:apigateway:eu-west-1::/restapis/a/stages/p", default_account=ACCOUNT)
    assert stage.account_implied
    assert not parse(ALARM_ARN).account_implied


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "orders",
        "arn:aws:lambda:eu-west-1::function:orders",  # no account
        "arn:aws:lambda::123456789012:function:orders",  # no region
        "arn:aws:lambda:eu-west-1:12345:function:orders",  # not 12 digits
        "arn:evil:lambda:eu-west-1:123456789012:function:orders",  # no such partition
        "arn:aws:wafv2:eu-west-1:123456789012:ipset/x",  # no scope
    ],
)
def test_what_is_not_an_arn_is_rejected(bad):
    with pytest.raises(RejectedError):
        parse(bad, default_account=ACCOUNT)


def test_multi_arn_targets_parse_each_and_refuse_an_empty_one():
    sets = f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset"
    two = f"{sets}/a/1,{sets}/b/2"
    assert [t.name for t in parse_all(two)] == ["a", "b"]
    with pytest.raises(RejectedError, match="empty ARN"):
        parse_all(two + ",")


@pytest.mark.parametrize(
    ("region", "partition"),
    [("eu-west-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_arns_are_built_from_the_partition(region, partition):
    assert partition_of(region) == partition
    built = build(partition, "lambda", region, ACCOUNT, "function:orders")
    assert built == f"arn:{partition}:lambda:{region}:{ACCOUNT}:function:orders"
    assert parse(built).partition == partition


# -- the scope check -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "why"),
    [
        (f"arn:aws:lambda:eu-west-1:{OTHER}:function:orders:live", f"account {OTHER}"),
        (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders:live", "region us-east-1"),
        (f"arn:aws-cn:lambda:eu-west-1:{ACCOUNT}:function:orders:live", "partition aws-cn"),
        ("arn:aws:apigateway:us-west-2::/restapis/a/stages/p", "region us-west-2"),
        (
            f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/blocked/1",
            "region us-east-1",
        ),
        (
            f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/ipset/a/1,"
            f"arn:aws:wafv2:eu-west-1:{OTHER}:regional/ipset/b/2",
            f"account {OTHER}",
        ),
    ],
)
def test_a_target_outside_the_deployment_is_refused(target, why):
    with pytest.raises(ScopeError, match=why):
        HERE.check_target(target)


def test_an_explicitly_served_region_is_in_scope():
    cloudfront = f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/ipset/blocked/1"
    served = Deployment(ACCOUNT, "eu-west-1", extra_regions=frozenset({"us-east-1"}))
    assert served.check_target(cloudfront)[0].scope == "CLOUDFRONT"


def alarm_request(arn: str = ALARM_ARN, **details) -> Request:
    return Request(
        source=Source.ALARM,
        key=arn.rsplit(":", 1)[1],
        idempotency_key=f"{arn}|t|ALARM",
        state="ALARM",
        requested_by=arn,
        reason="r",
        occurred_at=NOW - timedelta(seconds=30),
        details=details,
    )


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        (alarm_request(ALARM_ARN.replace(ACCOUNT, OTHER)), f"account {OTHER}"),
        (alarm_request(ALARM_ARN.replace("eu-west-1", "us-west-2")), "region us-west-2"),
        (alarm_request(ALARM_ARN.replace("arn:aws:", "arn:aws-cn:")), "partition aws-cn"),
        (alarm_request(account_id=OTHER), "account id .* disagrees with its ARN"),
        (alarm_request(region_code="us-west-2"), "region .* disagrees with its ARN"),
    ],
)
def test_an_alarm_from_elsewhere_is_refused(request_, why):
    with pytest.raises(ScopeError, match=why):
        HERE.check_request(request_)


def test_this_deployments_alarm_passes():
    HERE.check_request(alarm_request(account_id=ACCOUNT, region_code="eu-west-1"))


def budget_request(notice: str) -> Request:
    return Request(
        Source.BUDGET, "monthly", "k", "ALARM", "budget:monthly", "r", details={"notice": notice}
    )


def test_budget_notice_must_name_this_account():
    HERE.check_request(budget_request(f"AWS Budget Notification\nAWS Account {ACCOUNT}\n"))
    with pytest.raises(ScopeError, match=f"for account {OTHER}"):
        HERE.check_request(budget_request(f"AWS Account {OTHER}\n"))
    with pytest.raises(ScopeError, match="names no AWS account"):
        HERE.check_request(budget_request("Dear AWS Customer"))


# -- freshness and confirmation ----------------------------------------------------------


def test_freshness():
    check_fresh(alarm_request(), NOW, 900)
    stale = alarm_request()
    with pytest.raises(RejectedError, match="older than the 15 min"):
        check_fresh(stale, NOW + timedelta(minutes=20), 900)
    with pytest.raises(RejectedError, match="in the future"):
        check_fresh(stale, NOW - timedelta(hours=1), 900)


def described(**changes) -> dict:
    alarm = {
        "AlarmArn": ALARM_ARN,
        "StateValue": "ALARM",
        "StateUpdatedTimestamp": NOW - timedelta(seconds=30),
    }
    return {**alarm, **changes}


def test_confirmation_passes_when_cloudwatch_agrees():
    check_alarm(alarm_request(), described())
    # Transitioned again later and still in ALARM: still current.
    check_alarm(alarm_request(), described(StateTransitionedTimestamp=NOW))


@pytest.mark.parametrize(
    ("alarm", "why"),
    [
        (None, "does not exist"),
        (described(StateValue="OK"), "is OK now, not ALARM"),
        (described(AlarmArn=ALARM_ARN + "-x"), "has ARN"),
        (described(StateUpdatedTimestamp=NOW - timedelta(hours=2)), "not CloudWatch's"),
        (described(StateUpdatedTimestamp=None), "cannot tell when"),
    ],
)
def test_confirmation_refuses_what_cloudwatch_does_not_show(alarm, why):
    with pytest.raises(RejectedError, match=why):
        check_alarm(alarm_request(), alarm)


# -- manual requests may only be more careful ------------------------------------------


@pytest.mark.parametrize(
    ("action", "configured", "requested", "why"),
    [
        ("capacity-bump", {"kind": "lambda-memory"}, {"factor": 2.0}, "at most 1.5"),
        ("capacity-bump", {"kind": "lambda-memory"}, {"max_memory_mb": 4096}, "at most 3008"),
        ("capacity-bump", {"kind": "lambda-memory"}, {"kind": "lambda-timeout"}, "fixed by"),
        ("waf-block", {"log_group": "g"}, {"ttl_minutes": 600}, "at most 240"),
        (
            "waf-block",
            {"log_group": "g", "allowlist": ["10.1.0.0/16"]},
            {"allowlist": []},
            "superset",
        ),
        ("waf-block", {"log_group": "g"}, {"threshold": 10}, "at least 100"),
        ("cost-guard", {"sheddable": ["a"]}, {"sheddable": ["a", "b"]}, "subset"),
        ("cost-guard", {"sheddable": ["a"]}, {"max_reserved": 0}, "at least 1"),
        ("rollback", {}, {"window_minutes": 120}, "at most 60"),
        ("flip-flag", {}, {"value": "true"}, "fixed by"),
    ],
)
def test_a_manual_request_cannot_go_beyond_the_configuration(action, configured, requested, why):
    cls = get_action(action)
    with pytest.raises(RejectedError, match=why):
        cls.check_manual(cls.Params.from_dict(configured), requested)


@pytest.mark.parametrize(
    ("action", "configured", "requested"),
    [
        ("capacity-bump", {"kind": "lambda-memory"}, {"factor": 1.2, "max_memory_mb": 1024}),
        ("waf-block", {"log_group": "g"}, {"ttl_minutes": 30, "allowlist": ["203.0.113.0/24"]}),
        ("cost-guard", {"sheddable": ["a", "b"]}, {"sheddable": ["a"], "max_reserved": 5}),
        ("rollback", {}, {"window_minutes": 30}),
        ("flip-flag", {}, {"value": "false"}),
    ],
)
def test_a_more_careful_manual_request_passes(action, configured, requested):
    cls = get_action(action)
    cls.check_manual(cls.Params.from_dict(configured), requested)


def test_an_sqs_queue_is_one_parser_entry():
    """A target kind is one entry in ``targets._resource``; the scope check needs none."""
    queue = parse("arn:aws-cn:sqs:cn-north-1:123456789012:reports-jobs")
    assert (queue.partition, queue.service, queue.region, queue.account) == (
        "aws-cn",
        "sqs",
        "cn-north-1",
        "123456789012",
    )
    assert (queue.resource_type, queue.name, queue.qualifier) == ("queue", "reports-jobs", None)
