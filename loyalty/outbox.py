"""Work queues that jobs take from on several machines at once: webhook deliveries, the
program's emails, store connectors' platform calls. Each row has `attempts` and
`next_attempt_at`; a worker claims a batch of due rows, commits, then does the slow part
(HTTP, SMTP) outside any transaction and records the outcome."""

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, update
from sqlalchemy.orm import Session


def claim(
    session: Session,
    model: Any,
    due: Select[Any],
    *,
    now: datetime,
    lease: timedelta,
    **values: Any,
) -> list[int]:
    """Take the rows `due` selects (their ids, `FOR UPDATE SKIP LOCKED`, so concurrent
    workers take different ones) for this worker: one more attempt each, and not due again
    until `lease` has passed, so the rows of a worker that dies mid-batch go to the next one.
    `values` sets more columns of the claimed rows. The ids claimed; the caller commits."""
    return list(
        session.scalars(
            update(model)
            .where(model.id.in_(due.scalar_subquery()))
            .values(attempts=model.attempts + 1, next_attempt_at=now + lease, **values)
            .returning(model.id),
            execution_options={"synchronize_session": False},
        ).all()
    )
