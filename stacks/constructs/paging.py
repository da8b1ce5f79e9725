"""Paging: escalated and failed outcomes (a circuit breaker opening among them), and plans
waiting for approval (at ``warning``), page PagerDuty; the alarm's return to OK resolves
the page.

The remediators put one "Remediation Outcome" event on the account's default bus for each
outcome that pages or resolves (``remediation.notify.build_outcome_event``; they do so only
with ``OUTCOME_EVENTS=on``, set here, and may put only that source on that bus). A rule
matching this environment's outcome events sends them, reshaped by an input transformer
into the PagerDuty Events API v2 body, to an EventBridge API destination:

    {"event_action": trigger | resolve, "dedup_key": <one per incident>,
     "payload": {"summary", "severity", "source", "component", "group", "class",
                 "custom_details"}}

PagerDuty reads its ``routing_key`` from the body. It is never written down here: the
EventBridge connection adds it to every request as a secret body parameter, read from the
Secrets Manager secret cdk.json names (the template holds a ``{{resolve:secretsmanager:...}}``
reference, EventBridge keeps its own copy in a secret it manages). The Events API needs no
authorization header; a connection must have one, so it sends the same key as an API key
header PagerDuty ignores.

A page EventBridge could not deliver (after its retries) lands in the pages' own dead-letter
queue, alarmed to the notice topic: a lost page is itself a notice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import Duration, SecretValue
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from serverless_remediation.remediation.notify import OUTCOME_DETAIL_TYPE, OUTCOME_SOURCE
from serverless_remediation.stacks.config import Paging as PagingConfig
from serverless_remediation.stacks.constructs.health import dead_letter_alarm
from serverless_remediation.stacks.constructs.nag import acknowledge
from serverless_remediation.stacks.constructs.notices import let_rules_use_key

PAGERDUTY_ENQUEUE = "https://events.pagerduty.com/v2/enqueue"
#: the header the connection's API key goes in (PagerDuty reads the body's routing_key)
API_KEY_HEADER = "X-Routing-Key"
RETRY_ATTEMPTS = 8
MAX_EVENT_AGE = Duration.hours(6)
#: PagerDuty's Events API accepts bursts well above this; a storm of pages is throttled
RATE_LIMIT_PER_SECOND = 10


def pages_rule_name(prefix: str) -> str:
    return f"{prefix}-pages"[:64]


def pages_dead_letter_alarm_name(prefix: str) -> str:
    return f"{prefix}-pages-dlq-depth"


def pagerduty_body() -> dict[str, object]:
    """The Events API v2 body, as the rule's input transformer fills it from the event."""

    def detail(name: str) -> str:
        return events.EventField.from_path(f"$.detail.{name}")

    return {
        "event_action": detail("eventAction"),
        "dedup_key": detail("dedupKey"),
        "payload": {
            "summary": detail("summary"),
            "severity": detail("severity"),
            "source": detail("target"),
            "component": detail("action"),
            "group": detail("env"),
            "class": detail("outcome"),
            "custom_details": {
                "audit_id": detail("auditId"),
                "alarm": detail("alarm"),
                "state": detail("state"),
                "reason": detail("reason"),
            },
        },
    }


class Paging(Construct):
    """``connection``, ``destination``, ``rule`` and ``dead_letters`` for one environment;
    ``publishers`` (the remediators) get the right to put outcome events, and nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        env: str,
        config: PagingConfig,
        publishers: Mapping[str, lambda_.Function],
        default_bus_arn: str,
        notice_topic: sns.ITopic,
        key: kms.IKey,
        rule_arn: Callable[[str], str],
    ) -> None:
        super().__init__(scope, construct_id)
        secret = SecretValue.secrets_manager(
            config.pagerduty_secret, json_field=config.pagerduty_secret_field or None
        )
        self.connection = events.Connection(
            self,
            "PagerDuty",
            description=f"{prefix}: PagerDuty Events API v2 (routing key from Secrets Manager)",
            authorization=events.Authorization.api_key(API_KEY_HEADER, secret),
            body_parameters={"routing_key": events.HttpParameter.from_secret(secret)},
        )
        self.destination = events.ApiDestination(
            self,
            "Enqueue",
            connection=self.connection,
            endpoint=PAGERDUTY_ENQUEUE,
            http_method=events.HttpMethod.POST,
            rate_limit_per_second=RATE_LIMIT_PER_SECOND,
            description=f"{prefix}: pages and resolves",
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{prefix}-pages-dlq",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "AwsSolutions::AwsSolutions-SQS3",
            "It is the dead-letter queue of the pages rule's target (cdk-nag does not see "
            "EventBridge dead-letter configurations), alarmed below",
        )
        name = pages_rule_name(prefix)
        self.rule = events.Rule(
            self,
            "Pages",
            rule_name=name,
            description=f"{prefix}: escalated, failed and awaiting approval page, OK resolves",
            event_pattern=events.EventPattern(
                source=[OUTCOME_SOURCE],
                detail_type=[OUTCOME_DETAIL_TYPE],
                detail={"env": [env], "eventAction": ["trigger", "resolve"]},
            ),
        )
        self.rule.add_target(
            targets.ApiDestination(
                self.destination,
                event=events.RuleTargetInput.from_object(pagerduty_body()),
                dead_letter_queue=self.dead_letters,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
            )
        )
        # EventBridge encrypts what it sends to the KMS-encrypted queue (the rule's ARN from
        # its name: a reference would make key -> rule -> queue -> key a cycle).
        let_rules_use_key(key, "DeadLettersFromPages", [rule_arn(name)])
        self.alarm = dead_letter_alarm(
            self,
            "DeadLettersAlarm",
            name=pages_dead_letter_alarm_name(prefix),
            queue=self.dead_letters,
            description=f"{prefix}: pages PagerDuty did not accept are waiting in "
            f"{prefix}-pages-dlq: an escalation may not have paged anyone; read the audit",
        )
        self.alarm.add_alarm_action(cw_actions.SnsAction(notice_topic))
        self.alarm.add_ok_action(cw_actions.SnsAction(notice_topic))
        for fn in publishers.values():
            fn.add_environment("OUTCOME_EVENTS", "on")
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    sid="OutcomeEvents",
                    actions=["events:PutEvents"],
                    resources=[default_bus_arn],
                    conditions={
                        "StringEquals": {
                            "events:source": OUTCOME_SOURCE,
                            "events:detail-type": OUTCOME_DETAIL_TYPE,
                        }
                    },
                )
            )
