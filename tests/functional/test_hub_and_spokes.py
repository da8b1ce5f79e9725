"""A hub remediating two spoke accounts, on the emulator playing three accounts: moto keeps
resources per account, and credentials from ``sts:AssumeRole`` into another account's role
act in that account. (moto does not evaluate trust policies: who may assume which role is
checked on the templates, ``tests/infra/test_hub_and_spokes.py``.)

The hub is the emulator's default account; the real pipeline acts in a spoke only through
``accounts.Spokes``, and CloudWatch in the spoke confirms each alarm first.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from serverless_remediation.remediate.emulator import agree_alarm, clients_in, create_function
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.pipeline import Pipeline
from serverless_remediation.remediation.scope import Deployment
from tests.conftest import ACCOUNT as HUB
from tests.conftest import REGION, load_event, retime

SPOKE_A, SPOKE_B, OUTSIDER = "222222222222", "333333333333", "444444444444"
ROLE_PREFIX = "autorem-hub-spoke-"
HUB_DEPLOYMENT = Deployment(
    account=HUB,
    region=REGION,
    spokes={SPOKE_A: frozenset({REGION}), SPOKE_B: frozenset({REGION})},
)


def alarm_name(spoke: str) -> str:
    return f"autorem-hub-{spoke}-orders-error-rate"


def as_account(stack, account: str) -> Clients:
    """Clients acting in ``account`` (a role there, as a person or a test would assume it)."""
    return clients_in(stack.clients, account, region=REGION)


@pytest.fixture
def hub(stack):
    """orders:live on version 3 of 3 in each spoke; the hub's playbook routes each spoke's
    alarm to a rollback of that spoke's alias, marked with its account."""
    stack.now = datetime.now(UTC)
    spokes = {account: as_account(stack, account) for account in (SPOKE_A, SPOKE_B)}
    alarms = {}
    for name, account in (("a", SPOKE_A), ("b", SPOKE_B)):
        alias = create_function(spokes[account], "orders", versions=3)
        assert f":{account}:" in alias
        alarms[alarm_name(name)] = {"action": "rollback", "target": alias, "account": account}
    playbook = {"alarms": alarms}
    settings = stack.settings(playbook, actions={"rollback", "revert"}, deployment=HUB_DEPLOYMENT)
    settings = type(settings)(
        **{
            **settings.__dict__,
            "spoke_role_prefix": ROLE_PREFIX,
            "switch_account_prefix": "/auto-remediation/test/switch-account/",
        }
    )
    stack.spokes = spokes
    stack.hub_pipeline = Pipeline(settings, stack.clients, clock=lambda: stack.now)
    return stack


def event(stack, account: str, name: str, *, agree: bool = True) -> dict:
    """CloudWatch's EventBridge event for alarm ``name`` of ``account`` going to ALARM now,
    as the spoke's forwarding rule delivers it on the hub's bus (``account`` is the spoke's);
    with ``agree``, the spoke's CloudWatch shows it so."""
    found = retime(load_event("eventbridge_alarm_single_metric.json"), stack.now)
    arn = f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}"
    found.update(account=account, resources=[arn])
    found["detail"]["alarmName"] = name
    if agree and account in stack.spokes:
        agree_alarm(stack.spokes[account], arn, "ALARM", stack.now, account=account)
    return found


def live_version(stack, account: str) -> str:
    lam = stack.spokes[account]("lambda")
    return lam.get_alias(FunctionName="orders", Name="live")["FunctionVersion"]


def test_an_alarm_in_spoke_a_rolls_back_spoke_as_alias_through_its_role(hub):
    (result,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a")))
    assert result.outcome is Outcome.EXECUTED, result.reason
    assert live_version(hub, SPOKE_A) == "2"
    assert live_version(hub, SPOKE_B) == "3"
    (record,) = hub.audit_items()  # the audit stays in the hub
    assert record["account"] == SPOKE_A
    assert hub.hub_pipeline.spokes.assumed == 1  # one session for confirm, read, apply, verify
    (notice,) = hub.notices()
    assert f"Account:    {SPOKE_A}" in notice["message"]


def test_an_event_from_an_account_outside_changes_nothing(hub):
    (result,) = hub.hub_pipeline.handle(event(hub, OUTSIDER, alarm_name("a"), agree=False))
    assert result.outcome is Outcome.REJECTED
    assert f"account {OUTSIDER}, not {HUB} nor an enrolled spoke" in result.reason
    assert live_version(hub, SPOKE_A) == live_version(hub, SPOKE_B) == "3"
    assert hub.hub_pipeline.spokes.assumed == 0


def test_spoke_a_naming_spoke_bs_alarm_changes_nothing(hub):
    (result,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("b")))
    assert result.outcome is Outcome.REJECTED
    assert "an alarm acts in its own account only" in result.reason
    assert live_version(hub, SPOKE_A) == live_version(hub, SPOKE_B) == "3"
    assert hub.hub_pipeline.spokes.assumed == 0
    (record,) = hub.audit_items()
    assert record["outcome"] == "rejected"


def test_the_per_account_switch_off_stops_only_that_account(hub):
    hub.set_switch("off", name=f"/auto-remediation/test/switch-account/{SPOKE_A}")
    (a,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a")))
    (b,) = hub.hub_pipeline.handle(event(hub, SPOKE_B, alarm_name("b")))
    assert a.outcome is Outcome.SKIPPED
    assert f"switch-account/{SPOKE_A} = off" in a.reason
    assert b.outcome is Outcome.EXECUTED, b.reason
    assert live_version(hub, SPOKE_A) == "3"
    assert live_version(hub, SPOKE_B) == "2"


def test_the_global_switch_stays_the_kill_switch(hub):
    hub.set_switch("on", name=f"/auto-remediation/test/switch-account/{SPOKE_A}")
    hub.set_switch("off")
    (result,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a")))
    assert result.outcome is Outcome.SKIPPED
    assert live_version(hub, SPOKE_A) == "3"


def test_an_alarm_the_spoke_does_not_show_is_not_acted_on(hub):
    """Confirmation reads the alarm in the spoke: one the spoke's CloudWatch does not have
    in ALARM (a forged or stale event) changes nothing."""
    (result,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a"), agree=False))
    assert result.outcome is not Outcome.EXECUTED
    assert live_version(hub, SPOKE_A) == "3"


def fresh(hub) -> Pipeline:
    """A new container (a switch flip reaches a warm one within 30 s: the cache)."""
    return Pipeline(hub.hub_pipeline.settings, hub.clients, clock=lambda: hub.now)


def test_a_revert_in_a_spoke_is_held_by_that_accounts_switch_and_names_it(hub):
    (done,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a")))
    assert done.outcome is Outcome.EXECUTED, done.reason
    hub.set_switch("off", name=f"/auto-remediation/test/switch-account/{SPOKE_A}")
    revert = {"action": "revert", "target": done.audit_id, "reason": "drill", "requested_by": "me"}
    (held,) = fresh(hub).handle(revert)
    assert held.outcome is Outcome.SKIPPED
    assert f"switch-account/{SPOKE_A} = off" in held.reason
    assert live_version(hub, SPOKE_A) == "2"
    records = {r["audit_id"]: r for r in hub.audit_items()}
    assert records[held.audit_id]["account"] == SPOKE_A
    hub.set_switch("on", name=f"/auto-remediation/test/switch-account/{SPOKE_A}")
    (undone,) = fresh(hub).handle(revert)
    assert undone.outcome is Outcome.EXECUTED, undone.reason
    assert live_version(hub, SPOKE_A) == "3"


def test_a_role_that_cannot_be_assumed_is_a_recorded_failure(hub, monkeypatch):
    from botocore.exceptions import ClientError

    def refused(session):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole")

    monkeypatch.setattr(hub.hub_pipeline.spokes, "_assume", refused)
    (result,) = hub.hub_pipeline.handle(event(hub, SPOKE_A, alarm_name("a")))
    assert result.outcome is Outcome.FAILED
    assert "AccessDenied" in result.reason
    (record,) = hub.audit_items()
    assert record["outcome"] == "failed"
    assert record["account"] == SPOKE_A
    assert live_version(hub, SPOKE_A) == "3"


def test_a_follow_up_step_in_a_spoke_acts_through_its_main_remediators_role(hub):
    from serverless_remediation.remediation.actions import get_action
    from serverless_remediation.remediation.models import Route

    asked = []
    hub.hub_pipeline.spokes.clients = lambda *a, **k: asked.append(k["action"]) or hub.clients
    target = hub.spokes[SPOKE_A]("lambda").get_alias(FunctionName="orders", Name="live")["AliasArn"]
    step = Route("capacity-bump", target, {"kind": "lambda-memory"}, account=SPOKE_A)
    hub.hub_pipeline._context(
        step, get_action("capacity-bump"), "c" * 32, "alarm", runner="rollback"
    )
    assert asked == ["rollback"]


def test_a_hub_without_its_per_account_switch_prefix_fails_the_cold_start(hub):
    import dataclasses

    from serverless_remediation.remediation.errors import ConfigurationError

    settings = dataclasses.replace(hub.hub_pipeline.settings, switch_account_prefix=None)
    with pytest.raises(ConfigurationError, match="SWITCH_ACCOUNT_PREFIX"):
        Pipeline(settings, hub.clients)
