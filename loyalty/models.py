"""Imports every model so metadata (and alembic autogenerate) sees all tables."""

from loyalty.actions.models import ActionAwardCount, MemberAction  # noqa: F401
from loyalty.audit import AuditLog  # noqa: F401
from loyalty.auth import ApiKey  # noqa: F401
from loyalty.cache import ConfigVersion  # noqa: F401
from loyalty.earning.models import EarningRule, EarningRuleTier  # noqa: F401
from loyalty.email.models import EmailMessage  # noqa: F401
from loyalty.idempotency import IdempotencyRecord  # noqa: F401
from loyalty.ledger import LedgerEntry  # noqa: F401
from loyalty.members.models import Member  # noqa: F401
from loyalty.orders.models import Order, OrderRefund, ProcessedEvent  # noqa: F401
from loyalty.program.models import Program  # noqa: F401
from loyalty.ratelimit.models import RateLimitEntry  # noqa: F401
from loyalty.reports.ledger_months import LedgerMonth, LedgerMonthDelta  # noqa: F401
from loyalty.reports.models import (  # noqa: F401
    ReportCohort,
    ReportCohortCell,
    ReportCustomer,
    ReportDirtyCustomer,
    ReportDirtyMember,
    ReportMember,
    ReportOrder,
    ReportState,
)
from loyalty.segment_awards.models import SegmentAward, SegmentAwardMember  # noqa: F401
from loyalty.tiers.models import Tier, TierChange, TierSpend  # noqa: F401
from loyalty.webhooks.models import (  # noqa: F401
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
