"""A team adds the suite to its own CDK app: both constructs in one stack of its own."""

from __future__ import annotations

from tests.infra.test_config import env


def test_a_team_adds_the_suite_to_its_own_stack() -> None:
    from aws_cdk import App, Environment, Stack
    from aws_cdk.assertions import Match, Template

    from stacks import AutoRemediation, ServiceAlarms
    from stacks.config import parse_env

    config = parse_env("team", "dev", env())
    app = App()
    stack = Stack(app, "TeamStack", env=Environment(account=config.account, region=config.region))
    suite = AutoRemediation(stack, "Remediation", config=config)
    ServiceAlarms(stack, "Alarms", specs=suite.catalog.alarms, topic_arn=suite.topic_arn)
    template = Template.from_stack(stack)
    # the service's 3, and the suite's own: its dead-letter queue and each function's errors
    functions = len(suite.remediators.functions) + (suite.remediators.sweeper is not None)
    template.resource_count_is("AWS::CloudWatch::Alarm", 3 + 1 + functions)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "team-dev-orders-error-rate",
            "AlarmActions": ["arn:aws:sns:eu-west-1:123456789012:team-dev-rollback-alarms"],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": "team-dev-rollback",
            "Environment": {"Variables": Match.object_like({"REMEDIATION_ACTIONS": "rollback"})},
        },
    )
