"""The cross-account path's added time per event, side by side with the single-account path.

``python -m bench.accounts --runs N --out FILE`` (the emulator in another process,
``AWS_ENDPOINT_URL``): one pipeline per path, each given the same kind of event: an alarm of
``orders`` going to ALARM, on the dry-run switch, so every event takes the whole read path
(switch, confirmation, the target's read and plan) and nothing changes between events:

- ``single``: the hub's own function, the remediator's own credentials;
- ``spoke``: a spoke's function, through the spoke role, as deployed: one ``sts:AssumeRole``
  per audit record (``remediation.accounts``: the session is named after the record);
- ``spoke_cached``: the same, with one session kept across records (what sharing
  credentials between records would save; the suite does not, so that CloudTrail in the
  spoke names the one record each call served).

The three alternate event by event, so load on the machine falls on each alike. Reported:
median wall ms per event for each, and the added ms of the two spoke paths over the single
one. moto answers ``AssumeRole`` without checking a trust policy (an AWS STS call is a
network round trip of its own: the emulator's figure is the floor).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cold import REMEDIATOR_ENV
from bench.emulated import create_core, reset
from bench.stats import median
from serverless_remediation.remediate.drill.messages import alarm_event
from serverless_remediation.remediate.emulator import (
    ACCOUNT,
    REGION,
    clients_in,
    create_function,
    put_plain_alarm,
)
from serverless_remediation.remediation import accounts
from serverless_remediation.remediation.clients import Clients
from serverless_remediation.remediation.config import Settings
from serverless_remediation.remediation.guards import GuardSettings
from serverless_remediation.remediation.models import Outcome
from serverless_remediation.remediation.pipeline import Pipeline
from serverless_remediation.remediation.playbook import Playbook
from serverless_remediation.remediation.scope import Deployment

SPOKE = "222222222222"
ROLE_PREFIX = "autorem-bench-spoke-"
PATHS = ("single", "spoke", "spoke_cached")


def alarm_name(path: str) -> str:
    return f"bench-{path}-orders-error-rate"


def spoke_clients(home: Clients) -> Clients:
    return clients_in(home, SPOKE, region=REGION)


class SharedSession(accounts.Spokes):
    """``Spokes`` keeping one session for every record (the comparison, not the suite)."""

    def clients(
        self, account: str, region: str, *, action: str, record: str, asked_by: str
    ) -> Clients:
        return super().clients(account, region, action=action, record="shared", asked_by="")


def pipelines(home: Clients) -> dict[str, Pipeline]:
    spoke = spoke_clients(home)
    alarms: dict[str, Any] = {}
    for path in PATHS:
        where, account = (home, ACCOUNT) if path == "single" else (spoke, SPOKE)
        alias = create_function(where, f"orders-{path}", versions=3)
        route = {"action": "rollback", "target": alias}
        alarms[alarm_name(path)] = {**route, "account": account} if account != ACCOUNT else route
    spokes = {SPOKE: [REGION]}
    book = Playbook.from_dict({"alarms": alarms, "spokes": spokes})
    settings = Settings(
        env="bench",
        actions=frozenset({"rollback"}),
        table=REMEDIATOR_ENV["AUDIT_TABLE"],
        notice_topic=REMEDIATOR_ENV["NOTICE_TOPIC_ARN"],
        switch_parameter=REMEDIATOR_ENV["SWITCH_PARAMETER"],
        switch_override_prefix=None,
        guards=GuardSettings(),
        playbook=book,
        deployment=Deployment(ACCOUNT, REGION, spokes={SPOKE: frozenset({REGION})}),
        spoke_role_prefix=ROLE_PREFIX,
        switch_account_prefix="/auto-remediation/bench/switch-account/",
    )
    made = {path: Pipeline(settings, home) for path in PATHS}
    assert made["spoke_cached"].spokes is not None
    made["spoke_cached"].spokes = SharedSession(home, partition="aws", role_prefix=ROLE_PREFIX)
    return made


def event(path: str) -> dict[str, Any]:
    """CloudWatch's EventBridge event for ``path``'s alarm going to ALARM now (the drill's
    shape of it, ``messages.alarm_event``)."""
    account = ACCOUNT if path == "single" else SPOKE
    name = alarm_name(path)
    alarm = {"AlarmName": name, "Namespace": "Bench", "MetricName": name, "Statistic": "Sum"}
    return alarm_event(
        alarm,
        arn=f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}",
        region=REGION,
        account=account,
        new_state="ALARM",
        old_state="OK",
        reason="bench",
        when=datetime.now(UTC),
    )


def show_alarm(clients: Clients, name: str) -> None:
    """The emulator's CloudWatch shows the alarm in ALARM since now (moto's clock: after the
    event's time, which the confirmation accepts)."""
    cloudwatch = clients("cloudwatch")
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        put_plain_alarm(cloudwatch, name, namespace="Bench")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="bench")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="bench")


def measure(runs: int, endpoint_url: str) -> dict[str, Any]:
    reset(endpoint_url)
    home = Clients(endpoint_url=endpoint_url)
    create_core(home, REMEDIATOR_ENV, "dry-run")
    made = pipelines(home)
    spoke = spoke_clients(home)
    timings: dict[str, list[float]] = {path: [] for path in PATHS}
    events = max(20, runs * 10)
    for number in range(events + 1):
        for path in PATHS:
            delivered = event(path)
            where = home if path == "single" else spoke
            show_alarm(where, alarm_name(path))  # untimed
            started = time.perf_counter()
            (result,) = made[path].handle(delivered)
            took = (time.perf_counter() - started) * 1000
            if result.outcome is not Outcome.DRY_RUN:
                raise RuntimeError(f"{path}: {result.outcome} {result.reason}")
            if number:  # the first of each warms its clients
                timings[path].append(took)
    ms = {path: median(found) for path, found in timings.items()}
    spokes = made["spoke"].spokes
    assert spokes is not None
    return {
        "events": events,
        "ms": ms,
        "added_ms": {p: ms[p] - ms["single"] for p in ("spoke", "spoke_cached")},
        "assume_role_calls": {"spoke": spokes.assumed},
    }


def main(argv: list[str] | None = None) -> None:
    import os

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    found = measure(args.runs, os.environ["AWS_ENDPOINT_URL"])
    args.out.write_text(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
