"""A remediator's settings: environment variables the CDK app sets, plus the bundled playbook.

Read once per container. A missing or malformed setting fails the cold start loudly
(the event then lands in the dead-letter queue) rather than running half-configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ConfigurationError
from .guards import MAX_BREAKER, GuardSettings
from .playbook import Playbook
from .scope import Deployment
from .targets import partition_of

DEFAULT_PLAYBOOK = Path(__file__).resolve().parent.parent / "playbook.json"


#: an alarm transition older than this is not acted on (configurable: MAX_EVENT_AGE_SECONDS)
DEFAULT_MAX_EVENT_AGE_SECONDS = 15 * 60


def required(environ: Mapping[str, str], name: str, who: str) -> str:
    """The variable's value, or a ``ConfigurationError`` naming it (a loud cold start)."""
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{who} misconfigured: environment variable {name} unset")
    return value


def deployment_from_env(environ: Mapping[str, str], who: str) -> Deployment:
    """Where this deployment has authority: ``DEPLOYMENT_ACCOUNT`` (set by the CDK app),
    ``AWS_REGION`` (set by Lambda), ``SERVED_REGIONS`` (extra regions, comma-separated)."""
    region = required(environ, "AWS_REGION", who)
    extra = frozenset(r.strip() for r in environ.get("SERVED_REGIONS", "").split(",") if r.strip())
    return Deployment(
        account=required(environ, "DEPLOYMENT_ACCOUNT", who),
        region=region,
        partition=environ.get("DEPLOYMENT_PARTITION", "").strip() or partition_of(region),
        extra_regions=extra,
    )


@dataclass(frozen=True)
class Settings:
    env: str
    actions: frozenset[str]
    table: str
    notice_topic: str
    switch_parameter: str
    switch_override_prefix: str | None
    guards: GuardSettings
    playbook: Playbook
    deployment: Deployment
    max_event_age_seconds: int = DEFAULT_MAX_EVENT_AGE_SECONDS
    #: put outcome events on the default bus (paging); OUTCOME_EVENTS=on, set by the CDK app
    outcome_events: bool = False
    #: a hub's spoke roles are named ``<prefix><action>`` (SPOKE_ROLE_PREFIX)
    spoke_role_prefix: str = ""
    #: a hub's per-account switches are ``<prefix><account>`` (SWITCH_ACCOUNT_PREFIX)
    switch_account_prefix: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def need(name: str) -> str:
            return required(environ, name, "remediator")

        def number(name: str, default: int, most: int | None = None) -> int:
            raw = environ.get(name, "").strip()
            try:
                value = int(raw) if raw else default
            except ValueError:
                raise ConfigurationError(
                    f"remediator misconfigured: {name}={raw!r} not an integer"
                ) from None
            if value < 1:
                raise ConfigurationError(f"remediator misconfigured: {name} must be at least 1")
            if most is not None and value > most:
                raise ConfigurationError(f"remediator misconfigured: {name} must be at most {most}")
            return value

        defaults = GuardSettings()
        playbook = Playbook.load(environ.get("PLAYBOOK_PATH") or DEFAULT_PLAYBOOK)
        return cls(
            env=need("REMEDIATION_ENV"),
            actions=frozenset(
                a.strip() for a in need("REMEDIATION_ACTIONS").split(",") if a.strip()
            ),
            table=need("AUDIT_TABLE"),
            notice_topic=need("NOTICE_TOPIC_ARN"),
            switch_parameter=need("SWITCH_PARAMETER"),
            switch_override_prefix=environ.get("SWITCH_OVERRIDE_PREFIX") or None,
            guards=GuardSettings(
                cooldown_seconds=number("COOLDOWN_SECONDS", defaults.cooldown_seconds),
                breaker_max=number("BREAKER_MAX_PER_HOUR", defaults.breaker_max, MAX_BREAKER),
            ),
            playbook=playbook,
            # a hub's enrolled spokes are bundled with the playbook (too many for variables)
            deployment=replace(deployment_from_env(environ, "remediator"), spokes=playbook.spokes),
            max_event_age_seconds=number("MAX_EVENT_AGE_SECONDS", DEFAULT_MAX_EVENT_AGE_SECONDS),
            outcome_events=environ.get("OUTCOME_EVENTS", "").strip() == "on",
            spoke_role_prefix=environ.get("SPOKE_ROLE_PREFIX", "").strip(),
            switch_account_prefix=environ.get("SWITCH_ACCOUNT_PREFIX") or None,
        )
