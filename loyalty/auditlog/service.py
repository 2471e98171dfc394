"""The audit log, read back: who changed what, newest first, filtered.

`loyalty.audit` writes a row in the transaction of each admin change; this reads them for
`GET /v1/audit-log` and the console. Each filter is an equality on an indexed column (or a
range of `created_at`), so a filtered page reads only its own rows.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from loyalty.audit import AuditLog
from loyalty.paging import Page, page_by_id


@dataclass(frozen=True)
class AuditFilter:
    """What a page of the log is limited to; None means any."""

    actor: str | None = None  # "admin:3", "api_key:5", "cli"
    action: str | None = None  # "referral.approve"
    target_type: str | None = None  # "referral"
    target_id: str | None = None  # "12" (only with target_type)
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before

    @property
    def empty(self) -> bool:
        return self == AuditFilter()


def list_entries(session: Session, where: AuditFilter, limit: int, cursor: str | None) -> Page:
    """A page of `AuditLog` rows matching `where`, newest first."""
    query = select(AuditLog)
    if where.actor is not None:
        query = query.where(AuditLog.actor == where.actor)
    if where.action is not None:
        query = query.where(AuditLog.action == where.action)
    if where.target_type is not None:
        query = query.where(AuditLog.object_type == where.target_type)
        if where.target_id is not None:
            query = query.where(AuditLog.object_id == where.target_id)
    if where.since is not None:
        query = query.where(AuditLog.created_at >= where.since)
    if where.until is not None:
        query = query.where(AuditLog.created_at < where.until)
    return page_by_id(session, query, AuditLog.id, limit, cursor)


def actions(session: Session) -> list[str]:
    """Every action the log holds, in alphabetical order (for a filter's choices)."""
    return list(session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
