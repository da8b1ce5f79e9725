"""ARN shapes more than one action acts on: Lambda aliases and API Gateway stages.

``targets.parse`` splits any ARN; these say whether one names what an action needs (an
alias, not a version; a stage, not an API) and give the parts the API calls take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..errors import RejectedError

StageKind = Literal["rest-stage", "http-stage"]
LAMBDA_ALIAS: Literal["lambda-alias"] = "lambda-alias"
REST_STAGE: Literal["rest-stage"] = "rest-stage"
HTTP_STAGE: Literal["http-stage"] = "http-stage"

_STAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:apigateway:(?P<region>[a-z0-9-]+)::"
    r"/(?P<api_kind>restapis|apis)/(?P<api_id>[A-Za-z0-9]+)/stages/(?P<stage>[A-Za-z0-9_$-]+)$"
)


@dataclass(frozen=True)
class StageArn:
    kind: StageKind
    api_id: str
    stage: str
    #: ``arn:PARTITION:apigateway:REGION::/restapis/ID``: IAM resources hang off it
    api_arn: str


def parse_stage_arn(target: str) -> StageArn:
    """An API Gateway stage ARN (REST or HTTP API) -> its parts."""
    found = _STAGE_ARN.match(target)
    if found is None:
        raise RejectedError(f"not an API Gateway stage ARN: {target[:200]!r}")
    kind: StageKind = REST_STAGE if found["api_kind"] == "restapis" else HTTP_STAGE
    api_arn = target.split("/stages/", 1)[0]
    return StageArn(kind, found["api_id"], found["stage"], api_arn)


def is_stage_arn(target: str) -> bool:
    return target.startswith("arn:") and ":apigateway:" in target


def parse_alias_arn(target: str) -> tuple[str, str]:
    """``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME:ALIAS`` -> (function ARN, alias)."""
    parts = target.split(":")
    if len(parts) != 8 or parts[2] != "lambda" or parts[5] != "function" or not parts[7]:
        raise RejectedError(f"not a Lambda alias ARN: {target[:200]!r}")
    if parts[7] == "$LATEST" or parts[7].isdigit():
        raise RejectedError(f"rollback needs an alias, not a version: {target[:200]!r}")
    return ":".join(parts[:7]), parts[7]
