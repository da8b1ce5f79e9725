"""rollback of an HTTP API (apigatewayv2) stage. moto 5.2 has neither GetDeployments nor
UpdateStage for HTTP APIs: the apigatewayv2 client is a Stubber (every request checked
against the service model), the rest of the pipeline runs on the moto server."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from botocore.stub import Stubber

from serverless_remediation.remediate.emulator import REGION
from serverless_remediation.remediation.clients import DEFAULT_CONFIG
from serverless_remediation.remediation.models import Outcome
from tests.functional.actions.wire import Wire, response, throttled

ALARM = "test-orders-error-rate"
API = "a1b2c3d4e5"
TARGET = f"arn:aws:apigateway:{REGION}::/apis/{API}/stages/prod"
STAGE = {"ApiId": API, "StageName": "prod"}


@pytest.fixture
def stubbed(emulator):
    client = boto3.client("apigatewayv2", region_name=REGION, config=DEFAULT_CONFIG)
    return Stubber(client), emulator.clients(overrides={"apigatewayv2": client})


def stage(deployment: str, auto_deploy: bool = True) -> dict:
    return {"StageName": "prod", "DeploymentId": deployment, "AutoDeploy": auto_deploy}


def stages(*names: str, token: str | None = None) -> dict:
    """A GetStages page naming ``names`` (and a NextToken when more pages follow)."""
    page: dict = {"Items": [{"StageName": name} for name in names]}
    if token:
        page["NextToken"] = token
    return page


def deployments(stack, *items: tuple[str, float, str]) -> dict:
    """(id, age in minutes, status) -> a GetDeployments page."""
    return {
        "Items": [
            {
                "DeploymentId": deployment,
                "CreatedDate": stack.now - timedelta(minutes=age),
                "DeploymentStatus": status,
                "AutoDeployed": True,
            }
            for deployment, age, status in items
        ]
    }


HISTORY = (("d1", 300, "DEPLOYED"), ("d2", 120, "DEPLOYED"), ("d3", 10, "DEPLOYED"))


def alarm(stack, clients, params: dict | None = None):
    route = {"action": "rollback", "target": TARGET, "params": params or {}}
    pipeline = stack.pipeline({"alarms": {ALARM: route}}, clients=clients)
    (result,) = pipeline.handle(stack.event("sns_alarm_single_metric.json"))
    return result


def test_recent_deploy_rolls_back_and_pins_auto_deploy_off(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_stage", stage("d3"), STAGE)
    stubber.add_response("get_stages", stages("prod"), {"ApiId": API})
    stubber.add_response("get_deployments", deployments(stack, *HISTORY), {"ApiId": API})
    stubber.add_response(
        "update_stage", stage("d2", False), {**STAGE, "DeploymentId": "d2", "AutoDeploy": False}
    )
    stubber.add_response("get_stage", stage("d2", False), STAGE)
    with stubber:
        result = alarm(stack, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert result.before == {"deployment_id": "d3", "auto_deploy": True}
    assert result.after == {"deployment_id": "d2", "auto_deploy": False}
    assert "auto-deploy off" in result.reason
    assert stack.audit_items()[0]["after_state"]["deployment_id"] == "d2"


@pytest.mark.parametrize(
    ("history", "why"),
    [
        ((("d1", 300, "DEPLOYED"), ("d2", 120, "DEPLOYED")), "outside the 60 min window"),
        ((("d3", 10, "DEPLOYED"),), "no predecessor"),
        ((("d1", 30, "FAILED"), ("d3", 10, "DEPLOYED")), "no predecessor"),
    ],
    ids=["old-deploy", "first-deploy", "only-a-failed-predecessor"],
)
def test_precondition_not_met_escalates_without_an_update(stack, stubbed, history, why):
    stubber, clients = stubbed
    live = history[-1][0]
    stubber.add_response("get_stage", stage(live), STAGE)
    stubber.add_response("get_stages", stages("prod"), {"ApiId": API})
    stubber.add_response("get_deployments", deployments(stack, *history), {"ApiId": API})
    with stubber:
        result = alarm(stack, clients)
        stubber.assert_no_pending_responses()  # an update_stage would have been unstubbed

    assert result.outcome is Outcome.ESCALATED
    assert why in result.reason
    assert "needs a human" in stack.notices()[0]["subject"]


def test_dry_run_switch_reads_only(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_stage", stage("d3"), STAGE)
    stubber.add_response("get_stages", stages("prod"), {"ApiId": API})
    stubber.add_response("get_deployments", deployments(stack, *HISTORY), {"ApiId": API})
    stack.set_switch("dry-run")
    with stubber:
        result = alarm(stack, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.DRY_RUN
    assert result.after == {"deployment_id": "d2", "auto_deploy": False}


def test_stage_still_on_the_suspect_fails_verify(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_stage", stage("d3"), STAGE)
    stubber.add_response("get_stages", stages("prod"), {"ApiId": API})
    stubber.add_response("get_deployments", deployments(stack, *HISTORY), {"ApiId": API})
    stubber.add_response("update_stage", stage("d2", False))
    stubber.add_response("get_stage", stage("d3"), STAGE)
    with stubber:
        result = alarm(stack, clients)

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("VerifyError")
    assert "FAILED rollback" in stack.notices()[0]["subject"]


def test_access_denied_fails_with_a_notice(stack, stubbed):
    stubber, clients = stubbed
    stubber.add_response("get_stage", stage("d3"), STAGE)
    stubber.add_response("get_stages", stages("prod"), {"ApiId": API})
    stubber.add_response("get_deployments", deployments(stack, *HISTORY), {"ApiId": API})
    stubber.add_client_error("update_stage", "AccessDeniedException", http_status_code=403)
    with stubber:
        result = alarm(stack, clients)
        stubber.assert_no_pending_responses()

    assert result.outcome is Outcome.FAILED
    assert result.reason.startswith("AccessDeniedException")
    (notice,) = stack.notices()
    assert "FAILED rollback" in notice["subject"]


def test_throttled_update_is_retried(stack, emulator, backoff):
    # Answered on the wire, not by a Stubber, so botocore's retry handler runs.
    client = boto3.client(
        "apigatewayv2",
        region_name=REGION,
        config=DEFAULT_CONFIG,
        endpoint_url="https://apigateway.invalid",
    )
    created = {d: (stack.now - timedelta(minutes=age)).isoformat() for d, age, _ in HISTORY}
    wire = Wire(client)
    wire.queue(
        "GetStage",
        response(200, {"stageName": "prod", "deploymentId": "d3", "autoDeploy": True}),
        response(200, {"stageName": "prod", "deploymentId": "d2", "autoDeploy": False}),
    )
    wire.queue("GetStages", response(200, {"items": [{"stageName": "prod"}]}))
    wire.queue(
        "GetDeployments",
        response(
            200,
            {
                "items": [
                    {"deploymentId": d, "createdDate": at, "deploymentStatus": "DEPLOYED"}
                    for d, at in created.items()
                ]
            },
        ),
    )
    wire.queue(
        "UpdateStage",
        throttled(client),
        response(200, {"stageName": "prod", "deploymentId": "d2", "autoDeploy": False}),
    )
    result = alarm(stack, emulator.clients(overrides={"apigatewayv2": client}))

    assert result.outcome is Outcome.EXECUTED, result.reason
    assert wire.attempts["UpdateStage"] == 2
    assert len(backoff) == 1
    assert result.after == {"deployment_id": "d2", "auto_deploy": False}


def test_other_stages_on_a_later_page_escalate_without_an_update(stack, stubbed):
    """GetStages is paginated: a second stage on the second page still means the API's
    deployments are not this stage's own history."""
    stubber, clients = stubbed
    stubber.add_response("get_stage", stage("d3"), STAGE)
    stubber.add_response("get_stages", stages("prod", token="page-2"), {"ApiId": API})
    stubber.add_response("get_stages", stages("staging"), {"ApiId": API, "NextToken": "page-2"})
    stubber.add_response("get_deployments", deployments(stack, *HISTORY), {"ApiId": API})
    with stubber:
        result = alarm(stack, clients)
        stubber.assert_no_pending_responses()  # an update_stage would have been unstubbed

    assert result.outcome is Outcome.ESCALATED, result.reason
    assert "other stages (staging) besides prod" in result.reason
    assert result.after == {"deployment_id": "d3", "auto_deploy": True}
    assert "needs a human for rollback" in stack.notices()[0]["subject"]
