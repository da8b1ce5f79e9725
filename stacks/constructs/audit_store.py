"""The audit and guard table. Its shape comes from ``remediation.audit`` (the one place the
Lambda code, the drill and the tests read it from).

The table is retained when its stack is destroyed (it is the record of what was changed), so
by default it has no fixed name: CloudFormation names it, and a redeploy after ``cdk destroy``
creates a new table beside the retained one instead of failing on its name. The remediators
get the name through ``AUDIT_TABLE``; the CLI reads it from the deployed stack."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from serverless_remediation.remediation.audit import (
    PARTITION_KEY,
    SORT_KEY,
    TARGET_INDEX,
    TARGET_INDEX_KEYS,
    TTL_ATTRIBUTE,
)

S = dynamodb.AttributeType.STRING


class AuditStore(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, table_name: str | None = None
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=table_name,
            partition_key=dynamodb.Attribute(name=PARTITION_KEY, type=S),
            sort_key=dynamodb.Attribute(name=SORT_KEY, type=S),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=TARGET_INDEX,
            partition_key=dynamodb.Attribute(name=TARGET_INDEX_KEYS[0], type=S),
            sort_key=dynamodb.Attribute(name=TARGET_INDEX_KEYS[1], type=S),
        )

    @property
    def arns(self) -> list[str]:
        """The table and its index: what the remediators read and write."""
        return [self.table.table_arn, f"{self.table.table_arn}/index/{TARGET_INDEX}"]
