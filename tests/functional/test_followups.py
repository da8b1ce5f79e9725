"""Follow-up steps: a rollback's route names a CloudFront invalidation ("cdn-invalidate"),
run after the rollback executed, recorded as its own audit item linked to the first
(moto implements CreateInvalidation, GetInvalidation and ListInvalidations)."""

from __future__ import annotations

from typing import Any

from serverless_remediation.remediate.drill.resources_edge import create_distribution
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.test_rollback_rest_stage import ALARM, live, make_api


def route(target: str, distribution: str, **params: Any) -> dict:
    step = {"action": "cdn-invalidate", "target": distribution, "params": params}
    return {"action": "rollback", "target": target, "params": {}, "then": [step]}


def alarm(stack, target: str, distribution: str, **params: Any) -> Any:
    pipeline = stack.pipeline({"alarms": {ALARM: route(target, distribution, **params)}})
    return pipeline.handle(stack.event("sns_alarm_single_metric.json"))


def invalidations(stack, distribution_id: str) -> list[list[str]]:
    cloudfront = stack.clients("cloudfront")
    items = cloudfront.list_invalidations(DistributionId=distribution_id)["InvalidationList"]
    found = []
    for item in items.get("Items") or []:
        got = cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])
        found.append(sorted(got["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]))
    return found


def test_rollback_then_invalidates_with_a_linked_record(stack):
    target, api, (_first, second, _third) = make_api(stack, [300, 120, 10])
    distribution = create_distribution(stack.clients, "E1TESTCDN")
    (result,) = alarm(stack, target, distribution, paths=["/api/*"])

    assert result.outcome is Outcome.EXECUTED, result.reason  # the main action's result
    assert live(stack, api) == second
    assert invalidations(stack, "E1TESTCDN") == [["/api/*"]]
    records = {r["action"]: r for r in stack.audit_items()}
    step = records["cdn-invalidate"]
    assert step["outcome"] == "executed", step["detail"]
    assert step["parent"] == result.audit_id
    assert step["correlation_id"] == records["rollback"]["correlation_id"]
    assert step["target"] == distribution
    assert step["after_state"]["paths"] == ["/api/*"]
    assert step["after_state"]["invalidation"]  # the id CloudFront gave it


def test_a_failed_step_never_undoes_the_rollback_and_is_noticed(stack):
    target, api, (_first, second, _third) = make_api(stack, [300, 120, 10])
    missing = "arn:aws:cloudfront::123456789012:distribution/E0MISSING"
    (result,) = alarm(stack, target, missing)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live(stack, api) == second
    step = next(r for r in stack.audit_items() if r["action"] == "cdn-invalidate")
    assert step["outcome"] == "failed"
    assert "NoSuchDistribution" in step["detail"]
    assert any("FAILED cdn-invalidate" in (n["subject"] or "") for n in stack.notices())


def test_steps_run_only_after_an_executed_action(stack):
    target, _api, _ids = make_api(stack, [10])  # no earlier deployment: rollback escalates
    distribution = create_distribution(stack.clients, "E2TESTCDN")
    (result,) = alarm(stack, target, distribution)

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert invalidations(stack, "E2TESTCDN") == []
    assert [r["action"] for r in stack.audit_items()] == ["rollback"]


def test_a_step_target_outside_the_deployment_is_refused_and_recorded(stack):
    target, _api, _ids = make_api(stack, [300, 120, 10])
    foreign = "arn:aws:cloudfront::210987654321:distribution/E3FOREIGN"
    (result,) = alarm(stack, target, foreign)

    assert result.outcome is Outcome.EXECUTED, result.reason
    step = next(r for r in stack.audit_items() if r["action"] == "cdn-invalidate")
    assert step["outcome"] == "failed"
    assert "outside this deployment" in step["detail"]


def test_too_many_invalidations_in_progress_escalates_the_step(stack):
    target, _api, _ids = make_api(stack, [300, 120, 10])
    distribution = create_distribution(stack.clients, "E4TESTCDN", in_progress=2)
    (result,) = alarm(stack, target, distribution, max_in_progress=2)

    assert result.outcome is Outcome.EXECUTED, result.reason
    step = next(r for r in stack.audit_items() if r["action"] == "cdn-invalidate")
    assert step["outcome"] == "escalated"
    assert "2 invalidations of the distribution are in progress (cap 2)" in step["detail"]
    assert len(invalidations(stack, "E4TESTCDN")) == 2  # only the busy ones


def step_record(stack) -> dict:
    return next(r for r in stack.audit_items() if r["action"] == "cdn-invalidate")


def test_a_step_whose_own_switch_is_off_is_skipped_and_recorded(stack):
    target, api, (_first, second, _third) = make_api(stack, [300, 120, 10])
    distribution = create_distribution(stack.clients, "E4TESTCDN")
    stack.set_switch("off", stack.override_prefix + "cdn-invalidate")
    (result,) = alarm(stack, target, distribution)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live(stack, api) == second
    assert invalidations(stack, "E4TESTCDN") == []
    step = step_record(stack)
    assert step["outcome"] == "skipped"
    assert "off" in step["detail"]


def test_a_step_whose_own_switch_is_dry_run_says_what_it_would_do(stack):
    target, _api, _ids = make_api(stack, [300, 120, 10])
    distribution = create_distribution(stack.clients, "E5TESTCDN")
    stack.set_switch("dry-run", stack.override_prefix + "cdn-invalidate")
    (result,) = alarm(stack, target, distribution, paths=["/api/*"])

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert invalidations(stack, "E5TESTCDN") == []
    step = step_record(stack)
    assert step["outcome"] == "dry-run"
    assert step["detail"].startswith("would ")


def test_a_step_on_a_silenced_target_is_held(stack):
    from tests.functional.test_silences import silence

    target, _api, _ids = make_api(stack, [300, 120, 10])
    distribution = create_distribution(stack.clients, "E6TESTCDN")
    silence(stack, distribution)
    (result,) = alarm(stack, target, distribution)

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert invalidations(stack, "E6TESTCDN") == []
    step = step_record(stack)
    assert step["outcome"] == "silenced"
    assert "planned migration" in step["detail"]
