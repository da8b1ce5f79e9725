"""Chat channels for the notices: Amazon Q Developer in chat applications (formerly AWS
Chatbot) channel configurations for Slack and Microsoft Teams, subscribed to the notice topic.

The remediators publish each notice with a chat body in the custom-notification schema
(``remediation.notify.build_chat_notice``); the suite's health alarms are CloudWatch alarm
notifications, which the service renders natively.

What people in the channel may do is bounded twice by one customer-managed policy: it is the
channel role's only policy and the channel's guardrail. It reads (alarms, metrics: what a
notice links to) and invokes only the chat's entry point (``allow_invoke``: the chat
decisions function, which names the channel as who asks and forwards approvals, rejections
and reverts; never a remediator directly). Nothing else, whatever a user's own role would
allow (``user_role_required`` is off: the channel role is the ceiling).

Buttons on notices (``AWS::Chatbot::CustomAction``) are attached with ``add_custom_action``
(every configuration lists them in ``CustomizationResourceArns``); ``add_approval_buttons``
adds Approve and Reject, which invoke the chat decisions function (``remediation.decisions``)
and nothing else.

The workspace (Slack) or tenant (Teams) must be authorised once in the chat console before a
deploy: see docs/chat-and-paging.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from serverless_remediation.stacks.config import Chat
from serverless_remediation.stacks.constructs.nag import acknowledge

CHATBOT = "chatbot.amazonaws.com"
#: what a notice links to: alarms and their metrics (no resource-level permissions exist for
#: the metric reads; alarm reads are scoped by the guardrail to reading)
READ_ACTIONS = (
    "cloudwatch:DescribeAlarms",
    "cloudwatch:DescribeAlarmHistory",
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricWidgetImage",
    "cloudwatch:ListMetrics",
)
READ_REASON = (
    "Chat channel: CloudWatch metric reads have no resource-level permissions; the statement "
    "lists read actions only, and the same policy is the channel's guardrail"
)
LOGGING_LEVEL = "ERROR"
#: the notices the buttons attach to (the remediators publish custom notifications), the
#: path of a notice's additional context, and the value the buttons send
BUTTON_NOTIFICATION_TYPE = "Custom"
NOTICE_CONTEXT = "event.metadata.additionalContext"
APPROVAL_ID = "approvalId"


def button_command(function_name: str, verb: str, region: str) -> str:
    """The command a button runs (Amazon Q Developer's CLI syntax, no leading ``aws``): invoke
    the decider with the one key it accepts; ``$approvalId`` is filled from the notice."""
    payload = f'{{"{verb}":"${APPROVAL_ID}"}}'  # one word, as on a command line
    return f"lambda invoke --function-name {function_name} --payload {payload} --region {region}"


class ChatChannels(Construct):
    """``configurations``: the Slack and/or Teams channel configurations of ``chat``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        chat: Chat,
        notice_topic: sns.ITopic,
        invokable: Sequence[lambda_.IFunction] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = prefix
        self._custom_actions: list[str] = []
        self.policy = iam.ManagedPolicy(
            self,
            "Guardrail",
            description=f"{prefix} chat channels: read alarms and metrics, invoke the suite",
            statements=[
                iam.PolicyStatement(sid="Read", actions=list(READ_ACTIONS), resources=["*"])
            ],
        )
        acknowledge(self.policy, "AwsSolutions::AwsSolutions-IAM5[Resource::*]", READ_REASON)
        self.role = iam.Role(
            self,
            "ChannelRole",
            assumed_by=iam.ServicePrincipal(CHATBOT),
            description=f"{prefix} chat channels: the guardrail's permissions, nothing more",
            managed_policies=[self.policy],
        )
        self._invoke: iam.PolicyStatement | None = None
        for fn in invokable:
            self.allow_invoke(fn)
        common: dict[str, Any] = {
            "iam_role_arn": self.role.role_arn,
            "sns_topic_arns": [notice_topic.topic_arn],
            "guardrail_policies": [self.policy.managed_policy_arn],
            "logging_level": LOGGING_LEVEL,
            "user_role_required": False,
        }
        self.configurations: list[
            chatbot.CfnSlackChannelConfiguration | chatbot.CfnMicrosoftTeamsChannelConfiguration
        ] = []
        if chat.slack is not None:
            self.configurations.append(
                chatbot.CfnSlackChannelConfiguration(
                    self,
                    "Slack",
                    configuration_name=f"{prefix}-slack",
                    slack_workspace_id=chat.slack.workspace_id,
                    slack_channel_id=chat.slack.channel_id,
                    **common,
                )
            )
        if chat.teams is not None:
            self.configurations.append(
                chatbot.CfnMicrosoftTeamsChannelConfiguration(
                    self,
                    "Teams",
                    configuration_name=f"{prefix}-teams",
                    team_id=chat.teams.team_id,
                    teams_channel_id=chat.teams.channel_id,
                    teams_tenant_id=chat.teams.tenant_id,
                    **common,
                )
            )

    def allow_invoke(self, fn: lambda_.IFunction) -> None:
        """Let the channel invoke ``fn`` (one of the suite's own entry points), and no other
        function: the statement names each function's ARN."""
        if self._invoke is None:
            self._invoke = iam.PolicyStatement(
                sid="InvokeTheSuite", actions=["lambda:InvokeFunction"], resources=[]
            )
            self.policy.add_statements(self._invoke)
        self._invoke.add_resources(fn.function_arn)

    def add_approval_buttons(self, decider: lambda_.IFunction, *, env: str) -> None:
        """Approve and Reject on a pending approval's notice: each invokes ``decider`` (the
        chat decisions function, ``remediation.decisions``) with ``{"approve": ID}`` or
        ``{"reject": ID}``, ID read from the notice (``approvalId``); a button shows only on
        a notice of this environment that has one. The channel may invoke the decider, not
        the remediators: who decides is the decider's to say."""
        self.allow_invoke(decider)
        region = Stack.of(self).region
        for verb, label in (("approve", "Approve"), ("reject", "Reject")):
            action = chatbot.CfnCustomAction(
                self,
                f"Button-{verb}",
                action_name=f"{self._prefix}-{verb}",
                definition=chatbot.CfnCustomAction.CustomActionDefinitionProperty(
                    command_text=button_command(decider.function_name, verb, region)
                ),
                attachments=[
                    chatbot.CfnCustomAction.CustomActionAttachmentProperty(
                        button_text=label,
                        notification_type=BUTTON_NOTIFICATION_TYPE,
                        variables={
                            name: f"{NOTICE_CONTEXT}.{name}" for name in (APPROVAL_ID, "env")
                        },
                        criteria=[
                            chatbot.CfnCustomAction.CustomActionAttachmentCriteriaProperty(
                                operator="HAS_VALUE", variable_name=APPROVAL_ID
                            ),
                            chatbot.CfnCustomAction.CustomActionAttachmentCriteriaProperty(
                                operator="EQUALS", variable_name="env", value=env
                            ),
                        ],
                    )
                ],
            )
            self.add_custom_action(action)

    def add_custom_action(self, action: chatbot.CfnCustomAction | str) -> None:
        """Attach a custom action (a button on notices, or an alias) to every channel."""
        arn = action if isinstance(action, str) else action.attr_custom_action_arn
        self._custom_actions.append(arn)
        for configuration in self.configurations:
            configuration.customization_resource_arns = list(self._custom_actions)
