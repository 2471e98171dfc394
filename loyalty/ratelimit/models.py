"""Rate-limit counters in the database, for when there is no Redis (see `storage`)."""

from sqlalchemy import Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from loyalty.extensions import Base
from loyalty.types import BigId


class RateLimitEntry(Base):
    """One hit in a moving window: it counts until `expires_at` (seconds since the epoch)."""

    __tablename__ = "rate_limit_entries"
    __table_args__ = (Index("ix_rate_limit_entries_key_expires_at", "key", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))  # `limits`' key: scope, identifiers, limit
    expires_at: Mapped[float] = mapped_column(Double)
