"""The edge actions' roles in the drill template: each grants only its declared permissions
on its configured targets; containment has no alarm topic (manual only); a rollback's role
also holds its follow-up step's CloudFront permission on the one distribution."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth
from tests.infra.test_templates import _list, _remediators, _role_statements

ACCOUNT = "123456789012"
CATALOG_STAGE = "arn:aws:apigateway:eu-west-1::/restapis/c5d6e7f8g9/stages/prod"
DISTRIBUTION = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2CATALOGCDN"
WEB_ACL = (
    f"arn:aws:wafv2:eu-west-1:{ACCOUNT}:regional/webacl/edge-acl/"
    "22222222-3333-4444-5555-666666666666"
)
SCALABLE = f"arn:aws:application-autoscaling:eu-west-1:{ACCOUNT}:scalable-target/*"


def grants(drill: Synth, action: str) -> dict[str, set[str]]:
    """IAM action -> the resources the action's role grants it on (managed policies)."""
    _, managed = _role_statements(drill, _remediators(drill)[action][1])
    found: dict[str, set[str]] = {}
    for statement in managed:
        assert statement["Effect"] == "Allow"
        for permission in _list(statement["Action"]):
            found.setdefault(permission, set()).update(_list(statement["Resource"]))
    return found


def test_api_cache_patches_only_the_cacheable_stage(drill: Synth) -> None:
    found = grants(drill, "api-cache")
    assert found == {"apigateway:GET": {CATALOG_STAGE}, "apigateway:PATCH": {CATALOG_STAGE}}


def test_containment_reaches_its_inventory_targets_only(drill: Synth) -> None:
    found = grants(drill, "containment")
    assert found["wafv2:UpdateWebACL"] == {WEB_ACL}
    assert found["wafv2:GetWebACL"] == {WEB_ACL}
    assert found["apigateway:PATCH"] == {CATALOG_STAGE}


def test_containment_has_no_alarm_topic(drill: Synth) -> None:
    """Manual only: no alarm publishes to it (the CDK app refuses such a route)."""
    topics = drill.resources("AWS::SNS::Topic")
    names = [str(t["Properties"].get("TopicName", "")) for t in topics.values()]
    assert not any("containment" in name for name in names)
    for alarm in drill.resources("AWS::CloudWatch::Alarm").values():
        actions: list[Any] = alarm["Properties"].get("AlarmActions", [])
        assert "containment" not in str(actions)


def test_rollback_role_holds_the_invalidation_of_its_distribution_only(drill: Synth) -> None:
    found = grants(drill, "rollback")
    assert found["cloudfront:CreateInvalidation"] == {DISTRIBUTION}
    assert found["cloudfront:GetInvalidation"] == {DISTRIBUTION}
    # no other role may invalidate but cdn-invalidate's own (by hand, from the inventory)
    # and revert (which holds every other's grants)
    assert grants(drill, "cdn-invalidate")["cloudfront:CreateInvalidation"] == {DISTRIBUTION}
    for action in _remediators(drill):
        if action not in ("rollback", "revert", "cdn-invalidate"):
            assert "cloudfront:CreateInvalidation" not in grants(drill, action), action


def test_capacity_bump_may_register_this_accounts_scalable_targets(drill: Synth) -> None:
    found = grants(drill, "capacity-bump")
    assert found["application-autoscaling:RegisterScalableTarget"] == {SCALABLE}
    assert found["application-autoscaling:DescribeScalableTargets"] == {"*"}
