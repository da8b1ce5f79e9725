"""Stacks that only compose. One environment = one core stack + as many alarm stacks as
keep each under CloudFormation's 500-resource limit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, Environment, Stack, Tags
from constructs import Construct

from serverless_remediation.stacks.catalog import AlarmSpec
from serverless_remediation.stacks.config import EnvConfig
from serverless_remediation.stacks.constructs.alarms import ServiceAlarms
from serverless_remediation.stacks.constructs.suite import AutoRemediation

#: alarms per alarm stack: one resource each, well under 500 with room for growth
MAX_ALARMS_PER_STACK = 400


class CoreStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        actions: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.suite = AutoRemediation(self, "Remediation", config=config, actions=actions)


class AlarmsStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: Sequence[AlarmSpec],
        core: CoreStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.alarms = ServiceAlarms(
            self, "Alarms", specs=specs, topic_arn=core.suite.alarm_topic_arn
        )
        # The alarms name the core stack's topics by ARN (no export): deploy the core first.
        self.add_stack_dependency(core)


def slices(specs: Sequence[AlarmSpec], limit: int = MAX_ALARMS_PER_STACK) -> list[list[AlarmSpec]]:
    """Alarms in stack-sized slices, a service's alarms never split across two stacks."""
    by_service: dict[str, list[AlarmSpec]] = {}
    for spec in specs:
        by_service.setdefault(spec.service, []).append(spec)
    out: list[list[AlarmSpec]] = []
    for group in by_service.values():
        if not out or len(out[-1]) + len(group) > limit:
            out.append([])
        out[-1].extend(group)
    return out


def add_environment(
    app: App, config: EnvConfig, *, actions: Mapping[str, Any] | None = None
) -> list[Stack]:
    """The core stack and its alarm stacks for ``config``."""
    env = Environment(account=config.account, region=config.region)
    core = CoreStack(
        app,
        f"{config.prefix}-core",
        config=config,
        actions=actions,
        env=env,
        description=f"auto-remediation {config.prefix}: remediators, topics, switch, audit",
    )
    stacks: list[Stack] = [core]
    for number, chunk in enumerate(slices(core.suite.catalog.alarms), start=1):
        stacks.append(
            AlarmsStack(
                app,
                f"{config.prefix}-alarms-{number}",
                specs=chunk,
                core=core,
                env=env,
                description=f"auto-remediation {config.prefix}: alarms, slice {number}",
            )
        )
    for stack in stacks:
        Tags.of(stack).add("auto-remediation:env", config.env)
    return stacks
