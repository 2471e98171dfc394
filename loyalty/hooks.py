"""The plug points through which domains join the core, filled in by `create_app`.

The core never imports a domain: order events reach rewards, gift cards and referrals through
`order_handlers`; a domain adds fields to the member view through `member_view`, and learns of
new members through `member_enrolled`. Reward codes that are issued or end (canceled, expired,
used) are announced through `reward_code_issued` and `reward_codes_ended`, so a store connector
can mirror them on the store platform from the same transaction.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from flask import current_app


class OrderHandler(Protocol):
    """Any of `paid(ctx)`, `refunded(ctx)`, `canceled(ctx)`; missing ones are skipped."""


@dataclass(frozen=True)
class MemberViewPart:
    """A domain's fields in the member view, read in the view's one SELECT (no round trip).

    `column()`: a scalar subquery correlated to `members` (the `Member` entity), one value;
    `fields(session, member, value)`: the top-level fields it adds, from that value and the
    member's row (`id`, `customer_id`, `erased_at`, ...) — fields of `members.service.MemberView`
    that `MemberSchema` declares (e.g. `referral`), the same in the hand-built fast path.
    """

    column: Callable
    fields: Callable


@dataclass
class Hooks:
    order_handlers: list = field(default_factory=list)
    # fields a domain adds to the member view (see MemberViewPart)
    member_view: list[MemberViewPart] = field(default_factory=list)
    # (session, member) -> None, called in the enrolling transaction
    member_enrolled: list[Callable] = field(default_factory=list)
    # (session, member) -> None, called before a member's personal data is erased
    member_erased: list[Callable] = field(default_factory=list)
    # Sections a domain adds to a member's export: name -> (session, member) -> JSON-ready value
    member_export: dict[str, Callable] = field(default_factory=dict)
    # (session, code) -> None, called in the transaction that issues a reward code
    reward_code_issued: list[Callable] = field(default_factory=list)
    # (session, code_ids) -> None, called in the transaction that cancels, expires or uses reward
    # codes; `code_ids` is a list of ids, or a SELECT of them run before their status changes
    reward_codes_ended: list[Callable] = field(default_factory=list)
    # (session, code_ids) -> {code id: JSON-ready state}: where the store platform is with each
    # code (the `platform` field of redemptions); None when no connector sets it
    reward_code_platform: Callable | None = None
    # name -> job(session, now, batch_size, progress) -> int (rows changed); see loyalty.jobs
    jobs: dict[str, Callable] = field(default_factory=dict)
    # (session) -> None, adds a domain's part of the demo program on first `make run`
    demo_seed: list[Callable] = field(default_factory=list)
    # (session) -> bool: this domain holds money in the program currency (it can't change then)
    money_in_currency: list[Callable] = field(default_factory=list)
    # What the shopper's widget (/v1/me) shows from the domains; None until a domain sets it.
    # Each answers JSON-ready, as the domain's schema named here dumps it (the widget's routes
    # send it as it is, and document it by that name).
    # (session, member) -> list of `MemberRewardSchema` dicts (the catalog, with `affordable`)
    member_rewards: Callable | None = None
    # (session, member, reward_id) -> the `RedemptionSchema` dict (with the reward `code`)
    redeem_reward: Callable | None = None
    # (session, member, redemption_id) -> that redemption of the member's (NotFound otherwise)
    member_redemption: Callable | None = None
    # (session, member, limit, cursor) -> the member's `MemberReferralsSchema` dict: referral
    # stats, with a page of referrals
    member_referrals: Callable | None = None
    # Cohorts a domain adds to /v1/reports/cohorts?by=NAME: name -> () -> a selectable of
    # (`customer_id`, `cohort` label), at most one row per customer (the rest are "none").
    report_cohorts: dict[str, Callable] = field(default_factory=dict)

    def dispatch(self, event: str, ctx) -> None:
        for handler in self.order_handlers:
            method = getattr(handler, event, None)
            if method is not None:
                method(ctx)


def hooks() -> Hooks:
    return current_app.extensions["loyalty.hooks"]
