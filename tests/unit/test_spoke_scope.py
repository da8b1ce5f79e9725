"""A hub's authority over its enrolled spokes (scope), the one way into a spoke (an assumed
role per action and record, ``accounts.Spokes``) and the action context that joins them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from serverless_remediation.remediation.accounts import Spokes, session_tags
from serverless_remediation.remediation.actions.base import ActionContext
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.remediation.scope import Deployment, ScopeError
from tests.unit.test_scope_logic import alarm_request

HUB, SPOKE_A, SPOKE_B, OUTSIDER = "111111111111", "222222222222", "333333333333", "444444444444"
HUB_DEPLOYMENT = Deployment(
    account=HUB,
    region="eu-west-1",
    spokes={SPOKE_A: frozenset({"eu-west-1"}), SPOKE_B: frozenset({"eu-west-1", "us-east-1"})},
)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def alarm(account: str, region: str = "eu-west-1") -> str:
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:autorem-hub-a-api-error-rate"


def function(account: str, region: str = "eu-west-1") -> str:
    return f"arn:aws:lambda:{region}:{account}:function:api:live"


# -- scope ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "region"), [(HUB, "eu-west-1"), (SPOKE_A, "eu-west-1"), (SPOKE_B, "us-east-1")]
)
def test_an_alarm_of_the_hub_or_of_an_enrolled_spokes_region_is_in_scope(account, region):
    HUB_DEPLOYMENT.check_request(alarm_request(alarm(account, region)))


@pytest.mark.parametrize(
    ("account", "region", "why"),
    [
        (OUTSIDER, "eu-west-1", f"account {OUTSIDER}, not {HUB} nor an enrolled spoke"),
        (SPOKE_A, "us-east-1", "region us-east-1, not eu-west-1"),
    ],
)
def test_an_alarm_of_an_account_or_region_not_enrolled_is_refused(account, region, why):
    with pytest.raises(ScopeError, match=why):
        HUB_DEPLOYMENT.check_request(alarm_request(alarm(account, region)))


def test_a_target_must_be_in_the_events_account_even_an_enrolled_one():
    assert HUB_DEPLOYMENT.check_target(function(SPOKE_A), SPOKE_A)[0].account == SPOKE_A
    with pytest.raises(ScopeError, match=f"account {SPOKE_B}, not the event's account"):
        HUB_DEPLOYMENT.check_target(function(SPOKE_B), SPOKE_A)
    with pytest.raises(ScopeError, match=f"account {HUB}, not the event's account"):
        HUB_DEPLOYMENT.check_target(function(HUB), SPOKE_A)


def test_without_an_events_account_the_targets_own_must_be_enrolled():
    assert HUB_DEPLOYMENT.check_target(function(SPOKE_B))[0].account == SPOKE_B
    with pytest.raises(ScopeError, match="nor an enrolled spoke"):
        HUB_DEPLOYMENT.check_target(function(OUTSIDER))


def test_an_arn_without_an_account_belongs_to_the_events_account():
    stage = "arn:aws:apigateway:eu-west-1::/restapis/a1b2c3/stages/prod"
    assert HUB_DEPLOYMENT.check_target(stage, SPOKE_A)[0].account == SPOKE_A
    assert HUB_DEPLOYMENT.check_target(stage)[0].account == HUB


def test_a_single_account_deployment_has_no_spokes():
    alone = Deployment(account=HUB, region="eu-west-1")
    with pytest.raises(ScopeError, match=f"account {SPOKE_A}, not {HUB}$|account {SPOKE_A}, not"):
        alone.check_target(function(SPOKE_A))
    assert not alone.is_spoke(SPOKE_A)


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '["222222222222"]',
        '{"2222": ["eu-west-1"]}',
        '{"222222222222": []}',
        '{"222222222222": "eu-west-1"}',
    ],
)
def test_a_malformed_spokes_bundle_fails_the_cold_start(raw):
    with pytest.raises(ValueError, match="playbook spokes"):
        Playbook.from_dict({"spokes": json.loads(raw) if raw != "not json" else raw})


def test_spokes_read_from_the_bundle():
    found = Playbook.from_dict({"spokes": {"222222222222": ["eu-west-1"]}}).spokes
    assert found == {SPOKE_A: frozenset({"eu-west-1"})}
    assert Playbook.from_dict({}).spokes == {}


# -- sessions -------------------------------------------------------------------------------


def credentials(expires: datetime) -> dict:
    return {
        "Credentials": {
            "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
            "SecretAccessKey": "secret",
            "SessionToken": "token",
            "Expiration": expires,
        }
    }


@pytest.fixture
def sts():
    client = boto3.client(
        "sts", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def expect_assume(stubber: Stubber, account: str, action: str, record: str, expires: datetime):
    stubber.add_response(
        "assume_role",
        credentials(expires),
        {
            "RoleArn": f"arn:aws:iam::{account}:role/autorem-hub-spoke-{action}",
            "RoleSessionName": record,
            "DurationSeconds": 900,
            "Tags": ANY,
        },
    )


def test_one_session_per_role_and_record_kept_while_valid(sts):
    client, stubber = sts
    clock = [NOW.timestamp()]
    spokes = Spokes(
        Clients(overrides={"sts": client}),
        partition="aws",
        role_prefix="autorem-hub-spoke-",
        clock=lambda: clock[0],
    )
    expect_assume(stubber, SPOKE_A, "rollback", "a" * 32, NOW + timedelta(minutes=15))
    expect_assume(stubber, SPOKE_A, "rollback", "b" * 32, NOW + timedelta(minutes=15))
    expect_assume(stubber, SPOKE_A, "rollback", "a" * 32, NOW + timedelta(minutes=30))

    def made(record: str, region: str = "eu-west-1") -> Clients:
        return spokes.clients(SPOKE_A, region, action="rollback", record=record, asked_by="x")

    first = made("a" * 32)
    assert spokes.assumed == 0  # assumed with the first client: a failure is the record's
    first("lambda")
    assert spokes.assumed == 1
    # the same record's later calls (verify, follow-ups, another region) reuse the session
    again = made("a" * 32)
    assert again is first
    made("a" * 32, "us-east-1")("lambda")
    assert spokes.assumed == 1
    # another record: its own session, named after it
    made("b" * 32)("lambda")
    assert spokes.assumed == 2
    # within a minute of expiry the credentials are not used: assumed again
    clock[0] = (NOW + timedelta(minutes=14, seconds=30)).timestamp()
    made("a" * 32)("lambda")
    assert spokes.assumed == 3
    stubber.assert_no_pending_responses()


def test_spoke_clients_sign_with_the_assumed_credentials_in_the_targets_region(sts):
    client, stubber = sts
    spokes = Spokes(
        Clients(overrides={"sts": client}), partition="aws", role_prefix="autorem-hub-spoke-"
    )
    expect_assume(stubber, SPOKE_B, "waf-block", "c" * 32, datetime.now(UTC) + timedelta(hours=1))
    made = spokes.clients(SPOKE_B, "us-east-1", action="waf-block", record="c" * 32, asked_by="")
    lam = made("lambda")
    assert lam.meta.region_name == "us-east-1"
    assert lam._request_signer._credentials.access_key == "ASIAEXAMPLEEXAMPLE01"


def test_session_tags_hold_only_what_sts_allows():
    tags = session_tags("arn:aws:cloudwatch:eu-west-1:1:alarm:api<errors>{x}" + "y" * 300)
    assert tags[0]["Value"].startswith("api_errors__x_")
    assert len(tags[0]["Value"]) == 256


# -- the action context ---------------------------------------------------------------------


def context(reach=None, account=None) -> ActionContext:
    return ActionContext(
        clients=Clients(),
        audit=None,  # type: ignore[arg-type]
        deployment=HUB_DEPLOYMENT,
        clock=lambda: NOW,
        account=account,
        reach=reach,
    )


def test_a_spoke_target_gets_clients_of_its_account_and_region():
    asked = []
    spoke_clients = Clients()

    def reach(account, region):
        asked.append((account, region))
        return spoke_clients

    ctx = context(reach, SPOKE_A).for_target(function(SPOKE_A))
    assert ctx.clients is spoke_clients
    assert ctx.account == SPOKE_A
    assert asked == [(SPOKE_A, "eu-west-1")]
    hub = context(reach, HUB).for_target(function(HUB))
    assert hub.clients is not spoke_clients
    assert len(asked) == 1


def test_a_path_without_a_way_into_spokes_refuses_a_spoke_target():
    with pytest.raises(ScopeError, match="cannot act in spoke account"):
        context(None, SPOKE_A).for_target(function(SPOKE_A))


def test_a_target_naming_two_accounts_is_refused():
    both = f"{function(SPOKE_A)},{function(SPOKE_B)}"
    with pytest.raises(ScopeError, match="2 accounts"):
        context(lambda a, r: Clients()).for_target(both)
