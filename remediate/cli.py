"""The ``remediate`` command line: drills on the local emulator, manual invokes, the switch,
history, revert and the plan of what an environment deploys.

Names (remediator functions, audit table, switch parameter) come from the synthesized
template of ``--env``; a name CloudFormation generates is looked up in the deployed stack.
``history``, ``gate`` and ``revert`` can read them from the deployed core stack's outputs
instead (``--from-stack``, and always outside a checkout): no synth, no Node.
``--endpoint-url`` points any command at an AWS-compatible endpoint. The project (cdk.json,
app.py) is found from any subdirectory, or named by ``REMEDIATE_PROJECT``.

Commands that write to AWS (``invoke`` without ``--local``, ``gate on|off|dry-run``,
``revert``) name their environment (``--env`` has no default there), check that the shell's
credentials and region are that environment's account and region (``sts:GetCallerIdentity``)
before anything is sent, ask on a terminal (``--yes`` for scripts), and record the caller's
IAM ARN as ``requested_by``. Every command ends with one of the ``Code`` exit codes; a common
mistake (no credentials, nothing deployed, wrong region) is one line saying what to do.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serverless_remediation.remediate.drill import template as tpl


class Code(IntEnum):
    """The exit codes: 0 only when the command did what was asked."""

    OK = 0
    #: the remediation ran and failed (recorded in the audit), or the remediator errored
    FAILED = 1
    #: the command line is wrong: unknown option or environment, missing --env, bad --param
    USAGE = 2
    #: refused: target or kind not in the inventory, a limit, the scope (what is accepted
    #: is listed)
    REJECTED = 3
    #: escalated to a human: nothing changed (at a cap, a precondition, a guard)
    ESCALATED = 4
    #: nothing changed and nothing is wrong: the switch is off or dry-run, a cooldown or a
    #: duplicate skipped it, or the confirmation was declined
    NOT_DONE = 5
    #: the environment cannot be reached as asked: no or expired credentials, credentials of
    #: another account or region, no such stack, function, audit table or endpoint
    SETUP = 6


EXIT_CODES = (
    "Exit codes: 0 done as asked; 1 failed; 2 usage error; 3 rejected (what is accepted is "
    "listed); 4 escalated to a human, nothing changed; 5 not done (switch off or dry-run, a "
    "guard, or declined); 6 setup (credentials, account or region, nothing deployed)."
)

app = typer.Typer(
    help="Alert-driven auto-remediation for AWS serverless: drill, invoke, switch, history.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
gate_app = typer.Typer(
    help="The automation switch of an environment.", epilog=EXIT_CODES, no_args_is_help=True
)
app.add_typer(gate_app, name="gate")
emulator_app = typer.Typer(
    help="The emulator kept between `--local --keep` commands.", no_args_is_help=True
)
app.add_typer(emulator_app, name="emulator")
config_app = typer.Typer(help="The cdk.json configuration: its JSON Schema for editors.")
app.add_typer(config_app, name="config")
# One error, one line: not wrapped at 80 columns in a log.
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 400)


# Tables as wide as a terminal, or unbounded when piped: an ARN is never folded (and stays
# whole, to paste); ``--output json`` is for machines.
console = Console(width=None if sys.stdout.isatty() else 400, highlight=False)
# The drill's timeline fills the width it is given: a log gets 180 columns.
drill_console = Console(width=None if sys.stdout.isatty() else 180)


def find_project(start: Path | None = None) -> Path | None:
    """The checkout this CLI works in: ``REMEDIATE_PROJECT``, else the nearest directory
    from ``start`` (the working directory) upwards holding app.py and cdk.json."""
    named = os.environ.get("REMEDIATE_PROJECT")
    if named:
        return Path(named).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "cdk.json").is_file() and (folder / "app.py").is_file():
            return folder
    return None


ROOT = find_project()
#: where ``--local --keep`` keeps its emulator (cdk.out/ is ignored by git)
STATE_DIR = (ROOT / "cdk.out" / "local") if ROOT else Path("cdk.out") / "local"


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


Env = Annotated[str, typer.Option("--env", "-e", help="Environment name in cdk.json.")]
WriteEnv = Annotated[
    str | None,
    typer.Option("--env", "-e", help="Environment name in cdk.json (required: this writes)."),
]
Endpoint = Annotated[
    str | None,
    typer.Option("--endpoint-url", help="AWS-compatible endpoint (e.g. a moto server)."),
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default: the env's).")]
CdkOut = Annotated[
    Path | None,
    typer.Option("--cdk-out", help="A synthesized cloud assembly to read instead of synthesizing."),
]
FromStack = Annotated[
    bool,
    typer.Option(
        "--from-stack",
        help="Read the names from the deployed core stack's outputs (DescribeStacks): no "
        "synth, no Node. The default outside a checkout.",
    ),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table (for people) or json (one per line).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Same as --output json.")]
StateDir = Annotated[
    Path,
    typer.Option("--state-dir", help="Where --keep keeps the local emulator's address and state."),
]

#: capacity-bump kinds by their short names (``--kind``)
KINDS = {
    "memory": "lambda-memory",
    "timeout": "lambda-timeout",
    "reserved": "lambda-reserved-concurrency",
    "provisioned": "lambda-provisioned-concurrency",
    "throughput": "dynamodb-throughput",
    "on-demand": "dynamodb-on-demand",
    "throttle": "apigateway-throttle",
}
CAPACITY_BUMP = "capacity-bump"
REVERT = "revert"
#: outcome -> exit code, worst first when a request had several results
OUTCOME_CODES = {
    "failed": Code.FAILED,
    "pending": Code.FAILED,
    "escalated": Code.ESCALATED,
    "rejected": Code.REJECTED,
    "skipped": Code.NOT_DONE,
    # held for a person: nothing changed yet (remediate approve / silence)
    "awaiting-approval": Code.NOT_DONE,
    "silenced": Code.NOT_DONE,
    "dry-run": Code.OK,  # NOT_DONE when the dry run was not asked for (the switch's)
    "executed": Code.OK,
}
SEVERITY = (Code.FAILED, Code.ESCALATED, Code.REJECTED, Code.SETUP, Code.NOT_DONE, Code.OK)


def main() -> None:
    app()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("serverless-remediation")
        except PackageNotFoundError:
            found = "unknown (not installed: pip install .)"
        console.print(f"remediate {found}")
        raise typer.Exit(Code.OK)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Alert-driven auto-remediation for AWS serverless: drill, invoke, switch, history."""


# -- errors -----------------------------------------------------------------------------------


def _die(message: str, code: int = Code.USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(int(code))


#: AWS error codes that mean the credentials, not the request, are the problem
CREDENTIAL_ERRORS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
    }
)
ACCESS_ERRORS = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


@contextlib.contextmanager
def aws(doing: str, missing: str | None = None) -> Iterator[None]:
    """Turn a botocore error while ``doing`` into one line and an exit code.

    ``missing``: what to say when the resource is not there (ResourceNotFoundException,
    a stack that does not exist)."""
    from botocore import exceptions as bx

    try:
        yield
    except (bx.NoCredentialsError, bx.PartialCredentialsError):
        _die(
            f"no AWS credentials to {doing}: set AWS_PROFILE (or run `aws configure` / "
            "`aws sso login`); to try it without AWS, use --local",
            Code.SETUP,
        )
    except bx.ProfileNotFound as exc:
        _die(f"{exc}: check AWS_PROFILE against ~/.aws/config", Code.SETUP)
    except (bx.TokenRetrievalError, bx.SSOTokenLoadError, bx.UnauthorizedSSOTokenError):
        _die(f"the SSO session has expired ({doing}): run `aws sso login`", Code.SETUP)
    except bx.EndpointConnectionError as exc:
        _die(
            f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')} to {doing}: "
            "check --region, --endpoint-url and the network",
            Code.SETUP,
        )
    except bx.ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        if code in CREDENTIAL_ERRORS:
            _die(f"AWS refused the credentials ({code}) to {doing}: refresh them", Code.SETUP)
        if code in ACCESS_ERRORS:
            _die(f"access denied to {doing}: {message}", Code.SETUP)
        not_found = code.endswith("NotFoundException") or code == "ResourceNotFound"
        if missing and (not_found or "does not exist" in message):
            _die(missing, Code.SETUP)
        _die(f"could not {doing}: {code}: {message}", Code.FAILED)
    except bx.BotoCoreError as exc:
        _die(f"could not {doing}: {exc}", Code.SETUP)


# -- the environment --------------------------------------------------------------------------


def _context() -> dict[str, Any]:
    if ROOT is None:
        return {}
    try:
        context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return context if isinstance(context, dict) else {}


def _environments() -> list[str]:
    try:
        return sorted(_context()["environments"])
    except (KeyError, TypeError):
        return []


def _project() -> Path:
    if ROOT is None:
        _die(
            f"no project here ({Path.cwd()}): run inside the checkout (where cdk.json and "
            "app.py are) or set REMEDIATE_PROJECT to it",
            Code.SETUP,
        )
    return ROOT


def _deployed(env: str, endpoint: str | None, region: str | None) -> tpl.Deployment:
    """The environment's names from its core stack's outputs (no synth)."""
    import boto3

    from serverless_remediation.remediate import deployed

    stack_name = deployed.core_stack_name(
        env, str(_context().get("app_name") or deployed.DEFAULT_APP)
    )
    with aws("load the AWS configuration"):
        cfn = boto3.session.Session(region_name=region).client(
            "cloudformation", endpoint_url=endpoint
        )
    where = cfn.meta.region_name
    with aws(
        f"read stack {stack_name} (cloudformation:DescribeStacks)",
        missing=f"stack {stack_name} is not deployed in {where} for these credentials: "
        f"deploy {env} (npx cdk deploy --all -c env={env}) or check --region",
    ):
        (stack,) = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    try:
        return deployed.from_stack(env, dict(stack))
    except tpl.TemplateError as exc:
        _die(str(exc), Code.SETUP)


def _deployment(
    env: str,
    cdk_out: Path | None,
    *,
    from_stack: bool = False,
    endpoint: str | None = None,
    region: str | None = None,
) -> tpl.Deployment:
    if from_stack or (ROOT is None and cdk_out is None):
        return _deployed(env, endpoint, region)
    known = _environments()
    if cdk_out is None and known and env not in known:
        _die(f"no environment {env!r} in cdk.json; environments: {', '.join(known)}")
    try:
        assembly = cdk_out or tpl.synth(_project(), env)
        deployment = tpl.load(assembly, env)
    except tpl.TemplateError as exc:
        _die(str(exc), Code.SETUP)
    built_for = {r.environment.get("REMEDIATION_ENV") for r in deployment.remediators}
    if built_for != {env}:
        # --env prod with a drill assembly would send prod's name to drill's account
        _die(f"{assembly} was synthesized for {', '.join(sorted(map(str, built_for)))}, not {env}")
    return deployment


def _write_env(env: str | None, command: str) -> str:
    """Commands that write have no default environment."""
    if env is None:
        known = _environments()
        listed = f" ({', '.join(known)})" if known else ""
        _die(f"{command} writes to AWS: name the environment with --env{listed}")
    return env


def _session(deployment: tpl.Deployment, region: str | None) -> Any:
    import boto3

    with aws("load the AWS configuration"):
        return boto3.session.Session(region_name=region or deployment.region)


def _client(deployment: tpl.Deployment, service: str, endpoint: str | None, region: str | None):
    kwargs = {"endpoint_url": endpoint} if endpoint else {}
    with aws(f"make a {service} client"):
        return _session(deployment, region).client(service, **kwargs)


def caller(deployment: tpl.Deployment, endpoint: str | None, region: str | None) -> dict[str, str]:
    """Who the shell's credentials are, where: ``{"account", "arn", "region"}``."""
    sts = _client(deployment, "sts", endpoint, region)
    with aws("identify the caller (sts:GetCallerIdentity)"):
        found = sts.get_caller_identity()
    return {"account": found["Account"], "arn": found["Arn"], "region": sts.meta.region_name}


def check_identity(
    deployment: tpl.Deployment, endpoint: str | None, region: str | None
) -> dict[str, str]:
    """The caller, if its account, partition and region are the environment's; else refuse,
    naming both, before anything is written."""
    who = caller(deployment, endpoint, region)
    partition = who["arn"].split(":")[1] if who["arn"].count(":") >= 5 else ""
    if (
        who["account"] != deployment.account
        or who["region"] != deployment.region
        or (partition and partition != deployment.partition)
    ):
        _die(
            f"refusing to write: the credentials ({who['arn']}) are for account "
            f"{who['account']} in {who['region']}, but {deployment.env} is account "
            f"{deployment.account} in {deployment.region}: use credentials for "
            f"{deployment.account} (e.g. AWS_PROFILE) and its region",
            Code.SETUP,
        )
    return who


def _terminal() -> bool:
    return sys.stdin.isatty()


def confirm(what: str, yes: bool) -> None:
    """Ask on a terminal; without one, only ``--yes`` goes ahead."""
    if yes:
        return
    if not _terminal():
        _die(f"{what}: no terminal to confirm on: pass --yes to go ahead")
    if not typer.confirm(f"{what}. Go ahead?", default=False, err=True):
        err.print("nothing done")
        raise typer.Exit(Code.NOT_DONE)


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
    with aws(
        f"find {logical_id} in stack {resource.stack}",
        missing=f"stack {resource.stack} is not deployed in account {deployment.account} "
        f"{region or deployment.region}: deploy it (npx cdk deploy --all -c "
        f"env={deployment.env}) or check --region",
    ):
        found = cfn.describe_stack_resource(StackName=resource.stack, LogicalResourceId=logical_id)
    return found["StackResourceDetail"]["PhysicalResourceId"]


def _setting(deployment: tpl.Deployment, name: str) -> str:
    try:
        return deployment.setting(name)
    except tpl.TemplateError as exc:
        _die(str(exc), Code.SETUP)


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


# -- the inventory ----------------------------------------------------------------------------


def routes_of(playbook: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """Every configured route of ``action``: alarms, budgets and the extra inventory."""
    routes = [
        *playbook.get("alarms", {}).values(),
        *playbook.get("budgets", {}).values(),
        *playbook.get("inventory", []),
    ]
    return [r for r in routes if r.get("action") == action]


def check_request(
    deployment: tpl.Deployment, action: str, target: str, params: dict[str, Any], kind: str | None
) -> dict[str, Any]:
    """``params`` as the remediator should get them, or refuse listing what is accepted: the
    inventory's targets for ``action``; for capacity-bump, the kinds configured for
    ``target`` (every route to it, not only the first)."""
    if kind is not None and action != CAPACITY_BUMP:
        _die(f"--kind is for {CAPACITY_BUMP}, not {action}")
    try:
        deployment.remediator_for(action)
    except tpl.TemplateError as exc:
        _die(str(exc))
    if action == REVERT:
        return params
    routes = routes_of(deployment.playbook(), action)
    matching = [r for r in routes if r.get("target") == target]
    if not matching:
        accepted = sorted({str(r.get("target")) for r in routes})
        listed = "\n  ".join(accepted) or "none"
        _die(
            f"{target} is not in {deployment.env}'s inventory for {action}; accepted:\n  {listed}",
            Code.REJECTED,
        )
    if action != CAPACITY_BUMP:
        return params
    configured = list(dict.fromkeys(str(r.get("params", {}).get("kind")) for r in matching))
    wanted = kind if kind is not None else params.get("kind")
    shown = ", ".join(_short_kind(k) for k in configured)
    if wanted is None:
        if len(configured) > 1:
            _die(f"{target} takes capacity-bump kinds {shown}: name one with --kind")
        return params
    full = KINDS.get(str(wanted), str(wanted))
    if full not in KINDS.values():
        _die(f"--kind {wanted}: expected one of {', '.join(KINDS)}")
    if full not in configured:
        _die(
            f"capacity-bump {_short_kind(full)} is not configured for {target}; "
            f"accepted kinds: {shown}",
            Code.REJECTED,
        )
    return {**params, "kind": full}


def _short_kind(kind: str) -> str:
    return next((short for short, full in KINDS.items() if full == kind), kind)


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


def exit_code(results: list[dict[str, Any]], dry_run_requested: bool) -> Code:
    """The worst outcome's code; no result at all is a failure."""
    if not results:
        return Code.FAILED
    codes = []
    for result in results:
        outcome = str(result.get("outcome"))
        code = OUTCOME_CODES.get(outcome, Code.FAILED)
        if outcome == "dry-run" and not dry_run_requested:
            code = Code.NOT_DONE  # the switch said dry-run: nothing done that was asked
        codes.append(code)
    return min(codes, key=SEVERITY.index)


# -- output -----------------------------------------------------------------------------------


def short_arn(arn: str, width: int = 64) -> str:
    """``arn`` in at most ``width`` characters, shortened in the middle: account and region
    first, then the middle of the resource, so the service and both ends of the resource
    stay readable."""
    if len(arn) <= width:
        return arn
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[0] == "arn":
        head, resource = ":".join([*parts[:3], "…", ""]), parts[5]
    else:
        head, resource = "", arn
    room = max(width - len(head) - 1, 2)
    if len(resource) > room + 1:
        resource = resource[: room // 2] + "…" + resource[-(room - room // 2) :]
    return head + resource


def _arn_cell(text: str) -> str:
    """ARNs whole when piped (they may be pasted); on a terminal, shortened in the middle to
    a third of its width (``--output json`` has them whole)."""
    if not console.is_terminal:
        return text
    return short_arn(text, max(32, console.width // 3))


def _output(output: Output, as_json: bool) -> Output:
    return Output.JSON if as_json else output


def _json_line(item: Any) -> None:
    sys.stdout.write(json.dumps(item, default=str, sort_keys=True) + "\n")


def print_results(results: list[dict[str, Any]], output: Output = Output.TABLE) -> None:
    if output is Output.JSON:
        for result in results:
            _json_line(result)
        return
    for result in results:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for key in ("outcome", "reason", "action"):
            table.add_row(key, escape(str(result.get(key))))
        table.add_row("target", escape(_arn_cell(str(result.get("target")))))
        table.add_row("audit_id", escape(str(result.get("audit_id"))))
        table.add_row("plan before", escape(json.dumps(result.get("before"), sort_keys=True)))
        table.add_row("plan after", escape(json.dumps(result.get("after"), sort_keys=True)))
        console.print(table)


# -- drill ------------------------------------------------------------------------------------


@config_app.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of cdk.json's environments (point your editor at it)."""
    from serverless_remediation.stacks.config import json_schema

    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


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
    from serverless_remediation.remediate import drill as drill_mod
    from serverless_remediation.remediate.drill.scenario import ScenarioError
    from serverless_remediation.remediate.emulator import Emulator

    emulator = None
    if endpoint_url:
        emulator = Emulator()
        emulator.endpoint_url = endpoint_url.rstrip("/")
    try:
        runs = drill_mod.run(
            path,
            root=_project(),
            console=drill_console,
            report_path=report,
            assembly=cdk_out,
            emulator=emulator,
        )
    except ScenarioError as exc:
        _die(str(exc))
    except tpl.TemplateError as exc:
        _die(str(exc), Code.SETUP)
    if not all(run.passed for run in runs):
        raise typer.Exit(Code.FAILED)


# -- plan -------------------------------------------------------------------------------------


@app.command()
def plan(
    env: Env = "drill",
    output: OutputOpt = Output.TABLE,
    as_json: AsJson = False,
    cdk_out: CdkOut = None,
) -> None:
    """Every alarm -> action -> target the environment would deploy."""
    if cdk_out is None:
        _project()  # the plan is the synthesized template's, not a deployed stack's
    deployment = _deployment(env, cdk_out)
    playbook = deployment.playbook()
    if _output(output, as_json) is Output.JSON:
        for kind, routes in (("alarm", playbook["alarms"]), ("budget", playbook["budgets"])):
            for name, route in sorted(routes.items()):
                remediator = next(
                    (r.name for r in deployment.remediators if route["action"] in r.actions), None
                )
                _json_line({kind: name, **route, "remediator": remediator})
        return
    table = Table(title=f"{env}: alarms and budgets -> remediations")
    table.add_column("alarm / budget", overflow="fold", min_width=16)
    table.add_column("action", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("params", overflow="fold", min_width=12)
    table.add_column("remediator", no_wrap=True)
    for kind, routes in (("alarms", playbook["alarms"]), ("budgets", playbook["budgets"])):
        for name, route in sorted(routes.items()):
            remediator = next(
                (r.name for r in deployment.remediators if route["action"] in r.actions), "-"
            )
            deployed = name in deployment.alarms or kind == "budgets"
            table.add_row(
                escape(name if deployed else f"{name} (no alarm in template)"),
                route["action"],
                escape(_arn_cell(route["target"])),
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
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="capacity-bump: memory, timeout, reserved, provisioned, throughput, "
            "on-demand or throttle (one the inventory configures for the target).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; change nothing.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit record).")] = (
        "manual remediation from the remediate CLI"
    ),
    env: WriteEnv = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Run the remediator in-process against the emulator: a private moto server, "
            "the one --keep kept, or the moto server at --endpoint-url (reset and built first, "
            "unless --keep built it). --env defaults to drill; nothing is sent to AWS.",
        ),
    ] = False,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="With --local: keep the emulator and its state for the next --local command "
            "(history --local, revert --local); `remediate emulator stop` ends it.",
        ),
    ] = False,
    switch: Annotated[str, typer.Option(help="With --local: the switch mode.")] = "on",
    yes: Yes = False,
    output: OutputOpt = Output.TABLE,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
    state_dir: StateDir = STATE_DIR,
) -> None:
    """Run one remediation by hand and print its plan and result."""
    if keep and not local:
        _die("--keep is for --local")
    env = (env or "drill") if local else _write_env(env, "invoke without --local")
    if (from_stack or (ROOT is None and cdk_out is None)) and action != REVERT:
        _die(
            f"invoke {action} checks the request against the inventory in the synthesized "
            "template: run it in the checkout or give --cdk-out (revert, history and gate "
            "work from the stack)"
        )
    if from_stack and local:
        _die("--from-stack reads a deployed stack; --local runs on the emulator: pick one")
    deployment = _deployment(
        env, cdk_out, from_stack=from_stack, endpoint=endpoint_url, region=region
    )
    params = check_request(deployment, action, target, _parse_params(param or []), kind)
    remediator = deployment.remediator_for(action)
    if local:
        _invoke_local(
            deployment,
            remediator,
            action,
            target,
            params,
            dry_run=dry_run,
            reason=reason,
            switch=switch,
            endpoint_url=endpoint_url,
            keep=keep,
            state_dir=state_dir,
            output=output,
        )
        return
    who = check_identity(deployment, endpoint_url, region)
    function = _physical(deployment, remediator.logical_id, remediator.name, endpoint_url, region)
    if not dry_run:
        confirm(
            f"{action} on {target} in {env} (account {deployment.account}, "
            f"{deployment.region}) as {who['arn']}",
            yes,
        )
    request = manual_request(action, target, params, dry_run, reason, who["arn"])
    lam = _client(deployment, "lambda", endpoint_url, region)
    with aws(
        f"invoke {function}",
        missing=f"function {function} not found in account {deployment.account} "
        f"{region or deployment.region}: deploy {env} (npx cdk deploy --all -c env={env}) "
        "or check --region",
    ):
        response = lam.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(request).encode(),
        )
        raw = response["Payload"].read()
    try:
        payload = json.loads(raw or b"null")
    except ValueError:
        payload = {"errorMessage": raw[:500].decode(errors="replace")}
    if response.get("FunctionError"):
        message = payload.get("errorMessage") if isinstance(payload, dict) else None
        _die(f"{function} failed: {message or json.dumps(payload)[:2000]}", Code.FAILED)
    results = (payload or {}).get("results", []) if isinstance(payload, dict) else []
    finish(deployment, results, dry_run, output)


def finish(
    deployment: tpl.Deployment,
    results: list[dict[str, Any]],
    dry_run: bool,
    output: Output,
    *,
    printed: bool = False,
) -> NoReturn:
    """Print the results (unless ``printed``) and exit with the code of the worst; a
    rejection lists what the inventory accepts."""
    if not printed:
        print_results(results, output)
    code = exit_code(results, dry_run)
    for result in results:
        if result.get("outcome") == "rejected" and result.get("action") not in (None, REVERT):
            accepted = sorted(
                {str(r.get("target")) for r in routes_of(deployment.playbook(), result["action"])}
            )
            if accepted and "inventory" in str(result.get("reason")):
                err.print(f"accepted targets for {result['action']}: " + ", ".join(accepted))
    raise typer.Exit(int(code))


def _invoke_local(
    deployment: tpl.Deployment,
    remediator: tpl.Remediator,
    action: str,
    target: str,
    params: dict[str, Any],
    *,
    dry_run: bool,
    reason: str,
    switch: str,
    endpoint_url: str | None,
    keep: bool,
    state_dir: Path,
    output: Output,
) -> NoReturn:
    from serverless_remediation.remediate.drill.runner import diff

    with _local_world(deployment, switch, endpoint_url, keep, state_dir) as world:
        identity = world.clients("sts").get_caller_identity()["Arn"]
        request = manual_request(action, target, params, dry_run, reason, identity)
        before = world.snapshot()
        delivery = world.deliver(remediator, request)
        after = world.snapshot()
    if output is Output.TABLE:
        console.print(
            f"[dim]ran {remediator.name} in-process against {world.emulator.endpoint_url}[/]"
        )
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
    print_results(results, output)
    if output is Output.TABLE:
        changes = diff(before, after)
        console.print("changed: " + (escape("; ".join(changes)) if changes else "nothing"))
    if delivery.error:
        _die(delivery.error, Code.FAILED)
    finish(deployment, results, dry_run, output, printed=True)


@app.command()
def revert(
    audit_id: Annotated[str, typer.Argument(help="The audit id of an executed remediation.")],
    dry_run: Annotated[bool, typer.Option("--dry-run")] = False,
    reason: Annotated[str, typer.Option()] = "manual revert from the remediate CLI",
    env: WriteEnv = None,
    local: Annotated[
        bool, typer.Option("--local", help="On the emulator kept by `invoke --local --keep`.")
    ] = False,
    yes: Yes = False,
    output: OutputOpt = Output.TABLE,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
    state_dir: StateDir = STATE_DIR,
) -> None:
    """Undo an executed remediation from its audit record's before-state."""
    if local and not (state_dir / "world.json").exists():
        _die(
            "revert --local needs the emulator an earlier `invoke --local --keep` kept "
            f"(none in {state_dir})"
        )
    invoke(
        REVERT,
        audit_id,
        param=None,
        kind=None,
        dry_run=dry_run,
        reason=reason,
        env=env,
        local=local,
        keep=local,
        switch="on",
        yes=yes,
        output=output,
        cdk_out=cdk_out,
        from_stack=from_stack,
        endpoint_url=endpoint_url,
        region=region,
        state_dir=state_dir,
    )


# -- the local emulator, kept between commands -------------------------------------------------

_SERVER = """
import json, os, sys, time
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
state = {"endpoint_url": f"http://{host}:{port}", "pid": os.getpid()}
with open(sys.argv[1] + ".tmp", "w") as out:
    json.dump(state, out)
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(3600)
"""


def _kept(state_dir: Path) -> dict[str, Any] | None:
    """The kept emulator's state, if it still answers."""
    import urllib.request

    try:
        state = json.loads((state_dir / "emulator.json").read_text(encoding="utf-8"))
        url = f"{state['endpoint_url']}/moto-api/"
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback)
            return state
    except (OSError, ValueError, KeyError):
        return None


def _start_kept(state_dir: Path) -> dict[str, Any]:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "emulator.json"
    path.unlink(missing_ok=True)
    (state_dir / "world.json").unlink(missing_ok=True)
    log = (state_dir / "emulator.log").open("ab")
    subprocess.Popen(  # noqa: S603 (this interpreter, fixed code)
        [sys.executable, "-c", _SERVER, str(path)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # outlives this command
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = _kept(state_dir)
        if state is not None:
            return state
        time.sleep(0.1)
    _die(f"the local emulator did not start: see {state_dir / 'emulator.log'}", Code.SETUP)


@contextlib.contextmanager
def _local_world(
    deployment: tpl.Deployment,
    switch: str,
    endpoint_url: str | None,
    keep: bool,
    state_dir: Path,
) -> Iterator[Any]:
    """A built World on an emulator: a private one (stopped after), the one at
    ``endpoint_url`` (reset and built), or with ``keep`` the kept one, built once."""
    from serverless_remediation.remediate.drill.world import World, default_targets, merge_targets
    from serverless_remediation.remediate.emulator import FAKE_CREDENTIALS, Emulator

    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    emulator = Emulator()
    own = False
    if endpoint_url is not None:
        emulator.endpoint_url = endpoint_url.rstrip("/")
    elif keep:
        emulator.endpoint_url = (_kept(state_dir) or _start_kept(state_dir))["endpoint_url"]
    else:
        emulator.start()
        own = True
    world_state = state_dir / "world.json"
    saved: dict[str, Any] = {}
    if keep and world_state.exists():
        saved = json.loads(world_state.read_text(encoding="utf-8"))
        if saved.get("endpoint_url") != emulator.endpoint_url:
            saved = {}  # another emulator's: build this one
    try:
        world = World(emulator, deployment)
        if saved:
            if saved.get("env") != deployment.env:
                _die(
                    f"the kept emulator holds {saved.get('env')}, not {deployment.env}: "
                    "`remediate emulator stop` first"
                )
            world.targets = merge_targets(default_targets(deployment.playbook()), {})
            _restore_gaps(world.gaps, saved.get("gaps", {}))
            world.new_audit()  # what earlier commands recorded is not this command's
        else:
            world.build({}, switch)
        yield world
        if keep:
            state_dir.mkdir(parents=True, exist_ok=True)
            world_state.write_text(
                json.dumps(
                    {
                        "env": deployment.env,
                        "endpoint_url": emulator.endpoint_url,
                        "gaps": _saved_gaps(world.gaps),
                    }
                ),
                encoding="utf-8",
            )
    finally:
        if own:
            emulator.stop()


def _saved_gaps(gaps: Any) -> dict[str, Any]:
    """What the in-process stand-ins for moto's gaps hold (``remediate.drill.gaps``):
    provisioned concurrency, HTTP API stages and deployments, sample access logs."""
    return {
        "provisioned": [[f, q, n] for (f, q), n in gaps.provisioned.items()],
        "http_apis": {
            api: {
                "stages": spec["stages"],
                "deployments": [
                    {**d, "created": d["created"].isoformat()} for d in spec["deployments"]
                ],
            }
            for api, spec in gaps.http_apis.items()
        },
        "log_lines": gaps.log_lines,
    }


def _restore_gaps(gaps: Any, saved: dict[str, Any]) -> None:
    from datetime import datetime

    gaps.provisioned.update({(f, q): n for f, q, n in saved.get("provisioned", [])})
    for api, spec in saved.get("http_apis", {}).items():
        deployments = [
            {**d, "created": datetime.fromisoformat(d["created"])} for d in spec["deployments"]
        ]
        gaps.http_apis[api] = {"stages": spec["stages"], "deployments": deployments}
    gaps.log_lines.update(saved.get("log_lines", {}))


@emulator_app.command("status")
def emulator_status(state_dir: StateDir = STATE_DIR) -> None:
    """Where the kept emulator listens, if one is running."""
    state = _kept(state_dir)
    if state is None:
        console.print(f"no kept emulator (in {state_dir})")
        raise typer.Exit(Code.NOT_DONE)
    console.print(f"kept emulator at {state['endpoint_url']} (pid {state['pid']})")


@emulator_app.command("stop")
def emulator_stop(state_dir: StateDir = STATE_DIR) -> None:
    """Stop the emulator an `invoke --local --keep` started, and forget its state."""
    state = _kept(state_dir)
    for name in ("emulator.json", "world.json"):
        (state_dir / name).unlink(missing_ok=True)
    if state is None:
        console.print("no kept emulator was running")
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(int(state["pid"]), signal.SIGTERM)  # the process this CLI started
    console.print(f"stopped the kept emulator (pid {state['pid']})")


# -- gate -------------------------------------------------------------------------------------


def _gate_names(
    env: str,
    cdk_out: Path | None,
    from_stack: bool = False,
    endpoint: str | None = None,
    region: str | None = None,
) -> tuple[tpl.Deployment, str, str | None]:
    deployment = _deployment(env, cdk_out, from_stack=from_stack, endpoint=endpoint, region=region)
    parameter = _setting(deployment, "SWITCH_PARAMETER")
    prefixes = {r.environment.get("SWITCH_OVERRIDE_PREFIX") for r in deployment.remediators}
    prefixes.discard(None)
    return deployment, parameter, prefixes.pop() if len(prefixes) == 1 else None


@gate_app.command("show")
def gate_show(
    env: Env = "drill",
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Print the switch and any per-action overrides."""
    deployment, parameter, prefix = _gate_names(env, cdk_out, from_stack, endpoint_url, region)
    ssm = _client(deployment, "ssm", endpoint_url, region)
    with aws(f"read the switch {parameter}"):
        try:
            value = ssm.get_parameter(Name=parameter)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            value = "missing (remediators treat this as off)"
        overrides = []
        if prefix:
            pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix.rstrip("/"))
            overrides = [item for page in pages for item in page["Parameters"]]
    console.print(f"{parameter} = [bold]{escape(value)}[/]")
    for item in overrides:
        console.print(f"  override {escape(item['Name'])} = {escape(item['Value'])}")


def _gate_set(mode: str, env, yes, cdk_out, endpoint_url, region, from_stack=False) -> None:
    env = _write_env(env, f"gate {mode}")
    deployment, parameter, _ = _gate_names(env, cdk_out, from_stack, endpoint_url, region)
    who = check_identity(deployment, endpoint_url, region)
    confirm(
        f"switch {parameter} to {mode} in {env} (account {deployment.account}, "
        f"{deployment.region}) as {who['arn']}",
        yes,
    )
    ssm = _client(deployment, "ssm", endpoint_url, region)
    with aws(f"set the switch {parameter}"):
        ssm.put_parameter(Name=parameter, Value=mode, Type="String", Overwrite=True)
    console.print(f"{parameter} = [bold]{mode}[/] (remediators see it within 30 s)")


@gate_app.command("on")
def gate_on(
    env: WriteEnv = None,
    yes: Yes = False,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Let remediators act."""
    _gate_set("on", env, yes, cdk_out, endpoint_url, region, from_stack)


@gate_app.command("off")
def gate_off(
    env: WriteEnv = None,
    yes: Yes = False,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Kill switch: remediators record events and change nothing."""
    _gate_set("off", env, yes, cdk_out, endpoint_url, region, from_stack)


@gate_app.command("dry-run")
def gate_dry_run(
    env: WriteEnv = None,
    yes: Yes = False,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
) -> None:
    """Remediators plan and record what they would do, and change nothing."""
    _gate_set("dry-run", env, yes, cdk_out, endpoint_url, region, from_stack)


# -- history ----------------------------------------------------------------------------------


@app.command()
def history(
    env: Env = "drill",
    target: Annotated[str | None, typer.Option(help="Only this target (newest first).")] = None,
    account: Annotated[
        str | None,
        typer.Option(
            help="Only records of this account (a hub's spoke, or the hub's own: records "
            "naming no account are the deployment's)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 20,
    output: OutputOpt = Output.TABLE,
    as_json: AsJson = False,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="The emulator's audit (kept by `invoke --local --keep`, or the one at "
            "--endpoint-url), with the names the drill gives the template's resources.",
        ),
    ] = False,
    cdk_out: CdkOut = None,
    from_stack: FromStack = False,
    endpoint_url: Endpoint = None,
    region: Region = None,
    state_dir: StateDir = STATE_DIR,
) -> None:
    """Audit records from the environment's audit table."""
    from serverless_remediation.remediation.audit import AuditLog, parse_item

    if from_stack and local:
        _die("--from-stack reads a deployed stack; --local reads the emulator: pick one")
    deployment = _deployment(
        env, cdk_out, from_stack=from_stack, endpoint=endpoint_url, region=region
    )
    if local:
        if endpoint_url is None:
            state = _kept(state_dir)
            if state is None:
                _die(f"no kept emulator in {state_dir}: run `remediate invoke ... --local --keep`")
            endpoint_url = state["endpoint_url"]
        from serverless_remediation.remediate.emulator import FAKE_CREDENTIALS

        for name, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        # The drill's world names what CloudFormation would name: no stack to ask.
        table_name = _setting(deployment, "AUDIT_TABLE")
    else:
        table_name = _table_name(deployment, endpoint_url, region)
    db = _client(deployment, "dynamodb", endpoint_url, region)
    where = f"account {deployment.account} {region or deployment.region}"
    with aws(
        f"read the audit table {table_name}",
        missing=f"audit table {table_name} not found in {where}: is {env} deployed there "
        "(or check --region)?",
    ):
        if account is not None and not re.fullmatch(r"\d{12}", account):
            _die(f"--account {account[:40]!r}: a 12-digit account id")

        def wanted(record: Mapping[str, Any]) -> bool:
            return account is None or record.get("account", deployment.account) == account

        records: Sequence[Mapping[str, Any]]
        if target:
            found = (r for r in AuditLog(db, table_name).history(target) if wanted(r))
            records = list(itertools.islice(found, limit))
        else:
            items: list[dict] = []
            for page in db.get_paginator("scan").paginate(TableName=table_name):
                items.extend(i for i in page["Items"] if i["pk"]["S"].startswith("audit#"))
            records = sorted(
                (r for r in (parse_item(i) for i in items) if wanted(r)),
                key=lambda r: r["created_at"],
                reverse=True,
            )[:limit]
    if _output(output, as_json) is Output.JSON:
        for record in records:
            _json_line(record)
        return
    table = Table(title=f"{env}: audit ({table_name})")
    table.add_column("when", no_wrap=True)
    table.add_column("audit id", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=16)
    table.add_column("by", no_wrap=True)
    accounts = any(record.get("account") for record in records)  # a hub's records
    if accounts:
        table.add_column("account", no_wrap=True)
    for record in records:
        table.add_row(
            record.get("created_at", "")[:19],
            record.get("audit_id", ""),
            record.get("outcome", ""),
            record.get("action") or "-",
            escape(_arn_cell(record.get("target") or "-")),
            escape(str(record.get("detail", ""))[:120]),
            escape(_arn_cell(record.get("requested_by", ""))),
            *([str(record.get("account") or deployment.account)] if accounts else []),
        )
    console.print(table)


@app.command()
def status(
    env: Env = "drill",
    output: OutputOpt = Output.TABLE,
    as_json: AsJson = False,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="The emulator (kept by `invoke --local --keep`, or the one at --endpoint-url), "
            "with the names the drill gives the template's resources.",
        ),
    ] = False,
    cdk_out: CdkOut = None,
    endpoint_url: Endpoint = None,
    region: Region = None,
    state_dir: StateDir = STATE_DIR,
) -> None:
    """Where the environment stands: open incidents, guards, WAF blocks, DLQ, the switch."""
    from serverless_remediation.remediate import status as status_

    deployment, parameter, prefix = _gate_names(env, cdk_out)
    if local:
        if endpoint_url is None:
            state = _kept(state_dir)
            if state is None:
                _die(f"no kept emulator in {state_dir}: run `remediate invoke ... --local --keep`")
            endpoint_url = state["endpoint_url"]
        from serverless_remediation.remediate.emulator import FAKE_CREDENTIALS

        for name, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(name, value)
    queues = [
        r.physical
        for r in deployment.by_type("AWS::SQS::Queue")
        if str(r.physical).endswith("-remediator-dlq")
    ]
    if local:  # the drill's world names what CloudFormation would name: no stack to ask
        table_name = _setting(deployment, "AUDIT_TABLE")
    else:
        table_name = _table_name(deployment, endpoint_url, region)
    with aws(f"read the state of {env}"):
        found = status_.collect(
            env,
            db=_client(deployment, "dynamodb", endpoint_url, region),
            table=table_name,
            ssm=_client(deployment, "ssm", endpoint_url, region),
            switch_name=parameter,
            override_prefix=prefix,
            sqs=_client(deployment, "sqs", endpoint_url, region),
            dead_letter_queue=str(queues[0]) if queues else f"{env}-remediator-dlq",
            breaker_max=int(_setting(deployment, "BREAKER_MAX_PER_HOUR")),
        )
    if _output(output, as_json) is Output.JSON:
        _json_line(found.as_json())
        return
    status_.render(found, console, cell=_arn_cell)


# approve, reject, silence: remediate/people.py registers them on ``app`` when loaded
import serverless_remediation.remediate.people  # noqa: E402, F401
