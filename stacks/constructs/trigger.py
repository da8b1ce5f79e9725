"""How alarm state changes reach the remediators when an environment sets
``trigger: eventbridge``: EventBridge rules on the default bus, instead of SNS alarm actions.

CloudWatch guarantees delivery of every "CloudWatch Alarm State Change" event to the default
bus of the alarm's account and region. For each remediator (action) that owns alarms, one
rule (more if its alarm names outgrow one event pattern) matches

    {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"],
     "detail": {"alarmName": [<exactly the alarms whose playbook route names that action>]}}

and targets that remediator only, with a retry policy (``max_event_age``, ``retry_attempts``)
and the suite's dead-letter queue, already alarmed by ``SuiteHealth`` ("nothing was
remediated for these: read, fix, redrive"). The exact names, not the environment's prefix:
every alarm of an environment shares its prefix, whatever action it routes to, and a
remediator handed another action's alarm could only reject it.

The Lambda resource permission for ``events.amazonaws.com`` is scoped to the rule's ARN
(``SourceArn``; ``aws_events_targets.LambdaFunction`` adds it), the queue policy lets the
rule (and nothing else) send dead letters, and the queue's KMS key lets EventBridge encrypt
them for rules of this environment only.

A hub (issue 13) reuses ``AlarmEventRules`` with ``event_bus`` set to its own bus.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from serverless_remediation.stacks.catalog import AlarmSpec
from serverless_remediation.stacks.constructs.notices import let_rules_use_key

SOURCE = "aws.cloudwatch"
DETAIL_TYPE = "CloudWatch Alarm State Change"
#: EventBridge's default quota on an event pattern is 2,048 characters: keep a margin
MAX_PATTERN_CHARS = 1900
#: rule names stop at 64 characters
MAX_RULE_NAME = 64
#: EventBridge retries only a failed delivery (Lambda throttled the invoke, a service
#: error): the remediator's own failures go to the same queue through its async config.
RETRY_ATTEMPTS = 8
#: EventBridge accepts 60 s to 24 h
MIN_EVENT_AGE_SECONDS, MAX_EVENT_AGE_SECONDS = 60, 86_400


def event_pattern(alarm_names: Sequence[str]) -> dict[str, object]:
    """The rule's pattern, as EventBridge stores it (JSON keys as written)."""
    return {
        "source": [SOURCE],
        "detail-type": [DETAIL_TYPE],
        "detail": {"alarmName": sorted(alarm_names)},
    }


def pattern_chunks(alarm_names: Sequence[str], limit: int = MAX_PATTERN_CHARS) -> list[list[str]]:
    """``alarm_names`` (sorted) in as few groups as keep each rule's pattern under ``limit``."""
    chunks: list[list[str]] = []
    for name in sorted(set(alarm_names)):
        if chunks and len(json.dumps(event_pattern([*chunks[-1], name]))) <= limit:
            chunks[-1].append(name)
        else:
            if len(json.dumps(event_pattern([name]))) > limit:
                raise ValueError(f"alarm name too long for one event pattern: {name[:80]!r}")
            chunks.append([name])
    return chunks


def alarms_by_action(alarms: Iterable[AlarmSpec]) -> dict[str, list[str]]:
    """Alarm names by the action their playbook route names: what each rule delivers."""
    out: dict[str, list[str]] = {}
    for alarm in alarms:
        out.setdefault(alarm.route.action, []).append(alarm.name)
    return out


def rule_name(prefix: str, action: str, number: int) -> str:
    """``<prefix>-<action>-alarms[-N]``: the first rule has no number."""
    suffix = "" if number == 1 else f"-{number}"
    return f"{prefix}-{action}-alarms{suffix}"[:MAX_RULE_NAME]


class AlarmEventRules(Construct):
    """``rules[action]``: the rules delivering ``alarms_by_action[action]`` to
    ``functions[action]``. ``rule_arn(name)`` builds a rule's ARN from its name (in the
    deployment's partition, region and account); ``event_bus`` defaults to the default bus."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        alarms_by_action: Mapping[str, Sequence[str]],
        functions: Mapping[str, lambda_.IFunction],
        dead_letters: sqs.IQueue,
        dead_letter_key: kms.IKey | None,
        rule_arn: Callable[[str], str],
        max_event_age_seconds: int,
        event_bus: events.IEventBus | None = None,
        accounts: Sequence[str] = (),
    ) -> None:
        """``accounts``: only events of these accounts (a hub's bus: its enrolled spokes)."""
        super().__init__(scope, construct_id)
        age = min(max(max_event_age_seconds, MIN_EVENT_AGE_SECONDS), MAX_EVENT_AGE_SECONDS)
        self.rules: dict[str, list[events.Rule]] = {}
        names: list[str] = []
        for action in sorted(alarms_by_action):
            if action not in functions:
                raise ValueError(f"alarms route to {action!r}, which has no remediator")
            for number, chunk in enumerate(pattern_chunks(alarms_by_action[action]), start=1):
                name = rule_name(prefix, action, number)
                rule = events.Rule(
                    self,
                    f"Rule-{action}-{number}",
                    rule_name=name,
                    description=f"{prefix}: alarm state changes for the {action} remediator",
                    event_bus=event_bus,
                    event_pattern=events.EventPattern(
                        source=[SOURCE],
                        detail_type=[DETAIL_TYPE],
                        account=sorted(accounts) or None,
                        detail={"alarmName": chunk},
                    ),
                )
                rule.add_target(
                    targets.LambdaFunction(
                        functions[action],
                        dead_letter_queue=dead_letters,
                        max_event_age=Duration.seconds(age),
                        retry_attempts=RETRY_ATTEMPTS,
                    )
                )
                self.rules.setdefault(action, []).append(rule)
                names.append(name)
        if dead_letter_key is not None and names:
            # EventBridge encrypts what it sends to the KMS-encrypted queue. The rule ARNs
            # are built from their names: a reference would make key -> rule -> queue -> key
            # a cycle.
            let_rules_use_key(
                dead_letter_key, "DeadLettersFromAlarmRules", [rule_arn(n) for n in names]
            )
