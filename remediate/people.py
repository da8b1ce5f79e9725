"""People in the loop from the command line and the drill: approve, reject, silence.

- ``remediate approve ID --env E`` / ``remediate reject ID --env E``: read the pending
  approval (to show what would change and to find the remediator that runs its action),
  confirm, and send the decision ``{approve|reject: ID, requested_by, reason, via}`` to that
  remediator: the remediator checks it (``remediation.holds``) and records it. An id the table
  does not know is still sent (to the first remediator), so the refusal is audited.
- ``remediate silence TARGET --for 2h --reason "..." --env E``: hold automatic actions on a
  target of the inventory, at most the environment's ``people.max_silence_hours``;
  ``remediate silence --lift ID --env E`` ends one early; ``remediate silence --env E``
  lists them. The silence is written to the audit table (``remediation.silences``), with an
  audit record of who silenced or lifted what, and why.

The write commands share the CLI's machinery: ``--env`` required, the caller's account and
region checked (``sts:GetCallerIdentity``), ``--yes`` or a terminal to confirm. The drill's
``approve:``, ``reject:`` and ``silence:`` steps call ``drill_step``.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from serverless_remediation.remediate import cli
from serverless_remediation.remediate import status as status_
from serverless_remediation.remediation.approvals import (
    ID_PATTERN,
    Approval,
    Approvals,
    Policy,
    Status,
    parse_approval,
)
from serverless_remediation.remediation.audit import AuditLog, Entry
from serverless_remediation.remediation.decisions import forward
from serverless_remediation.remediation.errors import RejectedError
from serverless_remediation.remediation.models import Outcome, Source
from serverless_remediation.remediation.silences import (
    Silence,
    Silences,
    build_silence,
    describe_all,
    parse_silence,
)
from serverless_remediation.remediation.store import APPROVALS, PARTITION_KEY, SILENCES

if TYPE_CHECKING:
    from serverless_remediation.remediate.drill import template as tpl

_LENGTH = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
#: a decision the CLI sends says it came from here
VIA_CLI = "cli"


def parse_length(text: str) -> timedelta:
    """``30m``, ``2h``, ``1h30m``, ``1d`` -> timedelta; ``ValueError`` otherwise."""
    match = _LENGTH.match(text.strip().lower())
    if not match or not any(match.groups()):
        raise ValueError(f"--for {text!r}: expected a length such as 30m, 2h, 1h30m or 1d")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def decision(verb: str, approval_id: str, who: str, reason: str, via: str) -> dict[str, str]:
    return {verb: approval_id, "requested_by": who, "reason": reason, "via": via}


def policy_of(playbook: dict[str, Any]) -> Policy:
    return Policy.from_dict(playbook.get("people"))


def inventory_targets(playbook: dict[str, Any]) -> list[str]:
    routes = [
        *playbook.get("alarms", {}).values(),
        *playbook.get("budgets", {}).values(),
        *playbook.get("inventory", []),
    ]
    return sorted({str(r.get("target")) for r in routes})


def record(
    db: Any,
    table: str,
    *,
    action: str,
    target: str,
    who: str,
    reason: str,
    detail: str,
    now: datetime,
) -> str:
    """One audit record for a silence set or lifted (it changes what the suite does)."""
    entry = Entry(
        audit_id=uuid.uuid4().hex,
        correlation_id=uuid.uuid4().hex,
        created_at=now,
        source=Source.MANUAL,
        key=action,
        state="-",
        requested_by=who,
        reason=reason,
        action=action,
        target=target,
    )
    AuditLog(db, table).open(entry, Outcome.EXECUTED, detail)
    return entry.audit_id


def silence_target(
    db: Any,
    table: str,
    playbook: dict[str, Any],
    target: str,
    length: timedelta,
    *,
    reason: str,
    who: str,
    now: datetime,
) -> Silence:
    """Validate and write one silence, with its audit record; ``RejectedError`` says why not."""
    known = inventory_targets(playbook)
    if target not in known:
        raise RejectedError(f"{target} is not a target of this environment; targets: {known}")
    policy = policy_of(playbook)
    made = build_silence(
        target,
        length=length,
        reason=reason,
        created_by=who,
        now=now,
        max_length=policy.max_silence,
    )
    Silences(db, table, policy.max_silence).add(made)
    detail = f"silence {made.silence_id} until {made.until.isoformat()}"
    record(
        db, table, action="silence", target=target, who=who, reason=reason, detail=detail, now=now
    )
    return made


# -- status sections (``remediate status``) ---------------------------------------------------


def _approval_rows(items: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        if item.get(PARTITION_KEY) != APPROVALS:
            continue
        found = parse_approval(item)
        if found.status is Status.PENDING and now < found.deadline:
            rows.append(_approval_row(found, now))
    return sorted(rows, key=lambda r: r["expires"])


def _approval_row(found: Approval, now: datetime) -> dict[str, Any]:
    return {
        "approval": found.approval_id,
        "action": found.route.action,
        "target": found.route.target,
        "plan": found.summary,
        "expires": found.deadline.isoformat(),
        "minutes_left": int(found.left(now).total_seconds() // 60),
        "alarm": found.origin_key,
    }


def _silence_rows(items: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    silences = [parse_silence(i) for i in items if i.get(PARTITION_KEY) == SILENCES]
    # the remediator applies the maximum; status shows each silence's own end
    longest = timedelta(days=3650)
    return describe_all([s for s in silences if s.holds(now, longest)], longest)


status_.register_section("approvals", _approval_rows)
status_.register_section("silences", _silence_rows)


# -- commands -----------------------------------------------------------------------------------


Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the audit record).")]


def _table(deployment: tpl.Deployment, endpoint: str | None, region: str | None) -> tuple[Any, str]:
    name = cli._table_name(deployment, endpoint, region)
    return cli._client(deployment, "dynamodb", endpoint, region), name


def _decide(
    verb: str,
    approval_id: str,
    env: str | None,
    reason: str,
    yes: bool,
    output: cli.Output,
    cdk_out: Any,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    env = cli._write_env(env, f"{verb}")
    deployment = cli._deployment(env, cdk_out)
    who = cli.check_identity(deployment, endpoint_url, region)
    db, table = _table(deployment, endpoint_url, region)
    with cli.aws(f"read approval {approval_id} from {table}"):
        found = Approvals(db, table).get(approval_id) if re.match(ID_PATTERN, approval_id) else None
    if found is None:
        remediator = deployment.remediators[0]  # it refuses the unknown id, and records it
        cli.err.print(f"approval {approval_id} not found in {table}: sent anyway, to be recorded")
        what = f"{verb} approval {approval_id} (not found in {table})"
    else:
        remediator = deployment.remediator_for(found.route.action)
        left = int(found.left(datetime.now(UTC)).total_seconds() // 60)
        what = (
            f"{verb} approval {approval_id}: {found.route.action} on {found.route.target}: "
            f"{found.summary} ({found.status}, {left} min left) in {env} as {who['arn']}"
        )
    cli.confirm(what, yes)
    payload = decision(verb, approval_id, who["arn"], reason, VIA_CLI)
    results = _send(deployment, remediator, payload, endpoint_url, region)
    cli.print_results(results, output)
    code = cli.exit_code(results, dry_run_requested=False)
    if verb == "reject" and [r.get("outcome") for r in results] == ["skipped"]:
        code = cli.Code.OK  # rejected as asked: nothing changed, as wanted
    raise typer.Exit(int(code))


def _send(
    deployment: tpl.Deployment,
    remediator: Any,
    payload: dict[str, Any],
    endpoint_url: str | None,
    region: str | None,
) -> list[dict[str, Any]]:
    function = cli._physical(
        deployment, remediator.logical_id, remediator.name, endpoint_url, region
    )
    lam = cli._client(deployment, "lambda", endpoint_url, region)
    with cli.aws(f"invoke {function}", missing=f"function {function} not found: is it deployed?"):
        response = lam.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload).encode(),
        )
        raw = response["Payload"].read()
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        answer = {"errorMessage": raw[:500].decode(errors="replace")}
    if response.get("FunctionError"):
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
        cli._die(f"{function} failed: {message or json.dumps(answer)[:2000]}", cli.Code.FAILED)
    return list((answer or {}).get("results", [])) if isinstance(answer, dict) else []


def approve(
    approval_id: Annotated[str, typer.Argument(help="The approval id (from the notice).")],
    env: cli.WriteEnv = None,
    reason: Reason = "approved from the remediate CLI",
    yes: cli.Yes = False,
    output: cli.OutputOpt = cli.Output.TABLE,
    cdk_out: cli.CdkOut = None,
    endpoint_url: cli.Endpoint = None,
    region: cli.Region = None,
) -> None:
    """Approve a planned change: the remediator re-checks the switch, the guards and the
    target, then applies and verifies it (or asks again if the target changed)."""
    _decide("approve", approval_id, env, reason, yes, output, cdk_out, endpoint_url, region)


def reject(
    approval_id: Annotated[str, typer.Argument(help="The approval id (from the notice).")],
    env: cli.WriteEnv = None,
    reason: Reason = "rejected from the remediate CLI",
    yes: cli.Yes = False,
    output: cli.OutputOpt = cli.Output.TABLE,
    cdk_out: cli.CdkOut = None,
    endpoint_url: cli.Endpoint = None,
    region: cli.Region = None,
) -> None:
    """Reject a planned change: nothing changes; the rejection is recorded."""
    _decide("reject", approval_id, env, reason, yes, output, cdk_out, endpoint_url, region)


def silence(
    target: Annotated[str | None, typer.Argument(help="A target ARN of the inventory.")] = None,
    length: Annotated[
        str | None,
        typer.Option("--for", help="How long: 30m, 2h, 1h30m, 1d (at most the max)."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (kept).")] = None,
    lift: Annotated[str | None, typer.Option("--lift", help="End silence ID now.")] = None,
    env: cli.WriteEnv = None,
    yes: cli.Yes = False,
    output: cli.OutputOpt = cli.Output.TABLE,
    cdk_out: cli.CdkOut = None,
    endpoint_url: cli.Endpoint = None,
    region: cli.Region = None,
) -> None:
    """Hold automatic actions on TARGET for a while (alarms are still audited and noticed),
    end one early with --lift ID, or list the silences (no TARGET, no --lift)."""
    if target is None and lift is None:
        _list(env or "drill", output, cdk_out, endpoint_url, region)
        return
    if target is not None and lift is not None:
        cli._die("name a TARGET to silence, or --lift ID, not both")
    env = cli._write_env(env, "silence")
    deployment = cli._deployment(env, cdk_out)
    playbook = deployment.playbook()
    policy = policy_of(playbook)
    if lift is None:
        if length is None or reason is None:
            cli._die('silence TARGET needs --for (e.g. 2h) and --reason "..."')
        try:
            span = parse_length(length)
        except ValueError as exc:
            cli._die(str(exc))
        if target not in inventory_targets(playbook):
            listed = "\n  ".join(inventory_targets(playbook))
            cli._die(f"{target} is not a target of {env}; targets:\n  {listed}", cli.Code.REJECTED)
        if span > policy.max_silence or span <= timedelta(0):
            cli._die(
                f"--for {length}: a silence lasts at most {policy.max_silence} in {env}",
                cli.Code.REJECTED,
            )
    who = cli.check_identity(deployment, endpoint_url, region)
    db, table = _table(deployment, endpoint_url, region)
    now = datetime.now(UTC)
    if lift is not None:
        cli.confirm(f"lift silence {lift} in {env} as {who['arn']}", yes)
        with cli.aws(f"lift silence {lift} in {table}"):
            try:
                ended = Silences(db, table, policy.max_silence).lift(lift, who["arn"], now)
            except RejectedError as exc:
                cli._die(exc.reason, cli.Code.REJECTED)
            record(
                db,
                table,
                action="lift-silence",
                target=ended.target,
                who=who["arn"],
                reason=reason or "lifted from the remediate CLI",
                detail=f"silence {lift} lifted",
                now=now,
            )
        cli.console.print(f"silence {lift} on {ended.target} lifted")
        return
    assert target is not None  # checked above
    assert reason is not None
    cli.confirm(f"hold automatic actions on {target} in {env} for {length} as {who['arn']}", yes)
    with cli.aws(f"write the silence to {table}"):
        try:
            made = silence_target(
                db, table, playbook, target, span, reason=reason, who=who["arn"], now=now
            )
        except RejectedError as exc:
            cli._die(exc.reason, cli.Code.REJECTED)
    row = describe_all([made], policy.max_silence)[0]
    if cli._output(output, False) is cli.Output.JSON:
        cli._json_line(row)
        return
    cli.console.print(
        f"silence {made.silence_id} on {target} until {row['until']}; "
        f"lift it with: remediate silence --lift {made.silence_id} --env {env}"
    )


def _list(
    env: str, output: cli.Output, cdk_out: Any, endpoint: str | None, region: str | None
) -> None:
    deployment = cli._deployment(env, cdk_out)
    policy = policy_of(deployment.playbook())
    db, table = _table(deployment, endpoint, region)
    with cli.aws(f"read the silences in {table}"):
        rows = describe_all(
            Silences(db, table, policy.max_silence).active(datetime.now(UTC)),
            policy.max_silence,
        )
    if output is cli.Output.JSON:
        for row in rows:
            cli._json_line(row)
        return
    for row in rows:
        cli.console.print(
            f"{row['silence_id']}  {row['target']}  until {row['until']}  {row['reason']}"
        )
    if not rows:
        cli.console.print("no silences")


def register(app: typer.Typer) -> None:
    for command in (approve, reject, silence):
        app.command()(command)


# Registered when this module is loaded: ``remediate.cli`` imports it at its end (and an
# import of this module first loads the CLI, then comes back here).
register(cli.app)  # type: ignore[has-type]  # cli is loading us (an import cycle)


# -- drill steps -------------------------------------------------------------------------------


def drill_step(runner: Any, step: Any, event: Any) -> None:
    """``approve: N`` / ``reject: N`` (the approval step N asked for, or an id) and
    ``silence: TARGET`` (``for``, ``reason``) on the drill's world and clock."""
    world = runner.world
    db = world.clients("dynamodb")
    who = step.options.get("requested_by") or world.clients("sts").get_caller_identity()["Arn"]
    if step.kind == "silence":
        made = silence_target(
            db,
            world.table,
            world.deployment.playbook(),
            runner._fill(str(step.value)),
            step.options.get("for", timedelta(hours=1)),  # the scenario parsed it
            reason=str(step.options.get("reason", "drill: planned work")),
            who=who,
            now=world.clock(),
        )
        event.note = f"silence {made.silence_id} until {made.until.isoformat()}"
        world.new_audit()  # its audit record is this step's, not the next delivery's
        return
    approval_id = _approval_asked(runner, step.value)
    if step.options.get("button"):
        _press(runner, step.kind, approval_id or str(step.value), event)
        return
    found = Approvals(db, world.table).get(approval_id) if approval_id else None
    deployment = world.deployment
    function = deployment.remediator_for(found.route.action) if found else deployment.remediators[0]
    payload = decision(
        step.kind,
        approval_id or str(step.value),
        who,
        str(step.options.get("reason", f"drill: {step.kind}d")),
        str(step.options.get("via", "drill")),
    )
    runner._last = [(function, payload)]
    runner._deliver_last(event)


def _press(runner: Any, verb: str, approval_id: str, event: Any) -> None:
    """A chat button pressed: the deployed chat decisions function's own routing
    (``remediation.decisions.forward``, with the environment the template gives it) picks
    the remediator and the decision; the drill delivers it, as Lambda would."""
    from serverless_remediation.remediate.drill.template import TemplateError

    world = runner.world
    deciders = world.deployment.deciders
    if len(deciders) != 1:
        raise TemplateError(
            f"button: the template has {len(deciders)} chat decisions functions, not 1 "
            "(a chat channel, an approve route and approvers that admit chat:<app>-<env>)"
        )
    environment = deciders[0].environment
    sent = forward(
        {verb: approval_id},
        identity=environment["CHAT_IDENTITY"],
        remediators=json.loads(environment["REMEDIATOR_FUNCTIONS"]),
        find=Approvals(world.clients("dynamodb"), world.table).get,
        request_id=uuid.uuid4().hex,  # the decisions function's invocation id
    )
    (function,) = [r for r in world.deployment.remediators if r.name == sent.function]
    runner._last = [(function, sent.payload)]
    runner._deliver_last(event)


def _approval_asked(runner: Any, value: Any) -> str | None:
    """The approval the delivery of step ``value`` asked for (its audit record's id is the
    approval's origin), or ``value`` itself when it is not a step number."""
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    events = [e for e in runner.run.events if e.index == value]
    audit_ids = {r["audit_id"] for e in events for dl in e.deliveries for r in dl.records}
    approvals = Approvals(runner.world.clients("dynamodb"), runner.world.table)
    asked = [a for a in approvals.all() if a.origin_audit_id in audit_ids]
    return asked[0].approval_id if asked else None
