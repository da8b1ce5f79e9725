"""Synthesized templates, shared: the first synth in a run starts the JS runtime (seconds),
so every test reads the same session-scoped templates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from serverless_remediation.stacks.config import EnvConfig, load

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Synth:
    config: EnvConfig
    app: Any
    stacks: list[Any]
    templates: dict[str, dict[str, Any]]

    @property
    def core(self) -> Any:
        return self.stacks[0]

    @property
    def core_template(self) -> dict[str, Any]:
        return self.templates[self.core.stack_name]

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        """``{logical id: resource}`` of ``kind`` across every stack of the environment."""
        return {
            f"{name}/{logical}": body
            for name, template in self.templates.items()
            for logical, body in template["Resources"].items()
            if body["Type"] == kind
        }


def feature_flags() -> dict[str, Any]:
    """cdk.json's feature flags: what `npx cdk synth` runs the app with."""
    context = json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
    return {k: v for k, v in context.items() if k.startswith("@aws-cdk")}


def synthesize(config: EnvConfig, *, nag: bool = False, flags: bool = True) -> Synth:
    # Imported here: the config tests in this folder need no JS runtime.
    from aws_cdk import App, Validations
    from aws_cdk.assertions import Template
    from cdk_nag import AwsSolutionsChecks

    from serverless_remediation.stacks.stacks import add_environment

    context: dict[str, Any] = {"aws:cdk:enable-asset-metadata": True}
    if flags:
        context.update(feature_flags())
    app = App(context=context)
    stacks = add_environment(app, config)
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
        app.synth()  # raises when a cdk-nag finding is not acknowledged
    templates = {s.stack_name: dict(Template.from_stack(s).to_json()) for s in stacks}
    return Synth(config, app, stacks, templates)


@pytest.fixture(scope="session")
def context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]


@pytest.fixture(scope="session")
def drill(context: dict[str, Any]) -> Synth:
    """The drill environment, synthesized once with cdk-nag (a finding fails the fixture)."""
    return synthesize(load(context, "drill"), nag=True)


@pytest.fixture(scope="session")
def prod(context: dict[str, Any]) -> Synth:
    return synthesize(load(context, "prod-example"), nag=True)
