"""The ``remediate`` command line: drills on the local emulator, manual invokes, the switch,
history, revert and the plan of what an environment deploys.

Names (remediator functions, audit table, switch parameter) come from the synthesized
template of ``--env``; a name CloudFormation generates is looked up in the deployed stack.
``--endpoint-url`` points any command at an AWS-compatible endpoint.
"""

from __future__ import annotations

import getpass
import itertools
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from remediate.drill import template as tpl

app = typer.Typer(
    help="Alert-driven auto-remediation for AWS serverless: drill, invoke, switch, history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
gate_app = typer.Typer(help="The automation switch of an environment.", no_args_is_help=True)
app.add_typer(gate_app, name="gate")
# Wide enough for ARNs when the output is a log or a pipe, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 180)
err = Console(stderr=True)

ROOT = Path.cwd()
Env = Annotated[str, typer.Option("--env", "-e", help="Environment name in cdk.json.")]
Endpoint = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS-compatible endpoint (e.g. a moto server)."),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default: the env's).")]
CdkOut = Annotated[
    Path | None,
    typer.Option("--cdk-out", help="A synthesized cloud assembly to read instead of synthesizing."),
]


def main() -> None:
    app()


# -- helpers ----------------------------------------------------------------------------------


def _deployment(env: str, cdk_out: Path | None) -> tpl.Deployment:
    try:
        assembly = cdk_out or tpl.synth(ROOT, env)
        return tpl.load(assembly, env)
    except tpl.TemplateError as exc:
        _die(str(exc))


def _die(message: str, code: int = 2) -> Any:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


def _session(deployment: tpl.Deployment, region: str | None) -> Any:
    import boto3

    return boto3.session.Session(region_name=region or deployment.region)


def _client(deployment: tpl.Deployment, service: str, endpoint: str | None, region: str | None):
    kwargs = {"endpoint_url": endpoint} if endpoint else {}
    return _session(deployment, region).client(service, **kwargs)


def _physical(
    deployment: tpl.Deployment,
    logical_id: str,
    template_name: str,
    endpoint: str | None,
    region: str | None,
) -> str:
    """A resource's deployed name: the template's explicit name, else ask CloudFormation."""
    resource = next((r for r in deployment.resources if r.logical_id == logical_id), None)
    if resource is None or resource.named:
        return template_name
    cfn = _client(deployment, "cloudformation", endpoint, region)
    try:
        found = cfn.describe_stack_resource(StackName=resource.stack, LogicalResourceId=logical_id)
    except Exception as exc:  # no stack deployed, no access: say which name is missing
        _die(f"cannot find the deployed name of {logical_id} in stack {resource.stack}: {exc}")
    return found["StackResourceDetail"]["PhysicalResourceId"]


def _setting(deployment: tpl.Deployment, name: str) -> str:
    try:
        return deployment.setting(name)
    except tpl.TemplateError as exc:
        _die(str(exc))


def _resource_for(deployment: tpl.Deployment, kind: str, name: str) -> str:
    """The logical id of the resource of ``kind`` the drill named ``name`` (for CFN lookups)."""
    for resource in deployment.by_type(kind):
        if resource.physical == name:
            return resource.logical_id
    return ""


def _table_name(deployment, endpoint, region) -> str:
    name = _setting(deployment, "AUDIT_TABLE")
    logical = _resource_for(deployment, "AWS::DynamoDB::Table", name)
    return _physical(deployment, logical, name, endpoint, region) if logical else name


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            _die(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def manual_request(
    action: str, target: str, params: dict, dry_run: bool, reason: str, requested_by: str
) -> dict[str, Any]:
    return {
        "action": action,
        "target": target,
        "params": params,
        "dry_run": dry_run,
        "reason": reason,
        "requested_by": requested_by,
    }


def print_results(results: list[dict[str, Any]]) -> None:
    for result in results:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key in ("outcome", "reason", "action", "target", "audit_id"):
            table.add_row(key, escape(str(result.get(key))))
        table.add_row("plan before", escape(json.dumps(result.get("before"), sort_keys=True)))
        table.add_row("plan after", escape(json.dumps(result.get("after"), sort_keys=True)))
        console.print(table)


# -- drill ------------------------------------------------------------------------------------


@app.command()
def drill(
    path: Annotated[Path, typer.Argument(help="A scenario file or a directory of them.")] = Path(
        "scenarios"
    ),
    report: Annotated[Path, typer.Option(help="Where to write the Markdown report.")] = Path(
        "reports/drill.md"
    ),
    cdk_out: CdkOut = None,
    endpoint_url: Endpoint = None,
) -> None:
    """Run scenarios against the local emulator (moto on loopback) and print the timeline.

    Exits 1 when any expectation fails, naming it and what was seen.
    """
    from remediate import drill as drill_mod
    from remediate.drill.scenario import ScenarioError
    from remediate.emulator import Emulator

    emulator = None
    if endpoint_url:
        emulator = Emulator()
        emulator.endpoint_url = endpoint_url.rstrip("/")
    try:
        runs = drill_mod.run(
            path,
            root=ROOT,
            console=console,
            report_path=report,
            assembly=cdk_out,
            emulator=emulator,
        )
    except (ScenarioError, tpl.TemplateError) as exc:
        _die(str(exc))
    if not all(run.passed for run in runs):
        raise typer.Exit(1)


# -- plan -------------------------------------------------------------------------------------


@app.command()
def plan(
    env: Env = "drill",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    cdk_out: CdkOut = None,
) -> None:
    """Every alarm -> action -> target the environment would deploy."""
    deployment = _deployment(env, cdk_out)
    playbook = deployment.playbook()
    if as_json:
        for kind, routes in (("alarm", playbook["alarms"]), ("budget", playbook["budgets"])):
            for name, route in sorted(routes.items()):
                remediator = next(
                    (r.name for r in deployment.remediators if route["action"] in r.actions), None
                )
                line = {kind: name, **route, "remediator": remediator}
                sys.stdout.write(json.dumps(line, sort_keys=True) + "\n")
        return
    table = Table(title=f"{env}: alarms and budgets -> remediations")
    for column in ("alarm / budget", "action", "target", "params", "remediator"):
        table.add_column(column, overflow="fold")
    for kind, routes in (("alarms", playbook["alarms"]), ("budgets", playbook["budgets"])):
        for name, route in sorted(routes.items()):
            remediator = next(
                (r.name for r in deployment.remediators if route["action"] in r.actions), "-"
            )
            deployed = name in deployment.alarms or kind == "budgets"
            table.add_row(
                escape(name if deployed else f"{name} (no alarm in template)"),
                route["action"],
                escape(route["target"]),
                escape(json.dumps(route.get("params", {}), sort_keys=True)),
                escape(remediator),
            )
    console.print(table)
    unrouted = sorted(set(deployment.alarms) - set(playbook["alarms"]))
    if unrouted:
        console.print(f"[dim]alarms with no remediation (notice only): {', '.join(unrouted)}[/]")


# -- invoke / revert --------------------------------------------------------------------------


@app.command()
def invoke(
    action: Annotated[str, typer.Argument(help="rollback, capacity-bump, flip-flag, ...")],
    target: Annotated[str, typer.Argument(help="The target ARN (from the inventory).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record).")] = (
        "manual remediation from the remediate CLI"
    ),
    env: Env = "drill",
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Run the remediator in-process against the emulator (a private moto server, "
            "or the moto server at --endpoint-url, which is reset first).",
        ),
    ] = False,
    switch: Annotated[str, typer.Option(help="With --local: the switch mode.")] = "on",
    cdk_out: CdkOut = None,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Run one remediation by hand and print its plan and result."""
    deployment = _deployment(env, cdk_out)
    try:
        remediator = deployment.remediator_for(action)
    except tpl.TemplateError as exc:
        _die(str(exc))
    request = manual_request(
        action, target, _parse_params(param or []), dry_run, reason, getpass.getuser()
    )
    if local:
        _invoke_local(deployment, remediator, request, switch, endpoint_url)
        return
    function = _physical(deployment, remediator.logical_id, remediator.name, endpoint_url, region)
    response = _client(deployment, "lambda", endpoint_url, region).invoke(
        FunctionName=function,
        InvocationType="RequestResponse",
        Payload=json.dumps(request).encode(),
    )
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        _die(f"{function} failed: {json.dumps(payload)[:2000]}", code=1)
    print_results((payload or {}).get("results", []))


def _invoke_local(
    deployment: tpl.Deployment,
    remediator: tpl.Remediator,
    request: dict[str, Any],
    switch: str,
    endpoint_url: str | None,
) -> None:
    from remediate.drill.runner import diff
    from remediate.drill.world import World
    from remediate.emulator import Emulator

    emulator = Emulator()
    own = endpoint_url is None
    if own:
        emulator.start()
    else:
        emulator.endpoint_url = endpoint_url.rstrip("/")
    try:
        world = World(emulator, deployment)
        world.build({}, switch)
        before = world.snapshot()
        delivery = world.deliver(remediator, request)
        after = world.snapshot()
    finally:
        if own:
            emulator.stop()
    console.print(f"[dim]ran {remediator.name} in-process against {emulator.endpoint_url}[/]")
    results = [
        {
            "outcome": r["outcome"],
            "reason": r.get("detail"),
            "action": r.get("action"),
            "target": r.get("target"),
            "audit_id": r["audit_id"],
            "before": r.get("before_state"),
            "after": r.get("after_state"),
        }
        for r in delivery.records
    ]
    print_results(results)
    changes = diff(before, after)
    console.print("changed: " + (escape("; ".join(changes)) if changes else "nothing"))
    if delivery.error:
        _die(delivery.error, code=1)


@app.command()
def revert(
    audit_id: Annotated[str, typer.Argument(help="The audit id of an executed remediation.")],
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    reason: Annotated[str, typer.Option()] = "manual revert from the remediate CLI",
    env: Env = "drill",
    cdk_out: CdkOut = None,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Undo an executed remediation from its audit record's before-state."""
    invoke(
        "revert",
        audit_id,
        param=None,
        dry_run=dry_run,
        reason=reason,
        env=env,
        local=False,
        switch="on",
        cdk_out=cdk_out,
        endpoint_url=endpoint_url,
        region=region,
    )


# -- gate -------------------------------------------------------------------------------------


def _gate_names(env: str, cdk_out: Path | None) -> tuple[tpl.Deployment, str, str | None]:
    deployment = _deployment(env, cdk_out)
    parameter = _setting(deployment, "SWITCH_PARAMETER")
    prefixes = {r.environment.get("SWITCH_OVERRIDE_PREFIX") for r in deployment.remediators}
    prefixes.discard(None)
    return deployment, parameter, prefixes.pop() if len(prefixes) == 1 else None


@gate_app.command("show")
def gate_show(
    env: Env = "drill", cdk_out: CdkOut = None, endpoint_url: Endpoint = None, region: Region = None
) -> None:
    """Print the switch and any per-action overrides."""
    deployment, parameter, prefix = _gate_names(env, cdk_out)
    ssm = _client(deployment, "ssm", endpoint_url, region)
    try:
        value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        value = "missing (remediators treat this as off)"
    console.print(f"{parameter} = [bold]{escape(value)}[/]")
    if prefix:
        pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix.rstrip("/"))
        for page in pages:
            for item in page["Parameters"]:
                console.print(f"  override {escape(item['Name'])} = {escape(item['Value'])}")


def _gate_set(mode: str, env: str, cdk_out, endpoint_url, region) -> None:
    deployment, parameter, _ = _gate_names(env, cdk_out)
    ssm = _client(deployment, "ssm", endpoint_url, region)
    ssm.put_parameter(Name=parameter, Value=mode, Type="String", Overwrite=True)
    console.print(f"{parameter} = [bold]{mode}[/] (remediators see it within 30 s)")


@gate_app.command("on")
def gate_on(
    env: Env = "drill", cdk_out: CdkOut = None, endpoint_url: Endpoint = None, region: Region = None
) -> None:
    """Let remediators act."""
    _gate_set("on", env, cdk_out, endpoint_url, region)


@gate_app.command("off")
def gate_off(
    env: Env = "drill", cdk_out: CdkOut = None, endpoint_url: Endpoint = None, region: Region = None
) -> None:
    """Kill switch: remediators record events and change nothing."""
    _gate_set("off", env, cdk_out, endpoint_url, region)


@gate_app.command("dry-run")
def gate_dry_run(
    env: Env = "drill", cdk_out: CdkOut = None, endpoint_url: Endpoint = None, region: Region = None
) -> None:
    """Remediators plan and record what they would do, and change nothing."""
    _gate_set("dry-run", env, cdk_out, endpoint_url, region)


# -- history ----------------------------------------------------------------------------------


@app.command()
def history(
    env: Env = "drill",
    target: Annotated[str | None, typer.Option(help="Only this target (newest first).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    cdk_out: CdkOut = None,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Audit records from the environment's audit table."""
    from remediation.audit import AuditLog, parse_item

    deployment = _deployment(env, cdk_out)
    table_name = _table_name(deployment, endpoint_url, region)
    db = _client(deployment, "dynamodb", endpoint_url, region)
    if target:
        records = list(itertools.islice(AuditLog(db, table_name).history(target), limit))
    else:
        items: list[dict] = []
        for page in db.get_paginator("scan").paginate(TableName=table_name):
            items.extend(i for i in page["Items"] if i["pk"]["S"].startswith("audit#"))
        records = sorted(
            (parse_item(i) for i in items), key=lambda r: r["created_at"], reverse=True
        )[:limit]
    if as_json:
        for record in records:
            sys.stdout.write(json.dumps(record, default=str, sort_keys=True) + "\n")
        return
    table = Table(title=f"{env}: audit ({table_name})")
    for column in ("when", "audit id", "outcome", "action", "target", "reason", "by"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.get("created_at", "")[:19],
            record.get("audit_id", ""),
            record.get("outcome", ""),
            record.get("action", "-"),
            escape(record.get("target", "-")),
            escape(str(record.get("detail", ""))[:120]),
            escape(record.get("requested_by", "")[-60:]),
        )
    console.print(table)
