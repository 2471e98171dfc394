from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from loyalty.extensions import Base
from loyalty.ledger import LedgerEntry
from loyalty.tiers.models import Tier
from loyalty.types import JSONType, UTCDateTime, utcnow

# The ledger source of a lapse rule's award; its source id names the lapse (the time of the
# member's last paid order).
LAPSE_SOURCE = "lapse"
TRIGGERS = ("order", "signup", "first_order", "birthday", "action", "lapse")


class EarningRuleTier(Base):
    """A tier an earning rule is limited to (the API's `conditions.tiers`, there by name).

    By id, so renaming a tier changes no rule; the foreign key keeps a tier a rule names from
    being deleted under it. `position` keeps the order the tiers were given in."""

    __tablename__ = "earning_rule_tiers"

    rule_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("earning_rules.id", ondelete="CASCADE"), primary_key=True
    )
    tier_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tiers.id"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(SmallInteger)
    tier: Mapped[Tier] = relationship(lazy="joined")


class EarningRule(Base):
    """A bonus on top of the base rate: a multiplier on matching lines, or fixed points (for
    an order, a sign-up, a birthday, a customer action or a lapse)."""

    __tablename__ = "earning_rules"
    __table_args__ = (
        CheckConstraint(
            "\"trigger\" IN ('order', 'signup', 'first_order', 'birthday', 'action', 'lapse')",
            name="trigger",
        ),
        CheckConstraint("(multiplier IS NULL) <> (points IS NULL)", name="multiplier_or_points"),
        CheckConstraint("multiplier IS NULL OR multiplier > 0", name="multiplier_positive"),
        CheckConstraint("points IS NULL OR points > 0", name="points_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    trigger: Mapped[str] = mapped_column(String(16))
    multiplier: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    points: Mapped[int | None] = mapped_column(BigInteger)
    # {"skus": [...], "categories": [...], "min_spend": minor units} (order rules) or
    # {"action_type": "review"} (action rules) or {"days": 90} (lapse rules); the tiers are
    # `tier_links`
    conditions: Mapped[dict] = mapped_column(JSONType, default=dict)
    # Action rules: {"per_day": n, "per_month": n, "lifetime": n}, each optional; NULL: no cap.
    caps: Mapped[dict | None] = mapped_column(JSONType)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # The tiers the rule is limited to (none: every tier), in the order given.
    tier_links: Mapped[list[EarningRuleTier]] = relationship(
        order_by=EarningRuleTier.position,
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="selectin",
    )

    @property
    def tier_ids(self) -> list[int]:
        return [link.tier_id for link in self.tier_links]

    @property
    def tier_names(self) -> list[str]:
        return [link.tier.name for link in self.tier_links]

    @property
    def shown_conditions(self) -> dict:
        """The rule's `conditions` as the API shows them: its tiers by name."""
        names = self.tier_names
        return {**(self.conditions or {}), **({"tiers": names} if names else {})}


# One award per member, lapse rule and lapse, however often and on however many machines the
# job runs: a second entry is refused (the job inserts with ON CONFLICT DO NOTHING and credits
# only the entries it inserted).
Index(
    "uq_ledger_entries_lapse",
    LedgerEntry.member_id,
    LedgerEntry.rule_id,
    LedgerEntry.source_id,
    unique=True,
    postgresql_where=text(f"source_type = '{LAPSE_SOURCE}'"),
    sqlite_where=text(f"source_type = '{LAPSE_SOURCE}'"),
)
