"""Admin changes: who, what, before, after — written in the change's own transaction.

The service function that makes a change writes its row (`record_change`), so a change made
through the API, the command line or any other caller is logged the same way; routes never
write audit rows.
"""

from datetime import datetime
from typing import Any

from flask import g, has_request_context
from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"
    # `GET /v1/audit-log` filters on each of these, newest first (loyalty.auditlog).
    __table_args__ = (
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
        Index("ix_audit_log_object_type_object_id_id", "object_type", "object_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict | None] = mapped_column(JSONType)
    after: Mapped[dict | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def current_actor() -> str:
    """Who makes this change: the API caller, the console's signed-in admin (`g.audit_actor`,
    set by the console), or the command line."""
    if has_request_context():
        if "audit_actor" in g:
            return g.audit_actor
        if "principal" in g:
            return g.principal.audit_name
    return "cli"


def record_change(
    session: Session,
    action: str,
    object_type: str,
    object_id: object,
    before: dict | None,
    after: dict | None,
    *,
    actor: str | None = None,
) -> None:
    """Log a change by `actor` (by default: the request's caller, or "cli")."""
    session.add(
        AuditLog(
            actor=actor if actor is not None else current_actor(),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
        )
    )


def snapshot(view: dict[str, Any]) -> dict[str, Any]:
    """A view as JSON holds it: moments in ISO 8601, as the API sends them."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in view.items()}
