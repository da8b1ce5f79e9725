"""Many accounts: the hub's bus (``HubBus``) and what each spoke account holds
(``SpokeAccess``), on the engines AWS provides for it: EventBridge across accounts and IAM
role assumption.

A spoke's alarms change state on the spoke's default bus (CloudWatch guarantees that
delivery); one rule there forwards exactly the suite's alarms (their names start with the
spoke's alarm prefix) to the hub's bus. On the hub's bus, ``AlarmEventRules`` (the same
construct as a single-account ``trigger: eventbridge``) routes each alarm to its action's
remediator, with a retry policy and the hub's alarmed dead-letter queue.

The remediator then acts through the spoke's role for its own action kind
(``remediation.accounts``): ``<app>-<env>-spoke-<action>``, which only the hub's remediator
role of that kind may assume (and tag its session), from inside the organization when one is
named, and which may do exactly that action's declared permissions on the spoke's own
targets, plus read the spoke's alarms to confirm them (``permissions.grants``, the same
computation as a single account's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jsii
from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from serverless_remediation.stacks.constructs.health import dead_letter_alarm
from serverless_remediation.stacks.constructs.nag import acknowledge
from serverless_remediation.stacks.constructs.notices import let_rules_use_key
from serverless_remediation.stacks.constructs.permissions import grant
from serverless_remediation.stacks.constructs.trigger import DETAIL_TYPE, SOURCE

#: what a hub remediator may do with a spoke role: assume it, naming and tagging its session
ASSUME_ACTIONS = ("sts:AssumeRole", "sts:TagSession")
#: the spoke role reads its own alarms back to confirm one before acting
CONFIRM_ACTIONS = ("cloudwatch:DescribeAlarms",)


#: a spoke's health alarm: its forwarding rule's dead letters (``<alarm prefix>-<this>``)
FORWARD_DEAD_LETTERS = "forward-dead-letters"


def bus_name(prefix: str) -> str:
    return f"{prefix}-alarms"


def spoke_role_prefix(prefix: str) -> str:
    """``SPOKE_ROLE_PREFIX``: a spoke role is ``<prefix>-spoke-<action>``."""
    return f"{prefix}-spoke-"


def remediator_role_name(prefix: str, action: str) -> str:
    """A hub's remediator roles have fixed names: the spokes' trust policies name them."""
    return f"{prefix}-{action}"[:64]


def role_arn(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


class HubBus(Construct):
    """The hub's event bus: ``events:PutEvents`` only from the organization (when its id is
    given) or else from the enrolled spoke accounts."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        organization_id: str | None,
        spoke_accounts: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_name(prefix))
        if organization_id:
            principals: list[iam.IPrincipal] = [iam.AnyPrincipal()]
            conditions = {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
        else:
            principals = [iam.AccountPrincipal(a) for a in sorted(set(spoke_accounts))]
            conditions = {}
        self._prefix = prefix
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SpokesPutAlarmEvents",
                principals=principals,
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions=conditions or None,
            )
        )

    def notify_spoke_health(
        self,
        accounts: Sequence[str],
        topic: sns.ITopic,
        key: kms.IKey | None,
        rule_arn: Callable[[str], str],
    ) -> events.Rule:
        """The spokes' own health alarms (their forwarding rules' dead letters), as they
        change state on this bus, to the hub's notice topic: no remediator handles them."""
        name = f"{self._prefix}-spoke-health"[:64]
        rule = events.Rule(
            self,
            "SpokeHealth",
            rule_name=name,
            description=f"{self._prefix}: a spoke's forwarding rule has dead letters",
            event_bus=self.bus,
            event_pattern=events.EventPattern(
                source=[SOURCE],
                detail_type=[DETAIL_TYPE],
                account=list(accounts),  # the enrolled spokes' only
                detail={"alarmName": events.Match.suffix(f"-{FORWARD_DEAD_LETTERS}")},
            ),
        )
        rule.add_target(_NoticeTopic(topic, _health_message()))
        only_this_rule = {"ArnEquals": {"aws:SourceArn": rule_arn(name)}}
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="SpokeHealthNotices",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=only_this_rule,
            )
        )
        if key is not None:
            let_rules_use_key(key, "SpokeHealthNotices", [rule_arn(name)])
        return rule


@jsii.implements(events.IRuleTarget)
class _NoticeTopic:
    """The hub's notice topic as a rule target, without the grant ``targets.SnsTopic`` adds
    (a policy statement with no condition): ``HubBus.notify_spoke_health`` grants the one
    rule instead."""

    def __init__(self, topic: sns.ITopic, message: events.RuleTargetInput) -> None:
        self._topic, self._message = topic, message

    def bind(self, rule: Any, id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._topic.topic_arn, input=self._message)


def _health_message() -> events.RuleTargetInput:
    return events.RuleTargetInput.from_text(
        f"Spoke account {events.EventField.account} ({events.EventField.region}): alarm "
        f"{events.EventField.from_path('$.detail.alarmName')} is "
        f"{events.EventField.from_path('$.detail.state.value')}: "
        f"{events.EventField.from_path('$.detail.configuration.description')}"
    )


class SpokeAccess(Construct):
    """In one spoke account and region: the rule forwarding the suite's alarm state changes
    to the hub's bus, and one role per action kind for the hub's remediator of that kind."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        hub_prefix: str,
        hub_account: str,
        hub_bus_arn: str,
        organization_id: str | None,
        partition: str,
        alarm_prefix: str,
        grants: Mapping[str, list[iam.PolicyStatement]],
        confirm_alarms: Sequence[str] = (),
    ) -> None:
        """``grants``: action -> its statements on this account's targets in every region it
        is enrolled in (IAM roles are per account: one region's stack holds them, the others
        ``{}``); ``confirm_alarms``: the suite's alarms there, one ARN pattern per region."""
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.Role] = {}
        for action, statements in sorted(grants.items()):
            hub_role = role_arn(partition, hub_account, remediator_role_name(hub_prefix, action))
            principal: iam.PrincipalBase = iam.ArnPrincipal(hub_role)
            if organization_id:
                principal = principal.with_conditions(
                    {"StringEquals": {"aws:PrincipalOrgID": organization_id}}
                )
            role = iam.Role(
                self,
                f"Role-{action}",
                role_name=f"{spoke_role_prefix(hub_prefix)}{action}"[:64],
                # sts:AssumeRole and sts:TagSession (the session names the alarm)
                assumed_by=iam.SessionTagsPrincipal(principal),
                description=(
                    f"{hub_prefix}: the hub's {action} remediator acts here, on this account's "
                    "configured targets only"
                ),
                max_session_duration=Duration.hours(1),
            )
            confirm = iam.PolicyStatement(
                sid="ConfirmAlarms", actions=list(CONFIRM_ACTIONS), resources=list(confirm_alarms)
            )
            grant(self, f"Role-{action}", role, [confirm, *statements])
            for alarms in confirm_alarms:
                acknowledge(
                    role,
                    f"AwsSolutions::AwsSolutions-IAM5[Resource::{alarms}]",
                    "cloudwatch:DescribeAlarms on the suite's alarms in this spoke (their "
                    "names share its prefix): the hub confirms an alarm at its source first",
                )
            self.roles[action] = role
        self.dead_letters = sqs.Queue(
            self,
            "ForwardDeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions-SQS3",
            "this queue is the dead-letter queue of the forwarding rule",
        )
        # Its state changes go out on this bus like every alarm of the spoke's prefix, and
        # the hub sends them to its notice topic (``HubBus.notify_spoke_health``).
        self.dead_letter_alarm = dead_letter_alarm(
            self,
            "ForwardDeadLettersAlarm",
            name=f"{alarm_prefix}-{FORWARD_DEAD_LETTERS}",
            queue=self.dead_letters,
            description=(
                f"{hub_prefix}: alarm state changes the spoke could not forward to the hub are "
                f"waiting in {self.dead_letters.queue_name}: the hub never saw them; read, "
                "fix the bus or its policy, and act on them by hand"
            ),
        )
        self.forward = events.Rule(
            self,
            "ForwardAlarms",
            description=f"{hub_prefix}: the suite's alarm state changes, to the hub's bus",
            event_pattern=events.EventPattern(
                source=[SOURCE],
                detail_type=[DETAIL_TYPE],
                detail={"alarmName": events.Match.prefix(f"{alarm_prefix}-")},
            ),
            targets=[
                targets.EventBus(
                    events.EventBus.from_event_bus_arn(self, "HubBus", hub_bus_arn),
                    dead_letter_queue=self.dead_letters,
                )
            ],
        )
