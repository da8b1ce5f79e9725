"""Deployed = tested: the remediators run, in Lambda, the Powertools, boto3 and botocore the
tests ran, from one layer the CDK app builds offline out of the installed pinned distributions;
the runtime is one the pinned Powertools supports, on x86_64 or arm64."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from serverless_remediation.stacks.constructs import remediators as rem
from tests.infra.conftest import ROOT, Synth

LAYER = "AWS::Lambda::LayerVersion"


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth.resources("AWS::Lambda::Function")


def _layer(synth: Synth) -> tuple[str, dict[str, Any]]:
    (found,) = synth.resources(LAYER).items()
    return found


def _asset(synth: Synth, resource: dict[str, Any]) -> Path:
    return Path(synth.app.outdir) / resource["Metadata"]["aws:asset:path"]


def _pins() -> dict[str, str]:
    """requirements.txt: distribution name -> pinned version."""
    pins = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (spec,) = requirement.specifier
            assert spec.operator == "==", f"requirements.txt pins exactly: {line}"
            pins[requirement.name] = spec.version
    return pins


# -- the synthesized template -----------------------------------------------------------


def test_every_function_runs_the_one_dependency_layer_on_the_runtime_it_was_built_for(
    drill: Synth,
) -> None:
    logical, layer = _layer(drill)
    assert layer["Properties"]["CompatibleRuntimes"] == [rem.RUNTIME.name]
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    functions = _functions(drill)
    handlers = {fn["Properties"]["Handler"] for fn in functions.values()}
    assert rem.HANDLER in handlers
    assert rem.SWEEPER_HANDLER in handlers
    for key, fn in functions.items():
        props = fn["Properties"]
        if props["Handler"] not in (rem.HANDLER, rem.SWEEPER_HANDLER):
            continue  # CDK's own custom-resource handlers
        assert props["Runtime"] == rem.RUNTIME.name, key
        assert props["Architectures"] == ["x86_64"], key
        # Our layer only: no public layer, whose number says nothing of the pinned release.
        assert props["Layers"] == [{"Ref": logical.split("/", 1)[1]}], key


def test_the_layer_holds_exactly_the_versions_installed_here_and_pinned(drill: Synth) -> None:
    _, layer = _layer(drill)
    content = _asset(drill, layer) / "python"
    listed = json.loads((content / "lambda-dependencies.json").read_text(encoding="utf-8"))
    pins = _pins()
    for name in ("aws-lambda-powertools", "boto3"):
        assert listed[name] == pins[name] == metadata.version(name), name
    # every transitive one is what this environment (and so every test) imports
    for name, version in listed.items():
        assert metadata.version(name) == version, name
    # the files themselves, not only the list: the versions the libraries report
    powertools = (content / "aws_lambda_powertools" / "shared" / "version.py").read_text()
    assert f'VERSION = "{pins["aws-lambda-powertools"]}"' in powertools
    boto3_init = (content / "boto3" / "__init__.py").read_text()
    assert f"__version__ = '{pins['boto3']}'" in boto3_init
    assert (content / "fastjsonschema").is_dir()  # the [validation] extra
    assert not list(content.rglob("*.pyc"))
    assert not list(content.rglob("*.so"))
    assert (
        f"aws-lambda-powertools {pins['aws-lambda-powertools']}"
        in (layer["Properties"]["Description"])
    )


def test_the_pinned_powertools_supports_the_runtime() -> None:
    python = rem.RUNTIME.name.removeprefix("python")
    dist = metadata.distribution("aws-lambda-powertools")
    classifiers = dist.metadata.get_all("Classifier") or []
    assert f"Programming Language :: Python :: {python}" in classifiers
    assert SpecifierSet(dist.metadata["Requires-Python"]).contains(f"{python}.0")
    for name in ("boto3", "botocore"):
        other = metadata.distribution(name).metadata.get_all("Classifier") or []
        assert f"Programming Language :: Python :: {python}" in other, name


# -- bundling -----------------------------------------------------------------------------


def test_the_requirements_are_resolved_for_the_lambda_runtime_with_their_extras() -> None:
    markers = rem.lambda_markers(rem.RUNTIME, "arm64")
    assert markers["platform_machine"] == "aarch64"
    assert markers["python_version"] == rem.RUNTIME.name.removeprefix("python")
    names = {rem._name(d) for d in rem.lambda_distributions(rem.LAMBDA_REQUIREMENTS, markers)}
    assert {"aws-lambda-powertools", "fastjsonschema", "boto3", "botocore", "s3transfer"} <= names
    plain = {rem._name(d) for d in rem.lambda_distributions(["aws-lambda-powertools"], markers)}
    assert "fastjsonschema" not in plain  # only with the [validation] extra
    assert "boto3" not in plain  # the [aws-sdk] extra is not asked for


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        # drift: the pins say one version, the environment has another
        (["boto3==1.0.0"], r"needs boto3==1\.0\.0, but boto3 \S+ is installed"),
        (["no-such-distribution-here"], r"no-such-distribution-here .* is not installed"),
        # compiled code would be built for this machine, not for Lambda's
        (["pydantic"], r"pydantic[-_]core \S+ is not pure Python"),
    ],
)
def test_a_bundle_that_would_not_be_what_was_tested_fails(
    tmp_path: Path, requirements: list[str], message: str
) -> None:
    with pytest.raises(rem.BundleError, match=message):
        rem.bundle("x86_64", requirements, cache=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-built left behind


def test_an_unknown_architecture_fails() -> None:
    with pytest.raises(rem.BundleError, match=r"'riscv'.*\['arm64', 'x86_64'\]"):
        rem.bundle("riscv")


def test_the_bundle_is_built_once_and_reused(tmp_path: Path) -> None:
    first = rem.bundle("x86_64", ["jmespath"], cache=tmp_path)
    assert first.versions == {"jmespath": metadata.version("jmespath")}
    assert (first.path / "python" / "jmespath" / "__init__.py").is_file()
    marker = first.path / "python" / "built-once"
    marker.write_text("x")
    again = rem.bundle("arm64", ["jmespath"], cache=tmp_path)
    assert again.key == first.key  # pure Python: the same content serves both
    assert (again.path / "python" / "built-once").exists()
    assert re.fullmatch(r"[0-9a-f]{32}", first.key)


# -- arm64 --------------------------------------------------------------------------------


def test_arm64_functions_and_layer(tmp_path: Path) -> None:
    """``remediators.architecture: arm64`` -> Graviton functions on an arm64-compatible layer."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_sns as sns
    from aws_cdk.assertions import Match, Template

    app = App()
    stack = Stack(app, "Arm", env={"account": "123456789012", "region": "eu-west-1"})
    key = kms.Key(stack, "Key")
    topic = sns.Topic(stack, "Alarms")
    wiring = rem.Wiring(
        env="arm",
        table_name="t",
        table_arns=["arn:aws:dynamodb:eu-west-1:123456789012:table/t"],
        notice_topic=sns.Topic(stack, "Notices"),
        switch_name="/a/arm/switch",
        switch_arn="arn:aws:ssm:eu-west-1:123456789012:parameter/a/arm/switch",
        override_prefix="/a/arm/switch-override/",
        override_arn=lambda a: f"arn:aws:ssm:eu-west-1:123456789012:parameter/o/{a}",
        key=key,
        cooldown_seconds=300,
        breaker_max=3,
        deployment={"DEPLOYMENT_ACCOUNT": "123456789012"},
        alarm_arns="arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a-arm-*",
    )
    rem.Remediators(
        stack,
        "Remediators",
        prefix="a-arm",
        wiring=wiring,
        grants={"rollback": []},
        alarm_topics={"rollback": topic},
        playbook={"alarms": {}, "budgets": {}, "inventory": []},
        reserved_concurrency=2,
        log_retention_days=7,
        timeout_seconds=60,
        memory_mb=256,
        sweep_minutes=5,
        architecture="arm64",
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Architectures": ["arm64"], "Runtime": rem.RUNTIME.name, "Layers": Match.any_value()},
    )
    template.has_resource_properties(LAYER, {"CompatibleArchitectures": ["arm64"]})
    for fn in template.find_resources("AWS::Lambda::Function").values():
        assert fn["Properties"]["Architectures"] == ["arm64"]


def test_an_environment_that_chooses_arm64_gets_graviton_remediators(context) -> None:
    """``remediators.architecture: arm64`` in cdk.json, through the whole app with cdk-nag."""
    import copy

    from serverless_remediation.stacks.config import parse_env
    from tests.infra.conftest import synthesize

    raw = copy.deepcopy(context["environments"]["drill"])
    raw.setdefault("remediators", {})["architecture"] = "arm64"
    synth = synthesize(parse_env("autorem", "graviton", raw), nag=True)
    _, layer = _layer(synth)
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    ours = [
        fn["Properties"]
        for fn in _functions(synth).values()
        if fn["Properties"]["Handler"] in (rem.HANDLER, rem.SWEEPER_HANDLER)
    ]
    assert len(ours) > 1
    for props in ours:
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == rem.RUNTIME.name
