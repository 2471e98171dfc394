"""Admin changes: who, what, before, after — written in the change's own transaction."""

from datetime import datetime

from flask import g, has_request_context
from sqlalchemy import String
from sqlalchemy.orm import Mapped, Session, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId, JSONType, UTCDateTime, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"

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


def record_change(session: Session, action, object_type, object_id, before, after) -> None:
    session.add(
        AuditLog(
            actor=current_actor(),
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            before=before,
            after=after,
        )
    )
