"""Block expiries, kept in the audit table beside the audit records.

Every block is recorded *before* its IP set changes, so a block can never outlive its record:
one item per blocked address (its expiry, the route's target) and one ``block-index`` item
per IP set that ever held a block, so the scheduled sweeper finds them without
configuration. The key layout is ``store.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from ...store import (
    BLOCK_INDEX,
    TTL_ATTRIBUTE,
    Table,
    Write,
    block_index_key,
    block_key,
    block_partition,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Block records outlive their expiry by this much before DynamoDB's TTL drops them, so the
# sweeper always sees an expired record first.
RECORD_GRACE = timedelta(days=30)
#: DynamoDB's limit on the writes of one transaction
TRANSACTION_ITEMS = 100


class Expired(TypedDict):
    """A block whose time is up: its address, its expiry (epoch seconds) and the target of
    the route that made it."""

    address: str
    until: int
    target: str


class BlockRecords:
    """Block expiries in the audit table (see the module docstring)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._table = Table(dynamodb, table)

    def record(self, arn: str, addresses: Iterable[str], until: datetime, target: str) -> None:
        """The index entry and one record per address, in transactions of at most
        ``TRANSACTION_ITEMS`` (one call for a usual block)."""
        items = [
            {**block_index_key(arn), "ip_set_arn": arn},
            *(
                {
                    **block_key(arn, cidr),
                    "ip_set_arn": arn,
                    "route_target": target,
                    "block_until": int(until.timestamp()),
                    TTL_ATTRIBUTE: int((until + RECORD_GRACE).timestamp()),
                }
                for cidr in addresses
            ),
        ]
        for start in range(0, len(items), TRANSACTION_ITEMS):
            self._table.transact([Write(item=i) for i in items[start : start + TRANSACTION_ITEMS]])

    def addresses(self, arn: str) -> list[str]:
        """Every address with a block record for ``arn``, expired or not."""
        return [str(item["sk"]) for item in self._table.partition(block_partition(arn))]

    def ip_sets(self) -> list[str]:
        return [str(item["sk"]) for item in self._table.partition(BLOCK_INDEX)]

    def expired(self, arn: str, now: datetime) -> list[Expired]:
        """Records for ``arn`` whose block ended at or before ``now``."""
        epoch = int(now.timestamp())
        return [
            {
                "address": str(item["sk"]),
                "until": int(item["block_until"]),
                "target": str(item.get("route_target", arn)),
            }
            for item in self._table.partition(block_partition(arn))
            if int(item["block_until"]) <= epoch
        ]

    def forget(self, arn: str, address: str, until: int | None = None) -> bool:
        """Delete a record; with ``until``, only if nobody re-blocked it since. True if gone."""
        if until is None:
            return self._table.delete(block_key(arn, address))
        return self._table.delete(
            block_key(arn, address), condition="block_until = :until", values={":until": until}
        )

    def forget_ip_set(self, arn: str) -> list[str]:
        """Delete every block record of ``arn`` and its ``block-index`` entry (the IP set is
        gone: nothing is left to unblock). Returns the addresses whose records were deleted."""
        addresses = self.addresses(arn)
        for address in addresses:
            self.forget(arn, address)
        self._table.delete(block_index_key(arn))
        return addresses
