"""``AutoRemediation``: the suite for one environment in one construct (everything but the
alarms, which ``ServiceAlarms`` adds in as many stacks as they need).

A team adds it to its own CDK app::

    from stacks import AutoRemediation, ServiceAlarms, config

    cfg = config.parse_env("myapp", "prod", {...})     # or config.load(context, "prod")
    suite = AutoRemediation(core_stack, "Remediation", config=cfg)
    ServiceAlarms(alarms_stack, "Alarms", specs=suite.catalog.alarms, topic_arn=suite.topic_arn)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Annotations
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks import catalog as catalog_
from stacks.config import EnvConfig
from stacks.constructs.alarms import CostBudgets
from stacks.constructs.audit_store import AuditStore
from stacks.constructs.dashboard import Dashboard
from stacks.constructs.health import SuiteHealth
from stacks.constructs.notices import Notices, Sources, alarm_topic_name
from stacks.constructs.remediators import Remediators, Wiring, route_statements
from stacks.constructs.switch import Switch


def registry() -> dict[str, Any]:
    """The registered actions, imported at synth (``functions/`` is on the path)."""
    from remediation.actions import REGISTRY

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
        names = sorted(self.actions)
        self.notices = Notices(
            self,
            "Notices",
            prefix=cfg.prefix,
            actions=names,
            emails=cfg.notice_emails,
            budget_action=catalog_.COST_GUARD,
            sources=Sources(
                partition=self.deployment.partition,
                region=cfg.region,
                account=cfg.account,
                prefix=cfg.prefix,
            ),
        )
        self.audit = AuditStore(self, "Audit", table_name=f"{cfg.prefix}-audit")
        self.switch = Switch(self, "Switch", app=cfg.app, env=cfg.env, mode=cfg.switch)
        grants = {
            action: route_statements(
                self.actions[action],
                action,
                self.catalog.routes(action),
                region=cfg.region,
                account=cfg.account,
                partition=self.deployment.partition,
            )
            for action in names
        }
        if catalog_.REVERT in grants:
            # revert re-runs the original action's apply/verify on its record's target: it
            # needs every other action's grants (its own target is an audit id, no resource).
            grants[catalog_.REVERT] = [
                *grants[catalog_.REVERT],
                *(s for action in names if action != catalog_.REVERT for s in grants[action]),
            ]
        sweeper_grants = (
            # Expired blocks come out of the same IP sets waf-block puts them in.
            [s for s in grants[catalog_.WAF_BLOCK] if _only_service(s, "wafv2")]
            if catalog_.WAF_BLOCK in grants
            else None
        )
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
                alarm_arns=self.alarm_arn(f"{cfg.prefix}-*"),
            ),
            grants=grants,
            alarm_topics=self.notices.alarm_topics,
            playbook=self.catalog.playbook(),
            reserved_concurrency=settings.reserved_concurrency,
            log_retention_days=settings.log_retention_days,
            timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb,
            layer_version=settings.powertools_layer_version,
            sweep_minutes=settings.sweep_minutes,
            sweeper_grants=sweeper_grants,
        )
        for skipped in self.catalog.skipped:
            Annotations.of(self).add_warning_v2(
                "autorem:unregistered-action", f"alarm left out: {skipped}"
            )
        CostBudgets(self, "Budgets", specs=self.catalog.budgets, topic_arn=self.topic_arn)
        functions = dict(self.remediators.functions)
        if self.remediators.sweeper is not None:
            functions["waf-sweeper"] = self.remediators.sweeper
        self.health = SuiteHealth(
            self,
            "Health",
            prefix=cfg.prefix,
            notice_topic=self.notices.notice_topic,
            dead_letters=self.remediators.dead_letters,
            functions=functions,
        )
        self.dashboard = Dashboard(
            self,
            "Dashboard",
            name=f"{cfg.prefix}-remediation",
            actions=names,
            alarm_arns=[self.alarm_arn(a.name) for a in self.catalog.alarms],
        )

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
        return environment


def _only_service(statement: iam.PolicyStatement, service: str) -> bool:
    return all(a.startswith(f"{service}:") for a in statement.actions)
