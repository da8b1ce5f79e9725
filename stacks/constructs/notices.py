"""The SNS topics: one alarm topic per action kind (so an alarm reaches only its own
remediator) and the human-notice topic. All encrypted with one customer-managed key, because
CloudWatch and AWS Budgets cannot publish to a topic under the AWS-managed SNS key."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct

PUBLISHERS = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


def alarm_topic_name(prefix: str, action: str) -> str:
    return f"{prefix}-{action}-alarms"


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
    ) -> None:
        super().__init__(scope, construct_id)
        self.account = Stack.of(self).account
        self.key = self._build_key(prefix)
        self.alarm_topics = {
            action: self._build_alarm_topic(
                prefix,
                action,
                publishers=PUBLISHERS if action == budget_action else PUBLISHERS[:1],
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
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Publish{service.split('.')[0].capitalize()}",
                    principals=[iam.ServicePrincipal(service)],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )
        return topic
