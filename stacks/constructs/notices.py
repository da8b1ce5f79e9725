"""The SNS topics: one alarm topic per action kind (so an alarm reaches only its own
remediator) and the human-notice topic. All encrypted with one customer-managed key, because
CloudWatch and AWS Budgets cannot publish to a topic under the AWS-managed SNS key.

Who may publish to an alarm topic is who may start a remediation: only CloudWatch, for this
deployment's alarms, and (cost-guard's topic) AWS Budgets, both of this account. An explicit
Deny says so, so no identity policy granting ``sns:Publish`` (an administrator's included)
can forge an alarm through the topic. The key is the one AWS documents for both services
publishing to SNS: ``aws:SourceArn``, the alarm's ARN (``alarm:<prefix>-*``: this deployment's
alarms) or ``arn:PARTITION:budgets::ACCOUNT:*``. Only an AWS service calling on behalf of a
resource sets it, never a person or a role, and a negated condition (``ArnNotLike``) on an
absent key matches: their calls are denied. No role of the suite publishes to an alarm topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

from serverless_remediation.remediation.targets import build

#: what EventBridge needs of a KMS key to send to an encrypted topic or queue
EVENTS_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def let_rules_use_key(key: kms.IKey, sid: str, rule_arns: list[str]) -> None:
    """EventBridge may use ``key`` for these rules only (by ARN: a reference to the rule
    would make key -> rule -> target -> key a cycle)."""
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=list(EVENTS_KEY_ACTIONS),
            resources=["*"],  # in a key policy "*" means this key
            conditions={"ArnEquals": {"aws:SourceArn": rule_arns}},
        )
    )


CLOUDWATCH = "cloudwatch.amazonaws.com"
BUDGETS = "budgets.amazonaws.com"
PUBLISHERS = (CLOUDWATCH, BUDGETS)


def alarm_topic_name(prefix: str, action: str) -> str:
    return f"{prefix}-{action}-alarms"


@dataclass(frozen=True)
class Sources:
    """Where alarm-topic messages may come from: this deployment's alarms and budgets."""

    partition: str
    region: str
    account: str
    prefix: str

    def source_arn(self, service: str) -> str:
        """The ``aws:SourceArn`` pattern of ``service``'s publications for this deployment."""
        if service == CLOUDWATCH:
            # Every alarm the suite creates is named "<prefix>-...".
            return build(
                self.partition, "cloudwatch", self.region, self.account, f"alarm:{self.prefix}-*"
            )
        if service == BUDGETS:
            return build(self.partition, "budgets", "", self.account, "*")
        raise ValueError(f"no source ARN pattern for {service}")


class Notices(Construct):
    """``key``, ``alarm_topics[action]`` and ``notice_topic``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        actions: list[str],
        emails: tuple[str, ...],
        budget_action: str,
        sources: Sources,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sources = sources
        self.account = sources.account
        self.key = self._build_key(prefix)
        self.alarm_topics = {
            action: self._build_alarm_topic(
                prefix,
                action,
                publishers=PUBLISHERS if action == budget_action else (CLOUDWATCH,),
            )
            for action in actions
        }
        self.notice_topic = sns.Topic(
            self,
            "NoticeTopic",
            topic_name=f"{prefix}-notices",
            display_name=f"auto-remediation {prefix}",
            master_key=self.key,
            enforce_ssl=True,
        )
        # The suite's own alarms (its failures: see SuiteHealth) notify humans here; the
        # remediators publish through their roles.
        self._allow(self.notice_topic, CLOUDWATCH)
        for email in emails:
            self.notice_topic.add_subscription(subs.EmailSubscription(email))

    def _build_key(self, prefix: str) -> kms.Key:
        key = kms.Key(
            self,
            "Key",
            alias=f"alias/{prefix}-remediation",
            description=f"{prefix}: alarm and notice topics, dead-letter queue",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.RETAIN,
        )
        for service in PUBLISHERS:
            key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Publish-{service.split('.')[0]}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )
        return key

    def _allow(self, topic: sns.Topic, service: str) -> None:
        conditions = {"ArnLike": {"aws:SourceArn": self.sources.source_arn(service)}}
        if service == BUDGETS:
            # Budgets documents both keys; CloudWatch documents aws:SourceArn (which names
            # the account too), so nothing here depends on a key it may not send.
            conditions["StringEquals"] = {"aws:SourceAccount": self.account}
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"Publish{service.split('.')[0].capitalize()}",
                principals=[iam.ServicePrincipal(service)],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=conditions,
            )
        )

    def _build_alarm_topic(
        self, prefix: str, action: str, *, publishers: tuple[str, ...]
    ) -> sns.Topic:
        topic = sns.Topic(
            self,
            f"AlarmTopic-{action}",
            topic_name=alarm_topic_name(prefix, action),
            display_name=f"{prefix} alarms for {action}",
            master_key=self.key,
            enforce_ssl=True,
        )
        for service in publishers:
            self._allow(topic, service)
        # Deny everyone else, whatever their own policies allow (see the module docstring).
        everyone = [iam.AnyPrincipal()]
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyPublishButTheseAlarmsAndBudgets",
                effect=iam.Effect.DENY,
                principals=everyone,
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnNotLike": {
                        "aws:SourceArn": [self.sources.source_arn(s) for s in publishers]
                    }
                },
            )
        )
        return topic
