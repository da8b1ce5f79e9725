"""The automation switch: one SSM parameter per environment (on | off | dry-run).

Per-action overrides live under ``override_prefix`` and are created by hand when needed
(an override can only make an action more careful; see ``remediation.gate``)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ssm as ssm
from constructs import Construct


class Switch(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, app: str, env: str, mode: str):
        super().__init__(scope, construct_id)
        self.name = f"/{app}/{env}/switch"
        self.override_prefix = f"/{app}/{env}/switch-override/"
        #: a hub's per-account switches (``<prefix><account id>``), created by hand
        self.account_prefix = f"/{app}/{env}/switch-account/"
        self.parameter = ssm.StringParameter(
            self,
            "Parameter",
            parameter_name=self.name,
            string_value=mode,
            description="auto-remediation switch: on | off | dry-run (anything else = off)",
            allowed_pattern="^(on|off|dry-run)$",
        )

    def account_arn(self, account: str) -> str:
        return Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=f"{self.account_prefix.lstrip('/')}{account}",
        )

    def override_arn(self, action: str) -> str:
        return Stack.of(self).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=f"{self.override_prefix.lstrip('/')}{action}",
        )
