"""Earning rules: bonuses on top of the base rate, and how overlapping ones combine.

Triggers and what they give:
- `order` (and `first_order`, only on the member's first paid order): a `multiplier` applies to
  the eligible amount of the lines matching the rule's `skus`/`categories` (all lines when it
  names none). Points are multiplied, not added to the rate: a "2×" rule on a line earning 10
  points makes it earn 20, a bonus of 10. Overlapping multiplier rules ADD their bonuses (2×
  and 3× on the same line earn 1 + 1 + 2 = 4× the base, not 6×). Fixed `points` rules give
  their points once per matching order, and add up too.
- `signup`: fixed points when a member enrolls. `birthday`: fixed points once per birthday year
  (`flask loyalty jobs birthdays`).
- `action`: fixed points for a customer action of the rule's `conditions.action_type` (a
  review, a follow... reported with `POST /v1/members/{id}/actions`), at most `caps.per_day`,
  `caps.per_month` and `caps.lifetime` times per member (loyalty/actions/service.py).
- `lapse`: fixed points for a member without a paid order for `conditions.days` days, once per
  lapse (`flask loyalty jobs lapsing-members`, loyalty/earning/lapses.py).
Conditions on the order: `tiers` (the member's tier before the event), `min_spend` (the order's
eligible amount, minor units); all given conditions must hold; `starts_at <= occurred_at <
ends_at` and `active`. Each rule's bonus is its own ledger entry carrying its `rule_id`, rounded
down on its own (the arithmetic: loyalty/earning/points.py). Order bonuses are awarded with the
order's base points (loyalty/earning/service.py), so refunds reverse them in proportion, using
the numbers recorded when they were earned.

A rule's tiers are kept by id (`EarningRuleTier`); the API names them, and this module turns
names into ids on the way in and back on the way out.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, literal, or_, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from loyalty import cache, ledger
from loyalty.audit import record_change
from loyalty.cursors import MAX_INT32_ROW_ID
from loyalty.earning.models import EarningRule, EarningRuleTier
from loyalty.earning.schemas import EarningRuleSchema
from loyalty.errors import NotFound, ValidationFailed
from loyalty.extensions import rowcount
from loyalty.jobs import Progress, in_ranges, lock_members
from loyalty.ledger import AVAILABLE, LedgerEntry
from loyalty.members.models import Member
from loyalty.orders.models import Order
from loyalty.orders.service import has_paid_orders
from loyalty.paging import Page, page_by_id
from loyalty.program.service import get_program
from loyalty.tiers.models import Tier
from loyalty.types import JSONType, UTCDateTime, utcnow

BIRTHDAY_SOURCE = "birthday"
SIGNUP_SOURCE = "signup"
# A birthday bonus missed on the day (job down, member enrolled a few days after) is still
# given within this many days; never twice for the same birthday.
BIRTHDAY_LOOKBACK_DAYS = 30
FIXED_ONLY = ("signup", "birthday")
ACTION_TRIGGER = "action"
LAPSE_TRIGGER = "lapse"
CAP_PERIODS = ("per_day", "per_month", "lifetime")

cache.watch(EarningRule, "earning_rules")
cache.watch(EarningRuleTier, "earning_rules")


# --- configuration --------------------------------------------------------------------------


def _snapshot(rule: EarningRule) -> dict:
    """The rule as the audit log keeps it: as the API shows it."""
    shown: dict = EarningRuleSchema().dump(rule)
    return shown


def _validate(session: Session, rule: dict) -> list[Tier]:
    """The whole rule as it would be (after a PATCH too): one clear 422 listing every problem.
    Returns the tiers its `conditions.tiers` name, in the order named (each once)."""
    errors: dict[str, list[str]] = {}
    has_multiplier = rule.get("multiplier") is not None
    has_points = rule.get("points") is not None
    if has_multiplier == has_points:
        errors["points"] = ["Give either `multiplier` or `points`, not both or neither."]
    conditions = rule.get("conditions") or {}
    trigger = rule["trigger"]
    if trigger in (*FIXED_ONLY, ACTION_TRIGGER, LAPSE_TRIGGER):
        if has_multiplier:
            errors["multiplier"] = [f"A {trigger} bonus is fixed `points`."]
        own = {ACTION_TRIGGER: "action_type", LAPSE_TRIGGER: "days"}.get(trigger)
        allowed = {"tiers", own} if own else {"tiers"}
        extra = sorted(set(conditions) - allowed)
        if extra:
            takes = f"`{own}` and `tiers` conditions" if own else "a `tiers` condition"
            errors["conditions"] = [f"A {trigger} rule takes only {takes}, not {', '.join(extra)}."]
    if trigger == ACTION_TRIGGER and not conditions.get("action_type"):
        errors.setdefault("conditions", []).append(
            "An action rule names its action: `conditions.action_type`."
        )
    if trigger != ACTION_TRIGGER and conditions.get("action_type"):
        errors.setdefault("conditions", []).append("Only an action rule has an `action_type`.")
    if trigger == LAPSE_TRIGGER and not conditions.get("days"):
        errors.setdefault("conditions", []).append(
            "A lapse rule says after how many days without a paid order: `conditions.days`."
        )
    if trigger in ("order", "first_order") and conditions.get("days") is not None:
        errors.setdefault("conditions", []).append("Only a lapse rule has `days`.")
    if trigger != ACTION_TRIGGER and rule.get("caps"):
        errors["caps"] = ["Only action rules have caps."]
    names = conditions.get("tiers") or []
    tiers: list[Tier] = []
    if names:
        known = {t.name: t for t in session.scalars(select(Tier).where(Tier.name.in_(names)))}
        unknown = [name for name in names if name not in known]
        if unknown:
            errors.setdefault("conditions", []).append(f"Unknown tiers: {', '.join(unknown)}.")
        tiers = list({known[name].id: known[name] for name in names if name in known}.values())
    starts, ends = rule.get("starts_at"), rule.get("ends_at")
    if starts and ends and ends <= starts:
        errors["ends_at"] = ["Must be after starts_at."]
    if errors:
        raise ValidationFailed("This earning rule is not valid.", errors=errors)
    return tiers


def _set_conditions(rule: EarningRule, conditions: dict, tiers: list[Tier]) -> None:
    """Store `conditions` without their tier names, and the tiers (resolved) as links."""
    rule.conditions = {key: value for key, value in conditions.items() if key != "tiers"}
    kept = {link.tier_id: link for link in rule.tier_links}
    links = []
    for position, tier in enumerate(tiers):
        link = kept.get(tier.id) or EarningRuleTier(tier=tier)
        link.position = position
        links.append(link)
    rule.tier_links = links


def get_rule(session: Session, rule_id: int) -> EarningRule:
    rule = session.get(EarningRule, rule_id)
    if rule is None:
        raise NotFound(f"No earning rule {rule_id}.")
    return rule


def list_rules(session: Session, limit: int, cursor: str | None) -> Page:
    """A page of the rules, oldest first (`EarningRulePageSchema`)."""
    query = select(EarningRule)
    return page_by_id(
        session, query, EarningRule.id, limit, cursor, newest_first=False,
        max_row_id=MAX_INT32_ROW_ID,
    )  # fmt: skip


def create_rule(session: Session, data: dict) -> EarningRule:
    data = {"conditions": {}, "active": True, **data}
    tiers = _validate(session, data)
    data["caps"] = data.get("caps") or None  # `{}`: no cap, as null
    rule = EarningRule(**{key: value for key, value in data.items() if key != "conditions"})
    _set_conditions(rule, data["conditions"], tiers)
    session.add(rule)
    session.flush()
    record_change(session, "earning_rule.create", "earning_rule", rule.id, None, _snapshot(rule))
    return rule


def update_rule(session: Session, rule_id: int, changes: dict) -> EarningRule:
    rule = get_rule(session, rule_id)
    before = _snapshot(rule)
    merged = {
        "trigger": rule.trigger,
        "multiplier": rule.multiplier,
        "points": rule.points,
        "conditions": rule.shown_conditions,
        "starts_at": rule.starts_at,
        "ends_at": rule.ends_at,
        "caps": rule.caps,
        **changes,
    }
    tiers = _validate(session, merged)
    for name, value in changes.items():
        if name == "caps":
            rule.caps = value or None
        elif name == "conditions":
            _set_conditions(rule, value, tiers)
        else:
            setattr(rule, name, value)
    session.flush()
    record_change(session, "earning_rule.update", "earning_rule", rule.id, before, _snapshot(rule))
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    # Entries keep their rule_id: the id stays meaningful in the audit log's last snapshot.
    rule = get_rule(session, rule_id)
    before = _snapshot(rule)
    session.delete(rule)
    session.flush()
    record_change(session, "earning_rule.delete", "earning_rule", rule_id, before, None)


# --- which rules apply ----------------------------------------------------------------------


def live_rules(session: Session, triggers: tuple[str, ...], at: datetime) -> list[EarningRule]:
    return list(
        session.scalars(
            select(EarningRule)
            .where(
                EarningRule.trigger.in_(triggers),
                EarningRule.active.is_(True),
                or_(EarningRule.starts_at.is_(None), EarningRule.starts_at <= at),
                or_(EarningRule.ends_at.is_(None), EarningRule.ends_at > at),
            )
            .order_by(EarningRule.id)
        )
    )


@dataclass(frozen=True)
class Rule:
    """An active rule as plain values, as the per-worker cache keeps it (read-only)."""

    id: int
    name: str
    trigger: str
    multiplier: Decimal | None
    points: int | None
    conditions: dict  # skus, categories, min_spend; action_type
    tier_ids: frozenset[int]  # the tiers it is limited to; empty: every tier
    starts_at: datetime | None
    ends_at: datetime | None
    caps: dict | None = None  # action rules: per_day, per_month, lifetime


def cached_rules(session: Session, triggers: tuple[str, ...], at: datetime) -> list[Rule]:
    """`live_rules` for the events' hot path: the active rules of these triggers come from the
    per-worker cache (a change through this worker clears it when it commits), and the time
    window is checked here against `at`."""

    def load() -> tuple[Rule, ...]:
        rows = session.scalars(
            select(EarningRule)
            .where(EarningRule.trigger.in_(triggers), EarningRule.active.is_(True))
            .order_by(EarningRule.id)
        )
        return tuple(
            Rule(r.id, r.name, r.trigger, r.multiplier, r.points, dict(r.conditions or {}),
                 frozenset(r.tier_ids), r.starts_at, r.ends_at, dict(r.caps or {}) or None)
            for r in rows
        )  # fmt: skip

    return [
        rule
        for rule in cache.cached(session, "earning_rules", triggers, load)
        if (rule.starts_at is None or rule.starts_at <= at)
        and (rule.ends_at is None or rule.ends_at > at)
    ]


def matching_amount(rule: Rule | EarningRule, lines: list[dict]) -> int:
    """Eligible money of the lines the rule's sku/category conditions select."""
    conditions = rule.conditions or {}
    skus, categories = conditions.get("skus"), conditions.get("categories")
    return sum(
        line["eligible"]
        for line in lines
        if (not skus or line["sku"] in skus)
        and (not categories or line.get("category") in categories)
    )


def is_first_paid_order(session: Session, order: Order) -> bool:
    """The shared rule (same customer id or mailbox), as first-order rewards and referrals use."""
    return not has_paid_orders(
        session,
        customer_ids=[order.customer_id],
        emails=[order.email_normalized],
        excluding_order_pk=order.id,
    )


def order_rules(
    session: Session, order: Order, tier_id: int, at: datetime
) -> list[tuple[Rule, int]]:
    """The live order (and, on a first paid order, first-order) rules this paid order meets,
    each with the eligible amount of the lines it selects: the member's tier `tier_id` (the
    tier before the event) is one it names, the order reaches its `min_spend`, and it selects
    some money. In rule id order."""
    candidates = cached_rules(session, ("order", "first_order"), at)
    if any(r.trigger == "first_order" for r in candidates) and not is_first_paid_order(
        session, order
    ):
        candidates = [r for r in candidates if r.trigger != "first_order"]
    met = []
    for rule in candidates:
        if rule.tier_ids and tier_id not in rule.tier_ids:
            continue
        if order.eligible_amount < (rule.conditions.get("min_spend") or 0):
            continue
        amount = matching_amount(rule, order.lines)
        if amount > 0:
            met.append((rule, amount))
    return met


# --- sign-up and birthday -------------------------------------------------------------------


def signup_bonus(session: Session, member: Member) -> None:
    """`hooks.member_enrolled`: fixed points for each live sign-up rule, available at once."""
    for rule in cached_rules(session, ("signup",), member.enrolled_at):
        if rule.points is None:  # never: a sign-up rule gives fixed points (checked on write)
            continue
        if rule.tier_ids and member.tier_id not in rule.tier_ids:
            continue
        ledger.post_entry(
            session,
            member.id,
            "bonus",
            rule.points,
            source_type=SIGNUP_SOURCE,
            source_id=str(member.id),
            detail={"rule": rule.name, "trigger": "signup"},
            rule_id=rule.id,
            occurred_at=member.enrolled_at,
        )


def _birthday_days(today: date, lookback: int) -> Subquery:
    """(MM-DD, birthday year) for each day of the look-back window, as literal rows.

    29 February birthdays are celebrated on 28 February in other years."""
    rows: dict[str, str] = {}
    for back in range(lookback, -1, -1):
        day = today - timedelta(days=back)
        rows[day.strftime("%m-%d")] = str(day.year)
        leap = day.year % 4 == 0 and (day.year % 100 != 0 or day.year % 400 == 0)
        if day.month == 2 and day.day == 28 and not leap:
            rows["02-29"] = str(day.year)
    selects = [
        select(literal(mmdd).label("mmdd"), literal(year).label("year"))
        for mmdd, year in rows.items()
    ]
    return union_all(*selects).subquery("birthdays")


def award_birthdays(
    session: Session, now: datetime, batch_size: int, progress: Progress | None = None
) -> int:
    """Birthday bonus once per member, rule and birthday year; set-based per range.

    Per range and rule: lock the members, add the points to the balances of those due, insert
    their entries. "Due" = birthday within the look-back window and no entry of this rule for
    that birthday year yet, so a re-run (or a late run) gives nothing twice.

    A tier's `birthday_points` replaces the rule's points for the members of that tier (0:
    none for them): the rule (its window, its tier conditions) still decides who is due, the
    tier how much — the same two statements per rule, once per overriding tier."""
    program = get_program(session)
    today = now.astimezone(ZoneInfo(program.timezone)).date()
    rules = live_rules(session, ("birthday",), now)
    if not rules:
        return 0
    overriding = list(
        session.scalars(select(Tier).where(Tier.birthday_points.is_not(None)).order_by(Tier.id))
    )
    base_id = select(Tier.id).where(Tier.threshold == 0).scalar_subquery()
    member_tier = func.coalesce(Member.tier_id, base_id)
    days = _birthday_days(today, BIRTHDAY_LOOKBACK_DAYS)
    awarded = 0
    for low, high in in_ranges(session, batch_size, progress):
        lock_members(
            session,
            Member.id.between(low, high),
            Member.birthday.in_(select(days.c.mmdd)),
        )
        for rule in rules:
            members = [Member.id.between(low, high), Member.erased_at.is_(None)]
            if rule.tier_links:
                members.append(Member.tier_id.in_(rule.tier_ids))
            detail = {"rule": rule.name, "trigger": "birthday"}
            # (points, the entries' detail, which members) — the rule's own, then each tier's
            groups = [
                (rule.points, detail, member_tier.not_in([t.id for t in overriding]))
            ] + [
                (tier.birthday_points, {**detail, "tier": tier.name,
                                        "tier_birthday_points": tier.birthday_points},
                 member_tier == tier.id)
                for tier in overriding
            ]  # fmt: skip
            for points, entry_detail, who in groups:
                if points:
                    awarded += _award_birthday(
                        session, rule, points, entry_detail, [*members, who], days, now
                    )
    return awarded


def _award_birthday(
    session: Session,
    rule: EarningRule,
    points: int,
    detail: dict,
    members: list[ColumnElement[bool]],
    days: Subquery,
    now: datetime,
) -> int:
    """`points` to the members (of `members`) due a birthday bonus of `rule`: their balances,
    then their entries; how many."""
    # Correlated by hand: inside `due` below, the enclosing FROM is the birthdays, not the
    # members (auto-correlation would count every member's entries).
    not_given = ~(
        exists()
        .where(
            LedgerEntry.member_id == Member.id,
            LedgerEntry.source_type == BIRTHDAY_SOURCE,
            LedgerEntry.source_id == days.c.year,
            LedgerEntry.rule_id == rule.id,
        )
        .correlate_except(LedgerEntry)
    )
    due = exists().where(days.c.mmdd == Member.birthday, not_given)
    # Each due member gets exactly one entry below: this count is the awards made.
    result = session.execute(
        update(Member)
        .where(*members, due)
        .values(
            points_available=Member.points_available + points,
            points_lifetime=Member.points_lifetime + points,
        ),
        execution_options={"synchronize_session": False},
    )
    session.execute(
        ledger.insert_entries(
            select(
                Member.id,
                literal("bonus"),
                literal(points),
                literal(AVAILABLE),
                literal(BIRTHDAY_SOURCE),
                days.c.year,
                literal(rule.id),
                literal(detail, JSONType),
                literal(now, UTCDateTime()),
                literal(utcnow(), UTCDateTime()),
            )
            .select_from(Member)
            .join(days, and_(days.c.mmdd == Member.birthday))
            .where(*members, not_given),
            rule=True,
        )  # fmt: skip
    )
    return rowcount(result)
