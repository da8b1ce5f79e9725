#!/usr/bin/env python3
"""``npx cdk synth -c env=NAME``: one environment from cdk.json, checked by cdk-nag.

Without ``-c env=`` (``npx cdk ls``) every environment is built, so the listing shows each
one's stacks (``<app>-<env>-core``, ``<app>-<env>-alarms-<n>``). A configuration mistake
ends the app with one line naming the environment and key, and exit status 2.
"""

from __future__ import annotations

import sys

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks
from pydantic import ValidationError

from serverless_remediation.stacks.config import ConfigError, load, load_all
from serverless_remediation.stacks.stacks import add_environment

#: exit status of a configuration error (argparse's usage-error convention)
CONFIG_ERROR = 2


def main() -> None:
    app = App()
    context = {
        "app_name": app.node.try_get_context("app_name") or "autorem",
        "environments": app.node.try_get_context("environments"),
    }
    env = app.node.try_get_context("env")
    try:
        configs = [load(context, env)] if env else load_all(context)
        for config in configs:
            add_environment(app, config)
    except (ConfigError, ValidationError) as exc:
        line = " ".join(str(exc).split())
        sys.stderr.write(f"config error: {line}\n")
        sys.exit(CONFIG_ERROR)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


if __name__ == "__main__":
    main()
