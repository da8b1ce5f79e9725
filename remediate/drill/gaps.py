"""Stand-ins for the few APIs moto 5.2 does not implement, served inside boto3.

Registered on the drill's boto3 session (the remediators' clients use the same session), so
requests are still built and validated by botocore against the real service model; only
the HTTP round trip is replaced. Covered: Lambda provisioned concurrency (Get/Put/Delete/
List), HTTP API stages and deployments (GetStage/GetStages/GetDeployments/UpdateStage), and Logs
Insights results (moto ignores ``filter`` and ``stats``: the drill answers them over the
sample access logs it wrote itself).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

from serverless_remediation.remediation.targets import build, partition_of


def _ok(body: dict[str, Any]) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://drill.local", 200, HTTPHeaders(), None), {
        **body,
        "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "drill"},
    }


def _error(code: str, message: str, status: int = 404) -> tuple[AWSResponse, dict[str, Any]]:
    return AWSResponse("https://drill.local", status, HTTPHeaders(), None), {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "drill"},
    }


class Gaps:
    def __init__(self, region: str, account: str) -> None:
        self.region, self.account = region, account
        #: (function name, qualifier) -> provisioned concurrent executions
        self.provisioned: dict[tuple[str, str], int] = {}
        #: log group -> sample access-log lines (JSON with an ``ip`` field)
        self.log_lines: dict[str, list[str]] = {}
        self._queries: dict[str, list[list[dict[str, str]]]] = {}
        #: api id -> {"stages": {name: {"deployment", "auto_deploy"}},
        #:            "deployments": [{"id", "created"}]}
        self.http_apis: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.provisioned.clear()
        self.log_lines.clear()
        self._queries.clear()
        self.http_apis.clear()

    def register(self, session: Any) -> None:
        events = session.events
        events.register("before-parameter-build.*.*", _keep_params)
        for operation, handler in (
            ("lambda.GetProvisionedConcurrencyConfig", self._get_provisioned),
            ("lambda.PutProvisionedConcurrencyConfig", self._put_provisioned),
            ("lambda.DeleteProvisionedConcurrencyConfig", self._delete_provisioned),
            ("lambda.ListProvisionedConcurrencyConfigs", self._list_provisioned),
            ("cloudwatch-logs.StartQuery", self._start_query),
            ("cloudwatch-logs.GetQueryResults", self._query_results),
            ("apigatewayv2.GetStage", self._http_stage),
            ("apigatewayv2.GetStages", self._http_stages),
            ("apigatewayv2.GetDeployments", self._http_deployments),
            ("apigatewayv2.UpdateStage", self._http_update_stage),
        ):
            events.register(f"before-call.{operation}", handler)

    # -- Lambda provisioned concurrency -------------------------------------------------------

    @staticmethod
    def _key(params: dict[str, Any]) -> tuple[str, str]:
        name = str(params["FunctionName"]).split(":")
        function = name[6] if len(name) >= 7 else name[0]
        return function, str(params.get("Qualifier", ""))

    def _get_provisioned(self, context: dict, **_: Any) -> Any:
        key = self._key(context["drill_params"])
        if key not in self.provisioned:
            return _error(
                "ProvisionedConcurrencyConfigNotFoundException",
                f"No Provisioned Concurrency Config found for {key[0]}:{key[1]}",
            )
        count = self.provisioned[key]
        return _ok(
            {
                "RequestedProvisionedConcurrentExecutions": count,
                "AvailableProvisionedConcurrentExecutions": count,
                "AllocatedProvisionedConcurrentExecutions": count,
                "Status": "READY",
                "LastModified": datetime.now(UTC).isoformat(),
            }
        )

    def _put_provisioned(self, context: dict, **_: Any) -> Any:
        params = context["drill_params"]
        count = int(params["ProvisionedConcurrentExecutions"])
        self.provisioned[self._key(params)] = count
        return _ok(
            {
                "RequestedProvisionedConcurrentExecutions": count,
                "AllocatedProvisionedConcurrentExecutions": count,
                "Status": "READY",
                "LastModified": datetime.now(UTC).isoformat(),
            }
        )

    def _delete_provisioned(self, context: dict, **_: Any) -> Any:
        self.provisioned.pop(self._key(context["drill_params"]), None)
        return _ok({})

    def _list_provisioned(self, context: dict, **_: Any) -> Any:
        function = self._key(context["drill_params"])[0]
        arn = build(
            partition_of(self.region), "lambda", self.region, self.account, f"function:{function}"
        )
        configs = [
            {
                "FunctionArn": f"{arn}:{qualifier}",
                "RequestedProvisionedConcurrentExecutions": count,
                "AvailableProvisionedConcurrentExecutions": count,
                "AllocatedProvisionedConcurrentExecutions": count,
                "Status": "READY",
                "LastModified": datetime.now(UTC).isoformat(),
            }
            for (name, qualifier), count in sorted(self.provisioned.items())
            if name == function
        ]
        return _ok({"ProvisionedConcurrencyConfigs": configs})

    # -- HTTP API (apigatewayv2) stages and deployments -------------------------------------

    def add_http_api(
        self,
        api_id: str,
        stage: str,
        deployments: int,
        auto_deploy: bool,
        other_stages: dict[str, int] | None = None,
    ) -> None:
        """An HTTP API whose ``stage`` is on the newest of ``deployments`` (10 minutes apart,
        newest now); ``other_stages`` maps more stages to a deployment number (1 = oldest)."""
        now = datetime.now(UTC).replace(microsecond=0)
        made = [
            {"id": f"v{n}", "created": now - timedelta(minutes=10 * (deployments - n))}
            for n in range(1, deployments + 1)
        ]
        stages = {stage: {"deployment": made[-1]["id"], "auto_deploy": auto_deploy}}
        for other, number in (other_stages or {}).items():
            stages[other] = {"deployment": made[number - 1]["id"], "auto_deploy": False}
        self.http_apis[api_id] = {"stages": stages, "deployments": made}

    def _http_api(self, params: dict[str, Any]) -> dict[str, Any] | None:
        return self.http_apis.get(str(params["ApiId"]))

    def _http_stage_of(self, params: dict[str, Any]) -> dict[str, Any] | None:
        api = self._http_api(params)
        return None if api is None else api["stages"].get(str(params["StageName"]))

    @staticmethod
    def _stage_body(name: str, stage: dict[str, Any]) -> dict[str, Any]:
        return {
            "StageName": name,
            "DeploymentId": stage["deployment"],
            "AutoDeploy": stage["auto_deploy"],
        }

    def _http_stage(self, context: dict, **_: Any) -> Any:
        params = context["drill_params"]
        stage = self._http_stage_of(params)
        if stage is None:
            return _error("NotFoundException", "Invalid stage identifier specified")
        return _ok(self._stage_body(params["StageName"], stage))

    def _http_stages(self, context: dict, **_: Any) -> Any:
        api = self._http_api(context["drill_params"])
        if api is None:
            return _error("NotFoundException", "Invalid API identifier specified")
        items = [self._stage_body(name, stage) for name, stage in api["stages"].items()]
        return _ok({"Items": items})

    def _http_deployments(self, context: dict, **_: Any) -> Any:
        api = self._http_api(context["drill_params"])
        if api is None:
            return _error("NotFoundException", "Invalid API identifier specified")
        items = [
            {"DeploymentId": d["id"], "CreatedDate": d["created"], "DeploymentStatus": "DEPLOYED"}
            for d in api["deployments"]
        ]
        return _ok({"Items": items})

    def _http_update_stage(self, context: dict, **_: Any) -> Any:
        params = context["drill_params"]
        api, stage = self._http_api(params), self._http_stage_of(params)
        if api is None or stage is None:
            return _error("NotFoundException", "Invalid stage identifier specified")
        if "DeploymentId" in params:
            if params["DeploymentId"] not in {d["id"] for d in api["deployments"]}:
                return _error("BadRequestException", "Invalid deployment identifier", 400)
            stage["deployment"] = params["DeploymentId"]
        if "AutoDeploy" in params:
            stage["auto_deploy"] = bool(params["AutoDeploy"])
        return _ok(self._stage_body(params["StageName"], stage))

    # -- Logs Insights ------------------------------------------------------------------------

    def _start_query(self, context: dict, **_: Any) -> Any:
        params = context["drill_params"]
        groups = list(params.get("logGroupNames") or [params.get("logGroupName")])
        missing = [g for g in groups if g not in self.log_lines]
        if missing:
            return _error("ResourceNotFoundException", f"log group {missing[0]} not found", 400)
        query_id = f"drill-{len(self._queries) + 1}"
        lines = [line for g in groups for line in self.log_lines[g]]
        self._queries[query_id] = insights(str(params.get("queryString", "")), lines)
        return _ok({"queryId": query_id})

    def _query_results(self, context: dict, **_: Any) -> Any:
        rows = self._queries.get(context["drill_params"]["queryId"], [])
        return _ok({"status": "Complete", "results": rows, "statistics": {}})


_STATS = re.compile(r"stats\s+count\(\*\)\s+as\s+(\w+)\s+by\s+([\w.@]+)", re.IGNORECASE)
_CLAUSE = re.compile(r"^\s*([\w.@]+)\s*=\s*['\"]?([^'\"]*?)['\"]?\s*$")


def insights(query: str, lines: list[str]) -> list[list[dict[str, str]]]:
    """The subset of Logs Insights the drill needs over JSON log lines: ``filter a = x or
    a = y`` and ``stats count(*) as N by F | sort N desc``; other commands are ignored,
    and without ``stats`` each matching line is a row with its ``@message``."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append((line, record))
    for command in query.split("|"):
        command = command.strip()
        if command.lower().startswith("filter "):
            clauses = [_CLAUSE.match(c) for c in re.split(r"\s+or\s+", command[7:], flags=re.I)]
            if all(clauses):
                wanted = [(m.group(1), m.group(2)) for m in clauses if m]
                records = [
                    (line, r) for line, r in records if any(str(r.get(f)) == v for f, v in wanted)
                ]
    stats = _STATS.search(query)
    if stats is None:
        return [[{"field": "@message", "value": line}] for line, _ in records]
    name, field = stats.groups()
    counts = Counter(str(r[field]) for _, r in records if r.get(field) is not None)
    return [
        [{"field": field, "value": key}, {"field": name, "value": str(n)}]
        for key, n in counts.most_common()
    ]


def _keep_params(params: dict, context: dict, **_: Any) -> None:
    """Keep the API parameters where the ``before-call`` stand-ins can read them."""
    context["drill_params"] = dict(params)
