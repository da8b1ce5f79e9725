#!/usr/bin/env python3
"""``npx cdk synth -c env=NAME``: one environment from cdk.json, checked by cdk-nag."""

from __future__ import annotations

import sys

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from stacks.config import ConfigError, load
from stacks.stacks import add_environment


def main() -> None:
    app = App()
    context = {
        "app_name": app.node.try_get_context("app_name") or "autorem",
        "environments": app.node.try_get_context("environments"),
    }
    try:
        config = load(context, app.node.try_get_context("env"))
        add_environment(app, config)
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.exit(2)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
