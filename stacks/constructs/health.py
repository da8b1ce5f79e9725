"""The suite's own failures reach a human: alarms on the dead-letter queue and on every
remediator's (and the sweeper's) ``Errors``, with the notice topic as their only action.

A remediator raises after recording a failure and the event goes to the dead-letter queue;
an event Lambda could not deliver at all (throttled past its maximum age) lands there too.
Either way nothing was remediated and a person must look. These alarms are not in the
playbook and reach no remediator: the suite does not remediate itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

MINUTE = Duration.minutes(1)


def dead_letter_alarm_name(prefix: str) -> str:
    return f"{prefix}-remediator-dlq-depth"


def errors_alarm_name(prefix: str, function: str) -> str:
    """``function``: an action name or ``waf-sweeper`` (the alarm is the function's name
    plus ``-errors``; no service alarm ends so: their kinds are fixed)."""
    return f"{prefix}-{function}-errors"


def dead_letter_alarm(
    scope: Construct, construct_id: str, *, name: str, queue: sqs.IQueue, description: str
) -> cw.Alarm:
    """An alarm at the first message waiting in ``queue`` (a dead-letter queue), without
    actions: the caller says who hears it."""
    return cw.Alarm(
        scope,
        construct_id,
        alarm_name=name,
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=MINUTE, statistic=cw.Stats.MAXIMUM
        ),
        threshold=0,
        comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        # an idle empty queue: SQS stops reporting it
        treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
    )


class SuiteHealth(Construct):
    """``alarms``: name -> alarm, each notifying ``notice_topic`` on ALARM and on OK."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        notice_topic: sns.ITopic,
        dead_letters: sqs.IQueue,
        functions: Mapping[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self._notify = cw_actions.SnsAction(notice_topic)
        self.alarms: dict[str, cw.Alarm] = {}
        self._add(
            "DeadLetters",
            dead_letter_alarm_name(prefix),
            dead_letters.metric_approximate_number_of_messages_visible(
                period=MINUTE, statistic=cw.Stats.MAXIMUM
            ),
            f"{prefix}: events no remediator could handle are waiting in "
            f"{dead_letters.queue_name}: nothing was remediated for them; read, fix, redrive",
        )
        for name, fn in functions.items():
            self._add(
                f"Errors-{name}",
                errors_alarm_name(prefix, name),
                fn.metric_errors(period=MINUTE, statistic=cw.Stats.SUM),
                f"{prefix}: {name} failed (its audit record and the dead-letter queue say why)",
            )

    def _add(self, construct_id: str, name: str, metric: cw.IMetric, description: str) -> None:
        alarm = cw.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=0,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # No data: no invocations, or an idle empty queue (SQS stops reporting it).
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._notify)
        alarm.add_ok_action(self._notify)
        self.alarms[name] = alarm
