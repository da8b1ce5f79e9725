"""CloudWatch alarms from the catalog's specs, and AWS Budgets for cost.

Each alarm sends ALARM and OK to the topic of the action its playbook route names, so it
reaches that one remediator and no other. OK matters: a temporary action (flip-flag) is
restored on OK, and every OK closes the incident in the audit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aws_cdk import Duration
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from serverless_remediation.stacks.catalog import AlarmSpec, BudgetSpec, MetricSpec


def _metric(spec: MetricSpec) -> cw.Metric:
    return cw.Metric(
        namespace=spec.namespace,
        metric_name=spec.name,
        dimensions_map=dict(spec.dimensions),
        statistic=spec.statistic,
        period=Duration.seconds(spec.period),
    )


def alarm_metric(spec: AlarmSpec) -> cw.IMetric:
    if spec.expression is None:
        (only,) = spec.metrics.values()
        return _metric(only)
    return cw.MathExpression(
        expression=spec.expression,
        using_metrics={key: _metric(m) for key, m in spec.metrics.items()},
        period=Duration.seconds(spec.period),
        label=spec.kind,
    )


class ServiceAlarms(Construct):
    """The alarms in ``specs``; ``topic_arn(action)`` says where each one's route sends it.
    ``topic_arn=None`` (``trigger: eventbridge``): no alarm actions, EventBridge rules
    deliver the state changes (``stacks.constructs.trigger``)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: Sequence[AlarmSpec],
        topic_arn: Callable[[str], str] | None,
    ) -> None:
        super().__init__(scope, construct_id)
        topics: dict[str, sns.ITopic] = {}
        self.alarms: list[cw.Alarm] = []
        for spec in specs:
            action = spec.route.action
            if topic_arn is not None and action not in topics:
                topics[action] = sns.Topic.from_topic_arn(
                    self, f"Topic-{action}", topic_arn(action)
                )
            alarm = cw.Alarm(
                self,
                spec.name,
                alarm_name=spec.name,
                alarm_description=spec.description,
                metric=alarm_metric(spec),
                threshold=spec.threshold,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm,
                # No traffic is not an incident; a remediation needs evidence.
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            if topic_arn is not None:
                notify = cw_actions.SnsAction(topics[action])
                alarm.add_alarm_action(notify)
                alarm.add_ok_action(notify)
            self.alarms.append(alarm)


class CostBudgets(Construct):
    """One AWS Budgets cost budget per config entry, notifying the cost-guard topic.

    Budgets instead of ``AWS/Billing EstimatedCharges``: that metric exists only in us-east-1,
    so an alarm on it would need a second region's stack and topic.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: Sequence[BudgetSpec],
        topic_arn: Callable[[str], str],
    ) -> None:
        super().__init__(scope, construct_id)
        for spec in specs:
            budgets.CfnBudget(
                self,
                spec.name,
                budget=budgets.CfnBudget.BudgetDataProperty(
                    budget_name=spec.name,
                    budget_type="COST",
                    time_unit="MONTHLY",
                    budget_limit=budgets.CfnBudget.SpendProperty(
                        amount=spec.budget.limit_usd, unit="USD"
                    ),
                ),
                notifications_with_subscribers=[
                    budgets.CfnBudget.NotificationWithSubscribersProperty(
                        notification=budgets.CfnBudget.NotificationProperty(
                            comparison_operator="GREATER_THAN",
                            notification_type=spec.budget.notification,
                            threshold=spec.budget.threshold_percent,
                            threshold_type="PERCENTAGE",
                        ),
                        subscribers=[
                            budgets.CfnBudget.SubscriberProperty(
                                subscription_type="SNS", address=topic_arn(spec.route.action)
                            )
                        ],
                    )
                ],
            )
