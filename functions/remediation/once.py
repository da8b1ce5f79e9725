"""At most once per alarm transition: Powertools' idempotency, in the suite's table.

SNS delivers at least once, and a Lambda retry redelivers: the same alarm transition (its
idempotency key) acts once. A duplicate delivery is skipped naming the record that handled
it; one arriving while the first is still running is skipped too. A failed action leaves no
idempotency record (Powertools deletes it when the function raises), so a redrive from the
dead-letter queue acts again. If the action ran but its idempotency record could not be
saved, the result keeps what changed and fails, so a human looks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from .clients import error_code
from .errors import FailedError
from .models import Outcome, Result
from .store import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, idempotency_partition

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb import DynamoDBClient

IDEMPOTENCY_TTL_SECONDS = 24 * 3600


class _Failed(FailedError):
    """Carries a failed result out of the idempotent section (which then forgets the key,
    so a redrive from the dead-letter queue is not mistaken for a duplicate)."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class Once:
    def __init__(self, dynamodb: DynamoDBClient, table: str, env: str) -> None:
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            response_hook=_mark_duplicate,
        )
        self._store = DynamoDBPersistenceLayer(
            table_name=table,
            key_attr=PARTITION_KEY,
            sort_key_attr=SORT_KEY,
            # The table's TTL attribute: Powertools' own default ("expiration") would never
            # expire, and the table would grow with every alarm forever.
            expiry_attr=TTL_ATTRIBUTE,
            static_pk_value=idempotency_partition(env),
            boto3_client=dynamodb,
        )

    def run(self, key: str, act: Callable[[], Result], skipped: Callable[[str], Result]) -> Result:
        """``act()`` unless the transition ``key`` was handled before (or is being handled):
        then ``skipped(reason)``."""
        acted: list[Result] = []

        def once(transition: dict[str, str]) -> dict[str, Any]:
            result = act()
            acted.append(result)
            if result.outcome is Outcome.FAILED:
                raise _Failed(result)
            return result.as_dict()

        guarded = idempotent_function(
            once,
            data_keyword_argument="transition",
            persistence_store=self._store,
            config=self.config,
        )
        try:
            data: dict[str, Any] = guarded(transition={"key": key})
        except _Failed as failed:
            return failed.result
        except IdempotencyAlreadyInProgressError:
            return skipped("duplicate delivery: this alarm transition is being handled right now")
        except Exception as exc:
            if not acted:
                raise
            # The action ran but the idempotency store could not save its result: keep the
            # result (before/after) so the change is recorded, and fail so a human looks.
            done = acted[0]
            code = error_code(exc.__cause__ or exc)
            return replace(
                done,
                outcome=Outcome.FAILED,
                reason=f"{done.outcome}: {done.reason}; idempotency record not saved ({code})",
            )
        if data.get("duplicate"):
            return skipped(
                f"duplicate delivery: already handled by audit {data['audit_id']} "
                f"({data['outcome']})"
            )
        return Result(**{**data, "outcome": Outcome(data["outcome"])})


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this only when it returns a stored result: a duplicate delivery."""
    return {**response, "duplicate": True}
