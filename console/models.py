"""Admin accounts of the console: who may sign in, with which role."""

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import UTCDateTime, utcnow

ROLES = ("owner", "admin", "support", "analyst")


class Admin(Base):
    """One person who signs in to the console.

    `session_token` is part of the id kept in the session cookie: changing it (sign-out,
    a new password, a role change, disabling) ends every session of the account at once.
    `totp_secret` is sealed at rest (loyalty.sealing); it is in force once `totp_enabled_at`
    is set.
    """

    __tablename__ = "admins"
    __table_args__ = (
        CheckConstraint("role IN ('owner', 'admin', 'support', 'analyst')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    session_token: Mapped[str] = mapped_column(String(32))
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last time step whose code was accepted: a code is good once.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Flask-Login's user interface.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def audit_name(self) -> str:
        return f"admin:{self.id}"
