"""The operations dashboard: remediations by action and outcome (the pipeline's EMF metric,
per environment: two environments in one account and region publish to the same namespace),
and the state of every alarm the suite owns."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from constructs import Construct

from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.pipeline import METRICS_NAMESPACE

#: every outcome a record closes with (``pending`` is only the open record's)
OUTCOMES = tuple(str(o) for o in Outcome if o is not Outcome.PENDING)
#: CloudWatch's limit of alarms in one alarm-status widget
ALARMS_PER_WIDGET = 100
#: the dimension set of the pipeline's ``Remediations`` metric: a query matches only the
#: exact set (``Environment`` is ``REMEDIATION_ENV``: one environment's figures, not the
#: account's)
METRIC_DIMENSIONS = ("Environment", "Action", "Outcome")


class Dashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        env: str,
        actions: Sequence[str],
        alarm_arns: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=name)
        graphs = [
            cw.GraphWidget(
                title=f"{action}: remediations by outcome",
                left=[
                    cw.Metric(
                        namespace=METRICS_NAMESPACE,
                        metric_name="Remediations",
                        dimensions_map=dict(
                            zip(METRIC_DIMENSIONS, (env, action, outcome), strict=True)
                        ),
                        statistic="Sum",
                        period=Duration.minutes(5),
                        label=outcome,
                    )
                    for outcome in OUTCOMES
                ],
                width=8,
                stacked=True,
            )
            for action in actions
        ]
        self.dashboard.add_widgets(*graphs)
        for start in range(0, len(alarm_arns), ALARMS_PER_WIDGET):
            chunk = alarm_arns[start : start + ALARMS_PER_WIDGET]
            alarms = [
                cw.Alarm.from_alarm_arn(self, f"Alarm{start + i}", arn)
                for i, arn in enumerate(chunk)
            ]
            self.dashboard.add_widgets(
                cw.AlarmStatusWidget(
                    title=f"alarms {start + 1}-{start + len(chunk)}",
                    alarms=alarms,
                    width=24,
                    sort_by=cw.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
                )
            )
