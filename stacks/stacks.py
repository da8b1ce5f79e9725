"""Stacks that only compose. One environment = one core stack + as many alarm stacks as
keep each under CloudFormation's 500-resource limit; a hub adds one spoke stack per enrolled
account and region (``<app>-<env>-spoke-<name>[-<region>]``), deployed in that account."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import App, Environment, Stack, Tags
from constructs import Construct

from serverless_remediation.stacks import catalog as catalog_
from serverless_remediation.stacks.catalog import AlarmSpec, Catalog
from serverless_remediation.stacks.config import ConfigError, EnvConfig, SpokeConfig
from serverless_remediation.stacks.constructs import permissions
from serverless_remediation.stacks.constructs.alarms import ServiceAlarms
from serverless_remediation.stacks.constructs.spoke import SpokeAccess
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


class SpokeStack(Stack):
    """One spoke account and region: its alarms (no alarm actions: their state changes go to
    the hub's bus), the forwarding rule and the roles the hub's remediators assume."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        spoke: SpokeConfig,
        catalog: Catalog,
        core: CoreStack,
        actions: Mapping[str, Any],
        roles_for: Sequence[tuple[SpokeConfig, Catalog]] = (),
        **kwargs: Any,
    ) -> None:
        """``roles_for``: every region of this account (the roles are per account, so one
        of its stacks holds them, granted for all its regions); empty: no roles here."""
        super().__init__(scope, construct_id, **kwargs)
        self.spoke = spoke
        if len(catalog.alarms) > MAX_ALARMS_PER_STACK:
            raise ConfigError(
                f"environments.{config.env}.organization.spokes.{spoke.name}: "
                f"{len(catalog.alarms)} alarms, more than one spoke stack holds "
                f"({MAX_ALARMS_PER_STACK}): disable alarm kinds of its services or move "
                "services to an environment of their own"
            )
        self.alarms = ServiceAlarms(self, "Alarms", specs=catalog.alarms, topic_arn=None)
        grants: dict[str, list[Any]] = {}
        if roles_for:  # one computation over every region's routes: one statement per kind
            first = roles_for[0][1]
            every = dataclasses.replace(
                first,
                alarms=tuple(a for _, found in roles_for for a in found.alarms),
                inventory=tuple(r for _, found in roles_for for r in found.inventory),
            )
            deployment = catalog_.deployment(config.as_spoke(roles_for[0][0]))
            grants = permissions.grants(every, actions, stack=self, deployment=deployment)
        partition = catalog_.partition(config)
        confirm = [
            f"arn:{partition}:cloudwatch:{one.region}:{one.account}:alarm:{one.alarm_prefix}-*"
            for one, _ in roles_for
        ]
        self.access = SpokeAccess(
            self,
            "Access",
            hub_prefix=config.prefix,
            hub_account=config.account,
            hub_bus_arn=core.suite.bus_arn(),
            organization_id=config.organization_id,
            partition=catalog_.partition(config),
            alarm_prefix=spoke.alarm_prefix,
            grants=grants,
            confirm_alarms=confirm,
        )
        # The roles trust the hub's remediator roles by ARN: IAM refuses a principal that
        # does not exist yet, so the hub deploys first.
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
    regions: dict[str, list[tuple[SpokeConfig, Catalog]]] = {}
    for spoke, found in core.suite.spokes:
        regions.setdefault(spoke.account, []).append((spoke, found))
    for spoke, found in core.suite.spokes:
        group = regions[spoke.account]
        suffix = f"-{spoke.region}" if spoke.alarm_prefix.endswith(spoke.region) else ""
        stacks.append(
            SpokeStack(
                app,
                f"{config.prefix}-spoke-{spoke.name}{suffix}",
                config=config,
                spoke=spoke,
                catalog=found,
                core=core,
                actions=core.suite.actions,
                roles_for=group if group[0][0] is spoke else (),
                env=Environment(account=spoke.account, region=spoke.region),
                description=(
                    f"auto-remediation {config.prefix}: spoke {spoke.name} "
                    f"({spoke.account}, {spoke.region})"
                ),
            )
        )
    for stack in stacks:
        Tags.of(stack).add("auto-remediation:env", config.env)
    return stacks
