"""The names an operator's CLI needs, as stack outputs: ``remediate history``, ``gate`` and
``revert --from-stack`` read them with DescribeStacks, with no synth and no Node.

Every value is the deployed physical name (tokens resolve at deploy): the audit table has no
fixed name, so its output is the only way to find it without the template.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

#: output key -> what it holds (remediate/deployed.py reads these keys)
ENVIRONMENT, SWITCH, OVERRIDES, TABLE, NOTICES, REMEDIATORS = (
    "Environment",
    "SwitchParameter",
    "SwitchOverridePrefix",
    "AuditTable",
    "NoticeTopic",
    "Remediators",
)


class SuiteOutputs(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: str,
        switch_parameter: str,
        override_prefix: str,
        table_name: str,
        notice_topic: sns.ITopic,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        values = {
            ENVIRONMENT: (env, "the environment in cdk.json"),
            SWITCH: (switch_parameter, "the automation switch (SSM parameter)"),
            OVERRIDES: (override_prefix, "per-action switch overrides (SSM parameter prefix)"),
            TABLE: (table_name, "the audit table"),
            NOTICES: (notice_topic.topic_arn, "the topic every human notice goes to"),
            REMEDIATORS: (
                stack.to_json_string(
                    {action: fn.function_name for action, fn in sorted(functions.items())}
                ),
                "action -> remediator function name (JSON)",
            ),
        }
        for key, (value, description) in values.items():
            CfnOutput(self, key, key=key, value=value, description=description)
