"""The plug points through which domains join the core, filled in by `create_app`
(`loyalty.wiring`).

The core never imports a domain: order events reach rewards, gift cards and referrals through
`order_handlers`; a domain adds fields to the member view through `member_view`, and learns of
new members through `member_enrolled`. Reward codes that are issued or end (canceled, expired,
used) are announced through `reward_code_issued` and `reward_codes_ended`, so a store connector
can mirror them on the store platform from the same transaction. A tier's entry reward is
issued by the catalog through `tier_reached`, and checked against it through `reward_name`.

Each plug point has a Protocol below saying what is called, with what, and what it returns.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from flask import current_app
from sqlalchemy import ColumnElement, Select
from sqlalchemy.orm import Session

from loyalty.members.models import Member

if TYPE_CHECKING:
    from loyalty.orders.service import OrderEventContext


# --- order events -----------------------------------------------------------------------------
# A handler has any of `paid`, `refunded`, `canceled`; the ones it lacks are skipped. It may
# also have `paid_many(ctxs)`: `paid` on a group of events of distinct members, orders and
# mailboxes at once, with the same result (`Hooks.dispatch_many`; the batch of events uses it).


class PaidHandler(Protocol):
    def paid(self, ctx: "OrderEventContext") -> None: ...


class RefundedHandler(Protocol):
    def refunded(self, ctx: "OrderEventContext") -> None: ...


class CanceledHandler(Protocol):
    def canceled(self, ctx: "OrderEventContext") -> None: ...


OrderHandler = PaidHandler | RefundedHandler | CanceledHandler


# --- members ----------------------------------------------------------------------------------


class MemberEnrolled(Protocol):
    """Called in the enrolling transaction, after the member's row is written."""

    def __call__(self, session: Session, member: Member, /) -> None: ...


class MembersEnrolled(Protocol):
    """A `MemberEnrolled` hook's form for many members enrolled at once (`enroll_many`): what
    the hook does for each of them, in set-based statements."""

    def __call__(self, session: Session, members: list[Member], /) -> None: ...


class MemberErased(Protocol):
    """Called before a member's personal data is erased, in the erasing transaction."""

    def __call__(self, session: Session, member: Member, /) -> None: ...


class MemberExport(Protocol):
    """A domain's section of a member's export: a JSON-ready value."""

    def __call__(self, session: Session, member: Member, /) -> Any: ...


class MemberViewColumn(Protocol):
    """A scalar subquery correlated to `members` (the `Member` entity): one value."""

    def __call__(self) -> ColumnElement[Any]: ...


class MemberViewFields(Protocol):
    """The top-level fields a domain adds to the member view, from its column's `value` and
    the member's row (`id`, `customer_id`, `erased_at`, ...)."""

    def __call__(self, session: Session, member: Any, value: Any, /) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MemberViewPart:
    """A domain's fields in the member view, read in the view's one SELECT (no round trip)."""

    column: MemberViewColumn
    fields: MemberViewFields


# --- reward codes -----------------------------------------------------------------------------


class RewardCodeIssued(Protocol):
    """Called in the transaction that issues a reward code (a `rewards.catalog` RewardCode)."""

    def __call__(self, session: Session, code: Any, /) -> None: ...


class RewardCodesEnded(Protocol):
    """Called in the transaction that cancels, expires or uses reward codes; `code_ids` is a
    list of ids, or a SELECT of them run before their status changes."""

    def __call__(self, session: Session, code_ids: list[int] | Select[Any], /) -> None: ...


class RewardCodePlatform(Protocol):
    """Where the store platform is with each code: {code id: JSON-ready state} (the
    `platform` field of redemptions)."""

    def __call__(self, session: Session, code_ids: list[int], /) -> Mapping[int, Any]: ...


class TierReached(Protocol):
    """Issue the code of catalog reward `reward_id` to a member who has just reached a tier
    (`entry_id`: the `TierEntry` row that records it, the code's source): the code's id, or
    None when the reward is retired."""

    def __call__(
        self, session: Session, member: Member, reward_id: int, entry_id: int, /
    ) -> int | None: ...


class RewardName(Protocol):
    """The name of catalog reward `reward_id`; None when there is no such reward (or it is
    retired)."""

    def __call__(self, session: Session, reward_id: int, /) -> str | None: ...


# --- the shopper's widget (/v1/me) ------------------------------------------------------------


class MemberRewards(Protocol):
    """The catalog as the member sees it: `MemberRewardSchema` dicts, each with `affordable`
    (the widget's routes send what the domain's schema dumped, documented by that name)."""

    def __call__(self, session: Session, member: Member, /) -> list[dict[str, Any]]: ...


class RedeemReward(Protocol):
    """Redeem a reward for the member: the `RedemptionSchema` dict (with the reward `code`)."""

    def __call__(self, session: Session, member: Member, reward_id: int, /) -> dict[str, Any]: ...


class MemberRedemption(Protocol):
    """One redemption of the member's (`NotFound` otherwise)."""

    def __call__(
        self, session: Session, member: Member, redemption_id: int, /
    ) -> dict[str, Any]: ...


class CheckoutQuote(Protocol):
    """The program's points-at-checkout terms and what the member may take off a cart of
    `cart_subtotal` now: the `CheckoutQuoteSchema` dict."""

    def __call__(
        self, session: Session, member: Member, cart_subtotal: int, /
    ) -> dict[str, Any]: ...


class CheckoutDiscount(Protocol):
    """Spend the member's points on money off a cart: the `RedemptionSchema` dict."""

    def __call__(
        self, session: Session, member: Member, points: int, cart_subtotal: int, /
    ) -> dict[str, Any]: ...


class MemberReferrals(Protocol):
    """The member's `MemberReferralsSchema` dict: referral stats, with a page of referrals."""

    def __call__(
        self, session: Session, member: Member, limit: int, cursor: Any, /
    ) -> dict[str, Any]: ...


class MemberRedemptions(Protocol):
    """A page of the member's reward codes, newest first: `RedemptionPageSchema`'s dict."""

    def __call__(
        self, session: Session, member: Member, limit: int, cursor: Any, /
    ) -> dict[str, Any]: ...


class CancelMemberRedemption(Protocol):
    """Cancel one of the member's unused codes, its points returned (`NotFound` for another
    member's, `Conflict` for one not unused): the `RedemptionSchema` dict."""

    def __call__(
        self, session: Session, member: Member, redemption_id: int, /
    ) -> dict[str, Any]: ...


class GiftCardBalance(Protocol):
    """A gift card's balance by its code, for a shopper at `address`, under the same counts
    and lockout as every request that takes a code: the `GiftCardLookupResultSchema` dict,
    `NotFound` for anything but a live card."""

    def __call__(self, session: Session, code: str, address: str, /) -> dict[str, Any]: ...


# --- program, jobs, demo, reports -------------------------------------------------------------


class LedgerCheck(Protocol):
    """One line per account of the domain whose stored balance differs from the sum of its
    entries (`verify-ledger`); none when every balance adds up."""

    def __call__(self, session: Session, /) -> list[str]: ...


class MoneyInCurrency(Protocol):
    """Whether the domain holds money in the program currency (it can't change then)."""

    def __call__(self, session: Session, /) -> bool: ...


class ProgramUpdated(Protocol):
    """Called in the transaction that changed the program's settings (flushed), with the
    settings as they were (`ProgramSchema`'s JSON)."""

    def __call__(self, session: Session, before: dict[str, Any], /) -> None: ...


class Job(Protocol):
    """A scheduled job (see `loyalty.jobs`): the rows it changed. `progress(n)` advances the
    command line's bar by n steps; jobs commit as they go."""

    def __call__(
        self,
        session: Session,
        now: datetime,
        batch_size: int,
        progress: Callable[[int], None] | None = None,
        /,
    ) -> int: ...


class DemoSeed(Protocol):
    """Adds a domain's part of the demo program on first `make run`."""

    def __call__(self, session: Session, /) -> None: ...


class ReportCohorts(Protocol):
    """A selectable of (`customer_id`, `cohort` label), at most one row per customer (the
    rest are "none"), for /v1/reports/cohorts?by=NAME."""

    def __call__(self) -> Select[Any]: ...


class ReportConversions(Protocol):
    """A selectable of referral conversions, one row per conversion with its time as `at`
    (the dashboard's and /v1/reports/overview's "referral conversions")."""

    def __call__(self) -> Select[Any]: ...


@dataclass(frozen=True)
class PointValue:
    """What one point is worth at redemption: `money / points` minor units, from a catalog
    reward (`reward_id`) or from points at checkout (`reward_id` None)."""

    money: int  # minor units
    points: int
    reward_id: int | None
    reward_name: str


class ReportPointValue(Protocol):
    """The money value of a point at `now` (None when nothing gives points a money value), for
    the liability of the points outstanding."""

    def __call__(self, session: Session, now: datetime, /) -> PointValue | None: ...


@dataclass
class Hooks:
    # The order flow, in order (`loyalty.wiring.ORDER_HANDLERS`).
    order_handlers: list[OrderHandler] = field(default_factory=list)
    member_view: list[MemberViewPart] = field(default_factory=list)
    member_enrolled: list[MemberEnrolled] = field(default_factory=list)
    # a `member_enrolled` hook -> its form for many members (run in the hook's place)
    member_enrolled_many: dict[MemberEnrolled, MembersEnrolled] = field(default_factory=dict)
    member_erased: list[MemberErased] = field(default_factory=list)
    # section name -> its part of the export
    member_export: dict[str, MemberExport] = field(default_factory=dict)
    reward_code_issued: list[RewardCodeIssued] = field(default_factory=list)
    reward_codes_ended: list[RewardCodesEnded] = field(default_factory=list)
    # None when no connector sets it
    reward_code_platform: RewardCodePlatform | None = None
    # A tier's entry reward (the catalog); None: tiers offer none
    tier_reached: TierReached | None = None
    reward_name: RewardName | None = None
    # name -> job, in the order `run-due` runs them (`loyalty.wiring.JOBS`)
    jobs: dict[str, Job] = field(default_factory=dict)
    # in the order they run (`loyalty.wiring.DEMO_SEEDS`)
    demo_seed: list[DemoSeed] = field(default_factory=list)
    money_in_currency: list[MoneyInCurrency] = field(default_factory=list)
    program_updated: list[ProgramUpdated] = field(default_factory=list)
    # the domains' own balances, checked by `verify-ledger` after the members'
    ledger_checks: list[LedgerCheck] = field(default_factory=list)
    # What the shopper's widget (/v1/me) shows from the domains; None until a domain sets it.
    member_rewards: MemberRewards | None = None
    redeem_reward: RedeemReward | None = None
    member_redemption: MemberRedemption | None = None
    checkout_quote: CheckoutQuote | None = None
    checkout_discount: CheckoutDiscount | None = None
    member_referrals: MemberReferrals | None = None
    member_redemptions: MemberRedemptions | None = None
    cancel_member_redemption: CancelMemberRedemption | None = None
    gift_card_balance: GiftCardBalance | None = None
    # /v1/reports/cohorts?by=NAME: name -> its cohorts
    report_cohorts: dict[str, ReportCohorts] = field(default_factory=dict)
    # /v1/reports/overview: referral conversions and a point's money value; None until set
    report_conversions: ReportConversions | None = None
    report_point_value: ReportPointValue | None = None

    def dispatch(self, event: str, ctx: "OrderEventContext") -> None:
        for handler in self.order_handlers:
            method = getattr(handler, event, None)
            if method is not None:
                method(ctx)

    def dispatch_many(self, event: str, ctxs: "list[OrderEventContext]") -> None:
        """`dispatch` for a group of events of distinct members, orders and mailboxes (none
        can see another's changes): each handler in turn on all of them — its `<event>_many`
        if it has one (the same work, its statements sent together), else its `<event>` on
        each, in order."""
        for handler in self.order_handlers:
            many = getattr(handler, f"{event}_many", None)
            if many is not None:
                many(ctxs)
                continue
            method = getattr(handler, event, None)
            if method is not None:
                for ctx in ctxs:
                    method(ctx)


def hooks() -> Hooks:
    filled: Hooks = current_app.extensions["loyalty.hooks"]
    return filled
