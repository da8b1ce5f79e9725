"""``AutoRemediation``: the suite for one environment in one construct (everything but the
alarms, which ``ServiceAlarms`` adds in as many stacks as they need).

A team adds it to its own CDK app::

    from serverless_remediation.stacks import AutoRemediation, ServiceAlarms, config

    cfg = config.parse_env("myapp", "prod", {...})     # or config.load(context, "prod")
    suite = AutoRemediation(core_stack, "Remediation", config=cfg)
    ServiceAlarms(
        alarms_stack, "Alarms", specs=suite.catalog.alarms, topic_arn=suite.alarm_topic_arn
    )
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any

from aws_cdk import Annotations, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from serverless_remediation.remediation.decisions import chat_identity
from serverless_remediation.remediation.models import RouteMode
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.stacks import catalog as catalog_
from serverless_remediation.stacks.config import ConfigError, EnvConfig
from serverless_remediation.stacks.constructs import permissions
from serverless_remediation.stacks.constructs import spoke as spoke_
from serverless_remediation.stacks.constructs.alarms import CostBudgets
from serverless_remediation.stacks.constructs.audit_store import AuditStore
from serverless_remediation.stacks.constructs.chat import ChatChannels
from serverless_remediation.stacks.constructs.dashboard import Dashboard
from serverless_remediation.stacks.constructs.health import SuiteHealth
from serverless_remediation.stacks.constructs.notices import Notices, Sources, alarm_topic_name
from serverless_remediation.stacks.constructs.outputs import SuiteOutputs
from serverless_remediation.stacks.constructs.paging import Paging
from serverless_remediation.stacks.constructs.remediators import Remediators, Wiring
from serverless_remediation.stacks.constructs.switch import Switch
from serverless_remediation.stacks.constructs.trigger import AlarmEventRules, alarms_by_action


def registry() -> dict[str, Any]:
    """The registered actions, imported at synth (``functions/`` is on the path)."""
    from serverless_remediation.remediation.actions import REGISTRY

    return dict(REGISTRY)


class AutoRemediation(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvConfig,
        actions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = cfg = config
        self.actions = dict(actions if actions is not None else registry())
        self.catalog = catalog_.build(cfg, self.actions)
        self.deployment = catalog_.deployment(cfg)
        #: a hub's spokes, each with its alarms and routes (``stacks.SpokeStack`` deploys them)
        self.spokes = [(s, catalog_.spoke_catalog(cfg, s, self.actions)) for s in cfg.spokes]
        stack = Stack.of(self)
        # One remediator (function, role, topic) per action some route names: no other.
        grants = permissions.grants(
            self.catalog, self.actions, stack=stack, deployment=self.deployment
        )
        for action, roles in self._spoke_roles().items():  # a hub: it acts through them
            statement = iam.PolicyStatement(
                sid="SpokeRoles", actions=list(spoke_.ASSUME_ACTIONS), resources=roles
            )
            grants[action] = [*grants.get(action, []), statement]
        names = sorted(grants)
        # An alarm topic only for actions an alarm or budget notifies (not revert); with
        # trigger eventbridge, alarms reach their remediators through rules: budgets only.
        topics = permissions.alarmed_actions(self.catalog)
        if cfg.trigger == "eventbridge":
            topics = sorted({budget.route.action for budget in self.catalog.budgets})
        self.notices = Notices(
            self,
            "Notices",
            prefix=cfg.prefix,
            actions=topics,
            emails=cfg.notice_emails,
            budget_action=catalog_.COST_GUARD,
            sources=Sources(
                partition=self.deployment.partition,
                region=cfg.region,
                account=cfg.account,
                prefix=cfg.prefix,
            ),
        )
        # No table name: the table outlives `cdk destroy` (RETAIN), and a fixed name would
        # make the next deploy of the environment fail on the one left behind.
        self.audit = AuditStore(self, "Audit")
        self.switch = Switch(self, "Switch", app=cfg.app, env=cfg.env, mode=cfg.switch)
        settings = cfg.remediators
        self.remediators = Remediators(
            self,
            "Remediators",
            prefix=cfg.prefix,
            wiring=Wiring(
                env=cfg.env,
                table_name=self.audit.table.table_name,
                table_arns=self.audit.arns,
                notice_topic=self.notices.notice_topic,
                switch_name=self.switch.name,
                switch_arn=self.switch.parameter.parameter_arn,
                override_prefix=self.switch.override_prefix,
                override_arn=self.switch.override_arn,
                key=self.notices.key,
                cooldown_seconds=cfg.guards.cooldown_seconds,
                breaker_max=cfg.guards.breaker_max_per_hour,
                deployment=self.deployment_environment(),
                # The suite's alarms, in every region the environment serves (the scope
                # check accepts an alarm from each: its confirmation must be readable there).
                alarm_arns=[
                    catalog_.arn(cfg, "cloudwatch", f"alarm:{cfg.prefix}-*", region=region)
                    for region in sorted(self.deployment.regions)
                ],
                account_switch_arns=[
                    self.switch.account_arn(account)
                    for account in sorted({cfg.account, *self.deployment.spokes})
                    if self.spokes
                ],
                role_names=(
                    (lambda action: spoke_.remediator_role_name(cfg.prefix, action))
                    if self.spokes
                    else None
                ),
            ),
            grants=grants,
            spoke_calls=self._spoke_calls(),
            alarm_topics=self.notices.alarm_topics,
            playbook=self.routing.playbook(),
            reserved_concurrency=settings.reserved_concurrency,
            log_retention_days=settings.log_retention_days,
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
            sweep_minutes=settings.sweep_minutes,
            architecture=settings.architecture,
            # no WAF route, no IP set to sweep: no sweeper
            sweeper_grants=(
                permissions.sweeper_grants(grants) if catalog_.WAF_BLOCK in grants else None
            ),
        )
        for skipped in self.catalog.skipped:
            Annotations.of(self).add_warning_v2(
                "autorem:unregistered-action", f"alarm left out: {skipped}"
            )
        CostBudgets(self, "Budgets", specs=self.catalog.budgets, topic_arn=self.topic_arn)
        self.alarm_rules: AlarmEventRules | None = None
        if cfg.trigger == "eventbridge":
            self.alarm_rules = AlarmEventRules(
                self,
                "AlarmRules",
                prefix=cfg.prefix,
                alarms_by_action=alarms_by_action(self.catalog.alarms),
                functions=self.remediators.functions,
                dead_letters=self.remediators.dead_letters,
                dead_letter_key=self.notices.key,
                rule_arn=lambda name: catalog_.arn(cfg, "events", f"rule/{name}"),
                max_event_age_seconds=cfg.guards.max_event_age_seconds,
            )
        self.hub_bus: spoke_.HubBus | None = None
        self.spoke_rules: AlarmEventRules | None = None
        if self.spokes:
            self._add_hub_bus(cfg)
        self.decider = self._add_decider(cfg)
        functions = dict(self.remediators.functions)
        if self.remediators.sweeper is not None:
            functions["waf-sweeper"] = self.remediators.sweeper
        if self.decider is not None:
            functions["chat-decisions"] = self.decider
        self.health = SuiteHealth(
            self,
            "Health",
            prefix=cfg.prefix,
            notice_topic=self.notices.notice_topic,
            dead_letters=self.remediators.dead_letters,
            functions=functions,
        )
        self._add_people(cfg)
        SuiteOutputs(
            self,
            "Outputs",
            env=cfg.env,
            switch_parameter=self.switch.name,
            override_prefix=self.switch.override_prefix,
            table_name=self.audit.table.table_name,
            notice_topic=self.notices.notice_topic,
            functions=self.remediators.functions,
        )
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            name=f"{cfg.prefix}-remediation",
            env=cfg.env,
            actions=names,
            alarm_arns=[self.alarm_arn(a.name) for a in self.catalog.alarms],
        )

    def _add_decider(self, cfg: EnvConfig) -> lambda_.Function | None:
        """The chat's one entry point (``remediation.decisions``), when the environment has a
        chat channel: decisions on approvals, and reverts where the approvers admit the
        channel. It may invoke the remediators of the routes that wait for approval and then
        the revert remediator; None without chat or with nothing to reach."""
        if cfg.chat.slack is None and cfg.chat.teams is None:
            return None
        reachable = self._asking()
        if self._chat_admitted(cfg):  # the approvers say whether chat may act at all
            reachable |= {catalog_.REVERT} & set(self.remediators.functions)
        if not reachable:
            return None
        settings = cfg.remediators
        return self.remediators.add_decider(
            chat_identity(cfg.prefix),
            reachable,
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
        )

    @cached_property
    def routing(self) -> catalog_.Catalog:
        """What the remediators' playbook holds: this environment's routes and, in a hub,
        every spoke's (each marked with its account)."""
        if not self.spokes:
            return self.catalog
        spoke_alarms = [a for _, found in self.spokes for a in found.alarms]
        spoke_inventory = [r for _, found in self.spokes for r in found.inventory]
        seen: dict[tuple[str, str], set[str | None]] = {}
        for route in (
            *self.catalog.routes_all(),
            *(a.route for a in spoke_alarms),
            *spoke_inventory,
        ):
            seen.setdefault((route.action, route.target), set()).add(route.account)
        if twice := sorted(key for key, accounts in seen.items() if len(accounts) > 1):
            action, target = twice[0]
            raise ConfigError(
                f"environments.{self.config.env}: {action} on {target[:200]!r} is configured in "
                "two accounts (an ARN without an account, e.g. an API Gateway stage, names the "
                "same id in the hub and a spoke or in two spokes): an approval or a manual "
                "request could not tell which account it means"
            )
        names = [a.name for a in (*self.catalog.alarms, *spoke_alarms)]
        if clash := sorted({n for n in names if names.count(n) > 1}):
            raise ConfigError(
                f"environments.{self.config.env}: alarm names {clash[:3]} are made twice (a "
                "service of the hub and one of a spoke, or of two spokes, give the same name): "
                "rename one of the services"
            )
        return dataclasses.replace(
            self.catalog,
            alarms=(*self.catalog.alarms, *spoke_alarms),
            inventory=(*self.catalog.inventory, *spoke_inventory),
            spokes={a: sorted(r) for a, r in sorted(self.deployment.spokes.items())},
        )

    def _spoke_roles(self) -> dict[str, list[str]]:
        """action -> the spoke roles its remediator assumes (one per spoke account that
        routes to it; revert wherever any other action is routed)."""
        found: dict[str, set[str]] = {}
        prefix = spoke_.spoke_role_prefix(self.config.prefix)
        for spoke, spoke_catalog in self.spokes:
            for action in permissions.routed_actions(spoke_catalog, list(self.actions)):
                name = f"{prefix}{action}"[:64]
                arn = spoke_.role_arn(self.deployment.partition, spoke.account, name)
                found.setdefault(action, set()).add(arn)
        return {action: sorted(arns) for action, arns in found.items()}

    def _spoke_calls(self) -> dict[str, set[str]]:
        """action -> the IAM actions its remediator may call in spoke accounts (through the
        spoke roles, so its own role does not list them): what the action and its routes'
        follow-up steps there declare; revert, what every other routed action does."""
        found: dict[str, set[str]] = {}
        for _, spoke_catalog in self.spokes:
            for name in permissions.routed_actions(spoke_catalog, list(self.actions)):
                steps = {step.action for step in spoke_catalog.followups(name)}
                for step in (name, *steps):
                    found.setdefault(name, set()).update(self.actions[step].permissions)
        if catalog_.REVERT in found:
            for calls in list(found.values()):
                found[catalog_.REVERT] |= calls
        return found

    def _add_hub_bus(self, cfg: EnvConfig) -> None:
        """A hub's bus, and the rules routing each spoke alarm to its action's remediator."""
        self.hub_bus = spoke_.HubBus(
            self,
            "HubBus",
            prefix=cfg.prefix,
            organization_id=cfg.organization_id,
            spoke_accounts=[s.account for s in cfg.spokes],
        )
        bus = spoke_.bus_name(cfg.prefix)
        self.spoke_rules = AlarmEventRules(
            self,
            "SpokeAlarmRules",
            prefix=f"{cfg.prefix}-spokes",
            alarms_by_action=alarms_by_action(a for _, c in self.spokes for a in c.alarms),
            functions=self.remediators.functions,
            dead_letters=self.remediators.dead_letters,
            dead_letter_key=self.notices.key,
            rule_arn=lambda name: catalog_.arn(cfg, "events", f"rule/{bus}/{name}"),
            max_event_age_seconds=cfg.guards.max_event_age_seconds,
            event_bus=self.hub_bus.bus,
            # the bus admits the organization; the rules pass on the enrolled accounts only
            accounts=sorted(self.deployment.spokes),
        )
        self.hub_bus.notify_spoke_health(
            sorted(self.deployment.spokes),
            self.notices.notice_topic,
            self.notices.key,
            lambda name: catalog_.arn(cfg, "events", f"rule/{bus}/{name}"),
        )

    def bus_arn(self) -> str:
        """The hub's bus, as the spokes' forwarding rules name it."""
        return catalog_.arn(
            self.config, "events", f"event-bus/{spoke_.bus_name(self.config.prefix)}"
        )

    @cached_property
    def _book(self) -> Playbook:
        """The playbook as the remediators parse it."""
        return Playbook.from_dict(self.routing.playbook())

    def _asking(self) -> set[str]:
        """The actions of the routes that wait for approval."""
        return {
            route.action
            for found in self._book.routes.values()
            for route in found
            if route.mode is RouteMode.APPROVE
        }

    def _chat_admitted(self, cfg: EnvConfig) -> bool:
        """``people.approvers`` admit the channel (``chat:<app>-<env>``)."""
        return self._book.people.may_decide(chat_identity(cfg.prefix))

    def _buttons(self, cfg: EnvConfig) -> bool:
        """Approve / Reject buttons: a route waits for approval and the approvers admit the
        channel (else the notices show the ``remediate approve`` commands only)."""
        return bool(self._asking()) and self._chat_admitted(cfg)

    def _add_people(self, cfg: EnvConfig) -> None:
        """Chat channels for the notices and PagerDuty paging, where cdk.json names them
        (``chat``, ``paging``): ``self.chat`` and ``self.paging``, else None."""
        self.chat: ChatChannels | None = None
        if cfg.chat.slack is not None or cfg.chat.teams is not None:
            # the channel invokes only the chat's entry point, which names who asks
            self.chat = ChatChannels(
                self,
                "Chat",
                prefix=cfg.prefix,
                chat=cfg.chat,
                notice_topic=self.notices.notice_topic,
                invokable=[self.decider] if self.decider is not None else [],
            )
            if self.decider is not None and self._buttons(cfg):
                self.chat.add_approval_buttons(self.decider, env=cfg.env)
        self.paging: Paging | None = None
        if cfg.paging is not None:
            self.paging = Paging(
                self,
                "Paging",
                prefix=cfg.prefix,
                env=cfg.env,
                config=cfg.paging,
                publishers=self.remediators.functions,
                default_bus_arn=catalog_.arn(cfg, "events", "event-bus/default"),
                notice_topic=self.notices.notice_topic,
                key=self.notices.key,
                rule_arn=lambda name: catalog_.arn(cfg, "events", f"rule/{name}"),
            )

    @property
    def alarm_topic_arn(self) -> Callable[[str], str] | None:
        """What ``ServiceAlarms`` notifies: each action's alarm topic, or nothing when
        EventBridge rules deliver the alarms' state changes (``trigger: eventbridge``)."""
        return self.topic_arn if self.config.trigger == "sns" else None

    def topic_arn(self, action: str) -> str:
        """The alarm topic for ``action`` as a plain ARN: other stacks use it without an export."""
        return catalog_.topic_arn(self.config, alarm_topic_name(self.config.prefix, action))

    def alarm_arn(self, name: str) -> str:
        return catalog_.alarm_arn(self.config, name)

    def deployment_environment(self) -> dict[str, str]:
        """What the remediators and the sweeper read as their authority and freshness limit
        (``remediation.config``); Lambda sets AWS_REGION itself."""
        d = self.deployment
        environment = {
            "DEPLOYMENT_ACCOUNT": d.account,
            "DEPLOYMENT_PARTITION": d.partition,
            "MAX_EVENT_AGE_SECONDS": str(self.config.guards.max_event_age_seconds),
        }
        if d.extra_regions:
            environment["SERVED_REGIONS"] = ",".join(sorted(d.extra_regions))
        if d.spokes:  # a hub (the spokes are in the playbook: remediation.accounts)
            environment["SPOKE_ROLE_PREFIX"] = spoke_.spoke_role_prefix(self.config.prefix)
            environment["SWITCH_ACCOUNT_PREFIX"] = self.switch.account_prefix
        return environment
